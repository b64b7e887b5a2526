"""pytest plugin for measuring flakiness: run every selected test ``--repeat N`` times in one session.

Measurement only (not used by the test suite or CI).  Example, the start-up signal tests 50 times:

    PYTHONPATH=tools python -m pytest -p repeat_tests --repeat 50 -q -p no:cacheprovider \
        tests/integration/test_exits.py::test_signal_at_a_random_moment tests/integration/test_faults.py::test_signal_at_any_moment_exits_within_a_second

Each repetition is its own parametrisation (``test[<step>-...]``), so fixtures are shared per session
as usual and a failure names the repetition it happened in.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--repeat", type=int, default=1, help="run each selected test this many times")


@pytest.fixture
def _repeat_step(request: pytest.FixtureRequest) -> int:
    return request.param


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    n = metafunc.config.getoption("repeat")
    if n > 1:
        metafunc.fixturenames.append("_repeat_step")
        metafunc.parametrize("_repeat_step", range(n), indirect=True)
