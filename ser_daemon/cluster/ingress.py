"""The ingress deployment: the ``--ingest`` protocol over Ray Serve's WebSocket proxy.

A connection that offers the ``ser-ingest-mux.v1`` subprotocol carries many streams instead
(``ingress_mux.py``, the daemon's protocol and rules); what follows is about today's protocol,
one stream per connection.

Each connection's per-stream state (front end, speaker statistics, smoother: a
:class:`~ser_daemon.core.pipeline.StreamProcessor`) lives in the replica holding the
connection; the windows it makes go to the model deployment, which batches
them with every other replica's; the states come back on the same connection
as the single daemon's state messages (same JSON, same order, same values).

The protocol rules are the daemon's own (:mod:`ser_daemon.net.ingest_protocol`),
so a bad start message is refused with the same close code and reason.  What
differs from the daemon, and why:

- states go back on the ingest connection (the daemon broadcasts them on its
  ``--ws`` socket): there is no one state socket across replicas;
- audio is analysed as each message arrives, in the replica's event loop (the
  daemon's ring and processing thread hand audio between threads; here there
  is one thread, so no ring);
- on ``stop`` the replica answers every pending decision and the final state,
  then closes with 1000 "stopped";
- a start message may name an OSC target (``"osc": "HOST:PORT"``); when the
  operator allowed its host (``--allow-stream-osc``) every state of that stream,
  the final one included, also goes there as the daemon's default OSC (generic
  scheme, one bundle per state) from the replica's one UDP socket
  (:mod:`.stream_osc`); otherwise the start message is refused with 1008;
- with the mood stage on (``ClusterSettings.mood``, ``ser-daemon cluster --mood``),
  each state is followed on the connection by its stream's ``mood`` and ``event``
  messages, as the daemon's ``--mood`` sends them on ``--ws`` (and to the stream's
  OSC target as the generic scheme's ``/ser/mood/...``);
- a replica that dies outright drops its connections: Serve's proxy ends them
  without a close frame (1006, README "Many machines"); a replica removed by a
  scale-down or redeploy keeps serving its connections while Serve drains it, for
  its graceful_shutdown_timeout_s (20 s by default), and then they end the same
  way (measured: 1006 after 20.5 s; the streams on the other replica go on).
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures at run time.

import asyncio
import logging
import os
import time
from typing import Any, Optional, Union

from fastapi import FastAPI, WebSocket
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.websockets import WebSocketDisconnect

from ..core.mood_stage import MoodStage
from ..core.pipeline import StreamProcessor
from ..core.state import EmotionState
from ..model.bundle import ModelBundle, load_bundle
from ..net.endpoints import Endpoint
from ..net.ingest_protocol import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    IDLE_TIMEOUT_REASON,
    IDLE_TIMEOUT_S,
    START_TIMEOUT_REASON,
    START_TIMEOUT_S,
    Audio,
    IngestSession,
    OscAllowlist,
    ProtocolError,
    Started,
    close_reason,
    parse_start,
)
from ..net.mux_wire import SUBPROTOCOLS, select_subprotocol
from ..outputs.mapping import ExpressionMapping, load_mapping
from ..outputs.messages import dumps, state_json
from ..outputs.mood_messages import update_messages
from .autoscale import STREAMS_METRIC
from .batcher import WindowBatcher
from .direct import DirectServer
from .ingress_mux import MuxConnection
from .settings import INGEST_MESSAGE_BYTES, ClusterSettings
from .stream_osc import StreamOscOut

__all__ = ["Ingress", "CLOSE_TOO_BIG", "CLOSE_INTERNAL"]

log = logging.getLogger(__name__)

CLOSE_TOO_BIG = 1009  # as websockets' max_size does in the daemon
CLOSE_INTERNAL = 1011  # the model deployment failed this stream's decision: reconnect

PENDING_DECISIONS = 8  # windows in flight per stream; more means the model lags 2 s behind: back-pressure
DRAIN_S = 5.0  # after stop: longest wait for the pending decisions before the final state

api = FastAPI()


class _Metrics:
    """Per-decision latency and drops in Ray's metrics (scraped with Serve's own).

    Not tagged by stream: 100,000 streams would be 100,000 time series.  Ray adds the
    deployment and replica tags.
    """

    def __init__(self) -> None:
        from ray.serve.metrics import Counter, Gauge, Histogram

        self.latency = Histogram(
            "ser_decision_latency_ms", description="audio arrival to state sent, per decision",
            boundaries=[5, 10, 20, 30, 50, 75, 100, 150, 250, 500, 1000],
        )
        self.dropped = Counter("ser_dropped_windows", description="windows skipped because a newer one was due")
        self.late = Counter("ser_late_decisions", description="decisions later than the latency budget")
        self.streams = Gauge("ser_streams", description="open ingest streams on this replica")
        self.refused = Counter("ser_refused_connections", description="ingest connections refused",
                               tag_keys=("code",))
        self.osc_errors = Counter("ser_stream_osc_errors", description="per-stream OSC datagrams that failed")

    def decision(self, state: EmotionState, dropped_before: int) -> None:
        self.latency.observe(state.latency_ms)
        if state.dropped_windows > dropped_before:
            self.dropped.inc(state.dropped_windows - dropped_before)
        if state.late:
            self.late.inc()


async def _receive(ws: WebSocket) -> Optional[Union[str, bytes]]:
    """The next message's payload, or None when the client went away."""
    msg = await ws.receive()
    if msg["type"] == "websocket.disconnect":
        return None
    text = msg.get("text")
    if text is not None:
        return text
    return msg.get("bytes") or b""


class _ServeSocket:
    """Serve's WebSocket as a :class:`~.ingress_mux.MuxSocket`."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.receive = lambda: _receive(ws)
        self.send_text = ws.send_text
        self.send_bytes = ws.send_bytes


def _check_size(message: Union[str, bytes]) -> None:
    """Refuse what the daemon's websockets server refuses (its max_size), with its words."""
    size = len(message.encode("utf-8") if isinstance(message, str) else message)
    if size > INGEST_MESSAGE_BYTES:
        raise ProtocolError(f"frame with {size} bytes exceeds limit of {INGEST_MESSAGE_BYTES} bytes", CLOSE_TOO_BIG)


@serve.deployment(name="Ingress")
@serve.ingress(api)
class Ingress:
    """Holds ingest connections; one :class:`StreamProcessor` per stream."""

    def __init__(self, model: DeploymentHandle, registry: DeploymentHandle, settings: ClusterSettings) -> None:
        self.settings = settings
        self.bundle: ModelBundle = load_bundle(settings.model_dir)
        self.mapping: ExpressionMapping = load_mapping(None, self.bundle.labels)
        self.registry = registry
        self.batcher = WindowBatcher(model.remote, settings.ingress_wait_s, settings.max_batch_size)
        ctx = serve.get_replica_context()
        self.owner = f"{ctx.replica_id.unique_id}@{os.getpid()}"
        self.streams: dict[str, Optional[WebSocket]] = {}
        self._claiming: set[str] = set()  # ids whose registry claim is in flight
        self.metrics = _Metrics()
        self.osc_allowlist = OscAllowlist(settings.allow_stream_osc)
        self.osc = StreamOscOut()
        self._renewer: Optional[asyncio.Task] = None
        self.direct: Optional[DirectServer] = None
        if settings.direct_host is not None:  # the replica's own port for multiplexed connections
            self.direct = DirectServer(self, settings.direct_host, settings.direct_port)
            # The constructor runs in the replica's event loop: start there, and renew from now on.
            asyncio.get_running_loop().create_task(self._start_direct())

    async def _start_direct(self) -> None:
        assert self.direct is not None
        await self.direct.start()
        await self.registry.renew.remote(self.owner, list(self.streams), self.direct.url)  # announced now
        self._ensure_renewer()

    # -- lifecycle ------------------------------------------------------------
    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        """Keep this replica's stream ids claimed while it lives (see leases.py)."""
        period = self.settings.lease_s / 4.0
        while True:
            await asyncio.sleep(period)
            try:
                lost = await self.registry.renew.remote(self.owner, list(self.streams),
                                                        None if self.direct is None else self.direct.url)
            except Exception:  # the registry restarts: try again next period
                log.warning("stream registry unreachable; retrying", exc_info=True)
                continue
            for stream in lost:
                log.warning("stream %s was taken by another replica while the registry restarted", stream)

    async def record_autoscaling_stats(self) -> dict[str, float]:
        """Serve's autoscaler counts this replica's open streams, by any path (autoscale.py)."""
        return {STREAMS_METRIC: len(self.streams)}

    # -- one connection -----------------------------------------------------
    @api.websocket("/")
    async def ingest(self, ws: WebSocket) -> None:
        protocol = select_subprotocol(ws.scope.get("subprotocols") or ())
        await ws.accept(subprotocol=protocol)
        self._ensure_renewer()
        try:
            if protocol is None:
                await self._serve(ws)
            else:  # many streams on this connection (ingress_mux.py)
                await MuxConnection(self, _ServeSocket(ws), protocol).run()
        except ProtocolError as exc:
            self.metrics.refused.inc(tags={"code": str(exc.code)})
            await self._close(ws, exc.code, close_reason(exc))
        except (asyncio.TimeoutError, TimeoutError):
            await self._close(ws, CLOSE_POLICY, START_TIMEOUT_REASON)
        except WebSocketDisconnect:
            pass
        except Exception:  # the model failed this stream (the sender closed it with 1011) or a bug: one stream
            log.exception("ingest connection failed")
            await self._close(ws, CLOSE_INTERNAL, "internal error: reconnect")

    @api.get("/endpoints")
    async def endpoints(self) -> dict[str, Any]:
        """Where the ingress replicas serve multiplexed connections directly (empty: through here only)."""
        return {"endpoints": await self.registry.endpoints.remote(), "subprotocols": list(SUBPROTOCOLS)}

    async def _release(self, stream: str) -> None:
        self.streams.pop(stream, None)
        self.metrics.streams.set(len(self.streams))
        try:
            await self.registry.release.remote(stream, self.owner)
        except Exception:
            log.warning("could not release stream %s (its lease expires)", stream, exc_info=True)

    @staticmethod
    async def _close(ws: WebSocket, code: int, reason: str) -> None:
        try:
            await ws.close(code, reason)
        except Exception:  # the client is gone already
            pass

    async def _admit(self, first: Union[str, bytes]) -> tuple[IngestSession, Started]:
        """Validate the start message and claim its id cluster-wide, in the daemon's order of refusals."""
        claimed = False
        try:
            request = parse_start(first)
        except ProtocolError:
            request = None  # the session raises the same error below
        # The registry's owner is this replica, so it would hand an id this replica holds to a
        # second connection here: ids in use or being claimed on this replica are checked first,
        # without awaiting (one event loop: no other connection runs in between).
        mine = (request is not None and (request.osc is None or self.osc_allowlist.allows(request.osc))
                and request.stream not in self.streams and request.stream not in self._claiming)
        if mine:
            assert request is not None
            self._claiming.add(request.stream)
            try:
                claimed = await self.registry.claim.remote(request.stream, self.owner)
            finally:
                self._claiming.discard(request.stream)
        room = lambda: len(self.streams) < self.settings.max_streams_per_replica  # noqa: E731
        session = IngestSession(lambda _s: not claimed, room,
                                f"too many streams on this replica ({self.settings.max_streams_per_replica})",
                                self.osc_allowlist)
        try:
            event = session.receive(first)
        except ProtocolError:
            if claimed and request is not None:
                await self.registry.release.remote(request.stream, self.owner)
            raise
        assert isinstance(event, Started)
        self.streams[event.request.stream] = None  # taken from now on (the socket is set in _stream)
        return session, event

    async def _serve(self, ws: WebSocket) -> None:
        """Run one connection, from the start message to its close."""
        first = await asyncio.wait_for(_receive(ws), START_TIMEOUT_S)
        if first is None:
            return
        _check_size(first)
        session, started = await self._admit(first)
        try:
            await self._stream(ws, session, started)
        finally:
            await self._release(started.request.stream)

    async def _stream(self, ws: WebSocket, session: IngestSession, started: Started) -> None:
        req = started.request
        self.streams[req.stream] = ws
        self.metrics.streams.set(len(self.streams))
        proc = StreamProcessor.from_bundle(req.stream, self.bundle, self.settings.analysis, req.sample_rate,
                                           clock=time.monotonic)
        await ws.send_text(started.reply)
        # One stage per connection: it goes with the stream, also when the stream ends without a stop.
        mood = (None if self.settings.mood is None
                else MoodStage(self.bundle.labels, self.bundle.features.sample_rate, self.settings.mood))
        pending: asyncio.Queue = asyncio.Queue(maxsize=PENDING_DECISIONS)
        sender = asyncio.get_running_loop().create_task(self._send_states(ws, proc, pending, req.osc, mood))
        try:
            index = 0
            while True:
                try:
                    message = await asyncio.wait_for(_receive(ws), IDLE_TIMEOUT_S)
                except (asyncio.TimeoutError, TimeoutError):
                    raise ProtocolError(IDLE_TIMEOUT_REASON, CLOSE_POLICY) from None
                if message is None:
                    return
                _check_size(message)
                event = session.stream_event(message)
                if isinstance(event, Audio):
                    now = time.monotonic()
                    for due in proc.feed(event.mono, index, lambda _i: now):
                        await self._put(pending, (due, self.batcher.infer(due.window)), sender)
                    index += len(event.mono)
                    continue
                # Stop: answer what is pending, then the final state, then close normally.
                await self._put(pending, None, sender)
                await asyncio.wait_for(sender, DRAIN_S)
                for text in self._messages_out(proc.final_state(), req.osc, mood):
                    await ws.send_text(text)
                await ws.close(CLOSE_NORMAL, event.reason)
                return
        finally:
            if not sender.done():
                sender.cancel()

    def _messages_out(self, state: EmotionState, osc: Optional[Endpoint], mood: Optional[MoodStage]) -> list[str]:
        """The state message for the connection, then its mood and events (with the mood stage on).

        The OSC packets go first when the stream asked for them.
        """
        weights = self.mapping.all_weights(state.smoothed)
        sockaddr = None if osc is None else self.osc_allowlist.sockaddr(osc)
        if sockaddr is not None and not self.osc.send_state(sockaddr, state, weights):
            self.metrics.osc_errors.inc()
        out = [dumps(state_json(state, 0, weights))]
        if mood is not None:
            update = mood.update(state)
            if sockaddr is not None and not self.osc.send_mood(sockaddr, update):
                self.metrics.osc_errors.inc()
            out += [dumps(m) for m in update_messages(update)]
        return out

    @staticmethod
    async def _put(pending: asyncio.Queue, item: Any, sender: asyncio.Task) -> None:
        """Queue a decision for the sender, unless the sender has failed (then raise its error)."""
        if pending.full() or sender.done():
            put = asyncio.ensure_future(pending.put(item))
            done, _ = await asyncio.wait({put, sender}, return_when=asyncio.FIRST_COMPLETED)
            if put in done:
                return
            put.cancel()
            sender.result()  # raises what stopped the sender
            raise ProtocolError("stream ended", CLOSE_INTERNAL)
        pending.put_nowait(item)

    async def _send_states(self, ws: WebSocket, proc: StreamProcessor, pending: asyncio.Queue,
                           osc: Optional[Endpoint], mood: Optional[MoodStage]) -> None:
        """Turn each model answer into the next state, in order, and send it."""
        dropped = 0
        while True:
            item = await pending.get()
            if item is None:
                return
            due, response = item
            try:
                probs, infer_ms = await response
            except Exception as exc:
                log.warning("model call failed for %s: %s", proc.stream, exc)
                await self._close(ws, CLOSE_INTERNAL, "model unavailable: reconnect")
                raise
            state = proc.finish(due, probs, infer_ms)
            self.metrics.decision(state, dropped)
            dropped = state.dropped_windows
            for text in self._messages_out(state, osc, mood):
                await ws.send_text(text)
