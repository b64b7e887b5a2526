"""An ingress replica's own WebSocket port for multiplexed connections: no Serve proxy in between.

Through Serve's HTTP proxy every WebSocket message crosses two processes (client -> proxy ->
replica, each hop a Ray call); measured, the proxy alone cost more CPU than the replica's front
end per talker (benchmarks/RESULTS.md, "Many machines").  A voice server holds its few
multiplexed connections for hours, so it can afford one more step at connect time: it asks the
application (through the proxy, ``GET /endpoints``) where the ingress replicas listen and
connects to one of them directly.  The replica serves ``ser-ingest-mux.v1`` there with the very
same :class:`~.ingress_mux.MuxConnection` as behind the proxy; today's one-stream protocol stays
behind the proxy only (a handshake that offers no multiplexed subprotocol is refused, HTTP 400).

The server runs in the replica's own event loop (the one Serve runs its requests in), so the
replica's stream table and registry claims need no lock.  Each replica announces its address to
the registry at every lease renewal; a dead replica's address lapses with its leases.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Union

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..net.ingest_protocol import ProtocolError, close_reason
from ..net.mux_wire import SUBPROTOCOLS
from .ingress_mux import MuxConnection
from .settings import INGEST_MESSAGE_BYTES

__all__ = ["DirectServer"]

log = logging.getLogger(__name__)


class _Socket:
    """A websockets connection as a :class:`~.ingress_mux.MuxSocket`."""

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn

    async def receive(self) -> Optional[Union[str, bytes]]:
        try:
            return await self.conn.recv()
        except ConnectionClosed:
            return None

    async def send_text(self, text: str) -> None:
        await self.conn.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.conn.send(data)


class DirectServer:
    """The replica's multiplexed-ingest server on ``host:port`` (port 0: any free port)."""

    def __init__(self, host_replica: Any, host: str, port: int) -> None:
        self.replica = host_replica
        self.host, self.port = host, port
        self.server: Server | None = None

    @property
    def url(self) -> str | None:
        """``ws://host:port/`` once listening."""
        return None if self.server is None else f"ws://{self.host}:{self.port}/"

    async def start(self) -> None:
        self.server = await serve(self._serve, self.host, self.port, subprotocols=list(SUBPROTOCOLS),
                                  max_size=INGEST_MESSAGE_BYTES, compression=None)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        log.info("ingress replica serves multiplexed ingest directly on %s", self.url)

    async def _serve(self, conn: ServerConnection) -> None:
        # A client that offered no ser-ingest-mux subprotocol was refused at the handshake (HTTP 400).
        self.replica._ensure_renewer()
        try:
            await MuxConnection(self.replica, _Socket(conn), str(conn.subprotocol)).run()
        except ProtocolError as exc:
            self.replica.metrics.refused.inc(tags={"code": str(exc.code)})
            await conn.close(exc.code, close_reason(exc))
        except ConnectionClosed:
            pass
        except Exception:  # a bug: this connection only
            log.exception("direct ingest connection failed")
            await conn.close(1011, "internal error: reconnect")

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
