"""Shared fixtures: a tiny model bundle built once per session, timeouts, tool checks."""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest


def _children_get_default_stop_signals() -> None:
    """Under nohup (SIGHUP ignored) or as a shell's background job (SIGINT ignored) the runner's
    children inherit the ignore, and the daemon rightly keeps it: the tests that stop it with
    those signals would then wait on a daemon that never stops. A Python handler is reset to the
    default on exec while an ignore is not, so a do-nothing handler keeps the runner as immune as
    before and gives every daemon the tests start the default disposition."""
    for sig in (signal.SIGHUP, signal.SIGINT):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, lambda signum, frame: None)


if sys.platform != "win32":
    _children_get_default_stop_signals()

# Test modules import shared helpers (fakes, helpers, tiny_model) and each other's fixtures
# (test_messages.make_state, ...) by name, wherever in the tree they stand (unit/<layer>/,
# integration/): every folder of the tree is on the path, in a fixed order.
sys.path.insert(0, str(Path(__file__).parent))
for _folder in sorted(p for p in Path(__file__).parent.rglob("*") if p.is_dir() and p.name != "__pycache__"):
    sys.path.append(str(_folder))

TIMEOUT_FACTOR = float(os.environ.get("SER_TESTS_TIMEOUT_FACTOR", "1"))


def timeout(seconds: float) -> float:
    """A test timeout, scaled for slow machines by $SER_TESTS_TIMEOUT_FACTOR."""
    return seconds * TIMEOUT_FACTOR


def require_reference(what: str, found: bool, hint: str) -> None:
    """Skip a cross-check whose reference tool is missing, or fail it when $SER_REQUIRE_REFS=1 (CI).

    The references (librosa, jsonschema, liblo's oscdump) are what make these checks worth
    having, so CI must never pass them by skipping.
    """
    if found:
        return
    msg = f"{what} is not installed ({hint})"
    if os.environ.get("SER_REQUIRE_REFS") == "1":
        pytest.fail(msg + " and SER_REQUIRE_REFS=1")
    pytest.skip(msg)


def reference_module(name: str) -> Any:
    """Import a reference library for a cross-check (see :func:`require_reference`)."""
    require_reference(name, importlib.util.find_spec(name) is not None, "pip install -e '.[test]'")
    return importlib.import_module(name)


def wire_schema() -> dict[str, Any]:
    """The WebSocket/JSON-lines message schema the package ships."""
    import json
    from importlib import resources

    return json.loads((resources.files("ser_daemon") / "schema" / "messages.schema.json").read_text())


def schema_validator(schema: dict[str, Any] | None = None) -> Any:
    """A jsonschema validator for ``schema`` (default: :func:`wire_schema`), the schema itself checked once.

    ``jsonschema.validate(msg, schema)`` checks the schema against its metaschema on every call,
    which is nearly all of its time; ``schema_validator().validate(msg)`` raises the same
    ``ValidationError`` for a bad message.
    """
    jsonschema = reference_module("jsonschema")
    schema = wire_schema() if schema is None else schema
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(autouse=True)
def _fresh_caches_per_mutant() -> Iterator[None]:
    """Under mutmut, forget memoised results before each test.

    mutmut forks every mutant from a process that already ran the tests once, so a cached mel
    filterbank, window, VAD calibration or OSC header would hide the mutated code from the
    tests.  Outside mutmut ($MUTANT_UNDER_TEST unset) this does nothing.
    """
    if "MUTANT_UNDER_TEST" in os.environ:
        from ser_daemon.core import features, vad
        from ser_daemon.outputs import messages

        features.mel_filterbank.cache_clear()
        features._window.cache_clear()
        vad._calibration_db.cache_clear()
        messages._HEADERS.clear()
    yield


# What libraries run on their own the first time they look for a shared library (ctypes.util
# for PortAudio, `uname -p` for platform.processor() under TensorFlow): not the test starting a process.
_LIBRARY_PROBES = {"ldconfig", "gcc", "cc", "objdump", "ld", "uname"}


@pytest.fixture(autouse=True)
def _processes_only_in_slow_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that starts a process (the CLI, a compiler, a browser) must be marked slow.

    The fast tier is for the code in this process; starting one takes seconds on a busy
    machine.  Every Popen (asyncio's subprocesses too) is counted, and an unmarked test that
    started any fails at its end, naming the first command.
    """
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    import subprocess

    started: list[str] = []
    real_init = subprocess.Popen.__init__

    def counting_init(self: Any, args: Any, *a: Any, **kw: Any) -> None:
        argv0 = args if isinstance(args, (str, bytes)) else (list(args) or [""])[0]
        if os.path.basename(os.fsdecode(argv0).split()[0] if argv0 else "") not in _LIBRARY_PROBES:
            started.append(str(args)[:200])
        real_init(self, args, *a, **kw)

    subprocess.Popen.__init__ = counting_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        subprocess.Popen.__init__ = real_init  # type: ignore[method-assign]
    if started:
        pytest.fail(f"starts {len(started)} process(es) ({started[0]}): mark the test slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test on the TensorFlow-built tiny model needs TensorFlow: it belongs to the needs_tf tier.

    The fast tier's model is the stand-in of fakes.py; these fixtures build a real one.
    """
    for item in items:
        if {"tiny_bundle", "profile_bundle"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_tf)


def has_tf() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not has_tf():
        pytest.skip("TensorFlow is needed to build the test model (pip install -e '.[train]')")
    from tiny_model import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def shipped_bundle() -> Any:
    """The shipped model's bundle (skipped where it is not installed)."""
    from ser_daemon.model.bundle import default_model_dir, load_bundle

    directory = default_model_dir()
    if directory is None:
        pytest.skip("the shipped model is not installed")
    return load_bundle(directory)


@pytest.fixture(scope="session")
def profile_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported as ser-train does now: embedding output, head and speaker prior."""
    if not has_tf():
        pytest.skip("TensorFlow is needed to build the test model (pip install -e '.[train]')")
    from tiny_model import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("tiny_profile_model"), profiles=True)


@pytest.fixture(autouse=True)
def _no_personal_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests (and the daemons they start) never read the developer's own per-user config file."""
    home = tmp_path_factory.mktemp("config_home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))

