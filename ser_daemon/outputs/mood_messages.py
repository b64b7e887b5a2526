"""Wire formats of mood readings and mood events: JSON messages and OSC packets (pure).

WebSocket / ``--jsonl`` / session log: a ``mood`` message per reading and an
``event`` message per event, both in ``ser_daemon/schema/messages.schema.json``.
Horizons without any voice yet are ``null`` (not 0: silence is not a mood).

OSC, generic scheme (``prefix`` is ``/ser``, or ``/ser/<stream>`` with several streams)::

    /ser/mood/valence    f f f   moment, last minute, session (-1..1; 0 while unknown)
    /ser/mood/arousal    f f f   the same for arousal
    /ser/mood/talking    f f     share of the last minute and of the session with a voice (0..1)
    /ser/mood/silence    f f     current silence, seconds; silent share of the silence window (0..1)
    /ser/mood/known      i       1 once a voice was heard in the last minute, else 0
    /ser/mood/event      s f s   kind, stream time (s), evidence as compact JSON

VRChat (optional float parameters, -1..1 or 0..1 as VRChat floats are; minute horizon)::

    /avatar/parameters/<prefix>MoodValence   f
    /avatar/parameters/<prefix>MoodArousal   f
    /avatar/parameters/<prefix>MoodTalking   f

VRChat has no event type; an app that wants events listens to the generic
scheme or the WebSocket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.mood import Horizons, MoodReading
from ..core.mood_events import MoodEvent
from ..core.mood_stage import MoodUpdate
from .messages import ProtocolMessage, dumps, osc_message

__all__ = [
    "VRCHAT_MOOD_PARAMS",
    "MoodMessage",
    "EventMessage",
    "mood_json",
    "event_json",
    "update_messages",
    "update_lines",
    "generic_mood_osc_update",
    "generic_mood_osc_messages",
    "mood_event_osc_message",
    "vrchat_mood_params",
    "vrchat_mood_osc_messages",
]

VRCHAT_MOOD_PARAMS = ("MoodValence", "MoodArousal", "MoodTalking")


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, nd) if math.isfinite(x) else None


def _horizons(h: Horizons) -> dict[str, float | None]:
    return {k: _r(v) for k, v in h.to_dict().items()}


@dataclass(frozen=True)
class MoodMessage(ProtocolMessage):
    """The ``mood`` message of one reading (the schema's ``mood``)."""

    TYPE: ClassVar[str] = "mood"

    stream: str
    time: float | None
    voice: bool
    valence: dict[str, float | None]
    arousal: dict[str, float | None]
    talking: dict[str, float | None]
    silence_s: float | None
    silent_share: float | None
    voiced_s: dict[str, float | None]
    session_s: float | None
    emotions: dict[str, dict[str, float | None]]

    @classmethod
    def of(cls, reading: MoodReading) -> MoodMessage:
        """The message of ``reading``, rounded as the wire carries it."""
        r = reading
        return cls(
            stream=r.stream,
            time=_r(r.time_s, 3),
            voice=bool(r.voice),
            valence=_horizons(r.valence),
            arousal=_horizons(r.arousal),
            talking={"minute": _r(r.talking_minute), "session": _r(r.talking_session)},
            silence_s=_r(r.silence_s, 3),
            silent_share=_r(r.silent_share),
            voiced_s={"minute": _r(r.voiced_s_minute, 3), "session": _r(r.voiced_s_session, 3)},
            session_s=_r(r.session_s, 3),
            emotions={"minute": {k: _r(v) for k, v in r.emotions_minute.items()},
                      "session": {k: _r(v) for k, v in r.emotions_session.items()}},
        )


def mood_json(reading: MoodReading) -> dict[str, Any]:
    """The ``mood`` message of one reading (see the schema's ``mood``)."""
    return MoodMessage.of(reading).to_dict()


@dataclass(frozen=True)
class EventMessage(ProtocolMessage):
    """The ``event`` message of one mood event (the schema's ``event``)."""

    TYPE: ClassVar[str] = "event"

    stream: str
    kind: str
    time: float | None
    evidence: dict[str, float | str | None]

    @classmethod
    def of(cls, event: MoodEvent) -> EventMessage:
        """The message of ``event``: numbers rounded, strings and nulls as they are."""
        evidence = {k: (v if isinstance(v, str) or v is None else _r(v)) for k, v in event.evidence.items()}
        return cls(stream=event.stream, kind=event.kind, time=_r(event.time_s, 3), evidence=evidence)


def event_json(event: MoodEvent) -> dict[str, Any]:
    """The ``event`` message of one mood event (see the schema's ``event``)."""
    return EventMessage.of(event).to_dict()


def update_messages(update: MoodUpdate) -> list[dict[str, Any]]:
    """The messages of one mood update, in send order: its ``mood`` (if any), then each ``event``."""
    head = [] if update.reading is None else [mood_json(update.reading)]
    return head + [event_json(e) for e in update.events]


def _signed(x: float | None) -> str:
    return "   ?" if x is None else f"{x:+.2f}"


def update_lines(update: MoodUpdate) -> list[str]:
    """``--print`` lines of one mood update: a mood line (minute horizon) and a line per event."""
    out = []
    r = update.reading
    if r is not None:
        talk = "?" if r.talking_minute is None else f"{r.talking_minute:.2f}"
        out.append(f"[{r.stream}] mood {r.time_s:7.2f}s  valence {_signed(r.valence.minute)} "
                   f"arousal {_signed(r.arousal.minute)} (minute)  talking {talk}  silence {r.silence_s:.1f}s")
    for e in update.events:
        out.append(f"[{e.stream}] event {e.time_s:7.2f}s  {e.kind}  {dumps(event_json(e)['evidence'])}")
    return out


def _f(x: float | None) -> tuple[str, float]:
    return ("f", 0.0 if x is None else float(x))


def generic_mood_osc_messages(reading: MoodReading, prefix: str = "/ser") -> list[bytes]:
    """The generic scheme's mood messages for one reading, in send order."""
    r = reading
    p = f"{prefix}/mood"
    return [
        osc_message(f"{p}/valence", _f(r.valence.moment), _f(r.valence.minute), _f(r.valence.session)),
        osc_message(f"{p}/arousal", _f(r.arousal.moment), _f(r.arousal.minute), _f(r.arousal.session)),
        osc_message(f"{p}/talking", _f(r.talking_minute), _f(r.talking_session)),
        osc_message(f"{p}/silence", _f(r.silence_s), _f(r.silent_share)),
        osc_message(f"{p}/known", ("i", 0 if r.valence.minute is None else 1)),
    ]


def mood_event_osc_message(event: MoodEvent, prefix: str = "/ser") -> bytes:
    """``/ser/mood/event`` for one event: kind, time, evidence JSON."""
    evidence = event_json(event)["evidence"]
    return osc_message(f"{prefix}/mood/event", ("s", event.kind), ("f", event.time_s), ("s", dumps(evidence)))


def generic_mood_osc_update(update: MoodUpdate, prefix: str = "/ser") -> list[bytes]:
    """The generic scheme's messages of one mood update: the reading's, then one per event."""
    msgs = [] if update.reading is None else generic_mood_osc_messages(update.reading, prefix)
    return msgs + [mood_event_osc_message(e, prefix) for e in update.events]


def vrchat_mood_params(reading: MoodReading, prefix: str = "SER_") -> list[tuple[str, float]]:
    """VRChat float parameters (name, value) of one reading: the minute horizon, 0 while unknown."""
    r = reading
    values = (r.valence.minute, r.arousal.minute, r.talking_minute)
    return [(prefix + name, 0.0 if v is None else max(-1.0, min(1.0, float(v))))
            for name, v in zip(VRCHAT_MOOD_PARAMS, values)]


def vrchat_mood_osc_messages(reading: MoodReading, prefix: str = "SER_") -> list[bytes]:
    """The VRChat parameter messages of :func:`vrchat_mood_params`."""
    return [osc_message(f"/avatar/parameters/{name}", ("f", value)) for name, value in vrchat_mood_params(reading, prefix)]
