"""The model deployment: windows from every ingress replica, batched, through the daemon's runtime.

Each call carries the windows one ingress replica gathered in one tick
(``batcher.py``); ``@serve.batch`` merges the calls that arrive within the batch
wait (derived from the latency budget, ``settings.py``) into one model call of
up to ``MAX_BATCH`` windows, as the single daemon's ``Analyzer`` does per tick.  The runtime is the daemon's own choice
(:func:`ser_daemon.model.inference.load_classifier`): LiteRT on CPU, Keras when the
replica was given a GPU and ``backend`` is ``auto``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from ray import serve

from ..core.pipeline import MAX_BATCH
from ..model.bundle import load_bundle
from ..model.inference import load_classifier
from .settings import ClusterSettings

__all__ = ["Model"]

log = logging.getLogger(__name__)


def _windows_in(stacks: list[np.ndarray]) -> int:
    """A batch's size is the windows it holds, not the calls."""
    return sum(len(s) for s in stacks)


@serve.deployment(name="Model")
class Model:
    """Loads the bundle once per replica and answers ``(probs, per_window_ms)`` per window."""

    def __init__(self, settings: ClusterSettings) -> None:
        bundle = load_bundle(settings.model_dir)
        self.classifier = load_classifier(bundle, settings.backend, num_threads=settings.model_threads)
        self.backend = self.classifier.backend
        # Build every batch-size bucket now, not in the first decisions (as Daemon._warm_up does).
        b = 1
        while b <= MAX_BATCH:
            self.classifier.predict(np.zeros((b, *bundle.input_shape), dtype=np.float32))
            b *= 2
        self.predict.set_max_batch_size(settings.max_batch_size)
        self.predict.set_batch_wait_timeout_s(settings.batch_wait_s)
        log.info("model replica ready: %s on %s, batches of up to %d, wait %.1f ms", bundle.name, self.backend,
                 settings.max_batch_size, settings.batch_wait_s * 1000.0)

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=0.0, batch_size_fn=_windows_in)
    async def predict(self, stacks: list[np.ndarray]) -> list[tuple[np.ndarray, float]]:
        t0 = time.perf_counter()
        x = np.concatenate(stacks)
        probs = np.concatenate([self.classifier.predict(x[i : i + MAX_BATCH]) for i in range(0, len(x), MAX_BATCH)])
        per_ms = (time.perf_counter() - t0) * 1000.0 / len(x)
        out, start = [], 0
        for s in stacks:
            out.append((probs[start : start + len(s)], per_ms))
            start += len(s)
        return out

    async def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, float]:
        """``(probs (n, labels), ms per window)`` for windows ``(n, frames, mels)``."""
        return await self.predict(windows)

    def info(self) -> dict[str, str]:
        return {"backend": self.backend}
