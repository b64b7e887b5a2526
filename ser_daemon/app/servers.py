"""The daemon's servers: WebSocket clients and the web view, and ``--ingest``, under one access policy."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING, Any

from ..net.ingest import IngestServer, IngestSource
from ..net.websocket_server import AccessPolicy
from ..outputs.ingest_return import state_message
from ..outputs.mapping import ExpressionMapping
from ..outputs.websocket import WsBroadcaster
from .config import ServerSettings

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Servers", "access_policy", "INGEST_RING_SECONDS", "INGEST_MESSAGE_BYTES"]

log = logging.getLogger(__name__)

INGEST_RING_SECONDS = 1.0  # remote audio is drained as it arrives (the thread wakes on each message)
INGEST_MESSAGE_BYTES = 256 * 1024  # > 1 s of 48 kHz stereo 16-bit: more would not fit the ring anyway


def access_policy(cfg: ServerSettings) -> AccessPolicy:
    """Who may connect to any of the daemon's WebSocket ports (one token, one origin list, one limit)."""
    return AccessPolicy(max_clients=cfg.max_clients, max_message_bytes=cfg.max_message_bytes,
                        token=cfg.ws_token, allowed_origins=cfg.ws_allow_origin)


class Servers:
    """Starts and closes the servers the config asks for; ``ws`` and ``ingest`` are None until then.

    ``cfg`` is the config's servers part (``DaemonConfig.parts.servers``; a whole DaemonConfig also works).
    """

    def __init__(self, cfg: ServerSettings) -> None:
        self.cfg = cfg
        self.policy = access_policy(cfg)
        self.ws: WsBroadcaster | None = None
        self.ingest: IngestServer | None = None

    async def start_websocket(self, hello: dict[str, Any], burst: int) -> int | None:
        """Serve ``--ws`` and ``--web``; return the web view's port (None without ``--web``).

        Args:
            hello: the first message of each client.
            burst: states one tick can emit at once (one per stream): a client that reads
                promptly must not lose any of them to its queue bound.
        """
        cfg = self.cfg
        self.ws = WsBroadcaster(hello, queue_len=cfg.ws_queue + burst, policy=self.policy)
        if cfg.ws is not None:
            await self.ws.start(cfg.ws)
        return await self.ws.start(cfg.web, web=True) if cfg.web is not None else None

    async def wait_for_clients(self) -> None:
        """``--wait-clients N``: hold the start until N WebSocket clients are connected."""
        if self.ws is not None and self.cfg.wait_clients:
            log.info("waiting for %d WebSocket client(s)", self.cfg.wait_clients)
            await self.ws.wait_for_clients(self.cfg.wait_clients)

    async def start_ingest(self, engine: Engine, mapping: ExpressionMapping) -> IngestServer:
        """Serve ``--ingest``: each remote client's audio becomes one of ``engine``'s streams.

        A multiplexed stream's states go back on its connection as the WebSocket's state messages
        (blendshape weights from ``mapping``), once per tick of the engine (``IngestServer.deliver``
        and ``flush``).
        """
        add_stream, labels = engine.add_remote, engine.bundle.labels

        def started(source: IngestSource) -> None:
            add_stream(source.name, source, source.ring, source.format)
            log.info("ingest stream %s: %d Hz, %d ch", source.name, source.rate, source.channels)

        policy = dataclasses.replace(self.policy, max_message_bytes=max(self.policy.max_message_bytes,
                                                                        INGEST_MESSAGE_BYTES))
        self.ingest = IngestServer(policy, started, engine.is_live, engine.wake.set, ring_seconds=INGEST_RING_SECONDS,
                                   max_streams=self.cfg.max_streams, labels=labels,
                                   state_message=functools.partial(state_message, mapping))
        assert self.cfg.ingest is not None
        await self.ingest.start(self.cfg.ingest)
        engine.on_tick_end = self.ingest.flush
        return self.ingest

    def client_count(self) -> int:
        return len(self.ws.clients) if self.ws is not None else 0

    async def close(self) -> None:
        """Ingest first (no new streams), then the WebSocket clients get what is queued (0.3 s at most)."""
        if self.ingest is not None:
            await self.ingest.close()
        if self.ws is not None:
            await self.ws.flush(0.3)
            await self.ws.close()
