"""Fixed-size single-producer/single-consumer ring buffer for captured audio.

The producer is the sound card's callback (or a file replay thread): it may
not allocate, block or log, so :meth:`AudioRing.write` only copies the block
into preallocated arrays and then publishes it by advancing an integer.  The
consumer reads everything written since its last read, with the absolute
index of the first sample, so every sample keeps its place in time.

If the consumer falls behind by more than the capacity, the producer keeps
writing (the sound card cannot wait) and the consumer, on its next read,
learns exactly how many samples it lost: nothing is overwritten without a
count.  Overwrite detection relies on CPython's atomic attribute stores (the
GIL orders the data copy before the index update).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ["AudioRing", "RingRead"]


@dataclass(frozen=True)
class RingRead:
    """One read from the ring.

    Attributes:
        samples: ``(n, channels)`` float32 copy of the frames read.
        start_index: absolute index of ``samples[0]`` since the stream began.
        lost: frames overwritten before this read could take them (0 normally).
        newest_time: time (the producer's clock, seconds) at which the block
            holding the newest frame was written; ``nan`` if nothing was read.
    """

    samples: np.ndarray
    start_index: int
    lost: int
    newest_time: float

    @property
    def end_index(self) -> int:
        """Absolute index one past the last frame read."""
        return self.start_index + len(self.samples)


class AudioRing:
    """SPSC ring of float32 audio frames with per-block arrival times.

    Args:
        capacity_frames: frames the ring holds (device rate).
        channels: channels per frame.
        max_blocks: how many block arrival times are remembered (bounded).
    """

    def __init__(self, capacity_frames: int, channels: int = 1, max_blocks: int = 4096) -> None:
        if capacity_frames <= 0 or channels <= 0 or max_blocks <= 0:
            raise ConfigError(
                f"ring sizes must be positive. Received: capacity_frames={capacity_frames}, "
                f"channels={channels}, max_blocks={max_blocks}"
            )
        self.capacity = int(capacity_frames)
        self.channels = int(channels)
        self._data = np.zeros((self.capacity, self.channels), dtype=np.float32)
        # Block arrival log: end index (exclusive) and time of each written block.
        self._block_start = np.zeros(max_blocks, dtype=np.int64)
        self._block_end = np.zeros(max_blocks, dtype=np.int64)
        self._block_time = np.zeros(max_blocks, dtype=np.float64)
        self._blocks_written = 0
        self.write_index = 0  # frames ever written; published after the copy
        self._read_index = 0
        self.lost_frames = 0  # frames overwritten before they were read, total
        self.oversize_blocks = 0  # blocks larger than the whole ring (truncated)

    # -- producer side: no allocation, no locks, no logging -----------------
    def write(self, block: np.ndarray, arrival_time: float) -> None:
        """Copy ``block`` (``(n, channels)`` or ``(n,)`` for mono) into the ring."""
        n = block.shape[0]
        if n == 0:
            return
        cap = self.capacity
        w = self.write_index
        if n > cap:
            # Keep the newest part; the skipped head counts as lost at read time.
            self.oversize_blocks += 1
            w += n - cap
            block = block[n - cap :]
            n = cap
        pos = w % cap
        first = min(n, cap - pos)
        dst = self._data
        if block.ndim == 1:
            dst[pos : pos + first, 0] = block[:first]
            if first < n:
                dst[: n - first, 0] = block[first:]
        else:
            dst[pos : pos + first] = block[:first]
            if first < n:
                dst[: n - first] = block[first:]
        b = self._blocks_written % self._block_end.shape[0]
        self._block_start[b] = w
        self._block_end[b] = w + n
        self._block_time[b] = arrival_time
        self._blocks_written += 1
        self.write_index = w + n

    # -- consumer side ------------------------------------------------------
    @property
    def available(self) -> int:
        """Frames written and not yet read (may exceed capacity when overrun)."""
        return self.write_index - self._read_index

    def read(self, max_frames: int | None = None) -> RingRead:
        """Take the frames written since the last read (oldest first).

        Args:
            max_frames: read at most this many (the oldest ones); None for all.
        """
        w = self.write_index
        r = self._read_index
        lost = 0
        if w - r > self.capacity:
            lost = (w - r) - self.capacity
            r = w - self.capacity
        n = w - r
        if max_frames is not None:
            n = min(n, max_frames)
        out = self._copy(r, n)
        # The producer may have lapped us during the copy: drop what it overwrote.
        w_after = self.write_index
        overwritten = max(0, (w_after - self.capacity) - r)
        if overwritten:
            overwritten = min(overwritten, n)
            out = out[overwritten:]
            lost += overwritten
            r += overwritten
            n -= overwritten
        self._read_index = r + n
        self.lost_frames += lost
        newest = self.arrival_time(r + n - 1) if n else float("nan")
        return RingRead(samples=out, start_index=r, lost=lost, newest_time=newest)

    def _copy(self, start: int, n: int) -> np.ndarray:
        cap = self.capacity
        pos = start % cap
        first = min(n, cap - pos)
        if first == n:
            return self._data[pos : pos + n].copy()
        return np.concatenate((self._data[pos:], self._data[: n - first]))

    def arrival_time(self, index: int) -> float:
        """Arrival time of the block that held absolute frame ``index``.

        Returns ``nan`` when that block is older than the remembered log.
        """
        nb = self._block_end.shape[0]
        total = self._blocks_written
        lo = max(0, total - nb)
        # Blocks are in write order, so their end indices increase: bisect.
        left, right = lo, total
        while left < right:
            mid = (left + right) // 2
            if self._block_end[mid % nb] > index:
                right = mid
            else:
                left = mid + 1
        if left >= total or index < self._block_start[left % nb]:
            return float("nan")
        return float(self._block_time[left % nb])
