"""From per-window probabilities to a steady label an avatar can wear.

A face that changes expression four times a second looks broken, and one that
keeps "angry" after the speaker went quiet looks worse.  So: an exponential
moving average while a voice is heard; a hysteresis margin and a minimum dwell
before the label may change; and, when the voice stops, a short hold followed
by a decay toward neutral.  Time is given in audio seconds, not wall time, so
replaying a file fast gives the same result as live.

"Neutral" is a class (the speaker sounds neutral); "unsure" is a state (the
evidence does not say).  Weak evidence does not turn the label into neutral:
the label stays the evidence's best guess (or the previous label while a
change has not passed the hysteresis and dwell) and ``uncertain`` says that
its evidence is under the confidence floor.  Only silence relaxes the face to
neutral.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .settings import SmoothingSettings

__all__ = ["NEUTRAL", "UNSURE", "Smoother", "SmoothedDecision"]

NEUTRAL = "neutral"
UNSURE = "unsure"  # what receivers show for an uncertain state (never a model class)


@dataclass(frozen=True)
class SmoothedDecision:
    """What the smoother says after one window.

    Attributes:
        label: a model label, or ``"neutral"`` (at rest, when neutral is not a class).
        confidence: smoothed probability of ``label`` (for a neutral that is
            not a model class: one minus the strongest class).
        smoothed: smoothed probabilities in label order.
        uncertain: while a voice is heard (or held), the shown label's smoothed
            probability is below the confidence floor (once below, until it is
            half the hysteresis above it), or the face of a model without a
            neutral class is still at rest.  Never set while relaxing in silence.
    """

    label: str
    confidence: float
    smoothed: np.ndarray
    uncertain: bool = False


class Smoother:
    """EMA + hysteresis + dwell + hold-and-decay over class probabilities."""

    def __init__(self, labels: tuple[str, ...], settings: SmoothingSettings) -> None:
        self.labels = tuple(labels)
        self.settings = settings
        n = len(self.labels)
        if NEUTRAL in self.labels:
            self._rest = np.zeros(n)
            self._rest[self.labels.index(NEUTRAL)] = 1.0
        else:
            self._rest = np.full(n, 1.0 / n)
        self.reset()

    def reset(self) -> None:
        """Back to a neutral face, as at start."""
        self.probs = self._rest.copy()
        self.label = NEUTRAL
        self._since_change_s = math.inf
        self._silent_s = math.inf
        self._below_floor = False
        self._utterance_windows = 0  # voiced windows of the current utterance

    def _confidence(self, label: str) -> float:
        if label in self.labels:
            return float(self.probs[self.labels.index(label)])
        return float(max(0.0, 1.0 - self.probs.max()))

    def update(self, raw: np.ndarray | None, voice_active: bool, dt_s: float) -> SmoothedDecision:
        """Advance by ``dt_s`` seconds of audio with this window's probabilities.

        Args:
            raw: the model's probabilities for the window (label order), or None
                when no inference ran.
            voice_active: whether the gate heard a voice in this hop.
            dt_s: audio seconds since the previous update (a hop, or more when
                windows were skipped).
        """
        s = self.settings
        dt_s = max(0.0, float(dt_s))
        self._since_change_s += dt_s
        if voice_active and raw is not None:
            if s.utterance_gap_ms > 0 and self._silent_s * 1000.0 >= s.utterance_gap_ms:
                self._utterance_windows = 0  # a new utterance: its own evidence soon outweighs the last one's
            self._silent_s = 0.0
            self._utterance_windows += 1
            p = np.asarray(raw, dtype=np.float64)
            alpha = 1.0 if s.ema_ms <= 0 else 1.0 - math.exp(-dt_s * 1000.0 / s.ema_ms)
            if s.utterance_gap_ms > 0:
                alpha = max(alpha, 1.0 / (s.utterance_prior + self._utterance_windows))
            self.probs = self.probs + alpha * (p - self.probs)
        else:
            self._silent_s += dt_s
            if self._silent_s * 1000.0 > s.hold_ms:
                beta = 1.0 - math.exp(-dt_s * 1000.0 / s.decay_ms)
                self.probs = self.probs + beta * (self._rest - self.probs)

        best = self.labels[int(np.argmax(self.probs))]
        relaxing = not voice_active and self._silent_s * 1000.0 > s.hold_ms
        candidate = NEUTRAL if relaxing else best
        if candidate != self.label:
            # Silence is reason enough to relax the face; otherwise the new label must beat the shown one.
            margin_ok = relaxing or self._confidence(candidate) >= self._confidence(self.label) + s.hysteresis
            if margin_ok and self._since_change_s * 1000.0 >= s.min_dwell_ms:
                self.label = candidate
                self._since_change_s = 0.0
        confidence = self._confidence(self.label)
        # Unsure: the shown label's own evidence is under the floor (or, for a model
        # without a neutral class, the face is still at rest while a voice is heard).
        # A label kept by hysteresis or dwell while another leads slightly is not
        # unsure on that account: receivers would otherwise flip to "unsure" at
        # every close call, which is the flicker the hysteresis exists to prevent.
        # The floor has a band of half the hysteresis, so evidence hovering at the
        # floor does not toggle "unsure" every hop: it clears above floor + band.
        band = s.hysteresis / 2.0 if self._below_floor else 0.0
        self._below_floor = not relaxing and confidence < s.min_confidence + band
        at_rest = self.label == NEUTRAL and NEUTRAL not in self.labels
        uncertain = not relaxing and (self._below_floor or at_rest)
        return SmoothedDecision(self.label, confidence, self.probs.copy(), uncertain)
