"""WebSocket ingest: remote clients stream 16-bit PCM, each as its own stream.

Protocol (``--ingest [HOST:]PORT``, same access rules as the state socket):

1. The client sends one text message
   ``{"type": "start", "stream": "alice", "sample_rate": 48000, "channels": 1}``
   (stream: 1-64 letters, digits, ``_`` or ``-``; rate 8000-192000 Hz; 1-8 channels).
   The server answers ``{"type": "started", "stream": "alice"}``.
2. Then binary messages of little-endian int16 PCM, channels interleaved, a
   whole number of frames each.  Audio is analysed as it arrives, so its
   arrival time is the capture time for latency purposes.
3. ``{"type": "stop"}`` or closing the socket ends the stream (a final neutral
   state is broadcast for it).

Bad control messages close the connection with 1007 (invalid data, also JSON
nested too deeply) or 1008 (policy: duplicate stream id, audio before start, no
message for ``IDLE_TIMEOUT_S`` after the start: a silent client sends silence); a
frame that is not whole PCM frames closes with 1007.  A start message naming
an OSC target (``"osc": "HOST:PORT"``, which ``ser-daemon cluster
--allow-stream-osc`` serves) is refused here with 1008 and the cluster's own
reason: this daemon sends OSC only to the operator's ``--osc`` targets.  More streams at once than
``--max-streams`` are refused with 1013 (try again later).  States for ingest
streams go out on the normal OSC and WebSocket outputs with the stream id.

A client that offers the WebSocket subprotocol ``ser-ingest-mux.v1`` (or
``ser-ingest-mux.v1.binary``) speaks the multiplexed protocol instead: many streams on one
connection, each with its own start, tagged audio, stop and ``ended``, and their states come back
on the connection, one message per tick (:mod:`.ingest_mux` holds its rules; README "Many
talkers on one connection").  Its streams count against ``--max-streams`` like any other.

Audio messages may be up to 256 KiB (or ``--max-message-bytes`` if larger); at most
4 unread ones are buffered per connection.

Memory: each stream holds a ring of ``ring_seconds`` of mono float32 audio at its
own rate (downmixed on arrival; 1 s at 48 kHz: 188 KiB) and its front-end state; the socket carries
no compression state (PCM does not compress).  All of it is freed when the
stream ends, and the daemon hands freed pages back to the OS (``memory.py``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from ..core.audio_format import AudioFormat
from ..core.ringbuffer import AudioRing
from ..core.state import EmotionState
from .endpoints import Endpoint
from .ingest_mux import SUBPROTOCOLS, MuxLimits, select_subprotocol
from .ingest_mux_server import MuxServing
from .ingest_protocol import (
    IDLE_TIMEOUT_REASON,
    IDLE_TIMEOUT_S,
    START_TIMEOUT_REASON,
    START_TIMEOUT_S,
    Audio,
    IngestSession,
    ProtocolError,
    Started,
    StartRequest,
    close_reason,
    decode_pcm,
    parse_start,
)
from .websocket_server import AccessPolicy, LogLimiter, check_request, close_server, listen

__all__ = ["IngestServer", "IngestSource", "ProtocolError", "StartRequest", "parse_start"]

log = logging.getLogger(__name__)


class IngestSource:
    """The producer side of one remote stream (writes happen in the event loop thread)."""

    def __init__(self, name: str, rate: int, channels: int, ring_seconds: float) -> None:
        self.name = name
        self.rate = rate
        self.channels = channels
        # Downmixed as it arrives (the analysis is mono anyway), so 8 channels cost what 1 does;
        # arrival times of the last 512 messages: more than a ring's worth of 20 ms blocks.
        self.ring = AudioRing(int(rate * ring_seconds), 1, max_blocks=512)
        self.format = AudioFormat(rate)  # what the ring holds: mono float32 at the client's rate
        self.finished = threading.Event()
        self.frames_received = 0

    def write_pcm(self, data: bytes) -> None:
        self.write_mono(decode_pcm(data, self.channels))

    def write_mono(self, mono: np.ndarray) -> None:
        """Decoded audio (see :func:`decode_pcm`) into the ring, stamped with its arrival time."""
        self.ring.write(mono, time.monotonic())
        self.frames_received += len(mono)

    def pump(self, max_blocks: int = 1) -> bool:
        """The client's messages fill the ring: nothing to pump; False once the stream ended."""
        return not self.finished.is_set()

    def stop(self) -> None:
        self.finished.set()


class IngestServer:
    """Accepts ingest connections and hands new streams to the daemon.

    Args:
        policy: access rules (origin, token, connection count, message size).
        on_stream: called in the event loop thread with each new :class:`IngestSource`.
        is_taken: whether a stream id is already in use.
        wake: wakes the processing thread after audio arrives.
        idle_timeout_s: a started stream that sends nothing for this long is closed (1008).
        labels: the model's classes (the multiplexed protocol's ``welcome`` names them).
        state_message: a state as the daemon's JSON ``state`` message (the multiplexed
            protocol's JSON states; the daemon's mapping adds its weights).
        mux_limits: limits of a multiplexed connection.
    """

    def __init__(
        self,
        policy: AccessPolicy,
        on_stream: Callable[[IngestSource], None],
        is_taken: Callable[[str], bool],
        wake: Callable[[], None],
        ring_seconds: float = 1.0,
        max_streams: int = 64,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        labels: Sequence[str] = (),
        state_message: Callable[[EmotionState], Mapping[str, Any]] | None = None,
        mux_limits: MuxLimits | None = None,
    ) -> None:
        self.policy = policy
        self.idle_timeout_s = idle_timeout_s
        self.max_streams = max_streams
        self.active_streams = 0
        self.on_stream = on_stream
        self.is_taken = is_taken
        self.wake = wake
        self.ring_seconds = ring_seconds
        self.connections = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self.log_limiter = LogLimiter()
        self._server: Server | None = None
        self.port: int | None = None
        self.mux = MuxServing(
            self._open_stream, self._close_stream, is_taken, lambda: self.active_streams < self.max_streams,
            f"too many streams (--max-streams {max_streams})", wake, self.refused, labels, state_message,
            mux_limits or MuxLimits(max_frame_bytes=policy.max_message_bytes, idle_timeout_s=idle_timeout_s))

    async def start(self, endpoint: Endpoint) -> int:
        self.mux.loop = asyncio.get_running_loop()
        self._server, self.port = await listen(
            self._handle, endpoint, self._gate, self.policy.max_message_bytes, "ingest clients", compression=None,
            max_queue=4,  # at most 4 unread messages buffered per connection
            select_subprotocol=lambda _conn, offered: select_subprotocol(offered),
        )
        log.info("ingest endpoint on %s:%s", endpoint.host, self.port)
        return self.port

    def _gate(self, conn: ServerConnection, request: Request) -> Response | None:
        return check_request(conn, request, self.policy, self.connections, set(), self.refused, self.log_limiter)

    async def _handle(self, conn: ServerConnection) -> None:
        if conn.subprotocol in SUBPROTOCOLS:
            self.connections += 1
            try:
                await self.mux.serve(conn)
            finally:
                self.connections -= 1
            return
        self.connections += 1
        source: IngestSource | None = None
        session = IngestSession(self.mux.taken, lambda: self.active_streams < self.max_streams,
                                f"too many streams (--max-streams {self.max_streams})")
        try:
            event = session.receive(await asyncio.wait_for(conn.recv(), timeout=START_TIMEOUT_S))
            assert isinstance(event, Started)
            start = event.request
            source = IngestSource(start.stream, start.sample_rate, start.channels, self.ring_seconds)
            self.active_streams += 1
            self.on_stream(source)
            await conn.send(event.reply)
            while True:
                try:
                    message = await asyncio.wait_for(conn.recv(), timeout=self.idle_timeout_s)
                except (asyncio.TimeoutError, TimeoutError):
                    raise ProtocolError(IDLE_TIMEOUT_REASON.replace(f"{IDLE_TIMEOUT_S:g} s", f"{self.idle_timeout_s:g} s"),
                                        CloseCode.POLICY_VIOLATION) from None
                event = session.stream_event(message)
                if isinstance(event, Audio):
                    source.write_mono(event.mono)
                    self.wake()
                    continue
                await conn.close(CloseCode.NORMAL_CLOSURE, event.reason)  # Stop
                break
        except ProtocolError as exc:
            if exc.code == CloseCode.TRY_AGAIN_LATER:
                self.refused["streams_full"] += 1
            else:
                self.refused["protocol"] += 1
            await conn.close(exc.code, close_reason(exc))
        except (asyncio.TimeoutError, TimeoutError):
            await conn.close(CloseCode.POLICY_VIOLATION, START_TIMEOUT_REASON)
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1
            if source is not None:
                self.active_streams -= 1
                source.stop()
                self.wake()

    # -- the multiplexed protocol (ingest_mux_server.py) -----------------------------
    def _open_stream(self, start: StartRequest) -> IngestSource:
        """A multiplexed stream was admitted: its source, counted and handed to the daemon."""
        source = IngestSource(start.stream, start.sample_rate, start.channels, self.ring_seconds)
        self.active_streams += 1
        self.on_stream(source)
        return source

    def _close_stream(self, source: IngestSource) -> None:
        self.active_streams -= 1
        source.stop()
        self.wake()

    def deliver(self, state: EmotionState) -> None:
        """A state was decided (processing thread): a multiplexed stream's goes back on its connection."""
        self.mux.deliver(state)

    def flush(self) -> None:
        """The end of a tick (processing thread): send what :meth:`deliver` gathered, one message per connection."""
        self.mux.flush()

    async def close(self) -> None:
        await self.mux.drain(0.3)  # the last tick's final states are on their way: let them out
        if self._server is not None:
            await close_server(self._server, "ingest server")
            self._server = None
