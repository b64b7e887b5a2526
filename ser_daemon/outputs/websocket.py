"""WebSocket server that broadcasts emotion states to any number of clients.

Each client has its own bounded queue and its own sender task: a client that
reads slowly (or not at all) only loses its own oldest messages, counted in
``client_dropped``, and never holds up the others or the audio path.  The
processing thread hands states over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import logging
import secrets
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from ..bounded import loads_json
from ..core.mood_stage import MoodUpdate
from ..core.state import EmotionState
from ..net.endpoints import Endpoint, is_loopback
from ..net.oscquery_http import host_allowed
from ..net.websocket_server import (
    AccessPolicy,
    LogLimiter,
    check_request,
    client_name,
    close_server,
    listen,
    local_port,
    method_not_allowed,
    warn_limited,
)
from .messages import dumps, state_json, status_json, with_client_dropped
from .mood_messages import update_messages

__all__ = ["WsBroadcaster", "WsOutput"]

log = logging.getLogger(__name__)



@dataclass(eq=False)
class _Client:
    conn: ServerConnection
    queue: collections.deque[str]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0
    closed: bool = False
    web: bool = False  # connected to the web view's endpoint (its page), not the plain --ws one
    host: str = "?"  # the peer's address
    page_key: bool = False  # presented the page's per-run key (or the token): may use Calibrate


# A control handler: (client, message) -> None; ValueError for a malformed message (closed with 1007).
ControlHandler = Callable[[_Client, dict[str, Any]], Awaitable[None]]


WEB_FILES = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js", "/style.css": "style.css"}
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8"}


class WsBroadcaster:
    """Serves the hello message and then every state as JSON text, on one or more endpoints.

    Args:
        hello: the first message each client gets.
        queue_len: messages queued per client before its oldest is dropped.
        policy: connection limits and access control.
    """

    def __init__(self, hello: dict[str, Any], queue_len: int = 64, policy: AccessPolicy | None = None) -> None:
        self.hello_text = dumps(hello)
        self.queue_len = queue_len
        self.policy = policy or AccessPolicy()
        self.clients: set[_Client] = set()
        self.total_dropped = 0
        self.connections_total = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self._servers: list[Server] = []
        self._count_changed = asyncio.Event()
        self.port: int | None = None
        self.ports: list[int] = []
        self._own_origins: set[str] = set()
        self.log_limiter = LogLimiter()
        self._web_ports: set[int] = set()
        self._web_hosts: dict[int, tuple[str, ...]] = {}  # loopback web port -> names its Host may give
        # Written into the page each run; a client that shows it (or the token) may calibrate.
        self.page_key = secrets.token_urlsafe(18)
        # Client messages of these types are commands (by "type"); all other JSON is ignored.
        self.controls: dict[str, ControlHandler] = {}
        self.on_client_gone: Callable[[_Client], None] | None = None

    async def start(self, endpoint: Endpoint, web: bool = False) -> int:
        """Listen on ``endpoint``; with ``web`` also serve the live page there. Returns the port."""
        what = "the web view" if web else "WebSocket clients"
        server, port = await listen(self._handle, endpoint, self._make_gate(web), self.policy.max_message_bytes,
                                    what, max_queue=4)
        self._servers.append(server)
        self.ports.append(port)
        if self.port is None:
            self.port = port
        if web:
            self._web_ports.add(port)
            for host in ("127.0.0.1", "localhost", endpoint.host):
                self._own_origins.add(f"http://{host}:{port}")
            if is_loopback(endpoint.host):  # DNS rebinding: only our own names (on another interface a token guards)
                self._web_hosts[port] = ("127.0.0.1", "localhost", endpoint.host.strip("[]").lower())
        log.info("%s on %s:%s", "web view" if web else "WebSocket server", endpoint.host, port)
        return port

    def _make_gate(self, web: bool):  # type: ignore[no-untyped-def]
        def gate(conn: ServerConnection, request: Request) -> Response | None:
            path = request.path.partition("?")[0]
            port = local_port(conn)
            if web and port in self._web_hosts and not host_allowed(request.headers.get("Host"), port,
                                                                    self._web_hosts[port]):
                self.refused["host"] += 1
                return conn.respond(HTTPStatus.MISDIRECTED_REQUEST, "This server answers to 127.0.0.1 and localhost.\n")
            if web and "websocket" not in ",".join(request.headers.get_all("Upgrade")).lower():
                if request.method not in ("GET", "HEAD"):
                    return method_not_allowed(conn, self.refused)
                if path in WEB_FILES:
                    return self._static(conn, WEB_FILES[path], head=request.method == "HEAD")
                if path == "/favicon.ico":  # browsers always ask; answer quietly
                    return Response(HTTPStatus.NO_CONTENT, "No Content", Headers(), b"")
            return check_request(conn, request, self.policy, len(self.clients), self._own_origins, self.refused,
                                 self.log_limiter)

        return gate

    def _static(self, conn: ServerConnection, name: str, head: bool = False) -> Response:
        try:
            body = (resources.files("ser_daemon") / "web" / name).read_bytes()
        except FileNotFoundError:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not found.\n")
        if name == "index.html":
            body = body.replace(b'<meta name="ser-page-key" content="">',
                                f'<meta name="ser-page-key" content="{self.page_key}">'.encode())
        headers = Headers()
        headers["Content-Type"] = _CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        headers["Content-Length"] = str(len(body))
        headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Content-Security-Policy"] = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'"
        return Response(HTTPStatus.OK, "OK", headers, b"" if head else body)

    async def _handle(self, conn: ServerConnection) -> None:
        if len(self.clients) >= self.policy.max_clients:  # raced past the gate
            await conn.close(CloseCode.TRY_AGAIN_LATER, "too many clients")
            return
        client = _Client(conn, collections.deque(maxlen=self.queue_len), web=local_port(conn) in self._web_ports,
                         host=client_name(conn), page_key=self._shows_page_key(conn))
        client.queue.append(self.hello_text)
        client.ready.set()
        self.clients.add(client)
        self.connections_total += 1
        self._count_changed.set()
        reader = asyncio.create_task(self._drain_incoming(client))

        def on_reader_done(_: asyncio.Task) -> None:
            # The connection is gone (closed, reset, or closed by us): wake the sender to leave.
            client.closed = True
            client.ready.set()

        reader.add_done_callback(on_reader_done)
        try:
            while not client.closed:
                await client.ready.wait()
                client.ready.clear()
                while client.queue and not client.closed:
                    await conn.send(client.queue.popleft())
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            self.clients.discard(client)
            if self.on_client_gone is not None:
                self.on_client_gone(client)
            self._count_changed.set()

    def _shows_page_key(self, conn: ServerConnection) -> bool:
        """Whether the handshake carried this run's page key, or the token (which then every client showed)."""
        if self.policy.token is not None:
            return True
        request = getattr(conn, "request", None)
        query = urllib.parse.parse_qs(request.path.partition("?")[2]) if request is not None else {}
        given = (query.get("key") or [""])[0]
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.page_key.encode("utf-8"))

    async def _drain_incoming(self, client: _Client) -> None:
        """Text is ignored unless it is a control message (see ``controls``); binary or non-JSON closes (1003/1007).

        A control message of a known type that its handler finds malformed closes too (1007), like any garbage.
        """
        conn = client.conn
        try:
            async for message in conn:
                if isinstance(message, bytes):
                    self.refused["binary"] += 1
                    await conn.close(CloseCode.UNSUPPORTED_DATA, "this endpoint takes no binary messages")
                    return
                try:
                    obj = loads_json(message)
                except ValueError:
                    self.refused["garbage"] += 1
                    await conn.close(CloseCode.INVALID_DATA, "messages must be JSON")
                    return
                kind = obj.get("type") if isinstance(obj, dict) else None
                handler = self.controls.get(kind) if isinstance(kind, str) else None
                if handler is None:
                    continue
                try:
                    await handler(client, obj)
                except ValueError as exc:
                    self.refused["bad_control"] += 1
                    warn_limited(conn, self.log_limiter, "bad_control", "closed a client that sent a bad %s message: %s",
                          kind, exc)
                    await conn.close(CloseCode.INVALID_DATA, f"invalid {kind} message"[:100])
                    return
        except ConnectionClosed:
            pass

    def send_to(self, client: _Client, message: dict[str, Any]) -> None:
        """Queue a message for one client only (event loop thread); a gone client is skipped."""
        if client.closed or client not in self.clients:
            return
        if len(client.queue) == client.queue.maxlen:
            client.dropped += 1
            self.total_dropped += 1
        client.queue.append(dumps(message))
        client.ready.set()

    def broadcast(self, state: EmotionState, weights: Mapping[str, Mapping[str, float]] | None = None) -> None:
        """Queue ``state`` for every client (call in the event loop's thread)."""
        if not self.clients:
            return
        self._enqueue(dumps(state_json(state, weights=weights)), per_client_drops=True)

    def broadcast_message(self, message: dict[str, Any]) -> None:
        """Queue any other message (e.g. a status) for every client."""
        self._enqueue(dumps(message), per_client_drops=False)

    def _enqueue(self, text: str, per_client_drops: bool) -> None:
        """Append to every client's bounded queue, counting what falls off the front."""
        for c in self.clients:
            if len(c.queue) == c.queue.maxlen:
                c.dropped += 1
                self.total_dropped += 1
            # A state is encoded once for everyone; only this client's drop count differs.
            c.queue.append(with_client_dropped(text, c.dropped) if per_client_drops else text)
            c.ready.set()

    async def wait_for_clients(self, n: int) -> None:
        """Return once at least ``n`` clients are connected."""
        while len(self.clients) < n:
            self._count_changed.clear()
            await self._count_changed.wait()

    async def flush(self, timeout_s: float) -> None:
        """Give clients up to ``timeout_s`` to receive what is queued."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while any(c.queue for c in self.clients) and loop.time() < end:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        servers, self._servers = self._servers, []
        await asyncio.gather(*(close_server(s, "WebSocket server") for s in servers))


class WsOutput:
    """The broadcaster as an output: states and status messages to every client (event loop thread).

    States arrive from the processing thread: wrap this in :class:`~ser_daemon.outputs.base.OnLoop`.
    The broadcaster itself is closed with its servers (awaited), not here.
    """

    def __init__(self, broadcaster: WsBroadcaster) -> None:
        self.broadcaster = broadcaster

    def send_state(self, state: EmotionState, weights: Mapping[str, Mapping[str, float]], now: float) -> None:
        self.broadcaster.broadcast(state, weights)

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        self.broadcaster.broadcast_message(status_json(stream, status, detail, now))

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        for message in update_messages(update):
            self.broadcaster.broadcast_message(message)

    def close(self) -> None:
        pass
