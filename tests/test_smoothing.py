import numpy as np
import pytest

from ser_daemon.config import SmoothingSettings
from ser_daemon.errors import ConfigError
from ser_daemon.smoothing import NEUTRAL, Smoother

LABELS = ("neutral", "happy", "sad", "angry")
HOP = 0.25


def onehot(label: str, p: float = 0.9) -> np.ndarray:
    v = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
    v[LABELS.index(label)] = p
    return v


def test_settles_on_a_steady_emotion() -> None:
    s = Smoother(LABELS, SmoothingSettings())
    labels = [s.update(onehot("happy"), True, HOP).label for _ in range(12)]
    assert labels[-1] == "happy"
    assert labels[0] != "happy" or labels.count("happy") == 12
    assert s.probs[LABELS.index("happy")] > 0.8


def test_alternating_windows_do_not_flicker() -> None:
    s = Smoother(LABELS, SmoothingSettings())
    for _ in range(12):
        s.update(onehot("happy"), True, HOP)
    changes = 0
    last = s.label
    for k in range(40):
        d = s.update(onehot("angry" if k % 2 else "happy", 0.7), True, HOP)
        changes += d.label != last
        last = d.label
    assert changes <= 1


def test_hysteresis_needs_a_clear_margin() -> None:
    s = Smoother(LABELS, SmoothingSettings(ema_ms=0.0, hysteresis=0.2, min_dwell_ms=0.0))
    s.update(onehot("happy", 0.6), True, HOP)
    assert s.label == "happy"
    near = np.array([0.05, 0.45, 0.0, 0.5])  # angry leads by 0.05 < 0.2
    assert s.update(near, True, HOP).label == "happy"
    clear = np.array([0.05, 0.2, 0.0, 0.75])
    assert s.update(clear, True, HOP).label == "angry"


def test_min_dwell_delays_a_change() -> None:
    s = Smoother(LABELS, SmoothingSettings(ema_ms=0.0, hysteresis=0.0, min_dwell_ms=1000.0))
    s.update(onehot("happy"), True, HOP)
    labels = [s.update(onehot("sad"), True, HOP).label for _ in range(5)]
    # The change waits until happy was shown for 1 s (4 hops), then happens.
    assert labels[:3] == ["happy"] * 3
    assert labels[3] == "sad"


def test_silence_holds_then_decays_to_neutral() -> None:
    st = SmoothingSettings(hold_ms=500.0, decay_ms=500.0)
    s = Smoother(LABELS, st)
    for _ in range(12):
        s.update(onehot("angry"), True, HOP)
    assert s.label == "angry"
    held = [s.update(None, False, HOP) for _ in range(2)]
    assert [d.label for d in held] == ["angry", "angry"]
    later = [s.update(None, False, HOP) for _ in range(12)]
    assert later[0].label == NEUTRAL
    assert later[-1].smoothed[LABELS.index("neutral")] > 0.95
    # Silence never produces an emotion, whatever raw probabilities come along.
    assert s.update(onehot("angry"), False, HOP).label == NEUTRAL


def test_low_confidence_is_unsure_and_labels_without_neutral_work() -> None:
    s = Smoother(("happy", "sad", "angry"), SmoothingSettings(ema_ms=0.0, min_dwell_ms=0.0, min_confidence=0.5))
    d = s.update(np.array([0.4, 0.3, 0.3]), True, HOP)
    # At rest the face is "neutral" (1 - 0.4 = 0.6); happy does not beat it by the hysteresis: unsure.
    assert d.label == NEUTRAL and abs(d.confidence - 0.6) < 1e-9 and d.uncertain
    d = s.update(np.array([0.8, 0.1, 0.1]), True, HOP)
    assert d.label == "happy" and not d.uncertain


def test_time_is_audio_time_not_call_count() -> None:
    a = Smoother(LABELS, SmoothingSettings())
    b = Smoother(LABELS, SmoothingSettings())
    for _ in range(4):
        a.update(onehot("sad"), True, 0.25)
    b.update(onehot("sad"), True, 1.0)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-12)


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="hysteresis"):
        SmoothingSettings(hysteresis=2.0)
    with pytest.raises(ConfigError, match="ema_ms"):
        SmoothingSettings(ema_ms=float("nan"))
