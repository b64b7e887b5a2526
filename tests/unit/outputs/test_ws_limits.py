"""WebSocket server limits and access control, against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import timeout
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.core.state import EmotionState
from ser_daemon.net.websocket_server import AccessPolicy
from ser_daemon.outputs.websocket import WsBroadcaster

HELLO = {"type": "hello", "protocol": 1}


def state(seq: int) -> EmotionState:
    return EmotionState("mic", seq, ("a", "b"), "a", 0.9, (0.9, 0.1), (0.9, 0.1), True, seq * 4000, 1.0, 1.001)


# A realistic message size: states carry 6 VRM and 52 ARKit weights (about 2 kB of JSON).
WEIGHTS = {"vrm": {f"v{i}": 0.5 for i in range(6)}, "arkit": {f"blendshape{i:02d}": 0.25 for i in range(52)}}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout(60)))


async def server(policy: AccessPolicy | None = None, queue_len: int = 64) -> tuple[WsBroadcaster, str]:
    ws = WsBroadcaster(HELLO, queue_len=queue_len, policy=policy)
    port = await ws.start(Endpoint("127.0.0.1", 0))
    return ws, f"ws://127.0.0.1:{port}"


def test_foreign_browser_origin_is_refused() -> None:
    async def main():
        ws, url = await server(AccessPolicy(allowed_origins=("http://localhost:3000",)))
        try:
            with pytest.raises(InvalidStatus) as err:
                await connect(url, origin="https://evil.example")
            assert err.value.response.status_code == 403
            ok = await connect(url, origin="http://localhost:3000")  # explicitly allowed
            assert json.loads(await ok.recv())["type"] == "hello"
            await ok.close()
            plain = await connect(url)  # not a browser: no Origin header
            assert json.loads(await plain.recv())["type"] == "hello"
            await plain.close()
            assert ws.refused["origin"] == 1
        finally:
            await ws.close()

    run(main())


def test_token_is_required_when_set() -> None:
    async def main():
        ws, url = await server(AccessPolicy(token="s3cret-token-0123456789"))
        try:
            for bad in (url, url + "/?token=wrong", url + "/?token=s3cret-token-012345678",
                        url + "/?token=s3cret-token-0123456789X", url + "/?token=s3cret-token-0123456789%00"):
                with pytest.raises(InvalidStatus) as err:
                    await connect(bad)
                assert err.value.response.status_code == 401
            good = await connect(url + "/?token=s3cret-token-0123456789")
            assert json.loads(await good.recv())["type"] == "hello"
            await good.close()
            bearer = await connect(url, additional_headers={"Authorization": "Bearer s3cret-token-0123456789"})
            await bearer.recv()
            await bearer.close()
            for header in ("Bearer s3cret-token-0123456789X", "Bearer s3cret-token-012345678", "s3cret-token-0123456789"):
                with pytest.raises(InvalidStatus) as err:
                    await connect(url, additional_headers={"Authorization": header})
                assert err.value.response.status_code == 401
            assert ws.refused["token"] == 8
        finally:
            await ws.close()

    run(main())


def test_connection_limit_and_message_limits_close_with_clear_codes() -> None:
    async def main():
        ws, url = await server(AccessPolicy(max_clients=3, max_message_bytes=1024))
        try:
            clients = [await connect(url) for _ in range(3)]
            with pytest.raises(InvalidStatus) as err:
                await connect(url)
            assert err.value.response.status_code == 503
            big, binary, garbage = clients
            await big.send("x" * 5000)
            await binary.send(b"\x00\x01")
            await garbage.send("not json {")
            codes = []
            for c in clients:
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(c.recv(), timeout(5))
                codes.append(c.close_code)
            assert codes == [1009, 1003, 1007]
            # Slots free up again.
            deadline = time.monotonic() + timeout(5)
            while ws.clients and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            again = await connect(url)
            await again.recv()
            await again.close()
        finally:
            await ws.close()

    run(main())


def _stalled_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads (tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    sock.settimeout(timeout(5))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


@pytest.mark.slow  # waits out server timeouts: seconds
def test_stalled_client_loses_only_its_own_oldest_messages() -> None:
    async def main():
        ws, url = await server(queue_len=8)
        try:
            stalled = await asyncio.to_thread(_stalled_client, ws.port)
            fast = await connect(url)
            assert json.loads(await fast.recv())["type"] == "hello"
            N = 3000  # about 6 MB of states with weights: far more than the stalled socket takes
            got = []
            t0 = time.monotonic()
            late = None
            for seq in range(N):
                if seq == N // 10:  # a second stalled client, joining later: it loses fewer
                    late = await asyncio.to_thread(_stalled_client, ws.port)
                ws.broadcast(state(seq), WEIGHTS)
                if seq % 10 == 0:
                    await asyncio.sleep(0)  # let the event loop send
                while True:
                    try:
                        got.append(json.loads(await asyncio.wait_for(fast.recv(), 0.0005)))
                    except asyncio.TimeoutError:
                        break
            while len(got) < N:
                got.append(json.loads(await asyncio.wait_for(fast.recv(), timeout(5))))
            elapsed = time.monotonic() - t0
            assert [m["seq"] for m in got] == list(range(N))  # the reading client lost nothing
            assert all(m["client_dropped"] == 0 for m in got)
            slow, slower = sorted((c for c in ws.clients if c.dropped), key=lambda c: c.dropped)
            assert len(slower.queue) <= 8 and len(slow.queue) <= 8  # bounded: only the newest are kept
            # (the kernel buffers a few MB on loopback before the queue starts dropping)
            assert slow.dropped + slower.dropped == ws.total_dropped and slower.dropped > N // 10
            assert 0 < slow.dropped < slower.dropped, (slow.dropped, slower.dropped)
            # Each client is told its own count, in the newest state it will get.
            assert json.loads(slower.queue[-1])["client_dropped"] == slower.dropped
            assert json.loads(slow.queue[-1])["client_dropped"] == slow.dropped
            assert elapsed < timeout(30)
            stalled.close()
            late.close()
            await fast.close()
        finally:
            await ws.close()

    run(main())


def test_hundreds_of_clients_connect_vanish_and_do_not_block_others() -> None:
    async def main():
        ws, url = await server(AccessPolicy(max_clients=400))
        try:
            clients = await asyncio.gather(*(connect(url, open_timeout=timeout(20)) for _ in range(300)))
            assert len(ws.clients) == 300
            # Half of them vanish without a close handshake.
            for c in clients[:150]:
                c.transport.abort()
            ws.broadcast(state(0))
            ws.broadcast(state(1))
            live = clients[150:]

            async def read_two(c):
                out = []
                while len(out) < 3:
                    out.append(json.loads(await asyncio.wait_for(c.recv(), timeout(10))))
                return out

            results = await asyncio.gather(*(read_two(c) for c in live))
            assert all([m["type"] for m in r] == ["hello", "state", "state"] for r in results)
            deadline = time.monotonic() + timeout(10)
            while len(ws.clients) > 150 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(ws.clients) == 150  # the vanished ones were cleaned up
            await asyncio.gather(*(c.close() for c in live))
        finally:
            await ws.close()

    run(main())
