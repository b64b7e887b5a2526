"""The daemon's side of a VRChat session: hear it, find it, ask it what the avatar has, say so.

Split out of :mod:`ser_daemon.app.daemon` (which only wires): everything the daemon does
because a VRChat target exists lives here.

- :class:`~ser_daemon.vrchat.link.VRChatLink` hears VRChat (OSCQuery, or port 9001);
- :class:`~ser_daemon.vrchat.input.VRChatInput` reads what it sends (avatar change, mute, toggle);
- avatar targets given as the usual 127.0.0.1:9000 follow the port VRChat advertises;
- VRChat's own OSCQuery tree is read (again at each ``/avatar/change``) to tell whether
  the worn avatar has any of the parameters the daemon sends;
- every fact lands in a :class:`~ser_daemon.vrchat.status.VRChatStatus`; ``on_change``
  hears of changes (the web view), ``note`` gets the start-up lines for people.

Callbacks run in the event loop thread; the tree is read in a short-lived thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable, Protocol

from ..core.state import EmotionState
from ..net.endpoints import Endpoint, is_loopback
from ..outputs.osc import OscSender
from ..outputs.osc_schemes import VRChatScheme
from .input import VRChatInput, silenced
from .link import VRChatLink
from .oscquery import VRChatService, fetch_avatar_paths
from .status import VRChatFacts, VRChatStatus, params_present

__all__ = ["VRChatSession", "VRChatOptions", "AVATAR_QUERY_DELAY_S"]

log = logging.getLogger(__name__)

AVATAR_QUERY_DELAY_S = 0.5  # after /avatar/change, give VRChat a moment to publish the new avatar's tree


class VRChatOptions(Protocol):
    """The daemon settings a VRChat session reads (``app.config.DaemonConfig`` has them)."""

    @property
    def vrchat_prefix(self) -> str: ...

    @property
    def vrchat_ignore_mute(self) -> bool: ...

    @property
    def vrchat_listen(self) -> int: ...

    @property
    def oscquery(self) -> bool: ...


class VRChatSession:
    """VRChat for one daemon: its input gate, discovery, avatar check and status.

    Args:
        config: the VRChat settings (listen port, OSCQuery, mute handling, prefix): the config's
            VRChat part (``app.config.DaemonConfig.parts.vrchat``), or any object with those attributes.
        osc: the OSC sender whose vrchat/vxp targets this session serves (None: no OSC).
        vrchat_port: VRChat's classic receive port (targets there follow OSCQuery).
        note: prints one line for people (start-up lines).
        on_change: hears each change of the facts (event loop thread).
    """

    def __init__(self, config: VRChatOptions, osc: OscSender | None, vrchat_port: int,
                 note: Callable[[str], None], on_change: Callable[[VRChatFacts], None]) -> None:
        self.config = config
        self.osc = osc
        self.note = note
        self.on_change = on_change
        profiles = list(osc.profiles) if osc is not None else []
        self.indices = [i for i, p in enumerate(profiles) if p.name in ("vrchat", "vxp")]
        self.follows = [i for i in self.indices
                        if is_loopback(osc.targets[i].host) and osc.targets[i].port == vrchat_port] if osc else []
        enabled = next((p.plan.enabled_param for p in profiles if isinstance(p, VRChatScheme)),
                       config.vrchat_prefix + "Enabled")
        self.input = VRChatInput(enabled, honour_mute=not config.vrchat_ignore_mute)
        target = str(osc.targets[self.indices[0]]) if self.indices and osc is not None else ""
        self.status = VRChatStatus(VRChatFacts(
            discovery="oscquery" if config.oscquery else "classic", target=target, enabled_param=enabled,
            prefix="VXP_" if self.indices and all(profiles[i].name == "vxp" for i in self.indices)
            else config.vrchat_prefix,
        ))
        self.link: VRChatLink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._query: VRChatService | None = None
        self._query_gen = 0

    @property
    def active(self) -> bool:
        """Whether any output is for VRChat (otherwise nothing here runs)."""
        return bool(self.indices)

    # -- start and stop -------------------------------------------------------
    def gate(self, state: EmotionState) -> EmotionState:
        """``state`` as every output should get it: the neutral, silent one while VRChat mutes or disables us."""
        is_open = self.input.open
        for p in self._schemes():
            p.muted = not is_open  # its mood floats: nothing about the voice while muted
        return state if is_open else silenced(state)

    def short(self) -> str:
        """A few words for the status line (what is known about VRChat), or "" without VRChat."""
        return self.status.facts.short() if self.active else ""

    async def start(self) -> None:
        """Hear what VRChat sends back (/avatar/change, MuteSelf, SER_Enabled); find it over OSCQuery."""
        cfg = self.config
        if not self.active:
            return
        if not cfg.vrchat_listen:
            self.note(f"VRChat: avatar parameters go to {self.status.facts.target}; not listening for VRChat "
                      "(--vrchat-listen 0)")
            return
        self._loop = asyncio.get_running_loop()
        wanted = ("/avatar/change", "/avatar/parameters/MuteSelf", "/avatar/parameters/" + self.input.enabled_param)
        self.link = VRChatLink(self.on_datagram, self._on_found, fallback_port=cfg.vrchat_listen,
                               use_oscquery=cfg.oscquery, wanted=wanted, on_query=self._on_query,
                               on_fallback=self._on_fallback)
        await self.link.start()

    async def close(self) -> None:
        self._query_gen += 1  # a tree read still running is of no interest any more
        if self.link is not None:
            await self.link.close()

    # -- facts ---------------------------------------------------------------
    def _set(self, **changes: object) -> None:
        if self.status.update(**changes):
            self.on_change(self.status.facts)

    def _on_found(self, svc: VRChatService) -> None:
        """VRChat announced where it receives OSC: avatar targets given as the usual 127.0.0.1:9000 follow it."""
        if self.osc is None:
            return
        for i in self.follows:
            if self.osc.targets[i] != Endpoint(svc.host, svc.osc_port):
                log.info("sending %s parameters to %s at %s:%d", self.osc.profiles[i].name, svc.name, svc.host,
                         svc.osc_port)
                self.osc.retarget(i, Endpoint(svc.host, svc.osc_port))
            self.osc.profiles[i].request_full_resend()
        target = str(self.osc.targets[self.indices[0]])
        if self.status.facts.found is None:
            self.note(f"VRChat: found {svc.name} over OSCQuery; avatar parameters go to {target}")
        self._set(found=svc.name, target=target)

    def _on_fallback(self, port: int | None) -> None:
        target = self.status.facts.target
        if self.config.oscquery:
            why = f"no VRChat answered over OSCQuery within {self.link.wait_s if self.link else 3:.0f} s"
        else:
            why = "OSCQuery is off"
        heard = f"listening on 127.0.0.1:{port}" if port else "cannot listen on the classic port (another app has it)"
        self.note(f"VRChat: {why}; avatar parameters go to {target}, {heard}")
        self._set(fallback_port=port)

    def _on_query(self, svc: VRChatService) -> None:
        self._query = svc
        self._check_avatar(0.0)

    def on_datagram(self, data: bytes) -> None:
        """One datagram from VRChat (event loop thread): switch avatar plans, open or close the gate."""
        events = self.input.feed(data)
        changes: dict[str, object] = {"heard": True}
        for kind, value in events:
            if kind == "avatar":
                log.info("VRChat avatar changed to %s: re-sending the full state", value)
                for p in self.osc.profiles if self.osc is not None else ():
                    if isinstance(p, VRChatScheme):
                        p.set_avatar(value)
                changes.update(avatar=value, avatar_has_params=None)
                self._check_avatar(AVATAR_QUERY_DELAY_S)
            elif kind == "gate":
                log.info("VRChat: %s", "broadcasting again" if value else
                         "muted or switched off: the face is neutral and nothing about the voice is sent")
        changes.update(muted=self.input.honour_mute and self.input.muted, enabled=self.input.enabled)
        self._set(**changes)

    # -- the avatar's parameters -----------------------------------------------
    def wanted_names(self) -> list[str]:
        """The parameter names the daemon sends to the worn avatar (all VRChat/VXP targets)."""
        names: list[str] = []
        for p in self._schemes():
            names += [x.name for x in p.plan.params] + list(p.mood_names)
        return names

    def _schemes(self) -> list[VRChatScheme]:
        """The VRChat/VXP schemes this session serves."""
        if self.osc is None:
            return []
        return [p for p in (self.osc.profiles[i] for i in self.indices) if isinstance(p, VRChatScheme)]

    def _check_avatar(self, delay_s: float) -> None:
        """Read VRChat's tree (in a thread, after ``delay_s``) and say whether the avatar has our parameters."""
        svc, loop = self._query, self._loop
        if svc is None or loop is None:
            return
        self._query_gen += 1
        gen, wanted = self._query_gen, self.wanted_names()

        def run() -> None:
            paths = fetch_avatar_paths(svc)
            try:
                loop.call_soon_threadsafe(self._tree_read, gen, paths, wanted)
            except RuntimeError:
                pass  # the loop is closed: the daemon stopped

        timer = threading.Timer(delay_s, run)
        timer.daemon = True
        timer.start()

    def _tree_read(self, gen: int, paths: set[str] | None, wanted: list[str]) -> None:
        if gen != self._query_gen or paths is None:
            return  # a newer avatar is being asked about, or VRChat's tree could not be read
        has = params_present(paths, wanted)
        if not has:
            log.warning("VRChat: the current avatar has none of the parameters %s; add them to its Expression "
                        "Parameters (README: VRChat)", ", ".join(wanted))
        self._set(avatar_has_params=has)
