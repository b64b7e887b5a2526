"""Wires sources, the pipeline and the broadcasters together, and stops cleanly.

Threads: the sound card's callback (or a file replay thread) writes into a
ring per stream; one processing thread runs the :class:`~ser_daemon.app.engine.Engine`
(rings in, states out), sends OSC and hands states to the asyncio loop in the
main thread, which serves WebSocket clients and handles signals.  Shutdown
order follows uvicorn: audio first, then processing (which emits a final
neutral state per stream), then the servers, all bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Coroutine, TextIO

from ..model.bundle import ModelBundle
from ..model.inference import Classifier
from ..net.ingest import IngestServer, IngestSource
from ..outputs.console import ConsoleOutput, StageStats, format_state
from ..outputs.mapping import ExpressionMapping, load_mapping
from ..outputs.messages import dumps, hello_json, state_json, status_json
from ..outputs.osc import OscSender
from ..outputs.osc_schemes import GenericProfile, make_profile
from ..outputs.osc_targets import OSC_DEFAULT_PORTS
from ..profiles.store import Profile
from .config import DaemonConfig
from .engine import Engine, Stream

if TYPE_CHECKING:
    from ..profiles.calibration import Calibration
from ..audio.sources import DeviceSource, FileSource, PacedReplay, open_wav, resolve_device
from ..core.ringbuffer import AudioRing
from ..core.state import EmotionState
from ..net.websocket_server import AccessPolicy
from ..outputs.websocket import WsBroadcaster
from ..vrchat.input import silenced
from ..vrchat.session import VRChatSession
from ..vrchat.status import VRChatFacts
from .stop_requests import EXIT_BROKEN_PIPE, StopRequest, install_stop_handlers

__all__ = ["Daemon", "StageStats", "format_state"]

log = logging.getLogger(__name__)

RING_SECONDS = 4.0  # capture buffered before an overrun is counted
INGEST_RING_SECONDS = 1.0  # remote audio is drained as it arrives (the thread wakes on each message)
INGEST_MESSAGE_BYTES = 256 * 1024  # > 1 s of 48 kHz stereo 16-bit: more would not fit the ring anyway
VRCHAT_PORT = OSC_DEFAULT_PORTS["vrchat"]


class Daemon:
    """One running ser-daemon.

    Args:
        config: what to do.
        bundle: the model's metadata.
        classifier: the loaded model.
        out: where ``--print`` lines go.
        status_out: where the live status line goes (only if a terminal).
        profile: the user's personal profile, for the local inputs (not ingest streams:
            those are other people).
        profile_path: where that profile is kept (the learned baseline is saved there at exit).
    """

    def __init__(
        self,
        config: DaemonConfig,
        bundle: ModelBundle,
        classifier: Classifier,
        out: TextIO | None = None,
        status_out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        profile: Profile | None = None,
        profile_path: Path | None = None,
    ) -> None:
        self.config = config
        self.profile = profile
        self.profile_path = profile_path
        self.profile_name = config.profile if profile is not None else None
        self.calibration: Calibration | None = None  # the web page's Calibrate (with --web)
        self.bundle = bundle
        self.classifier = classifier
        self.out = out if out is not None else sys.stdout  # None where the process has no stdout (>&-)
        self.status_out = status_out if status_out is not None else sys.stderr
        self.clock = clock
        self.engine = Engine(bundle, classifier, config.analysis, self._emit, clock=clock, profile=profile,
                             keep_running=config.ingest is not None)
        self.engine.on_status = self._on_status
        self.engine.on_profile_applied = self._on_profile_applied
        self.stats = StageStats()
        self.mapping: ExpressionMapping = load_mapping(config.mapping, bundle.labels)
        self.osc = (
            OscSender(
                (t, make_profile(t.profile, bundle.labels, bundle=config.osc_format == "bundle",
                                 vrchat_prefix=config.vrchat_prefix, max_hz=config.vrchat_max_hz,
                                 vrchat_params=config.vrchat_params, vrchat_table=self.mapping.vrchat,
                                 targets=self.mapping.targets))
                for t in config.osc
            )
            if config.osc
            else None
        )
        self.vrchat = VRChatSession(config, self.osc, VRCHAT_PORT, self._note, self._on_vrchat_change)
        self.ws: WsBroadcaster | None = None
        self.exit_code = 0
        self.ingest: IngestServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requests = 0
        self._stopped = threading.Event()  # set when the clean stop is done (a console handler waits on it)
        self._processing_started = False
        # A start-up step given up for a stop (an mDNS announcement half done) still runs in a thread
        # of its own, and its library's exit hook would hold the exit for ~0.5 s: the CLI leaves at once.
        self.left_work_behind = False
        self.console = ConsoleOutput(self.out, self.status_out, quiet=config.quiet, on_closed=self._on_output_closed,
                                     lines_on_out=config.print_states or config.jsonl)
        if config.print_states or config.jsonl:
            self.console.check_writable()
        self._build_streams()
        self._configure_profiles()

    @property
    def streams(self) -> list[Stream]:
        """The engine's streams (the processing thread owns the list)."""
        return self.engine.streams

    # -- set-up -------------------------------------------------------------
    def _build_streams(self) -> None:
        cfg = self.config
        names: set[str] = set()

        def unique(name: str) -> str:
            base, k = name, 2
            while name in names:
                name, k = f"{base}-{k}", k + 1
            names.add(name)
            return name

        files: list[FileSource] = []
        for path in cfg.inputs:
            samples, rate = open_wav(path)  # read a block at a time while it replays
            ring = AudioRing(int(rate * RING_SECONDS), samples.shape[1])
            block = int(round(rate * cfg.block_ms / 1000.0))
            name = unique(Path(path).stem or "file")
            src = FileSource(samples, rate, ring, block, loop=cfg.loop, name=name)
            files.append(src)
            self.engine.add(name, src, ring, rate, fast=cfg.fast)
            log.info("input %s: %.2f s, %d Hz, %d ch", path, len(samples) / rate, rate, samples.shape[1])
        # All paced files share one clock thread, as the channels of one sound card would.
        self._replay = PacedReplay(files, cfg.block_ms / 1000.0, self.engine.wake.set) if files and not cfg.fast else None
        if isinstance(cfg.device, tuple):
            devices: tuple = cfg.device
        else:
            devices = (cfg.device,) if not cfg.inputs and cfg.ingest is None else ()
        for wanted in devices:
            dev = resolve_device(wanted, cfg.host_api)
            name = unique("mic")
            src = DeviceSource(
                dev, RING_SECONDS, self.engine.wake.set, samplerate=cfg.samplerate, channels=cfg.channels,
                block_ms=cfg.block_ms,
                on_status=lambda status, detail, n=name: self.engine.report_status(n, status, detail),
            )
            self.engine.add(name, src, src.ring, src.rate)
            log.info("input device %d (%s): %d Hz, %d ch", dev.index, dev.label, src.rate, src.channels)

    def _add_ingest_stream(self, source: IngestSource) -> None:
        """A remote client started a stream (event loop thread): hand it to the processing thread."""
        self.engine.add_remote(source.name, source, source.ring, source.rate)
        log.info("ingest stream %s: %d Hz, %d ch", source.name, source.rate, source.channels)

    def _configure_profiles(self) -> None:
        """With several streams: generic OSC carries the stream in its addresses; avatars follow the first."""
        if self.osc is None:
            return
        multi = len(self.streams) > 1 or self.config.ingest is not None
        first = self.streams[0].name if self.streams else None
        for p in self.osc.profiles:
            if isinstance(p, GenericProfile):
                p.per_stream = multi
            elif multi:
                p.follow_stream = first

    def _warm_up(self) -> None:
        """Every batch size the streams can need, built before audio flows (see :meth:`Engine.warm_up`)."""
        remote = min(self.config.max_streams, 8) if self.config.ingest is not None else 1
        self.engine.warm_up(max(len(self.streams), remote))

    def speaker_estimate(self) -> tuple[Any, float] | None:
        """The live speaker baseline of the local input that heard most voice (see :meth:`Engine.speaker_estimate`)."""
        return self.engine.speaker_estimate()

    def hello(self) -> dict:
        a = self.config.analysis
        msg = hello_json(
            labels=self.bundle.labels,
            model=self.bundle.name,
            sample_rate=self.bundle.features.sample_rate,
            window_ms=self.bundle.window_s * 1000.0,
            hop_ms=a.hop_ms,
            streams=[s.name for s in self.streams],
            profile=self.profile_name,
        )
        if self.vrchat.active:
            msg["vrchat"] = self.vrchat.status.facts.to_json()
        return msg

    # -- running ------------------------------------------------------------
    def run(self) -> int:
        """Run until the inputs end or a signal arrives; return the exit code."""
        return asyncio.run(self._main())

    async def _main(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # Not in the main thread (library use) nothing is installed: the caller stops us with stop().
        # Until here (and again after the clean stop) ser-daemon's start-up handlers end the process
        # at once: no output had been opened yet (ser_daemon.app.startup).
        hand_back = install_stop_handlers(self._loop, self.request_stop, self._stopped)
        processing: threading.Thread | None = None
        try:
            cfg = self.config
            self._announce_osc()
            if cfg.ws is not None or cfg.web is not None:
                policy = AccessPolicy(
                    max_clients=cfg.max_clients,
                    max_message_bytes=cfg.max_message_bytes,
                    token=cfg.ws_token,
                    allowed_origins=cfg.ws_allow_origin,
                )
                # One tick can emit a state for every stream at once (hundreds of ingest streams ending
                # together): a client that reads promptly must not lose any of them to its queue bound.
                burst = cfg.max_streams if cfg.ingest is not None else len(self.streams)
                self.ws = WsBroadcaster(self.hello(), queue_len=cfg.ws_queue + burst, policy=policy)
                if cfg.ws is not None:
                    await self.ws.start(cfg.ws)
                if cfg.web is not None:
                    port = await self.ws.start(cfg.web, web=True)
                    self._offer_calibration()
                    self._note(f"web view: http://{cfg.web.host}:{port}/")
                if self.config.wait_clients:
                    log.info("waiting for %d WebSocket client(s)", self.config.wait_clients)
                    await self._unless_stopped(self.ws.wait_for_clients(self.config.wait_clients))
            if cfg.ingest is not None:
                policy = AccessPolicy(max_clients=cfg.max_clients, max_message_bytes=max(cfg.max_message_bytes, INGEST_MESSAGE_BYTES),
                                      token=cfg.ws_token, allowed_origins=cfg.ws_allow_origin)
                self.ingest = IngestServer(policy, self._add_ingest_stream, self.engine.is_live,
                                           self.engine.wake.set, ring_seconds=INGEST_RING_SECONDS,
                                           max_streams=cfg.max_streams)
                await self.ingest.start(cfg.ingest)
            if not self._stop.is_set():
                await self._unless_stopped(self.vrchat.start())  # OSCQuery: ~3 s of mDNS probing
            if not self._stop.is_set():
                await asyncio.to_thread(self._warm_up)
                if cfg.jsonl:
                    self._print(dumps(self.hello()))
                for st in self.streams:
                    if isinstance(st.source, DeviceSource):
                        st.source.start()
                if self._replay is not None:
                    self._replay.start()
                processing = threading.Thread(target=self._process_loop, name="ser-processing", daemon=True)
                self._processing_started = True
                processing.start()
                await self._stop.wait()
        finally:
            try:
                await self._shutdown(processing)
            finally:
                hand_back()  # before asyncio.run closes the loop, which would leave SIG_DFL behind
        return self.exit_code

    async def _unless_stopped(self, step: Coroutine[Any, Any, None]) -> None:
        """Await a start-up step, but drop it as soon as a stop is asked for: every stop ends within 1 s."""
        task = asyncio.ensure_future(step)
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                self.left_work_behind = True
        if not task.cancelled():
            task.result()  # its error, if it failed

    def _offer_calibration(self) -> None:
        """The web page's Calibrate records from the first local input (see :mod:`ser_daemon.profiles.calibration`)."""
        from ..model.inference import load_classifier
        from ..profiles.calibration import Calibration

        assert self.ws is not None and self._loop is not None
        local = [st for st in self.streams if st.local]
        first = local[0] if local else None
        self.calibration = Calibration(
            self.bundle, first.name if first else None, first.proc.in_rate if first else 0, self._loop,
            self.ws.send_to, self._use_calibrated_profile,
            lambda: load_classifier(self.bundle, self.config.backend, num_threads=1),
        )
        self.engine.on_samples = self.calibration.feed
        self.ws.controls["calibrate"] = self.calibration.handle
        self.ws.on_client_gone = self.calibration.client_gone

    def _use_calibrated_profile(self, profile: Profile, path: Path, name: str, stream: str) -> None:
        """A profile the page just made (event loop thread): the processing thread switches the stream to it."""
        self.profile, self.profile_path, self.profile_name = profile, path, name
        self.engine.swap_profile(stream, profile)

    def _on_profile_applied(self, stream: str) -> None:
        """Processing thread: the stream reads with the new profile from now on; tell the clients."""
        log.info("stream %s now uses profile %s", stream, self.profile_name)
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._announce_profile, stream)
            except RuntimeError:
                pass

    def _announce_profile(self, stream: str) -> None:
        """Event loop thread: new clients' hello names the profile; every client hears of the switch."""
        from ..profiles.calibration import active_json

        if self.ws is not None:
            self.ws.hello_text = dumps(self.hello())
            self.ws.broadcast_message(active_json(self.profile_name or "", stream))

    def _announce_osc(self) -> None:
        """Start-up: one line per OSC target, saying where it goes (VRChat's own line follows once known)."""
        if self.osc is None:
            self._note("OSC: off")
            return
        for target, p in zip(self.osc.targets, self.osc.profiles):
            what = {"vrchat": "VRChat avatar parameters", "vxp": "VXP avatar parameters", "vmc": "VMC blendshapes",
                    }.get(p.name, "OSC (generic scheme)")
            self._note(f"OSC: {what} to {target}")

    def _note(self, line: str) -> None:
        """One line for people on the status terminal (start-up facts); never on stdout, nothing with --quiet."""
        if not self.config.quiet:
            self.console.note(line)

    def _on_vrchat_change(self, facts: VRChatFacts) -> None:
        """What is known about VRChat changed (event loop thread): tell the web view's clients."""
        if self.ws is not None:
            self.ws.hello_text = dumps(self.hello())
            self.ws.broadcast_message(facts.to_json())
        if self.config.jsonl:
            self._print(dumps(facts.to_json()))

    def stop(self) -> None:
        """Ask the daemon to stop (thread-safe; harmless once it has stopped)."""
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop is closed: the daemon ended on its own meanwhile
                pass

    def request_stop(self, request: StopRequest) -> None:
        """A signal or console event asks us to stop (event loop thread); a second one forces it."""
        self._stop_requests += 1
        if self._stop_requests > 1:
            log.warning("%s again: exiting now", request.reason)
            os._exit(request.exit_code or 1)
        log.info("%s: stopping", request.reason)
        if self.exit_code == 0:
            self.exit_code = request.exit_code
        assert self._stop is not None
        self._stop.set()

    async def _shutdown(self, processing: threading.Thread | None) -> None:
        if self._replay is not None:
            self._replay.stop()
        for st in self.streams:
            st.source.stop()
        self.engine.stop()
        if processing is not None:
            await asyncio.to_thread(processing.join, 1.0)
            if processing.is_alive():
                log.warning("processing thread did not stop within 1 s")
        elif not self._processing_started:
            # Stopped before audio flowed: the outputs exist, so they still get the final state.
            self.engine.emit_final_states()
        if self.ingest is not None:
            await self.ingest.close()
        if self.ws is not None:
            await self.ws.flush(0.3)
            await self.ws.close()
        if self.osc is not None:
            self.osc.close()
        await self.vrchat.close()
        self.console.end_status()
        self._stopped.set()

    # -- processing thread ----------------------------------------------------
    def _process_loop(self) -> None:
        try:
            self.engine.run()
        except Exception:
            log.exception("processing failed")
            self.exit_code = 1
        finally:
            self.stop()

    def _on_status(self, stream: str, status: str, detail: str) -> None:
        """An input's health changed (relayed by the engine): every output hears of it."""
        if self.osc is not None:
            self.osc.send_status(stream, status)
        if self.ws is not None and self._loop is not None:
            msg = status_json(stream, status, detail, time.monotonic())
            try:
                self._loop.call_soon_threadsafe(self.ws.broadcast_message, msg)
            except RuntimeError:
                pass
        if self.config.print_states:
            self._print(f"[{stream}] status: {status} ({detail})")
        if self.config.jsonl:
            self._print(dumps(status_json(stream, status, detail, time.monotonic())))

    def _emit(self, state: EmotionState) -> None:
        t0 = time.perf_counter()
        if not self.vrchat.input.open:
            state = silenced(state)
        weights = self.mapping.all_weights(state.smoothed)
        if self.osc is not None:
            self.osc.send_state(state, weights, time.monotonic())
        if self.ws is not None and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self.ws.broadcast, state, weights)
            except RuntimeError:
                pass  # loop already closed during shutdown
        send_ms = (time.perf_counter() - t0) * 1000.0
        if not state.final:
            self.stats.record(state, send_ms)
        if self.config.print_states:
            self._print(format_state(state))
        if self.config.jsonl:
            self._print(dumps(state_json(state, 0, weights)))
        self._status_line(state)

    def _print(self, line: str) -> None:
        self.console.line(line)

    def _on_output_closed(self, exc: BaseException, reader_gone: bool) -> None:
        """The ``--print``/``--jsonl`` reader went away (``| head``), or stdout failed (a full disk): stop.

        A reader that went away is the documented 141; a stdout that fails is one error line and exit 1.
        """
        if reader_gone:
            log.info("stdout closed (%s): stopping", type(exc).__name__)
            code = EXIT_BROKEN_PIPE
        else:
            log.error("cannot write to stdout (%s): stopping", getattr(exc, "strerror", None) or exc)
            code = 1
        if self.exit_code == 0:
            self.exit_code = code
        self.stop()

    def _status_line(self, state: EmotionState) -> None:
        note = self.vrchat.status.facts.short() if self.vrchat.active else ""
        self.console.status(state, len(self.ws.clients) if self.ws is not None else 0, note)

    def write_stats(self, path: str | Path) -> None:
        """Write the per-stage timing summary as JSON."""
        data = {
            "backend": getattr(self.classifier, "backend", "?"),
            "model": self.bundle.name,
            "decisions": self.stats.decisions,
            "stages": self.stats.summary(),
            "streams": self.engine.stream_stats(),
        }
        if self.vrchat.link is not None:
            data["vrchat_listener"] = self.vrchat.link.stats()
        try:
            Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:  # checked at start-up; a full disk now costs the statistics, not the exit
            log.error("cannot write the statistics to %s: %s", path, exc.strerror or exc)
