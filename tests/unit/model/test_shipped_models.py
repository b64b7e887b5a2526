"""The shipped models by name: ``--model multilingual`` beside the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser_daemon.errors import ModelError
from ser_daemon.model import bundle as bundle_mod
from ser_daemon.model.bundle import SHIPPED_MODELS, load_bundle, model_dir_or_default, shipped_model_dir

REPO = Path(__file__).resolve().parents[3]


def test_every_shipped_model_is_in_the_checkout_and_reads_the_same_windows() -> None:
    default = load_bundle(shipped_model_dir("default"))
    for name in SHIPPED_MODELS:
        found = shipped_model_dir(name)
        assert found == REPO / "models" / name
        b = load_bundle(found)
        assert b.labels == default.labels and b.input_shape == default.input_shape
        assert b.features.to_dict() == default.features.to_dict()


def test_the_multilingual_model_learned_from_every_corpus() -> None:
    training = load_bundle(shipped_model_dir("multilingual")).metadata["training"]
    roots = {Path(r).name for r in training["data"]["root"]}
    assert roots == {"ravdess", "emovo", "nemo"}
    assert {"Actor_20", "f3", "WR0"} <= set(training["train_speakers"])
    assert len(training["ensemble"]) == 2


def test_a_name_picks_a_shipped_model_unless_a_folder_of_that_name_is_there(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert model_dir_or_default("multilingual") == REPO / "models" / "multilingual"
    assert model_dir_or_default(None) == shipped_model_dir("default")
    (tmp_path / "multilingual").mkdir()
    assert model_dir_or_default("multilingual") == Path("multilingual")
    assert model_dir_or_default("elsewhere") == Path("elsewhere")  # any other text is a folder


def test_a_shipped_model_that_is_not_installed_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bundle_mod, "shipped_model_dir", lambda name="default": None)
    with pytest.raises(ModelError, match="'multilingual' is not installed"):
        model_dir_or_default("multilingual")


def test_ser_model_dir_moves_only_the_default(tmp_path, monkeypatch) -> None:
    other = tmp_path / "mine"
    other.mkdir()
    (other / "ser_model.json").write_text("{}")
    monkeypatch.setenv("SER_MODEL_DIR", str(other))
    assert shipped_model_dir("default") == other
    assert shipped_model_dir("multilingual") == REPO / "models" / "multilingual"


def test_a_misspelt_name_is_answered_with_the_shipped_one(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="did you mean the shipped 'multilingual'"):
        model_dir_or_default("multilingua")
