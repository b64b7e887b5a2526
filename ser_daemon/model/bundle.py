"""The model bundle: a folder that carries a model with its labels and feature settings.

A bundle is what ``ser-train`` writes and what the daemon loads::

    <bundle>/
        ser_model.json   metadata (this module's MODEL_FILE): format, name, labels,
                         feature settings, window length, input shape, file names
                         and their SHA-256 (checked at every load: a damaged or
                         swapped model file is refused, not run)
        model.keras      Keras 3 model: input (batch, frames, n_mels) raw log-mel
                         from features.log_mel, output (batch, n_labels) softmax
        model.tflite     the same model for LiteRT (optional but expected)

The model does its own input normalisation, so the daemon only needs the
metadata to compute features and name the outputs.  Keeping all of this in one
file beside the weights means a model can never be paired with the wrong
labels or front end.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..bounded import MAX_MODEL_FILE_BYTES, MAX_MODEL_JSON_BYTES, check_regular_file, loads_json, read_text_bounded
from ..core.features import FeatureConfig, frames_for_samples
from ..core.head import LinearHead
from ..core.speaker_norm import SpeakerNormSettings
from ..errors import ConfigError, ModelError

__all__ = [
    "model_dir_or_default",
    "MODEL_FILE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelBundle",
    "load_bundle",
    "write_metadata",
    "default_model_dir",
    "shipped_model_dir",
    "SHIPPED_MODELS",
    "file_checksums",
    "sha256_of",
]

MODEL_FILE = "ser_model.json"
FORMAT_NAME = "ser-daemon-model"
FORMAT_VERSION = 1
DEFAULT_MODEL_NAME = "default"
# Bundles installed with the package, by the name ``--model`` takes.  ``multilingual`` adds a network
# trained with nEMO (Polish): better on voices in other languages, worse on English ones (its card).
SHIPPED_MODELS = (DEFAULT_MODEL_NAME, "multilingual")


@dataclass(frozen=True)
class ModelBundle:
    """A model's metadata and where its files are.

    Attributes:
        directory: folder holding the bundle.
        name: human-readable model name (goes into the WebSocket hello).
        labels: class names in output order.
        features: the log-mel settings the model was trained with.
        window_s: seconds of audio per decision window.
        keras_file: path of the ``.keras`` model, or None if absent.
        tflite_file: path of the ``.tflite`` model, or None if absent.
        metadata: the whole parsed metadata, including anything extra
            (training summary, metrics) a trainer stored.
        speaker_norm: how the model expects each speaker's frames to be
            normalised (None: the model takes raw log-mel).
        head: the shipped classifier head over the embedding output (None:
            exported before profiles existed; profiles then cannot be made).
    """

    directory: Path
    name: str
    labels: tuple[str, ...]
    features: FeatureConfig
    window_s: float
    keras_file: Path | None
    tflite_file: Path | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    speaker_norm: SpeakerNormSettings | None = None
    head: LinearHead | None = None

    @property
    def fingerprint(self) -> str:
        """A short hash of what a personal profile depends on: labels, front end, normalisation, head.

        Two trainings give different heads, so a profile fitted on one model's
        embedding is never used with another's even when both are called "default".
        """
        meta = self.metadata
        key = json.dumps(
            {k: meta.get(k) for k in ("labels", "features", "window_s", "speaker_norm", "head")},
            sort_keys=True, separators=(",", ":"),
        )
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    @property
    def label_merge(self) -> dict[str, str]:
        """Classes the model was trained to show as another (``{"calm": "neutral"}``), from ser-train --merge."""
        merge = (self.metadata.get("training") or {}).get("merge") or {}
        return {str(k): str(v) for k, v in merge.items()} if isinstance(merge, Mapping) else {}

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.features.sample_rate))

    @property
    def window_frames(self) -> int:
        return frames_for_samples(self.window_samples, self.features)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(frames, n_mels) of one model input."""
        return (self.window_frames, self.features.n_mels)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_checksums(directory: str | os.PathLike[str], files: Mapping[str, str | None]) -> dict[str, str]:
    """``{"keras": hex, "tflite": hex}`` of the bundle's model files that exist (stored in ``ser_model.json``)."""
    out = {}
    for key, name in files.items():
        if name and (Path(directory) / name).is_file():
            out[key] = sha256_of(Path(directory) / name)
    return out


def write_metadata(
    directory: str | os.PathLike[str],
    *,
    name: str,
    labels: list[str] | tuple[str, ...],
    features: FeatureConfig,
    window_s: float,
    keras_file: str | None = "model.keras",
    tflite_file: str | None = "model.tflite",
    extra: Mapping[str, Any] | None = None,
    speaker_norm: SpeakerNormSettings | None = None,
) -> Path:
    """Write ``ser_model.json`` into ``directory`` and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": name,
        "labels": list(labels),
        "features": features.to_dict(),
        "window_s": float(window_s),
        "input_shape": [frames_for_samples(int(round(window_s * features.sample_rate)), features), features.n_mels],
        "files": {"keras": keras_file, "tflite": tflite_file},
    }
    if speaker_norm is not None:
        meta["speaker_norm"] = speaker_norm.to_dict()
    meta["sha256"] = file_checksums(directory, meta["files"])
    if extra:
        meta.update({k: v for k, v in extra.items() if k not in meta})
    path = directory / MODEL_FILE
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def load_bundle(path: str | os.PathLike[str]) -> ModelBundle:
    """Load a bundle from its folder, its ``ser_model.json``, or a model file beside one.

    Raises:
        ModelError: the path does not exist, has no metadata, or the metadata
            is unreadable or inconsistent.
    """
    p = Path(path).expanduser()
    try:
        exists, is_dir = p.exists(), p.is_dir()
    except OSError as exc:  # a name over the file-name limit (ENAMETOOLONG), a loop of links
        text = str(p)
        raise ModelError(f"model {text[:120]!r}{'...' if len(text) > 120 else ''}: {exc.strerror or exc}") from None
    if not exists:
        raise ModelError(f"model not found: {p}")
    if is_dir:
        directory = p
    else:
        check_regular_file(p, "model", MAX_MODEL_FILE_BYTES, ModelError)  # not a FIFO or a device
        directory = p.parent
    meta_path = directory / MODEL_FILE
    if not meta_path.exists():
        raise ModelError(
            f"no {MODEL_FILE} in {directory}: a model needs its metadata (labels, feature settings) beside it"
        )
    text = read_text_bounded(meta_path, "model description", MAX_MODEL_JSON_BYTES, ModelError)
    try:
        meta = loads_json(text)
    except ValueError as exc:
        raise ModelError(f"cannot read {meta_path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelError(f"{meta_path} is not a ser-daemon model description (format must be {FORMAT_NAME!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{meta_path}: unsupported format_version {meta.get('format_version')!r}; this ser-daemon reads {FORMAT_VERSION}"
        )
    labels = meta.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x for x in labels):
        raise ModelError(f"{meta_path}: 'labels' must list at least two class names. Received: {labels!r}")
    if len(set(labels)) != len(labels):
        raise ModelError(f"{meta_path}: duplicate labels in {labels!r}")
    try:
        features = FeatureConfig.from_dict(meta.get("features") or {})
    except (ConfigError, TypeError) as exc:
        raise ModelError(f"{meta_path}: bad feature settings: {exc}") from exc
    window_s = meta.get("window_s")
    if not isinstance(window_s, (int, float)) or not 0.1 <= window_s <= 30:
        raise ModelError(f"{meta_path}: 'window_s' must be seconds in [0.1, 30]. Received: {window_s!r}")
    files = meta.get("files") or {}

    if not isinstance(files, dict):
        raise ModelError(f"{meta_path}: 'files' must be a table of file names. Received: {files!r}")

    checksums = meta.get("sha256") or {}
    if not isinstance(checksums, dict) or not all(
            isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v) for v in checksums.values()):
        raise ModelError(f"{meta_path}: 'sha256' must be a table of file kind = hex SHA-256")
    declared = meta.get("input_shape")
    if declared is not None:
        expected = [frames_for_samples(int(round(float(window_s) * features.sample_rate)), features), features.n_mels]
        if declared != expected:
            raise ModelError(f"{meta_path}: input_shape {str(declared)[:60]} disagrees with the feature settings and "
                             f"window_s, which give {expected}")

    def _file(key: str) -> Path | None:
        name = files.get(key)
        if not name:
            return None
        f = _inside(directory, name, meta_path)
        if not f.exists():
            return None
        check_regular_file(f, "model file", MAX_MODEL_FILE_BYTES, ModelError)
        if key in checksums and sha256_of(f) != checksums[key]:
            raise ModelError(f"{f} does not match its SHA-256 in {meta_path}: the file is damaged or was changed "
                             "(install or export the model again)")
        return f

    keras_file = _file("keras")
    tflite_file = _file("tflite")
    if not p.is_dir() and p.suffix in (".keras", ".tflite"):
        # An explicit model file wins over the metadata's file names.
        check_regular_file(p, "model file", MAX_MODEL_FILE_BYTES, ModelError)
        if p.suffix == ".keras":
            keras_file = p
        else:
            tflite_file = p
    speaker_norm = None
    if meta.get("speaker_norm") is not None:
        try:
            if not isinstance(meta["speaker_norm"], dict):
                raise ConfigError("'speaker_norm' must be a table")
            speaker_norm = SpeakerNormSettings.from_dict(meta["speaker_norm"])
        except ConfigError as exc:
            raise ModelError(f"{meta_path}: bad speaker_norm: {exc}") from exc
        if len(speaker_norm.prior) != features.n_mels:
            raise ModelError(
                f"{meta_path}: speaker_norm prior has {len(speaker_norm.prior)} bands, the features {features.n_mels}"
            )
    head = None
    if meta.get("head") is not None:
        try:
            head = LinearHead.from_dict(meta["head"])
        except ConfigError as exc:
            raise ModelError(f"{meta_path}: bad head: {exc}") from exc
        if head.n_labels != len(labels):
            raise ModelError(f"{meta_path}: the head has {head.n_labels} outputs, the labels {len(labels)}")
    if keras_file is None and tflite_file is None:
        raise ModelError(f"{directory}: neither a .keras nor a .tflite model file is there (metadata lists {files!r})")
    return ModelBundle(
        directory=directory,
        name=str(meta.get("name") or directory.name),
        labels=tuple(labels),
        features=features,
        window_s=float(window_s),
        keras_file=keras_file,
        tflite_file=tflite_file,
        metadata=meta,
        speaker_norm=speaker_norm,
        head=head,
    )


def _inside(directory: Path, name: Any, meta_path: Path) -> Path:
    """A bundle's file name as a path that cannot leave the bundle folder.

    Raises:
        ModelError: not a plain relative name, or it resolves (``..``, a symlink) outside the folder.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ModelError(f"{meta_path}: model file names must be non-empty strings. Received: {name!r}")
    rel = Path(name)
    if rel.is_absolute() or rel.anchor or ".." in rel.parts:
        raise ModelError(f"{meta_path}: model file {name!r} must be a name inside the bundle folder")
    f = directory / rel
    try:
        inside = f.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise ModelError(f"{meta_path}: model file {name!r} points outside the bundle folder {directory}")
    return f


def shipped_model_dir(name: str = DEFAULT_MODEL_NAME) -> Path | None:
    """Where the shipped model ``name`` is, from a checkout or an installed package.

    Looked for, in order: ``$SER_MODEL_DIR`` (for the default only); ``models/NAME`` beside the
    package (a checkout or an editable install); ``<prefix>/share/ser-daemon/models/NAME`` (a
    regular install, via setup.cfg's data_files).
    """
    env = os.environ.get("SER_MODEL_DIR") if name == DEFAULT_MODEL_NAME else None
    candidates = [Path(env)] if env else []
    package = Path(__file__).resolve().parents[1]  # ser_daemon/
    candidates.append(package.parent / "models" / name)
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix, os.path.expanduser("~/.local")]):
        candidates.append(Path(prefix) / "share" / "ser-daemon" / "models" / name)
    for c in candidates:
        if (c / MODEL_FILE).is_file():
            return c
    return None


def default_model_dir() -> Path | None:
    """Where the shipped default model is (see :func:`shipped_model_dir`)."""
    return shipped_model_dir(DEFAULT_MODEL_NAME)


def model_dir_or_default(model: str | os.PathLike[str] | None) -> Path:
    """``model`` (a folder, ``~`` expanded, or a shipped model's name), else the shipped default.

    A name from :data:`SHIPPED_MODELS` is a shipped model unless a folder of that name is in the
    way.  ModelError naming the fix if the model asked for is not installed.
    """
    if model:
        path = Path(model).expanduser()
        name = str(model)
        if name in SHIPPED_MODELS and not path.exists():
            found = shipped_model_dir(name)
            if found is None:
                raise ModelError(f"the shipped model {name!r} is not installed here (models/{name}). "
                                 "Pass --model DIR (a folder with ser_model.json)")
            return found
        close = [] if "/" in name or os.sep in name else difflib.get_close_matches(name, SHIPPED_MODELS, n=1)
        if close and not path.exists():  # (only a short bare name reaches exists(): a long one would raise)
            raise ModelError(f"model not found: {name} (no such folder; did you mean the shipped {close[0]!r}?)")
        return path
    found = default_model_dir()
    if found is None:
        raise ModelError(
            "no model: the shipped default model (models/default) is not installed here. "
            "Pass --model DIR (a folder with ser_model.json), or train one with ser-train"
        )
    return found
