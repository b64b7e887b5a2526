"""The OSCQuery HTTP server: the address-space tree and ``?HOST_INFO``, nothing else (thin adapter).

python-oscquery's own handler derives from ``SimpleHTTPRequestHandler`` and
inherits its ``do_HEAD``: ``HEAD /any_file`` answered with the size and time of
any file in the daemon's working folder (symlinks and folder listings too),
and a ``HEAD`` on a FIFO held a thread forever.  Its server has no read
timeout, no Host check and starts one thread per connection without limit.
None of that can be switched off by configuration, so the handler here is
written on ``BaseHTTPRequestHandler`` (which serves no files) and only the
documents come from python-oscquery (its address space and host info):

- ``GET`` of a node of the tree, with at most one OSCQuery attribute, or
  ``GET /?HOST_INFO``; every other method (``HEAD`` included) gets 405;
- a ``Host`` header, when sent, must name this server (127.0.0.1 or
  localhost, with its port): a web page reaching it through DNS rebinding
  gets 421;
- at most ``max_connections`` connections at once (more are closed at once,
  without a thread), each read waits at most ``read_timeout_s`` and each
  connection lives at most ``deadline_s``, so half-sent requests cannot pile
  up threads.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

__all__ = ["OscQueryHttpServer", "host_allowed"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "VALUE", "ACCESS", "RANGE", "DESCRIPTION")
_LOCAL_NAMES = ("127.0.0.1", "localhost")


def host_allowed(header: str | None, port: int, names: tuple[str, ...] = _LOCAL_NAMES) -> bool:
    """Whether a ``Host`` header names this server: one of ``names``, with ``port`` or no port.

    A missing header is allowed (HTTP/1.0 tools); browsers always send one, so a
    page that rebinds its own name to 127.0.0.1 is still caught.
    """
    if header is None:
        return True
    text = header.strip()
    host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if port_text and port_text != str(port):
        return False
    return host.lower() in names


class _Handler(BaseHTTPRequestHandler):
    """One request: the tree node or HOST_INFO as JSON; anything else refused."""

    server: "OscQueryHttpServer"
    protocol_version = "HTTP/1.0"  # one request per connection

    def setup(self) -> None:
        self.timeout = self.server.read_timeout_s  # applied to the socket by StreamRequestHandler.setup
        super().setup()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        self.close_connection = True
        if self.command != "GET":
            self._respond(405, f"{self.command} is not served: only GET of the OSCQuery tree",
                          {"Allow": "GET"})
            return False
        if not host_allowed(self.headers.get("Host"), self.server.server_address[1]):
            self._respond(421, "this server answers to 127.0.0.1 and localhost only")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if "HOST_INFO" in query:
            if len(query) > 1:
                self._respond(400, "HOST_INFO takes no other attribute")
                return
            self._respond(200, str(self.server.host_info.to_json()))
            return
        unknown = [q for q in query if q.upper() not in _ATTRIBUTES]
        if unknown or len(query) > 1:
            self._respond(400, f"attribute(s) not understood: {', '.join(unknown or query)}")
            return
        from pythonoscquery.shared.osc_access import OSCAccess
        from pythonoscquery.shared.oscquery_spec import OSCQueryAttribute

        space = self.server.address_space
        with space.lock:
            node = space.find_node(url.path)
            if node is None:
                self._respond(404, "no such OSC path")
                return
            attribute = OSCQueryAttribute(next(iter(query)).upper()) if query else None
            if attribute is OSCQueryAttribute.VALUE and node.access in (OSCAccess.NO_VALUE,
                                                                         OSCAccess.WRITEONLY_VALUE):
                self._respond(204, "")
                return
            body = str(node.to_json(attribute))
        self._respond(200, body)

    def _respond(self, code: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if code == 200 else "text/plain; charset=utf-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if code != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and code != 204:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        log.debug("OSCQuery HTTP %s: " + format, self.client_address[0], *args)


class OscQueryHttpServer(ThreadingHTTPServer):
    """python-oscquery's documents behind a handler that serves only them (see the module docstring).

    Args:
        address_space: python-oscquery's ``OSCAddressSpace`` (the tree).
        host_info: its ``OSCHostInfo`` (may be set later, before serving).
        address: where to listen; 127.0.0.1 on a free port by default.
        max_connections: connections served at once; more are closed at once.
        read_timeout_s: longest wait for the client to send something, in seconds.
        deadline_s: longest life of one connection, in seconds (trickled requests end there).
        clock: monotonic clock in seconds (injectable for tests).
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # listen() backlog: connections past the cap are accepted and closed, not left to retry

    def __init__(self, address_space: Any, host_info: Any, address: tuple[str, int] = (LOOPBACK, 0), *,
                 max_connections: int = 16, read_timeout_s: float = 2.0, deadline_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(address, _Handler)
        self.address_space = address_space
        self.host_info = host_info
        self.max_connections = max_connections
        self.read_timeout_s = read_timeout_s
        self.deadline_s = deadline_s
        self.clock = clock
        self.refused = 0  # connections closed because max_connections were open
        self._open: dict[socket.socket, float] = {}  # connection -> when it must be over
        self._lock = threading.Lock()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Admit a loopback client while fewer than ``max_connections`` are open (serve thread)."""
        try:
            if not ipaddress.ip_address(client_address[0]).is_loopback:
                return False
        except (ValueError, IndexError, TypeError):
            return False
        with self._lock:
            if len(self._open) >= self.max_connections:
                self.refused += 1
                if self.refused == 1 or self.refused % 100 == 0:
                    log.warning("OSCQuery HTTP: %d connections open, closing new ones (%d so far)",
                                self.max_connections, self.refused)
                return False
            self._open[request] = self.clock() + self.deadline_s
        return True

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        """Each poll of ``serve_forever``: cut connections past their deadline (their thread then ends)."""
        now = self.clock()
        with self._lock:
            late = [r for r, deadline in self._open.items() if deadline < now]
        for r in late:
            try:
                r.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away or was cut: one debug line, not a traceback on stderr."""
        log.debug("OSCQuery HTTP: connection from %s ended with an error", client_address, exc_info=True)
