"""Per-class logit offsets: fitted on validation timelines, written into a bundle's last layer.

A model trained on acted corpora can favour one of two close classes everywhere (sad read as
calm on new voices).  Adding a constant to a class's logit moves every decision between that
class and the others the same way, at no cost per window: the offset is folded into the bias of
the ``probs`` layer, so LiteRT, Keras and personal profiles (whose head starts from that layer)
all see it.

``python -m ser_daemon.training.class_bias BUNDLE sad=0.5,calm=-0.25`` rewrites a bundle in place
(needs TensorFlow); :func:`fit_class_bias` finds offsets on replays of validation speakers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..core.settings import SmoothingSettings
from .timeline import TimelineRun, resmooth, score_timelines

__all__ = ["biased_runs", "fit_class_bias", "apply_class_bias"]


class _Raw:
    """What :func:`resmooth` reads of a state, with its probabilities replaced."""

    __slots__ = ("end_sample", "raw", "voice_active", "final")

    def __init__(self, end_sample: int, raw: np.ndarray, voice_active: bool) -> None:
        self.end_sample = end_sample
        self.raw = raw
        self.voice_active = voice_active
        self.final = False


def biased_runs(runs: Sequence[TimelineRun], bias: np.ndarray) -> list[list[_Raw]]:
    """Each run's states with ``softmax(log p + bias)`` in place of ``p``."""
    out = []
    for r in runs:
        states = [s for s in r.states if not getattr(s, "final", False)]
        rows = []
        for s in states:
            if len(s.raw):
                z = np.log(np.maximum(np.asarray(s.raw, np.float64), 1e-9)) + bias
                p = np.exp(z - z.max())
                rows.append(_Raw(int(s.end_sample), p / p.sum(), bool(s.voice_active)))
            else:
                rows.append(_Raw(int(s.end_sample), np.zeros(0), bool(s.voice_active)))
        out.append(rows)
    return out


def _score(corpora: Sequence[tuple[Sequence[TimelineRun], Mapping[str, str]]], labels: Sequence[str],
           smoothing: SmoothingSettings, bias: np.ndarray, hop_samples: int, rate: int) -> tuple[float, float, float]:
    """Mean over corpora of (macro recall, settled accuracy, lowest class recall)."""
    uar, acc, low = [], [], []
    for runs, merge in corpora:
        scored = [(resmooth(states, labels, smoothing, hop_samples=hop_samples, sample_rate=rate), r.segments)
                  for states, r in zip(biased_runs(runs, bias), runs)]
        sc = score_timelines(scored, labels, sample_rate=rate, merge=merge)
        rec = [v["recall"] for v in sc.per_class.values() if v["n"] > 0]
        uar.append(float(np.mean(rec)))
        acc.append(sc.settled_accuracy)
        low.append(min(rec))
    return float(np.mean(uar)), float(np.mean(acc)), float(np.mean(low))


def fit_class_bias(
    corpora: Sequence[tuple[Sequence[TimelineRun], Mapping[str, str]]],
    labels: Sequence[str],
    smoothing: SmoothingSettings,
    *,
    hop_samples: int,
    sample_rate: int,
    grid: Sequence[float] = tuple(np.arange(-1.5, 1.51, 0.25)),
    rounds: int = 2,
    log: Any = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Offsets that maximise the mean macro recall of the timelines, one class at a time.

    Returns the offsets (label order) and the scores before and after.
    """
    bias = np.zeros(len(labels))
    before = _score(corpora, labels, smoothing, bias, hop_samples, sample_rate)
    best = before
    for _ in range(rounds):
        changed = False
        for k in range(len(labels)):
            for value in grid:
                trial = bias.copy()
                trial[k] = value
                trial -= trial.mean()  # only differences between classes matter
                got = _score(corpora, labels, smoothing, trial, hop_samples, sample_rate)
                if got[0] > best[0] + 1e-9:
                    bias, best, changed = trial, got, True
            if log is not None:
                log(f"  {labels[k]:>10}: bias {np.round(bias, 2).tolist()} -> uar {best[0]:.3f} acc {best[1]:.3f} "
                    f"lowest recall {best[2]:.3f}")
        if not changed:
            break
    names = ("macro_recall", "settled_accuracy", "lowest_recall")
    return bias, {"before": dict(zip(names, before)), "after": dict(zip(names, best))}


def apply_class_bias(directory: Path, bias: Mapping[str, float], note: str = "") -> float:
    """Add ``bias`` to the bundle's ``probs`` layer bias; returns the largest LiteRT-vs-Keras difference.

    The LiteRT file is re-exported from the updated Keras model with the same
    quantisation, and the head in ``ser_model.json`` follows.
    """
    import keras

    from ..model.bundle import MODEL_FILE, file_checksums, load_bundle
    from .train import _convert, head_metadata, keras_predictor, tflite_predictor, with_embedding_output

    bundle = load_bundle(directory)
    unknown = sorted(set(bias) - set(bundle.labels))
    if unknown:
        raise SystemExit(f"{directory}: no such classes {unknown}; the model's are {list(bundle.labels)}")
    if bundle.keras_file is None or bundle.tflite_file is None:
        raise SystemExit(f"{directory}: needs both model.keras and model.tflite")
    meta = dict(bundle.metadata)
    model = keras.saving.load_model(str(bundle.keras_file), compile=False)
    layer = model.get_layer("probs")
    kernel, b = layer.get_weights()
    add = np.array([float(bias.get(lab, 0.0)) for lab in bundle.labels], b.dtype)
    layer.set_weights([kernel, b + add])
    model.save(bundle.keras_file)
    quantized = (meta.get("export") or {}).get("tflite_choice", "float") == "dynamic"
    bundle.tflite_file.write_bytes(_convert(with_embedding_output(model), quantized))
    x = np.random.default_rng(0).normal(-8.0, 3.0, (16, *bundle.input_shape)).astype(np.float32)
    diff = float(np.max(np.abs(tflite_predictor(bundle.tflite_file)(x) - keras_predictor(model)(x))))
    meta["head"] = head_metadata(model)
    previous = meta.get("class_bias", {}).get("offsets", {})
    total = {lab: float(previous.get(lab, 0.0)) + float(bias.get(lab, 0.0)) for lab in bundle.labels}
    meta["class_bias"] = {"offsets": total, "note": note}
    meta["sha256"] = file_checksums(directory, meta["files"])  # the rewritten files, or the bundle no longer loads
    (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return diff


def _parse(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if not name.strip() or not value.strip():
            raise SystemExit(f"expected label=offset,..., not {text!r}")
        out[name.strip()] = float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ser_daemon.training.class_bias", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("offsets", help="label=offset,... added to the class logits")
    p.add_argument("--note", default="", help="where the offsets came from (kept in ser_model.json)")
    args = p.parse_args(argv)
    diff = apply_class_bias(args.bundle, _parse(args.offsets), args.note)
    print(f"{args.bundle}: offsets added; LiteRT against Keras: largest difference {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
