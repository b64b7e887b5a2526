"""Dataset layout parsing on generated fixtures (never the shared data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser_daemon.errors import ConfigError
from ser_daemon.training.datasets import detect_layout, load_dataset, summarize
from ser_daemon.training.synthetic import write_synthetic_dataset
from helpers import REPO

SHARED_RAVDESS = REPO.parent / "shared" / "data" / "ravdess"


@pytest.mark.parametrize("layout", ["emovdb", "emovdb-sorted", "manifest"])
def test_speaker_aware_layouts(tmp_path: Path, layout: str) -> None:
    root = write_synthetic_dataset(tmp_path / layout, layout, clips_per=2)
    assert detect_layout(root) == layout
    clips = load_dataset(root)
    assert len(clips) == 3 * 2 * 2
    s = summarize(clips)
    assert s["labels"] == {"angry": 4, "neutral": 4, "sleepy": 4}
    assert s["speakers"] == {"bea": 6, "sam": 6}
    assert all(c.path.is_file() for c in clips)


def test_emovdb_distributed_names(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path, "emovdb", labels=("amused", "disgusted", "sleepiness"), clips_per=1)
    assert (root / "bea_Amused" / "amused_1-15_0001.wav").is_file()
    clips = load_dataset(root)
    assert sorted({c.label for c in clips}) == ["amused", "disgusted", "sleepy"]  # Sleepiness -> sleepy
    assert {c.speaker for c in clips} == {"bea", "sam"}


def test_generic_label_folders(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path, "folders", clips_per=1)
    assert detect_layout(root) == "folders"
    clips = load_dataset(root)
    assert {c.speaker for c in clips} == {"unknown"}
    assert sorted({c.label for c in clips}) == ["angry", "neutral", "sleepy"]


def test_ravdess_file_names(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path, "ravdess", labels=("neutral", "angry", "surprised"), clips_per=1)
    assert detect_layout(root) == "ravdess"
    clips = load_dataset(root)
    assert {c.speaker for c in clips} == {"Actor_01", "Actor_02"}
    assert sorted({c.label for c in clips}) == ["angry", "neutral", "surprised"]


def test_manifest_csv_file_and_emotion_column(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path, "manifest", clips_per=1)
    text = (root / "manifest.csv").read_text().replace("path,label,speaker", "path,emotion,speaker")
    (root / "other.csv").write_text(text)
    clips = load_dataset(root / "other.csv")
    assert len(clips) == 6 and clips[0].path.is_absolute()


def test_errors_quote_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no supported layout"):
        load_dataset(tmp_path / "empty")
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nx.wav,angry\n")
    with pytest.raises(ConfigError, match="'path' column"):
        load_dataset(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label,speaker\nx.wav,angry,a\n")
    with pytest.raises(ConfigError, match="missing"):
        load_dataset(missing)
    with pytest.raises(ConfigError, match="unknown layout"):
        load_dataset(tmp_path, layout="nonsense")


@pytest.mark.skipif(not (SHARED_RAVDESS / "manifest.csv").is_file(), reason="shared RAVDESS data not present")
def test_shared_ravdess_manifest_if_present() -> None:
    clips = load_dataset(SHARED_RAVDESS)
    assert len(clips) == 1200
    assert len(summarize(clips)["labels"]) == 8
