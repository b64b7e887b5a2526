"""The multiplexed ingest protocol's wire formats (pure): its JSON messages and its binary frames.

Both directions, encoder beside decoder, so a client (``examples/ingest_mux_client.py``, the load
generator in ``benchmarks/``), the daemon's server and a test read and write with one definition.
The rules about what a message means for a stream live in :mod:`.ingest_mux`.

Audio frame (client to server; little-endian)::

    u8 kind = 0x01 | u8 count (1..255) | count x ( u16 tag | u32 n | n bytes of int16 PCM )

States frame (server to client, with :data:`SUBPROTOCOL_BINARY`; little-endian)::

    u8 kind = 0x02 | u8 labels (L) | u16 count | count x record
    record: u16 tag | u8 flags | u8 label | u32 seq | u32 end_sample mod 2**32
            | f32 confidence | f32 latency_ms | L x f32 smoothed probability

``flags``: 1 voice, 2 uncertain, 4 final, 8 late.  ``label`` indexes the ``welcome`` message's
labels; 255 is ``"neutral"`` where neutral is not one of the model's classes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from ..core.state import EmotionState
from .ingest_protocol import ProtocolError
from .wire import WireMessage

__all__ = [
    "SUBPROTOCOL_JSON",
    "SUBPROTOCOL_BINARY",
    "SUBPROTOCOLS",
    "MAX_TAG",
    "select_subprotocol",
    "MuxStartMessage",
    "MuxStartedMessage",
    "MuxStopMessage",
    "EndedMessage",
    "WelcomeMessage",
    "encode_audio_frame",
    "parse_audio_frame",
    "encode_states",
    "decode_states",
    "states_json",
]

SUBPROTOCOL_JSON = "ser-ingest-mux.v1"
SUBPROTOCOL_BINARY = "ser-ingest-mux.v1.binary"
SUBPROTOCOLS = (SUBPROTOCOL_JSON, SUBPROTOCOL_BINARY)

FRAME_AUDIO = 0x01
FRAME_STATES = 0x02
_AUDIO_HEADER = struct.Struct("<BB")  # kind, chunk count
_CHUNK_HEADER = struct.Struct("<HI")  # tag, PCM byte length
_STATES_HEADER = struct.Struct("<BBH")  # kind, labels per record, record count
_STATE_RECORD = struct.Struct("<HBBIIff")  # tag, flags, label, seq, end_sample mod 2**32, confidence, latency_ms
FLAG_VOICE, FLAG_UNCERTAIN, FLAG_FINAL, FLAG_LATE = 1, 2, 4, 8
LABEL_NEUTRAL = 0xFF  # the label "neutral" where it is not one of the model's classes
MAX_TAG = 0xFFFF
MAX_CHUNKS = 0xFF


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """The multiplexed protocol the client offered first, or None: today's protocol."""
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    return None



@dataclass(frozen=True)
class MuxStartMessage(WireMessage):
    """A stream's start message (client): today's start plus the stream's ``tag``."""

    TYPE: ClassVar[str] = "start"
    stream: str
    tag: int
    sample_rate: int
    channels: int = 1


@dataclass(frozen=True)
class MuxStartedMessage(WireMessage):
    """The server admitted a stream: its audio may flow (it may also flow before this arrives)."""

    TYPE: ClassVar[str] = "started"
    stream: str
    tag: int


@dataclass(frozen=True)
class MuxStopMessage(WireMessage):
    """The client ends one stream: its final state, then its ``ended`` (1000, "stopped") follow."""

    TYPE: ClassVar[str] = "stop"
    stream: str


@dataclass(frozen=True)
class EndedMessage(WireMessage):
    """One stream ended (or was refused): today's close code and reason, for this stream alone.

    ``stream`` and ``tag`` are None where the client sent none that could be read.
    """

    TYPE: ClassVar[str] = "ended"
    stream: str | None
    tag: int | None
    code: int
    reason: str


@dataclass(frozen=True)
class WelcomeMessage(WireMessage):
    """The server's first message on a multiplexed connection.

    Attributes:
        protocol: the subprotocol agreed.
        states: ``"json"`` or ``"binary"``: the form of the states to come.
        labels: the model's classes, in the order of the binary records' probabilities.
        limits: :meth:`MuxLimits.to_dict`.
    """

    TYPE: ClassVar[str] = "welcome"
    protocol: str
    states: str
    labels: list[str]
    limits: dict[str, Any]


def encode_audio_frame(chunks: Iterable[tuple[int, bytes]]) -> bytes:
    """One audio frame of ``(tag, int16 PCM bytes)`` chunks (a client's side; 1..255 chunks)."""
    items = list(chunks)
    if not 1 <= len(items) <= MAX_CHUNKS:
        raise ValueError(f"an audio frame carries 1..{MAX_CHUNKS} chunks. Received: {len(items)}")
    parts = [_AUDIO_HEADER.pack(FRAME_AUDIO, len(items))]
    for tag, pcm in items:
        parts += [_CHUNK_HEADER.pack(tag, len(pcm)), pcm]
    return b"".join(parts)


def parse_audio_frame(data: bytes) -> list[tuple[int, bytes]]:
    """The ``(tag, PCM bytes)`` chunks of an audio frame.

    Raises:
        ProtocolError: the frame's layout does not parse (1007): the connection is unreadable.
    """
    if len(data) < _AUDIO_HEADER.size:
        raise ProtocolError("audio frame shorter than its header")
    kind, count = _AUDIO_HEADER.unpack_from(data)
    if kind != FRAME_AUDIO:
        raise ProtocolError(f"unknown binary frame kind {kind} (audio frames start with {FRAME_AUDIO})")
    if count == 0:
        raise ProtocolError("audio frame with no chunk")
    view = memoryview(data)
    at = _AUDIO_HEADER.size
    out: list[tuple[int, bytes]] = []
    for _ in range(count):
        if at + _CHUNK_HEADER.size > len(data):
            raise ProtocolError("audio frame cut inside a chunk header")
        tag, size = _CHUNK_HEADER.unpack_from(data, at)
        at += _CHUNK_HEADER.size
        if at + size > len(data):
            raise ProtocolError("audio chunk longer than its frame")
        out.append((tag, bytes(view[at : at + size])))
        at += size
    if at != len(data):
        raise ProtocolError("bytes after the last chunk of an audio frame")
    return out


def states_json(states: Sequence[Mapping[str, Any]]) -> str:
    """One tick's states as one JSON message, each in the daemon's ``state`` message form."""
    return json.dumps({"type": "states", "states": list(states)}, separators=(",", ":"), allow_nan=False)


def encode_states(items: Sequence[tuple[int, EmotionState]], labels: Sequence[str]) -> bytes:
    """One tick's states as one binary frame: ``u8 0x02, u8 labels, u16 count``, then per state
    ``u16 tag, u8 flags, u8 label, u32 seq, u32 end_sample mod 2**32, f32 confidence,
    f32 latency_ms`` and one f32 smoothed probability per label (all little-endian)."""
    index = {name: i for i, name in enumerate(labels)}
    parts = [_STATES_HEADER.pack(FRAME_STATES, len(labels), len(items))]
    for tag, s in items:
        flags = (FLAG_VOICE * bool(s.voice_active) | FLAG_UNCERTAIN * bool(s.uncertain)
                 | FLAG_FINAL * bool(s.final) | FLAG_LATE * bool(s.late))
        parts.append(_STATE_RECORD.pack(tag, flags, index.get(s.label, LABEL_NEUTRAL), s.seq & 0xFFFFFFFF,
                                        int(s.end_sample) & 0xFFFFFFFF, s.confidence, s.latency_ms))
        parts.append(np.asarray(s.smoothed, dtype="<f4").tobytes())
    return b"".join(parts)


def decode_states(data: bytes, labels: Sequence[str]) -> list[dict[str, Any]]:
    """A binary states frame back to dicts (a client's side; labels from the ``welcome``).

    Raises:
        ValueError: not a states frame of ``labels``.
    """
    kind, n_labels, count = _STATES_HEADER.unpack_from(data)
    if kind != FRAME_STATES or n_labels != len(labels):
        raise ValueError(f"not a states frame of {len(labels)} labels")
    out = []
    at = _STATES_HEADER.size
    for _ in range(count):
        tag, flags, label, seq, end_sample, confidence, latency_ms = _STATE_RECORD.unpack_from(data, at)
        at += _STATE_RECORD.size
        probs = np.frombuffer(data, dtype="<f4", count=n_labels, offset=at)
        at += 4 * n_labels
        out.append({"tag": tag, "seq": seq, "label": "neutral" if label == LABEL_NEUTRAL else labels[label],
                    "confidence": confidence, "voice": bool(flags & FLAG_VOICE),
                    "uncertain": bool(flags & FLAG_UNCERTAIN), "final": bool(flags & FLAG_FINAL),
                    "late": bool(flags & FLAG_LATE), "end_sample": end_sample, "latency_ms": latency_ms,
                    "probs": dict(zip(labels, (float(p) for p in probs)))})
    if at != len(data):
        raise ValueError("bytes after the last state record")
    return out
