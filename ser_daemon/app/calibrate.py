"""The web view's Calibrate, wired into a running daemon (see :mod:`ser_daemon.profiles.calibration`).

The takes are tapped from the first local input in the processing thread; the profile the
page makes is handed to the engine, which switches that stream to it, and every client
hears of the switch.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..model.bundle import ModelBundle
from ..outputs.base import post_to_loop
from ..outputs.messages import dumps
from ..outputs.websocket import WsBroadcaster
from ..profiles.store import VoiceProfile
from .engine import Engine

if TYPE_CHECKING:
    from ..profiles.calibration import Calibration

__all__ = ["ActiveProfile", "offer_calibration"]

log = logging.getLogger(__name__)


class ActiveProfile:
    """The personal profile the local inputs read with: what, where it is kept, under which name."""

    def __init__(self, profile: VoiceProfile | None, path: Path | None, name: str | None) -> None:
        self.profile, self.path, self.name = profile, path, name


def offer_calibration(bundle: ModelBundle, backend: str, engine: Engine, ws: WsBroadcaster,
                      loop: asyncio.AbstractEventLoop, active: ActiveProfile,
                      hello: Callable[[], dict[str, Any]]) -> Calibration:
    """Let the web page calibrate on the first local input; return the calibration it drives."""
    from ..model.inference import load_classifier
    from ..profiles.calibration import Calibration, active_json

    def announce(stream: str) -> None:  # event loop thread
        ws.hello_text = dumps(hello())
        ws.broadcast_message(active_json(active.name or "", stream))

    def applied(stream: str) -> None:  # processing thread: the stream reads with the new profile from now on
        log.info("stream %s now uses profile %s", stream, active.name)
        post_to_loop(loop, announce, stream)

    def use(profile: VoiceProfile, path: Path, name: str, stream: str) -> None:  # event loop thread
        active.profile, active.path, active.name = profile, path, name
        engine.swap_profile(stream, profile)

    local = [st for st in engine.streams if st.local]
    first = local[0] if local else None
    calibration = Calibration(bundle, first.name if first else None, first.proc.in_rate if first else 0, loop,
                              ws.send_to, use, lambda: load_classifier(bundle, backend, num_threads=1))
    engine.on_samples = calibration.feed
    engine.on_profile_applied = applied
    ws.controls["calibrate"] = calibration.handle
    ws.on_client_gone = calibration.client_gone
    return calibration
