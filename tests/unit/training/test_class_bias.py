"""Per-class logit offsets: fitted on replays with known outputs, folded into a real bundle's last layer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser_daemon.core.settings import SmoothingSettings
from ser_daemon.training.class_bias import biased_runs, fit_class_bias
from ser_daemon.training.timeline import Segment, TimelineRun

LABELS = ("calm", "neutral", "sad")
RATE = 4  # a sample is 0.25 s: one decision per sample
SMOOTH = SmoothingSettings(ema_ms=0.0, hysteresis=0.0, min_dwell_ms=0.0, hold_ms=0.0, decay_ms=1.0,
                           min_confidence=0.0)


def _run(truth: list[str], probs: list[tuple[float, ...]]) -> TimelineRun:
    """One segment per entry, 12 decisions each, every window saying ``probs``."""
    states, segments, pos = [], [], 0
    for label, p in zip(truth, probs):
        segments.append(Segment(label, pos, pos + 12))
        for k in range(12):
            s = type("S", (), {})()
            s.end_sample, s.raw, s.voice_active, s.final = pos + k + 1, p, True, False
            states.append(s)
        pos += 12
    return TimelineRun("spk", tuple(segments), tuple(states), pos / RATE)


def test_sad_read_as_calm_is_pulled_back_by_an_offset() -> None:
    # The model leans calm: sad speech gets calm 0.45 / sad 0.40; calm speech gets calm 0.7.
    run = _run(["calm", "sad", "neutral"], [(0.7, 0.1, 0.2), (0.45, 0.15, 0.40), (0.2, 0.7, 0.1)])
    bias, scores = fit_class_bias([([run], {})], LABELS, SMOOTH, hop_samples=1, sample_rate=RATE,
                                  grid=(-0.5, -0.25, 0.0, 0.25, 0.5))
    assert scores["before"]["lowest_recall"] == 0.0  # sad never shown
    assert scores["after"]["lowest_recall"] > 0.5 and scores["after"]["macro_recall"] > scores["before"]["macro_recall"]
    assert bias[2] > bias[0]  # sad up against calm
    assert abs(bias.sum()) < 1e-9  # centred: only differences matter
    (biased,) = biased_runs([run], bias)
    sad_window = biased[12].raw
    assert np.argmax(sad_window) == 2 and sad_window.sum() == pytest.approx(1.0)


@pytest.mark.needs_tf
def test_offsets_fold_into_the_bundle_for_litert_keras_and_profiles(profile_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training.class_bias import apply_class_bias

    out = tmp_path / "b"
    shutil.copytree(profile_bundle, out)
    before_meta = json.loads((out / "ser_model.json").read_text())
    labels = before_meta["labels"]
    x = np.random.default_rng(1).normal(-8.0, 3.0, (8, *before_meta["input_shape"])).astype(np.float32)
    before = load_classifier(load_bundle(out), backend="litert").predict(x)
    offsets = {labels[0]: 1.0}
    diff = apply_class_bias(out, offsets, note="test")
    assert diff < 0.02
    after = load_classifier(load_bundle(out), backend="litert").predict(x)
    # softmax(z + b): the ratio of class 0 to any other class grows by e^1, the rest keep their ratios.
    ratio = (after[:, 0] / after[:, 1]) / (before[:, 0] / before[:, 1])
    np.testing.assert_allclose(ratio, np.e, rtol=0.05)
    meta = json.loads((out / "ser_model.json").read_text())
    assert meta["class_bias"]["offsets"][labels[0]] == 1.0 and meta["class_bias"]["note"] == "test"
    head_b = np.asarray(meta["head"]["bias"])
    np.testing.assert_allclose(head_b - np.asarray(before_meta["head"]["bias"]), [1.0] + [0.0] * (len(labels) - 1),
                               atol=1e-6)
    keras_after = load_classifier(load_bundle(out), backend="keras").predict(x)
    np.testing.assert_allclose(keras_after, after, atol=0.02)
    with pytest.raises(SystemExit, match="no such classes"):
        apply_class_bias(out, {"bored": 1.0})
