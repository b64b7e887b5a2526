"""Voice activity gate on the log-mel frames the model already gets.

No emotion should be read from silence, breathing into the mic or a fan, so
the gate needs two cues: loudness against a noise floor that follows the room
(minimum tracking with a slow rise, so a steady noise soon becomes "floor"),
and spectral flatness (hiss and fans spread their power evenly across bands;
voiced speech does not).  Working on the mel frames costs no extra FFT.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .features import FeatureConfig, log_mel
from .settings import VadSettings

__all__ = ["VoiceActivityGate", "frame_levels"]


@lru_cache(maxsize=16)
def _calibration_db(cfg: FeatureConfig) -> float:
    """dB to add to 10*log10(sum of mel power) so that it reads dBFS (RMS).

    Measured once on deterministic white noise at -20 dBFS: the mel matrix and
    window make the absolute scale awkward to derive by hand.
    """
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(cfg.sample_rate // 2) * 0.1).astype(np.float32)
    frames = log_mel(noise, cfg)
    power = np.exp(frames.astype(np.float64)) - cfg.log_offset
    measured = 10.0 * np.log10(np.mean(power.sum(axis=1)))
    return -20.0 - float(measured)


def frame_levels(frames: np.ndarray, cfg: FeatureConfig, calibration_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Level (about dBFS: exact for white noise, a few dB off for narrow-band sound) and spectral flatness (0..1) of each log-mel frame."""
    logp = frames.astype(np.float64)
    power = np.maximum(np.exp(logp) - cfg.log_offset, 1e-12)
    total = power.sum(axis=1)
    level_db = 10.0 * np.log10(np.maximum(total, 1e-20)) + calibration_db
    # Geometric over arithmetic mean of band power; 1 for perfectly flat spectra.
    flatness = np.exp(np.mean(np.log(power), axis=1)) / np.maximum(total / power.shape[1], 1e-20)
    return level_db, flatness


class VoiceActivityGate:
    """Frame-by-frame speech detector with a hangover, fed log-mel frames."""

    def __init__(self, cfg: FeatureConfig, settings: VadSettings) -> None:
        self.cfg = cfg
        self.settings = settings
        self.frame_s = cfg.hop_length / cfg.sample_rate
        self._calibration_db = _calibration_db(cfg)
        self._hangover_frames = max(1, int(round(settings.vad_hangover_ms / 1000.0 / self.frame_s)))
        self._min_speech_frames = max(1, int(round(settings.vad_min_speech_ms / 1000.0 / self.frame_s)))
        self._recent = np.zeros(self._hangover_frames, dtype=bool)
        self._frames_seen = 0
        self.reset()

    def reset(self) -> None:
        """Forget the room: floor back to its starting guess, no recent speech."""
        self.noise_floor_db = self.settings.vad_min_level_dbfs - self.settings.vad_threshold_db
        self._recent[:] = False
        self._frames_seen = 0
        self.last_level_db = -math.inf
        self.active = False
        self.frame_speech = np.zeros(0, dtype=bool)  # per-frame verdicts of the last update (before hangover)

    def update(self, frames: np.ndarray) -> bool:
        """Take new log-mel frames (``(k, n_mels)``); return whether a voice is active now."""
        if len(frames):
            s = self.settings
            level, flatness = frame_levels(frames, self.cfg, self._calibration_db)
            rise = s.vad_floor_rise_db_per_s * self.frame_s
            # floor_i = min(level_i, floor_{i-1} + rise), unrolled: the running minimum of
            # (level_j - rise*j) and the old floor, shifted back by rise*i.
            steps = rise * np.arange(1, len(level) + 1)
            shifted = np.minimum.accumulate(np.minimum(level - steps, self.noise_floor_db))
            floors = shifted + steps
            speech = (level >= floors + s.vad_threshold_db) & (level >= s.vad_min_level_dbfs) & (
                flatness <= s.vad_max_flatness
            )
            n = self._hangover_frames
            idx = (self._frames_seen + np.arange(len(level))) % n
            if len(level) >= n:
                self._recent[idx[-n:]] = speech[-n:]
            else:
                self._recent[idx] = speech
            self._frames_seen += len(level)
            self.frame_speech = speech
            self.noise_floor_db = float(floors[-1])
            self.last_level_db = float(level[-1])
        self.active = bool(np.count_nonzero(self._recent) >= self._min_speech_frames)
        return self.active
