"""Per-stream OSC output of an ingress replica: one non-blocking UDP socket per address family.

A start message may name an OSC target (``"osc": "HOST:PORT"``) that the operator
allowed (``--allow-stream-osc``, checked by :mod:`ser_daemon.net.ingest_protocol`
before the stream is admitted).  Each of that stream's states then also goes
there as the daemon's default OSC output does: the generic scheme, one bundle
per state, with the mapping's weights, and with the mood stage on its mood
readings and events (``/ser/mood/...``).  UDP has no connection, so a failed send
(nobody listening, a full buffer) is counted and said at most once a minute per
replica; it never ends the stream.  No Ray here: unit-tested without it.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Callable

from ..core.mood_stage import MoodUpdate
from ..core.state import EmotionState
from ..outputs.osc_schemes import GenericScheme, Weights

__all__ = ["StreamOscOut"]

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0


class StreamOscOut:
    """Sends states to per-stream targets from one socket per family (shared by all of a replica's streams).

    Args:
        clock: monotonic clock for the once-a-minute log line (injected in tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.profile = GenericScheme(bundle=True, prefix="/ser")  # stateless: one for every stream
        self.clock = clock
        self._socks: dict[int, socket.socket] = {}
        self.sent = 0
        self.errors = 0
        self._last_log: float | None = None
        self._unlogged = 0

    def _sock(self, family: int) -> socket.socket:
        s = self._socks.get(family)
        if s is None:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.setblocking(False)
            self._socks[family] = s
        return s

    def send_state(self, sockaddr: tuple[str, int], state: EmotionState, weights: Weights) -> bool:
        """Send one state's bundle to ``sockaddr`` (an IP address and port); False if it failed."""
        return self._send(sockaddr, self.profile.encode(state, weights, self.clock()))

    def send_mood(self, sockaddr: tuple[str, int], update: MoodUpdate) -> bool:
        """Send one mood update (reading and events, generic scheme) to ``sockaddr``; False if it failed."""
        packets = self.profile.encode_mood(update)
        return self._send(sockaddr, packets) if packets else True

    def _send(self, sockaddr: tuple[str, int], packets: list[bytes]) -> bool:
        family = socket.AF_INET6 if ":" in sockaddr[0] else socket.AF_INET
        try:
            sock = self._sock(family)
            for pkt in packets:
                sock.sendto(pkt, sockaddr)
            self.sent += 1
            return True
        except OSError as exc:
            self.errors += 1
            self._report(sockaddr, exc)
            return False

    def _report(self, sockaddr: tuple[str, int], exc: OSError) -> None:
        now = self.clock()
        if self._last_log is not None and now - self._last_log < LOG_EVERY_S:
            self._unlogged += 1
            return
        log.warning("stream OSC to %s:%s failed: %s (%d more failures since the last line; at most one line a "
                    "minute)", sockaddr[0], sockaddr[1], exc, self._unlogged)
        self._last_log = now
        self._unlogged = 0

    def close(self) -> None:
        for s in self._socks.values():
            s.close()
        self._socks.clear()
