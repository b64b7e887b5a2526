"""Mood over a session: valence, arousal and talk time of one stream (sans-I/O).

The smoother says what the face shows now; an app that wants to know how a
user has felt for the last minute, or since the start, reads this instead.
One :class:`MoodTracker` per stream sits beside the smoother and takes the same
states.  Each update gives a :class:`MoodReading`:

- valence and arousal (-1..1) of each voiced window, from the model's class
  probabilities through the circumplex of :mod:`ser_daemon.core.mood_settings`;
- over three horizons: the *moment* (an exponential average over voiced time,
  time constant ``moment_s``), the *last minute* and the *session* (means
  weighted by the time each state covers);
- the share of talking time, and the share of voiced time per shown emotion;
- silence as its own signal: the current silence's length and the silent
  share of the last ``silence_window_s``.

Voice-gated: only windows where the gate heard a voice move valence and
arousal.  Silence is not sadness: a silent stretch leaves every average where
it was (a horizon with no voice at all says ``None``, not 0 or -1).

Time is the stream's own (the state's audio position, not the wall clock), so a
file replayed fast gives the same readings as live.  Each state covers the time
since the previous one, capped at ``max_step_s``.  Memory is bounded: the
sliding windows hold at most one entry per state over their span, and never
more than :data:`MAX_WINDOW_ENTRIES` (the oldest entries are dropped first).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from .mood_settings import Circumplex, MoodSettings
from .smoothing import UNSURE

__all__ = ["MAX_WINDOW_ENTRIES", "Horizons", "MoodReading", "MoodTracker"]

MAX_WINDOW_ENTRIES = 100_000  # 7 hours of 250 ms states over one window; far above any configured span


@dataclass(frozen=True)
class Horizons:
    """One figure over the three horizons; None where that horizon heard no voice yet."""

    moment: float | None = None
    minute: float | None = None
    session: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"moment": self.moment, "minute": self.minute, "session": self.session}


@dataclass(frozen=True)
class MoodReading:
    """The mood of one stream after one state.

    Attributes:
        stream: stream id.
        time_s: stream time of the state, seconds from the stream's start.
        voice: the state was voiced (and so moved valence and arousal).
        valence: unpleasant (-1) to pleasant (+1), per horizon.
        arousal: sleepy (-1) to activated (+1), per horizon.
        point: valence and arousal of this state alone (None when silent).
        talking_minute: share of the last minute with a voice (None before any time passed).
        talking_session: share of the session with a voice.
        silence_s: seconds since the voice was last heard (since the start if never).
        silent_share: share of the last ``silence_window_s`` without a voice.
        voiced_s_minute: voiced seconds in the last minute.
        voiced_s_session: voiced seconds in the session.
        session_s: seconds the session has covered.
        emotions_minute: share of the last minute's voiced time per shown label
            ("unsure" for uncertain states); empty without voice.
        emotions_session: the same over the session.
    """

    stream: str
    time_s: float
    voice: bool
    valence: Horizons
    arousal: Horizons
    point: tuple[float, float] | None
    talking_minute: float | None
    talking_session: float | None
    silence_s: float
    silent_share: float | None
    voiced_s_minute: float
    voiced_s_session: float
    session_s: float
    emotions_minute: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    emotions_session: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


class _TimeWindow:
    """Time-weighted sums over the last ``span_s`` seconds (one entry per state, added and expired)."""

    def __init__(self, span_s: float) -> None:
        self.span_s = float(span_s)
        self._entries: deque[tuple[float, float, bool, float, float, str | None]] = deque()
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self.total_s = self.voiced_s = self.valence_s = self.arousal_s = 0.0
        self.label_s: dict[str, float] = {}

    def add(self, end_s: float, dt_s: float, voiced: bool, v: float, a: float, label: str | None) -> None:
        if dt_s <= 0.0:
            return
        if len(self._entries) >= MAX_WINDOW_ENTRIES:
            self._pop()
        self._entries.append((end_s, dt_s, voiced, v, a, label))
        self.total_s += dt_s
        if voiced:
            self.voiced_s += dt_s
            self.valence_s += v * dt_s
            self.arousal_s += a * dt_s
            if label is not None:
                self.label_s[label] = self.label_s.get(label, 0.0) + dt_s

    def expire(self, now_s: float) -> None:
        """Forget the states that ended ``span_s`` or more before ``now_s``."""
        while self._entries and self._entries[0][0] <= now_s - self.span_s:
            self._pop()
        if not self._entries:
            self.clear()  # no drift left behind by the running sums

    def _pop(self) -> None:
        _, dt, voiced, v, a, label = self._entries.popleft()
        self.total_s = max(0.0, self.total_s - dt)
        if voiced:
            self.voiced_s = max(0.0, self.voiced_s - dt)
            self.valence_s -= v * dt
            self.arousal_s -= a * dt
            if label is not None:
                left = self.label_s.get(label, 0.0) - dt
                if left > 1e-9:
                    self.label_s[label] = left
                else:
                    self.label_s.pop(label, None)

    def mean(self, total: float) -> float | None:
        return _clip(total / self.voiced_s) if self.voiced_s > 1e-9 else None

    def talking_share(self) -> float | None:
        return min(1.0, self.voiced_s / self.total_s) if self.total_s > 1e-9 else None

    def shares(self) -> Mapping[str, float]:
        total = sum(self.label_s.values())
        if total <= 1e-9:
            return MappingProxyType({})
        return MappingProxyType({k: v / total for k, v in sorted(self.label_s.items())})


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, float(x)))


class MoodTracker:
    """Valence, arousal, talk and silence of one stream, over three horizons."""

    def __init__(self, labels: Sequence[str], settings: MoodSettings | None = None, stream: str = "mic") -> None:
        self.settings = settings if settings is not None else MoodSettings()
        self.labels = tuple(labels)
        self.stream = stream
        self.circumplex: Circumplex = self.settings.circumplex_for(self.labels)
        self._minute = _TimeWindow(self.settings.minute_s)
        self._silence = _TimeWindow(self.settings.silence_window_s)
        self._session = _TimeWindow(math.inf)
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new session."""
        self._minute.clear()
        self._silence.clear()
        self._session.clear()
        self._last_t: float | None = None
        self._first_t: float | None = None
        self._last_voice_t: float | None = None
        self._moment: tuple[float, float] | None = None

    def update(self, time_s: float, probs: Sequence[float] | np.ndarray | None, voice_active: bool,
               label: str | None = None) -> MoodReading:
        """Advance to ``time_s`` with one state.

        Args:
            time_s: the state's stream time (seconds; the end of its window).  A
                time earlier than the previous one counts as no time passed.
            probs: the model's probabilities for the window (label order), or
                None when no inference ran.
            voice_active: whether the gate heard a voice.
            label: the label shown (for the share per emotion), e.g. "unsure".
        """
        s = self.settings
        t = float(time_s)
        if self._first_t is None:
            self._first_t = t
        dt = 0.0 if self._last_t is None else min(max(0.0, t - self._last_t), s.max_step_s)
        self._last_t = t if self._last_t is None else max(t, self._last_t)
        t = self._last_t
        # A window without usable probabilities (none, the wrong length, NaN) cannot say a mood: not voiced.
        voiced = (bool(voice_active) and probs is not None and len(probs) == len(self.labels)
                  and bool(np.isfinite(np.asarray(probs, dtype=np.float64)).all()))
        point: tuple[float, float] | None = None
        v = a = 0.0
        if voiced:
            v, a = self.circumplex.valence_arousal(probs)  # type: ignore[arg-type]
            point = (v, a)
            self._last_voice_t = t
            if self._moment is None or s.moment_s <= 0:
                self._moment = point
            else:
                k = 1.0 - math.exp(-dt / s.moment_s)
                mv, ma = self._moment
                self._moment = (mv + k * (v - mv), ma + k * (a - ma))
        shown = None if label is None else str(label)
        for w in (self._minute, self._silence, self._session):
            w.add(t, dt, voiced, v, a, shown)
            w.expire(t)
        silence_since = self._last_voice_t if self._last_voice_t is not None else self._first_t
        talking_window = self._silence.talking_share()
        m, ss = self._minute, self._session
        moment = self._moment
        return MoodReading(
            stream=self.stream,
            time_s=t,
            voice=voiced,
            valence=Horizons(None if moment is None else moment[0], m.mean(m.valence_s), ss.mean(ss.valence_s)),
            arousal=Horizons(None if moment is None else moment[1], m.mean(m.arousal_s), ss.mean(ss.arousal_s)),
            point=point,
            talking_minute=m.talking_share(),
            talking_session=ss.talking_share(),
            silence_s=0.0 if voiced else max(0.0, t - silence_since),
            silent_share=None if talking_window is None else 1.0 - talking_window,
            voiced_s_minute=m.voiced_s,
            voiced_s_session=ss.voiced_s,
            session_s=ss.total_s,
            emotions_minute=m.shares(),
            emotions_session=ss.shares(),
        )

    def update_state(self, state: Any, sample_rate: int) -> MoodReading:
        """Advance with an :class:`~ser_daemon.core.state.EmotionState` (its raw probabilities when voiced).

        The time is the state's window end in audio seconds (``end_sample /
        sample_rate``).  The shown label is "unsure" for an uncertain state.  A
        final state (end of stream) counts as silence.
        """
        raw = tuple(state.raw) if state.raw else None
        label = UNSURE if getattr(state, "uncertain", False) else str(state.label)
        voiced = bool(state.voice_active) and not getattr(state, "final", False)
        return self.update(int(state.end_sample) / float(sample_rate), raw, voiced, label)
