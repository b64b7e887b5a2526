"""The multiplexed ingest protocol (``ser-ingest-mux.v1``) on an ingress replica: many streams, one connection.

Every rule is :class:`~ser_daemon.net.ingest_mux.MuxSession`'s, as in the single daemon's
``ingest_mux_server.py``; this module moves its events between the replica's WebSocket, the
stream-id registry and the model deployment.  What it adds, and why:

- a start message's stream id is claimed in the cluster-wide registry first (as today's
  ``Ingress._admit`` does), then the session decides synchronously with that answer; a claim
  the session then refuses (tag in use, no room) is released;
- the due windows of every stream in one audio frame (one tick of the connection) go to the
  model deployment in one call (:meth:`WindowBatcher.infer_many`), so a connection of 32 talkers
  costs one handle call per hop, not 32;
- everything going out passes one ordered queue (``started``, one states message per tick,
  ``ended``), so a stream's final state always precedes its ``ended`` and a stream's states keep
  their order; a model call that fails ends the streams of that tick alone (1011, after their
  final state), never the connection;
- states come back as the binary records of :func:`encode_states` when the client asked for
  ``ser-ingest-mux.v1.binary`` (no JSON, no expression weights computed unless the stream has an
  OSC target), else as one batched JSON message per tick in the daemon's ``state`` form;
- the mood stage is not run for multiplexed streams (the protocol has no message for it; the
  daemon's ``--ingest`` does not send it either).

A connection holds at most ``min(MuxLimits.max_streams, the model's batch bound)`` streams, so a
tick's windows always fit one model call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Union

import numpy as np

from ..bounded import loads_json
from ..core.pipeline import DueWindow, StreamProcessor
from ..core.state import EmotionState
from ..net.ingest_mux import (
    SUBPROTOCOL_BINARY,
    MuxLimits,
    MuxSession,
    MuxStream,
    StreamAudio,
    StreamEnded,
    StreamStarted,
    encode_states,
    states_json,
)
from ..net.ingest_protocol import CLOSE_NORMAL, ProtocolError, StartRequest
from ..outputs.messages import state_json

__all__ = ["MuxConnection", "MuxSocket", "MUX_PENDING"]

log = logging.getLogger(__name__)

MUX_PENDING = 64  # ticks and messages queued per connection before reading pauses (back-pressure): ~1.3 s
MODEL_FAILED_REASON = "model unavailable: reconnect"
CLOSE_INTERNAL = 1011


@dataclass(eq=False)
class _Live:
    """One admitted stream of the connection: its processor and where its audio has reached."""

    stream: MuxStream
    proc: StreamProcessor
    sockaddr: Any = None  # its OSC target, when it asked for one and the operator allows it
    index: int = 0
    done: bool = False  # its final state and ended went out
    dropped: int = 0


@dataclass
class _Tick:
    """The due windows of one audio frame, and their one model answer."""

    items: list[tuple[_Live, DueWindow]]
    answer: asyncio.Future


@dataclass
class _End:
    live: _Live


@dataclass
class _Text:
    text: str


_Out = Union[_Tick, _End, _Text]


class MuxSocket(Protocol):
    """The few calls a multiplexed connection makes on its WebSocket: Serve's (through its proxy,
    ``ingress.py``) or the replica's own server (``direct.py``)."""

    async def receive(self) -> Optional[Union[str, bytes]]:
        """The next message, or None when the client went away."""

    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...


def _receive_timeout(session: MuxSession) -> Optional[float]:
    wait_s = session.next_deadline() - time.monotonic()
    return None if math.isinf(wait_s) else max(0.0, wait_s)


class MuxConnection:
    """One multiplexed connection on an ingress replica (``Ingress`` holds the replica's shared parts).

    Args:
        host: the ingress replica, ``ingress.Ingress`` (bundle, settings, registry, batcher, stream
            table, metrics, OSC; typed Any: the ingress imports this module).
        ws: the accepted WebSocket.
        protocol: the subprotocol agreed.
    """

    def __init__(self, host: Any, ws: MuxSocket, protocol: str) -> None:
        self.host = host
        self.ws = ws
        self.protocol = protocol
        self.binary = protocol == SUBPROTOCOL_BINARY
        self.labels = tuple(host.bundle.labels)
        limits = MuxLimits(max_streams=min(MuxLimits.max_streams, host.settings.max_batch_size))
        self.session = MuxSession(self._taken, self._room,
                                  f"too many streams on this replica ({host.settings.max_streams_per_replica})",
                                  limits, host.osc_allowlist, now=time.monotonic())
        self.live: dict[str, _Live] = {}
        self._claimed: dict[str, bool] = {}  # the registry's answer for the start being decided
        self.out: asyncio.Queue[_Out] = asyncio.Queue(MUX_PENDING)

    # -- the session's questions (synchronous: the registry was asked before) -------------
    def _taken(self, name: str) -> bool:
        return not self._claimed.get(name, False)

    def _room(self) -> bool:
        return len(self.host.streams) < self.host.settings.max_streams_per_replica

    # -- the connection -------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it closes (raises ProtocolError for a connection-level close)."""
        await self.ws.send_text(self.session.welcome(self.protocol, self.labels))
        sender = asyncio.get_running_loop().create_task(self._send_loop())
        try:
            while True:
                try:
                    message = await asyncio.wait_for(self.ws.receive(), _receive_timeout(self.session))
                except (asyncio.TimeoutError, TimeoutError):
                    for ended in self.session.expire(time.monotonic()):
                        await self._ended(ended, sender)
                    continue
                if message is None:
                    return
                if isinstance(message, str):
                    await self._claim_for(message)
                try:
                    events = self.session.receive(message, time.monotonic())
                finally:
                    claimed, self._claimed = self._claimed, {}
                await self._handle(events, claimed, sender)
        finally:
            if not sender.done():
                sender.cancel()
            for name in list(self.live):
                await self._forget(name)

    async def _claim_for(self, message: str) -> None:
        """Claim a start message's stream id in the registry, when the session could admit it."""
        host = self.host
        try:
            data = loads_json(message)
            if not isinstance(data, dict) or data.get("type") != "start":
                return
            request = StartRequest.from_dict(data)
        except (ValueError, ProtocolError):
            return  # the session refuses it with its own words
        if ((request.osc is not None and not host.osc_allowlist.allows(request.osc))
                or data.get("tag") in self.session.by_tag
                or request.stream in host.streams or request.stream in host._claiming):
            return  # refused without asking: held on this replica (the registry's owner is the replica)
        host._claiming.add(request.stream)
        try:
            self._claimed[request.stream] = await host.registry.claim.remote(request.stream, host.owner)
        finally:
            host._claiming.discard(request.stream)

    async def _handle(self, events: list, claimed: dict[str, bool], sender: asyncio.Task) -> None:
        host = self.host
        started = {e.stream.name for e in events if isinstance(e, StreamStarted)}
        for name, ok in claimed.items():
            if ok and name not in started:  # claimed, then refused by the session: give it back
                await host.registry.release.remote(name, host.owner)
        windows: list[np.ndarray] = []
        items: list[tuple[_Live, DueWindow]] = []
        now = time.monotonic()
        for event in events:
            if isinstance(event, StreamAudio):
                live = self.live[event.stream.name]
                for due in live.proc.feed(event.mono, live.index, lambda _i: now):
                    windows.append(due.window)
                    items.append((live, due))
                live.index += len(event.mono)
            elif isinstance(event, StreamStarted):
                self._start(event)
                await host._put(self.out, _Text(event.reply), sender)
            else:
                await self._ended(event, sender)
        if items:  # the frame's tick: one model call for every stream that fell due
            await host._put(self.out, _Tick(items, host.batcher.infer_many(np.stack(windows))), sender)

    def _start(self, event: StreamStarted) -> None:
        host, req = self.host, event.stream.request
        host.streams[req.stream] = self.ws
        host.metrics.streams.set(len(host.streams))
        proc = StreamProcessor.from_bundle(req.stream, host.bundle, host.settings.analysis, req.sample_rate,
                                           clock=time.monotonic)
        sockaddr = None if req.osc is None else host.osc_allowlist.sockaddr(req.osc)
        self.live[req.stream] = _Live(event.stream, proc, sockaddr)

    async def _ended(self, event: StreamEnded, sender: asyncio.Task) -> None:
        """A stream ended alone: its final state and ``ended`` follow its pending decisions; or a refusal now."""
        if event.code != CLOSE_NORMAL:
            self.host.metrics.refused.inc(tags={"code": str(event.code)})
        live = None if event.stream is None else self.live.get(event.stream.name)
        await self.host._put(self.out, _Text(event.message) if live is None else _End(live), sender)

    async def _forget(self, name: str) -> None:
        self.live.pop(name, None)
        await self.host._release(name)

    # -- the way back ---------------------------------------------------------------------
    async def _send_loop(self) -> None:
        """Everything out, in the order it was queued: each tick's states as one message."""
        while True:
            item = await self.out.get()
            if isinstance(item, _Text):
                await self.ws.send_text(item.text)
            elif isinstance(item, _Tick):
                await self._send_tick(item)
            elif not item.live.done:
                await self._finish([item.live])

    async def _send_tick(self, tick: _Tick) -> None:
        try:
            probs, infer_ms = await tick.answer
        except Exception as exc:  # this tick's streams end alone, each after its final state
            log.warning("model call failed for %d streams: %s", len(tick.items), exc)
            failed = []
            for live, _ in tick.items:
                if not live.done and live.stream.ending is None:
                    self.host.metrics.refused.inc(tags={"code": str(CLOSE_INTERNAL)})
                    self.session.end(live.stream.name, CLOSE_INTERNAL, MODEL_FAILED_REASON)
                if not live.done and live not in failed:
                    failed.append(live)
            await self._finish(failed)
            return
        states = []
        for i, (live, due) in enumerate(tick.items):
            if live.done:
                continue  # ended by an earlier failed tick
            state = live.proc.finish(due, probs[i], infer_ms)
            self.host.metrics.decision(state, live.dropped)
            live.dropped = state.dropped_windows
            states.append((live, state))
        if states:
            await self._send_states(states)

    async def _finish(self, lives: list[_Live]) -> None:
        """Final states (one message), then each stream's ``ended``; the ids are released."""
        await self._send_states([(live, live.proc.final_state()) for live in lives])
        for live in lives:
            live.done = True
            ended = self.session.finish(live.stream.name)
            if ended is not None:
                await self.ws.send_text(ended)
            await self._forget(live.stream.name)

    async def _send_states(self, states: list[tuple[_Live, EmotionState]]) -> None:
        mapping, osc = self.host.mapping, self.host.osc
        if self.binary:
            for live, state in states:
                if live.sockaddr is not None and not osc.send_state(live.sockaddr, state,
                                                                    mapping.all_weights(state.smoothed)):
                    self.host.metrics.osc_errors.inc()
            await self.ws.send_bytes(encode_states([(live.stream.tag, s) for live, s in states], self.labels))
            return
        out = []
        for live, state in states:
            weights = mapping.all_weights(state.smoothed)
            if live.sockaddr is not None and not osc.send_state(live.sockaddr, state, weights):
                self.host.metrics.osc_errors.inc()
            out.append(state_json(state, 0, weights))  # the daemon's state message (ingest_return.state_message)
        await self.ws.send_text(states_json(out))
