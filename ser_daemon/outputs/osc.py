"""Sends OSC datagrams to the configured UDP targets.

A thin adapter: the packets are built in :mod:`ser_daemon.outputs.messages` and sent by
:class:`~ser_daemon.net.udp.UdpSender`.  UDP has no connection, so a target that does not
listen is not an error worth stopping for: failures are logged once per target and kind
(:class:`~ser_daemon.log_once.LogOnce`), then counted.
A host name that does not resolve (a headset on Wi-Fi that is not up yet) is
said once; the target is skipped and resolved again every
:attr:`OscSender.RETRY_S` seconds in the background, never in a tight loop.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Iterable

from ..core.mood_stage import MoodUpdate
from ..core.state import EmotionState
from ..log_once import LogOnce
from ..net.endpoints import Endpoint
from ..net.udp import UdpSender
from .osc_schemes import OscScheme, Weights
from .osc_targets import OSC_SCHEMES, OscTarget

__all__ = ["OscSender"]

log = logging.getLogger(__name__)


class OscSender:
    """Non-blocking UDP sender to several OSC targets, each with its profile."""

    RETRY_S = 30.0

    def __init__(self, targets: Iterable[tuple[OscTarget, OscScheme]]) -> None:
        pairs = tuple(targets)
        self.targets = tuple(t.endpoint for t, _ in pairs)
        self.profiles = tuple(p for _, p in pairs)
        # (endpoint, family, sockaddr); family 0 while the host does not resolve
        self._addrs: list[tuple[Endpoint, int, tuple]] = []
        self._udp = UdpSender()
        unresolved = []
        for i, t in enumerate(self.targets):
            resolved = self._resolve(t)
            if resolved is None:
                log.warning("OSC target %s: cannot resolve host %r; skipping it and retrying every %.0f s",
                            t, t.host, self.RETRY_S)
                unresolved.append(i)
                self._addrs.append((t, 0, ()))
            else:
                self._addrs.append((t, *resolved))
        self.sent = 0
        self.errors = 0
        self._reported = LogOnce()  # each (target, kind of failure) said once
        self._stop = threading.Event()
        self._retry: threading.Thread | None = None
        if unresolved:
            self._retry = threading.Thread(target=self._retry_loop, args=(unresolved,), name="osc-resolve", daemon=True)
            self._retry.start()

    def _resolve(self, t: Endpoint) -> tuple[int, tuple] | None:
        try:
            info = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError):
            return None
        family, _, _, _, sockaddr = info[0]
        self._udp.socket_for(family)  # made now: a family this machine lacks fails at start-up
        return family, sockaddr

    def _retry_loop(self, pending: list[int]) -> None:
        while pending and not self._stop.wait(self.RETRY_S):
            for i in list(pending):
                t = self._addrs[i][0]
                resolved = self._resolve(t)
                if resolved is not None:
                    self._addrs[i] = (t, *resolved)  # one assignment: the sender sees old or new
                    pending.remove(i)
                    log.warning("OSC target %s resolves now; sending to it", t)

    @staticmethod
    def describe(sender: OscSender | None) -> list[str]:
        """Start-up lines for people: where each OSC target goes ("OSC: off" without any)."""
        if sender is None:
            return ["OSC: off"]
        return [f"OSC: {OSC_SCHEMES[p.name].says if p.name in OSC_SCHEMES else 'OSC (generic scheme)'} to {target}"
                for target, p in zip(sender.targets, sender.profiles)]

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        """Encode ``state`` for each target's profile and send it."""
        for (target, family, sockaddr), profile in zip(self._addrs, self.profiles):
            if profile.follow_stream is not None and profile.follow_stream != state.stream:
                continue
            for pkt in profile.encode(state, weights, now):
                self._sendto(pkt, target, family, sockaddr)

    def send_status(self, stream: str, status: str, detail: str = "", now: float = 0.0) -> None:
        """An input's health, in each scheme that carries it (``detail`` and ``now`` are not sent)."""
        for (target, family, sockaddr), profile in zip(self._addrs, self.profiles):
            for pkt in profile.encode_status(stream, status):
                self._sendto(pkt, target, family, sockaddr)

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        """A mood update, in each scheme that carries it (generic; VRChat's floats with ``--mood``)."""
        for (target, family, sockaddr), profile in zip(self._addrs, self.profiles):
            for pkt in profile.encode_mood(update, now):
                self._sendto(pkt, target, family, sockaddr)

    def retarget(self, index: int, endpoint: Endpoint) -> None:
        """Send target ``index``'s packets to ``endpoint`` from now on (VRChat found over OSCQuery)."""
        resolved = self._resolve(endpoint)
        if resolved is None:
            log.warning("OSC target %s: cannot resolve host %r; keeping %s", endpoint, endpoint.host, self.targets[index])
            return
        self._addrs[index] = (endpoint, *resolved)  # one assignment: the sender sees old or new
        targets = list(self.targets)
        targets[index] = endpoint
        self.targets = tuple(targets)

    def _sendto(self, pkt: bytes, target: Endpoint, family: int, sockaddr: tuple) -> None:
        if not family:
            return  # not resolved (yet)
        try:
            self.sent += self._udp.send((pkt,), sockaddr, family)
        except OSError as exc:
            self.errors += 1
            if self._reported.allow(str(target), type(exc).__name__ + str(exc.errno)):
                log.warning("OSC to %s failed: %s (further failures of this kind are counted, not logged)", target, exc)

    def close(self) -> None:
        self._stop.set()
        self._udp.close()
