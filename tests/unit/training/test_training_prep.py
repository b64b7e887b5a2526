"""Windows, trimming and augmentation: pure numpy, no TensorFlow."""

from __future__ import annotations

import numpy as np

from ser_daemon.core.features import FeatureConfig, frames_for_samples
from ser_daemon.audio.clips import cut_windows, features_of, speech_bounds, window_starts
from ser_daemon.training.augment import (
    AugmentConfig,
    augment_waveform,
    colored_noise,
    mix_speakers,
    mixup,
    opus_round_trip,
    spec_augment,
    warp_mels,
)
from ser_daemon.training.evaluate import classification_report, clip_level, map_labels
from ser_daemon.training.datasets import Clip
from ser_daemon.training.synthetic import synth_clip

SR = 16000


def test_speech_bounds_find_the_tone() -> None:
    x = synth_clip(0, 0, 0, seconds=3.0)
    s, e = speech_bounds(x, SR)
    assert abs(s - int(0.2 * SR)) <= int(0.03 * SR)  # 0.3 s head minus the 0.1 s margin
    assert abs(e - int(2.8 * SR)) <= int(0.03 * SR)
    assert speech_bounds(np.zeros(SR, np.float32), SR) == (0, SR)


def test_windows_have_the_daemon_shape() -> None:
    cfg = FeatureConfig()
    win = 2 * SR
    x = synth_clip(1, 0, 0, seconds=4.0)
    starts = window_starts(len(x), speech_bounds(x, SR), win, SR // 2)
    assert starts and all(0 <= s <= len(x) - win for s in starts)
    feats = features_of(cut_windows(x, starts, win), cfg)
    assert feats.shape == (len(starts), frames_for_samples(win, cfg), cfg.n_mels) == (len(starts), 197, 64)
    short = synth_clip(1, 0, 0, seconds=1.0)
    w = cut_windows(short, window_starts(len(short), (0, len(short)), win, SR // 2), win)
    assert w.shape == (1, win) and np.all(np.abs(w) > 0)  # padded with faint noise, not zeros


def test_augmentation_is_seeded_and_bounded() -> None:
    x = synth_clip(2, 1, 0, seconds=3.0)
    cfg = AugmentConfig()
    a, ba = augment_waveform(x, SR, np.random.default_rng(5), cfg, (4800, 43200))
    b, bb = augment_waveform(x, SR, np.random.default_rng(5), cfg, (4800, 43200))
    c, _ = augment_waveform(x, SR, np.random.default_rng(6), cfg, (4800, 43200))
    assert np.array_equal(a, b) and ba == bb
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and np.max(np.abs(a)) <= 1.0
    assert 0.85 * len(x) < len(a) < 1.15 * len(x)
    n = colored_noise(8000, np.random.default_rng(0), 1.0)
    assert abs(float(np.sqrt(np.mean(n**2))) - 1.0) < 1e-3


def _band_db(x: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(x[: len(x) // 1024 * 1024].reshape(-1, 1024) * np.hanning(1024), axis=1)) ** 2
    return 10 * np.log10(spec.mean(axis=0) + 1e-12)


def test_opus_round_trip_keeps_time_and_marks_the_top_band() -> None:
    rng = np.random.default_rng(3)
    x = (0.1 * colored_noise(3 * SR, rng, 1.0)).astype(np.float32)  # broadband, like a noisy voice
    y = opus_round_trip(x, SR, 0.92)  # about 16 kbit/s
    assert y.dtype == np.float32 and y.shape == x.shape
    lags = np.arange(-40, 41)
    corr = [float(np.dot(x[100:-100], np.roll(y, -k)[100:-100])) for k in lags]
    assert lags[int(np.argmax(corr))] == 0  # aligned: the decoder's pre-skip is dropped
    diff = np.abs(_band_db(y) - _band_db(x))
    hz = np.fft.rfftfreq(1024, 1 / SR)
    assert diff[(hz > 6000) & (hz < 7800)].mean() > diff[(hz > 200) & (hz < 2000)].mean() + 1.0
    # A higher bitrate changes the signal less.
    err = [float(np.sqrt(np.mean((opus_round_trip(x, SR, lvl) - x) ** 2))) for lvl in (0.75, 0.92)]
    assert err[0] < err[1] < float(np.sqrt(np.mean(x**2)))


def test_opus_in_augmentation_is_the_last_step_and_off_by_default() -> None:
    x = synth_clip(2, 1, 0, seconds=2.0)
    bounds = (3200, 28800)
    assert AugmentConfig().p_opus == 0.0
    plain, b0 = augment_waveform(x, SR, np.random.default_rng(9), AugmentConfig(), bounds)
    coded, b1 = augment_waveform(x, SR, np.random.default_rng(9), AugmentConfig(p_opus=1.0, opus_level=(0.8, 0.8)),
                                 bounds)
    assert b0 == b1
    np.testing.assert_array_equal(coded, opus_round_trip(plain, SR, 0.8))
    assert AugmentConfig.from_dict(AugmentConfig(p_opus=0.5).to_dict()) == AugmentConfig(p_opus=0.5)


def test_spec_augment_masks_copy() -> None:
    batch = np.random.default_rng(0).standard_normal((4, 197, 64)).astype(np.float32)
    out = spec_augment(batch, np.random.default_rng(1), AugmentConfig(time_mask_frames=30, freq_mask_bands=10))
    assert out.shape == batch.shape and not np.array_equal(out, batch)
    assert np.array_equal(batch, np.random.default_rng(0).standard_normal((4, 197, 64)).astype(np.float32))


def test_mel_warp_moves_formants_and_nothing_else() -> None:
    x = np.full((3, 5, 64), -10.0, np.float32)
    x[:, :, 20] = 0.0  # one loud band: a formant
    out = warp_mels(x, np.array([1.0, 1.25, 0.8]))
    np.testing.assert_array_equal(out[0], x[0])  # factor 1: untouched
    assert int(out[1, 0].argmax()) == 25 and int(out[2, 0].argmax()) == 16  # band j reads band j / factor
    assert np.all(out[:, 0] == out[:, 4])  # the time axis is not touched
    assert out.min() >= -10.0 and out.max() <= 0.0  # interpolation, never extrapolation
    # Off by default; when on, drawn per window from the seed.
    cfg = AugmentConfig(time_masks=0, freq_masks=0)
    batch = np.random.default_rng(0).standard_normal((6, 197, 64)).astype(np.float32)
    np.testing.assert_array_equal(spec_augment(batch, np.random.default_rng(1), cfg), batch)
    warped = AugmentConfig(time_masks=0, freq_masks=0, mel_warp=(0.85, 1.15))
    a = spec_augment(batch, np.random.default_rng(1), warped)
    np.testing.assert_array_equal(a, spec_augment(batch, np.random.default_rng(1), warped))
    assert not np.allclose(a, batch)
    assert AugmentConfig.from_dict(warped.to_dict()) == warped


def test_time_reverse_plays_a_share_of_windows_backwards() -> None:
    batch = np.random.default_rng(0).standard_normal((200, 197, 64)).astype(np.float32)
    every = spec_augment(batch, np.random.default_rng(1), AugmentConfig(time_masks=0, freq_masks=0, time_reverse=1.0))
    np.testing.assert_array_equal(every, batch[:, ::-1, :])
    half = spec_augment(batch, np.random.default_rng(1), AugmentConfig(time_masks=0, freq_masks=0, time_reverse=0.5))
    backwards = np.array([np.array_equal(h, b[::-1]) for h, b in zip(half, batch)])
    kept = np.array([np.array_equal(h, b) for h, b in zip(half, batch)])
    assert np.all(backwards ^ kept) and 70 < backwards.sum() < 130
    cfg = AugmentConfig(time_reverse=0.5)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    assert AugmentConfig.from_dict({k: v for k, v in AugmentConfig().to_dict().items() if k != "time_reverse"}) \
        == AugmentConfig()  # bundles written before the option load unchanged


def test_mix_speakers_blends_the_same_emotion_across_voices_only() -> None:
    x = np.concatenate([np.full((4, 3, 2), 1.0), np.full((4, 3, 2), 3.0), np.full((2, 3, 2), 10.0)]).astype(np.float16)
    labels = np.array([0] * 8 + [1] * 2)
    speakers = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 2)
    before = x.copy()
    out = mix_speakers(x, labels, speakers, np.random.default_rng(0), share=1.0)
    np.testing.assert_array_equal(x, before)  # a copy
    a, b, c = out[:4], out[4:8], out[8:]
    assert np.all((a >= 1.0) & (a <= 2.0)) and np.any(a > 1.0)  # own voice weighs 0.5-1
    assert np.all((b >= 2.0) & (b <= 3.0)) and np.any(b < 3.0)
    np.testing.assert_array_equal(c, 10.0)  # no other speaker has label 1: left alone
    assert np.all(out[:, 0] == out[:, 2])  # one weight per window
    np.testing.assert_array_equal(mix_speakers(x, labels, speakers, np.random.default_rng(0), share=0.0), before)


def test_mixup_mixes_windows_and_targets_by_one_weight_with_the_own_label_largest() -> None:
    rng = np.random.default_rng(0)
    n, k = 300, 4
    x = (np.arange(n, dtype=np.float32)[:, None, None] * np.ones((n, 5, 3), np.float32))  # window i is all i
    labels = np.arange(n) % k
    y = np.eye(k, dtype=np.float32)[labels]
    before = (x.copy(), y.copy())
    mx, my = mixup(x, y, rng, alpha=0.4)
    np.testing.assert_array_equal(x, before[0])  # copies
    np.testing.assert_array_equal(y, before[1])
    np.testing.assert_allclose(my.sum(axis=1), 1.0, atol=1e-6)
    own = my[np.arange(n), labels]
    assert np.all(own >= 0.5 - 1e-6) and np.all(my.argmax(axis=1)[own > 0.5 + 1e-6] == labels[own > 0.5 + 1e-6])
    assert np.all(mx == mx[:, :1, :1])  # one weight per window: a constant window stays constant
    # Each window's value is lam * i + (1 - lam) * partner, with the same lam as its target.
    partners_differ = own < 1 - 1e-4
    assert partners_differ.sum() > n // 2  # alpha 0.4: most windows really are mixed
    lam = own[partners_differ]
    partner = (mx[partners_differ, 0, 0] - lam * np.arange(n)[partners_differ]) / (1 - lam)
    np.testing.assert_allclose(partner, np.round(partner), atol=0.05)  # a real window of the batch
    same, same_y = mixup(x, y, rng, alpha=0.0)
    np.testing.assert_array_equal(same, x)
    np.testing.assert_array_equal(same_y, y)
    cfg = AugmentConfig(mixup=0.4)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg


def test_weight_average_is_the_mean_in_the_original_dtypes() -> None:
    import pytest

    from ser_daemon.training.train import WeightAverage

    avg = WeightAverage()
    with pytest.raises(ValueError, match="no weights"):
        avg.result([])
    snapshots = [[np.full((2, 3), v, np.float32), np.array([v * 10], np.float32)] for v in (1.0, 2.0, 6.0)]
    for w in snapshots:
        avg.add(w)
    out = avg.result(snapshots[0])
    assert avg.count == 3 and [o.dtype for o in out] == [np.float32, np.float32]
    np.testing.assert_allclose(out[0], 3.0)
    np.testing.assert_allclose(out[1], [30.0])
    with pytest.raises(ValueError, match="shape"):
        avg.add([np.zeros((3, 2)), np.zeros(1)])


def test_metrics_and_clip_voting() -> None:
    rep = classification_report(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert rep["accuracy"] == 0.6
    assert rep["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert rep["per_class"]["b"]["precision"] == 2 / 3 and rep["per_class"]["c"]["f1"] == 0.0
    assert abs(rep["macro_f1"] - np.mean([0.5, 0.8, 0.0])) < 1e-9
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    ids, preds = clip_level(probs, np.array([0, 0, 1, 1]))
    assert ids.tolist() == [0, 1] and preds.tolist() == [0, 1]


def test_label_aliases() -> None:
    from pathlib import Path

    clips = [Clip(Path("a.wav"), "disgusted", "x"), Clip(Path("b.wav"), "amused", "x")]
    kept, skipped = map_labels(clips, ["disgust", "happy"])
    assert [c.label for c in kept] == ["disgust"] and skipped == {"amused": 1}
    kept, skipped = map_labels(clips, ["disgust", "happy"], {"amused": "happy"})
    assert len(kept) == 2 and not skipped
