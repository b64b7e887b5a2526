"""Wire formats of an emotion state: OSC packets and JSON messages (pure).

Nothing here touches a socket: each function turns a state into bytes or a
dict, so the formats are tested in memory and every transport sends exactly
the same thing.

OSC, generic scheme (one bundle per decision, or the same messages unbundled)::

    /ser/state          s f   smoothed label, its confidence (0..1)
    /ser/emotion/<label> f    smoothed probability of each model class
    /ser/voice          i     1 while a voice is heard, else 0
    /ser/seq            i     decision number (contiguous per stream)

With a stream prefix (several streams in one daemon) the addresses become
``/ser/<stream>/state`` and so on.  Every argument is typed explicitly and
converted from numpy first: receivers such as VRChat misread an int sent to a
float parameter, and python-osc rejects numpy scalars.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable, Mapping

from pythonosc.osc_bundle_builder import IMMEDIATELY
from pythonosc.parsing import osc_types
from pythonosc.osc_message_builder import OscMessageBuilder

from . import __version__
from .state import EmotionState

__all__ = [
    "PROTOCOL_VERSION",
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


def osc_message(address: str, *args: tuple[str, Any]) -> bytes:
    """One OSC message from ``(type_tag, value)`` pairs; types ``f``, ``i``, ``s``, ``T``/``F``."""
    b = OscMessageBuilder(address=address)
    for tag, value in args:
        if tag == "f":
            v = float(value)
            b.add_arg(v if math.isfinite(v) else 0.0, OscMessageBuilder.ARG_TYPE_FLOAT)
        elif tag == "i":
            b.add_arg(int(value), OscMessageBuilder.ARG_TYPE_INT)
        elif tag == "s":
            b.add_arg(str(value), OscMessageBuilder.ARG_TYPE_STRING)
        elif tag in ("T", "F"):
            b.add_arg(bool(value), OscMessageBuilder.ARG_TYPE_TRUE if value else OscMessageBuilder.ARG_TYPE_FALSE)
        else:
            raise ValueError(f"unsupported OSC type tag {tag!r}")
    return b.build().dgram


def generic_osc_messages(state: EmotionState, prefix: str = "/ser") -> list[bytes]:
    """The generic scheme's messages for one state, in send order."""
    msgs = [osc_message(f"{prefix}/state", ("s", state.label), ("f", state.confidence))]
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


def state_json(
    state: EmotionState, client_dropped: int = 0, weights: Mapping[str, Mapping[str, float]] | None = None
) -> dict[str, Any]:
    """The WebSocket message for one state (see ser_daemon/schema/messages.schema.json)."""
    msg = {
        "type": "state",
        "protocol": PROTOCOL_VERSION,
        "stream": state.stream,
        "seq": state.seq,
        "label": state.label,
        "confidence": _r(state.confidence),
        "voice": bool(state.voice_active),
        "probs": {k: _r(v) for k, v in zip(state.labels, state.smoothed)},
        "raw": {k: _r(v) for k, v in zip(state.labels, state.raw)} if state.raw else None,
        "end_sample": int(state.end_sample),
        "audio_time": _r(state.audio_time, 6),
        "emitted_time": _r(state.emitted_time, 6),
        "latency_ms": _r(state.latency_ms, 3),
        "dropped_windows": int(state.dropped_windows),
        "overruns": int(state.overruns),
        "late": bool(state.late),
        "final": bool(state.final),
        "weights": {ts: {k: _r(v) for k, v in ws.items()} for ts, ws in (weights or {}).items()},
        "client_dropped": int(client_dropped),
    }
    return msg


def hello_json(
    *, labels: Iterable[str], model: str, sample_rate: int, window_ms: float, hop_ms: float, streams: Iterable[str]
) -> dict[str, Any]:
    """The first message every WebSocket client gets."""
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "server": f"ser-daemon/{__version__}",
        "model": model,
        "labels": list(labels),
        "sample_rate": int(sample_rate),
        "window_ms": _r(window_ms, 3),
        "hop_ms": _r(hop_ms, 3),
        "streams": list(streams),
    }


def status_json(stream: str, status: str, detail: str, when: float) -> dict[str, Any]:
    """A stream's input status: "capturing" or "no_audio" (device gone; retrying)."""
    return {"type": "status", "protocol": PROTOCOL_VERSION, "stream": stream, "status": status,
            "detail": detail, "time": _r(when, 6)}


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON text of a message."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)
