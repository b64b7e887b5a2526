"""Find labelled speech clips in the folder layouts ``ser-train``/``ser-eval`` read.

Supported layouts (``detect_layout`` picks one; ``--layout`` forces it):

``manifest``
    A CSV file (or a folder holding ``manifest.csv``) with columns ``path``,
    ``label`` (or ``emotion``) and optionally ``speaker``; paths are relative
    to the CSV's folder.  The shared RAVDESS copy ships such a manifest.
``ravdess``
    RAVDESS as distributed: ``Actor_NN/03-01-EE-II-SS-RR-NN.wav``; the
    emotion comes from the ``EE`` field, the speaker from ``NN``.
``emovdb``
    EmoV-DB as distributed: one folder per speaker and emotion, e.g.
    ``bea_Amused/amused_1-15_0001.wav``.
``emovdb-sorted``
    The sorted EmoV-DB variant: ``<speaker>/<Emotion>/*.wav``.
``folders``
    Generic: one folder per label, ``<label>/*.wav``.  The speaker is
    ``"unknown"`` (never guessed from file names), so such data can be
    scored but not split by speaker: use a manifest for that.

Labels are lower-cased; EmoV-DB's ``Sleepiness`` becomes ``sleepy``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Literal

from ..audio.clips import COMPRESSED_SUFFIXES
from ..errors import ConfigError

__all__ = [
    "Clip",
    "Layout",
    "LAYOUTS",
    "AUDIO_SUFFIXES",
    "RAVDESS_EMOTIONS",
    "detect_layout",
    "load_dataset",
    "corpus_name",
    "corpus_labels",
    "summarize",
]

Layout = Literal["manifest", "ravdess", "emovdb", "emovdb-sorted", "folders"]
LAYOUTS: tuple[str, ...] = ("manifest", "ravdess", "emovdb", "emovdb-sorted", "folders")
AUDIO_SUFFIXES = (".wav",) + COMPRESSED_SUFFIXES  # what load_audio reads
UNKNOWN_SPEAKER = "unknown"

RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_EMOV_DIR = re.compile(r"^([A-Za-z]+)_([A-Za-z]+)$")
_LABEL_ALIASES = {"sleepiness": "sleepy", "disgust": "disgust", "disgusted": "disgusted"}
_LABEL_COLUMNS = ("label", "emotion", "class")
_SPEAKER_COLUMNS = ("speaker", "actor", "speaker_id")


@dataclass(frozen=True)
class Clip:
    """One labelled recording.

    Attributes:
        path: the audio file.
        label: class name (lower case).
        speaker: speaker id; ``"unknown"`` when the layout does not say.
        corpus: the data folder's name (set by :func:`load_dataset`).  Corpora
            differ in their class sets; ``ser-train --class-mask`` scores a
            clip only against the classes its corpus records.
    """

    path: Path
    label: str
    speaker: str
    corpus: str = ""


def _norm_label(name: str) -> str:
    label = name.strip().lower()
    return _LABEL_ALIASES.get(label, label)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _manifest_path(root: Path) -> Path | None:
    if root.is_file() and root.suffix.lower() == ".csv":
        return root
    cand = root / "manifest.csv"
    return cand if cand.is_file() else None


def detect_layout(root: str | Path) -> Layout:
    """Guess the layout of ``root`` (a folder, or a CSV manifest).

    Raises:
        ConfigError: no supported layout fits.
    """
    root = Path(root)
    if not root.exists():
        raise ConfigError(f"data not found: {root}")
    if _manifest_path(root) is not None:
        return "manifest"
    if not root.is_dir():
        raise ConfigError(f"{root}: expected a folder or a .csv manifest")
    dirs = _subdirs(root)
    # RAVDESS: any wav below root named like 03-01-05-01-02-01-12.wav
    for sample in list(root.glob("*/*.wav"))[:20] + list(root.glob("*/*/*.wav"))[:20]:
        if _RAVDESS_NAME.match(sample.stem):
            return "ravdess"
    with_audio = [d for d in dirs if _audio_files(d)]
    if with_audio and all(_EMOV_DIR.match(d.name) for d in with_audio):
        speakers = {_EMOV_DIR.match(d.name).group(1) for d in with_audio}  # type: ignore[union-attr]
        if len(speakers) < len(with_audio):  # several emotions per speaker prefix
            return "emovdb"
    if with_audio:
        return "folders"
    nested = [d for d in dirs if any(_audio_files(s) for s in _subdirs(d))]
    if nested:
        return "emovdb-sorted"
    raise ConfigError(
        f"{root}: no supported layout found (expected manifest.csv, <label>/*.wav, "
        "<speaker>_<Emotion>/*.wav, <speaker>/<Emotion>/*.wav or RAVDESS Actor_NN folders)"
    )


def _load_manifest(path: Path) -> list[Clip]:
    base = path.parent
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        if "path" not in fields:
            raise ConfigError(f"{path}: a manifest needs a 'path' column. Received columns: {reader.fieldnames}")
        label_col = next((c for c in _LABEL_COLUMNS if c in fields), None)
        if label_col is None:
            raise ConfigError(f"{path}: a manifest needs a 'label' column. Received columns: {reader.fieldnames}")
        speaker_col = next((c for c in _SPEAKER_COLUMNS if c in fields), None)
        clips = []
        for row in reader:
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            if not row.get("path"):
                continue
            p = Path(row["path"])
            p = p if p.is_absolute() else base / p
            speaker = row.get(speaker_col, "") if speaker_col else ""
            clips.append(Clip(p, _norm_label(row[label_col]), speaker or UNKNOWN_SPEAKER))
    return clips


def _load_ravdess(root: Path) -> list[Clip]:
    clips = []
    for p in sorted(root.rglob("*.wav")):
        m = _RAVDESS_NAME.match(p.stem)
        if not m or m.group(3) not in RAVDESS_EMOTIONS:
            continue
        clips.append(Clip(p, RAVDESS_EMOTIONS[m.group(3)], f"Actor_{m.group(7)}"))
    return clips


def _load_emovdb(root: Path) -> list[Clip]:
    clips = []
    for d in _subdirs(root):
        m = _EMOV_DIR.match(d.name)
        if not m:
            continue
        for p in _audio_files(d):
            clips.append(Clip(p, _norm_label(m.group(2)), m.group(1).lower()))
    return clips


def _load_emovdb_sorted(root: Path) -> list[Clip]:
    clips = []
    for spk in _subdirs(root):
        for emo in _subdirs(spk):
            for p in _audio_files(emo):
                clips.append(Clip(p, _norm_label(emo.name), spk.name.lower()))
    return clips


def _load_folders(root: Path) -> list[Clip]:
    clips = []
    for d in _subdirs(root):
        for p in _audio_files(d):
            clips.append(Clip(p, _norm_label(d.name), UNKNOWN_SPEAKER))
    return clips


_LOADERS = {
    "manifest": lambda root: _load_manifest(_manifest_path(root) or root),
    "ravdess": _load_ravdess,
    "emovdb": _load_emovdb,
    "emovdb-sorted": _load_emovdb_sorted,
    "folders": _load_folders,
}


def load_dataset(root: str | Path, layout: str = "auto") -> list[Clip]:
    """All clips under ``root``, sorted by (speaker, label, path).

    Args:
        root: a data folder or a CSV manifest.
        layout: one of :data:`LAYOUTS`, or ``"auto"`` to detect it.

    Raises:
        ConfigError: unknown layout, nothing found, or listed files missing.
    """
    root = Path(root).expanduser()
    if layout == "auto":
        layout = detect_layout(root)
    if layout not in _LOADERS:
        raise ConfigError(f"unknown layout {layout!r}; choose one of {('auto',) + LAYOUTS}")
    clips = _LOADERS[layout](root)
    if not clips:
        raise ConfigError(f"{root}: no labelled audio found in layout {layout!r}")
    missing = [c.path for c in clips if not c.path.is_file()]
    if missing:
        raise ConfigError(f"{root}: {len(missing)} listed files are missing, e.g. {missing[0]}")
    corpus = corpus_name(root)
    return sorted((replace(c, corpus=corpus) for c in clips), key=lambda c: (c.speaker, c.label, str(c.path)))


def corpus_name(root: str | Path) -> str:
    """The name a corpus goes by: its folder's name (a manifest's folder for a CSV)."""
    root = Path(root).expanduser()
    return (root.parent if root.is_file() else root).resolve().name


def corpus_labels(clips: Iterable[Clip]) -> dict[str, frozenset[str]]:
    """The labels each corpus records at all, from its clips."""
    out: dict[str, set[str]] = {}
    for c in clips:
        out.setdefault(c.corpus, set()).add(c.label)
    return {k: frozenset(v) for k, v in out.items()}


def summarize(clips: Iterable[Clip]) -> dict[str, dict[str, int]]:
    """Clip counts per label and per speaker."""
    clips = list(clips)
    return {
        "labels": dict(sorted(Counter(c.label for c in clips).items())),
        "speakers": dict(sorted(Counter(c.speaker for c in clips).items())),
    }
