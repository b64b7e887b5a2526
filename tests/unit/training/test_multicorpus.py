"""Training on several corpora with different class sets, and reading Opus (nEMO's format).

Fixtures are generated here (never the shared corpora): a manifest corpus written as
Ogg Opus with 3 classes, and a RAVDESS-named WAV corpus with 4.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ser_daemon.audio.clips import load_audio
from ser_daemon.errors import AudioInputError
from ser_daemon.training.datasets import corpus_labels, load_dataset
from ser_daemon.training.synthetic import write_synthetic_dataset
from ser_daemon.training.train import FeatureSet, corpus_class_mask, emotion_targets

soundfile = pytest.importorskip("soundfile", reason="pip install soundfile (the train and test extras have it)")

RATE = 16000


def _tone(seconds: float, hz: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _opus_corpus(root: Path, labels: tuple[str, ...] = ("angry", "neutral", "sad")) -> Path:
    root.mkdir(parents=True)
    rows = []
    for spk in ("PL1", "PL2"):
        (root / spk).mkdir()
        for i, lab in enumerate(labels):
            rel = f"{spk}/{spk}_{lab}_{i}.opus"
            soundfile.write(str(root / rel), _tone(1.0, 220.0 + 40 * i), RATE, format="OGG", subtype="OPUS")
            rows.append({"path": rel, "speaker": spk, "emotion": lab, "duration_s": "1.0"})
    with (root / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "speaker", "emotion", "duration_s"])
        w.writeheader()
        w.writerows(rows)
    return root


def test_opus_reads_at_the_model_rate(tmp_path: Path) -> None:
    path = tmp_path / "tone.opus"
    tone = _tone(1.5, 440.0)
    soundfile.write(str(path), tone, RATE, format="OGG", subtype="OPUS")
    x = load_audio(path, RATE)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - len(tone)) <= RATE // 50  # Opus pre-skip/padding: within 20 ms
    spectrum = np.abs(np.fft.rfft(x[:RATE]))
    assert abs(np.argmax(spectrum) * 1.0 - 440.0) <= 2.0  # 1 Hz bins: the tone survives the codec
    assert 0.15 < float(np.sqrt(np.mean(x**2))) < 0.3  # the level too (0.3 peak sine: RMS 0.21)
    y = load_audio(path, 8000)  # resampled like a WAV would be
    assert abs(len(y) - len(x) // 2) <= 2


def test_broken_opus_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.opus"
    bad.write_bytes(b"OggS" + b"\0" * 60)
    with pytest.raises(AudioInputError, match="bad.opus: not a readable audio file"):
        load_audio(bad, RATE)


def test_corpora_keep_their_names_and_class_sets(tmp_path: Path) -> None:
    polish = _opus_corpus(tmp_path / "nemo")
    english = write_synthetic_dataset(tmp_path / "ravdess", "ravdess",
                                      labels=("neutral", "calm", "angry", "sad"), clips_per=1)
    clips = [c for root in (english, polish) for c in load_dataset(root)]
    assert {c.corpus for c in clips} == {"ravdess", "nemo"}
    assert all(c.path.suffix == ".opus" for c in clips if c.corpus == "nemo")
    assert corpus_labels(clips) == {"ravdess": frozenset({"neutral", "calm", "angry", "sad"}),
                                    "nemo": frozenset({"angry", "neutral", "sad"})}
    # A manifest given as its CSV file is named for its folder, like the folder itself.
    assert {c.corpus for c in load_dataset(polish / "manifest.csv")} == {"nemo"}
    assert len(load_audio(clips[-1].path, RATE)) > RATE // 2


def _feature_set(clips: list, labels: list[str], per_clip: int = 2) -> FeatureSet:
    n = len(clips) * per_clip
    index = {lab: i for i, lab in enumerate(labels)}
    clip_idx = np.repeat(np.arange(len(clips)), per_clip).astype(np.int32)
    y = np.array([index[clips[i].label] for i in clip_idx], np.int32)
    return FeatureSet(np.zeros((n, 4, 3), np.float16), y, clip_idx, np.zeros(n, np.int16), clips, labels)


def test_class_mask_follows_each_windows_corpus(tmp_path: Path) -> None:
    polish = _opus_corpus(tmp_path / "nemo")
    english = write_synthetic_dataset(tmp_path / "ravdess", "ravdess",
                                      labels=("neutral", "calm", "angry", "sad"), clips_per=1)
    clips = [c for root in (english, polish) for c in load_dataset(root)]
    labels = sorted({c.label for c in clips})  # angry, calm, neutral, sad
    fs = _feature_set(clips, labels)
    mask = corpus_class_mask(fs)
    calm = labels.index("calm")
    polish_rows = np.array([clips[i].corpus == "nemo" for i in fs.clip])
    assert mask.shape == (len(fs.y), 4)
    assert not mask[polish_rows, calm].any() and mask[~polish_rows].all()
    assert mask[polish_rows][:, [0, 2, 3]].all()
    # Merged into neutral, calm is recorded wherever neutral was: nothing is masked any more.
    assert corpus_class_mask(fs.merged({"calm": "neutral"})).all()


def test_targets_smooth_over_recorded_classes_only() -> None:
    y = np.array([0, 2])
    mask = np.array([[True, False, True, True], [True, True, True, True]])
    t = emotion_targets(y, mask, 4, 0.1)
    np.testing.assert_allclose(t[0], [0.9 + 0.1 / 3, -1.0, 0.1 / 3, 0.1 / 3], rtol=1e-6)
    np.testing.assert_allclose(t[1], [0.025, 0.025, 0.925, 0.025], rtol=1e-6)
    np.testing.assert_allclose(t[0][mask[0]].sum(), 1.0, rtol=1e-6)  # a distribution over what is recorded
    np.testing.assert_allclose(emotion_targets(y, None, 4, 0.0), np.eye(4)[y])
    with pytest.raises(ValueError, match="own label is masked"):
        emotion_targets(np.array([1]), mask[:1], 4, 0.1)


@pytest.mark.needs_tf
def test_masked_class_gets_no_gradient() -> None:
    """A Polish window (no calm) must not push calm's logit down; an English one must."""
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from ser_daemon.training.train import masked_crossentropy

    logits = tf.Variable([[0.5, 1.0, -0.2, 0.3], [0.5, 1.0, -0.2, 0.3]])
    mask = np.array([[True, False, True, True], [True, True, True, True]])
    targets = tf.constant(emotion_targets(np.array([0, 0]), mask, 4, 0.1))
    with tf.GradientTape() as tape:
        loss = masked_crossentropy(targets, tf.nn.softmax(logits))
    grad = tape.gradient(loss, logits).numpy()
    assert abs(grad[0, 1]) < 1e-6  # masked: untouched
    assert grad[1, 1] > 0.1  # recorded and wrong: pushed down
    assert grad[0, 0] < 0 and grad[1, 0] < 0  # the true class is pulled up either way
    # With nothing masked it is Keras's own label-smoothed cross-entropy.
    import keras

    ref = keras.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction=None)(
        tf.one_hot([0], 4), tf.nn.softmax(logits[1:]))
    np.testing.assert_allclose(loss.numpy()[1], ref.numpy()[0], rtol=1e-5)


@pytest.mark.needs_tf
def test_an_epoch_in_chunks_trains_the_same_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunking an epoch bounds its memory; the batches and SpecAugment's draws stay the same."""
    pytest.importorskip("tensorflow")
    from ser_daemon.training import train as tr
    from ser_daemon.training.datasets import Clip
    from ser_daemon.training.model_def import ModelConfig

    tr.configure_tensorflow(1)
    n, labels = 96, ["angry", "calm", "sad"]
    clips = [Clip(Path(f"c{i}.wav"), labels[i], "s1", corpus="a" if i < 2 else "b") for i in range(3)]
    y = np.array([i % 2 for i in range(n)], np.int32)  # windows of clips 0 and 1 (corpus a)
    x = np.random.default_rng(0).normal(-8, 2, (n, 40, 16)).astype(np.float16)
    fs = FeatureSet(x, y, y.copy(), np.zeros(n, np.int16), clips, labels)
    cfg = tr.TrainConfig(epochs=2, batch_size=16, seed=3, model=ModelConfig(width=4), class_mask=True)
    weights = []
    for batches in (1, 1000):  # six chunks of one batch, or the whole epoch at once
        monkeypatch.setattr(tr, "EPOCH_CHUNK_BATCHES", batches)
        model, history = tr.fit_model(fs, cfg, verbose=0)
        weights.append(model.get_weights())
        assert len(history) == 2 and np.isfinite(history[-1]["loss"])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_corpus_share_draws_a_fresh_subset_of_one_corpus_each_epoch(tmp_path: Path) -> None:
    from ser_daemon.training.train import class_weights, epoch_order, epoch_size, window_shares

    polish = _opus_corpus(tmp_path / "nemo")
    english = write_synthetic_dataset(tmp_path / "ravdess", "ravdess",
                                      labels=("neutral", "calm", "angry", "sad"), clips_per=1)
    clips = [c for root in (english, polish) for c in load_dataset(root)]
    labels = sorted({c.label for c in clips})
    fs = _feature_set(clips, labels, per_clip=40)
    polish_rows = np.array([clips[i].corpus == "nemo" for i in fs.clip])
    shares = window_shares(fs, {"nemo": 0.25})
    assert (shares[polish_rows] == 0.25).all() and (shares[~polish_rows] == 1.0).all()
    rng = np.random.default_rng(1)
    first, second = epoch_order(shares, rng), epoch_order(shares, rng)
    for order in (first, second):
        assert len(np.unique(order)) == len(order)  # no window twice in an epoch
        assert set(np.flatnonzero(~polish_rows)) <= set(order)  # every English window, every epoch
        assert polish_rows[order].sum() == round(0.25 * polish_rows.sum())
        assert len(order) == epoch_size(shares)
    assert set(first[polish_rows[first]]) != set(second[polish_rows[second]])  # drawn afresh
    # Class weights count windows as an epoch sees them: calm (English only) is not over-weighted.
    w, w_all = class_weights(fs.y, len(labels), shares), class_weights(fs.y, len(labels))
    calm, angry = labels.index("calm"), labels.index("angry")
    assert w[calm] / w[angry] < w_all[calm] / w_all[angry]
    expected = np.bincount(fs.y, weights=shares, minlength=len(labels))
    np.testing.assert_allclose([w[i] * expected[i] for i in range(len(labels))], len(first) / len(labels), rtol=0.01)
    with pytest.raises(ValueError, match="not among the training corpora"):
        window_shares(fs, {"emovo": 0.5})
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        window_shares(fs, {"nemo": 0.0})


def test_ser_train_refuses_a_bad_corpus_share(tmp_path: Path) -> None:
    from ser_daemon.training.train_cli import main

    english = write_synthetic_dataset(tmp_path / "ravdess", "ravdess", labels=("neutral", "angry"), clips_per=1)
    out = tmp_path / "out"
    assert main(["--data", str(english), "--out", str(out), "--corpus-share", "nemo"]) == 2
    assert main(["--data", str(english), "--out", str(out), "--corpus-share", "nemo=0.5"]) == 2
    assert not out.exists()


@pytest.mark.needs_tf
def test_corpus_adversary_guesses_the_corpus_of_each_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adversary's classes are the corpora (two here), and its targets follow each window's clip."""
    pytest.importorskip("tensorflow")
    from ser_daemon.training import train as tr
    from ser_daemon.training.datasets import Clip
    from ser_daemon.training.model_def import ModelConfig

    tr.configure_tensorflow(1)
    n, labels = 48, ["angry", "calm", "sad"]
    clips = [Clip(Path(f"c{i}.wav"), labels[i], f"s{i}", corpus="a" if i < 2 else "b") for i in range(3)]
    clip = np.array([i % 3 for i in range(n)], np.int32)
    x = np.random.default_rng(0).normal(-8, 2, (n, 40, 16)).astype(np.float16)
    fs = FeatureSet(x, clip.copy(), clip, np.zeros(n, np.int16), clips, labels)
    assert list(fs.corpora()[:3]) == ["a", "a", "b"]
    seen: dict[str, object] = {}
    real = tr.with_speaker_adversary

    def spy(model, n_groups, seed=0):  # type: ignore[no-untyped-def]
        seen["groups"] = n_groups
        return real(model, n_groups, seed=seed)

    monkeypatch.setattr(tr, "with_speaker_adversary", spy)
    targets: list[np.ndarray] = []
    import keras

    def fit(self, x, y=None, **kw):  # type: ignore[no-untyped-def]
        targets.append(np.asarray(y[1]))
        return real_fit_any(self, x, y, **kw)

    real_fit_any = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", fit)
    monkeypatch.setattr(tr, "EPOCH_CHUNK_BATCHES", 1)  # the adversary, too, trains an epoch in chunks (memory)
    cfg = tr.TrainConfig(epochs=1, batch_size=16, seed=3, model=ModelConfig(width=4), corpus_adversary=0.3)
    model, history = tr.fit_model(fs, cfg, verbose=0)
    assert seen["groups"] == 2 and np.isfinite(history[-1]["loss"])
    assert [len(t) for t in targets] == [16, 16, 16]
    got = np.concatenate(targets)
    assert sorted(set(got.tolist())) == [0, 1] and (got == 1).sum() == n // 3  # corpus b: every third window
    with pytest.raises(ValueError, match="one adversary at a time"):
        tr.fit_model(fs, tr.TrainConfig(epochs=1, speaker_adversary=0.1, corpus_adversary=0.1), verbose=0)


def test_ser_train_refuses_a_bad_corpus_adversary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ser_daemon.training.train_cli import main

    english = write_synthetic_dataset(tmp_path / "ravdess", "ravdess", labels=("neutral", "angry"), clips_per=1)
    out = tmp_path / "out"
    for bad in (["--corpus-adversary", "-1"], ["--corpus-adversary", "0.2", "--speaker-adversary", "0.2"]):
        assert main(["--data", str(english), "--out", str(out), *bad]) == 2
        assert "--corpus-adversary must be 0 or more and cannot go with --speaker-adversary" in capsys.readouterr().err
    assert main(["--data", str(english), "--out", str(out), "--mixup", "0.4", "--corpus-adversary", "0.2"]) == 2
    assert "cannot go with an adversary" in capsys.readouterr().err
    assert not out.exists()
