"""OSC output profiles: what each kind of receiver gets for a state (pure, no sockets).

- ``generic``: ser-daemon's own scheme (see :mod:`ser_daemon.messages`) plus the
  mapped weights as ``/ser/vrm/<name> f`` and ``/ser/arkit/<name> f``.
- ``vrchat``: VRChat avatar parameters ``/avatar/parameters/<Name>``: a float per
  emotion, the confidence as float, the label as int (0 while no voice or
  uncertain) and voice activity as bool.
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

import re
from typing import Any, Mapping

from .config import OSC_DEFAULT_PORTS, OSC_PROFILES
from .errors import ConfigError
from .messages import generic_osc_messages, osc_message, osc_name, osc_packets
from .smoothing import NEUTRAL
from .state import EmotionState

__all__ = [
    "PROFILES",
    "DEFAULT_PORTS",
    "OscProfile",
    "GenericProfile",
    "VRChatProfile",
    "VmcProfile",
    "VxpProfile",
    "make_profile",
    "check_vrchat_name",
]

PROFILES = OSC_PROFILES
DEFAULT_PORTS = OSC_DEFAULT_PORTS
VXP_ORDER = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
_VRC_NAME = re.compile(r"^[A-Za-z0-9_]+$")
VRC_FLOAT_STEP = 1.0 / 127.0

Weights = Mapping[str, Mapping[str, float]]


def check_vrchat_name(name: str, what: str = "VRChat parameter name") -> str:
    """Refuse names VRChat would silently ignore (spaces, symbols, empty)."""
    if not isinstance(name, str) or not _VRC_NAME.match(name):
        raise ConfigError(
            f"{what} {name!r} is not usable: VRChat parameter names must be letters, digits and underscores "
            "(spaces or symbols make VRChat ignore the parameter silently)"
        )
    return name


class OscProfile:
    """Turns states into datagrams for one receiver.

    ``follow_stream`` limits a profile to one stream (an avatar has one face);
    None means every stream.
    """

    name = "base"
    follow_stream: str | None = None

    def encode(self, state: EmotionState, weights: Weights, now: float) -> list[bytes]:
        raise NotImplementedError

    def request_full_resend(self) -> None:
        """Next encode sends everything (receivers that reset, e.g. on avatar change)."""

    def encode_status(self, stream: str, status: str) -> list[bytes]:
        """Input status changes; only the generic scheme carries them."""
        return []


class GenericProfile(OscProfile):
    name = "generic"

    def __init__(self, bundle: bool = True, prefix: str = "/ser", per_stream: bool = False) -> None:
        self.bundle = bundle
        self.prefix = prefix
        self.per_stream = per_stream  # several streams: /ser/<stream>/state and so on

    def _prefix(self, stream: str) -> str:
        return f"{self.prefix}/{osc_name(stream)}" if self.per_stream else self.prefix

    def encode(self, state: EmotionState, weights: Weights, now: float) -> list[bytes]:
        prefix = self._prefix(state.stream)
        msgs = generic_osc_messages(state, prefix)
        for target_set in ("vrm", "arkit"):
            for name, w in weights.get(target_set, {}).items():
                msgs.append(osc_message(f"{prefix}/{target_set}/{osc_name(name)}", ("f", w)))
        return osc_packets(msgs, self.bundle)

    def encode_status(self, stream: str, status: str) -> list[bytes]:
        return [osc_message(f"{self._prefix(stream)}/status", ("s", status))]


class _OnChangeProfile(OscProfile):
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
        msgs = []
        for address, tag, value in self._params(state, weights):
            key = self._key(tag, value)
            if self._full or state.final or self._sent.get(address) != key:
                msgs.append(osc_message(address, (tag, value)))
                self._sent[address] = key
        self._full = False
        if not msgs:
            return []
        self._last_send = now
        return osc_packets(msgs, self.bundle)


class VRChatProfile(_OnChangeProfile):
    """VRChat avatar parameters (see the README's VRChat section for the avatar side)."""

    name = "vrchat"

    def __init__(self, labels: tuple[str, ...], prefix: str = "SER_", max_hz: float = 5.0) -> None:
        super().__init__(max_hz=max_hz)
        check_vrchat_name(prefix + "X", "VRChat parameter prefix")
        self.labels = labels
        self.prefix = prefix
        self.emotion_params = {
            label: check_vrchat_name(prefix + label[:1].upper() + label[1:]) for label in labels
        }
        self.label_param = check_vrchat_name(prefix + "Label")
        self.confidence_param = check_vrchat_name(prefix + "Confidence")
        self.voice_param = check_vrchat_name(prefix + "Voice")

    def label_index(self, state: EmotionState) -> int:
        """0 while no voice or unsure (``state.uncertain``), else 1 + the class's index in the model's labels."""
        if not state.voice_active or state.uncertain or state.label not in self.labels:
            return 0
        return 1 + self.labels.index(state.label)

    def _params(self, state: EmotionState, weights: Weights) -> list[tuple[str, str, Any]]:
        a = "/avatar/parameters/"
        out: list[tuple[str, str, Any]] = [
            (a + self.emotion_params[label], "f", p) for label, p in zip(state.labels, state.smoothed)
        ]
        out.append((a + self.confidence_param, "f", state.confidence))
        out.append((a + self.label_param, "i", self.label_index(state)))
        out.append((a + self.voice_param, "T" if state.voice_active else "F", state.voice_active))
        return out


class VxpProfile(_OnChangeProfile):
    """Drop-in parameters for avatars built for the VXP mod."""

    name = "vxp"

    def __init__(self, max_hz: float = 5.0, expression_param: str = "VXP_Expression",
                 confidence_param: str = "VXP_Confidence") -> None:
        super().__init__(max_hz=max_hz)
        self.expression_param = check_vrchat_name(expression_param)
        self.confidence_param = check_vrchat_name(confidence_param)

    @staticmethod
    def expression(state: EmotionState) -> int:
        if not state.voice_active or state.uncertain or state.label not in VXP_ORDER:
            return 0  # VXP's "Default (unsure)"
        return 1 + VXP_ORDER.index(state.label)

    def _params(self, state: EmotionState, weights: Weights) -> list[tuple[str, str, Any]]:
        a = "/avatar/parameters/"
        conf = state.confidence if self.expression(state) else 0.0
        return [(a + self.expression_param, "i", self.expression(state)), (a + self.confidence_param, "f", conf)]


class VmcProfile(OscProfile):
    """VMC protocol blendshapes (VRM 0.x clip names), applied once per decision."""

    name = "vmc"

    def __init__(self, bundle: bool = True) -> None:
        self.bundle = bundle

    def encode(self, state: EmotionState, weights: Weights, now: float) -> list[bytes]:
        msgs = [osc_message("/VMC/Ext/Blend/Val", ("s", name), ("f", w)) for name, w in weights.get("vrm0", {}).items()]
        msgs.append(osc_message("/VMC/Ext/Blend/Apply"))
        return osc_packets(msgs, self.bundle)


def make_profile(
    name: str, labels: tuple[str, ...], *, bundle: bool = True, vrchat_prefix: str = "SER_", max_hz: float = 5.0
) -> OscProfile:
    """Build a profile by name.

    Raises:
        ConfigError: unknown profile, or VRChat names that VRChat would ignore.
    """
    if name == "generic":
        return GenericProfile(bundle=bundle)
    if name == "vrchat":
        return VRChatProfile(labels, prefix=vrchat_prefix, max_hz=max_hz)
    if name == "vmc":
        return VmcProfile(bundle=bundle)
    if name == "vxp":
        missing = [x for x in labels if x not in VXP_ORDER and x != NEUTRAL]
        if missing:
            import logging

            logging.getLogger(__name__).warning("vxp profile: classes %s have no VXP number; sent as 0", missing)
        return VxpProfile(max_hz=max_hz)
    raise ConfigError(f"unknown OSC profile {name!r}; choose one of {', '.join(PROFILES)}")
