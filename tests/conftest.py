"""Shared fixtures: a tiny model bundle built once per session, timeouts, tool checks."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

TIMEOUT_FACTOR = float(os.environ.get("SER_TESTS_TIMEOUT_FACTOR", "1"))


def timeout(seconds: float) -> float:
    """A test timeout, scaled for slow machines by $SER_TESTS_TIMEOUT_FACTOR."""
    return seconds * TIMEOUT_FACTOR


def has_tf() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not has_tf():
        pytest.skip("TensorFlow is needed to build the test model (pip install -e '.[train]')")
    from tiny_model import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(autouse=True)
def _no_personal_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests (and the daemons they start) never read the developer's own per-user config file."""
    home = tmp_path_factory.mktemp("config_home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
