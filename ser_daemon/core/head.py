"""A linear classifier head over the model's embedding: the part a personal profile replaces.

The shipped network ends in ``softmax(embedding @ W + b)``.  Exported models
give the embedding as a second output, so a profile can swap ``W, b`` for
weights fitted to one user's voice without touching the network or its
runtime: the extra cost is one small matrix product per decision.

Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError

__all__ = ["LinearHead", "softmax"]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probs: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return probs


@dataclass(frozen=True, eq=False)
class LinearHead:
    """``softmax(embedding @ weights + bias)``.

    Attributes:
        weights: ``(embedding_dim, n_labels)``.
        bias: ``(n_labels,)``.
    """

    weights: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        b = np.asarray(self.bias, dtype=np.float64)
        if w.ndim != 2 or b.shape != (w.shape[1],) or w.shape[0] < 1 or w.shape[1] < 2:
            raise ConfigError(f"a head needs weights (dim, labels) and bias (labels,); got {w.shape} and {b.shape}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ConfigError("head weights must be finite numbers")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)

    @property
    def embedding_dim(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_labels(self) -> int:
        return int(self.weights.shape[1])

    def probs(self, embedding: np.ndarray) -> np.ndarray:
        """Class probabilities (float32) for one embedding ``(dim,)`` or a batch ``(n, dim)``."""
        e = np.asarray(embedding, dtype=np.float64)
        return softmax(e @ self.weights + self.bias).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.round(7).tolist(), "bias": self.bias.round(7).tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LinearHead":
        if not isinstance(data, Mapping) or "weights" not in data or "bias" not in data:
            raise ConfigError("a head needs 'weights' and 'bias'")
        try:
            w = np.asarray(data["weights"], dtype=np.float64)
            b = np.asarray(data["bias"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"head weights must be numbers: {exc}") from None
        return cls(w, b)
