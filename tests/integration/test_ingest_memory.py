"""Ingest memory is given back, and a prompt state client loses nothing when streams vanish.

Real daemon, real sockets: 1,000 ingest streams opened and closed in rounds of 250 (all of a
round at once), the daemon's resident memory read from /proc before, at each peak and after.
The figures for benchmarks/RESULTS.md come from the same code (benchmarks/ingest_memory.py).
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from conftest import timeout
from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import ingest_memory  # noqa: E402

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]


def test_memory_after_1000_streams_returns_within_20_percent(tiny_bundle) -> None:
    res = asyncio.run(ingest_memory.measure(1000, 250, 0.5, timeout_s=timeout(120),
                                            env={"SER_MODEL_DIR": str(tiny_bundle)}))
    print({k: v for k, v in res.items() if k != "stderr_tail"})
    assert res["streams"] == 1000 and res["exit_code"] == 0, res["stderr_tail"]
    assert res["after_mb"] <= 1.2 * res["before_mb"], res
    # Every round gives its memory back, so nothing creeps from round to round either.
    assert all(r["after_mb"] <= 1.2 * res["before_mb"] for r in res["rounds"]), res["rounds"]
    assert res["finals_received"] == 1000 and res["double_finals"] == 0
    assert "Traceback" not in res["stderr_tail"]


def test_state_client_loses_nothing_while_hundreds_of_streams_vanish(tiny_bundle) -> None:
    """200 streams with states of their own (1.5 s of audio, 1 s window) all end at once;
    the state client (default --ws-queue) gets every state and every final state."""
    res = asyncio.run(ingest_memory.measure(200, 200, 1.5, timeout_s=timeout(120),
                                            env={"SER_MODEL_DIR": str(tiny_bundle)}))
    assert res["exit_code"] == 0, res["stderr_tail"]
    assert res["finals_received"] == 200 and res["double_finals"] == 0
    assert res["messages_missing"] == 0 and res["client_dropped_reported"] == 0, res
    assert res["state_messages"] > 200 + 200  # hello, the streams' own states and their finals
