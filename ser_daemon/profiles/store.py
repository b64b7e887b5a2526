"""Personal profiles: what the daemon learned about one user's voice, as a small file.

A profile holds the user's speaker baseline (the mean voiced log-mel spectrum
that per-speaker normalisation subtracts, see :mod:`ser_daemon.core.speaker_norm`)
and, when the user recorded labelled takes, a classifier head fitted to their
voice (see :mod:`ser_daemon.core.head`).  It never holds audio: only those numbers,
how many takes of which label went into them, and which model they were made
for.  The head reads one particular model's embedding, so a profile names the
model and its fingerprint and is refused by any other model.

Profiles given by name live in the per-user data folder
(``<data>/profiles/NAME.json``); a path names a file (``*.json``) or a folder
(``DIR/profile.json``).  Writes go to a temporary file that replaces the old
one, so an interrupted save never leaves half a profile.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..bounded import MAX_PROFILE_BYTES, check_regular_file, loads_json, read_text_bounded
from ..core.head import LinearHead
from ..errors import ConfigError, ProfileError
from ..model.bundle import ModelBundle, load_bundle, model_dir_or_default

__all__ = [
    "bundle_for",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PROFILE_FILE",
    "VoiceProfile",
    "profiles_dir",
    "profile_path",
    "check_writable",
    "is_profile_name",
    "load_profile",
    "read_profile",
    "save_profile",
    "list_profiles",
    "delete_profile",
]

FORMAT_NAME = "ser-daemon-profile"
FORMAT_VERSION = 1
PROFILE_FILE = "profile.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # used with fullmatch: "$" matches before a final newline


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True, eq=False)
class VoiceProfile:
    """One user's voice, for one model.

    Attributes:
        model_name: the model's name (for messages).
        model_fingerprint: :attr:`ModelBundle.fingerprint` of the model it was made for.
        labels: the model's labels, in output order.
        features: the model's feature settings (as in ``ser_model.json``).
        baseline: the user's speaker reference, one value per mel band.
        baseline_frames: how many voiced frames the baseline stands for; the
            live estimate starts with this weight.
        head: the personal classifier head, or None (baseline only).
        takes: per label, how many takes and seconds of voice went in.
        head_fit: how the personal head was fitted: ``shipped_accuracy`` (how
            well the shipped head read the takes), ``bias_share`` (the share of
            the head that is a bias-only refit) and ``pull`` (the full refit's
            penalty, None when the shipped weights were kept); empty without a head.
        created, updated: ISO 8601 times (UTC).
    """

    model_name: str
    model_fingerprint: str
    labels: tuple[str, ...]
    features: Mapping[str, Any]
    baseline: np.ndarray
    baseline_frames: float
    head: LinearHead | None = None
    takes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    head_fit: Mapping[str, float | None] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        b = np.asarray(self.baseline, dtype=np.float64)
        if b.ndim != 1 or len(b) == 0 or not np.isfinite(b).all():
            raise ProfileError("a profile's baseline must be a non-empty list of finite numbers")
        if not (np.isfinite(self.baseline_frames) and self.baseline_frames > 0):
            raise ProfileError(f"a profile's baseline_frames must be positive. Received: {self.baseline_frames!r}")
        if self.head is not None and self.head.n_labels != len(self.labels):
            raise ProfileError(f"the profile's head has {self.head.n_labels} outputs for {len(self.labels)} labels")
        object.__setattr__(self, "baseline", b)

    def with_baseline(self, baseline: np.ndarray, frames: float) -> "VoiceProfile":
        """The same profile with the live estimate's baseline (what the daemon saves at exit)."""
        return replace(self, baseline=np.asarray(baseline, dtype=np.float64), baseline_frames=float(frames),
                       updated=_now())

    def check_model(self, bundle: ModelBundle, source: str | os.PathLike[str] = "profile") -> None:
        """Refuse a profile made for another model, naming both.

        Raises:
            ProfileError: fingerprint, labels or feature settings differ.
        """
        if self.model_fingerprint != bundle.fingerprint or tuple(self.labels) != tuple(bundle.labels):
            raise ProfileError(
                f"{source} was made for model {self.model_name!r} ({self.model_fingerprint}), "
                f"not for this model {bundle.name!r} ({bundle.fingerprint}): enroll again with this model"
            )
        if dict(self.features) != bundle.features.to_dict() or len(self.baseline) != bundle.features.n_mels:
            raise ProfileError(f"{source}: its feature settings differ from model {bundle.name!r}'s: enroll again")

    def moved_unrecorded(self, bundle: ModelBundle) -> list[str]:
        """The labels without takes whose head columns differ from ``bundle``'s shipped head.

        Empty for a profile made by this version (the labels without takes keep
        the shipped head, see :func:`ser_daemon.profiles.enroll.fit_head`) and for one
        without a head.  Older versions refitted every label from the takes of
        a few, which can erase the others: such a profile should be made again.
        """
        if self.head is None or bundle.head is None or self.head.weights.shape != bundle.head.weights.shape:
            return []
        return [lab for i, lab in enumerate(self.labels) if lab not in self.takes
                and not (np.allclose(self.head.weights[:, i], bundle.head.weights[:, i], rtol=0, atol=1e-6)
                         and abs(self.head.bias[i] - bundle.head.bias[i]) <= 1e-6)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "note": "statistics and head weights only; a profile never holds audio",
            "model": {"name": self.model_name, "fingerprint": self.model_fingerprint},
            "labels": list(self.labels),
            "features": dict(self.features),
            "baseline": [round(float(v), 6) for v in self.baseline],
            "baseline_frames": float(self.baseline_frames),
            "head": self.head.to_dict() if self.head is not None else None,
            "takes": {k: dict(v) for k, v in self.takes.items()},
            "head_fit": dict(self.head_fit),
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "profile") -> "VoiceProfile":
        """Parse a profile file's content.

        Raises:
            ProfileError: not a profile, another format version, or malformed.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise ProfileError(f"{source} is not a ser-daemon profile (format must be {FORMAT_NAME!r})")
        if data.get("format_version") != FORMAT_VERSION:
            raise ProfileError(
                f"{source}: profile format_version {data.get('format_version')!r}; this ser-daemon reads "
                f"{FORMAT_VERSION}: enroll again"
            )
        try:
            model = data["model"]
            takes = data.get("takes") or {}
            head_fit = data.get("head_fit") or {}
            if not all(isinstance(x, dict) for x in (model, takes, data["features"], head_fit)):
                raise TypeError("model, features, takes and head_fit must be tables")
            head = None
            if data.get("head") is not None:
                if not isinstance(data["head"], dict):
                    raise TypeError("head must be a table")
                head = LinearHead(_finite_array(data["head"].get("weights"), "head weights", 2),
                                  _finite_array(data["head"].get("bias"), "head bias", 1))
            labels = data["labels"]
            if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
                raise TypeError("labels must be a list of names")
            return cls(
                model_name=_text(model["name"], "model name"),
                model_fingerprint=_text(model["fingerprint"], "model fingerprint"),
                labels=tuple(labels),
                features=dict(data["features"]),
                baseline=_finite_array(data["baseline"], "baseline", 1),
                baseline_frames=_finite_number(data["baseline_frames"], "baseline_frames", 0.0, 1e12),
                head=head,
                takes={_text(k, "a takes label"): _takes_entry(v) for k, v in takes.items()},
                head_fit={_text(k, "a head_fit key"): None if v is None else _finite_number(v, f"head_fit.{k}", -1e6, 1e6)
                          for k, v in head_fit.items()},
                created=_text(data.get("created", ""), "created"),
                updated=_text(data.get("updated", ""), "updated"),
            )
        except ProfileError as exc:
            raise ProfileError(f"{source} is a damaged profile: {exc}") from None
        except (KeyError, TypeError, ValueError, OverflowError, ConfigError) as exc:
            raise ProfileError(f"{source} is a damaged profile ({type(exc).__name__}: {exc})") from None



def _finite_number(value: Any, what: str, lo: float, hi: float) -> float:
    """A JSON number (not a bool, not text) that is finite and within ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{what} must be a number. Received: {str(value)[:40]!r}")
    try:
        v = float(value)
    except OverflowError:
        raise ProfileError(f"{what} is out of range (a number of {len(str(value))} digits)") from None
    if not (np.isfinite(v) and lo <= v <= hi):
        raise ProfileError(f"{what} must be a finite number in [{lo:g}, {hi:g}]. Received: {v!r}")
    return v


def _finite_array(value: Any, what: str, ndim: int) -> np.ndarray:
    """A list (of lists) of JSON numbers, ``ndim`` deep, non-empty, every value finite."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iufO" or raw.ndim != ndim or raw.size == 0:
            raise ValueError
        a = np.asarray(raw, dtype=np.float64)
    except OverflowError:
        raise ProfileError(f"{what} holds a number out of range") from None
    except (TypeError, ValueError):
        raise ProfileError(f"{what} must be a {'list' if ndim == 1 else 'table'} of numbers") from None
    if raw.dtype.kind == "O" and not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw.flat):
        raise ProfileError(f"{what} must hold numbers only")
    if not np.isfinite(a).all():
        raise ProfileError(f"{what} must hold finite numbers only")
    return a


def _text(value: Any, what: str, max_chars: int = 200) -> str:
    if not isinstance(value, str) or len(value) > max_chars:
        raise ProfileError(f"{what} must be text of at most {max_chars} characters")
    return value


def _takes_entry(value: Any) -> dict[str, float]:
    """One label's ``{"takes": n, "voice_s": seconds}``: counts and seconds, finite and not negative."""
    if not isinstance(value, dict):
        raise ProfileError("each takes entry must be a table")
    return {_text(k, "a takes field"): _finite_number(v, f"takes.{k}", 0.0, 1e9) for k, v in value.items()}


def profiles_dir() -> Path:
    """Where profiles given by name are kept: the per-user data folder's ``profiles``."""
    from ..os_defaults import user_data_path

    return user_data_path() / "profiles"


def profile_path(spec: str | os.PathLike[str]) -> Path:
    """The file a ``--profile`` value means: a name, a ``.json`` file, or a folder.

    Raises:
        ProfileError: neither a valid name nor a path.
    """
    text = os.fspath(spec)
    if not text.strip():
        raise ProfileError("--profile needs a name or a path")
    looks_like_path = os.sep in text or "/" in text or text.startswith(("~", ".")) or text.endswith(".json")
    if not looks_like_path:
        if not _NAME.fullmatch(text):
            raise ProfileError(
                f"profile name {text!r}: use letters, digits, '.', '_' or '-' (up to 64), or give a path"
            )
        return profiles_dir() / f"{text}.json"
    p = Path(text).expanduser()
    try:
        is_dir = p.is_dir()
    except OSError as exc:  # a name over the file-name limit: ENAMETOOLONG
        raise ProfileError(f"profile path {_short(text)}: {exc.strerror or exc}") from None
    if p.suffix == ".json" and not is_dir:
        return p
    return p / PROFILE_FILE


def _short(text: str, limit: int = 80) -> str:
    """A path for a message: quoted, over-long ones cut with their length named."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def check_writable(path: Path, replace: bool) -> None:
    """Refuse before any work is done: an existing profile without --replace, or a folder we cannot write."""
    try:
        path.exists()
    except OSError as exc:  # over the file-name limit
        raise ProfileError(f"cannot write the profile {_short(str(path))}: {exc.strerror or exc}") from None
    if path.exists() and not replace:
        raise ProfileError(f"{path} exists already: pass --replace to overwrite it, or choose another name")
    if path.exists() and not path.is_file():
        raise ProfileError(f"{path} is not a regular file")
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ProfileError(f"cannot write the profile in {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ProfileError(f"cannot write the profile in {folder}: the folder is not writable")


def is_profile_name(text: str) -> bool:
    """Whether ``text`` is a profile name (kept in the per-user folder) rather than a path."""
    return bool(_NAME.fullmatch(text))


def read_profile(path: str | os.PathLike[str]) -> VoiceProfile:
    """Read a profile file without checking which model it is for.

    Raises:
        ProfileError: missing, not a regular file, too large, not JSON, or not a profile.
    """
    p = Path(path)
    try:
        exists = p.exists()
    except OSError as exc:
        raise ProfileError(f"profile {_short(str(p))}: {exc.strerror or exc}") from None
    if not exists:
        raise ProfileError(f"no profile at {p} (enroll one: ser-daemon enroll --profile ...)")
    text = read_text_bounded(p, "profile", MAX_PROFILE_BYTES, ProfileError)
    try:
        data = loads_json(text)
    except ValueError as exc:
        raise ProfileError(f"{p} is not a profile (not JSON: {exc})") from None
    return VoiceProfile.from_dict(data, str(p))


def bundle_for(model: str | None) -> ModelBundle:
    """The model bundle a profile is made for or checked against: ``model``, else the shipped default."""
    return load_bundle(model_dir_or_default(model))


def load_profile(spec: str | os.PathLike[str], bundle: ModelBundle) -> tuple[VoiceProfile, Path]:
    """The profile ``spec`` names, checked against ``bundle``; and its file."""
    path = profile_path(spec)
    profile = read_profile(path)
    profile.check_model(bundle, path)
    return profile, path


def save_profile(path: str | os.PathLike[str], profile: VoiceProfile) -> Path:
    """Write ``profile`` to ``path`` atomically (a temporary file, then a rename).

    Raises:
        ProfileError: the folder cannot be created or written, or ``path`` is not a file.
    """
    p = Path(path)
    if p.exists():
        check_regular_file(p, "profile", MAX_PROFILE_BYTES, ProfileError)
    text = json.dumps(profile.to_dict(), indent=1) + "\n"
    tmp_name = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".profile-", suffix=".tmp", dir=p.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, p)
        tmp_name = None
    except OSError as exc:
        raise ProfileError(f"cannot write the profile {p}: {exc.strerror or exc}") from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    return p


def list_profiles(folder: Path | None = None) -> list[tuple[str, Path, VoiceProfile | ProfileError]]:
    """The profiles kept by name: ``(name, file, profile or why it cannot be read)``, sorted by name."""
    folder = folder if folder is not None else profiles_dir()
    if not folder.is_dir():
        return []
    out: list[tuple[str, Path, VoiceProfile | ProfileError]] = []
    for f in sorted(folder.glob("*.json")):
        try:
            out.append((f.stem, f, read_profile(f)))
        except ProfileError as exc:
            out.append((f.stem, f, exc))
    return out


def delete_profile(spec: str | os.PathLike[str]) -> Path:
    """Delete the profile ``spec`` names (only a profile file, never anything else).

    Raises:
        ProfileError: there is none, or the file is not a profile.
    """
    path = profile_path(spec)
    read_profile(path)  # refuses what is not a profile
    try:
        path.unlink()
    except OSError as exc:
        raise ProfileError(f"cannot delete {path}: {exc.strerror or exc}") from None
    return path


def __getattr__(name: str) -> Any:
    if name == "Profile":  # the name before issue 29, when "profile" also named the OSC schemes
        warnings.warn("ser_daemon.profiles.store.Profile is now VoiceProfile", DeprecationWarning, stacklevel=2)
        return VoiceProfile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
