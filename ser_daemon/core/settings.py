"""Settings of the analysis pipeline (gate, smoothing, hop and window), as frozen dataclasses.

Every field has a command-line flag and a TOML key of the same name; the checks live here so the
CLI, the config file and library users get the same messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["VadSettings", "SmoothingSettings", "AnalysisSettings"]


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{name} must be a number in [{lo}, {hi}]. Received: {value!r}")


@dataclass(frozen=True)
class VadSettings:
    """Voice activity gate.

    A 10 ms frame counts as speech when it is ``vad_threshold_db`` above the
    tracked noise floor, louder than ``vad_min_level_dbfs`` and less spectrally
    flat than ``vad_max_flatness`` (steady hiss and fans are flat; voices are not).
    The gate is open while at least ``vad_min_speech_ms`` of speech frames fell
    within the last ``vad_hangover_ms``.
    """

    vad_threshold_db: float = 9.0
    vad_min_level_dbfs: float = -55.0
    vad_max_flatness: float = 0.55
    vad_hangover_ms: float = 500.0
    vad_min_speech_ms: float = 40.0
    vad_floor_rise_db_per_s: float = 3.0

    def __post_init__(self) -> None:
        _check_range("vad_threshold_db", self.vad_threshold_db, 0.0, 60.0)
        _check_range("vad_min_level_dbfs", self.vad_min_level_dbfs, -120.0, 0.0)
        _check_range("vad_max_flatness", self.vad_max_flatness, 0.0, 1.0)
        _check_range("vad_hangover_ms", self.vad_hangover_ms, 10.0, 10000.0)
        _check_range("vad_min_speech_ms", self.vad_min_speech_ms, 10.0, 10000.0)
        _check_range("vad_floor_rise_db_per_s", self.vad_floor_rise_db_per_s, 0.01, 100.0)
        if self.vad_min_speech_ms > self.vad_hangover_ms:
            raise ConfigError(
                f"vad_min_speech_ms ({self.vad_min_speech_ms}) cannot exceed vad_hangover_ms ({self.vad_hangover_ms})"
            )


@dataclass(frozen=True)
class SmoothingSettings:
    """Turns noisy per-window probabilities into a face that does not flicker.

    ``ema_ms`` is the time constant of the exponential moving average while a
    voice is heard.  A new label must beat the current one by ``hysteresis``
    (probability) and the current one must have been shown ``min_dwell_ms``.
    When the voice stops, the state is held ``hold_ms`` and then decays toward
    neutral with time constant ``decay_ms``.  Below ``min_confidence`` the
    label keeps the best guess but the state is marked uncertain ("unsure").

    Emotion usually changes between utterances, not inside one.  A voice that
    returns after at least ``utterance_gap_ms`` of closed gate starts a new
    utterance: its windows no longer hold the previous one's audio (see
    :class:`AnalysisSettings`), and the average restarts, weighing what was
    shown before like ``utterance_prior`` windows of the new utterance (window
    ``k`` of the utterance moves the average by ``1 / (utterance_prior + k)``
    until the EMA's own step is larger).  ``utterance_gap_ms = 0`` turns this off.
    """

    # Chosen with ser-eval's timeline on validation speakers only (EMOVO f1, m1; the reported
    # speakers were never used): see models/default/MODEL_CARD.md.  A hold that outlasts the
    # pauses between sentences keeps the face from dropping to neutral at every breath.
    ema_ms: float = 800.0
    hysteresis: float = 0.10
    min_dwell_ms: float = 750.0
    hold_ms: float = 2000.0
    decay_ms: float = 2000.0
    min_confidence: float = 0.15
    utterance_gap_ms: float = 0.0
    utterance_prior: float = 1.0

    def __post_init__(self) -> None:
        _check_range("ema_ms", self.ema_ms, 0.0, 60000.0)
        _check_range("utterance_gap_ms", self.utterance_gap_ms, 0.0, 60000.0)
        _check_range("utterance_prior", self.utterance_prior, 0.0, 1000.0)
        _check_range("hysteresis", self.hysteresis, 0.0, 1.0)
        _check_range("min_dwell_ms", self.min_dwell_ms, 0.0, 60000.0)
        _check_range("hold_ms", self.hold_ms, 0.0, 60000.0)
        _check_range("decay_ms", self.decay_ms, 1.0, 600000.0)
        _check_range("min_confidence", self.min_confidence, 0.0, 1.0)


@dataclass(frozen=True)
class AnalysisSettings:
    """How audio becomes decisions: hop, window, budget, gate and smoothing.

    Attributes:
        hop_ms: milliseconds between decisions.
        window_ms: audio per decision; None uses the model's own window
            (a different length than the model was trained on is refused).
        latency_budget_ms: a decision whose newest audio is older than this
            when it is computed is marked late; windows that a newer one has
            already superseded are skipped and counted instead of queued.
        drop_stale: skip superseded windows (real time); off for offline replay,
            where every hop is evaluated.
        mask_previous_utterance: while a new utterance (see
            :class:`SmoothingSettings`) is younger than a window, the part of the
            window before its onset is filled with the pause's own background
            instead of the previous utterance, as training windows at an onset
            are padded with quiet.
    """

    hop_ms: float = 250.0
    window_ms: float | None = None
    latency_budget_ms: float = 150.0
    drop_stale: bool = True
    mask_previous_utterance: bool = True
    vad: VadSettings = field(default_factory=VadSettings)
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)

    def __post_init__(self) -> None:
        _check_range("hop_ms", self.hop_ms, 10.0, 10000.0)
        if self.window_ms is not None:
            _check_range("window_ms", self.window_ms, 100.0, 30000.0)
        _check_range("latency_budget_ms", self.latency_budget_ms, 1.0, 60000.0)
