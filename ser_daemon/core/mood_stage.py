"""The daemon's mood stage: one tracker and one event detector per stream, fed every state (sans-I/O).

The smoother decides the face; this stage, beside it, turns the same states into
:class:`~ser_daemon.core.mood.MoodReading` and :class:`~ser_daemon.core.mood_events.MoodEvent`
for the outputs.  Readings are thinned to at most one per ``interval_s`` of the
stream's own time (a state every 250 ms would flood an app with near-equal moods);
every event goes out, and so does the reading of the stream's final state, after
which the stream is forgotten (an ingest stream of the same name later starts a
new session).  Streams live only between their first and final state, so memory
follows the streams at once, which the daemon already bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .mood import MoodReading, MoodTracker
from .mood_events import MoodEvent, MoodEventDetector
from .mood_settings import MoodSettings
from .state import EmotionState

__all__ = ["MoodUpdate", "MoodStage"]


@dataclass(frozen=True)
class MoodUpdate:
    """What one state gave: the reading to send (None while thinned out) and the events it fired."""

    reading: MoodReading | None
    events: tuple[MoodEvent, ...] = ()


class _Stream:
    def __init__(self, labels: Sequence[str], settings: MoodSettings, stream: str) -> None:
        self.tracker = MoodTracker(labels, settings, stream)
        self.detector = MoodEventDetector(settings)
        self.last_sent_s: float | None = None


class MoodStage:
    """Per-stream mood tracking for the daemon.

    Args:
        labels: the model's classes, in probability order.
        sample_rate: the model's sample rate (a state's ``end_sample`` is counted in it).
        settings: thresholds and horizons (``[mood]`` of the config file).
        interval_s: at most one reading per this many seconds of stream time.
    """

    def __init__(self, labels: Sequence[str], sample_rate: int, settings: MoodSettings | None = None,
                 interval_s: float = 1.0) -> None:
        self.labels = tuple(labels)
        self.sample_rate = int(sample_rate)
        self.settings = settings if settings is not None else MoodSettings()
        self.interval_s = float(interval_s)
        self._streams: dict[str, _Stream] = {}

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams tracked now."""
        return tuple(self._streams)

    def update(self, state: EmotionState) -> MoodUpdate:
        """Advance ``state.stream``'s tracker and detector with one state."""
        s = self._streams.get(state.stream)
        if s is None:
            s = self._streams[state.stream] = _Stream(self.labels, self.settings, state.stream)
        reading = s.tracker.update_state(state, self.sample_rate)
        events = tuple(s.detector.update(reading))
        if state.final:
            del self._streams[state.stream]
            return MoodUpdate(reading, events)
        due = s.last_sent_s is None or reading.time_s - s.last_sent_s >= self.interval_s
        if due:
            s.last_sent_s = reading.time_s
        return MoodUpdate(reading if due else None, events)
