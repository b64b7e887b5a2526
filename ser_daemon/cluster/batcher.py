"""One model call per tick per ingress replica, not one per window.

Streams held by one replica fall due together (everyone's hop is 250 ms), so the
replica gathers the windows that become due within ``wait_s`` and sends them in
one call; the model deployment's ``@serve.batch`` then merges the calls of all
replicas.  Measured on 2 cores with 32 streams, a Ray Serve handle call cost
about as much CPU as the front end of the window it carried
(benchmarks/RESULTS.md, "Many machines").

Nothing here knows Ray: the call is injected (an async function from a
``(n, frames, mels)`` array to ``(probs (n, labels), ms per window)``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import numpy as np

__all__ = ["WindowBatcher"]

log = logging.getLogger(__name__)

BatchCall = Callable[[np.ndarray], Awaitable[tuple[np.ndarray, float]]]


class WindowBatcher:
    """Collects windows for up to ``wait_s`` (or ``max_batch`` of them) and runs them in one call.

    Args:
        call: runs the model on a stack of windows.
        wait_s: longest a window waits for others (from the latency budget, see settings.py).
        max_batch: most windows per call.
    """

    def __init__(self, call: BatchCall, wait_s: float, max_batch: int) -> None:
        self.call = call
        self.wait_s = wait_s
        self.max_batch = max_batch
        self.calls = 0
        self.windows = 0
        # (stack of windows, its future, whether the caller asked for one window's answer)
        self._pending: list[tuple[np.ndarray, asyncio.Future, bool]] = []
        self._queued = 0  # windows in _pending
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()

    def infer(self, window: np.ndarray) -> asyncio.Future:
        """A future of ``(probs, ms per window)`` for one window (call from the event loop)."""
        return self._add(window[None], True)

    def infer_many(self, windows: np.ndarray) -> asyncio.Future:
        """A future of ``(probs (n, labels), ms per window)`` for a stack of windows ``(n, frames, mels)``.

        A multiplexed connection's tick: one future for all of its due windows, which travel in
        one model call (with other ticks' windows that fall due within ``wait_s``).

        Raises:
            ValueError: more than ``max_batch`` windows (the model deployment refuses a larger call;
                the ingress keeps a connection's streams within it).
        """
        if len(windows) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} windows per call. Received: {len(windows)}")
        return self._add(windows, False)

    def _add(self, stack: np.ndarray, one: bool) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        if self._queued + len(stack) > self.max_batch:
            self._flush()  # what waits goes now; this stack starts the next call
        self._pending.append((stack, fut, one))
        self._queued += len(stack)
        if self._queued >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.wait_s, self._flush)
        return fut

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._pending, self._queued = self._pending, [], 0
        if items:
            task = asyncio.get_running_loop().create_task(self._run(items))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _run(self, items: list[tuple[np.ndarray, asyncio.Future, bool]]) -> None:
        self.calls += 1
        stack = items[0][0] if len(items) == 1 else np.concatenate([s for s, _, _ in items])
        self.windows += len(stack)
        try:
            probs, per_ms = await self.call(stack)
        except Exception as exc:  # every waiting stream learns of it (and closes with 1011)
            for _, fut, _ in items:
                if not fut.done():
                    fut.set_exception(exc)
            return
        at = 0
        for s, fut, one in items:
            if not fut.done():  # a stream that went away cancelled its future
                fut.set_result((probs[at] if one else probs[at : at + len(s)], per_ms))
            at += len(s)
