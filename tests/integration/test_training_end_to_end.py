"""ser-train and ser-eval end to end on a generated EmoV-DB-layout fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import has_tf
from ser_daemon.training.synthetic import write_synthetic_dataset

# Skipped, not imported, without TensorFlow: collecting the fast tier must not load it.
pytestmark = [pytest.mark.needs_tf, pytest.mark.skipif(not has_tf(), reason="training needs TensorFlow")]

TINY = ["--epochs", "1", "--width", "4", "--copies", "1", "--batch-size", "16", "--quantize", "float", "-q",
        "--threads", "2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("emovdb"), "emovdb", speakers=("bea", "sam", "jenie"),
                                   clips_per=2)


@pytest.fixture(scope="module")
def bundle(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ser_daemon.training.train_cli import main

    out = tmp_path_factory.mktemp("model") / "tiny"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", *TINY]) == 0
    return out


def test_train_writes_a_loadable_bundle(bundle: Path) -> None:
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle

    b = load_bundle(bundle)
    assert b.labels == ("angry", "neutral", "sleepy")
    assert b.input_shape == (197, 64)
    assert b.keras_file is not None and b.tflite_file is not None
    meta = b.metadata
    assert meta["training"]["heldout_speakers"] == ["jenie"]
    assert "jenie" not in meta["training"]["train_speakers"]
    assert 0.0 <= meta["metrics"]["heldout"]["clip"]["accuracy"] <= 1.0
    assert "streaming" in meta["metrics"]["heldout"]
    x = np.random.default_rng(0).normal(-6, 3, (3, 197, 64)).astype(np.float32)
    lite = load_classifier(b, backend="litert").predict(x)
    keras_probs = load_classifier(b, backend="keras").predict(x)
    assert lite.shape == (3, 3)
    np.testing.assert_allclose(lite, keras_probs, atol=1e-4)
    np.testing.assert_allclose(lite.sum(axis=1), 1.0, atol=1e-5)
    # Ready for personal profiles: the head is stored and the LiteRT model gives its input.
    probs, emb = load_classifier(b, backend="litert").predict_embedded(x)
    assert b.head is not None and emb.shape == (3, b.head.embedding_dim)
    np.testing.assert_allclose(b.head.probs(emb), probs, atol=2e-3)
    assert (bundle / "eval" / "report.json").is_file() and (bundle / "eval" / "confusion_matrix.png").is_file()


def test_eval_writes_json_and_png(bundle: Path, corpus: Path, tmp_path: Path) -> None:
    from ser_daemon.training.eval_cli import main

    out = tmp_path / "eval"
    assert main(["--model", str(bundle), "--data", str(corpus), "--out", str(out), "-q"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["speakers"] == ["jenie"]  # the trained-on speakers are left out by default
    for level in ("window", "clip", "streaming"):
        assert set(rep[level]) >= {"accuracy", "macro_f1", "per_class", "confusion"}
    assert rep["clip"]["n"] == 6
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "macro-F1" in (out / "report.txt").read_text()


def test_eval_of_only_trained_on_speakers_names_them_and_scores_them_only_when_asked(
        bundle: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ser_daemon.training.eval_cli import main

    out = tmp_path / "eval"
    args = ["--model", str(bundle), "--data", str(corpus), "--out", str(out), "--speakers", "bea,sam",
            "--no-streaming", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the model trained on bea, sam" in err and "--include-train-speakers" in err
    assert not out.exists()
    assert main([*args, "--include-train-speakers"]) == 0
    assert json.loads((out / "report.json").read_text())["speakers"] == ["bea", "sam"]


def test_eval_refuses_fewer_than_one_draw(bundle: Path, corpus: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from ser_daemon.training.eval_cli import main

    out = tmp_path / "eval"
    assert main(["--model", str(bundle), "--data", str(corpus), "--out", str(out), "--enroll", "1",
                 "--enroll-draws", "0", "-q"]) == 2
    assert "--enroll-draws must be at least 1" in capsys.readouterr().err
    assert main(["--model", str(bundle), "--data", str(corpus), "--out", str(out), "--timeline",
                 "--timeline-draws", "-1", "-q"]) == 2
    assert "--timeline-draws must be at least 1, not -1" in capsys.readouterr().err
    assert not out.exists()


def test_same_seed_same_model(corpus: Path) -> None:
    from dataclasses import replace

    from ser_daemon.core.features import FeatureConfig
    from ser_daemon.training.datasets import load_dataset
    from ser_daemon.training.model_def import ModelConfig
    from ser_daemon.training.train import TrainConfig, build_feature_set, configure_tensorflow, fit_model

    configure_tensorflow(2)
    cfg = TrainConfig(epochs=1, batch_size=16, model=ModelConfig(width=4))
    cfg = replace(cfg, augment=replace(cfg.augment, copies=1))
    clips = load_dataset(corpus)
    labels = sorted({c.label for c in clips})
    fs1 = build_feature_set(clips, labels, FeatureConfig(), cfg, progress=None)
    fs2 = build_feature_set(clips, labels, FeatureConfig(), cfg, progress=None)
    assert np.array_equal(fs1.x, fs2.x)
    m1, _ = fit_model(fs1, cfg, verbose=0)
    m2, _ = fit_model(fs2, cfg, verbose=0)
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_per_epoch_augmentations_reuse_the_feature_cache(corpus: Path, tmp_path: Path) -> None:
    """Stretching, speaker mixing and backwards play act on cached features: one cache file serves them all."""
    from dataclasses import replace

    from ser_daemon.core.features import FeatureConfig
    from ser_daemon.training.datasets import load_dataset
    from ser_daemon.training.train import TrainConfig, build_feature_set

    cfg = TrainConfig(epochs=1)
    cfg = replace(cfg, augment=replace(cfg.augment, copies=1))
    clips = load_dataset(corpus)
    labels = sorted({c.label for c in clips})
    base = build_feature_set(clips, labels, FeatureConfig(), cfg, cache_dir=tmp_path, progress=None)
    for change in ({"time_reverse": 0.5}, {"mel_warp": (0.9, 1.1)}, {"mix_speakers": 0.5}, {"mixup": 0.4}):
        other = replace(cfg, augment=replace(cfg.augment, **change))
        again = build_feature_set(clips, labels, FeatureConfig(), other, cache_dir=tmp_path, progress=None)
        np.testing.assert_array_equal(again.x, base.x)
    assert len(list(tmp_path.glob("features-*.npz"))) == 1
    build_feature_set(clips, labels, FeatureConfig(), replace(cfg, augment=replace(cfg.augment, copies=2)),
                      cache_dir=tmp_path, progress=None)
    assert len(list(tmp_path.glob("features-*.npz"))) == 2  # what does shape the features gets its own entry
    off = replace(cfg, augment=replace(cfg.augment, opus_level=(0.5, 0.6)))  # no codec: the old key
    build_feature_set(clips, labels, FeatureConfig(), off, cache_dir=tmp_path, progress=None)
    assert len(list(tmp_path.glob("features-*.npz"))) == 2
    coded = build_feature_set(clips, labels, FeatureConfig(), replace(cfg, augment=replace(cfg.augment, p_opus=1.0)),
                              cache_dir=tmp_path, progress=None)
    assert len(list(tmp_path.glob("features-*.npz"))) == 3
    # The codec touches augmented copies only (their window grids may differ: the draws after it move).
    np.testing.assert_array_equal(coded.x[coded.version == 0], base.x[base.version == 0])
    assert (coded.version > 0).any() and not np.array_equal(coded.x[coded.version > 0][:3], base.x[base.version > 0][:3])


def test_ser_train_opus_option_sets_the_share_and_checks_it() -> None:
    from ser_daemon.training.train_cli import _config, build_parser

    parser = build_parser()
    cfg = _config(parser.parse_args(["--data", "x", "--out", "y", "--opus", "0.5"]))
    assert cfg.augment.p_opus == 0.5
    assert _config(parser.parse_args(["--data", "x", "--out", "y"])).augment.p_opus == 0.0
    with pytest.raises(SystemExit) as err:
        parser.parse_args(["--data", "x", "--out", "y", "--opus", "1.5"])
    assert err.value.code == 2


@pytest.mark.skipif(__import__("importlib").util.find_spec("jax") is None, reason="JAX not installed")
def test_keras_file_loads_under_jax(bundle: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import keras

    x = np.random.default_rng(1).normal(-6, 3, (2, 197, 64)).astype(np.float32)
    ref = np.asarray(keras.saving.load_model(bundle / "model.keras")(x, training=False))
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np, keras, sys; "
        f"m = keras.saving.load_model({str(bundle / 'model.keras')!r}); "
        f"print(keras.backend.backend()); np.save({str(tmp_path / 'p.npy')!r}, "
        f"np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}), training=False)))"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "jax" in out.stdout
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), ref, atol=1e-5)


def test_model_card_from_reports(bundle: Path, tmp_path: Path) -> None:
    import shutil

    from ser_daemon.training.report import main

    card_dir = tmp_path / "bundle"
    shutil.copytree(bundle, card_dir)
    assert main(["--model", str(card_dir), "--eval-dir", str(bundle / "eval"), "--timing-calls", "20"]) == 0
    card = (card_dir / "MODEL_CARD.md").read_text()
    # The fixture corpus is none the card knows: it names it and says its terms carry over.
    assert "its own licence terms apply to the weights" in card and "non-commercial" in card
    assert "confusion_matrix.png" in card and "ser-train" in card
    assert (card_dir / "confusion_matrix.png").is_file()
    meta = json.loads((card_dir / "ser_model.json").read_text())
    assert meta["evaluation"]["heldout"]["speakers"] == ["jenie"]


def test_two_corpora_train_one_speaker_normalised_model(corpus: Path, tmp_path: Path) -> None:
    """Several --data folders (different layouts) make one model; speaker references go with it."""
    from dataclasses import replace

    from ser_daemon.core.features import FeatureConfig
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training.datasets import load_dataset
    from ser_daemon.training.train import TrainConfig, apply_speaker_norm, build_feature_set, speaker_references
    from ser_daemon.training.train_cli import main

    second = write_synthetic_dataset(tmp_path / "ravdess", "ravdess", labels=("angry", "neutral", "happy"),
                                     speakers=("Actor_01", "Actor_02"), clips_per=2)
    out = tmp_path / "two"
    assert main(["--data", str(corpus), "--data", str(second), "--out", str(out), "--holdout-speakers", "jenie",
                 "--no-streaming", *TINY]) == 0
    b = load_bundle(out)
    assert b.labels == ("angry", "happy", "neutral", "sleepy")  # the union of both corpora's classes
    train = b.metadata["training"]
    assert set(train["train_speakers"]) == {"bea", "sam", "Actor_01", "Actor_02"}
    assert train["data"]["root"] == [str(corpus), str(second)]
    assert b.speaker_norm is not None and len(b.speaker_norm.prior) == b.features.n_mels

    # The prior is the mean of the speakers' references, and clean windows are normalised
    # by exactly their own speaker's reference.
    clips = load_dataset(corpus) + load_dataset(second)
    cfg = TrainConfig(epochs=1)
    cfg = replace(cfg, augment=replace(cfg.augment, copies=1))
    fs = build_feature_set(clips, list(b.labels), FeatureConfig(), cfg, progress=None)
    normed, prior = apply_speaker_norm(fs, cfg.seed)
    refs = speaker_references(fs)
    np.testing.assert_allclose(prior, np.mean(list(refs.values()), axis=0), rtol=1e-5)
    clean = np.nonzero(fs.version == 0)[0]
    for i in clean[:: max(1, len(clean) // 7)]:
        spk = fs.clips[fs.clip[i]].speaker
        np.testing.assert_allclose(normed.x[i].astype(np.float32),
                                   (fs.x[i].astype(np.float32) - refs[spk]).astype(np.float16).astype(np.float32))
    # Augmented copies see references from part of the speaker's speech, not always the whole.
    aug = np.nonzero(fs.version == 1)[0]
    diffs = [np.abs((fs.x[i].astype(np.float32) - normed.x[i].astype(np.float32)).mean(axis=0)
                    - refs[fs.clips[fs.clip[i]].speaker]).max() for i in aug]
    assert max(diffs) > 1e-2


def test_ser_train_without_speaker_norm_writes_none(corpus: Path, tmp_path: Path) -> None:
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training.train_cli import main

    out = tmp_path / "plain"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", "--no-streaming",
                 "--speaker-norm", "off", *TINY]) == 0
    assert load_bundle(out).speaker_norm is None


def test_level_branch_trains_exports_and_serves_its_embedding(corpus: Path, tmp_path: Path) -> None:
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training.train_cli import main

    out = tmp_path / "level"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", "--no-streaming",
                 "--level-units", "3", *TINY]) == 0
    b = load_bundle(out)
    assert b.metadata["training"]["config"]["model"]["level_units"] == 3
    x = np.random.default_rng(0).normal(-6, 3, (2, 197, 64)).astype(np.float32)
    probs, emb = load_classifier(b, backend="litert").predict_embedded(x)
    assert emb.shape == (2, 4 * 8 + 3) and b.head is not None and b.head.embedding_dim == 35
    np.testing.assert_allclose(b.head.probs(emb), probs, atol=2e-3)
    k_probs, k_emb = load_classifier(b, backend="keras").predict_embedded(x)
    np.testing.assert_allclose(k_probs, probs, atol=1e-4)


def test_level_branch_needs_speaker_norm(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ser_daemon.training.train_cli import main

    out = tmp_path / "nolevel"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", "--speaker-norm", "off",
                 "--level-units", "3", *TINY]) == 2
    assert "--level-units needs --speaker-norm on" in capsys.readouterr().err
    assert not out.exists()


def test_merge_trains_one_class_for_two_and_eval_and_enroll_follow(corpus: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """--merge sleepy=neutral: the bundle has no "sleepy", sleepy clips are scored and enrolled as neutral."""
    from ser_daemon.profiles import cli as profiles_cli
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.profiles.store import load_profile
    from ser_daemon.training.datasets import load_dataset
    from ser_daemon.training.eval_cli import main as eval_main
    from ser_daemon.training.train_cli import main

    out = tmp_path / "merged"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", "--no-streaming",
                 "--merge", "Sleepy=neutral", *TINY]) == 0
    b = load_bundle(out)
    assert b.labels == ("angry", "neutral") and b.label_merge == {"sleepy": "neutral"}
    assert b.head is not None and b.head.n_labels == 2
    ev = tmp_path / "ev"
    assert eval_main(["--model", str(out), "--data", str(corpus), "--out", str(ev), "--no-streaming", "-q"]) == 0
    rep = json.loads((ev / "report.json").read_text())
    assert rep["clip"]["n"] == 6  # jenie's sleepy clips are scored (as neutral), none left out
    assert rep["clip"]["per_class"]["neutral"]["support"] == 4
    sleepy = [str(c.path) for c in load_dataset(corpus) if c.speaker == "jenie" and c.label == "sleepy"]
    prof = tmp_path / "me.json"
    assert profiles_cli.main(["enroll", "--profile", str(prof), "--model", str(out), "--label", "sleepy", *sleepy,
                              "--label", "angry", *[str(c.path) for c in load_dataset(corpus)
                                                     if c.speaker == "jenie" and c.label == "angry"]]) == 0
    profile, _ = load_profile(prof, b)
    assert {k: v["takes"] for k, v in profile.takes.items()} == {"neutral": 2, "angry": 2}
    # A class the data does not have is refused before any work.
    assert main(["--data", str(corpus), "--out", str(tmp_path / "bad"), "--holdout-speakers", "jenie",
                 "--merge", "calm=neutral", *TINY]) == 2
    assert "cannot merge ['calm']" in capsys.readouterr().err


def test_front_end_settings_travel_with_the_model_to_the_streaming_pipeline(corpus: Path, tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--mel-bands/--frame-ms change the bundle's features; the daemon's own pipeline follows them."""
    import soundfile as sf

    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.model.analyzer import replay_audio
    from ser_daemon.training.datasets import load_dataset
    from ser_daemon.training.train_cli import main

    out = tmp_path / "pitchy"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", "--no-streaming",
                 "--mel-bands", "40", "--frame-ms", "50", *TINY]) == 0
    b = load_bundle(out)
    assert (b.features.n_mels, b.features.win_length, b.features.n_fft) == (40, 800, 1024)
    assert tuple(b.input_shape) == ((32000 - 1024) // 160 + 1, 40)
    assert b.speaker_norm is not None and len(b.speaker_norm.prior) == 40
    clip = next(c for c in load_dataset(corpus) if c.speaker == "jenie")
    audio, rate = sf.read(clip.path, dtype="float32")
    states = replay_audio(np.concatenate([audio, audio]), rate, load_classifier(b, backend="litert"))
    assert states and all(s.label in b.labels + ("unsure",) or s.label == "neutral" for s in states)
    assert main(["--data", str(corpus), "--out", str(tmp_path / "bad"), "--mel-bands", "0", *TINY]) == 2
    assert "n_mels must be positive" in capsys.readouterr().err
    assert main(["--data", str(corpus), "--out", str(tmp_path / "bad"), "--speaker-adversary", "-1", *TINY]) == 2
    assert "--speaker-adversary must be 0 or more" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_weight_averaging_keeps_the_mean_of_the_last_epochs_and_mixup_trains(
        corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from ser_daemon.core.features import FeatureConfig
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training import train as train_mod
    from ser_daemon.training.datasets import load_dataset
    from ser_daemon.training.model_def import ModelConfig
    from ser_daemon.training.train import TrainConfig, build_feature_set, configure_tensorflow, fit_model
    from ser_daemon.training.train_cli import main

    configure_tensorflow(2)
    cfg = TrainConfig(epochs=3, batch_size=16, model=ModelConfig(width=4), swa_epochs=2)
    cfg = replace(cfg, augment=replace(cfg.augment, copies=1, mixup=0.4))
    clips = load_dataset(corpus)
    fs = build_feature_set(clips, sorted({c.label for c in clips}), FeatureConfig(), cfg, progress=None)
    seen: list[list[np.ndarray]] = []
    real_add = train_mod.WeightAverage.add
    monkeypatch.setattr(train_mod.WeightAverage, "add",
                        lambda self, w: (seen.append([np.array(a) for a in w]), real_add(self, w))[1])
    model, history = fit_model(fs, cfg, verbose=0)
    assert len(history) == 3 and len(seen) == 2  # the last two epochs' ends
    assert not all(np.array_equal(a, b) for a, b in zip(*seen))  # the epochs did move the weights
    for got, first, second in zip(model.get_weights(), *seen):
        np.testing.assert_allclose(got, (first.astype(np.float64) + second) / 2, rtol=1e-5, atol=1e-6)
    monkeypatch.undo()

    out = tmp_path / "swa"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", "--no-streaming",
                 "--mixup", "0.4", "--swa-epochs", "1", *TINY]) == 0
    stored = load_bundle(out).metadata["training"]["config"]
    assert stored["swa_epochs"] == 1 and stored["augment"]["mixup"] == 0.4
    for bad, message in ((["--swa-epochs", "2"], "--swa-epochs must be between 0 and --epochs (1)"),
                         (["--mixup", "-1"], "--mixup must be 0 or more"),
                         (["--mixup", "0.4", "--speaker-adversary", "0.5"], "cannot go with an adversary")):
        assert main(["--data", str(corpus), "--out", str(tmp_path / "bad"), *bad, *TINY]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_speaker_adversary_reverses_only_the_speaker_gradient_and_exports_the_plain_model(
        corpus: Path, tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training.model_def import ModelConfig, build_model, with_speaker_adversary
    from ser_daemon.training.train_cli import main

    model = build_model((197, 64), 3, ModelConfig(width=4), seed=1)
    train_model, strength = with_speaker_adversary(model, 5, seed=1)
    x = tf.constant(np.random.default_rng(0).normal(-6, 3, (4, 197, 64)).astype(np.float32))
    probs, spk = train_model(x, training=False)
    np.testing.assert_allclose(probs.numpy(), model(x, training=False).numpy(), atol=1e-6)
    assert spk.shape == (4, 5)

    def speaker_grad(s: float) -> np.ndarray:
        strength.assign(s)
        with tf.GradientTape() as tape:
            loss = keras.ops.sum(train_model(x, training=False)[1][:, 0])
        return tape.gradient(loss, model.get_layer("conv1").kernel).numpy()

    forward, reversed_ = speaker_grad(-1.0), speaker_grad(1.0)  # -1: plain backprop; 1: reversed
    assert np.abs(forward).max() > 0
    np.testing.assert_allclose(reversed_, -forward, rtol=1e-4, atol=1e-7)
    strength.assign(0.5)
    np.testing.assert_allclose(speaker_grad(0.5), -0.5 * forward, rtol=1e-4, atol=1e-7)

    out = tmp_path / "adv"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", "--no-streaming",
                 "--speaker-adversary", "0.5", *TINY[:1], "2", *TINY[2:]]) == 0
    b = load_bundle(out)
    assert b.metadata["training"]["config"]["speaker_adversary"] == 0.5
    exported = keras.saving.load_model(out / "model.keras")
    assert [t.shape[-1] for t in keras.tree.flatten(exported.outputs)] == [len(b.labels)]
    assert not any(layer.name.startswith("speaker") for layer in exported.layers)


def test_centred_window_model_exports_to_litert_that_agrees_with_keras(corpus: Path, tmp_path: Path) -> None:
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training.train_cli import main

    out = tmp_path / "centre"
    assert main(["--data", str(corpus), "--out", str(out), "--holdout-speakers", "jenie", "--no-streaming",
                 "--window-norm", "centre", *TINY]) == 0
    b = load_bundle(out)
    assert b.metadata["training"]["config"]["model"]["window_norm"] == "centre"
    x = np.random.default_rng(0).normal(-6, 3, (3, *b.input_shape)).astype(np.float32)
    lite = load_classifier(b, backend="litert").predict(x)
    np.testing.assert_allclose(lite, load_classifier(b, backend="keras").predict(x), atol=2e-3)
    np.testing.assert_allclose(load_classifier(b, backend="litert").predict(x + 2.0), lite, atol=2e-3)


def test_affect_head_trains_and_only_the_emotion_head_ships(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.training.train_cli import main

    data = write_synthetic_dataset(tmp_path / "emo", "emovdb", labels=("angry", "neutral", "sad"),
                                   speakers=("bea", "sam", "jenie"), clips_per=2)
    out = tmp_path / "affect"
    assert main(["--data", str(data), "--out", str(out), "--holdout-speakers", "jenie", "--no-streaming",
                 "--affect-weight", "0.5", *TINY]) == 0
    b = load_bundle(out)
    assert b.metadata["training"]["config"]["affect_weight"] == 0.5
    assert b.metadata["training"]["final_epoch"].get("affect_loss", -1) >= 0  # the second loss was trained
    x = np.random.default_rng(0).normal(-6, 3, (2, 197, 64)).astype(np.float32)
    for backend in ("keras", "litert"):
        probs = load_classifier(b, backend=backend).predict(x)
        assert probs.shape == (2, 3)  # the affect head trained beside it and was left behind
    # A label with no place on the circumplex is refused before any feature is built.
    odd = tmp_path / "odd"
    assert main(["--data", str(corpus_with_sleepy(tmp_path)), "--out", str(odd), "--affect-weight", "0.5",
                 *TINY]) == 2
    assert "no arousal/valence for label(s) sleepy" in capsys.readouterr().err and not odd.exists()
    assert main(["--data", str(data), "--out", str(odd), "--affect-weight", "0.5", "--corpus-adversary", "0.3",
                 *TINY]) == 2
    assert "cannot go with an adversary" in capsys.readouterr().err


def corpus_with_sleepy(tmp_path: Path) -> Path:
    return write_synthetic_dataset(tmp_path / "sleepy", "emovdb", speakers=("bea", "sam"), clips_per=1)
