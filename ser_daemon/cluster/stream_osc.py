"""Per-stream OSC output of an ingress replica: one non-blocking UDP socket per address family.

A start message may name an OSC target (``"osc": "HOST:PORT"``) that the operator
allowed (``--allow-stream-osc``, checked by :mod:`ser_daemon.net.ingest_protocol`
before the stream is admitted).  Each of that stream's states then also goes
there as the daemon's default OSC output does: the generic scheme, one bundle
per state, with the mapping's weights, and with the mood stage on its mood
readings and events (``/ser/mood/...``).  UDP has no connection, so a failed send
(nobody listening, a full buffer) is counted and said at most once a minute per
replica (:class:`~ser_daemon.log_once.LogOnce`); it never ends the stream.  The datagrams go
through :class:`~ser_daemon.net.udp.UdpSender`, as the daemon's.  No Ray here: unit-tested
without it.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from ..core.mood_stage import MoodUpdate
from ..core.state import EmotionState
from ..log_once import LogOnce
from ..net.udp import UdpSender
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
        self._udp = UdpSender()
        self.sent = 0
        self.errors = 0
        self._once = LogOnce(LOG_EVERY_S, max_keys=1, clock=clock)

    def send_state(self, sockaddr: tuple[str, int], state: EmotionState, weights: Weights) -> bool:
        """Send one state's bundle to ``sockaddr`` (an IP address and port); False if it failed."""
        return self._send(sockaddr, self.profile.encode(state, weights, self.clock()))

    def send_mood(self, sockaddr: tuple[str, int], update: MoodUpdate) -> bool:
        """Send one mood update (reading and events, generic scheme) to ``sockaddr``; False if it failed."""
        packets = self.profile.encode_mood(update, self.clock())
        return self._send(sockaddr, packets) if packets else True

    def _send(self, sockaddr: tuple[str, int], packets: list[bytes]) -> bool:
        try:
            self._udp.send(packets, sockaddr)
            self.sent += 1
            return True
        except OSError as exc:
            self.errors += 1
            self._report(sockaddr, exc)
            return False

    def _report(self, sockaddr: tuple[str, int], exc: OSError) -> None:
        line = self._once.take("send")
        if line is None:
            return
        log.warning("stream OSC to %s:%s failed: %s (%d more failures since the last line; at most one line a "
                    "minute)", sockaddr[0], sockaddr[1], exc, line[0])

    def close(self) -> None:
        self._udp.close()
