"""HTTP edges of the WebSocket and web page servers, with raw bytes on real sockets (127.0.0.1).

Duplicated Origin or Authorization headers, extra bytes after a request, methods other than
GET/HEAD, deeply nested JSON messages: each gets a proper answer and costs the log at most one
line per client per minute, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import timeout
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.net.ingest import IngestServer
from ser_daemon.net.websocket_server import AccessPolicy, LogLimiter
from ser_daemon.outputs.websocket import WsBroadcaster

TOKEN = "s3cret-token-0123456789"
UPGRADE = (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout(60)))


async def ask(port: int, raw: bytes, then: bytes = b"") -> bytes:
    """Send raw bytes (and more a moment later), return everything answered until close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    if then:
        await asyncio.sleep(0.05)
        try:
            writer.write(then)
            await writer.drain()
        except ConnectionError:
            pass
    try:
        data = await asyncio.wait_for(reader.read(-1), timeout(5))
    except ConnectionError:
        data = b""
    writer.close()
    return data


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def websockets_errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("header", ["Origin", "Authorization"])
def test_duplicated_headers_get_400_and_one_log_line_per_client(caplog, header) -> None:
    caplog.set_level(logging.INFO)

    async def main():
        ws = WsBroadcaster({"type": "hello"}, policy=AccessPolicy(token=TOKEN, allowed_origins=("http://a.example",)))
        port = await ws.start(Endpoint("127.0.0.1", 0))
        try:
            value = "http://a.example" if header == "Origin" else f"Bearer {TOKEN}"
            raw = (b"GET / HTTP/1.1\r\nHost: x\r\n" + UPGRADE + f"{header}: {value}\r\n{header}: {value}\r\n".encode()
                   + b"\r\n")
            answers = [await ask(port, raw) for _ in range(30)]
        finally:
            await ws.close()
        return answers

    answers = run(main())
    assert all(status(a) == 400 for a in answers), answers[0][:200]
    lines = [r for r in caplog.records if "bad HTTP request" in r.getMessage()]
    assert len(lines) == 1 and "duplicated" in lines[0].getMessage()
    assert not websockets_errors(caplog), [r.getMessage() for r in websockets_errors(caplog)]
    assert "Traceback" not in caplog.text


def test_foreign_origin_refusals_are_said_once_a_minute_per_client(caplog) -> None:
    caplog.set_level(logging.INFO)

    async def main():
        ws = WsBroadcaster({"type": "hello"})
        port = await ws.start(Endpoint("127.0.0.1", 0))
        try:
            raw = b"GET / HTTP/1.1\r\nHost: x\r\n" + UPGRADE + b"Origin: https://evil.example\r\n\r\n"
            return [await ask(port, raw) for _ in range(20)]
        finally:
            await ws.close()

    answers = run(main())
    assert all(status(a) == 403 for a in answers)
    assert len([r for r in caplog.records if "origin" in r.getMessage()]) == 1


def test_log_limiter_window_and_bound() -> None:
    now = [0.0]
    lim = LogLimiter(interval_s=60.0, max_keys=2, clock=lambda: now[0])
    assert lim.allow("a", "x") and not lim.allow("a", "x") and lim.allow("b", "x")
    now[0] = 61.0
    assert lim.allow("a", "x")
    lim.allow("c", "x")
    assert len(lim._last) == 2 and lim.suppressed == 1


@pytest.mark.parametrize("web", [True, False])
def test_methods_other_than_get_and_head_get_405(caplog, web) -> None:
    async def main():
        ws = WsBroadcaster({"type": "hello"})
        port = await ws.start(Endpoint("127.0.0.1", 0), web=web)
        try:
            out = {}
            for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"):
                out[method] = await ask(port, f"{method} / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                              "Content-Length: 0\r\n\r\n".encode())
            out["HEAD"] = await ask(port, f"HEAD / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            return out
        finally:
            await ws.close()

    out = run(main())
    for method, answer in out.items():
        if method == "HEAD":
            assert status(answer) == (200 if web else 404), answer[:100]
            if web:
                head, _, body = answer.partition(b"\r\n\r\n")
                assert body == b"" and b"Content-Length: " in head
        else:
            assert status(answer) == 405, (method, answer[:100])
            assert b"Allow: GET, HEAD" in answer
    assert not websockets_errors(caplog)


@pytest.mark.parametrize("path", ["/", "/app.js", "/favicon.ico", "/nope"])
@pytest.mark.parametrize("later", [False, True])
def test_extra_bytes_after_a_request_are_not_an_assertion_error(caplog, path, later) -> None:
    async def main():
        ws = WsBroadcaster({"type": "hello"})
        port = await ws.start(Endpoint("127.0.0.1", 0), web=True)
        try:
            req = f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode()
            junk = b"GARBAGE\x00\xff more bytes\r\n\r\nGET / HTTP/1.1\r\n\r\n"
            return await (ask(port, req, then=junk) if later else ask(port, req + junk))
        finally:
            await ws.close()

    answer = run(main())
    assert status(answer) in (200, 204, 404), answer[:200]
    assert not websockets_errors(caplog), [r.getMessage() for r in websockets_errors(caplog)]
    assert "AssertionError" not in caplog.text


def test_websocket_still_works_after_the_changes() -> None:
    async def main():
        ws = WsBroadcaster({"type": "hello"})
        port = await ws.start(Endpoint("127.0.0.1", 0))
        try:
            async with connect(f"ws://127.0.0.1:{port}") as c:
                assert json.loads(await c.recv())["type"] == "hello"
        finally:
            await ws.close()

    run(main())


DEEP = 100_000


async def _close_code_after_deep_json(port: int, start: bool) -> int:
    async with connect(f"ws://127.0.0.1:{port}", max_size=None) as c:
        if start:
            await c.send(json.dumps({"type": "start", "stream": "a", "sample_rate": 16000}))
        await c.recv()  # hello, or started
        await c.send("[" * DEEP + "]" * DEEP)
        with pytest.raises(ConnectionClosed) as err:
            await asyncio.wait_for(c.recv(), timeout(5))
        return err.value.rcvd.code


def test_deep_json_on_the_state_socket_closes_1007(caplog) -> None:
    async def main():
        ws = WsBroadcaster({"type": "hello"}, policy=AccessPolicy(max_message_bytes=1 << 20))
        port = await ws.start(Endpoint("127.0.0.1", 0))
        try:
            return await _close_code_after_deep_json(port, start=False)
        finally:
            await ws.close()

    assert run(main()) == 1007
    assert "RecursionError" not in caplog.text and not websockets_errors(caplog)


def test_deep_json_on_the_ingest_socket_closes_1007(caplog) -> None:
    """As the start message and after it: both close 1007, never a RecursionError."""
    async def main():
        ing = IngestServer(AccessPolicy(max_message_bytes=1 << 20), lambda s: None, lambda n: False, lambda: None)
        port = await ing.start(Endpoint("127.0.0.1", 0))
        try:
            after_start = await _close_code_after_deep_json(port, start=True)
            async with connect(f"ws://127.0.0.1:{port}", max_size=None) as c:
                await c.send("[" * DEEP + "]" * DEEP)
                with pytest.raises(ConnectionClosed) as err:
                    await asyncio.wait_for(c.recv(), timeout(5))
            return after_start, err.value.rcvd.code
        finally:
            await ing.close()

    assert run(main()) == (1007, 1007)
    assert "RecursionError" not in caplog.text and not websockets_errors(caplog)


def test_streams_beyond_max_streams_are_refused_with_1013() -> None:
    async def main():
        ing = IngestServer(AccessPolicy(), lambda s: None, lambda n: False, lambda: None, max_streams=2)
        port = await ing.start(Endpoint("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{port}"
        try:
            held = []
            for i in range(2):
                c = await connect(url)
                await c.send(json.dumps({"type": "start", "stream": f"s{i}", "sample_rate": 16000}))
                assert json.loads(await c.recv())["type"] == "started"
                held.append(c)
            extra = await connect(url)
            await extra.send(json.dumps({"type": "start", "stream": "s2", "sample_rate": 16000}))
            with pytest.raises(ConnectionClosed) as err:
                await asyncio.wait_for(extra.recv(), timeout(5))
            code, reason = err.value.rcvd.code, err.value.rcvd.reason
            await held[0].close()  # one ends: there is room again
            deadline = asyncio.get_running_loop().time() + timeout(5)
            while ing.active_streams > 1:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            again = await connect(url)
            await again.send(json.dumps({"type": "start", "stream": "s3", "sample_rate": 16000}))
            ok = json.loads(await again.recv())["type"]
            for c in (held[1], again):
                await c.close()
            return code, reason, ok
        finally:
            await ing.close()

    code, reason, ok = run(main())
    assert code == 1013 and "max-streams" in reason and ok == "started"


def test_started_streams_that_send_nothing_are_closed_and_free_their_place() -> None:
    """Issue 32: 8 streams that started and never sent audio blocked --max-streams 8 for good."""
    async def main():
        ing = IngestServer(AccessPolicy(), lambda s: None, lambda n: False, lambda: None, max_streams=2,
                           idle_timeout_s=0.5)
        port = await ing.start(Endpoint("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{port}"
        try:
            silent = []
            for i in range(2):
                c = await connect(url)
                await c.send(json.dumps({"type": "start", "stream": f"idle{i}", "sample_rate": 16000}))
                assert json.loads(await c.recv())["type"] == "started"
                silent.append(c)
            talker = await connect(url)
            await talker.send(json.dumps({"type": "start", "stream": "talker", "sample_rate": 16000}))
            with pytest.raises(ConnectionClosed) as full:
                await asyncio.wait_for(talker.recv(), timeout(5))
            closes = []
            for c in silent:
                with pytest.raises(ConnectionClosed) as err:
                    await asyncio.wait_for(c.recv(), timeout(5))
                closes.append((err.value.rcvd.code, err.value.rcvd.reason))
            again = await connect(url)  # the idle ones are gone: a real stream gets in
            await again.send(json.dumps({"type": "start", "stream": "talker", "sample_rate": 16000}))
            ok = json.loads(await asyncio.wait_for(again.recv(), timeout(5)))["type"]
            for _ in range(3):  # audio keeps a stream open past the idle time
                await again.send(b"\x00\x00" * 1600)
                await asyncio.sleep(0.3)
            assert again.state.name == "OPEN"
            await again.close()
            return full.value.rcvd.code, closes, ok
        finally:
            await ing.close()

    full, closes, ok = run(main())
    assert full == 1013 and ok == "started"
    assert closes == [(1008, "no audio within 0.5 s")] * 2, closes


@pytest.mark.parametrize("host, code", [
    ("rebind.example:{port}", 421), ("127.0.0.1:{other}", 421), ("127.example.invalid:{port}", 421),
    ("127.0.0.1:{port}", 200), ("localhost:{port}", 200),
])
def test_the_web_page_answers_only_to_its_own_host_names(host: str, code: int) -> None:
    """Issue 32: the page (and its per-run key) was served for any Host: a DNS-rebinding page could read it."""
    async def main():
        ws = WsBroadcaster({"type": "hello"})
        port = await ws.start(Endpoint("127.0.0.1", 0), web=True)
        try:
            page = await ask(port, f"GET / HTTP/1.1\r\nHost: {host.format(port=port, other=port + 1)}\r\n\r\n".encode())
            upgrade = b"" if code == 200 else await ask(
                port, f"GET /ws HTTP/1.1\r\nHost: {host.format(port=port, other=port + 1)}\r\n".encode() + UPGRADE + b"\r\n")
            return page, upgrade, ws.page_key
        finally:
            await ws.close()

    page, upgrade, key = run(main())
    assert status(page) == code, page[:200]
    assert (key.encode() in page) is (code == 200)
    if code != 200:
        assert status(upgrade) == 421, upgrade[:200]  # the WebSocket handshake on that port too
