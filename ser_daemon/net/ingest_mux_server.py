"""The multiplexed ingest protocol on a websockets server: the adapter around :class:`MuxSession`.

Every rule is the session's (``ingest_mux.py``); this module moves bytes.  The ingest server
(``ingest.py``) hands each connection that agreed a ``ser-ingest-mux`` subprotocol to
:meth:`MuxServing.serve` and gives it two calls: ``open_stream`` (a source for an admitted
stream, handed to the daemon) and ``close_stream``.

Threads: connections run in the event loop.  The processing thread hands over states with
:meth:`MuxServing.deliver` (kept under a lock) and, at the end of each tick, :meth:`MuxServing.flush`,
which makes one ``call_soon_threadsafe`` for the whole tick; the loop then encodes one message per
connection.  Each connection sends through one bounded queue, so ``started``, the states and the
``ended`` messages go out in the order they were made.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..core.state import EmotionState
from .ingest_mux import (
    SUBPROTOCOL_BINARY,
    MuxLimits,
    MuxSession,
    StreamAudio,
    StreamEnded,
    StreamStarted,
    encode_states,
    states_json,
)
from .ingest_protocol import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN_LATER,
    ProtocolError,
    StartRequest,
    close_reason,
)

__all__ = ["MuxServing", "MUX_OUT_QUEUE"]

log = logging.getLogger(__name__)

MUX_OUT_QUEUE = 256  # messages waiting to go out per connection (a tick's states are one): seconds of ticks


class AudioSink(Protocol):
    """Where an admitted stream's audio goes (the ingest server's source)."""

    def write_mono(self, mono: np.ndarray) -> None: ...


class MuxServing:
    """The multiplexed connections of one ingest server.

    Args:
        open_stream: a sink for an admitted stream (the server counts it and hands it to the daemon).
        close_stream: the stream ended or its connection went: stop its sink.
        is_taken: whether a stream id is in use on the server.
        room_for_stream: whether the server has room for one more stream.
        full_reason: the refusal text when it has none (1013).
        wake: wakes the processing thread, once per audio frame.
        refused: the server's refusal counters (``protocol``, ``stream_protocol``, ``stream_full``).
        labels: the model's classes (``welcome``, binary states).
        state_message: a state as the daemon's JSON ``state`` message (None: its core fields).
        limits: each connection's limits.
    """

    def __init__(self, open_stream: Callable[[StartRequest], Any], close_stream: Callable[[Any], None],
                 is_taken: Callable[[str], bool], room_for_stream: Callable[[], bool], full_reason: str,
                 wake: Callable[[], None], refused: collections.Counter[str], labels: Sequence[str],
                 state_message: Callable[[EmotionState], Mapping[str, Any]] | None, limits: MuxLimits) -> None:
        self.open_stream, self.close_stream = open_stream, close_stream
        self.is_taken, self.room_for_stream, self.full_reason = is_taken, room_for_stream, full_reason
        self.wake = wake
        self.refused = refused
        self.labels = tuple(labels)
        self.state_message = state_message or _bare_state
        self.limits = limits
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the server starts
        self.out_queue = MUX_OUT_QUEUE  # per connection, for connections opened from now on
        self._owner: dict[str, _Connection] = {}  # stream id -> its connection, until its final state
        self._connections: set[_Connection] = set()
        self._tick: list[EmotionState] = []
        self._tick_lock = threading.Lock()

    def taken(self, name: str) -> bool:
        """Whether ``name`` is in use: on the server, or here until its final state has gone out.

        The engine frees an id when it emits the final state; the event loop sends that state a
        moment later.  A new stream of the same id admitted in between would be sent the old
        stream's final state and ``ended``.
        """
        return self.is_taken(name) or name in self._owner

    async def serve(self, conn: ServerConnection) -> None:
        """Run one connection until it closes."""
        session = MuxSession(self.taken, self.room_for_stream, self.full_reason, self.limits, now=time.monotonic())
        mux = _Connection(conn, session, conn.subprotocol == SUBPROTOCOL_BINARY, self.labels, self.state_message,
                          self.out_queue)
        self._connections.add(mux)
        mux.put(session.welcome(str(conn.subprotocol), self.labels))
        sender = asyncio.get_running_loop().create_task(mux.send_loop())
        try:
            while True:
                wait_s = session.next_deadline() - time.monotonic()
                try:
                    message = await asyncio.wait_for(conn.recv(), None if math.isinf(wait_s) else max(0.0, wait_s))
                except (asyncio.TimeoutError, TimeoutError):
                    for ended in session.expire(time.monotonic()):
                        self._ended(mux, ended)
                    continue
                wrote = False
                for event in session.receive(message, time.monotonic()):
                    if isinstance(event, StreamAudio):
                        mux.sinks[event.stream.name].write_mono(event.mono)
                        wrote = True
                    elif isinstance(event, StreamStarted):
                        name = event.stream.name
                        mux.sinks[name] = self.open_stream(event.stream.request)
                        self._owner[name] = mux
                        mux.put(event.reply)
                    else:
                        self._ended(mux, event)
                if wrote:
                    self.wake()  # once per frame: the whole tick's audio is in the rings
        except ProtocolError as exc:
            self.refused["protocol"] += 1
            await conn.close(exc.code, close_reason(exc))
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(mux)
            for name in list(session.by_name):
                self._owner.pop(name, None)
            for sink in mux.sinks.values():
                self.close_stream(sink)
            mux.sinks.clear()
            sender.cancel()

    def _ended(self, mux: _Connection, event: StreamEnded) -> None:
        """A stream ended alone: stop its sink (its ``ended`` follows its final state), or refuse it now."""
        if event.code != CLOSE_NORMAL:
            self.refused["stream_full" if event.code == CLOSE_TRY_AGAIN_LATER else "stream_protocol"] += 1
        if event.stream is None:
            mux.put(event.message)
        else:
            self.close_stream(mux.sinks.pop(event.stream.name))

    # -- from the processing thread ---------------------------------------------------
    def deliver(self, state: EmotionState) -> None:
        """A state was decided: keep it for its connection (if a multiplexed stream's) until the tick ends."""
        if state.stream in self._owner:
            with self._tick_lock:
                self._tick.append(state)

    def flush(self) -> None:
        """The tick ended: hand its states to the event loop in one call."""
        if not self._tick or self.loop is None:
            return
        with self._tick_lock:
            tick, self._tick = self._tick, []
        try:
            self.loop.call_soon_threadsafe(self._send_tick, tick)
        except RuntimeError:  # the loop has closed: nobody is left to tell
            pass

    # -- in the event loop ------------------------------------------------------------
    def _send_tick(self, tick: list[EmotionState]) -> None:
        by_conn: dict[_Connection, list[EmotionState]] = {}
        for state in tick:
            mux = self._owner.get(state.stream)
            if mux is not None:
                by_conn.setdefault(mux, []).append(state)
                if state.final:
                    del self._owner[state.stream]
        for mux, states in by_conn.items():
            mux.send_states(states)

    async def drain(self, limit_s: float) -> None:
        """Wait (at most ``limit_s``) until every connection has sent what is queued (stopping)."""
        await asyncio.sleep(0)  # a tick handed over just before runs first
        if self._connections:
            await asyncio.wait([asyncio.ensure_future(m.out.join()) for m in self._connections], timeout=limit_s)


class _Connection:
    """One connection's outgoing side: every message goes through one bounded queue, in order.

    A client that leaves ``out_queue`` messages unread (:data:`MUX_OUT_QUEUE`: seconds of ticks) is
    closed with 1008: the daemon never holds more for it.
    """

    def __init__(self, conn: ServerConnection, session: MuxSession, binary: bool, labels: Sequence[str],
                 state_message: Callable[[EmotionState], Mapping[str, Any]], out_queue: int = MUX_OUT_QUEUE) -> None:
        self.conn = conn
        self.session = session
        self.binary = binary
        self.labels = labels
        self.state_message = state_message
        self.sinks: dict[str, Any] = {}
        self.out: asyncio.Queue[str | bytes] = asyncio.Queue(out_queue)
        self.overflowed = False

    def put(self, message: str | bytes) -> None:
        try:
            self.out.put_nowait(message)
        except asyncio.QueueFull:
            if not self.overflowed:
                self.overflowed = True
                asyncio.ensure_future(self.conn.close(CLOSE_POLICY, "states not read: too far behind"))

    def send_states(self, states: list[EmotionState]) -> None:
        """One tick's states as one message, then the ``ended`` of each stream whose final state it holds."""
        session = self.session
        if self.binary:
            tagged = [(session.tag_of(s.stream), s) for s in states]
            self.put(encode_states([(t, s) for t, s in tagged if t is not None], self.labels))
        else:
            self.put(states_json([self.state_message(s) for s in states]))
        for s in states:
            if s.final:
                ended = session.finish(s.stream)
                if ended is not None:
                    self.put(ended)

    async def send_loop(self) -> None:
        try:
            while True:
                message = await self.out.get()
                try:
                    await self.conn.send(message)
                finally:
                    self.out.task_done()
        except ConnectionClosed:
            while not self.out.empty():  # nobody will read them: let drain() stop waiting
                self.out.get_nowait()
                self.out.task_done()


def _bare_state(state: EmotionState) -> dict[str, Any]:
    """A state's core fields, for a server built without the daemon's message form (tests, tools)."""
    return {"type": "state", "stream": state.stream, "seq": state.seq, "label": state.label,
            "confidence": round(float(state.confidence), 4), "final": state.final}
