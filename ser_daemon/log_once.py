"""Say a repeated problem once, then count it: the one "log once" helper of the package.

A refused client, a datagram that is not OSC, a UDP target that does not listen: each can
repeat thousands of times a second, and a line per occurrence would flood the log.
:class:`LogOnce` lets a caller log a line for a key at most once per ``interval_s`` (by default
once for the life of the process) and tells it how many it held back in between, for the next
line to say.  The table of keys is bounded, oldest forgotten first.  Used by the WebSocket
servers' refusals (:class:`~ser_daemon.net.websocket_server.LogLimiter`), the OSC listener's
drops (:class:`~ser_daemon.net.osc_in.DropLog`) and both UDP senders.
"""

from __future__ import annotations

import collections
import math
import time
from typing import Callable, Hashable

__all__ = ["LogOnce"]


class LogOnce:
    """At most one log line per key per ``interval_s``; counts the lines held back.

    Args:
        interval_s: least seconds between two lines for the same key; ``math.inf`` (the
            default) says each key once.
        max_keys: keys remembered (oldest forgotten first), so the table stays bounded.
        clock: monotonic clock in seconds (injected in tests).
    """

    def __init__(self, interval_s: float = math.inf, max_keys: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        # key -> (time of its last line, lines held back since)
        self._last: collections.OrderedDict[Hashable, tuple[float, int]] = collections.OrderedDict()
        self.suppressed = 0

    def take(self, key: Hashable) -> tuple[int, float | None] | None:
        """None while ``key``'s line must wait; else (lines held back since its last line, seconds since then).

        The seconds are None for a key's first line (or one forgotten since).
        """
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self._last[key] = (last[0], last[1] + 1)
            self.suppressed += 1
            return None
        self._last[key] = (now, 0)
        self._last.move_to_end(key)
        while len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        return (0, None) if last is None else (last[1], now - last[0])

    def allow(self, *key: Hashable) -> bool:
        """Whether a line about ``key`` (one value, or several that make a tuple) may be logged now."""
        return self.take(key[0] if len(key) == 1 else key) is not None
