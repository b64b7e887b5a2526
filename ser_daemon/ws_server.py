"""WebSocket server that broadcasts emotion states to any number of clients.

Each client has its own bounded queue and its own sender task: a client that
reads slowly (or not at all) only loses its own oldest messages, counted in
``client_dropped``, and never holds up the others or the audio path.  The
processing thread hands states over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from .config import Endpoint
from .errors import ConfigError
from .messages import dumps, state_json
from .state import EmotionState

__all__ = ["WsBroadcaster"]

log = logging.getLogger(__name__)

_DROP_TAIL = '"client_dropped":0}'


@dataclass(eq=False)
class _Client:
    conn: ServerConnection
    queue: collections.deque[str]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0


class WsBroadcaster:
    """Serves the hello message and then every state as JSON text.

    Args:
        hello: the first message each client gets.
        queue_len: messages queued per client before its oldest is dropped.
        max_message_bytes: largest message a client may send us.
    """

    def __init__(self, hello: dict[str, Any], queue_len: int = 64, max_message_bytes: int = 64 * 1024) -> None:
        self.hello_text = dumps(hello)
        self.queue_len = queue_len
        self.max_message_bytes = max_message_bytes
        self.clients: set[_Client] = set()
        self.total_dropped = 0
        self.connections_total = 0
        self._server: Server | None = None
        self._count_changed = asyncio.Event()
        self.port: int | None = None

    async def start(self, endpoint: Endpoint) -> None:
        """Listen on ``endpoint`` (port 0 picks a free port, see :attr:`port`)."""
        try:
            self._server = await serve(
                self._handle,
                endpoint.host,
                endpoint.port,
                max_size=self.max_message_bytes,
                close_timeout=0.5,
                ping_interval=20,
                ping_timeout=20,
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen for WebSocket clients on {endpoint}: {exc.strerror or exc}") from None
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("WebSocket server on %s:%s", endpoint.host, self.port)

    async def _handle(self, conn: ServerConnection) -> None:
        client = _Client(conn, collections.deque(maxlen=self.queue_len))
        client.queue.append(self.hello_text)
        client.ready.set()
        self.clients.add(client)
        self.connections_total += 1
        self._count_changed.set()
        reader = asyncio.create_task(self._drain_incoming(conn))
        try:
            while True:
                await client.ready.wait()
                client.ready.clear()
                while client.queue:
                    await conn.send(client.queue.popleft())
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            self.clients.discard(client)
            self._count_changed.set()

    async def _drain_incoming(self, conn: ServerConnection) -> None:
        """Read and discard what clients send (this endpoint takes no commands yet)."""
        try:
            async for _ in conn:
                pass
        except ConnectionClosed:
            pass

    def broadcast(self, state: EmotionState, weights: Mapping[str, Mapping[str, float]] | None = None) -> None:
        """Queue ``state`` for every client (call in the event loop's thread)."""
        if not self.clients:
            return
        text = dumps(state_json(state, weights=weights))
        for c in self.clients:
            if len(c.queue) == c.queue.maxlen:
                c.dropped += 1
                self.total_dropped += 1
            if c.dropped and text.endswith(_DROP_TAIL):
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
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)
            except asyncio.TimeoutError:
                log.warning("WebSocket server did not close within 1 s")
            self._server = None
