"""Per-speaker normalisation of log-mel frames: the same reference in training and live.

Why: a model that has never heard a voice mistakes the voice itself (timbre,
vocal tract, microphone, language) for emotion.  Subtracting the speaker's own
long-run mean log-mel spectrum (per band, from voiced frames) removes most of
that and leaves the changes that emotion makes.  Training subtracts each
training speaker's reference; the daemon keeps, per stream, a slow running
estimate of the same reference, starting from the training population's
average so the first seconds of a new voice are handled like an average voice.

The estimate is deliberately slow (a minute of voice by default): real users
speak mostly neutrally, so the reference settles on their neutral voice, and a
burst of anger after minutes of calm speech moves it only a little, so the
anger still shows.  Only voiced frames update it, so silence, hiss and pauses
never pull the reference.

Pure numpy, no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["SpeakerNormSettings", "SpeakerNormalizer", "voiced_frames", "frame_log_energy", "speaker_reference"]

# Frames quieter than the loudest frame of a push by more than this are not speech
# (breaths, room tone between words) and do not update the reference.
_VOICED_RANGE_DB = 35.0
LOG_PER_DB = np.log(10.0) / 10.0  # natural-log mel power per dB


@dataclass(frozen=True)
class SpeakerNormSettings:
    """How the per-speaker reference is formed; stored with the model.

    Attributes:
        prior: the training population's mean voiced log-mel frame, one value per band.
        prior_frames: weight of the prior, in frames, while a new voice has said little.
        max_frames: memory of the running estimate, in voiced frames (6000 = 60 s at a 10 ms hop).
    """

    prior: tuple[float, ...]
    prior_frames: float = 300.0
    max_frames: float = 6000.0
    kind: str = field(default="log_mel_mean")

    def __post_init__(self) -> None:
        if self.kind != "log_mel_mean":
            raise ConfigError(f"unknown speaker normalisation {self.kind!r}; known: 'log_mel_mean'")
        if not self.prior or not all(np.isfinite(self.prior)):
            raise ConfigError("speaker normalisation prior must be a non-empty list of finite numbers")
        if not self.prior_frames > 0 or not self.max_frames >= self.prior_frames:
            raise ConfigError(
                "speaker normalisation needs 0 < prior_frames <= max_frames. "
                f"Received: prior_frames={self.prior_frames}, max_frames={self.max_frames}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "prior": [float(v) for v in self.prior],
                "prior_frames": float(self.prior_frames), "max_frames": float(self.max_frames)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SpeakerNormSettings":
        known = {"kind", "prior", "prior_frames", "max_frames"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown speaker_norm settings {unknown}; known: {sorted(known)}")
        if "prior" not in data:
            raise ConfigError("speaker_norm needs a 'prior'")
        try:
            prior = tuple(float(v) for v in data["prior"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"speaker_norm prior must be a list of numbers: {exc}") from None
        kw = {k: data[k] for k in ("prior_frames", "max_frames", "kind") if k in data}
        return cls(prior=prior, **kw)


def voiced_frames(frames: np.ndarray) -> np.ndarray:
    """The frames of ``frames`` (log-mel) within 35 dB of the loudest one: the speech, not the gaps."""
    f = np.asarray(frames, dtype=np.float32)
    if len(f) == 0:
        return f
    energy = frame_log_energy(f)
    voiced: np.ndarray = f[energy >= energy.max() - _VOICED_RANGE_DB * LOG_PER_DB]
    return voiced


def frame_log_energy(frames: np.ndarray) -> np.ndarray:
    """Each log-mel frame's total power, in the same natural-log units (float64)."""
    energy: np.ndarray = np.log(np.exp(np.asarray(frames, dtype=np.float64)).sum(axis=-1))
    return energy


def speaker_reference(frame_sets: Sequence[np.ndarray]) -> np.ndarray:
    """A speaker's reference from the log-mel frames of several utterances (training side).

    Each utterance contributes its voiced frames (see :func:`voiced_frames`), so
    the reference is what the live estimate converges to on the same speech.
    """
    parts = [voiced_frames(f) for f in frame_sets if len(f)]
    if not parts:
        raise ConfigError("no frames to form a speaker reference from")
    reference: np.ndarray = np.concatenate(parts).mean(axis=0).astype(np.float32)
    return reference


class SpeakerNormalizer:
    """One stream's running speaker reference.

    ``update`` takes the frames a hop produced and whether the voice gate was
    open; ``reference`` is what :meth:`normalize` subtracts.  Starts at the
    prior with weight ``prior_frames``; the running mean then averages voiced
    frames with a memory of ``max_frames``.
    """

    def __init__(self, settings: SpeakerNormSettings, start: np.ndarray | None = None,
                 start_frames: float | None = None) -> None:
        self.settings = settings
        prior = np.asarray(settings.prior, dtype=np.float64)
        ref = prior if start is None else np.asarray(start, dtype=np.float64)
        if ref.shape != prior.shape:
            raise ConfigError(f"speaker reference has {ref.shape[0] if ref.ndim else 0} bands, the model {prior.shape[0]}")
        self._ref = ref.copy()
        self._weight = float(settings.prior_frames if start_frames is None else start_frames)
        self.voiced_frames_seen = 0

    @property
    def reference(self) -> np.ndarray:
        """The current reference, float32, one value per band."""
        return self._ref.astype(np.float32)

    @property
    def weight_frames(self) -> float:
        """How many frames the reference stands for (prior included, capped at ``max_frames``)."""
        return self._weight

    def update(self, frames: np.ndarray, voice_active: bool) -> None:
        """Fold the voiced ones of ``frames`` into the reference while the voice gate is open."""
        if not voice_active or len(frames) == 0:
            return
        v = voiced_frames(frames)
        n = len(v)
        if n == 0:
            return
        new_weight = min(self._weight + n, self.settings.max_frames)
        # Running mean while the memory fills; then an exponential average whose
        # memory is max_frames (each new frame weighs 1/max_frames).
        keep = (new_weight - n) / new_weight if new_weight > n else 0.0
        self._ref = keep * self._ref + (1.0 - keep) * v.astype(np.float64).mean(axis=0)
        self._weight = new_weight
        self.voiced_frames_seen += n

    def normalize(self, window: np.ndarray) -> np.ndarray:
        """``window`` (frames, bands) with the reference subtracted from every frame."""
        normalized: np.ndarray = (np.asarray(window, dtype=np.float32) - self.reference[None, :]).astype(np.float32)
        return normalized
