"""Tiny synthetic corpora in every supported layout, for tests and smoke runs.

Each label is a tone of its own pitch (with a little vibrato and noise),
each speaker shifts the pitch slightly; clips have silent heads and tails like
RAVDESS.  Nothing here resembles emotion: it only exercises the plumbing.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.io import wavfile

__all__ = ["synth_clip", "write_synthetic_dataset"]


def synth_clip(label_index: int, speaker_index: int, take: int, seconds: float = 2.6, sample_rate: int = 16000,
               seed: int = 0) -> np.ndarray:
    """Float32 audio: 0.3 s silence, a tone, 0.3 s silence (faint noise throughout)."""
    rng = np.random.default_rng([seed, label_index, speaker_index, take])
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 180.0 * (1.5 ** label_index) * (1.0 + 0.03 * speaker_index)
    tone = 0.3 * np.sin(2 * np.pi * f0 * t + 3 * np.sin(2 * np.pi * 5 * t))
    tone += 0.1 * np.sin(2 * np.pi * 2 * f0 * t)
    env = np.zeros(n)
    a, b = int(0.3 * sample_rate), n - int(0.3 * sample_rate)
    env[a:b] = 1.0
    x = tone * env + 0.001 * rng.standard_normal(n)
    return x.astype(np.float32)


def _write(path: Path, x: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(str(path), sample_rate, (np.clip(x, -1, 1) * 32767).astype(np.int16))


def write_synthetic_dataset(
    root: str | Path,
    layout: str,
    labels: Sequence[str] = ("angry", "neutral", "sleepy"),
    speakers: Sequence[str] = ("bea", "sam"),
    clips_per: int = 2,
    seconds: float = 2.6,
    sample_rate: int = 16000,
) -> Path:
    """Write a corpus in ``layout`` under ``root``; returns the path to pass as ``--data``.

    Layouts: ``emovdb`` (``bea_Angry/angry_1-15_0001.wav``), ``emovdb-sorted``
    (``bea/Angry/x.wav``), ``folders`` (``angry/x.wav``), ``manifest``
    (``clips/x.wav`` + ``manifest.csv``), ``ravdess`` (``Actor_01/03-01-05-...-01.wav``,
    labels must be RAVDESS emotions, speakers are numbered).
    """
    root = Path(root)
    rows = []
    for li, label in enumerate(labels):
        for si, spk in enumerate(speakers):
            for k in range(clips_per):
                x = synth_clip(li, si, k, seconds, sample_rate)
                if layout == "emovdb":
                    p = root / f"{spk}_{label.capitalize()}" / f"{label}_1-15_{k + 1:04d}.wav"
                elif layout == "emovdb-sorted":
                    p = root / spk / label.capitalize() / f"{label}_{k + 1:04d}.wav"
                elif layout == "folders":
                    p = root / label / f"{spk}_{k + 1:03d}.wav"
                elif layout == "manifest":
                    p = root / "clips" / f"{spk}_{label}_{k + 1:03d}.wav"
                    rows.append((p.relative_to(root).as_posix(), label, spk))
                elif layout == "ravdess":
                    from .datasets import RAVDESS_EMOTIONS

                    code = {v: c for c, v in RAVDESS_EMOTIONS.items()}[label]
                    actor = si + 1
                    p = root / f"Actor_{actor:02d}" / f"03-01-{code}-01-01-{k + 1:02d}-{actor:02d}.wav"
                else:
                    raise ValueError(f"unknown layout {layout!r}")
                _write(p, x, sample_rate)
    if layout == "manifest":
        with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "label", "speaker"])
            w.writerows(rows)
    return root
