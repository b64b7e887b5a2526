"""The WebSocket server every endpoint shares: access rules at the handshake, listening, closing.

Both the state broadcaster (``outputs/websocket.py``) and the ingest server (``net/ingest.py``) listen
through :func:`listen` and let clients in through :func:`check_request`, so one policy (token, origins,
client and message limits) guards every port.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import logging
import time
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Sequence

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from ..errors import ConfigError
from ..log_once import LogOnce
from .endpoints import Endpoint

__all__ = ["AccessPolicy", "LogLimiter", "check_request", "listen", "close_server", "local_port",
           "client_name", "warn_limited", "method_not_allowed", "bad_request"]

log = logging.getLogger(__name__)


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


class LogLimiter(LogOnce):
    """At most one log line per client and kind per ``interval_s``: refusals must not flood the log.

    A :class:`~ser_daemon.log_once.LogOnce` that repeats its line after a minute: ``allow(client, kind)``.

    Args:
        interval_s: seconds between two lines for the same (client, kind).
        max_keys: clients remembered (oldest forgotten first), so the table stays bounded.
        clock: monotonic clock (injected in tests).
    """

    def __init__(self, interval_s: float = 60.0, max_keys: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval_s, max_keys, clock)  # allow(client, kind)


def local_port(conn: ServerConnection) -> int | None:
    try:
        return int(conn.local_address[1])
    except (TypeError, IndexError, AttributeError, ValueError):
        return None


def client_name(conn: ServerConnection) -> str:
    try:
        return str(conn.remote_address[0])
    except (TypeError, IndexError, AttributeError):
        return "?"


def warn_limited(conn: ServerConnection, limiter: LogLimiter, kind: str, msg: str, *args: Any) -> None:
    if limiter.allow(client_name(conn), kind):
        log.warning(msg + " (from %s; said at most once a minute per client)", *args, client_name(conn))


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
    warn_limited(conn, limiter, "bad_request", "refused a bad HTTP request: %s", why)
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
        warn_limited(conn, limiter, "origin", "refused a WebSocket client from origin %r (allow it with --ws-allow-origin)", origin)
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
    select_subprotocol: Callable[[ServerConnection, Sequence[str]], str | None] | None = None,
) -> tuple[Server, int]:
    """Start a WebSocket server with the daemon's common settings; return it and its port.

    ``select_subprotocol`` picks among the subprotocols a client offers (None: none is ever agreed,
    whatever the client offers).

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
            select_subprotocol=select_subprotocol,  # type: ignore[arg-type]
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
