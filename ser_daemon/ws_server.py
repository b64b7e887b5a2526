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
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from .bounded import loads_json
from .config import Endpoint, is_loopback
from .errors import ConfigError
from .messages import dumps, state_json
from .oscquery_http import host_allowed
from .state import EmotionState

__all__ = ["WsBroadcaster", "AccessPolicy", "LogLimiter", "check_request", "listen", "close_server"]

log = logging.getLogger(__name__)

_DROP_TAIL = '"client_dropped":0}'


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


@dataclass(frozen=True)
class AccessPolicy:
    """Who may connect, and how much they may send.

    Attributes:
        max_clients: connections beyond this are refused (HTTP 503).
        max_message_bytes: a client message larger than this closes it (1009).
        token: when set, clients must send it (``?token=`` or ``Authorization:
            Bearer``); compared in constant time.  Required off loopback.
        allowed_origins: browser origins allowed besides this server's own
            pages; a request with any other Origin header is refused (403), so
            a web page the user visits cannot read the stream from localhost.
    """

    max_clients: int = 64
    max_message_bytes: int = 64 * 1024
    token: str | None = None
    allowed_origins: tuple[str, ...] = ()


WEB_FILES = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js", "/style.css": "style.css"}
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8"}


class LogLimiter:
    """At most one log line per client and kind per ``interval_s``: refusals must not flood the log.

    Args:
        interval_s: seconds between two lines for the same (client, kind).
        max_keys: clients remembered (oldest forgotten first), so the table stays bounded.
        clock: monotonic clock (injected in tests).
    """

    def __init__(self, interval_s: float = 60.0, max_keys: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        self._last: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()
        self.suppressed = 0

    def allow(self, client: str, kind: str) -> bool:
        """Whether a line about ``kind`` for ``client`` may be logged now."""
        now = self.clock()
        key = (client, kind)
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self.suppressed += 1
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        return True


def _local_port(conn: ServerConnection) -> int | None:
    try:
        return int(conn.local_address[1])
    except (TypeError, IndexError, AttributeError, ValueError):
        return None


def _client(conn: ServerConnection) -> str:
    try:
        return str(conn.remote_address[0])
    except (TypeError, IndexError, AttributeError):
        return "?"


def _warn(conn: ServerConnection, limiter: LogLimiter, kind: str, msg: str, *args: Any) -> None:
    if limiter.allow(_client(conn), kind):
        log.warning(msg + " (from %s; said at most once a minute per client)", *args, _client(conn))


class _Duplicated(ValueError):
    pass


def _one(headers: Headers, name: str) -> str | None:
    """A header that must appear at most once (several Origins or Authorizations are an attack or a bug)."""
    values = headers.get_all(name)
    if len(values) > 1:
        raise _Duplicated(name)
    return values[0] if values else None


def bad_request(conn: ServerConnection, refused: collections.Counter[str], why: str, limiter: LogLimiter) -> Response:
    """HTTP 400 with one log line per client per minute at most."""
    refused["bad_request"] += 1
    _warn(conn, limiter, "bad_request", "refused a bad HTTP request: %s", why)
    return conn.respond(HTTPStatus.BAD_REQUEST, f"Bad request: {why}.\n")


def method_not_allowed(conn: ServerConnection, refused: collections.Counter[str]) -> Response:
    refused["method"] += 1
    response = conn.respond(HTTPStatus.METHOD_NOT_ALLOWED, "Only GET and HEAD are served here.\n")
    response.headers["Allow"] = "GET, HEAD"
    return response


def check_request(
    conn: ServerConnection,
    request: Request,
    policy: AccessPolicy,
    n_clients: int,
    own_origins: set[str],
    refused: collections.Counter[str],
    limiter: LogLimiter,
) -> Response | None:
    """The access rules every WebSocket endpoint applies at the handshake (None: let it in).

    ``limiter`` (one per server) keeps refusals to one log line per client per minute.
    """
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(conn, refused)
    try:
        origin = _one(request.headers, "Origin")
        if policy.token is not None:
            _one(request.headers, "Authorization")
    except _Duplicated as exc:
        return bad_request(conn, refused, f"duplicated {exc} header", limiter)
    query = request.path.partition("?")[2]
    if "websocket" not in ",".join(request.headers.get_all("Upgrade")).lower():
        refused["not_found"] += 1
        return conn.respond(HTTPStatus.NOT_FOUND, "Not found: this port serves WebSocket clients.\n")
    if origin is not None and origin not in own_origins and origin not in policy.allowed_origins:
        refused["origin"] += 1
        _warn(conn, limiter, "origin", "refused a WebSocket client from origin %r (allow it with --ws-allow-origin)", origin)
        return conn.respond(HTTPStatus.FORBIDDEN, "Origin not allowed.\n")
    if policy.token is not None and not _token_ok(request, query, policy.token):
        refused["token"] += 1
        return conn.respond(HTTPStatus.UNAUTHORIZED, "A valid token is required.\n")
    if n_clients >= policy.max_clients:
        refused["full"] += 1
        return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Too many clients.\n")
    return None


async def listen(
    handler: Callable[[ServerConnection], Awaitable[None]],
    endpoint: Endpoint,
    gate: Callable[[ServerConnection, Request], Response | None],
    max_message_bytes: int,
    what: str,
    max_queue: int = 16,
    compression: str | None = "deflate",
) -> tuple[Server, int]:
    """Start a WebSocket server with the daemon's common settings; return it and its port.

    The gate runs inside a guard: whatever goes wrong in it is answered with HTTP 400 and at
    most one log line per client per minute, never a 500 with a traceback per request.

    Raises:
        ConfigError: the address cannot be listened on (in use, not local, ...).
    """
    refused_unexpected: collections.Counter[str] = collections.Counter()
    limiter = LogLimiter()

    def guarded(conn: ServerConnection, request: Request) -> Response | None:
        try:
            return gate(conn, request)
        except Exception as exc:  # a malformed request must cost one line, not a traceback
            return bad_request(conn, refused_unexpected, f"{type(exc).__name__}", limiter)

    try:
        server = await serve(
            handler, endpoint.host, endpoint.port, process_request=guarded, max_size=max_message_bytes,
            create_connection=_Connection,
            max_queue=max_queue, close_timeout=0.5, ping_interval=20, ping_timeout=20, compression=compression,
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen for {what} on {endpoint}: {exc.strerror or exc}") from None
    return server, next(iter(server.sockets)).getsockname()[1]


class _Protocol(ServerProtocol):
    """Ignores bytes a client sends after its HTTP request and before our answer.

    Without this, websockets parses them as WebSocket frames while still answering the
    request, fails the connection, then trips over its own assertion when the answer goes
    out (an AssertionError traceback in the log per such request).  A conforming client
    sends nothing before the answer; a pipelining HTTP client gets the first answer.
    """

    _request_done = False
    _tail = b""

    def receive_data(self, data: bytes) -> None:
        if self.state is State.CONNECTING:
            if self._request_done:
                return
            buf = self._tail + data
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                self._request_done = True
                data = data[: len(data) - (len(buf) - (end + 4))]
            else:
                self._tail = buf[-3:]
        super().receive_data(data)


class _Connection(ServerConnection):
    def __init__(self, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        protocol.__class__ = _Protocol  # same object, one more method: see _Protocol
        super().__init__(protocol, *args, **kwargs)


async def close_server(server: Server, what: str) -> None:
    """Close a server, waiting at most a second for its connections."""
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), timeout=1.0)
    except asyncio.TimeoutError:
        log.warning("%s did not close within 1 s", what)


def _token_ok(request: Request, query: str, token: str) -> bool:
    given = ""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        given = auth[len("Bearer ") :].strip()
    else:
        for part in query.split("&"):
            key, _, value = part.partition("=")
            if key == "token":
                given = urllib.parse.unquote(value)
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


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
            port = _local_port(conn)
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
        client = _Client(conn, collections.deque(maxlen=self.queue_len), web=_local_port(conn) in self._web_ports,
                         host=_client(conn), page_key=self._shows_page_key(conn))
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
                    _warn(conn, self.log_limiter, "bad_control", "closed a client that sent a bad %s message: %s",
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
            if per_client_drops and c.dropped and text.endswith(_DROP_TAIL):
                # The state was encoded once for everyone; only this client's count differs.
                c.queue.append(text[: -len(_DROP_TAIL)] + f'"client_dropped":{c.dropped}}}')
            else:
                c.queue.append(text)
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
