"""The one UDP sender and the one "log once" helper (fast; real sockets on 127.0.0.1)."""

from __future__ import annotations

import math
import socket

import pytest

from ser_daemon.log_once import LogOnce
from ser_daemon.net.udp import UdpSender, family_of


def test_log_once_says_each_key_once_by_default_and_counts_the_rest() -> None:
    once = LogOnce(clock=lambda: 0.0)
    assert once.interval_s == math.inf
    assert once.take("a") == (0, None)
    assert [once.take("a") for _ in range(3)] == [None, None, None]
    assert once.allow("b") and not once.allow("b")
    assert once.allow("c", "x") and not once.allow("c", "x") and once.allow("c", "y")  # several values: a tuple key
    assert once.suppressed == 5


def test_log_once_with_an_interval_says_how_many_it_held_back_and_for_how_long() -> None:
    now = [0.0]
    once = LogOnce(10.0, clock=lambda: now[0])
    assert once.take("k") == (0, None)
    for t in (1.0, 5.0, 9.99):
        now[0] = t
        assert once.take("k") is None
    now[0] = 12.5
    assert once.take("k") == (3, 12.5)
    now[0] = 22.5
    assert once.take("k") == (0, 10.0)  # exactly the interval later: a line again


def test_log_once_keeps_a_bounded_table_and_forgets_the_oldest_key() -> None:
    once = LogOnce(max_keys=2, clock=lambda: 0.0)
    assert once.allow("a") and once.allow("b") and once.allow("c")
    assert len(once._last) == 2
    assert once.allow("a")  # forgotten, so said again
    assert not once.allow("c")


def test_udp_sender_delivers_each_packet_on_one_socket_per_family() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    udp = UdpSender()
    try:
        assert udp.send([b"one", b"two"], rx.getsockname()) == 2
        assert udp.send((b"three",), rx.getsockname(), socket.AF_INET) == 1
        assert [rx.recv(64) for _ in range(3)] == [b"one", b"two", b"three"]
        assert udp.socket_for(socket.AF_INET) is udp.socket_for(socket.AF_INET)
        assert udp.socket_for(socket.AF_INET).getblocking() is False
        with pytest.raises(OSError):
            udp.send([b"x"], ("127.0.0.1", 0))  # port 0 is not a destination
    finally:
        udp.close()
        rx.close()
    assert udp._socks == {}


def test_family_of_tells_ipv6_from_ipv4() -> None:
    assert family_of(("127.0.0.1", 9000)) == socket.AF_INET
    assert family_of(("::1", 9000, 0, 0)) == socket.AF_INET6
