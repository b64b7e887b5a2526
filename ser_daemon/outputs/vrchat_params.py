"""VRChat avatar parameters: which ones, under which names, at what bit cost (pure, no sockets).

VRChat syncs at most 256 bits of avatar parameters per avatar to other
players (Int and Float cost 8 bits each, Bool 1).  A face that only you see
is not much use, so the parameter *sets* here are designed to be synced:

- ``compact`` (the default): ``SER_Label`` (Int), ``SER_Intensity``
  (Float) and ``SER_Voice`` (Bool, "talking"): 17 bits for any number of classes.
- ``full``: compact plus ``SER_Voice`` (Bool), ``SER_Confidence`` and one
  Float per model class: 89 bits for the shipped 8-class model.
- ``vxp``: the names of the VXP voice-expression mod (``VXP_Expression``,
  ``VXP_Confidence``): 16 bits.

A ``[vrchat]`` table in the mapping file renames, drops and adds parameters,
also per avatar id (VRChat reports the worn avatar on ``/avatar/change``).
Each parameter is a *name* and a *source*: ``label``, ``intensity``,
``confidence``, ``voice``, ``vxp_expression``, ``vxp_confidence``,
``prob:<class>`` or ``vrm:<name>`` / ``vrm0:<name>`` / ``arkit:<name>`` (the
mapped expression weights).

``SER_Label`` numbers the model's own classes in the model's own order (the
one announced in the WebSocket hello): 0 means unsure, ``k`` means
``labels[k - 1]``.  It follows the smoother's label, like every other output:
through a pause shorter than ``--hold-ms`` it keeps the emotion, then it turns
to neutral (0 for a model without a neutral class).  Whether a voice is heard
is ``SER_Voice``'s job, not the label's: a face that blinked back to neutral
at every breath was the bug this replaced.  :func:`parameter_table_markdown` writes the table the
README shows, from the same code that sends the values.

What VRChat sends back (``/avatar/change``, ``MuteSelf``, ``SER_Enabled``) is read in
``vrchat/input.py``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..core.state import EmotionState
from ..errors import ConfigError

__all__ = [
    "PRESETS",
    "VRC_BIT_BUDGET",
    "VXP_ORDER",
    "Param",
    "ParamPlan",
    "check_vrchat_name",
    "preset_params",
    "plan_from_table",
    "label_index",
    "parameter_table_markdown",
    "label_table_markdown",
]

log = logging.getLogger(__name__)

# The parameter sets --vrchat-params names (the mapping's [vrchat] table edits the chosen one).
VRCHAT_PARAM_SETS = ("compact", "full", "vxp", "none")
PRESETS = VRCHAT_PARAM_SETS

VRC_BIT_BUDGET = 256
VXP_ORDER = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
# VRChat takes parameter names as OSC address parts after /avatar/parameters/; "/" nests
# them (VRCFaceTracking's "FT/v2/..."); spaces and OSC pattern characters are ignored by it.
_VRC_NAME = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$")
_BITS = {"i": 8, "f": 8, "b": 1}
_TYPE_NAMES = {"i": "Int", "f": "Float", "b": "Bool"}
_SIMPLE_SOURCES = {
    "label": "i",
    "intensity": "f",
    "confidence": "f",
    "voice": "b",
    "vxp_expression": "i",
    "vxp_confidence": "f",
}
_WEIGHT_SETS = ("vrm", "vrm0", "arkit")


def check_vrchat_name(name: str, what: str = "VRChat parameter name") -> str:
    """Refuse names VRChat would silently ignore (spaces, OSC pattern characters, empty parts)."""
    if not isinstance(name, str) or not _VRC_NAME.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} is not usable: VRChat parameter names must be letters, digits and underscores "
            "('/' between parts nests them); spaces or symbols make VRChat ignore the parameter silently"
        )
    return name


@dataclass(frozen=True)
class Param:
    """One avatar parameter: its name (after ``/avatar/parameters/``), value source and OSC type."""

    name: str
    source: str
    kind: str  # "i", "f" or "b"

    @property
    def bits(self) -> int:
        """Synced cost in VRChat's 256-bit budget."""
        return _BITS[self.kind]


def _source_kind(source: str, labels: Sequence[str], targets: Mapping[str, Sequence[str]] | None) -> str:
    if source in _SIMPLE_SOURCES:
        return _SIMPLE_SOURCES[source]
    kind, sep, arg = source.partition(":")
    if sep and kind == "prob":
        if arg not in labels:
            raise ConfigError(f"VRChat source {source!r}: the model has no class {arg!r} (it has {', '.join(labels)})")
        return "f"
    if sep and kind in _WEIGHT_SETS:
        if targets is not None and arg not in targets.get(kind, ()):
            raise ConfigError(f"VRChat source {source!r}: the mapping has no {kind} target {arg!r}")
        return "f"
    raise ConfigError(
        f"unknown VRChat parameter source {source!r}; use one of {', '.join(_SIMPLE_SOURCES)}, "
        "prob:<class>, vrm:<name>, vrm0:<name> or arkit:<name>"
    )


def _class_param_name(prefix: str, label: str) -> str:
    return prefix + label[:1].upper() + label[1:]


def preset_params(preset: str, labels: Sequence[str], prefix: str = "SER_") -> dict[str, str]:
    """Parameter name -> source of a preset (see the module docstring)."""
    if preset == "compact":
        return {prefix + "Label": "label", prefix + "Intensity": "intensity", prefix + "Voice": "voice"}
    if preset == "full":
        out = {_class_param_name(prefix, c): f"prob:{c}" for c in labels}
        out.update({prefix + "Confidence": "confidence", prefix + "Label": "label",
                    prefix + "Intensity": "intensity", prefix + "Voice": "voice"})
        return out
    if preset == "vxp":
        return {"VXP_Expression": "vxp_expression", "VXP_Confidence": "vxp_confidence"}
    if preset == "none":
        return {}
    raise ConfigError(f"unknown VRChat parameter set {preset!r}; choose one of {', '.join(PRESETS)}")


@dataclass(frozen=True)
class ParamPlan:
    """What one avatar gets: its parameters, and the name of the on/off toggle it may send back."""

    params: tuple[Param, ...]
    enabled_param: str = "SER_Enabled"

    @property
    def bits(self) -> int:
        return sum(p.bits for p in self.params)


def _build(
    spec: Mapping[str, Any], base: dict[str, str], labels: Sequence[str], targets: Mapping[str, Sequence[str]] | None,
    where: str, enabled_default: str,
) -> ParamPlan:
    known = {"preset", "rename", "drop", "add", "avatars"}
    extra = set(spec) - known
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {sorted(extra)}; known: {', '.join(sorted(known))}")
    params = dict(base)
    enabled = enabled_default
    for old in _as_str_list(spec.get("drop", []), f"{where}.drop"):
        if old not in params:
            raise ConfigError(f"{where}.drop: {old!r} is not one of the parameters ({', '.join(params) or 'none'})")
        del params[old]
    rename = spec.get("rename", {})
    if not isinstance(rename, Mapping):
        raise ConfigError(f"{where}.rename must be a table of old name = new name")
    for old, new in rename.items():
        check_vrchat_name(new, f"{where}.rename.{old}")
        if old == enabled_default:
            enabled = new
            continue
        if old not in params:
            raise ConfigError(f"{where}.rename: {old!r} is not one of the parameters ({', '.join(params) or 'none'})")
        params = {(new if k == old else k): v for k, v in params.items()}
    add = spec.get("add", {})
    if not isinstance(add, Mapping):
        raise ConfigError(f"{where}.add must be a table of name = source")
    for name, source in add.items():
        if not isinstance(source, str):
            raise ConfigError(f"{where}.add.{name} must be a source string, e.g. \"prob:happy\". Received: {source!r}")
        params[name] = source
    out = []
    for name, source in params.items():
        check_vrchat_name(name, f"{where}: parameter name")
        out.append(Param(name, source, _source_kind(source, labels, targets)))
    plan = ParamPlan(tuple(out), enabled)
    if plan.bits > VRC_BIT_BUDGET:
        log.warning("%s: these parameters cost %d synced bits, more than VRChat's %d: mark some as unsynced "
                    "on the avatar or drop them", where, plan.bits, VRC_BIT_BUDGET)
    return plan


def _as_str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of parameter names. Received: {value!r}")
    return value


def plan_from_table(
    table: Mapping[str, Any] | None,
    labels: Sequence[str],
    *,
    preset: str = "compact",
    prefix: str = "SER_",
    targets: Mapping[str, Sequence[str]] | None = None,
) -> tuple[ParamPlan, dict[str, ParamPlan]]:
    """The default plan and the per-avatar plans of a ``[vrchat]`` table.

    ``preset`` and ``prefix`` come from the command line; the table's own
    ``preset`` wins.  Each ``[vrchat.avatars."avtr_..."]`` table starts from
    the default plan (its renames, drops and additions included), or from a
    ``preset`` of its own, and applies its own rename/drop/add.

    Raises:
        ConfigError: unknown preset, source, class, target or a name VRChat ignores.
    """
    table = dict(table or {})
    check_vrchat_name(prefix + "X", "VRChat parameter prefix")
    where = "[vrchat]"
    base_preset = table.get("preset", preset)
    enabled_default = prefix + "Enabled"
    default = _build(table, preset_params(base_preset, labels, prefix), labels, targets, where, enabled_default)
    avatars: dict[str, ParamPlan] = {}
    av = table.get("avatars", {})
    if not isinstance(av, Mapping):
        raise ConfigError(f"{where}.avatars must be a table of avatar id = table")
    for avatar_id, spec in av.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}.avatars.{avatar_id} must be a table")
        if "avatars" in spec:
            raise ConfigError(f"{where}.avatars.{avatar_id}: avatars cannot nest")
        p = spec.get("preset", base_preset)
        base = preset_params(p, labels, prefix)
        if "preset" not in spec:  # inherit the default plan's renames, drops and additions
            base = {x.name: x.source for x in default.params}
        avatars[str(avatar_id)] = _build(spec, base, labels, targets, f"{where}.avatars.{avatar_id}",
                                         default.enabled_param)
    return default, avatars


def label_index(state: EmotionState) -> int:
    """0 while the model is unsure, else 1 + the index of the smoother's label in the model's labels.

    Silence alone does not make it 0: the smoother holds the label through short pauses
    (``hold_ms``) and then relaxes it to neutral, and the avatar follows that, as the web view,
    VMC and ``--print`` do.  A model without a neutral class gives 0 at rest.
    """
    if state.uncertain or state.label not in state.labels:
        return 0
    return 1 + state.labels.index(state.label)


def vxp_expression(state: EmotionState) -> int:
    """VXP's numbering (RAVDESS order, 0 "Default (unsure)"); follows the smoother like :func:`label_index`."""
    if state.uncertain or state.label not in VXP_ORDER:
        return 0
    return 1 + VXP_ORDER.index(state.label)


def param_value(p: Param, state: EmotionState, weights: Mapping[str, Mapping[str, float]]) -> Any:
    """The value of one parameter for a state."""
    s = p.source
    if s == "label":
        return label_index(state)
    if s == "intensity":
        return float(state.confidence) if label_index(state) else 0.0
    if s == "confidence":
        return float(state.confidence)
    if s == "voice":
        return bool(state.voice_active)
    if s == "vxp_expression":
        return vxp_expression(state)
    if s == "vxp_confidence":
        return float(state.confidence) if vxp_expression(state) else 0.0
    kind, _, arg = s.partition(":")
    if kind == "prob":
        return float(state.smoothed[state.labels.index(arg)])
    return float(weights.get(kind, {}).get(arg, 0.0))


_MEANING = {
    "label": "0 unsure (the state's `uncertain` flag), else 1 + the index of the shown class in the model's "
             "labels (table below); held through pauses shorter than `--hold-ms`, then neutral",
    "intensity": "confidence of the label while it is shown (0..1), 0 when the label is 0",
    "confidence": "smoothed probability of the current label, of the best guess while unsure (0..1)",
    "voice": "a voice is heard (talking)",
    "vxp_expression": "VXP numbering: 0 unsure, 1 neutral ... 8 surprised",
    "vxp_confidence": "confidence, 0 when unsure",
}


def parameter_table_markdown(plan: ParamPlan) -> str:
    """The README's table of a parameter set: name, type, synced bits, meaning; and the total."""
    rows = ["| parameter | type | synced bits | value |", "|---|---|---|---|"]
    for p in plan.params:
        meaning = _MEANING.get(p.source)
        if meaning is None:
            kind, _, arg = p.source.partition(":")
            meaning = f"smoothed probability of `{arg}` (0..1)" if kind == "prob" else f"mapped {kind} weight `{arg}`"
        rows.append(f"| `{p.name}` | {_TYPE_NAMES[p.kind]} | {p.bits} | {meaning} |")
    rows.append(f"| **total** | | **{plan.bits}** of {VRC_BIT_BUDGET} | |")
    return "\n".join(rows)


def label_table_markdown(labels: Sequence[str], param: str = "SER_Label") -> str:
    """The README's table of ``SER_Label`` values for a model's labels."""
    rows = [f"| `{param}` | class |", "|---|---|", "| 0 | unsure (or at rest, for a model without a neutral class) |"]
    rows += [f"| {i} | {c} |" for i, c in enumerate(labels, start=1)]
    return "\n".join(rows)

