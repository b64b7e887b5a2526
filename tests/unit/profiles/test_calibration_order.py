"""The web Calibrate's events reach the page in the order the session made them.

The processing thread's level events are queued for the event loop; a Skip
handled in the loop in between must not be overtaken by them (the page drew
its progress bar back a step when a stale level event came after the next
prompt).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from ser_daemon.profiles.calibration import Calibration

SR = 16000


@pytest.fixture(scope="module")
def bundle(shipped_bundle):
    return shipped_bundle


def _calibration(bundle, loop: asyncio.AbstractEventLoop, sent: list) -> Calibration:
    return Calibration(bundle, "mic", SR, loop, lambda client, msg: sent.append(msg),
                       use_profile=lambda *a: None, load_classifier=lambda: None)


async def _started(bundle, sent: list) -> tuple[Calibration, SimpleNamespace]:
    """A Calibration with a session started by a local web page that holds the page key."""
    cal = _calibration(bundle, asyncio.get_running_loop(), sent)
    page = SimpleNamespace(web=True, host="127.0.0.1", page_key=True)
    await cal.handle(page, {"type": "calibrate", "action": "start", "profile": "order-test"})
    return cal, page


def _steps(sent: list) -> list[tuple[str, int]]:
    return [(m["event"], m["step"]) for m in sent if "step" in m]


def test_level_events_queued_before_a_skip_arrive_before_its_prompt(bundle) -> None:
    async def scenario() -> list:
        sent: list = []
        cal, page = await _started(bundle, sent)
        cal.feed("mic", np.zeros((SR // 2, 1), np.float32))  # level events queued, the loop has not run
        await cal.handle(page, {"type": "calibrate", "action": "skip"})
        for _ in range(20):
            await asyncio.sleep(0)
        cal.feed("mic", np.zeros((SR // 2, 1), np.float32))
        for _ in range(20):
            await asyncio.sleep(0)
        await cal.handle(page, {"type": "calibrate", "action": "cancel"})
        cal.feed("mic", np.zeros((SR // 2, 1), np.float32))  # no session: nothing more
        for _ in range(20):
            await asyncio.sleep(0)
        return sent

    sent = asyncio.run(asyncio.wait_for(scenario(), 30))
    steps = _steps(sent)
    kinds = [k for k, _ in steps]
    assert kinds[0] == "step" and "level" in kinds and "skipped" in kinds
    first_level, skipped = kinds.index("level"), kinds.index("skipped")
    assert first_level < skipped and kinds[skipped + 1] == "step"
    assert [s for _, s in steps] == sorted(s for _, s in steps)  # the progress never goes back
    assert steps[-1][1] == 1 and any(k == "level" and s == 1 for k, s in steps[skipped:])
    assert sent[-1]["event"] == "cancelled"


def test_a_cancel_drops_level_events_not_yet_sent(bundle) -> None:
    async def scenario() -> list:
        sent: list = []
        cal, page = await _started(bundle, sent)
        cal.feed("mic", np.zeros((SR // 2, 1), np.float32))
        await cal.handle(page, {"type": "calibrate", "action": "cancel"})
        for _ in range(20):
            await asyncio.sleep(0)
        return sent

    sent = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert [m["event"] for m in sent] == ["started", "step", "cancelled"]
