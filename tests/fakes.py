"""A stand-in model for fast tests of the pipeline and the daemon (no TensorFlow, no LiteRT).

It is not a mock of an I/O edge but a real :class:`~ser_daemon.model.inference.Classifier`: a pure
function of the log-mel window, so tests can predict exactly what it says.  Loud, high sound
reads as ``angry``, anything else leans ``neutral``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ser_daemon.core.features import FeatureConfig
from ser_daemon.model.bundle import ModelBundle

if TYPE_CHECKING:
    from ser_daemon.profiles.store import VoiceProfile

LABELS = ("neutral", "happy", "angry")


class StubClassifier:
    """Probabilities from the mean log-mel level of the strongest band in the upper half."""

    backend = "stub"

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self.labels = bundle.labels
        self.input_shape = bundle.input_shape
        self.batches: list[int] = []  # batch size of every call, to check batching

    def predict(self, batch: np.ndarray) -> np.ndarray:
        assert batch.ndim == 3 and batch.shape[1:] == self.input_shape, batch.shape
        self.batches.append(len(batch))
        high = batch[:, :, batch.shape[2] // 2 :].mean(axis=1).max(axis=1)  # strongest upper band
        loud = 1.0 / (1.0 + np.exp(-(high + 6.0)))  # silence (log 1e-6 = -13.8) -> ~0, a 3 kHz tone -> ~1
        out = np.zeros((len(batch), len(self.labels)), dtype=np.float32)
        out[:, 0] = 1.0 - loud
        out[:, -1] = loud
        return out

    def predict_embedded(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same reading with an embedding a personal head can read: (quiet, loud) per window."""
        probs = self.predict(batch)
        return probs, np.stack([probs[:, 0], probs[:, -1]], axis=1)


def stub_bundle(window_s: float = 1.0, labels: tuple[str, ...] = LABELS) -> ModelBundle:
    return ModelBundle(
        directory=Path("."), name="stub", labels=labels, features=FeatureConfig(), window_s=window_s,
        keras_file=None, tflite_file=None,
    )


def profile_reading(label: str, labels: tuple[str, ...] = LABELS, n_mels: int = 64) -> "VoiceProfile":
    """A personal profile whose head reads every window of the stand-in as ``label``."""
    from ser_daemon.core.head import LinearHead
    from ser_daemon.profiles.store import VoiceProfile

    bias = np.where(np.array(labels) == label, 6.0, 0.0)
    return VoiceProfile(model_name="stub", model_fingerprint="stub", labels=labels, features={},
                        baseline=np.zeros(n_mels), baseline_frames=10.0, head=LinearHead(np.zeros((2, len(labels))), bias))


def tone(freq_hz: float, seconds: float, rate: int = 16000, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (level * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
