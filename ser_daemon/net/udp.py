"""Non-blocking UDP datagrams from one socket per address family: the package's one UDP sender.

UDP has no connection, so one socket serves every target of its family; it is made on first use
and never blocks (a full send buffer is an error for the caller to count, not a stall of the
event loop or the processing thread).  The daemon's OSC output
(:class:`~ser_daemon.outputs.osc.OscSender`: configured targets, names resolved in the
background) and a cluster replica's per-stream OSC (:class:`~ser_daemon.cluster.stream_osc.StreamOscOut`)
both send through it; what they send and how they report failures stays theirs.
"""

from __future__ import annotations

import socket
from typing import Any, Iterable

__all__ = ["UdpSender", "family_of"]


def family_of(sockaddr: tuple[Any, ...]) -> int:
    """The address family of an IP ``(address, port, ...)`` tuple (IPv6 addresses hold a ``:``)."""
    return socket.AF_INET6 if ":" in str(sockaddr[0]) else socket.AF_INET


class UdpSender:
    """One non-blocking datagram socket per address family, made on first use."""

    def __init__(self) -> None:
        self._socks: dict[int, socket.socket] = {}

    def socket_for(self, family: int) -> socket.socket:
        """The socket of ``family`` (made now if there is none yet).

        Raises:
            OSError: the family cannot be used here (no IPv6 on this machine).
        """
        s = self._socks.get(family)
        if s is None:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.setblocking(False)
            self._socks[family] = s
        return s

    def send(self, packets: Iterable[bytes], sockaddr: tuple[Any, ...], family: int | None = None) -> int:
        """Send each of ``packets`` to ``sockaddr``; the number sent.

        Raises:
            OSError: a send failed (nobody listening, a full buffer, no route); the packets
                after it are not sent.
        """
        sock = self.socket_for(family_of(sockaddr) if family is None else family)
        n = 0
        for pkt in packets:
            sock.sendto(pkt, sockaddr)
            n += 1
        return n

    def close(self) -> None:
        for s in self._socks.values():
            s.close()
        self._socks.clear()
