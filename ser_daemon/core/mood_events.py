"""Events an app subscribes to, read from a stream's mood readings (sans-I/O).

Four kinds, each with its thresholds in :class:`~ser_daemon.core.mood_settings.MoodSettings`:

``frustration_rising``
    Negative valence with high arousal over the last minute, sustained and
    growing: minute valence at or below ``frustration_valence``, minute arousal
    at least ``frustration_arousal``, and the minute valence fell by at least
    ``frustration_drop`` over the last ``frustration_trend_s`` (so the minute
    before must have had a voice: a voice whose neutral already reads negative
    does not fire as soon as it is heard).
``disengaging``
    The user goes quiet: the silent share of the last ``silence_window_s``
    reaches ``disengage_silent_share`` and rose by ``disengage_rise`` over that
    window, or the current silence lasts ``disengage_silence_s`` after the user
    talked (``min_voiced_s`` in the session); or, while still talking, minute arousal falls to
    ``disengage_arousal``.  ``evidence["reason"]`` says which.
``delighted``
    A positive peak: moment valence at or above ``delighted_valence`` for
    ``delighted_hold_s`` of voiced time.
``recovered``
    After a ``frustration_rising`` (within ``recovered_within_s``), the minute
    valence is back at ``recovered_valence`` or above.  Once per frustration.

Hysteresis: once fired, a kind is re-armed only after its figure went back past
its looser "off" threshold.  Cooldown: at most one event of a kind per
``cooldown_s`` (an event held back by the cooldown fires when it ends if its
condition still holds).  Voice-based events need ``min_voiced_s`` of voice in
the last minute, so a few words after a long silence do not fire them.

Every event carries its evidence: the figures that made it fire, so an app can
log why it acted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .mood import MAX_WINDOW_ENTRIES, MoodReading
from .mood_settings import MoodSettings

__all__ = ["EVENT_KINDS", "MoodEvent", "MoodEventDetector"]

EVENT_KINDS = ("frustration_rising", "disengaging", "delighted", "recovered")

Evidence = Mapping[str, "float | str | None"]


@dataclass(frozen=True)
class MoodEvent:
    """One event of one stream.

    Attributes:
        kind: one of :data:`EVENT_KINDS`.
        stream: stream id.
        time_s: stream time at which it fired, seconds.
        evidence: the figures behind it (names as in :class:`~ser_daemon.core.mood.MoodReading`).
    """

    kind: str
    stream: str
    time_s: float
    evidence: Evidence = field(default_factory=lambda: MappingProxyType({}))


class _Lagged:
    """The value a figure had ``lag_s`` ago (None until the history is that long)."""

    def __init__(self, lag_s: float, max_items: int = MAX_WINDOW_ENTRIES) -> None:
        self.lag_s = float(lag_s)
        self.max_items = int(max_items)
        self._items: deque[tuple[float, float | None]] = deque()

    def push(self, t: float, value: float | None) -> None:
        if len(self._items) >= self.max_items:  # time that stands still must not grow it without end
            self._items.popleft()
        self._items.append((t, value))
        # Keep one entry at or before t - lag (the head), drop the older ones.
        while len(self._items) >= 2 and self._items[1][0] <= t - self.lag_s:
            self._items.popleft()

    def ago(self, t: float) -> tuple[bool, float | None]:
        """(known, value): known is False while the history is shorter than the lag."""
        if not self._items or self._items[0][0] > t - self.lag_s:
            return False, None
        return True, self._items[0][1]


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


class MoodEventDetector:
    """Fires :class:`MoodEvent` from one stream's :class:`MoodReading` sequence."""

    def __init__(self, settings: MoodSettings | None = None) -> None:
        self.settings = settings if settings is not None else MoodSettings()
        self.reset()

    def reset(self) -> None:
        s = self.settings
        self._armed = {k: True for k in EVENT_KINDS}
        self._last_fired: dict[str, float] = {}
        self._valence_lag = _Lagged(s.frustration_trend_s)
        self._silent_lag = _Lagged(s.silence_window_s)
        self._peak_s = 0.0
        self._prev_voiced_s = 0.0
        self._frustration: tuple[float, float] | None = None  # (time, minute valence) of the last one

    def _ready(self, kind: str, t: float) -> bool:
        last = self._last_fired.get(kind)
        return self._armed[kind] and (last is None or t - last >= self.settings.cooldown_s)

    def update(self, r: MoodReading) -> list[MoodEvent]:
        """The events this reading fires (usually none)."""
        s = self.settings
        t = r.time_s
        out: list[MoodEvent] = []

        def fire(kind: str, evidence: dict[str, float | str | None]) -> None:
            self._armed[kind] = False
            self._last_fired[kind] = t
            out.append(MoodEvent(kind, r.stream, t, MappingProxyType(evidence)))

        v_min, a_min = r.valence.minute, r.arousal.minute
        talking = r.voiced_s_minute >= s.min_voiced_s
        voiced_dt = max(0.0, r.voiced_s_session - self._prev_voiced_s)
        self._prev_voiced_s = r.voiced_s_session

        # frustration_rising
        known, v_ago = self._valence_lag.ago(t)
        self._valence_lag.push(t, v_min)
        if v_min is None or v_min > s.frustration_valence_off:
            self._armed["frustration_rising"] = True
        if (talking and v_min is not None and a_min is not None and known and v_ago is not None
                and v_min <= s.frustration_valence and a_min >= s.frustration_arousal
                and v_ago - v_min >= s.frustration_drop
                and self._ready("frustration_rising", t)):
            fire("frustration_rising", {
                "valence_minute": _r(v_min), "arousal_minute": _r(a_min),
                "valence_minute_before": _r(v_ago), "trend_s": s.frustration_trend_s,
                "valence_moment": _r(r.valence.moment), "voiced_s_minute": _r(r.voiced_s_minute),
                **{f"share_{k}": _r(v) for k, v in r.emotions_minute.items()},
            })
            self._frustration = (t, v_min)

        # disengaging
        s_now = r.silent_share
        known_s, s_ago = self._silent_lag.ago(t)
        self._silent_lag.push(t, s_now)
        quiet = (s_now is not None and known_s and s_now >= s.disengage_silent_share
                 and s_now - (1.0 if s_ago is None else s_ago) >= s.disengage_rise)
        quiet = quiet or (r.voiced_s_session >= s.min_voiced_s and r.silence_s >= s.disengage_silence_s)
        low = talking and a_min is not None and a_min <= s.disengage_arousal
        # Re-armed only by a voice: the user is back, talks enough and not flatly.
        if r.voice and (s_now is None or s_now < s.disengage_silent_share_off) and (
                a_min is None or a_min > s.disengage_arousal_off):
            self._armed["disengaging"] = True
        if (quiet or low) and self._ready("disengaging", t):
            fire("disengaging", {
                "reason": "silence" if quiet else "low_arousal", "silent_share": _r(s_now),
                "silent_share_before": _r(s_ago), "window_s": s.silence_window_s, "silence_s": _r(r.silence_s),
                "arousal_minute": _r(a_min), "talking_minute": _r(r.talking_minute),
            })

        # delighted
        v_mom = r.valence.moment
        if r.voice and v_mom is not None and v_mom >= s.delighted_valence:
            self._peak_s += voiced_dt
        elif v_mom is None or v_mom < s.delighted_valence:
            self._peak_s = 0.0
        if v_mom is None or v_mom < s.delighted_valence_off:
            self._armed["delighted"] = True
        if self._peak_s >= s.delighted_hold_s and v_mom is not None and self._ready("delighted", t):
            fire("delighted", {
                "valence_moment": _r(v_mom), "arousal_moment": _r(r.arousal.moment),
                "valence_minute": _r(v_min), "held_s": _r(self._peak_s),
            })

        # recovered
        if self._frustration is not None:
            t_f, v_f = self._frustration
            if t - t_f > s.recovered_within_s:
                self._frustration = None
            elif (talking and v_min is not None and v_min >= s.recovered_valence
                  and self._armed["frustration_rising"] and self._ready("recovered", t)):
                fire("recovered", {
                    "valence_minute": _r(v_min), "arousal_minute": _r(a_min),
                    "valence_at_frustration": _r(v_f), "since_frustration_s": _r(t - t_f),
                })
                self._frustration = None
                self._armed["recovered"] = True  # once per frustration: the pending frustration is gone
        return out
