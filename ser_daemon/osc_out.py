"""Sends OSC datagrams to the configured UDP targets.

A thin adapter: the packets are built in :mod:`ser_daemon.messages`.  UDP has
no connection, so a target that does not listen is not an error worth
stopping for: failures are logged once per target and kind, then counted.
"""

from __future__ import annotations

import logging
import socket
from typing import Iterable

from .config import Endpoint, OscTarget
from .errors import ConfigError
from .osc_profiles import OscProfile, Weights
from .state import EmotionState

__all__ = ["OscSender"]

log = logging.getLogger(__name__)


class OscSender:
    """Non-blocking UDP sender to several OSC targets, each with its profile."""

    def __init__(self, targets: Iterable[tuple[OscTarget, OscProfile]]) -> None:
        pairs = tuple(targets)
        self.targets = tuple(t.endpoint for t, _ in pairs)
        self.profiles = tuple(p for _, p in pairs)
        self._addrs: list[tuple[Endpoint, int, tuple]] = []
        for t in self.targets:
            try:
                info = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_DGRAM)
            except socket.gaierror as exc:
                raise ConfigError(f"OSC target {t}: cannot resolve host {t.host!r} ({exc.strerror})") from None
            family, _, _, _, sockaddr = info[0]
            self._addrs.append((t, family, sockaddr))
        self._socks: dict[int, socket.socket] = {}
        for _, family, _ in self._addrs:
            if family not in self._socks:
                s = socket.socket(family, socket.SOCK_DGRAM)
                s.setblocking(False)
                self._socks[family] = s
        self.sent = 0
        self.errors = 0
        self._reported: set[tuple[str, str]] = set()

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        """Encode ``state`` for each target's profile and send it."""
        for (target, family, sockaddr), profile in zip(self._addrs, self.profiles):
            if profile.follow_stream is not None and profile.follow_stream != state.stream:
                continue
            for pkt in profile.encode(state, weights, now):
                self._sendto(pkt, target, family, sockaddr)

    def send_status(self, stream: str, status: str) -> None:
        for (target, family, sockaddr), profile in zip(self._addrs, self.profiles):
            for pkt in profile.encode_status(stream, status):
                self._sendto(pkt, target, family, sockaddr)

    def request_full_resend(self, profile_name: str) -> None:
        for p in self.profiles:
            if p.name == profile_name:
                p.request_full_resend()

    def send(self, packets: Iterable[bytes]) -> None:
        """Send the same packets to every target; never raises for network trouble."""
        for pkt in packets:
            for target, family, sockaddr in self._addrs:
                self._sendto(pkt, target, family, sockaddr)

    def _sendto(self, pkt: bytes, target: Endpoint, family: int, sockaddr: tuple) -> None:
        try:
            self._socks[family].sendto(pkt, sockaddr)
            self.sent += 1
        except OSError as exc:
            self.errors += 1
            key = (str(target), type(exc).__name__ + str(exc.errno))
            if key not in self._reported:
                self._reported.add(key)
                log.warning("OSC to %s failed: %s (further failures of this kind are counted, not logged)", target, exc)

    def close(self) -> None:
        for s in self._socks.values():
            s.close()
        self._socks.clear()
