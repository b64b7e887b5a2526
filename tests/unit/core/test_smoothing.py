import numpy as np
import pytest

from ser_daemon.core.settings import SmoothingSettings
from ser_daemon.errors import ConfigError
from ser_daemon.core.smoothing import NEUTRAL, Smoother

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


# -- exact behaviour, with explicit settings (the defaults are tuned elsewhere) ---------------

REST = np.array([1.0, 0.0, 0.0, 0.0])


def exact(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def smoother(labels: tuple[str, ...] = LABELS, **kw: float) -> Smoother:
    base = dict(ema_ms=400.0, hysteresis=0.1, min_dwell_ms=0.0, hold_ms=500.0, decay_ms=1500.0, min_confidence=0.3)
    base.update(kw)
    return Smoother(labels, SmoothingSettings(**base))


def test_rest_is_exactly_neutral_or_uniform() -> None:
    s = smoother()
    np.testing.assert_array_equal(s.probs, REST)
    d = s.update(None, False, HOP)
    assert d.label == NEUTRAL and d.confidence == 1.0
    np.testing.assert_array_equal(d.smoothed, REST)
    three = smoother(("happy", "sad", "angry"))
    np.testing.assert_array_equal(three.probs, np.full(3, 1.0 / 3.0))
    d = three.update(None, False, HOP)
    assert d.label == NEUTRAL and d.confidence == pytest.approx(2.0 / 3.0, abs=1e-12)


def test_ema_step_is_exact() -> None:
    """One hop moves by 1 - exp(-dt / ema): the EMA time constant, not the decay one."""
    s = smoother(ema_ms=400.0, decay_ms=1500.0)
    p = onehot("happy")
    d = s.update(p, True, 0.1)
    a1 = 1.0 - np.exp(-100.0 / 400.0)
    first = REST + a1 * (p - REST)
    np.testing.assert_allclose(d.smoothed, first, rtol=0, atol=1e-12)
    d = s.update(p, True, 0.3)
    a2 = 1.0 - np.exp(-300.0 / 400.0)
    np.testing.assert_allclose(d.smoothed, first + a2 * (p - first), rtol=0, atol=1e-12)


def test_ema_of_zero_follows_at_once_and_short_constants_still_smooth() -> None:
    s = smoother(ema_ms=0.0)
    p = onehot("sad", 0.7)
    exact(s.update(p, True, HOP).smoothed, p)
    s = smoother(ema_ms=1.0)
    d = s.update(p, True, 0.0002)  # 0.2 ms against a 1 ms time constant
    np.testing.assert_allclose(d.smoothed, REST + (1.0 - np.exp(-0.2)) * (p - REST), rtol=0, atol=1e-12)


def test_hold_then_decay_step_is_exact() -> None:
    """Held for exactly hold_ms (not one hop less), then decays with the decay time constant."""
    s = smoother(ema_ms=0.0, hold_ms=500.0, decay_ms=1500.0)
    p = onehot("angry")
    s.update(p, True, HOP)
    for _ in range(2):  # 250 ms and 500 ms of silence: still held
        d = s.update(None, False, HOP)
        exact(d.smoothed, p)
        assert d.label == "angry"
    d = s.update(None, False, HOP)  # 750 ms > 500 ms: one decay step
    b = 1.0 - np.exp(-250.0 / 1500.0)
    np.testing.assert_allclose(d.smoothed, p + b * (REST - p), rtol=0, atol=1e-12)
    assert d.label == NEUTRAL and d.confidence == pytest.approx(d.smoothed[0], abs=1e-12)


def test_silence_ignores_raw_probabilities() -> None:
    s = smoother(ema_ms=0.0)
    s.update(onehot("happy"), True, HOP)
    d = s.update(onehot("angry"), False, HOP)  # the gate heard no voice: the window is not evidence
    exact(d.smoothed, onehot("happy"))
    assert d.label == "happy"


def test_hysteresis_boundary_is_inclusive() -> None:
    s = smoother(ema_ms=0.0, hysteresis=0.25)
    assert s.update(np.array([0.1, 0.6, 0.1, 0.2]), True, HOP).label == "happy"
    assert s.update(np.array([0.0, 0.26, 0.0, 0.5]), True, HOP).label == "happy"  # 0.5 < 0.26 + 0.25
    assert s.update(np.array([0.0, 0.25, 0.0, 0.5]), True, HOP).label == "angry"  # 0.5 >= 0.25 + 0.25


def test_min_dwell_boundary_is_inclusive() -> None:
    s = smoother(ema_ms=0.0, hysteresis=0.0, min_dwell_ms=500.0)
    s.update(onehot("happy"), True, HOP)
    assert s.label == "happy"
    assert s.update(onehot("sad"), True, HOP).label == "happy"  # shown 250 ms
    assert s.update(onehot("sad"), True, HOP).label == "sad"  # shown 500 ms: may change


def test_min_confidence_boundary() -> None:
    s = smoother(("happy", "sad", "angry"), ema_ms=0.0, hysteresis=0.0, min_confidence=0.5)
    d = s.update(np.array([0.5, 0.25, 0.25]), True, HOP)
    assert (d.label, d.confidence, d.uncertain) == ("happy", 0.5, False)  # exactly min_confidence is enough
    d = s.update(np.array([0.49, 0.26, 0.25]), True, HOP)
    assert (d.label, d.uncertain) == ("happy", True) and d.confidence == pytest.approx(0.49, abs=1e-12)


def test_silence_relaxes_the_face_whatever_the_hysteresis() -> None:
    s = smoother(ema_ms=0.0, hysteresis=0.95, hold_ms=0.0, decay_ms=100000.0)
    s.update(onehot("angry", 0.97), True, HOP)
    assert s.label == "angry"
    d = s.update(None, False, HOP)  # neutral's confidence is far below angry's + 0.95
    assert d.label == NEUTRAL


def test_negative_time_steps_change_nothing() -> None:
    s = smoother()
    s.update(onehot("happy"), True, HOP)
    before = s.probs.copy()
    d = s.update(onehot("angry"), True, -1.0)
    np.testing.assert_array_equal(d.smoothed, before)
    d.smoothed[:] = 0.0  # the decision holds a copy
    np.testing.assert_array_equal(s.probs, before)


def test_reset_returns_to_rest_and_forgets_timers() -> None:
    s = smoother(ema_ms=0.0, min_dwell_ms=500.0, hysteresis=0.0)
    s.update(onehot("happy"), True, 1.0)
    s.reset()
    np.testing.assert_array_equal(s.probs, REST)
    assert s.label == NEUTRAL
    # After a reset, a first silent hop decays at once (no hold pending) and a change is allowed at once.
    assert s.update(None, False, HOP).label == NEUTRAL
    assert s.update(onehot("sad"), True, HOP).label == "sad"


def test_dwell_is_measured_in_milliseconds_exactly() -> None:
    s = smoother(ema_ms=0.0, hysteresis=0.0, min_dwell_ms=500.2)
    s.update(onehot("happy"), True, HOP)
    assert [s.update(onehot("sad"), True, HOP).label for _ in range(3)] == ["happy", "happy", "sad"]


def test_silence_during_the_hold_does_not_bypass_the_hysteresis() -> None:
    """Only a move to neutral may skip the margin when the voice stops, not a move to another emotion."""
    s = smoother(ema_ms=0.0, hysteresis=0.3, hold_ms=500.0)
    s.update(np.array([0.1, 0.6, 0.0, 0.3]), True, HOP)
    assert s.update(np.array([0.1, 0.4, 0.0, 0.5]), True, HOP).label == "happy"  # angry leads by 0.1 < 0.3
    assert s.update(None, False, 0.1).label == "happy"  # held: still happy, not angry


def test_unsure_floor_has_a_band_of_half_the_hysteresis() -> None:
    """Below min_confidence is unsure; getting out again needs min_confidence + hysteresis / 2."""
    s = smoother(ema_ms=0.0, hysteresis=0.2, min_confidence=0.5)
    steps = [([0.05, 0.55, 0.2, 0.2], False),  # 0.55 >= 0.5: sure
             ([0.2, 0.45, 0.2, 0.15], True),  # below the floor
             ([0.14, 0.58, 0.14, 0.14], True),  # above the floor, inside the band (0.6)
             ([0.1, 0.65, 0.1, 0.15], False)]  # out of the band
    for raw, unsure in steps:
        d = s.update(np.array(raw), True, HOP)
        assert (d.label, d.uncertain) == ("happy", unsure), raw
    s.update(np.array([0.2, 0.45, 0.2, 0.15]), True, HOP)
    s.reset()  # a reset forgets that the evidence was under the floor
    assert s.update(np.array([0.05, 0.55, 0.2, 0.2]), True, HOP).uncertain is False


def test_a_one_millisecond_utterance_gap_still_restarts_the_average() -> None:
    """The shortest gap (1 ms) is a gap: the first window after any pause weighs 1 / (prior + 1)."""
    s = Smoother(LABELS, SmoothingSettings(ema_ms=60000.0, hold_ms=60000.0, utterance_gap_ms=1.0,
                                           utterance_prior=1.0))
    rest = s.probs.copy()
    p = onehot("angry")
    first = s.update(p, True, HOP).smoothed
    np.testing.assert_allclose(first, rest + 0.5 * (p - rest))  # window 1 of the utterance: 1 / (1 + 1)
    second = s.update(p, True, HOP).smoothed
    np.testing.assert_allclose(second, first + (p - first) / 3)  # window 2: 1 / (1 + 2)
    s.update(None, False, HOP)  # a pause longer than 1 ms
    q = onehot("happy")
    after = s.update(q, True, HOP).smoothed
    np.testing.assert_allclose(after, second + 0.5 * (q - second))  # a new utterance: window 1 again


@pytest.mark.parametrize("gap_ms, restarts", [(250.0, True), (250.1, False)])
def test_a_pause_as_long_as_the_gap_ends_the_utterance_and_a_shorter_one_does_not(gap_ms: float, restarts: bool) -> None:
    s = Smoother(LABELS, SmoothingSettings(ema_ms=60000.0, hold_ms=60000.0, utterance_gap_ms=gap_ms,
                                           utterance_prior=1.0))
    p = onehot("angry")
    s.update(p, True, HOP)
    before = s.update(p, True, HOP).smoothed
    s.update(None, False, 0.25)  # a 250 ms pause
    q = onehot("happy")
    after = s.update(q, True, HOP).smoothed
    weight = 1 / 2 if restarts else 1 / 4  # window 1 of a new utterance, or window 3 of the same one
    np.testing.assert_allclose(after, before + weight * (q - before))
