"""The multiplexed ingest protocol (``ser-ingest-mux.v1``) without a socket: many streams, one connection.

A platform's voice server mixes and routes many talkers already; it sends them to us over a few
connections instead of one connection per talker.  This module holds every rule of that protocol
as plain classes on bytes and dicts, so the single daemon's ``--ingest`` server (``ingest.py``) and
the cluster's ingress can both be thin adapters around it.  Today's one-stream-per-connection
protocol (``ingest_protocol.py``) stays as it is; each stream here is validated by the very same
code (:class:`~ser_daemon.net.ingest_protocol.StartRequest`, :func:`decode_pcm`, the same refusal
texts and codes).

Versioning: the client offers a WebSocket subprotocol at connect time,
:data:`SUBPROTOCOL_JSON` (states come back as batched JSON) or :data:`SUBPROTOCOL_BINARY`
(states come back as compact binary records).  A connection without one of them speaks today's
protocol, byte for byte.

Client to server:

- text ``{"type": "start", "stream": "alice", "tag": 1, "sample_rate": 48000, "channels": 1}``:
  today's start message plus ``tag``, a small integer (0..65535) the client picks to label the
  stream's audio;
- binary audio frames (little-endian): ``u8 kind = 0x01``, ``u8 count`` (1..255), then ``count``
  chunks of ``u16 tag``, ``u32 byte length``, that many bytes of int16 PCM in the stream's own
  format.  One frame may carry every stream's audio of one tick (20-100 ms);
- text ``{"type": "stop", "stream": "alice"}``.

Server to client: ``welcome`` (labels, limits) on connect; ``started`` per admitted stream;
``states`` once per tick with every state decided for this connection's streams (or the binary
form, :func:`encode_states`); ``ended`` once per stream, after its final state: ``{"type":
"ended", "stream": ..., "tag": ..., "code": ..., "reason": ...}`` with today's close codes and
reasons.

A misbehaving stream (bad start fields, id or tag in use, no room, odd PCM bytes, over its byte
rate, silent for :data:`IDLE_TIMEOUT_S`, audio for a tag that is not started) is ended alone.  Only
what makes the connection itself unreadable closes it: a control message that is not JSON or not
``start``/``stop`` (1007), an audio frame whose layout does not parse (1007), a frame over the size
limit (1009), nothing at all received for :data:`START_TIMEOUT_S` while no stream runs (1008).
The server adapter adds one: a client that leaves its states unread (1008, ``ingest_mux_server.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from ..bounded import loads_json
from .ingest_protocol import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN_LATER,
    IDLE_TIMEOUT_REASON,
    IDLE_TIMEOUT_S,
    START_TIMEOUT_REASON,
    START_TIMEOUT_S,
    STOP_REASON,
    OscAllowlist,
    ProtocolError,
    StartRequest,
    close_reason,
    decode_pcm,
    osc_refusal,
)
from .mux_wire import (
    MAX_TAG,
    SUBPROTOCOL_BINARY,
    SUBPROTOCOL_JSON,
    SUBPROTOCOLS,
    EndedMessage,
    MuxStartedMessage,
    MuxStartMessage,
    MuxStopMessage,
    WelcomeMessage,
    decode_states,
    encode_audio_frame,
    encode_states,
    parse_audio_frame,
    select_subprotocol,
    states_json,
)

__all__ = [
    "SUBPROTOCOL_JSON",
    "SUBPROTOCOL_BINARY",
    "SUBPROTOCOLS",
    "select_subprotocol",
    "CLOSE_GOING_AWAY",
    "CLOSE_TOO_BIG",
    "MuxLimits",
    "MuxStartMessage",
    "MuxStartedMessage",
    "MuxStopMessage",
    "EndedMessage",
    "WelcomeMessage",
    "MuxStream",
    "StreamStarted",
    "StreamAudio",
    "StreamEnded",
    "MuxSession",
    "encode_audio_frame",
    "parse_audio_frame",
    "encode_states",
    "decode_states",
    "states_json",
]

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
STOPPING_REASON = "the server is stopping"


@dataclass(frozen=True)
class MuxLimits:
    """What one multiplexed connection may do (the ``welcome`` message tells the client).

    Attributes:
        max_streams: streams at once on one connection (ended with 1013 beyond; the daemon's
            ``--max-streams`` also applies).
        rate_factor: a stream may send at most this many times its real-time byte rate ...
        burst_s: ... after a burst of this many seconds of its audio (a token bucket, full at start).
            It also absorbs the server's own stalls: audio that queued in the socket while the
            server did not read arrives at once, and must not end the stream.
        max_frame_bytes: the largest message; a larger one closes the connection (1009).
        idle_timeout_s: a started stream that sends no audio for this long is ended (1008).
        start_timeout_s: a connection with no stream that sends nothing for this long is closed (1008).
    """

    max_streams: int = 64
    rate_factor: float = 2.0
    burst_s: float = 3.0
    max_frame_bytes: int = 256 * 1024
    idle_timeout_s: float = IDLE_TIMEOUT_S
    start_timeout_s: float = START_TIMEOUT_S

    def to_dict(self) -> dict[str, Any]:
        return {"streams": self.max_streams, "rate_factor": self.rate_factor, "burst_s": self.burst_s,
                "frame_bytes": self.max_frame_bytes, "idle_s": self.idle_timeout_s}


@dataclass(eq=False)
class MuxStream:
    """One started stream of a connection: its start request, tag and byte budget."""

    tag: int
    request: StartRequest
    tokens: float
    refill_per_s: float
    capacity: float
    last_audio: float
    last_refill: float
    ending: StreamEnded | None = None

    @property
    def name(self) -> str:
        return self.request.stream


@dataclass(frozen=True)
class StreamStarted:
    """A stream was admitted: create its source, then send ``reply``."""

    stream: MuxStream
    reply: str


@dataclass(frozen=True)
class StreamAudio:
    """Audio for a live stream: ``mono`` float32 samples at its rate."""

    stream: MuxStream
    mono: np.ndarray


@dataclass(frozen=True)
class StreamEnded:
    """A stream ended or was refused.

    With ``stream`` set (it had started), stop its source; its ``ended`` message goes out after
    its final state (:meth:`MuxSession.finish`).  Without, send :attr:`message` now.
    """

    stream_id: str | None
    tag: int | None
    code: int
    reason: str
    stream: MuxStream | None = field(default=None, compare=False)

    @property
    def message(self) -> str:
        return EndedMessage(self.stream_id, self.tag, self.code, self.reason[:120]).to_json()


MuxEvent = Union[StreamStarted, StreamAudio, StreamEnded]


def _tag_of(data: Mapping[str, Any]) -> int | None:
    tag = data.get("tag")
    return tag if isinstance(tag, int) and not isinstance(tag, bool) and 0 <= tag <= MAX_TAG else None


class MuxSession:
    """One multiplexed connection's protocol state (sans-I/O; times are the caller's clock, seconds).

    Args:
        is_taken: whether a stream id is in use on the server already (ended with 1008).
        room_for_stream: whether the server has room for one more stream (ended with 1013 otherwise).
        full_reason: that refusal's text.
        limits: this connection's limits.
        osc_allowlist: hosts a start message's ``osc`` may name (default none: refused with 1008).
        now: when the connection opened.
    """

    def __init__(self, is_taken: Callable[[str], bool], room_for_stream: Callable[[], bool],
                 full_reason: str = "too many streams", limits: MuxLimits | None = None,
                 osc_allowlist: OscAllowlist | None = None, now: float = 0.0) -> None:
        self.is_taken = is_taken
        self.room_for_stream = room_for_stream
        self.full_reason = full_reason
        self.limits = limits or MuxLimits()
        self.osc_allowlist = osc_allowlist or OscAllowlist()
        self.by_tag: dict[int, MuxStream] = {}
        self.by_name: dict[str, MuxStream] = {}
        # Tags whose audio is dropped without a word: told once that they are not started, or
        # ended (audio the client sent before it read the ``ended``).  At most 65536 entries.
        self.quiet_tags: set[int] = set()
        self.last_heard = now

    def welcome(self, protocol: str, labels: Sequence[str]) -> str:
        """The first message of the connection."""
        states = "binary" if protocol == SUBPROTOCOL_BINARY else "json"
        return WelcomeMessage(protocol, states, list(labels), self.limits.to_dict()).to_json()

    # -- messages in ---------------------------------------------------------------
    def receive(self, message: str | bytes, now: float) -> list[MuxEvent]:
        """The events of one received message, in order.

        Raises:
            ProtocolError: the message makes the connection unreadable (close with its code).
        """
        self.last_heard = now
        if len(message) > self.limits.max_frame_bytes:
            raise ProtocolError(f"message over {self.limits.max_frame_bytes} bytes", CLOSE_TOO_BIG)
        if isinstance(message, bytes):
            return self._audio(parse_audio_frame(message), now)
        try:
            data: Any = loads_json(message)
        except ValueError:
            raise ProtocolError("control messages must be JSON") from None
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "start":
            return [self._start(data, now)]
        if kind == "stop":
            return self._stop(data)
        raise ProtocolError('control messages are {"type": "start", ...} or {"type": "stop", "stream": ...}')

    def _start(self, data: dict[str, Any], now: float) -> MuxEvent:
        sent_id = data.get("stream") if isinstance(data.get("stream"), str) else None
        tag = _tag_of(data)
        try:
            if tag is None:
                raise ProtocolError(f"tag must be an integer in 0..{MAX_TAG}")
            request = StartRequest.from_dict(data)
            if request.osc is not None and not self.osc_allowlist.allows(request.osc):
                raise osc_refusal(request.osc)
            if tag in self.by_tag:
                raise ProtocolError(f"tag {tag} is in use on this connection", CLOSE_POLICY)
            if request.stream in self.by_name or self.is_taken(request.stream):
                raise ProtocolError(f"stream id {request.stream!r} is in use", CLOSE_POLICY)
            if len(self.by_tag) >= self.limits.max_streams:
                raise ProtocolError(f"too many streams on this connection ({self.limits.max_streams})",
                                    CLOSE_TRY_AGAIN_LATER)
            if not self.room_for_stream():
                raise ProtocolError(self.full_reason, CLOSE_TRY_AGAIN_LATER)
        except ProtocolError as exc:
            return StreamEnded(sent_id if sent_id is not None and len(sent_id) <= 64 else None, tag,
                               exc.code, close_reason(exc))
        real_time = request.sample_rate * request.channels * 2  # int16 bytes per second
        capacity = real_time * self.limits.burst_s
        stream = MuxStream(tag, request, capacity, real_time * self.limits.rate_factor, capacity, now, now)
        self.by_tag[tag] = stream
        self.by_name[request.stream] = stream
        self.quiet_tags.discard(tag)
        return StreamStarted(stream, MuxStartedMessage(request.stream, tag).to_json())

    def _stop(self, data: dict[str, Any]) -> list[MuxEvent]:
        name = data.get("stream")
        stream = self.by_name.get(name) if isinstance(name, str) else None
        if stream is None:
            shown = name if isinstance(name, str) and len(name) <= 64 else None
            return [StreamEnded(shown, None, CLOSE_POLICY, f"no stream {shown!r} on this connection")]
        if stream.ending is not None:
            return []  # ended already: the client's stop crossed our end
        return [self._end(stream, CLOSE_NORMAL, STOP_REASON)]

    def _audio(self, chunks: list[tuple[int, bytes]], now: float) -> list[MuxEvent]:
        events: list[MuxEvent] = []
        for tag, pcm in chunks:
            stream = self.by_tag.get(tag)
            if stream is None:
                if tag not in self.quiet_tags:  # said once per tag, until it starts
                    self.quiet_tags.add(tag)
                    events.append(StreamEnded(None, tag, CLOSE_POLICY, "send the start message before any audio"))
                continue
            if stream.ending is not None:
                continue  # audio in flight when the stream ended
            try:
                mono = decode_pcm(pcm, stream.request.channels)
                self._spend(stream, len(pcm), now)
            except ProtocolError as exc:
                events.append(self._end(stream, exc.code, close_reason(exc)))
                continue
            stream.last_audio = now
            events.append(StreamAudio(stream, mono))
        return events

    def _spend(self, stream: MuxStream, size: int, now: float) -> None:
        stream.tokens = min(stream.capacity, stream.tokens + (now - stream.last_refill) * stream.refill_per_s)
        stream.last_refill = now
        if size > stream.tokens:
            raise ProtocolError(f"over {math.floor(stream.refill_per_s)} bytes/s "
                                f"({self.limits.rate_factor:g}x real time)", CLOSE_POLICY)
        stream.tokens -= size

    def end(self, name: str, code: int, reason: str) -> StreamEnded | None:
        """The server ends a live stream alone (the cluster: its model call failed, 1011).

        Its audio is dropped from now on; its final state and ``ended`` go out as for any end
        (:meth:`finish`).  None when no such stream runs (it had ended already).
        """
        stream = self.by_name.get(name)
        if stream is None or stream.ending is not None:
            return None
        return self._end(stream, code, reason)

    def _end(self, stream: MuxStream, code: int, reason: str) -> StreamEnded:
        stream.ending = StreamEnded(stream.name, stream.tag, code, reason, stream)
        return stream.ending

    # -- time ----------------------------------------------------------------------
    def next_deadline(self) -> float:
        """When :meth:`expire` next has something to do (the caller's clock)."""
        live = [s.last_audio + self.limits.idle_timeout_s for s in self.by_tag.values() if s.ending is None]
        if live:
            return min(live)
        if self.by_tag:  # only streams waiting for their final state: nothing to time out
            return math.inf
        return self.last_heard + self.limits.start_timeout_s

    def expire(self, now: float) -> list[StreamEnded]:
        """End the streams silent for too long.

        Raises:
            ProtocolError: no stream, and nothing received for the start timeout (1008).
        """
        if not self.by_tag and now >= self.last_heard + self.limits.start_timeout_s:
            raise ProtocolError(START_TIMEOUT_REASON.replace(f"{START_TIMEOUT_S:g} s",
                                                             f"{self.limits.start_timeout_s:g} s"), CLOSE_POLICY)
        reason = IDLE_TIMEOUT_REASON.replace(f"{IDLE_TIMEOUT_S:g} s", f"{self.limits.idle_timeout_s:g} s")
        return [self._end(s, CLOSE_POLICY, reason) for s in list(self.by_tag.values())
                if s.ending is None and now >= s.last_audio + self.limits.idle_timeout_s]

    # -- states out ----------------------------------------------------------------
    def tag_of(self, name: str) -> int | None:
        stream = self.by_name.get(name)
        return None if stream is None else stream.tag

    def finish(self, name: str) -> str | None:
        """A stream's final state has gone out: forget it, free its tag; its ``ended`` text to send.

        A stream that had not ended (the server is stopping: its final state came unasked)
        ends with 1001.  None for a stream this connection does not hold.
        """
        stream = self.by_name.pop(name, None)
        if stream is None:
            return None
        del self.by_tag[stream.tag]
        self.quiet_tags.add(stream.tag)
        ended = stream.ending or StreamEnded(stream.name, stream.tag, CLOSE_GOING_AWAY, STOPPING_REASON, stream)
        return ended.message

    def live_streams(self) -> list[MuxStream]:
        """Streams whose sources still run (to stop them when the connection goes)."""
        return [s for s in self.by_tag.values() if s.ending is None]
