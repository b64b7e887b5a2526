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
nested too deeply) or 1008 (policy: duplicate stream id, audio before start); a
frame that is not whole PCM frames closes with 1007.  More streams at once than
``--max-streams`` are refused with 1013 (try again later).  States for ingest
streams go out on the normal OSC and WebSocket outputs with the stream id.

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
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from .bounded import loads_json
from .config import Endpoint
from .resample import downmix
from .ringbuffer import AudioRing
from .ws_server import AccessPolicy, LogLimiter, check_request, close_server, listen

__all__ = ["IngestServer", "IngestSource", "parse_start"]

log = logging.getLogger(__name__)

_STREAM_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class ProtocolError(ValueError):
    """A client broke the ingest protocol; ``code`` is the close code to use."""

    def __init__(self, message: str, code: int = CloseCode.INVALID_DATA) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StartRequest:
    stream: str
    sample_rate: int
    channels: int


def parse_start(text: str | bytes) -> StartRequest:
    """Validate the opening control message (pure; fuzzed in the tests).

    Raises:
        ProtocolError: not JSON, not a start message, or fields out of range.
    """
    if isinstance(text, bytes):
        raise ProtocolError("send the start message before any audio", CloseCode.POLICY_VIOLATION)
    try:
        msg = loads_json(text)
    except ValueError:
        raise ProtocolError("control messages must be JSON") from None
    if not isinstance(msg, dict) or msg.get("type") != "start":
        raise ProtocolError('the first message must be {"type": "start", ...}')
    stream = msg.get("stream")
    rate = msg.get("sample_rate")
    channels = msg.get("channels", 1)
    if not isinstance(stream, str) or not _STREAM_RE.match(stream):
        raise ProtocolError("stream must be 1-64 letters, digits, '_' or '-'")
    if isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 192000:
        raise ProtocolError("sample_rate must be an integer in 8000..192000")
    if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= 8:
        raise ProtocolError("channels must be an integer in 1..8")
    return StartRequest(stream, rate, channels)


class IngestSource:
    """The producer side of one remote stream (writes happen in the event loop thread)."""

    def __init__(self, name: str, rate: int, channels: int, ring_seconds: float) -> None:
        self.name = name
        self.rate = rate
        self.channels = channels
        # Downmixed as it arrives (the analysis is mono anyway), so 8 channels cost what 1 does;
        # arrival times of the last 512 messages: more than a ring's worth of 20 ms blocks.
        self.ring = AudioRing(int(rate * ring_seconds), 1, max_blocks=512)
        self.finished = threading.Event()
        self.frames_received = 0

    def write_pcm(self, data: bytes) -> None:
        frame_bytes = 2 * self.channels
        if len(data) % frame_bytes:
            raise ProtocolError(f"audio messages must hold whole frames of {frame_bytes} bytes")
        pcm = np.frombuffer(data, dtype="<i2").reshape(-1, self.channels)
        mono = downmix(pcm.astype(np.float32)) * np.float32(1.0 / 32768.0)
        self.ring.write(mono, time.monotonic())
        self.frames_received += len(pcm)

    def stop(self) -> None:
        self.finished.set()


class IngestServer:
    """Accepts ingest connections and hands new streams to the daemon.

    Args:
        policy: access rules (origin, token, connection count, message size).
        on_stream: called in the event loop thread with each new :class:`IngestSource`.
        is_taken: whether a stream id is already in use.
        wake: wakes the processing thread after audio arrives.
    """

    def __init__(
        self,
        policy: AccessPolicy,
        on_stream: Callable[[IngestSource], None],
        is_taken: Callable[[str], bool],
        wake: Callable[[], None],
        ring_seconds: float = 1.0,
        max_streams: int = 64,
    ) -> None:
        self.policy = policy
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

    async def start(self, endpoint: Endpoint) -> int:
        self._server, self.port = await listen(
            self._handle, endpoint, self._gate, self.policy.max_message_bytes, "ingest clients", compression=None,
            max_queue=4,  # at most 4 unread messages buffered per connection
        )
        log.info("ingest endpoint on %s:%s", endpoint.host, self.port)
        return self.port

    def _gate(self, conn: ServerConnection, request: Request) -> Response | None:
        return check_request(conn, request, self.policy, self.connections, set(), self.refused, self.log_limiter)

    async def _handle(self, conn: ServerConnection) -> None:
        self.connections += 1
        source: IngestSource | None = None
        try:
            first = await asyncio.wait_for(conn.recv(), timeout=10.0)
            start = parse_start(first)
            if self.is_taken(start.stream):
                raise ProtocolError(f"stream id {start.stream!r} is in use", CloseCode.POLICY_VIOLATION)
            if self.active_streams >= self.max_streams:
                self.refused["streams_full"] += 1
                raise ProtocolError(f"too many streams (--max-streams {self.max_streams})", CloseCode.TRY_AGAIN_LATER)
            source = IngestSource(start.stream, start.sample_rate, start.channels, self.ring_seconds)
            self.active_streams += 1
            self.on_stream(source)
            await conn.send(json.dumps({"type": "started", "stream": start.stream}))
            async for message in conn:
                if isinstance(message, bytes):
                    source.write_pcm(message)
                    self.wake()
                    continue
                try:
                    ctrl: Any = loads_json(message)
                except ValueError:
                    raise ProtocolError("control messages must be JSON") from None
                if isinstance(ctrl, dict) and ctrl.get("type") == "stop":
                    await conn.close(CloseCode.NORMAL_CLOSURE, "stopped")
                    break
                raise ProtocolError('the only control message after start is {"type": "stop"}')
        except ProtocolError as exc:
            if exc.code != CloseCode.TRY_AGAIN_LATER:
                self.refused["protocol"] += 1
            await conn.close(exc.code, str(exc)[:120])
        except (asyncio.TimeoutError, TimeoutError):
            await conn.close(CloseCode.POLICY_VIOLATION, "no start message within 10 s")
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1
            if source is not None:
                self.active_streams -= 1
                source.stop()
                self.wake()

    async def close(self) -> None:
        if self._server is not None:
            await close_server(self._server, "ingest server")
            self._server = None
