"""The CNN's level branch, and training references that keep the level meaningful.

The per-window standardisation makes the plain CNN blind to a window's level
against the speaker's reference; the branch exists to see it.  The training
side must then give augmented copies (played at random gains) references that
moved with their gain, or the level it learns from is noise.
"""

from __future__ import annotations

from pathlib import Path

import importlib.util

import numpy as np
import pytest

from ser_daemon.core.speaker_norm import LOG_PER_DB
from ser_daemon.training.datasets import Clip
from ser_daemon.training.model_def import ModelConfig, build_model
from ser_daemon.training.train import FeatureSet, apply_speaker_norm

# Builds Keras models. Skipped, not imported, without Keras: collecting the fast tier must not load it.
pytestmark = [pytest.mark.needs_tf, pytest.mark.skipif(importlib.util.find_spec("keras") is None,
                                                        reason="the model definition needs Keras")]


def _speechlike(rng: np.random.Generator, n: int) -> np.ndarray:
    """Log-mel windows: quiet floor with loud bursts, so levels have something to measure."""
    x = rng.normal(-12.0, 0.5, (n, 197, 64))
    for i in range(n):
        a = int(rng.integers(0, 120))
        x[i, a : a + 60] += rng.normal(8.0, 1.0, (60, 64))
    return x.astype(np.float32)


def test_plain_cnn_ignores_a_level_shift_the_branch_sees_it() -> None:
    from ser_daemon.model.inference import embedding_output

    import keras

    x = _speechlike(np.random.default_rng(1), 4)
    plain = build_model((197, 64), 5, ModelConfig(width=4), seed=3)
    branched = build_model((197, 64), 5, ModelConfig(width=4, level_units=6), seed=3)
    shifted = x + np.float32(15 * LOG_PER_DB)  # the same speech 15 dB louder against the reference
    np.testing.assert_allclose(plain(x, training=False), plain(shifted, training=False), atol=1e-5)
    moved = np.abs(np.asarray(branched(x, training=False)) - np.asarray(branched(shifted, training=False))).max()
    assert moved > 1e-3
    # The head reads the pooled CNN features joined to the branch.
    assert int(embedding_output(branched).shape[-1]) == 4 * 8 + 6
    assert int(embedding_output(plain).shape[-1]) == 4 * 8
    head_in = keras.Model(branched.input, embedding_output(branched))
    assert head_in(x[:1], training=False).shape == (1, 38)


def _two_versions(gain_db: float) -> FeatureSet:
    """One clip per speaker, a clean version and an 'augmented' copy that is the same windows, louder."""
    rng = np.random.default_rng(5)
    clips = [Clip(Path(f"/nonexistent/{s}.wav"), "angry", s) for s in ("ann", "bob")]
    xs, cs, vs = [], [], []
    vsum = np.zeros((2, 64))
    vn = np.zeros(2, np.int64)
    for ci in range(2):
        clean = _speechlike(rng, 3) + np.float32(ci)  # the speakers differ in level too
        loud = clean + np.float32(gain_db * LOG_PER_DB)
        xs += [clean, loud]
        cs += [np.full(3, ci), np.full(3, ci)]
        vs += [np.zeros(3, np.int16), np.ones(3, np.int16)]
        frames = clean.reshape(-1, 64)
        vsum[ci] = frames.sum(axis=0)
        vn[ci] = len(frames)
    x = np.concatenate(xs).astype(np.float16)
    return FeatureSet(x, np.zeros(len(x), np.int32), np.concatenate(cs).astype(np.int32), np.concatenate(vs),
                      clips, ["angry"], vsum, vn)


def test_matched_gain_cancels_the_copy_gain() -> None:
    fs = _two_versions(gain_db=-12.0)
    clean, aug = fs.version == 0, fs.version == 1
    matched, _ = apply_speaker_norm(fs, seed=0, match_gain=True, gain_jitter_db=0.0)
    d = matched.x[aug].astype(np.float32) - matched.x[clean].astype(np.float32)
    assert np.abs(d).max() < 0.05  # float16 rounding only
    unmatched, _ = apply_speaker_norm(fs, seed=0)
    d = unmatched.x[aug].astype(np.float32) - unmatched.x[clean].astype(np.float32)
    np.testing.assert_allclose(d.mean(), -12.0 * LOG_PER_DB, atol=0.05)  # the old behaviour keeps the gain
    # With jitter the copies' level is right give or take the jitter, and not exactly.
    jittered, _ = apply_speaker_norm(fs, seed=0, match_gain=True, gain_jitter_db=3.0)
    offs = [float((jittered.x[(fs.clip == ci) & aug].astype(np.float32)
                   - jittered.x[(fs.clip == ci) & clean].astype(np.float32)).mean()) for ci in (0, 1)]
    assert all(abs(o) <= 3.0 * LOG_PER_DB + 0.05 for o in offs)
    assert any(abs(o) > 0.01 for o in offs)


def test_centred_window_ignores_the_gain_but_keeps_the_spread() -> None:
    """--window-norm centre: a gain (an offset in log-mel) changes nothing; a flatter window does."""
    x = _speechlike(np.random.default_rng(2), 3)
    std = build_model((197, 64), 5, ModelConfig(width=4), seed=3)
    centre = build_model((197, 64), 5, ModelConfig(width=4, window_norm="centre"), seed=3)
    flat = x.mean(axis=(1, 2), keepdims=True) + 0.5 * (x - x.mean(axis=(1, 2), keepdims=True))
    for model in (std, centre):
        np.testing.assert_allclose(model.predict(x + 3.0, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_allclose(std.predict(flat, verbose=0), std.predict(x, verbose=0), atol=1e-4)
    assert np.abs(centre.predict(flat, verbose=0) - centre.predict(x, verbose=0)).max() > 1e-3
    with pytest.raises(ValueError, match="window_norm must be"):
        build_model((197, 64), 5, ModelConfig(width=4, window_norm="none"))


@pytest.mark.parametrize("pooling, width_of", [("mean", lambda c, f: c), ("meanmax", lambda c, f: 2 * c),
                                               ("band", lambda c, f: f * c), ("attention", lambda c, f: c)])
def test_pooling_sets_the_embedding_the_head_and_profiles_read(pooling: str, width_of) -> None:  # type: ignore[no-untyped-def]
    """The head's input is the pooled vector: wider for mean+max and per-band pooling, found by name."""
    from ser_daemon.model.inference import embedding_output

    model = build_model((197, 64), 5, ModelConfig(width=4, window_norm="centre", pooling=pooling), seed=1)
    channels = 4 * 8  # the last of 4 blocks has width x 8 channels
    bands = 64 // 2 // 2 // 2 // 2  # strided stem, then three 2x2 pools
    emb = embedding_output(model)
    assert emb.shape[-1] == width_of(channels, bands)
    assert model.get_layer("probs").input.shape[-1] == emb.shape[-1]
    x = _speechlike(np.random.default_rng(4), 2)
    np.testing.assert_allclose(model.predict(x + 3.0, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_mean_max_pooling_sees_a_short_burst_that_the_mean_dilutes() -> None:
    """A burst in a tenth of the window moves the max half of the embedding as much as a burst 10x as long."""
    import keras

    from ser_daemon.model.inference import embedding_output

    model = build_model((200, 64), 5, ModelConfig(width=4, window_norm="centre", pooling="meanmax"), seed=2)
    emb = keras.Model(model.input, embedding_output(model))
    quiet = np.full((1, 200, 64), -10.0, np.float32)
    short, long = quiet.copy(), quiet.copy()
    short[0, 90:110, 20:30] += 6.0
    long[0, :, 20:30] += 6.0
    e_q, e_s, e_l = (emb.predict(w, verbose=0)[0] for w in (quiet, short, long))
    half = len(e_q) // 2
    mean_moved = np.abs(e_s[:half] - e_q[:half]).sum() / np.abs(e_l[:half] - e_q[:half]).sum()
    max_moved = np.abs(e_s[half:] - e_q[half:]).sum() / np.abs(e_l[half:] - e_q[half:]).sum()
    assert max_moved > 2 * mean_moved


def test_attention_pooling_is_a_weighted_mean_of_the_frames() -> None:
    """The weights are a distribution over time, and the pooled vector is their mix of the frames."""
    import keras

    model = build_model((197, 64), 5, ModelConfig(width=4, window_norm="centre", pooling="attention"), seed=3)
    probe = keras.Model(model.input, [model.get_layer("attention_weight").output, model.get_layer("frames").output,
                                      model.get_layer("pooled").output])
    x = _speechlike(np.random.default_rng(5), 3)
    weight, frames, pooled = probe.predict(x, verbose=0)
    assert weight.shape == (3, frames.shape[1], 1)
    np.testing.assert_allclose(weight.sum(axis=1), 1.0, atol=1e-5)
    assert (weight >= 0).all() and weight.std(axis=1).max() > 0  # not a plain mean
    np.testing.assert_allclose(pooled, (weight * frames).sum(axis=1), rtol=1e-4, atol=1e-5)


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(ValueError, match="pooling must be"):
        build_model((197, 64), 5, ModelConfig(width=4, pooling="unknown"))


@pytest.mark.parametrize("pooling, width", [("mean", 32), ("meanmax", 64), ("band", 4 * 32), ("attention", 32)])
@pytest.mark.parametrize("level_units", [0, 8])
def test_speaker_adversary_reads_the_whole_pooled_features_for_every_pooling(pooling: str, width: int,
                                                                             level_units: int) -> None:
    """The adversary sits on the pooled CNN features, never on the level branch, whatever the pooling."""
    from ser_daemon.training.model_def import with_speaker_adversary

    model = build_model((197, 64), 5, ModelConfig(width=4, pooling=pooling, level_units=level_units), seed=1)
    train, _ = with_speaker_adversary(model, 3)
    assert train.get_layer("speaker_hidden").input.shape[-1] == width
