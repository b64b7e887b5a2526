"""Several models averaged into one graph: exact arithmetic, and a bundle the daemon and profiles take."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import has_tf
from ser_daemon.training.model_def import ModelConfig, build_model
from ser_daemon.training.synthetic import write_synthetic_dataset

# Skipped, not imported, without TensorFlow: collecting the fast tier must not load it.
pytestmark = [pytest.mark.needs_tf,
              pytest.mark.skipif(not has_tf(), reason="building and exporting models needs TensorFlow")]

TINY = ["--epochs", "1", "--width", "4", "--copies", "1", "--batch-size", "16", "--quantize", "float", "-q",
        "--threads", "2", "--no-streaming"]


def _logits(model, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    import keras

    from ser_daemon.model.inference import embedding_output

    emb = keras.Model(model.input, embedding_output(model)).predict(x, verbose=0)
    w, b = model.get_layer("probs").get_weights()
    return emb @ w + b


def test_ensemble_is_the_softmax_of_the_members_mean_logits() -> None:
    from ser_daemon.core.head import softmax
    from ser_daemon.model.inference import embedding_output
    from ser_daemon.training.ensemble import build_ensemble

    a = build_model((197, 64), 4, ModelConfig(width=4, window_norm="centre"), seed=1)
    b = build_model((197, 64), 4, ModelConfig(width=4, window_norm="centre", pooling="meanmax"), seed=2)
    ens = build_ensemble([a, b])
    x = np.random.default_rng(0).normal(-6, 3, (3, 197, 64)).astype(np.float32)
    expected = softmax((_logits(a, x) + _logits(b, x)) / 2)
    np.testing.assert_allclose(ens.predict(x, verbose=0), expected, atol=1e-5)
    assert embedding_output(ens).shape[-1] == 32 + 64  # the members' embeddings side by side
    weighted = build_ensemble([a, b], weights=[3, 1])  # a member that is itself an average of three
    expected = softmax(0.75 * _logits(a, x) + 0.25 * _logits(b, x))
    np.testing.assert_allclose(weighted.predict(x, verbose=0), expected, atol=1e-5)
    with pytest.raises(ValueError, match="one weight per member: 2 members, 3 weights"):
        build_ensemble([a, b], weights=[1, 1, 1])
    with pytest.raises(ValueError, match="weights must be positive numbers"):
        build_ensemble([a, b], weights=[1, 0])
    with pytest.raises(ValueError, match="at least 2"):
        build_ensemble([a])
    with pytest.raises(ValueError, match="different numbers of labels"):
        build_ensemble([a, build_model((197, 64), 3, ModelConfig(width=4), seed=3)])


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from ser_daemon.training.train_cli import main

    corpus = write_synthetic_dataset(tmp_path_factory.mktemp("emovdb"), "emovdb", speakers=("bea", "sam", "jenie"),
                                     clips_per=2)
    out = []
    for seed in (1, 2):
        path = tmp_path_factory.mktemp("member") / f"m{seed}"
        assert main(["--data", str(corpus), "--out", str(path), "--holdout-speakers", "jenie", "--seed", str(seed),
                     *TINY]) == 0
        out.append(path)
    return out


def test_ensemble_cli_writes_a_bundle_that_litert_and_profiles_use(members: list[Path], tmp_path: Path) -> None:
    from ser_daemon.core.head import softmax
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training.ensemble import main

    out = tmp_path / "ens"
    assert main([str(m) for m in members] + ["--out", str(out), "--quantize", "float"]) == 0
    b = load_bundle(out)
    parts = [load_bundle(m) for m in members]
    x = np.random.default_rng(1).normal(-6, 3, (4, *b.input_shape)).astype(np.float32)
    probs, emb = load_classifier(b, backend="litert").predict_embedded(x)
    logits = []
    for p in parts:
        _, e = load_classifier(p, backend="litert").predict_embedded(x)
        logits.append(e @ p.head.weights + p.head.bias)
    np.testing.assert_allclose(probs, softmax(np.mean(logits, axis=0)), atol=1e-4)
    # One head over the joined embedding, stored for personal profiles, giving the same probabilities.
    assert b.head is not None and emb.shape == (4, sum(p.head.embedding_dim for p in parts))
    np.testing.assert_allclose(b.head.probs(emb), probs, atol=1e-4)
    assert b.speaker_norm == parts[0].speaker_norm and b.labels == parts[0].labels
    assert [(m["seed"], m["folder"]) for m in b.metadata["training"]["ensemble"]] == [(1, "m1"), (2, "m2")]
    np.testing.assert_allclose(load_classifier(b, backend="keras").predict(x), probs, atol=1e-4)
    # An average of that average and a network records the nested member's own seeds.
    nested = tmp_path / "nested"
    assert main([str(out), str(members[0]), "--out", str(nested), "--quantize", "float"]) == 0
    rec = load_bundle(nested).metadata["training"]["ensemble"]
    assert [(m["seed"], m["networks"]) for m in rec] == [([1, 2], 2), (1, 1)]


def test_ensemble_cli_refuses_members_that_read_windows_differently(members: list[Path], tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from ser_daemon.training.ensemble import main

    odd = tmp_path / "odd"
    shutil.copytree(members[1], odd)
    meta = json.loads((odd / "ser_model.json").read_text())
    meta["speaker_norm"]["prior"] = [v + 1.0 for v in meta["speaker_norm"]["prior"]]
    (odd / "ser_model.json").write_text(json.dumps(meta))
    out = tmp_path / "ens"
    assert main([str(members[0]), str(odd), "--out", str(out)]) == 2
    assert "different speaker references" in capsys.readouterr().err
    meta["speaker_norm"]["prior"] = [v - 1.0 for v in meta["speaker_norm"]["prior"]]
    meta["labels"] = list(reversed(meta["labels"]))
    (odd / "ser_model.json").write_text(json.dumps(meta))
    assert main([str(members[0]), str(odd), "--out", str(out)]) == 2
    assert "has labels" in capsys.readouterr().err
    assert main([str(members[0]), "--out", str(out)]) == 2
    assert not out.exists()


def test_ensemble_cli_pools_members_trained_on_different_populations(members: list[Path], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A member trained on another corpus starts from another prior: --pool-references starts from their mean."""
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.training.ensemble import main

    odd = tmp_path / "odd"
    shutil.copytree(members[1], odd)
    meta = json.loads((odd / "ser_model.json").read_text())
    first_prior = np.asarray(load_bundle(members[0]).speaker_norm.prior)
    meta["speaker_norm"]["prior"] = [v + 1.0 for v in first_prior]
    (odd / "ser_model.json").write_text(json.dumps(meta))
    out = tmp_path / "ens"
    assert main([str(members[0]), str(odd), "--out", str(out), "--quantize", "float", "--pool-references",
                 "--weights", "3,1"]) == 0
    b = load_bundle(out)
    np.testing.assert_allclose(b.speaker_norm.prior, first_prior + 0.25, atol=1e-6)
    assert [m["weight"] for m in b.metadata["training"]["ensemble"]] == [0.75, 0.25]
    assert b.metadata["training"]["command"].endswith("--weights 3,1 --pool-references")
    meta["speaker_norm"]["prior_frames"] = 100.0  # another way of forming the reference: never pooled
    (odd / "ser_model.json").write_text(json.dumps(meta))
    assert main([str(members[0]), str(odd), "--out", str(tmp_path / "e2"), "--pool-references"]) == 2
    assert "form their speaker references differently" in capsys.readouterr().err
    assert main([str(members[0]), str(members[1]), "--out", str(tmp_path / "e3"), "--weights", "1,-1"]) == 2
    assert "--weights: weights must be positive numbers" in capsys.readouterr().err
    assert not (tmp_path / "e2").exists() and not (tmp_path / "e3").exists()


def test_model_card_names_the_members_their_commands_and_their_total_training_time() -> None:
    from ser_daemon.training.report import render_model_card

    members = [{"name": "a", "model": {"pooling": "mean"}, "seed": 1, "train_seconds": 600.0, "command": "ser-train A"},
               {"name": "b", "model": {"pooling": "meanmax"}, "seed": 7, "train_seconds": 660.0,
                "command": "ser-train B"}]
    meta = {"name": "default", "labels": ["angry", "sad"], "input_shape": [197, 64],
            "training": {"config": {"model": {"width": 16, "window_norm": "centre"}, "seed": 1, "epochs": 30},
                         "command": "python -m ser_daemon.training.ensemble a b --out x", "train_seconds": 600.0,
                         "ensemble": members}}
    card = render_model_card(meta, None, None)
    assert "**2 networks averaged**" in card and card.splitlines()[2].startswith("2 small log-mel CNNs, averaged")
    assert "`b` (global average and max pooling side by side, seed 7)" in card
    reproduce = card.split("## Reproduce")[1]
    assert reproduce.index("ser-train A") < reproduce.index("ser-train B") < reproduce.index("ensemble a b")
    assert "about 21 min of training" in card and "seeds 1, 7." in card


def test_model_card_of_weights_trained_on_every_speaker_says_whose_figures_it_quotes() -> None:
    """Shipped weights that learned the held-out speakers too must not pass their twin's figures off as theirs."""
    from ser_daemon.training.report import render_model_card

    def bundle(name: str, speakers: list[str], tag: str) -> dict:
        members = [{"name": f"{tag}1", "model": {}, "seed": 1, "train_seconds": 60.0, "command": f"ser-train {tag}1"},
                   {"name": f"{tag}2", "model": {}, "seed": 7, "train_seconds": 60.0, "command": f"ser-train {tag}2"}]
        return {"name": name, "labels": ["angry", "sad"], "input_shape": [197, 64],
                "training": {"config": {"model": {"width": 16}, "epochs": 30}, "train_speakers": speakers,
                             "command": f"python -m ser_daemon.training.ensemble {tag}", "ensemble": members}}

    labels = ["angry", "sad"]
    level = {"accuracy": 0.5, "macro_f1": 0.5, "n": 4}
    heldout = {"speakers": ["C"], "window": level,
               "clip": {**level, "labels": labels, "confusion": [[1, 1], [1, 1]],
                        "per_class": {lab: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
                                      for lab in labels}}}
    card = render_model_card(bundle("default", ["A", "B", "C"], "all"), heldout, None,
                             heldout_meta=bundle("heldout", ["A", "B"], "twin"))
    assert "**These held-out figures come from a separate model**, `heldout`" in card
    assert "trained on A, B only" in card and "trained on all 3 speakers, the held-out ones included" in card
    reproduce = card.split("## Reproduce")[1]
    # Both sets of weights can be rebuilt: the twin's members and its average, then the shipped ones.
    for command in ("ser-train all1", "ser-train twin1", "ser-train twin2", "ensemble twin"):
        assert command in reproduce
    assert reproduce.index("ser-train twin1") < reproduce.index("ensemble twin")


def test_joined_training_names_every_speaker_the_average_learned_from() -> None:
    from ser_daemon.training.ensemble import joined_training

    two = {"train_speakers": ["A1", "f1"], "heldout_speakers": ["A17", "f3"], "trained_on_heldout": False,
           "data": {"root": ["r", "e"], "clips": 6, "speakers": {"A1": 2, "f1": 1, "A17": 2, "f3": 1},
                    "labels": {"angry": 3}}, "command": "first"}
    three = {"train_speakers": ["A1", "f1", "P1"], "heldout_speakers": ["A17", "f3", "P9"],
             "trained_on_heldout": False,
             "data": {"root": ["/d/r", "../d/e", "n"], "clips": 9, "speakers": {"A1": 2, "f1": 1, "A17": 2, "f3": 1,
                                                                        "P1": 2, "P9": 1},
                      "labels": {"angry": 5, "sad": 4}}}
    joined = joined_training([two, three])
    assert joined["train_speakers"] == ["A1", "f1", "P1"]
    assert joined["heldout_speakers"] == ["A17", "f3", "P9"]
    assert joined["data"]["root"] == ["r", "e", "n"] and joined["data"]["clips"] == 9
    assert joined["data"]["labels"] == {"angry": 5, "sad": 4} and joined["command"] == "first"
    # a speaker one member trained on is not held out by the average
    other = dict(three, train_speakers=["A1", "f1", "P1", "A17"], heldout_speakers=["f3", "P9"])
    assert "A17" not in joined_training([two, other])["heldout_speakers"]
    assert joined_training([two, two]) == two


def test_the_card_counts_the_networks_of_an_average_of_averages() -> None:
    from ser_daemon.training.report import _member_text

    nested = {"folder": "default", "members": ["sn7-a", "sn7-seed7", "sn7-meanmax"], "networks": 3, "weight": 0.5}
    single = {"folder": "sn10", "model": {"pooling": "mean"}, "seed": 1234, "weight": 0.5}
    assert _member_text(nested, "global average pooling", False) == \
        "`default` (itself an average of 3: sn7-a, sn7-seed7, sn7-meanmax)"
    assert _member_text(single, "global average pooling", True) == "`sn10` (global average pooling, seed 1234, weight 0.5)"


def test_the_card_lists_every_network_seed_of_a_nested_average() -> None:
    from ser_daemon.training.report import _flat_seeds

    members = [{"folder": "default", "seed": [1234, 7, 1234]}, {"folder": "sn10", "seed": 1234},
               {"folder": "deeper", "seed": [[5, 6], 8]}]
    assert _flat_seeds(members) == [1234, 7, 1234, 1234, 5, 6, 8]
