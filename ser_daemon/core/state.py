"""The emotion state: one immutable record per decision.

Everything downstream (OSC, WebSocket, the status line, benchmarks, the
streaming evaluation) reads these records and nothing else, so each carries
what is needed to judge it: which audio it covers and when that audio
arrived, when it was emitted, the raw and smoothed probabilities, and the
counters that say whether anything was lost on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

__all__ = ["EmotionState"]


@dataclass(frozen=True)
class EmotionState:
    """One decision of one stream.

    Attributes:
        stream: stream id (``"mic"``, a file stem, ...).
        seq: decision number in this stream, contiguous from 0.
        labels: the model's classes, in the order of ``raw`` and ``smoothed``.
        label: the smoothed label: one of ``labels`` or ``"neutral"`` (the
            resting face when neutral is not a class).
        confidence: smoothed probability of ``label``, 0..1.
        raw: the model's probabilities for this window (empty when no
            inference ran, e.g. the final state at shutdown).
        smoothed: smoothed probabilities.
        voice_active: whether the gate hears a voice.
        end_sample: index (at the model's sample rate) one past the newest
            sample the window covers, counted from the start of the stream.
        audio_time: host monotonic clock (seconds) at which the newest audio
            of the window reached the daemon (capture callback or file reader).
        emitted_time: host monotonic clock (seconds) when the decision was made.
        dropped_windows: windows skipped so far because newer audio superseded
            them while processing lagged (cumulative).
        overruns: input frames lost so far to ring-buffer overruns (cumulative).
        late: this decision took longer than the latency budget.
        final: the last state of the stream (sent on stop: neutral, no voice).
        stage_ms: milliseconds spent per pipeline stage for this decision.
        uncertain: the smoother is not sure of ``label`` (its smoothed
            probability is below the confidence floor, with a small band so
            it does not toggle every hop): receivers show "unsure"
            rather than the label.  ``label`` stays the best guess; "unsure" is
            a state, not the class ``neutral``.  Never set in the final state.
    """

    stream: str
    seq: int
    labels: tuple[str, ...]
    label: str
    confidence: float
    raw: tuple[float, ...]
    smoothed: tuple[float, ...]
    voice_active: bool
    end_sample: int
    audio_time: float
    emitted_time: float
    dropped_windows: int = 0
    overruns: int = 0
    late: bool = False
    final: bool = False
    stage_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    uncertain: bool = False

    @property
    def latency_ms(self) -> float:
        """From the newest audio's arrival to this decision, milliseconds."""
        return (self.emitted_time - self.audio_time) * 1000.0
