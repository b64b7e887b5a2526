"""Wires sources, the engine and the outputs together, and stops them cleanly.

Threads: the sound card's callback (or a file replay thread) writes into a ring per stream;
one processing thread runs the :class:`~ser_daemon.app.engine.Engine` (rings in, states out)
and fans each state out to every output; the asyncio loop in the main thread serves WebSocket
clients and handles signals.  Shutdown order follows uvicorn: audio first, then processing
(which emits a final neutral state per stream), then the servers, all bounded in time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TextIO

from ..core.state import EmotionState
from ..model.bundle import ModelBundle
from ..model.inference import Classifier
from ..outputs.base import OnLoop
from ..outputs.console import ConsoleOutput, JsonLines, StageStats, write_stats_json
from ..outputs.ingest_return import IngestReturn
from ..outputs.mapping import ExpressionMapping, load_mapping
from ..outputs.messages import HelloMessage, dumps
from ..outputs.osc import OscSender
from ..outputs.osc_targets import OSC_DEFAULT_PORTS
from ..outputs.websocket import WsOutput
from ..profiles.store import VoiceProfile
from ..vrchat.session import VRChatSession
from ..vrchat.status import VRChatFacts
from .calibrate import ActiveProfile, offer_calibration
from .config import DaemonConfig
from .engine import Engine
from .inputs import add_local_inputs, start_inputs, stop_inputs
from .outputs import OutputContext, build_outputs, fan_out
from .servers import Servers
from .stop_requests import StopControl, install_stop_handlers, unless_stopped

__all__ = ["Daemon"]

log = logging.getLogger(__name__)


class Daemon:
    """One running ser-daemon.

    Args:
        config: what to do.
        bundle: the model's metadata.
        classifier: the loaded model.
        out: where ``--print`` lines go.
        status_out: where the live status line goes (only if a terminal).
        profile: the user's personal profile, for the local inputs (not ingest streams: those are other people).
        profile_path: where that profile is kept (the learned baseline is saved there at exit).
    """

    def __init__(self, config: DaemonConfig, bundle: ModelBundle, classifier: Classifier, out: TextIO | None = None,
                 status_out: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 profile: VoiceProfile | None = None, profile_path: Path | None = None) -> None:
        self.config, self.bundle, self.classifier = config, bundle, classifier
        self.active = ActiveProfile(profile, profile_path, config.profile if profile is not None else None)
        parts = config.parts  # each subsystem is handed its own part of the config
        self.engine = Engine(bundle, classifier, parts.analysis, self._emit, clock=clock, profile=profile,
                             keep_running=config.ingest is not None)
        self.engine.on_status = self._on_status
        self.stats = StageStats()
        self.servers = Servers(parts.servers)
        self.stopper = StopControl()
        # A start-up step given up for a stop (mDNS half done) runs on in its thread: the CLI leaves at once.
        self.left_work_behind = False
        self.mapping: ExpressionMapping = load_mapping(config.mapping, bundle.labels)
        self.console = ConsoleOutput(out if out is not None else sys.stdout,  # None: the process has no stdout
                                     status_out if status_out is not None else sys.stderr, quiet=config.quiet,
                                     on_closed=self.stopper.stdout_closed,
                                     lines_on_out=config.print_states or config.jsonl)
        self._replay = add_local_inputs(parts.inputs, self.engine)
        ctx = OutputContext(parts.outputs, tuple(bundle.labels), self.mapping, self.console, tuple(s.name for s in self.streams),
                            self.servers.client_count, lambda: self.vrchat.short(), bundle.features.sample_rate, bundle.name)
        built = build_outputs(ctx)
        self.outputs = fan_out(ctx, built)
        self.osc: OscSender | None = built.get("osc")  # type: ignore[assignment]
        self.jsonl: JsonLines | None = built.get("jsonl")  # type: ignore[assignment]
        self.vrchat = VRChatSession(parts.vrchat, self.osc, OSC_DEFAULT_PORTS["vrchat"], self.console.note,
                                    self._on_vrchat_change)

    exit_code = property(lambda self: self.stopper.exit_code)
    profile = property(lambda self: self.active.profile)
    profile_path = property(lambda self: self.active.path)
    ws = property(lambda self: self.servers.ws, doc="The WebSocket broadcaster, once started (else None).")
    streams = property(lambda self: self.engine.streams, doc="The engine's streams (the processing thread owns them).")

    def hello(self) -> dict:
        """The first message of every WebSocket client and of ``--jsonl``."""
        b, vrchat = self.bundle, (self.vrchat.status.facts.to_json() if self.vrchat.active else None)
        return HelloMessage.of(labels=b.labels, model=b.name, sample_rate=b.features.sample_rate, window_ms=b.window_s * 1e3,
                               hop_ms=self.config.analysis.hop_ms, streams=[s.name for s in self.streams],
                               profile=self.active.name, vrchat=vrchat).to_dict()

    # -- running ------------------------------------------------------------
    def run(self) -> int:
        """Run until the inputs end or a signal arrives; return the exit code."""
        return asyncio.run(self._main())

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        stop = self.stopper.bind(loop)
        # Not in the main thread (library use) nothing is installed: the caller stops us with stop().
        # Until here (and again after the clean stop) ser-daemon's start-up handlers end the process
        # at once: no output had been opened yet (ser_daemon.app.startup).
        hand_back = install_stop_handlers(loop, self.stopper.request, self.stopper.done)
        processing: threading.Thread | None = None
        cfg = self.config
        try:
            for line in OscSender.describe(self.osc):
                self.console.note(line)
            if cfg.ws is not None or cfg.web is not None:
                burst = cfg.max_streams if cfg.ingest is not None else len(self.streams)
                web_port = await self.servers.start_websocket(self.hello(), burst)
                assert self.ws is not None
                self.outputs.add(OnLoop(WsOutput(self.ws), loop))
                if cfg.web is not None:
                    offer_calibration(self.bundle, cfg.backend, self.engine, self.ws, loop, self.active, self.hello)
                    self.console.note(f"web view: http://{cfg.web.host}:{web_port}/")
                if cfg.wait_clients:
                    self.left_work_behind |= await unless_stopped(self.servers.wait_for_clients(), stop)
            if cfg.ingest is not None:  # a multiplexed stream's states also go back on its connection
                ingest = await self.servers.start_ingest(self.engine, self.mapping)
                self.outputs.add(IngestReturn(ingest.deliver))
            if not stop.is_set():  # OSCQuery: ~3 s of mDNS probing
                self.left_work_behind |= await unless_stopped(self.vrchat.start(), stop)
            if not stop.is_set():
                remote = min(cfg.max_streams, 8) if cfg.ingest is not None else 1
                await asyncio.to_thread(self.engine.warm_up, max(len(self.streams), remote))
                if self.jsonl is not None:
                    self.jsonl.send_message(self.hello())
                start_inputs(self.streams, self._replay)
                processing = threading.Thread(target=self._process_loop, name="ser-processing", daemon=True)
                processing.start()
                await stop.wait()
        finally:
            try:
                await self._shutdown(processing)
            finally:
                hand_back()  # before asyncio.run closes the loop, which would leave SIG_DFL behind
        return self.stopper.exit_code

    def _on_vrchat_change(self, facts: VRChatFacts) -> None:
        """What is known about VRChat changed (event loop thread): tell the web view's clients."""
        if self.ws is not None:
            self.ws.hello_text = dumps(self.hello())
            self.ws.broadcast_message(facts.to_json())
        if self.jsonl is not None:
            self.jsonl.send_message(facts.to_json())

    def stop(self) -> None:
        """Ask the daemon to stop (thread-safe; harmless once it has stopped)."""
        self.stopper.stop()

    async def _shutdown(self, processing: threading.Thread | None) -> None:
        stop_inputs(self.streams, self._replay)
        self.engine.stop()
        if processing is not None:
            await asyncio.to_thread(processing.join, 1.0)
            if processing.is_alive():
                log.warning("processing thread did not stop within 1 s")
        else:  # stopped before audio flowed: the outputs exist, so they still get the final state.
            self.engine.emit_final_states()
        await self.servers.close()
        self.outputs.close()  # OSC's sockets; the status line ends after the servers' last words
        await self.vrchat.close()
        self.stopper.done.set()

    # -- processing thread ----------------------------------------------------
    def _process_loop(self) -> None:
        try:
            self.engine.run()
        except Exception:
            log.exception("processing failed")
            self.stopper.exit_code = 1
        finally:
            self.stop()

    def _on_status(self, stream: str, status: str, detail: str) -> None:
        """An input's health changed (relayed by the engine): every output hears of it."""
        self.outputs.send_status(stream, status, detail, time.monotonic())

    def _emit(self, state: EmotionState) -> None:
        t0 = time.perf_counter()
        state = self.vrchat.gate(state)
        self.outputs.send_state(state, self.mapping.all_weights(state.smoothed), time.monotonic())
        if not state.final:
            self.stats.record(state, (time.perf_counter() - t0) * 1000.0)

    def write_stats(self, path: str | Path) -> None:
        """Write the per-stage timing summary as JSON."""
        listener = self.vrchat.link.stats() if self.vrchat.link is not None else None
        write_stats_json(path, self.stats.report(self.classifier, self.bundle.name, self.engine.stream_stats(), listener))
