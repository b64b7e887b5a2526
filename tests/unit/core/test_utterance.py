"""Utterance boundaries: a new mood after a pause reaches the face fast, and the window forgets the old one.

A stand-in classifier with known outputs decides from the voiced frames of its window alone (as the
real model, which centres each window, does): a low tone reads as ``sad``, a high one as ``angry``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fakes import StubClassifier, stub_bundle, tone
from ser_daemon.core.settings import AnalysisSettings, SmoothingSettings, VadSettings
from ser_daemon.model.bundle import ModelBundle
from ser_daemon.model.analyzer import replay_audio
from ser_daemon.core.smoothing import Smoother
from ser_daemon.core.utterance import UtteranceTracker

RATE = 16000
LABELS = ("neutral", "sad", "angry")
BUNDLE = stub_bundle(window_s=2.0, labels=LABELS)
# The daemon's smoothing before utterances existed, pinned here so retuned defaults do not move the test.
STEADY = SmoothingSettings(ema_ms=800.0, hysteresis=0.10, min_dwell_ms=750.0, hold_ms=2000.0, decay_ms=2000.0,
                           min_confidence=0.15)
UTTERANCES = dataclasses.replace(STEADY, utterance_gap_ms=250.0, utterance_prior=1.0)
TARGET_S = 0.8  # the target for the time from a new mood's first word to the right label


class VoicedToneClassifier:
    """Probabilities from the loud frames of the window: share in the low half of the mel bands -> sad."""

    backend = "stub"

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self.labels = bundle.labels
        self.input_shape = bundle.input_shape

    def predict(self, batch: np.ndarray) -> np.ndarray:
        out = np.zeros((len(batch), 3), np.float32)
        half = batch.shape[2] // 2
        for i, w in enumerate(batch):
            loud = w.max(axis=1) > -6.0
            if not loud.any():
                out[i] = (1.0, 0.0, 0.0)
                continue
            low = np.argmax(w[loud], axis=1) < half
            share_low = float(low.mean())
            out[i] = (0.02, 0.98 * share_low, 0.98 * (1.0 - share_low))
        return out


def quiet(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 1e-4).astype(np.float32)


def mood_change(pause_s: float) -> tuple[np.ndarray, int]:
    """4 s sad (low tone), a pause, 4 s angry (high tone); returns the audio and the angry onset."""
    x = np.concatenate([quiet(0.5, 1), tone(300.0, 4.0), quiet(pause_s, 2), tone(2500.0, 4.0), quiet(0.5, 3)])
    return x, int((0.5 + 4.0 + pause_s) * RATE)


def reaction_s(smoothing: SmoothingSettings, pause_s: float = 1.0, mask: bool = True) -> float:
    x, onset = mood_change(pause_s)
    settings = AnalysisSettings(smoothing=smoothing, mask_previous_utterance=mask)
    states = replay_audio(x, RATE, VoicedToneClassifier(BUNDLE), settings)
    before = [s for s in states if s.end_sample <= onset - RATE // 2 and s.voice_active]
    assert before and before[-1].label == "sad"  # the first mood was shown
    after = [s for s in states if s.end_sample > onset and s.label == "angry"]
    assert after, "the new mood never showed"
    return (after[0].end_sample - onset) / RATE


def test_a_new_mood_after_a_pause_shows_within_the_target() -> None:
    fast = reaction_s(UTTERANCES)
    assert fast <= TARGET_S
    # Without utterance boundaries the 2 s window still holds the old mood and the average lags.
    slow = reaction_s(STEADY)
    assert slow > TARGET_S and slow - fast >= 0.5


def test_masking_and_the_restarted_average_both_matter() -> None:
    fast = reaction_s(UTTERANCES)
    unmasked = reaction_s(UTTERANCES, mask=False)  # the average restarts, but the window is still mixed
    assert unmasked > fast


def test_a_breath_inside_an_utterance_is_not_a_boundary() -> None:
    """A pause shorter than the gate's hangover plus the gap restarts neither the window nor the average."""
    breath = reaction_s(UTTERANCES, pause_s=0.3)
    assert breath > TARGET_S  # no boundary: the old mood is still in the window and the average
    assert breath == pytest.approx(reaction_s(STEADY, pause_s=0.3), abs=0.25)  # within one hop of the old pipeline


# ----------------------------------------------------------------------------- the parts, by hand


def frames(n: int, level: float, band: int = 3, n_mels: int = 8) -> np.ndarray:
    f = np.full((n, n_mels), -13.0)
    f[:, band] = level
    return f


def test_tracker_marks_the_onset_after_a_long_pause_and_keeps_its_background() -> None:
    t = UtteranceTracker(gap_frames=20, margin_frames=2)
    assert t.update(frames(10, 0.0), np.ones(10, bool), True)  # the first words of a stream begin an utterance
    assert t.onset_frame == 0 and t.quiet_frame is None
    window = np.ones((40, 8))
    assert t.mask(window, 10) is window  # no pause heard: nothing to fill with
    t.update(frames(5, -13.0), np.zeros(5, bool), False)  # the push that closes the gate: hangover tail
    t.update(frames(30, -12.0), np.zeros(30, bool), False)  # the pause: 30 frames >= 20
    speech = np.zeros(10, bool)
    speech[4:] = True
    assert t.update(frames(10, 1.0), speech, True)
    assert t.onset_frame == 45 + 4 - 2  # first speech frame of the push, less the margin
    np.testing.assert_allclose(t.quiet_frame, frames(1, -12.0)[0])
    window = np.arange(40 * 8, dtype=np.float32).reshape(40, 8)  # the newest 40 frames end at frame 55
    masked = t.mask(window, 55)
    older = 40 - (55 - 47)
    np.testing.assert_allclose(masked[:older], np.tile(frames(1, -12.0), (older, 1)))
    np.testing.assert_array_equal(masked[older:], window[older:])
    assert t.mask(window, 47 + 40) is window  # the utterance fills the window: nothing to mask


def test_tracker_ignores_short_pauses_and_forgets_on_reset() -> None:
    t = UtteranceTracker(gap_frames=20, margin_frames=0)
    assert t.update(frames(10, 0.0), np.ones(10, bool), True)
    t.update(frames(5, -13.0), np.zeros(5, bool), False)
    t.update(frames(19, -12.0), np.zeros(19, bool), False)  # one frame short of a boundary
    assert not t.update(frames(10, 1.0), np.ones(10, bool), True)
    assert t.onset_frame == 0  # still the first utterance's
    t.reset()
    t.update(frames(25, -12.0), np.zeros(25, bool), False)  # a stream that starts quiet
    assert t.update(frames(5, 1.0), np.ones(5, bool), True) and t.onset_frame == 25
    with pytest.raises(ValueError, match="gap_frames"):
        UtteranceTracker(0, 0)


def test_smoother_restarts_its_average_at_a_new_utterance() -> None:
    labels = ("neutral", "sad", "angry")
    sad, angry = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    s = Smoother(labels, dataclasses.replace(UTTERANCES, utterance_prior=1.0))
    for _ in range(20):
        s.update(sad, True, 0.25)
    s.update(None, False, 0.25)  # 250 ms of closed gate: the gap
    d = s.update(angry, True, 0.25)
    np.testing.assert_allclose(d.smoothed[1:], [0.5, 0.5], atol=2e-3)  # prior 1: the old state weighs one window
    d = s.update(angry, True, 0.25)
    np.testing.assert_allclose(d.smoothed[1:], [1 / 3, 2 / 3], atol=2e-3)
    # Off (gap 0): the EMA's own step, 1 - exp(-250/800), whatever the pause.
    steady = Smoother(labels, STEADY)
    for _ in range(20):
        steady.update(sad, True, 0.25)
    steady.update(None, False, 0.25)
    d = steady.update(angry, True, 0.25)
    assert d.smoothed[2] == pytest.approx(1 - np.exp(-250 / 800), abs=1e-3)


# ----------------------------------------------------------------------------- the gap, frame by frame

# A gate that opens on one frame of voice and closes one frame after it: with a 10 ms hop every
# push is one frame, so the closed-gate frames of a pause are counted exactly.
TIGHT_GATE = VadSettings(vad_threshold_db=9.0, vad_min_level_dbfs=-55.0, vad_max_flatness=0.55, vad_hangover_ms=10.0,
                         vad_min_speech_ms=10.0, vad_floor_rise_db_per_s=3.0)


class _Windows:
    """The stand-in model, keeping every window it was given."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.inner = StubClassifier(bundle)
        self.bundle, self.labels, self.input_shape = bundle, bundle.labels, bundle.input_shape
        self.windows: list[np.ndarray] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.windows.extend(batch.copy())
        return self.inner.predict(batch)


def _masked_after_pause(gap_ms: float, pause_frames: int = 640) -> bool:
    """Whether the window 100 ms after a short silence has the speech before the silence masked."""
    bundle = stub_bundle()
    settings = AnalysisSettings(hop_ms=10.0, drop_stale=False, mask_previous_utterance=True, vad=TIGHT_GATE,
                                smoothing=dataclasses.replace(UTTERANCES, utterance_gap_ms=gap_ms))
    x = np.concatenate([tone(3000.0, 1.2), np.zeros(pause_frames, np.float32), tone(3000.0, 0.3)])
    clf = _Windows(bundle)
    states = replay_audio(x, RATE, clf, settings, bundle=bundle)
    onset = int(1.2 * RATE) + pause_frames
    [k] = [i for i, s in enumerate(states) if s.end_sample == onset + RATE // 10]
    return bool(clf.windows[k][0].max() < -6.0)  # its oldest frame: the pause's quiet (masked) or the old tone


def test_a_gap_is_counted_in_whole_frames_of_closed_gate() -> None:
    """This pause closes the gate for one frame: a gap of 1 or 10 ms (one frame) ends the utterance and masks
    the old speech; 15 ms (1.5 frames, rounded to 2) and 20 ms do not."""
    assert [_masked_after_pause(g) for g in (1.0, 10.0, 15.0, 20.0)] == [True, True, False, False]
    assert not _masked_after_pause(10.0, pause_frames=0)  # no pause, no boundary
