"""The model over the core: one batched inference per tick for every stream's due windows.

:class:`Analyzer` runs the model once on the due windows of all streams together, so many
streams cost one batched call; :func:`replay_audio` drives one stream through the core and
the model offline, for ``ser-eval`` and the tests.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterable

import numpy as np

from ..core.audio_format import AudioFormat, as_format
from ..core.pipeline import MAX_BATCH, DueWindow, StreamProcessor, VoiceStart
from ..core.settings import AnalysisSettings
from ..core.state import EmotionState
from ..errors import ConfigError
from .bundle import ModelBundle
from .inference import Classifier

__all__ = ["Analyzer", "replay_audio"]


class Analyzer:
    """Runs the model on the due windows of all streams in one batch per tick."""

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier

    def decide(self, work: Iterable[tuple[StreamProcessor, DueWindow]]) -> list[EmotionState]:
        """One batched inference over ``work``; states in the same order."""
        items = list(work)
        states: list[EmotionState] = []
        for start in range(0, len(items), MAX_BATCH):
            chunk = items[start : start + MAX_BATCH]
            t0 = time.perf_counter()
            batch = np.stack([d.window for _, d in chunk])
            if any(proc.head is not None for proc, _ in chunk):
                # A stream with a personal profile reads the embedding through its own head;
                # the others keep the model's probabilities from the same pass.
                probs, emb = self.classifier.predict_embedded(batch)
                probs = probs.copy()
                for i, (proc, _) in enumerate(chunk):
                    if proc.head is not None:
                        probs[i] = proc.head.probs(emb[i])
            else:
                probs = self.classifier.predict(batch)
            per_ms = (time.perf_counter() - t0) * 1000.0 / len(chunk)
            states.extend(proc.finish(d, probs[i], per_ms) for i, (proc, d) in enumerate(chunk))
        return states


def replay_audio(
    samples: np.ndarray,
    sample_rate: AudioFormat | int,
    classifier: Classifier,
    settings: AnalysisSettings | None = None,
    *,
    bundle: ModelBundle | None = None,
    stream: str = "replay",
    block_frames: int | None = None,
    profile: VoiceStart | None = None,
) -> list[EmotionState]:
    """Run a whole recording through the streaming pipeline, offline.

    Every hop is evaluated (nothing is skipped for lateness) and time is the
    audio's own, so the result is deterministic and equals what the live
    daemon decides when it keeps up.  Used by ``ser-eval``'s streaming
    evaluation and the tests.

    Args:
        samples: ``(n,)`` or ``(n, channels)`` audio.
        sample_rate: its format, or its rate in Hertz.
        classifier: a loaded model (from :func:`ser_daemon.model.inference.load_classifier`).
        settings: analysis settings; defaults otherwise, with ``drop_stale`` off.
        bundle: the model's bundle; defaults to ``classifier.bundle``.
        stream: stream id of the states.
        block_frames: feed in blocks of this many frames (default 20 ms).
        profile: a personal profile for the speaker (see :class:`StreamProcessor`).
    """
    bundle = bundle if bundle is not None else getattr(classifier, "bundle", None)
    if bundle is None:
        raise ConfigError("replay_audio needs the model bundle (pass bundle=, or load the model with load_classifier)")
    settings = dataclasses.replace(settings if settings is not None else AnalysisSettings(), drop_stale=False)
    x = np.asarray(samples, dtype=np.float32)
    audio = as_format(sample_rate)
    rate = audio.sample_rate
    audio_clock = [0.0]
    proc = StreamProcessor.from_bundle(stream, bundle, settings, audio, clock=lambda: audio_clock[0],
                                       profile=profile)
    analyzer = Analyzer(classifier)
    block = block_frames or max(1, int(rate * 0.02))

    def arrival(index: int) -> float:
        return (index + 1) / rate

    states: list[EmotionState] = []
    for start in range(0, len(x), block):
        chunk = x[start : start + block]
        audio_clock[0] = (start + len(chunk)) / rate
        due = proc.feed(chunk, start, arrival)
        states.extend(analyzer.decide((proc, d) for d in due))
    return states
