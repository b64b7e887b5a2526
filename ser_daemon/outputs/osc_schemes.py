"""OSC output schemes: what each kind of receiver gets for a state (pure, no sockets).

(``--osc-profile`` and ``PROFILE@HOST:PORT`` name them; in the code they are schemes, and a
"profile" is a personal voice profile, :class:`~ser_daemon.profiles.store.VoiceProfile`.)

- ``generic``: ser-daemon's own scheme (see :mod:`ser_daemon.outputs.messages`) plus the
  mapped weights as ``/ser/vrm/<name> f``, ``/ser/vrm0/<name> f`` and ``/ser/arkit/<name> f``.
- ``vrchat``: VRChat avatar parameters ``/avatar/parameters/<Name>``, a parameter
  set from :mod:`ser_daemon.outputs.vrchat_params` (compact: ``SER_Label`` int + ``SER_Intensity``
  float + ``SER_Voice`` bool, 17 synced bits; full: also a float per class, confidence, voice).
  Sent on change only (floats compared at VRChat's network step of 1/127) and
  throttled, because VRChat drops updates that come too fast while it switches
  avatars.  ``request_full_resend`` makes the next packet carry every parameter
  (used when VRChat reports ``/avatar/change``).
- ``vmc``: the VMC protocol: one ``/VMC/Ext/Blend/Val s f`` per VRM 0.x clip and
  then ``/VMC/Ext/Blend/Apply``, in one bundle (or unbundled).
- ``vxp``: the parameters of the VXP voice-expression mod (tetra-fox/VRCMods):
  ``VXP_Expression`` int in RAVDESS order (0 unsure or no voice, 1 neutral, 2 calm,
  3 happy, 4 sad, 5 angry, 6 fearful, 7 disgust, 8 surprised) and ``VXP_Confidence``
  float (0 with expression 0).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..core.mood_stage import MoodUpdate
from ..core.smoothing import NEUTRAL
from ..core.state import EmotionState
from ..errors import ConfigError
from .messages import generic_osc_messages, osc_message, osc_name, osc_packets
from .mood_messages import VRCHAT_MOOD_PARAMS, generic_mood_osc_update, vrchat_mood_params
from .osc_targets import OSC_PROFILES, OSC_SCHEMES, scheme_class
from .vrchat_params import VXP_ORDER, check_vrchat_name, label_index, param_value, plan_from_table, vxp_expression

__all__ = [
    "PROFILES",
    "SchemeOptions",
    "OscScheme",
    "GenericScheme",
    "VRChatScheme",
    "VmcScheme",
    "VxpScheme",
    "make_scheme",
    "check_vrchat_name",
]

PROFILES = OSC_PROFILES
VRC_FLOAT_STEP = 1.0 / 127.0

log = logging.getLogger(__name__)

Weights = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class SchemeOptions:
    """What a scheme may be built from (each takes what it needs).

    Attributes:
        bundle: OSC bundles, or single messages for receivers without bundle support.
        vrchat_prefix: prefix of the VRChat parameter names.
        max_hz: most avatar-parameter updates per second.
        vrchat_params: the VRChat parameter set (compact, full, vxp, none).
        vrchat_table: the mapping file's ``[vrchat]`` table.
        targets: the mapping's target names, to check ``vrm:``/``arkit:`` sources.
        mood: ``--mood``: the VRChat scheme also sends the mood floats (``SER_MoodValence`` ...).
    """

    bundle: bool = True
    vrchat_prefix: str = "SER_"
    max_hz: float = 5.0
    vrchat_params: str = "compact"
    vrchat_table: Mapping[str, Any] | None = None
    targets: Mapping[str, Sequence[str]] | None = None
    mood: bool = False


class OscScheme:
    """Turns states into datagrams for one receiver.

    ``follow_stream`` limits a profile to one stream (an avatar has one face);
    None means every stream.
    """

    name = "base"
    follow_stream: str | None = None

    @classmethod
    def from_options(cls, labels: tuple[str, ...], options: SchemeOptions) -> OscScheme:
        """The scheme for a model with ``labels`` (see :data:`~ser_daemon.outputs.osc_targets.OSC_SCHEMES`)."""
        raise NotImplementedError

    def encode(self, state: EmotionState, weights: Weights, now: float) -> list[bytes]:
        raise NotImplementedError

    def request_full_resend(self) -> None:
        """Next encode sends everything (receivers that reset, e.g. on avatar change)."""

    def encode_status(self, stream: str, status: str) -> list[bytes]:
        """Input status changes; only the generic scheme carries them."""
        return []

    def encode_mood(self, update: MoodUpdate, now: float = 0.0) -> list[bytes]:
        """Mood readings and events: the generic scheme carries both, VRChat with ``--mood`` its floats."""
        return []


class GenericScheme(OscScheme):
    name = "generic"

    def __init__(self, bundle: bool = True, prefix: str = "/ser", per_stream: bool = False) -> None:
        self.bundle = bundle
        self.prefix = prefix
        self.per_stream = per_stream  # several streams: /ser/<stream>/state and so on

    @classmethod
    def from_options(cls, labels: tuple[str, ...], options: SchemeOptions) -> GenericScheme:
        return cls(bundle=options.bundle)

    def _prefix(self, stream: str) -> str:
        return f"{self.prefix}/{osc_name(stream)}" if self.per_stream else self.prefix

    def encode(self, state: EmotionState, weights: Weights, now: float) -> list[bytes]:
        prefix = self._prefix(state.stream)
        msgs = generic_osc_messages(state, prefix)
        # vrm0 too, so a VRM 0.x avatar on generic OSC gets the mapping's own [vrm0] rows.
        for target_set in ("vrm", "vrm0", "arkit"):
            for name, w in weights.get(target_set, {}).items():
                msgs.append(osc_message(f"{prefix}/{target_set}/{osc_name(name)}", ("f", w)))
        if state.final:  # the stream's last state (stop, end of file, stream closed): said, not guessed
            msgs.append(osc_message(f"{prefix}/final", ("i", 1)))
        return osc_packets(msgs, self.bundle)

    def encode_status(self, stream: str, status: str) -> list[bytes]:
        return [osc_message(f"{self._prefix(stream)}/status", ("s", status))]

    def encode_mood(self, update: MoodUpdate, now: float = 0.0) -> list[bytes]:
        first = update.reading if update.reading is not None else next(iter(update.events), None)
        if first is None:
            return []
        return osc_packets(generic_mood_osc_update(update, self._prefix(first.stream)), self.bundle)


class _OnChangeScheme(OscScheme):
    """Sends avatar parameters only when they change, at most ``max_hz`` times a second."""

    def __init__(self, max_hz: float = 5.0, bundle: bool = False) -> None:
        if not 0.1 <= max_hz <= 100:
            raise ConfigError(f"OSC send rate must be in 0.1..100 Hz. Received: {max_hz}")
        self.min_interval_s = 1.0 / max_hz
        self.bundle = bundle
        self._sent: dict[str, Any] = {}
        self._last_send = -1e18
        self._full = True

    def request_full_resend(self) -> None:
        self._full = True

    def _params(self, state: EmotionState, weights: Weights) -> list[tuple[str, str, Any]]:
        raise NotImplementedError

    @staticmethod
    def _key(tag: str, value: Any) -> Any:
        if tag == "f":
            return round(float(value) / VRC_FLOAT_STEP)  # what VRChat's network sync can tell apart
        return (tag, value)

    def encode(self, state: EmotionState, weights: Weights, now: float) -> list[bytes]:
        if not state.final and now - self._last_send < self.min_interval_s:
            return []  # throttled: the changes go out with the next allowed packet
        packets = self._changed(self._params(state, weights), now, force=state.final)
        self._full = False
        return packets

    def _changed(self, params: Sequence[tuple[str, str, Any]], now: float, force: bool = False) -> list[bytes]:
        """The packets of the parameters that changed (all after a full-resend request or with ``force``)."""
        msgs = []
        for address, tag, value in params:
            key = self._key(tag, value)
            if self._full or force or self._sent.get(address) != key:
                msgs.append(osc_message(address, (tag, value)))
                self._sent[address] = key
        if not msgs:
            return []
        self._last_send = now
        return osc_packets(msgs, self.bundle)


class VRChatScheme(_OnChangeScheme):
    """VRChat avatar parameters (see :mod:`ser_daemon.outputs.vrchat_params` and the README's VRChat section).

    Args:
        labels: the model's classes (``SER_Label`` numbers them in this order).
        prefix: prefix of the preset names.
        max_hz: most updates per second.
        preset: ``compact`` (Label + Intensity + Voice, 17 synced bits), ``full``, ``vxp`` or ``none``.
        table: the mapping file's ``[vrchat]`` table (renames, drops, additions, per avatar).
        targets: the mapping's target names, to check ``vrm:``/``arkit:`` sources.
        mood: also send the minute horizon's mood floats (``<prefix>MoodValence``, ``MoodArousal``,
            ``MoodTalking``) with each mood reading that is due, under the same rate limit and on change only.
    """

    name = "vrchat"

    def __init__(
        self,
        labels: tuple[str, ...],
        prefix: str = "SER_",
        max_hz: float = 5.0,
        *,
        preset: str = "compact",
        table: Mapping[str, Any] | None = None,
        targets: Mapping[str, Sequence[str]] | None = None,
        mood: bool = False,
    ) -> None:
        super().__init__(max_hz=max_hz)
        self.prefix = prefix
        self.mood = mood
        self.muted = False  # VRChat mutes or disables us (set by the VRChat session): mood floats go to 0
        self._mood: list[tuple[str, str, Any]] = []  # the last reading's floats, sent when changed
        self.default_plan, self.avatar_plans = plan_from_table(table, labels, preset=preset, prefix=prefix,
                                                               targets=targets)
        self.plan = self.default_plan

    @classmethod
    def from_options(cls, labels: tuple[str, ...], options: SchemeOptions) -> VRChatScheme:
        return cls(labels, prefix=options.vrchat_prefix, max_hz=options.max_hz, preset=options.vrchat_params,
                   table=options.vrchat_table, targets=options.targets, mood=options.mood)

    @property
    def mood_names(self) -> tuple[str, ...]:
        """The mood float parameters this scheme sends (none without ``--mood``)."""
        return tuple(self.prefix + name for name in VRCHAT_MOOD_PARAMS) if self.mood else ()

    def encode_mood(self, update: MoodUpdate, now: float = 0.0) -> list[bytes]:
        """The mood floats of a due reading, when ``--mood`` is on (events have no VRChat type)."""
        r = update.reading
        if not self.mood or r is None or (self.follow_stream is not None and r.stream != self.follow_stream):
            return []
        a = "/avatar/parameters/"
        self._mood = [(a + name, "f", value) for name, value in vrchat_mood_params(r, self.prefix)]
        if self._full or now - self._last_send < self.min_interval_s:
            return []  # throttled, or all is due: they go out with the next state's packet (or the next reading's)
        return self._changed(self._mood_params(), now)

    def _mood_params(self) -> list[tuple[str, str, Any]]:
        return [(a, t, 0.0) for a, t, _ in self._mood] if self.muted else list(self._mood)

    def set_avatar(self, avatar_id: str | None) -> None:
        """The avatar worn changed: use its parameter plan and send everything again."""
        self.plan = self.avatar_plans.get(avatar_id, self.default_plan) if avatar_id else self.default_plan
        self.request_full_resend()

    def label_index(self, state: EmotionState) -> int:
        """0 while the model is unsure, else 1 + the index of the shown class (held through pauses)."""
        return label_index(state)

    def _params(self, state: EmotionState, weights: Weights) -> list[tuple[str, str, Any]]:
        a = "/avatar/parameters/"
        out: list[tuple[str, str, Any]] = []
        for p in self.plan.params:
            value = param_value(p, state, weights)
            tag = ("T" if value else "F") if p.kind == "b" else p.kind
            out.append((a + p.name, tag, value))
        return out + self._mood_params()


class VxpScheme(VRChatScheme):
    """Drop-in parameters for avatars built for the VXP mod (the ``vxp`` preset on its own target).

    VXP's names and numbering are its own, so neither the model's labels nor a ``[vrchat]``
    table change them (``--vrchat-params vxp`` on a ``vrchat`` target is the renamable way).
    """

    name = "vxp"

    def __init__(self, max_hz: float = 5.0) -> None:
        super().__init__(VXP_ORDER, max_hz=max_hz, preset="vxp")

    @classmethod
    def from_options(cls, labels: tuple[str, ...], options: SchemeOptions) -> VxpScheme:
        missing = [x for x in labels if x not in VXP_ORDER and x != NEUTRAL]
        if missing:
            log.warning("vxp profile: classes %s have no VXP number; sent as 0", missing)
        return cls(max_hz=options.max_hz)

    @staticmethod
    def expression(state: EmotionState) -> int:
        return vxp_expression(state)


class VmcScheme(OscScheme):
    """VMC protocol blendshapes (VRM 0.x clip names), applied once per decision."""

    name = "vmc"

    def __init__(self, bundle: bool = True) -> None:
        self.bundle = bundle

    @classmethod
    def from_options(cls, labels: tuple[str, ...], options: SchemeOptions) -> VmcScheme:
        return cls(bundle=options.bundle)

    def encode(self, state: EmotionState, weights: Weights, now: float) -> list[bytes]:
        msgs = [osc_message("/VMC/Ext/Blend/Val", ("s", name), ("f", w)) for name, w in weights.get("vrm0", {}).items()]
        msgs.append(osc_message("/VMC/Ext/Blend/Apply"))
        return osc_packets(msgs, self.bundle)


def make_scheme(
    name: str,
    labels: tuple[str, ...],
    *,
    bundle: bool = True,
    vrchat_prefix: str = "SER_",
    max_hz: float = 5.0,
    vrchat_params: str = "compact",
    vrchat_table: Mapping[str, Any] | None = None,
    targets: Mapping[str, Sequence[str]] | None = None,
    mood: bool = False,
) -> OscScheme:
    """Build a profile by name (registered in :data:`~ser_daemon.outputs.osc_targets.OSC_SCHEMES`).

    Raises:
        ConfigError: unknown profile, or VRChat names that VRChat would ignore.
    """
    if name not in OSC_SCHEMES:
        raise ConfigError(f"unknown OSC profile {name!r}; choose one of {', '.join(PROFILES)}")
    options = SchemeOptions(bundle, vrchat_prefix, max_hz, vrchat_params, vrchat_table, targets, mood)
    profile: OscScheme = scheme_class(name).from_options(tuple(labels), options)
    return profile



# The names before issue 29, when "profile" meant both an OSC scheme and a personal voice profile:
# still importable, with a DeprecationWarning (``--osc-profile`` and ``PROFILE@HOST:PORT`` keep their words).
_RENAMED = {"OscProfile": "OscScheme", "GenericProfile": "GenericScheme", "VRChatProfile": "VRChatScheme",
            "VmcProfile": "VmcScheme", "VxpProfile": "VxpScheme", "make_profile": "make_scheme"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        warnings.warn(f"ser_daemon.outputs.osc_schemes.{name} is now {_RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
