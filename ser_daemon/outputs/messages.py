"""Wire formats of an emotion state: OSC packets and JSON messages (pure).

Nothing here touches a socket: each function turns a state into bytes or a
dict, so the formats are tested in memory and every transport sends exactly
the same thing.

OSC, generic scheme (one bundle per decision, or the same messages unbundled)::

    /ser/state          s f   smoothed label ("unsure" while uncertain), its confidence (0..1)
    /ser/emotion/<label> f    smoothed probability of each model class
    /ser/voice          i     1 while a voice is heard, else 0
    /ser/seq            i     decision number (contiguous per stream)
    /ser/final          i     1, last in the stream's final state only (the generic profile adds it
                              after the mapped weights)

With a stream prefix (several streams in one daemon) the addresses become
``/ser/<stream>/state`` and so on.  While the smoother is uncertain the state
message says ``unsure`` (a state, not the class ``neutral``) with the best
guess's confidence; the per-class probabilities still carry the evidence.  Every argument is typed explicitly and
converted from numpy first: receivers such as VRChat misread an int sent to a
float parameter, and python-osc rejects numpy scalars.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping

from pythonosc.osc_bundle_builder import IMMEDIATELY
from pythonosc.parsing import osc_types

from .. import __version__
from ..core.smoothing import UNSURE
from ..core.state import EmotionState
from ..net.wire import WireMessage

__all__ = [
    "PROTOCOL_VERSION",
    "ProtocolMessage",
    "StateMessage",
    "HelloMessage",
    "StatusMessage",
    "with_client_dropped",
    "osc_name",
    "osc_message",
    "generic_osc_messages",
    "osc_packets",
    "state_json",
    "hello_json",
    "status_json",
    "dumps",
]

PROTOCOL_VERSION = 1
_NAME_RE = re.compile(r"[^A-Za-z0-9_\-]")


def osc_name(text: str) -> str:
    """Make ``text`` safe as one OSC address part (no ``/``, spaces or pattern characters)."""
    return _NAME_RE.sub("_", text) or "_"


def _pad(b: bytes) -> bytes:
    """OSC strings end with a NUL and are padded to a multiple of 4 bytes."""
    return b + b"\x00" * (4 - len(b) % 4)


_HEADERS: dict[tuple[str, str], bytes] = {}
_MAX_HEADERS = 4096


def osc_message(address: str, *args: tuple[str, Any]) -> bytes:
    """One OSC 1.0 message from ``(type_tag, value)`` pairs; types ``f``, ``i``, ``s``, ``T``/``F``.

    Built by hand rather than with python-osc's builder (about 20 us a message),
    because a decision sends dozens of them; the address and type-tag part is
    cached.  Values are converted explicitly, so numpy scalars and ints sent
    as floats go out with the declared type.
    """
    tags = "".join(tag for tag, _ in args)
    header = _HEADERS.get((address, tags))
    if header is None:
        if not address.startswith("/"):
            raise ValueError(f"OSC addresses start with '/'. Received: {address!r}")
        for tag in tags:
            if tag not in "fisTF":
                raise ValueError(f"unsupported OSC type tag {tag!r}")
        header = _pad(address.encode("utf-8")) + _pad(("," + tags).encode("ascii"))
        if len(_HEADERS) < _MAX_HEADERS:
            _HEADERS[(address, tags)] = header
    parts = [header]
    for tag, value in args:
        if tag == "f":
            v = float(value)
            parts.append(_F32.pack(v if math.isfinite(v) else 0.0))
        elif tag == "i":
            parts.append(_I32.pack(int(value)))
        elif tag == "s":
            parts.append(_pad(str(value).encode("utf-8")))
    return b"".join(parts)


_F32 = struct.Struct(">f")
_I32 = struct.Struct(">i")


def generic_osc_messages(state: EmotionState, prefix: str = "/ser") -> list[bytes]:
    """The generic scheme's messages for one state, in send order."""
    label = UNSURE if state.uncertain else state.label
    msgs = [osc_message(f"{prefix}/state", ("s", label), ("f", state.confidence))]
    for label, p in zip(state.labels, state.smoothed):
        msgs.append(osc_message(f"{prefix}/emotion/{osc_name(label)}", ("f", p)))
    msgs.append(osc_message(f"{prefix}/voice", ("i", 1 if state.voice_active else 0)))
    msgs.append(osc_message(f"{prefix}/seq", ("i", state.seq)))
    return msgs


def osc_packets(messages: Iterable[bytes], bundle: bool = True) -> list[bytes]:
    """Datagrams to send: one bundle holding all messages, or the messages themselves."""
    msgs = list(messages)
    if not bundle:
        return msgs
    parts = [b"#bundle\x00", osc_types.write_date(IMMEDIATELY)]
    for m in msgs:
        parts.append(osc_types.write_int(len(m)))
        parts.append(m)
    return [b"".join(parts)]


def _r(x: float, nd: int = 4) -> float:
    x = float(x)
    return round(x, nd) if math.isfinite(x) else 0.0


@dataclass(frozen=True)
class ProtocolMessage(WireMessage):
    """A message of the daemon's WebSocket protocol: ``protocol`` follows ``type``."""

    PROTOCOL: ClassVar[int | None] = PROTOCOL_VERSION


@dataclass(frozen=True)
class StateMessage(ProtocolMessage):
    """The WebSocket / ``--jsonl`` message of one state (the schema's ``state``).

    ``client_dropped`` comes last on the wire: :func:`with_client_dropped` relies on it.
    """

    TYPE: ClassVar[str] = "state"

    stream: str
    seq: int
    label: str
    uncertain: bool
    confidence: float
    voice: bool
    probs: dict[str, float]
    raw: dict[str, float] | None
    end_sample: int
    audio_time: float
    emitted_time: float
    latency_ms: float
    dropped_windows: int
    overruns: int
    late: bool
    final: bool
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    client_dropped: int = 0

    @classmethod
    def of(cls, state: EmotionState, client_dropped: int = 0,
           weights: Mapping[str, Mapping[str, float]] | None = None) -> StateMessage:
        """The message of ``state``: plain Python values, rounded as the wire carries them."""
        return cls(
            stream=state.stream,
            seq=state.seq,
            label=state.label,
            uncertain=bool(state.uncertain),
            confidence=_r(state.confidence),
            voice=bool(state.voice_active),
            probs={k: _r(v) for k, v in zip(state.labels, state.smoothed)},
            raw={k: _r(v) for k, v in zip(state.labels, state.raw)} if state.raw else None,
            end_sample=int(state.end_sample),
            audio_time=_r(state.audio_time, 6),
            emitted_time=_r(state.emitted_time, 6),
            latency_ms=_r(state.latency_ms, 3),
            dropped_windows=int(state.dropped_windows),
            overruns=int(state.overruns),
            late=bool(state.late),
            final=bool(state.final),
            weights={ts: {k: _r(v) for k, v in ws.items()} for ts, ws in (weights or {}).items()},
            client_dropped=int(client_dropped),
        )


def state_json(
    state: EmotionState, client_dropped: int = 0, weights: Mapping[str, Mapping[str, float]] | None = None
) -> dict[str, Any]:
    """The WebSocket message for one state (see ser_daemon/schema/messages.schema.json)."""
    return StateMessage.of(state, client_dropped, weights).to_dict()


@dataclass(frozen=True)
class HelloMessage(ProtocolMessage):
    """The first message every WebSocket client gets (the schema's ``hello``).

    ``profile`` (the personal profile in use) and ``vrchat`` (what is known of VRChat) are
    left out while None.
    """

    TYPE: ClassVar[str] = "hello"
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"profile", "vrchat"})

    server: str
    model: str
    labels: list[str]
    sample_rate: int
    window_ms: float
    hop_ms: float
    streams: list[str]
    profile: str | None = None
    vrchat: dict[str, Any] | None = None

    @classmethod
    def of(cls, *, labels: Iterable[str], model: str, sample_rate: int, window_ms: float, hop_ms: float,
           streams: Iterable[str], profile: str | None = None, vrchat: Mapping[str, Any] | None = None) -> HelloMessage:
        """This server's hello."""
        return cls(server=f"ser-daemon/{__version__}", model=model, labels=list(labels), sample_rate=int(sample_rate),
                   window_ms=_r(window_ms, 3), hop_ms=_r(hop_ms, 3), streams=list(streams),
                   profile=None if profile is None else str(profile), vrchat=None if vrchat is None else dict(vrchat))


def hello_json(
    *, labels: Iterable[str], model: str, sample_rate: int, window_ms: float, hop_ms: float, streams: Iterable[str],
    profile: str | None = None,
) -> dict[str, Any]:
    """The first message every WebSocket client gets (``profile``: the personal profile in use, if any)."""
    return HelloMessage.of(labels=labels, model=model, sample_rate=sample_rate, window_ms=window_ms, hop_ms=hop_ms,
                           streams=streams, profile=profile).to_dict()


@dataclass(frozen=True)
class StatusMessage(ProtocolMessage):
    """A stream's input status (the schema's ``status``): "capturing" or "no_audio" (device gone; retrying)."""

    TYPE: ClassVar[str] = "status"

    stream: str
    status: str
    detail: str
    time: float

    @classmethod
    def of(cls, stream: str, status: str, detail: str, when: float) -> StatusMessage:
        return cls(stream, status, detail, _r(when, 6))


def status_json(stream: str, status: str, detail: str, when: float) -> dict[str, Any]:
    """A stream's input status: "capturing" or "no_audio" (device gone; retrying)."""
    return StatusMessage.of(stream, status, detail, when).to_dict()


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON text of a message."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


# state_json puts client_dropped last, so the text dumps makes of a fresh state ends with this.
_NO_CLIENT_DROPS = '"client_dropped":0}'


def with_client_dropped(state_text: str, dropped: int) -> str:
    """A state's JSON text (``dumps(state_json(state))``) with one client's ``client_dropped`` count.

    The broadcaster encodes each state once for every client; only this field differs between
    them, and its place at the end is this module's promise (text of any other shape comes back
    as it was).
    """
    if not dropped or not state_text.endswith(_NO_CLIENT_DROPS):
        return state_text
    return f'{state_text[: -len(_NO_CLIENT_DROPS)]}"client_dropped":{int(dropped)}}}'
