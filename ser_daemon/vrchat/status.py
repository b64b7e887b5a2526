"""What the daemon knows about VRChat, said in words (pure, no sockets).

A user whose avatar does not move needs to know why: VRChat not running (or
not found), muted in game, the avatar's ``SER_Enabled`` toggle off, or an
avatar that has no ``SER_`` parameters at all (VRChat then ignores every
value sent).  :class:`VRChatStatus` collects those facts as they arrive and
words them for the status line (short) and the web view (a message).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from ..outputs.messages import PROTOCOL_VERSION

__all__ = ["VRChatFacts", "VRChatStatus", "params_present"]


@dataclass(frozen=True)
class VRChatFacts:
    """One snapshot.

    Attributes:
        discovery: "oscquery" while OSCQuery is used, "classic" without it.
        found: name of the VRChat client found over OSCQuery, or None.
        heard: VRChat has sent the daemon something (avatar change, mute, a parameter).
        fallback_port: the classic port (9001) the daemon listens on, or None.
        target: where avatar parameters go ("127.0.0.1:9000").
        muted: VRChat reports ``MuteSelf`` (and the daemon honours it).
        enabled: the avatar's on/off toggle (``enabled_param``) is on.
        enabled_param: that toggle's name.
        avatar: the avatar id VRChat reported, or None.
        avatar_has_params: whether VRChat's OSCQuery tree lists any of the parameters the
            daemon sends for this avatar; None while unknown (not asked, or no answer).
        prefix: the parameter prefix, for the words ("SER_").
    """

    discovery: str = "oscquery"
    found: str | None = None
    heard: bool = False
    fallback_port: int | None = None
    target: str = ""
    muted: bool = False
    enabled: bool = True
    enabled_param: str = "SER_Enabled"
    avatar: str | None = None
    avatar_has_params: bool | None = None
    prefix: str = "SER_"

    @property
    def connected(self) -> bool:
        """VRChat was found over OSCQuery or has been heard from."""
        return self.found is not None or self.heard

    def problems(self) -> list[str]:
        """What keeps the avatar's face from moving, most important first (full sentences)."""
        out = []
        if not self.connected:
            out.append("VRChat not found (is it running, with OSC enabled?)")
        if self.muted:
            out.append("MUTED in VRChat: the face stays neutral")
        if not self.enabled:
            out.append(f"{self.enabled_param} is off on the avatar: the face stays neutral")
        if self.avatar_has_params is False:
            out.append(f"the current avatar has no {self.prefix} parameters")
        return out

    def short(self) -> str:
        """A few words for the status line."""
        if self.muted:
            return "VRChat: MUTED"
        if not self.enabled:
            return f"VRChat: {self.enabled_param} off"
        if self.avatar_has_params is False:
            return f"VRChat: no {self.prefix} params on avatar"
        return "VRChat: found" if self.connected else "VRChat: not found"

    def to_json(self) -> dict[str, Any]:
        """The web view's message (``type`` "vrchat", see the WebSocket schema)."""
        return {
            "type": "vrchat",
            "protocol": PROTOCOL_VERSION,
            "found": self.connected,
            "via": "oscquery" if self.found else ("osc" if self.heard else None),
            "target": self.target,
            "muted": self.muted,
            "enabled": self.enabled,
            "avatar": self.avatar,
            "avatar_has_params": self.avatar_has_params,
            "problems": self.problems(),
            "text": self.short(),
        }


@dataclass
class VRChatStatus:
    """The current :class:`VRChatFacts`, updated from several threads; ``on_change`` hears of each change."""

    facts: VRChatFacts = field(default_factory=VRChatFacts)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **changes: Any) -> bool:
        """Set some facts; return whether anything changed."""
        with self._lock:
            new = replace(self.facts, **changes)
            changed = new != self.facts
            self.facts = new
        return changed


def params_present(tree_paths: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether any wanted parameter name is among the OSC paths VRChat's tree lists."""
    paths = set(tree_paths)
    return any("/avatar/parameters/" + name in paths for name in wanted)
