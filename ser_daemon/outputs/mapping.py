"""From emotion probabilities to facial targets: VRM presets and ARKit blendshapes (pure).

Avatars do not take probabilities; faces take blendshape weights.  The
mapping lives in a user-editable TOML file (the shipped default is
``ser_daemon/data/mapping_default.toml``; its header explains the formula).
It is checked against the model's classes at start: a class the file does not
map is an error, never a silent zero.

The face follows the evidence, the smoothed probabilities, and nothing else:
not the shown label, its hysteresis or the "unsure" state.  So an uncertain
state still moves the face as far as its evidence goes, instead of snapping
to neutral, and in silence the face relaxes as the smoothed probabilities
decay to neutral.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..bounded import read_toml
from ..core.smoothing import NEUTRAL
from ..errors import ConfigError

__all__ = [
    "TARGET_SETS",
    "VRM1_PRESETS",
    "VRM0_PRESETS",
    "ARKIT_BLENDSHAPES",
    "ExpressionMapping",
    "load_mapping",
    "default_mapping_path",
]

VRM1_PRESETS = ("happy", "angry", "sad", "relaxed", "surprised", "neutral")
VRM0_PRESETS = ("Joy", "Angry", "Sorrow", "Fun", "Neutral")
ARKIT_BLENDSHAPES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
TARGET_SETS = ("vrm", "vrm0", "arkit")
# VRM 0.x allows custom clips, so any name is accepted there; VRM 1.0 and ARKit are closed lists.
_KNOWN: dict[str, tuple[str, ...] | None] = {"vrm": VRM1_PRESETS, "vrm0": None, "arkit": ARKIT_BLENDSHAPES}


def default_mapping_path() -> Path:
    return Path(str(resources.files("ser_daemon") / "data" / "mapping_default.toml"))


def _smoothstep(lo: float, hi: float, x: float) -> float:
    if hi <= lo:
        return 1.0 if x >= hi else 0.0
    t = min(1.0, max(0.0, (x - lo) / (hi - lo)))
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class ExpressionMapping:
    """A validated mapping for one model's classes.

    Attributes:
        labels: the model's classes, in probability order.
        targets: per target set, the target names in output order.
        rows: per target set, per class, the target weights (0..1) at full confidence.
        gain: overall scale applied before clamping.
        confidence_low / confidence_high: the smoothstep range of the evidence
            (strongest non-neutral smoothed probability).
        sharpness: exponent on the emotional probabilities before they blend the
            rows into a pose; above 1 the leading class dominates, so a face
            shows one clear expression instead of an average of all of them.
        source: where the mapping came from (for messages).
        vrchat: the file's ``[vrchat]`` table (avatar parameter names; checked by
            :func:`ser_daemon.outputs.vrchat_params.plan_from_table` when a VRChat target is used).
    """

    labels: tuple[str, ...]
    targets: Mapping[str, tuple[str, ...]]
    rows: Mapping[str, Mapping[str, Mapping[str, float]]]
    gain: float = 1.0
    confidence_low: float = 0.25
    confidence_high: float = 0.65
    source: str = "default"
    sharpness: float = 1.0
    vrchat: Mapping[str, Any] = field(default_factory=dict, compare=False)
    _matrices: dict[str, tuple[np.ndarray, np.ndarray]] = field(init=False, repr=False, compare=False)
    _emotional: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Per target set: (classes x targets) weights of the emotional classes, and the neutral row.
        mats = {}
        for ts, names in self.targets.items():
            rows = self.rows[ts]
            w = np.array([[0.0 if c == NEUTRAL else rows[c].get(n, 0.0) for n in names] for c in self.labels])
            neutral = np.array([rows.get(NEUTRAL, {}).get(n, 0.0) for n in names])
            mats[ts] = (w.reshape(len(self.labels), len(names)), neutral)
        object.__setattr__(self, "_matrices", mats)
        object.__setattr__(self, "_emotional", np.array([c != NEUTRAL for c in self.labels]))

    def weights(self, probs: Sequence[float], target_set: str = "vrm") -> dict[str, float]:
        """Target weights in [0, 1] for smoothed ``probs`` (label order).

        ``e`` ramps with the evidence for an expression, the strongest smoothed
        probability among the non-neutral classes (not the shown label's
        confidence, which is held back by hysteresis and was neutral's own
        probability whenever the label showed neutral).
        """
        w, neutral = self._matrices[target_set]
        p = np.asarray(probs, dtype=np.float64)
        p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
        emotional = p[self._emotional]
        s = float(emotional.sum())
        evidence = float(emotional.max()) if emotional.size else 0.0
        q = p if self.sharpness == 1.0 else np.where(self._emotional, p, 0.0) ** self.sharpness
        qs = float(q[self._emotional].sum())
        pose = (q @ w) / qs if qs > 0 else np.zeros(len(neutral))
        k = _smoothstep(self.confidence_low, self.confidence_high, evidence) * min(1.0, s)
        v = np.clip(self.gain * (k * pose + (1.0 - k) * neutral), 0.0, 1.0)
        return dict(zip(self.targets[target_set], v.tolist()))

    def all_weights(self, probs: Sequence[float]) -> dict[str, dict[str, float]]:
        """Weights of every target set."""
        return {ts: self.weights(probs, ts) for ts in self.targets}


def _parse_row(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table of target = weight, e.g. {{ happy = 1.0 }}. Received: {value!r}")
    row = {}
    for name, w in value.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or not 0.0 <= w <= 1.0:
            raise ConfigError(f"{where}.{name} must be a weight in [0, 1]. Received: {w!r}")
        row[str(name)] = float(w)
    return row


def mapping_from_dict(data: Mapping[str, Any], labels: Sequence[str], source: str = "mapping") -> ExpressionMapping:
    """Validate a parsed mapping file against the model's labels.

    Raises:
        ConfigError: a model class is missing from a table, a target name is
            unknown for its vocabulary, or a weight or option is out of range.
    """
    labels = tuple(labels)
    unknown_tables = set(data) - set(TARGET_SETS) - {"options", "vrchat"}
    if unknown_tables:
        raise ConfigError(
            f"{source}: unknown table(s) {sorted(unknown_tables)}; expected {list(TARGET_SETS)}, options and vrchat"
        )
    vrchat = data.get("vrchat", {})
    if not isinstance(vrchat, Mapping):
        raise ConfigError(f"{source}: [vrchat] must be a table")
    opts = data.get("options", {})
    if not isinstance(opts, Mapping):
        raise ConfigError(f"{source}: [options] must be a table")
    for key in opts:
        if key not in ("gain", "confidence_low", "confidence_high", "sharpness"):
            raise ConfigError(f"{source}: unknown option {key!r} in [options]")
    gain = opts.get("gain", 1.0)
    lo = opts.get("confidence_low", 0.25)
    hi = opts.get("confidence_high", 0.65)
    sharp = opts.get("sharpness", 1.0)
    for name, v, top in (("gain", gain, 4.0), ("confidence_low", lo, 1.0), ("confidence_high", hi, 1.0),
                         ("sharpness", sharp, 8.0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= top:
            raise ConfigError(f"{source}: options.{name} must be a number in [0, {top}]. Received: {v!r}")
    if sharp < 1.0:
        raise ConfigError(f"{source}: options.sharpness must be at least 1 (1 = plain probabilities). Received: {sharp!r}")
    if lo > hi:
        raise ConfigError(f"{source}: options.confidence_low ({lo}) must not exceed confidence_high ({hi})")
    rows: dict[str, dict[str, dict[str, float]]] = {}
    targets: dict[str, tuple[str, ...]] = {}
    for ts in TARGET_SETS:
        table = data.get(ts)
        if table is None:
            raise ConfigError(f"{source}: the [{ts}] table is missing")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [{ts}] must be a table")
        needed = list(labels) + ([NEUTRAL] if NEUTRAL not in labels else [])
        missing = [c for c in needed if c not in table]
        if missing:
            raise ConfigError(
                f"{source}: [{ts}] does not map the model's class(es) {missing}; add a row for each "
                "(an empty table {} means no expression)"
            )
        parsed = {c: _parse_row(table[c], f"{source}: [{ts}].{c}") for c in needed}
        known = _KNOWN[ts]
        names: list[str] = list(known) if known is not None else []
        for c, row in parsed.items():
            for name in row:
                if known is not None and name not in known:
                    raise ConfigError(f"{source}: [{ts}].{c}: {name!r} is not a {ts} target; known: {', '.join(known)}")
                if name not in names:
                    names.append(name)
        if ts == "vrm0":
            names = list(dict.fromkeys(list(VRM0_PRESETS) + names))
        rows[ts] = parsed
        targets[ts] = tuple(names)
    return ExpressionMapping(labels, targets, rows, float(gain), float(lo), float(hi), source, float(sharp),
                             dict(vrchat))


def load_mapping(path: str | Path | None, labels: Sequence[str]) -> ExpressionMapping:
    """Read and validate a mapping file (None: the shipped default).

    Raises:
        ConfigError: unreadable file, bad TOML, or a mapping that does not fit the model.
    """
    p = Path(path) if path is not None else default_mapping_path()
    data = read_toml(p, "mapping file")
    return mapping_from_dict(data, labels, source=str(p) if path is not None else "default mapping")
