"""The OSCQuery HTTP server through real sockets: only the tree and HOST_INFO, bounded connections.

Issue 32: python-oscquery's handler answered ``HEAD`` for any file of the working folder (FIFOs
held a thread forever), had no Host check, no read timeout and no limit on threads.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import timeout
from helpers import wait_until

pytest.importorskip("pythonoscquery")
from pythonoscquery.shared.osc_access import OSCAccess  # noqa: E402
from pythonoscquery.shared.osc_address_space import OSCAddressSpace  # noqa: E402
from pythonoscquery.shared.osc_host_info import OSCHostInfo  # noqa: E402
from pythonoscquery.shared.osc_path_node import OSCPathNode  # noqa: E402

from ser_daemon.net.oscquery_http import OscQueryHttpServer, host_allowed  # noqa: E402


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OscQueryHttpServer]:
    """The server as ``advertise()`` makes it, serving from a working folder with a file, a link and a FIFO."""
    (tmp_path / "secret.txt").write_text("x" * 1234)
    (tmp_path / "link").symlink_to("/etc/hostname")
    os.mkfifo(tmp_path / "fifo")
    monkeypatch.chdir(tmp_path)
    space = OSCAddressSpace()
    space.add_node(OSCPathNode("/avatar/change", access=OSCAccess.WRITEONLY_VALUE, value=""))
    info = OSCHostInfo("ser-daemon-test", {"ACCESS": True, "VALUE": True}, "127.0.0.1", 9001, "UDP")
    srv = OscQueryHttpServer(space, info, max_connections=8, read_timeout_s=2.0, deadline_s=3.0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout(5))


def request(port: int, raw: bytes, limit_s: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` and read the whole answer: status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout(limit_s)) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def get(port: int, path: str, method: str = "GET", host: str | None = "") -> tuple[int, dict[str, str], bytes]:
    host_line = f"Host: 127.0.0.1:{port}\r\n" if host == "" else (f"Host: {host}\r\n" if host else "")
    return request(port, f"{method} {path} HTTP/1.1\r\n{host_line}Connection: close\r\n\r\n".encode())


def test_the_tree_and_host_info_are_served(server: OscQueryHttpServer) -> None:
    port = server.server_address[1]
    code, headers, body = get(port, "/")
    assert code == 200 and headers["content-type"] == "application/json"
    assert "avatar" in json.loads(body)["CONTENTS"]
    code, _, body = get(port, "/?HOST_INFO")
    assert code == 200 and json.loads(body)["OSC_PORT"] == 9001
    code, _, body = get(port, "/avatar/change?FULL_PATH")
    assert code == 200 and json.loads(body)["FULL_PATH"] == "/avatar/change"
    assert get(port, "/avatar/change?VALUE")[0] == 204  # write-only: no value to read
    assert get(port, "/nowhere")[0] == 404
    assert get(port, "/?BOGUS")[0] == 400


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "FOO"])
def test_every_method_but_get_is_405(server: OscQueryHttpServer, method: str) -> None:
    code, headers, body = get(server.server_address[1], "/secret.txt", method)
    assert code == 405 and headers.get("allow") == "GET"
    assert "last-modified" not in headers and headers.get("content-length") != "1234"
    if method == "HEAD":
        assert body == b""


def test_files_links_and_fifos_of_the_working_folder_are_not_served(server: OscQueryHttpServer) -> None:
    port = server.server_address[1]
    before = threading.active_count()
    for path in ("/secret.txt", "/link", "/fifo", "/", "/."):
        code, headers, _ = get(port, path, "HEAD")
        assert code == 405 and "last-modified" not in headers
    for path in ("/secret.txt", "/link", "/fifo"):
        assert get(port, path)[0] == 404  # not a node of the tree
    for _ in range(20):  # python-oscquery: 20 HEADs on a FIFO took threads from 8 to 28
        assert get(port, "/fifo", "HEAD")[0] == 405
    assert wait_until(lambda: threading.active_count() <= before, 5), threading.enumerate()


def test_a_foreign_host_header_is_refused(server: OscQueryHttpServer) -> None:
    port = server.server_address[1]
    assert get(port, "/", host="rebind.example:%d" % port)[0] == 421
    assert get(port, "/", host="127.0.0.1:%d" % (port + 1))[0] == 421
    assert get(port, "/", host="127.example.invalid:%d" % port)[0] == 421
    assert get(port, "/", host="localhost:%d" % port)[0] == 200
    assert get(port, "/", host=None)[0] == 200  # no Host at all (HTTP/1.0 tools): not a browser


@pytest.mark.slow  # waits out server timeouts: seconds
def test_half_sent_requests_neither_pile_up_threads_nor_block_the_server(server: OscQueryHttpServer) -> None:
    port = server.server_address[1]
    before = threading.active_count()
    held = []
    try:
        for _ in range(300):  # python-oscquery: 300 half-sent requests left 328 threads
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout(5))
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127")
            held.append(s)
        assert threading.active_count() <= before + server.max_connections
        assert server.open_connections <= server.max_connections
        assert wait_until(lambda: server.refused > 0, 5)
        # Each read waits 2 s and each connection lives 3 s at most: then the server answers again.
        assert wait_until(lambda: server.open_connections == 0, 6)

        def answers() -> bool:  # connections still in the listen backlog may take the places once more
            try:
                return get(port, "/?HOST_INFO")[0] == 200
            except (OSError, IndexError):
                return False

        assert wait_until(answers, 10, poll_s=0.2)
        # A request trickled one byte at a time (each read well within its timeout) is cut at its deadline.
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout(5))
        held.append(s)
        t0 = time.monotonic()
        cut = False
        for b in b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 400:  # 20 s if nobody cuts it
            try:
                s.sendall(bytes([b]))
            except OSError:
                cut = True
                break
            time.sleep(0.05)
        assert cut and time.monotonic() - t0 < server.deadline_s + timeout(2)
        assert wait_until(lambda: server.open_connections == 0, 2)
    finally:
        for s in held:
            s.close()
    assert wait_until(lambda: threading.active_count() <= before, 5)


@pytest.mark.parametrize("header, ok", [
    (None, True), ("127.0.0.1:8000", True), ("localhost:8000", True), ("LOCALHOST", True), ("127.0.0.1", True),
    ("127.0.0.1:8001", False), ("evil.example:8000", False), ("127.0.0.1.nip.io:8000", False), ("[::1]:8000", False),
    ("", False), ("127.0.0.1:8000:8000", False),
])
def test_host_allowed(header: str | None, ok: bool) -> None:
    assert host_allowed(header, 8000) is ok
