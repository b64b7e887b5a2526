"""Giving memory back to the operating system after many streams ended.

Python frees a stream's buffers as soon as it ends, but glibc's allocator keeps freed heap
pages mapped ("resident") in case they are needed again; after a burst of a thousand remote
streams the daemon would keep their peak footprint for ever.  ``malloc_trim(0)`` returns free
pages from every arena.  A closed WebSocket connection also sits in reference cycles that only
a full garbage collection frees, so :class:`Trimmer` collects first.  Together they cost a few
tens of milliseconds, so the daemon runs them only once a wave of stream ends is over (no end
for ``quiet_s``) and at most once per ``min_interval_s``.  Elsewhere (macOS, Windows, musl)
there is no ``malloc_trim`` and only the collection runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import time
from typing import Callable

__all__ = ["trim", "collect_and_trim", "Trimmer"]

_malloc_trim: Callable[[int], int] | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _malloc_trim = _libc.malloc_trim  # glibc only; musl has none
        _malloc_trim.argtypes = [ctypes.c_size_t]  # type: ignore[attr-defined]
        _malloc_trim.restype = ctypes.c_int  # type: ignore[attr-defined]
    except (OSError, AttributeError):
        _malloc_trim = None


def trim() -> bool:
    """Return free heap memory to the OS where the C library can; True if it could."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


def collect_and_trim() -> bool:
    """Free unreachable cycles (closed connections), then give free pages back."""
    gc.collect()
    return trim()


class Trimmer:
    """Gives memory back once a wave of stream ends is over.

    Args:
        quiet_s: no stream may have ended for this long (the wave is over, sockets are closed).
        min_interval_s: shortest time between two trims.
        clock: monotonic clock (injected in tests).
        trim_fn: what to call (injected in tests).
    """

    def __init__(self, quiet_s: float = 0.3, min_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 trim_fn: Callable[[], bool] = collect_and_trim) -> None:
        self.quiet_s = quiet_s
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.trim_fn = trim_fn
        self._pending = False
        self._last_end = float("-inf")
        self._last_trim = float("-inf")
        self.trims = 0

    def streams_ended(self) -> None:
        """Note that a stream's memory was freed; a later :meth:`maybe_trim` gives it back."""
        self._pending = True
        self._last_end = self.clock()

    def maybe_trim(self) -> bool:
        """Trim if streams ended, none for ``quiet_s``, and none trimmed for ``min_interval_s``."""
        if not self._pending:
            return False
        now = self.clock()
        if now - self._last_end < self.quiet_s or now - self._last_trim < self.min_interval_s:
            return False
        self._pending = False
        self._last_trim = now
        self.trims += 1
        self.trim_fn()
        return True
