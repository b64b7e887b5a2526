"""Streams in, states out: the stream set and the processing loop, without the process around it.

The daemon (sound cards, files, ingest sockets, OSC, WebSocket, signals) and
any other host (a test, a cluster replica) drive the same loop: every tick it
reads each stream's ring, cuts windows, runs one batched inference for all
streams that have a window due, and hands every decided state to ``emit``.
What happens to a state (OSC, WebSocket, console) is the host's business.

Threads: :meth:`Engine.run` runs in one processing thread and owns the stream
list.  Other threads talk to it only through the thread-safe methods
(:meth:`add_remote`, :meth:`report_status`, :meth:`swap_profile`,
:meth:`stop`), which queue work and wake the loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from ..core.audio_format import AudioFormat
from ..core.pipeline import MAX_BATCH, StreamProcessor
from ..core.ringbuffer import AudioRing
from ..core.settings import AnalysisSettings
from ..core.state import EmotionState
from ..model.analyzer import Analyzer
from ..model.bundle import ModelBundle
from ..model.inference import Classifier
from ..profiles.store import VoiceProfile
from .memory import Trimmer, collect_and_trim

__all__ = ["Engine", "Stream", "StreamSource"]

log = logging.getLogger(__name__)


class StreamSource(Protocol):
    """What the engine needs of an input: to pump it (``--fast`` files), stop it and know it has ended."""

    finished: threading.Event

    def pump(self, max_blocks: int = 1) -> bool:
        """Write up to ``max_blocks`` blocks into the ring now; False once the input has ended.

        Only a stream marked ``fast`` is pumped; a source its own callback or thread fills
        writes nothing here.
        """

    def stop(self) -> None: ...


@dataclass(eq=False)
class Stream:
    """One input and its pipeline state.

    Attributes:
        fast: pumped by the loop itself as fast as it can go (``--fast`` file replay)
            instead of filled by a callback or a thread.
        remove_when_done: forget the stream once it ended (remote streams come and go).
        local: the user's own input (gets the personal profile, its baseline is saved).
    """

    name: str
    source: StreamSource
    ring: AudioRing
    proc: StreamProcessor
    fast: bool = False
    local: bool = True
    remove_when_done: bool = False
    done: bool = False


class Engine:
    """The stream set and the processing loop.

    Args:
        bundle: the model's metadata (labels, features, speaker statistics).
        classifier: the loaded model; one batched call per tick for all streams.
        analysis: hop, smoothing and voice-gate settings.
        emit: receives every state, in the processing thread.
        clock: the pipeline's clock (injected for tests).
        profile: the user's personal profile, for local streams only (remote
            streams are other people).
        keep_running: keep looping when every stream has ended (new remote
            streams may still arrive).
    """

    def __init__(
        self,
        bundle: ModelBundle,
        classifier: Classifier,
        analysis: AnalysisSettings,
        emit: Callable[[EmotionState], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        profile: VoiceProfile | None = None,
        keep_running: bool = False,
    ) -> None:
        self.bundle = bundle
        self.classifier = classifier
        self.analysis = analysis
        self.emit = emit
        self.clock = clock
        self.profile = profile
        self.keep_running = keep_running
        self.analyzer = Analyzer(classifier)
        self.streams: list[Stream] = []
        self.wake = threading.Event()
        # Hooks the host may set before run(): outputs for a status, a tap on the
        # audio (the web page's Calibrate), a note that a stream changed profile.
        self.on_status: Callable[[str, str, str], None] | None = None
        self.on_samples: Callable[[str, np.ndarray], None] | None = None
        self.on_profile_applied: Callable[[str], None] | None = None
        # Called after each tick's states (and after the final states at stop): a host that
        # batches per tick (the multiplexed ingest) sends what it gathered.
        self.on_tick_end: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._statuses: queue.SimpleQueue[tuple[str, str, str]] = queue.SimpleQueue()
        self._new_streams: queue.SimpleQueue[Stream] = queue.SimpleQueue()
        self._profile_swaps: queue.SimpleQueue[tuple[str, VoiceProfile]] = queue.SimpleQueue()
        self._live_names: set[str] = set()
        self._trimmer = Trimmer(trim_fn=self._release_and_trim)

    def _release_and_trim(self) -> bool:
        """After a wave of stream ends: drop inference buffers sized for more streams than remain, give pages back."""
        release = getattr(self.classifier, "release_batches_above", None)
        if release is not None:
            live = sum(1 for st in self.streams if not st.done)
            release(1 << max(0, live - 1).bit_length())  # the bucket the remaining streams fill
        return collect_and_trim()

    # -- set-up (before run) ---------------------------------------------------
    def processor(self, name: str, audio: AudioFormat | int, local: bool = True) -> StreamProcessor:
        """A pipeline for frames of ``audio`` (a bare ``int`` is a mono rate, Hertz)."""
        return StreamProcessor.from_bundle(name, self.bundle, self.analysis, audio, clock=self.clock,
                                           profile=self.profile if local else None)

    def add(self, name: str, source: StreamSource, ring: AudioRing, audio: AudioFormat | int, *,
            fast: bool = False) -> Stream:
        """A local input known at start-up; ``audio`` is the format of what ``ring`` holds."""
        st = Stream(name, source, ring, self.processor(name, audio, local=True), fast=fast)
        self.streams.append(st)
        self._live_names.add(name)
        return st

    def warm_up(self, streams: int) -> None:
        """Run the model once per batch size up to ``streams``, before audio flows.

        The first call of a batch size builds LiteRT buffers or traces the Keras graph
        (milliseconds to a second); doing it now keeps it out of the first decisions.
        """
        n = min(max(1, streams), MAX_BATCH)
        b = 1
        while True:
            self.classifier.predict(np.zeros((min(b, n), *self.bundle.input_shape), dtype=np.float32))
            if b >= n:
                break
            b *= 2

    # -- from any thread ---------------------------------------------------------
    def add_remote(self, name: str, source: StreamSource, ring: AudioRing, audio: AudioFormat | int) -> None:
        """A remote client started a stream: the loop takes it on its next tick and forgets it when it ends."""
        self._live_names.add(name)
        self._new_streams.put(Stream(name, source, ring, self.processor(name, audio, local=False), local=False,
                                     remove_when_done=True))
        self.wake.set()

    def is_live(self, name: str) -> bool:
        return name in self._live_names

    def report_status(self, stream: str, status: str, detail: str) -> None:
        """An input's health changed (a device supervisor thread): the loop relays it."""
        self._statuses.put((stream, status, detail))
        self.wake.set()

    def swap_profile(self, stream: str, profile: VoiceProfile) -> None:
        """From the next window on, the local ``stream`` reads with this profile's baseline and head."""
        self.profile = profile
        self._profile_swaps.put((stream, profile))
        self.wake.set()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()

    # -- the processing thread ----------------------------------------------------
    def run(self) -> None:
        """Process until :meth:`stop` or until every input has ended; then emit every final state."""
        try:
            self._run_until_stopped()
        finally:
            self.emit_final_states()

    def emit_final_states(self) -> None:
        """The neutral state of every stream still running: avatars must not freeze on an emotion."""
        for st in self.streams:
            if not st.done:
                st.done = True
                try:
                    self.emit(st.proc.final_state())
                except Exception:
                    log.exception("final state of %s", st.name)
        if self.on_tick_end is not None:
            self.on_tick_end()

    def _run_until_stopped(self) -> None:
        while not self._stop.is_set():
            # A --fast file is pumped as fast as it goes; once it has ended (an ingest server may keep
            # the daemon running) the loop waits for work again instead of spinning a core.
            if not any(st.fast and not st.done for st in self.streams):
                self.wake.wait(0.05)
                self.wake.clear()
            self._relay_statuses()
            self._apply_profile_swaps()
            while not self._new_streams.empty():
                self.streams.append(self._new_streams.get_nowait())
            work = []
            ended = []
            for st in self.streams:
                if st.done:
                    continue
                if st.fast:
                    more = st.source.pump(1)
                    finished = not more
                else:
                    finished = st.source.finished.is_set()  # a device never finishes by itself
                r = st.ring.read()
                if self.on_samples is not None and len(r.samples):
                    self.on_samples(st.name, r.samples)
                if len(r.samples) or r.lost:
                    work.extend((st.proc, d) for d in st.proc.feed(r.samples, r.start_index, st.ring.arrival_time, r.lost))
                if finished and st.ring.available == 0:
                    ended.append(st)
            for state in self.analyzer.decide(work):
                self.emit(state)
            for st in ended:
                st.done = True
                self.emit(st.proc.final_state())
                if st.remove_when_done:  # remote streams come and go: keep memory bounded
                    self.streams.remove(st)
                    self._live_names.discard(st.name)
                    self._trimmer.streams_ended()
            if self.on_tick_end is not None:
                self.on_tick_end()
            self._trimmer.maybe_trim()  # give freed buffers back to the OS (rate-limited)
            if not self.keep_running and self.streams and all(st.done for st in self.streams):
                return

    def _relay_statuses(self) -> None:
        while True:
            try:
                stream, status, detail = self._statuses.get_nowait()
            except queue.Empty:
                return
            if status == "no_audio":
                for st in self.streams:
                    if st.name == stream:
                        self.emit(st.proc.interrupt())  # relax the face now, not when audio returns
            if self.on_status is not None:
                self.on_status(stream, status, detail)

    def _apply_profile_swaps(self) -> None:
        while not self._profile_swaps.empty():
            stream, profile = self._profile_swaps.get_nowait()
            for st in self.streams:
                if st.name == stream and st.local:
                    st.proc.use_profile(profile)
                    if self.on_profile_applied is not None:
                        self.on_profile_applied(stream)

    # -- read-outs ----------------------------------------------------------------
    def speaker_estimate(self) -> tuple[np.ndarray, float] | None:
        """The live speaker baseline of the local input that heard most voice, with its weight.

        None when no local input heard voice (nothing learned worth saving).
        """
        local = [st.proc.speaker for st in self.streams
                 if st.local and st.proc.speaker is not None and st.proc.speaker.voiced_frames_seen]
        if not local:
            return None
        best = max(local, key=lambda sp: sp.voiced_frames_seen)
        return best.reference, best.weight_frames

    def stream_stats(self) -> dict[str, dict[str, int]]:
        return {st.name: st.proc.statistics() for st in self.streams}
