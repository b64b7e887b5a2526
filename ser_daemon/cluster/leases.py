"""Which ingress replica holds which stream id, with leases (pure, injected clock).

The single daemon refuses a second stream with an id in use (1008).  In the
cluster the two connections may land on different replicas, so one registry
decides.  A replica renews its streams' leases while it lives; when it dies,
its ids fall free after ``lease_s`` and its clients can reconnect with the same
id on another replica.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

__all__ = ["StreamLeases"]


class StreamLeases:
    """Stream id -> (owner, expiry).

    Args:
        lease_s: how long a claim lives without renewal, seconds.
        clock: monotonic seconds.
        max_streams: bound on the ids held (a claim beyond it is refused as taken).
    """

    def __init__(self, lease_s: float, clock: Callable[[], float] = time.monotonic, max_streams: int = 1_000_000) -> None:
        self.lease_s = lease_s
        self.clock = clock
        self.max_streams = max_streams
        self._held: dict[str, tuple[str, float]] = {}

    def _live(self, stream: str, now: float) -> tuple[str, float] | None:
        held = self._held.get(stream)
        if held is not None and held[1] <= now:
            del self._held[stream]
            return None
        return held

    def claim(self, stream: str, owner: str) -> bool:
        """Take ``stream`` for ``owner``; False when another owner holds it (or the table is full)."""
        now = self.clock()
        held = self._live(stream, now)
        if held is not None and held[0] != owner:
            return False
        if held is None and len(self._held) >= self.max_streams:
            self.expire()
            if len(self._held) >= self.max_streams:
                return False
        self._held[stream] = (owner, now + self.lease_s)
        return True

    def release(self, stream: str, owner: str) -> None:
        """Give ``stream`` back (only its owner can)."""
        held = self._held.get(stream)
        if held is not None and held[0] == owner:
            del self._held[stream]

    def renew(self, owner: str, streams: Iterable[str]) -> list[str]:
        """Extend ``owner``'s leases (re-claiming ids lost to a registry restart); return ids now held by others."""
        lost = [s for s in streams if not self.claim(s, owner)]
        return lost

    def expire(self) -> int:
        """Forget every lapsed lease; return how many."""
        now = self.clock()
        dead = [s for s, (_, until) in self._held.items() if until <= now]
        for s in dead:
            del self._held[s]
        return len(dead)

    def owners(self) -> dict[str, str]:
        """Live stream id -> owner."""
        self.expire()
        return {s: owner for s, (owner, _) in self._held.items()}
