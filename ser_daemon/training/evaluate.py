"""Evaluation: metrics, reports (text, JSON, PNG) and the streaming replay.

Everything here is speaker-independent by construction: callers pass clips of
speakers the model did not train on (``ser-eval`` splits by speaker only).

Window level
    every window of a clip is one sample (what the model scores directly).
Clip level
    a clip's windows' log-probabilities are averaged and the argmax is the
    clip's prediction.
Streaming
    the clip is replayed through :func:`ser_daemon.model.analyzer.replay_audio`
    (voice gate, hop-by-hop windows, smoothing) and the smoothed decision at
    the end of the voiced part is the clip's prediction; the settle time is
    how long after speech onset the decision turns to the right label and
    then stays there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .datasets import Clip

__all__ = [
    "LABEL_ALIASES",
    "map_labels",
    "classification_report",
    "format_report",
    "plot_confusion",
    "clip_level",
    "streaming_eval",
    "evaluate_predictions",
    "write_reports",
    "write_json",
]

log = logging.getLogger(__name__)

# Names other corpora use for the model's classes.
LABEL_ALIASES = {
    "disgusted": "disgust",
    "disgust": "disgusted",
    "surprise": "surprised",
    "fear": "fearful",
    "anger": "angry",
    "happiness": "happy",
    "sadness": "sad",
}


def map_labels(
    clips: Sequence[Clip], model_labels: Sequence[str], extra: Mapping[str, str] | None = None
) -> tuple[list[Clip], dict[str, int]]:
    """Clips whose label (after aliases) the model knows, and counts of the rest by label."""
    from dataclasses import replace

    known = set(model_labels)
    mapping = dict(extra or {})
    kept, skipped = [], {}
    for c in clips:
        label = mapping.get(c.label, c.label)
        if label not in known and LABEL_ALIASES.get(label) in known:
            label = LABEL_ALIASES[label]
        if label in known:
            kept.append(replace(c, label=label) if label != c.label else c)
        else:
            skipped[c.label] = skipped.get(c.label, 0) + 1
    return kept, skipped


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Macro-F1 averages over the classes present in ``y_true``.
    """
    n = len(labels)
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n), where=denom > 0)
    present = support > 0
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        "macro_f1": float(np.mean(f1[present])) if present.any() else float("nan"),
        "per_class": {
            labels[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(n)
        },
        "labels": list(labels),
        "confusion": cm.tolist(),
    }


def format_report(rep: Mapping[str, Any], title: str) -> str:
    """A report as aligned text: headline, per-class table, confusion matrix."""
    labels = rep["labels"]
    w = max(9, max(len(x) for x in labels) + 1)
    lines = [f"== {title} ==", f"n={rep['n']}  accuracy={rep['accuracy']:.3f}  macro-F1={rep['macro_f1']:.3f}", ""]
    lines.append(f"{'class':<{w}} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>5}")
    for lab in labels:
        m = rep["per_class"][lab]
        lines.append(f"{lab:<{w}} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['support']:5d}")
    lines.append("")
    lines.append("confusion (rows: true, columns: predicted)")
    short = [lab[:5] for lab in labels]
    lines.append(" " * w + " ".join(f"{s:>5}" for s in short))
    for lab, row in zip(labels, rep["confusion"]):
        lines.append(f"{lab:<{w}}" + " ".join(f"{v:5d}" for v in row))
    return "\n".join(lines)


def plot_confusion(rep: Mapping[str, Any], path: str | os.PathLike[str], title: str) -> Path:
    """Row-normalised confusion matrix as a PNG (counts in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = rep["labels"]
    cm = np.asarray(rep["confusion"], dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 1.0 + 0.75 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if frac[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(f"{title}\nacc {rep['accuracy']:.3f}, macro-F1 {rep['macro_f1']:.3f} (row-normalised colour)",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def clip_level(probs: np.ndarray, clip_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average each clip's window log-probabilities; returns (clip ids, predictions)."""
    ids = np.unique(clip_index)
    logp = np.log(np.clip(probs, 1e-7, 1.0))
    preds = np.array([logp[clip_index == c].mean(axis=0).argmax() for c in ids], dtype=int)
    return ids, preds


def streaming_eval(
    clips: Sequence[Clip],
    classifier: Any,
    labels: Sequence[str],
    *,
    sample_rate: int,
    settings: Any = None,
    progress: Any = sys.stderr,
) -> dict[str, Any]:
    """Replay clips through the daemon pipeline and score the smoothed decisions.

    Per clip: the decision is the smoothed label of the last voiced state (or
    the last state if the gate never opened); settle time is from speech
    onset (energy trim) to the end of the first window from which the
    decision is the true label for every later voiced state.
    """
    from ..audio.clips import load_audio, speech_bounds
    from ..model.analyzer import replay_audio

    index = {lab: i for i, lab in enumerate(labels)}
    y_true, y_pred, y_argmax, settle, never_voiced = [], [], [], [], 0
    per_clip = []
    t0 = time.perf_counter()
    for k, clip in enumerate(clips):
        x = load_audio(clip.path, sample_rate)
        onset, _ = speech_bounds(x, sample_rate)
        states = replay_audio(x, sample_rate, classifier, settings)
        voiced = [s for s in states if s.voice_active and not s.final]
        if not voiced:
            never_voiced += 1
        seq = voiced or [s for s in states if not s.final] or states
        decision = seq[-1].label if seq else "neutral"
        y_true.append(index[clip.label])
        y_pred.append(index.get(decision, index.get("neutral", 0)))
        y_argmax.append(int(np.argmax(seq[-1].smoothed)) if seq and len(seq[-1].smoothed) else y_pred[-1])
        settle_s = None
        if seq and decision == clip.label:
            j = len(seq) - 1
            while j > 0 and seq[j - 1].label == clip.label:
                j -= 1
            settle_s = max(0.0, (seq[j].end_sample - onset) / sample_rate)
            settle.append(settle_s)
        per_clip.append({"path": str(clip.path), "label": clip.label, "decision": decision, "settle_s": settle_s})
        if progress is not None and (k % 10 == 0 or k + 1 == len(clips)):
            rate = (k + 1) / max(time.perf_counter() - t0, 1e-9)
            progress.write(f"\rstreaming replay: {k + 1}/{len(clips)} clips  {rate:4.1f}/s" + ("\n" if k + 1 == len(clips) else ""))
            progress.flush()
    rep = classification_report(np.array(y_true), np.array(y_pred), labels)
    arr = np.array(settle, dtype=np.float64)
    nan = float("nan")
    rep["settle"] = {
        "clips_settled_correct": len(settle),
        "median_s": float(np.median(arr)) if settle else nan,
        "mean_s": float(np.mean(arr)) if settle else nan,
        "p90_s": float(np.percentile(arr, 90)) if settle else nan,
    }
    rep["clips_never_voiced"] = never_voiced
    # The smoothed label passed the daemon's hysteresis and dwell (it is the best
    # guess also when the state is uncertain); the argmax of the smoothed
    # probabilities shows what the model believed.
    rep["smoothed_argmax"] = {
        k: v for k, v in classification_report(np.array(y_true), np.array(y_argmax), labels).items()
        if k in ("n", "accuracy", "macro_f1", "confusion", "labels")
    }
    rep["per_clip"] = per_clip
    return rep


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return _jsonable(float(obj))
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(data: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` as indented JSON (NaN becomes null)."""
    path = Path(path)
    path.write_text(json.dumps(_jsonable(data), indent=2) + "\n", encoding="utf-8")
    return path


def evaluate_predictions(
    probs: np.ndarray, y: np.ndarray, clip_index: np.ndarray, clip_labels: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """Window-level and clip-level reports from window probabilities.

    Args:
        probs: ``(n_windows, n_labels)``.
        y: true label index per window.
        clip_index: clip id per window.
        clip_labels: true label index per clip id (indexable by clip id).
    """
    window = classification_report(y, probs.argmax(axis=1), labels)
    ids, preds = clip_level(probs, clip_index)
    clip = classification_report(np.asarray(clip_labels)[ids], preds, labels)
    return {"window": window, "clip": clip}


def write_reports(out_dir: str | os.PathLike[str], reports: Mapping[str, Any], title: str,
                  png_key: str = "clip") -> dict[str, Path]:
    """``report.json``, ``report.txt`` and ``confusion_matrix.png`` (of ``reports[png_key]``) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = []
    for key in ("window", "clip", "streaming"):
        if key in reports and isinstance(reports[key], Mapping) and "confusion" in reports[key]:
            texts.append(format_report(reports[key], f"{title}: {key} level"))
            if key == "streaming" and "settle" in reports[key]:
                s = reports[key]["settle"]
                texts.append(
                    f"settle time after speech onset (correct clips, n={s['clips_settled_correct']}): "
                    f"median {s['median_s']:.2f} s, mean {s['mean_s']:.2f} s, p90 {s['p90_s']:.2f} s"
                )
                am = reports[key].get("smoothed_argmax")
                if am:
                    texts.append(
                        f"argmax of the smoothed probabilities at the end of the voiced part (no hysteresis): "
                        f"accuracy {am['accuracy']:.3f}, macro-F1 {am['macro_f1']:.3f}"
                    )
    if isinstance(reports.get("timeline"), Mapping):
        from .timeline import format_timeline

        texts.append(format_timeline(reports["timeline"], title))
    if isinstance(reports.get("enroll"), Mapping):
        from .enroll_eval import format_enrollment

        texts.append(format_enrollment(reports["enroll"], title))
    paths = {
        "json": write_json(reports, out / "report.json"),
        "txt": out / "report.txt",
    }
    paths["txt"].write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    if png_key in reports and "confusion" in reports[png_key]:
        paths["png"] = plot_confusion(reports[png_key], out / "confusion_matrix.png", f"{title} ({png_key} level)")
    return paths
