"""What VRChat says to the daemon (sans-I/O): its mute, ``SER_Enabled`` and the avatar it wears.

Datagrams in, a gate and the avatar's parameters out; the listener that receives them is
``vrchat/link.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..core.smoothing import NEUTRAL
from ..core.state import EmotionState
from ..net.osc_in import OscLimits, parse_osc

__all__ = ["VRChatInput", "silenced"]


class VRChatInput:
    """What VRChat tells the daemon (sans-I/O): feed datagrams, read the gate and the avatar.

    Args:
        enabled_param: the avatar menu's on/off toggle (a Bool parameter).
        honour_mute: whether ``MuteSelf`` (VRChat's built-in, true while the
            user is muted in game) silences the outputs.
        limits: what one datagram may cost to parse.
    """

    def __init__(self, enabled_param: str = "SER_Enabled", honour_mute: bool = True,
                 limits: OscLimits = OscLimits()) -> None:
        self.enabled_param = enabled_param
        self.limits = limits
        self.honour_mute = honour_mute
        self.muted = False
        self.enabled = True
        self.avatar_id: str | None = None

    @property
    def open(self) -> bool:
        """Whether anything about the voice may be broadcast."""
        return self.enabled and not (self.honour_mute and self.muted)

    def feed(self, datagram: bytes) -> list[tuple[str, Any]]:
        """Parse one datagram (message or bundle); return events ``("avatar", id)`` / ``("gate", open)``.

        The datagram may come from any local process: it is read by the bounded
        parser of :mod:`ser_daemon.net.osc_in`, never by python-osc's.

        Raises:
            OscRejected: the datagram is not OSC, is malformed or is over a limit.
        """
        messages = parse_osc(datagram, self.limits)
        events: list[tuple[str, Any]] = []
        was_open = self.open
        for m in messages:
            addr, params = m.address, m.params
            if addr == "/avatar/change":
                self.avatar_id = str(params[0]) if params else ""
                self.enabled = True  # a new avatar may have no toggle: start enabled
                events.append(("avatar", self.avatar_id))
            elif addr == "/avatar/parameters/MuteSelf" and params:
                self.muted = bool(params[0])
            elif addr == "/avatar/parameters/" + self.enabled_param and params:
                self.enabled = bool(params[0])
        if self.open != was_open:
            events.append(("gate", self.open))
        return events


def silenced(state: EmotionState) -> EmotionState:
    """The state broadcast while muted or switched off: neutral, no voice, no model output."""
    if NEUTRAL in state.labels:
        smoothed = tuple(1.0 if c == NEUTRAL else 0.0 for c in state.labels)
    else:
        smoothed = tuple(0.0 for _ in state.labels)
    return dataclasses.replace(state, label=NEUTRAL, confidence=1.0 if NEUTRAL in state.labels else 0.0,
                               raw=(), smoothed=smoothed, voice_active=False, uncertain=False)
