"""Onset windows: what training shows the network of an utterance's first second, as the daemon masks it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ser_daemon.core.features import FeatureConfig, log_mel
from ser_daemon.core.utterance import UtteranceTracker
from ser_daemon.training.onset_windows import onset_windows, pause_frame

SR = 16000
CFG = FeatureConfig()
WIN = 2 * SR


def pause_then_tone(pause_s: float = 2.0, tone_s: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(tone_s * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)
    x = np.concatenate([np.zeros(int(pause_s * SR)), tone])
    return (x + 0.002 * rng.standard_normal(len(x))).astype(np.float32)


def test_frames_after_the_onset_are_the_audio_and_those_before_are_the_pause() -> None:
    y = pause_then_tone()
    onset = int(2.0 * SR)
    w = onset_windows(y, onset, WIN, [0.5, 1.0], CFG)
    assert w.shape == (2, 197, CFG.n_mels)
    quiet = pause_frame(y[:onset], CFG)
    for f, heard in zip(w, (0.5, 1.0)):
        start = onset + int(heard * SR) - WIN
        before = int(np.ceil((onset - start) / CFG.hop_length))
        np.testing.assert_allclose(f[:before], np.broadcast_to(quiet, (before, CFG.n_mels)), rtol=0, atol=1e-6)
        np.testing.assert_allclose(f[before:], log_mel(y[start:start + WIN], CFG)[before:], atol=1e-5)
        # the kept part is louder than the fill: speech, not background
        assert f[before:].max() > f[:before].max() + 3


def test_an_onset_window_is_what_the_daemon_masks_after_a_pause() -> None:
    """The same audio through the daemon's tracker, frame by frame, gives the same window."""
    y = pause_then_tone()
    frames = log_mel(y, CFG)
    energy = frames.sum(axis=1)
    speech = energy > (energy.min() + energy.max()) / 2
    margin = 10
    tracker = UtteranceTracker(gap_frames=25, margin_frames=margin)
    for i in range(len(frames)):
        tracker.update(frames[i:i + 1], speech[i:i + 1], bool(speech[i]))
        if tracker.onset_frame is not None and i + 1 == tracker.onset_frame + 60:
            break
    total = i + 1
    window = frames[total - 197:total]
    masked = tracker.mask(window, total)
    onset = tracker.onset_frame * CFG.hop_length
    start = (total - 197) * CFG.hop_length
    ours = onset_windows(y, onset, WIN, [(start + WIN - onset) / SR], CFG)[0]
    kept = total - tracker.onset_frame
    np.testing.assert_allclose(ours[-kept:], masked[-kept:], atol=1e-5)
    # Before the onset both hold a flat background; the daemon's includes its onset margin,
    # so the two means differ a little.
    assert np.allclose(ours[:-kept], ours[0]) and np.allclose(masked[:-kept], masked[0])
    assert float(np.abs(ours[0] - masked[0]).mean()) < 0.5


def test_without_a_pause_the_quietest_frames_are_the_background() -> None:
    y = pause_then_tone(pause_s=0.0)
    w = onset_windows(y, 0, WIN, [0.3], CFG)[0]
    before = int(np.ceil((WIN - int(0.3 * SR)) / CFG.hop_length))
    assert np.allclose(w[:before], w[0])
    assert w[0].sum() <= w[before:].sum(axis=1).max()


def test_a_window_reaching_before_the_audio_is_padded_faintly() -> None:
    y = pause_then_tone(pause_s=0.3)
    w = onset_windows(y, int(0.3 * SR), WIN, [0.4], CFG)
    assert w.shape == (1, 197, CFG.n_mels) and np.isfinite(w).all()


def test_bad_input_is_refused() -> None:
    y = pause_then_tone()
    with pytest.raises(ValueError, match="outside"):
        onset_windows(y, len(y) + 1, WIN, [0.5], CFG)
    with pytest.raises(ValueError, match="positive"):
        onset_windows(y, 100, WIN, [0.0], CFG)
    assert onset_windows(y, 100, WIN, [], CFG).shape == (0, 197, CFG.n_mels)


def test_train_config_checks_and_round_trips_the_onset_settings() -> None:
    from ser_daemon.training.train import TrainConfig

    cfg = TrainConfig(onset_windows=2, onset_speech_s=(0.3, 1.2))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="onset_windows"):
        TrainConfig(onset_windows=-1)
    with pytest.raises(ValueError, match="onset_speech_s"):
        TrainConfig(onset_windows=1, onset_speech_s=(1.0, 3.0))


def test_clip_windows_adds_onset_windows_to_each_augmented_copy(tmp_path) -> None:
    from scipy.io import wavfile

    from ser_daemon.training.datasets import Clip
    from ser_daemon.training.train import TrainConfig, clip_windows

    path = tmp_path / "a.wav"
    wavfile.write(str(path), SR, (pause_then_tone(0.8, 1.6) * 32767).astype(np.int16))
    clip = Clip(path=path, label="angry", speaker="s1", corpus="t")
    base = TrainConfig(edge=0.6)
    plain, v_plain, _, _ = clip_windows(clip, CFG, base, copies=2)
    with_onsets, v_on, _, _ = clip_windows(clip, CFG, replace(base, onset_windows=3), copies=2)
    assert v_plain == [0, 1, 2] and v_on == [0, 1, 1, 2, 2]
    assert [len(f) for f in with_onsets[2::2]] == [3, 3]
    # the clean clip and the first copy's ordinary windows are untouched
    np.testing.assert_array_equal(with_onsets[0], plain[0])
    np.testing.assert_array_equal(with_onsets[1], plain[1])
