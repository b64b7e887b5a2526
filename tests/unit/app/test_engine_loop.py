"""The engine's loop on the stand-in classifier: what a host sees of it.

Fast tests (no TensorFlow, no process) of the paths the daemon and the cluster replicas rely on:
remote streams that come and go, personal profiles per stream and swapped while running, the
polling of idle devices, stop paths and final states, overruns, warm-up, the speaker baseline
worth saving, and the memory given back after a wave of stream ends.  Every wait is bounded.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from typing import Callable

import numpy as np
import pytest

from conftest import timeout
from fakes import LABELS, StubClassifier, profile_reading, stub_bundle, tone
from helpers import add_fast_file, in_thread, wait_until
from ser_daemon.app.engine import Engine
from ser_daemon.core.pipeline import MAX_BATCH
from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.core.speaker_norm import SpeakerNormSettings
from ser_daemon.core.state import EmotionState
from ser_daemon.model.bundle import ModelBundle
from ser_daemon.net.ingest import IngestSource

RATE = 16000
SETTINGS = AnalysisSettings(drop_stale=False)  # 250 ms hop; the stand-in's window is 1 s
NORMED = dataclasses.replace(stub_bundle(), speaker_norm=SpeakerNormSettings(prior=(0.0,) * 64, prior_frames=10.0))


class Recording(StubClassifier):
    """The stand-in, recording the dtypes it was given and the bucket releases the engine asked for."""

    def __init__(self, bundle: ModelBundle) -> None:
        super().__init__(bundle)
        self.dtypes: list[np.dtype] = []
        self.released: list[int] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.dtypes.append(batch.dtype)
        return super().predict(batch)

    def release_batches_above(self, n: int) -> int:
        self.released.append(n)
        return 0


class PolledEvent(threading.Event):
    """A source's ``finished`` flag that notes each time the loop looks at it (once per tick)."""

    def __init__(self) -> None:
        super().__init__()
        self.polls: list[float] = []

    def is_set(self) -> bool:
        self.polls.append(time.monotonic())
        return super().is_set()


def engine_on_stub(states: list[EmotionState], bundle: ModelBundle | None = None, **kw) -> Engine:
    b = bundle if bundle is not None else stub_bundle()
    return Engine(b, Recording(b), SETTINGS, states.append, **kw)


def device(engine: Engine, name: str, ring_seconds: float = 2.0) -> IngestSource:
    """A local input filled from outside the loop (as a sound card's callback does)."""
    src = IngestSource(name, RATE, 1, ring_seconds)
    engine.add(name, src, src.ring, RATE)
    return src


def fast_file(engine: Engine, name: str, seconds: float) -> None:
    add_fast_file(engine, name, tone(3000.0, seconds, RATE, 0.3)[:, None], RATE)


def start(engine: Engine) -> threading.Thread:
    return in_thread(engine.run)


def finish(engine: Engine, t: threading.Thread) -> None:
    engine.stop()
    t.join(timeout(10))
    assert not t.is_alive(), "stop() must end the loop"


def run_to_end(engine: Engine, why: str) -> None:
    """Run the loop until it returns by itself (every input ended); stop it and fail if it does not."""
    t = start(engine)
    t.join(timeout(30))
    if t.is_alive():
        finish(engine, t)
        pytest.fail(why)


def wait_for(t: threading.Thread, cond: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Wait until ``cond()``; give up at once if the loop's thread died (a failing test, not a long wait)."""
    wait_until(lambda: cond() or not t.is_alive(), seconds, poll_s=0.01)
    return bool(cond())


def read_as(state: EmotionState) -> str:
    """What the model (or the stream's personal head) said about this window, before smoothing."""
    return state.labels[int(np.argmax(state.raw))]


def decided(states: list[EmotionState], stream: str) -> list[EmotionState]:
    return [s for s in list(states) if s.stream == stream and not s.final]


def test_warm_up_runs_every_batch_bucket_once_in_float32() -> None:
    for streams, sizes in ((5, [1, 2, 4, 5]), (4, [1, 2, 4]), (1, [1]), (0, [1]), (10**6, None)):
        engine = engine_on_stub([])
        engine.warm_up(streams)
        got = engine.classifier.batches
        if sizes is None:  # capped at the largest batch the pipeline ever makes
            sizes = [1 << k for k in range(MAX_BATCH.bit_length()) if 1 << k < MAX_BATCH] + [MAX_BATCH]
        assert got == sizes, streams
        assert set(engine.classifier.dtypes) == {np.dtype(np.float32)}


def test_a_file_stream_that_ends_first_does_not_hold_up_the_others() -> None:
    """The short file is listed first; the other still runs to its end, each with its own final state."""
    states: list[EmotionState] = []
    engine = engine_on_stub(states, clock=lambda: 123.0)
    fast_file(engine, "short", 1.25)
    fast_file(engine, "long", 2.0)
    assert engine.is_live("short") and engine.is_live("long") and not engine.is_live("other")
    tapped: dict[str, list[np.ndarray]] = {"short": [], "long": []}
    engine.on_samples = lambda name, x: tapped[name].append(x.copy())
    run_to_end(engine, "the loop must return once every input has ended")
    assert Counter(s.stream for s in states if not s.final) == {"short": 2, "long": 5}
    assert Counter(s.stream for s in states if s.final) == {"short": 1, "long": 1}
    # Time is the injected clock's, and a --fast file is pumped one block (320 frames) per tick:
    # the audio tap sees every frame once, in order, in the file's own blocks.
    assert {s.emitted_time for s in states} == {123.0}
    assert [len(x) for x in tapped["long"]] == [320] * 100
    np.testing.assert_array_equal(np.concatenate(tapped["long"])[:, 0], tone(3000.0, 2.0, RATE, 0.3))
    assert engine.speaker_estimate() is None  # this model has no speaker normalisation: nothing to save


def test_a_device_stream_ends_when_its_source_finishes() -> None:
    states: list[EmotionState] = []
    engine = engine_on_stub(states)
    mic = device(engine, "mic")
    mic.write_mono(tone(3000.0, 1.5, RATE, 0.3))
    mic.stop()
    run_to_end(engine, "a device whose source finished must end, and with it the loop")
    assert [s.final for s in states] == [False, False, False, True]
    assert engine.stream_stats() == {"mic": {"decisions": 4, "dropped_windows": 0, "late": 0, "overruns": 0}}


def test_the_tick_hook_follows_each_ticks_states_and_the_final_ones() -> None:
    """A host that batches per tick (the multiplexed ingest) sends after on_tick_end: it must see every state first."""
    events: list[str] = []
    engine = Engine(stub_bundle(), Recording(stub_bundle()), SETTINGS,
                    lambda st: events.append("final" if st.final else "state"))
    engine.on_tick_end = lambda: events.append("tick")
    mic = device(engine, "mic")
    mic.write_mono(tone(3000.0, 1.5, RATE, 0.3))
    mic.stop()
    run_to_end(engine, "a device whose source finished must end, and with it the loop")
    assert events.count("state") == 3 and events.count("final") == 1
    first_tick = events.index("tick")
    assert events[first_tick - 1] == "final"  # the states of that tick, its final one included, then its end
    assert "state" not in events[first_tick:] and events[-1] == "tick"

    # Running on (ingest): each tick's states are followed by its end; stopped, the final states
    # still come before one last tick end.
    events.clear()
    engine = Engine(stub_bundle(), Recording(stub_bundle()), SETTINGS,
                    lambda st: events.append("final" if st.final else "state"), keep_running=True)
    engine.on_tick_end = lambda: events.append("tick")
    mic = device(engine, "a")
    t = start(engine)
    mic.write_mono(tone(3000.0, 1.5, RATE, 0.3))
    # While it runs, the tick that decided states ends with the hook (not only the stop does).
    assert wait_for(t, lambda: "state" in events and "tick" in events[events.index("state"):]), events
    finish(engine, t)
    assert events[-2:] == ["final", "tick"]


def test_an_idle_device_is_polled_about_twenty_times_a_second_neither_spinning_nor_stalling() -> None:
    states: list[EmotionState] = []
    engine = engine_on_stub(states, keep_running=True)
    mic = device(engine, "mic")
    mic.finished = PolledEvent()
    polls = mic.finished.polls
    t = start(engine)
    t0 = time.monotonic()
    time.sleep(0.6)
    n, elapsed = len(polls), time.monotonic() - t0
    # Audio written by a device callback (no wake-up) is still picked up within a few ticks.
    mic.write_mono(tone(3000.0, 1.0, RATE, 0.3))
    assert wait_for(t, lambda: len(decided(states, "mic")) == 1, 5.0)
    finish(engine, t)
    assert 3 <= n <= elapsed / 0.05 * 3 + 5, (n, elapsed)  # a 50 ms wait per idle tick


def test_remote_streams_come_and_go_without_the_users_profile() -> None:
    """A remote stream is somebody else: no personal head, no saved baseline; it is forgotten once it ended."""
    states: list[EmotionState] = []
    engine = engine_on_stub(states, NORMED, profile=profile_reading("happy"), keep_running=True)
    t = start(engine)
    try:
        guest = IngestSource("guest", RATE, 1, 3.0)
        engine.add_remote("guest", guest, guest.ring, RATE)
        assert engine.is_live("guest")
        guest.write_mono(tone(3000.0, 2.0, RATE, 0.3))
        engine.wake.set()
        assert wait_for(t, lambda: len(decided(states, "guest")) == 5)
        assert engine.speaker_estimate() is None  # the guest spoke, but the guest is not the user
        engine.swap_profile("guest", profile_reading("neutral"))  # only the user's own inputs take a profile
        guest.stop()
        assert wait_for(t, lambda: not engine.is_live("guest"))
        assert engine.streams == []
        assert t.is_alive(), "with keep_running the loop waits for the next remote stream"
    finally:
        finish(engine, t)
    guest_states = [s for s in states if s.stream == "guest"]
    assert [s.final for s in guest_states] == [False] * 5 + [True]
    assert {read_as(s) for s in guest_states[:-1]} == {"angry"}  # the model's reading, not the user's head


def test_profiles_apply_to_local_streams_and_a_swap_to_that_stream_alone() -> None:
    states: list[EmotionState] = []
    applied: list[str] = []
    engine = engine_on_stub(states, NORMED, profile=profile_reading("happy"), keep_running=True)
    mic, other = device(engine, "mic"), device(engine, "other")
    assert engine.is_live("mic")
    engine.on_profile_applied = applied.append
    t = start(engine)
    try:
        guest = IngestSource("guest", RATE, 1, 3.0)
        engine.add_remote("guest", guest, guest.ring, RATE)
        for src, seconds in ((mic, 1.0), (other, 1.0), (guest, 2.0)):
            src.write_mono(tone(3000.0, seconds, RATE, 0.3))
        assert wait_for(t, lambda: [len(decided(states, n)) for n in ("mic", "other", "guest")] == [1, 1, 5])
        engine.swap_profile("mic", profile_reading("neutral"))
        engine.swap_profile("guest", profile_reading("neutral"))
        assert wait_for(t, lambda: applied == ["mic"], 5.0)
        for src in (mic, other, guest):
            src.write_mono(tone(3000.0, 0.25, RATE, 0.3))
        assert wait_for(t, lambda: [len(decided(states, n)) for n in ("mic", "other", "guest")] == [2, 2, 6])
        # The baseline worth saving is the local input that heard most voice (not the remote guest,
        # and not the mic, whose reference restarted from the new profile's baseline).
        est = engine.speaker_estimate()
        assert est is not None
        ref, weight = est
        o = next(st.proc.speaker for st in engine.streams if st.name == "other")
        np.testing.assert_array_equal(ref, o.reference)
        assert weight == o.weight_frames
        # Streams made from now on start from the swapped profile, remote ones from none.
        assert engine.processor("later", RATE).head is not None
        assert engine.processor("later", RATE).head.probs(np.zeros(2)).argmax() == LABELS.index("neutral")
        assert engine.processor("remote", RATE, local=False).head is None
    finally:
        finish(engine, t)
    reads = {n: [read_as(s) for s in decided(states, n)] for n in ("mic", "other", "guest")}
    assert reads == {"mic": ["happy", "neutral"], "other": ["happy", "happy"], "guest": ["angry"] * 6}


def test_a_lost_input_relaxes_and_runs_on_without_any_hook_set() -> None:
    """No on_status, no on_profile_applied: the loop still relays, swaps and decides."""
    states: list[EmotionState] = []
    engine = engine_on_stub(states, keep_running=True)
    mic = device(engine, "mic")
    t = start(engine)
    try:
        engine.report_status("mic", "no_audio", "device gone")
        assert wait_for(t, lambda: len(decided(states, "mic")) == 1, 5.0)
        assert states[0].label == "neutral" and states[0].voice_active is False
        engine.swap_profile("mic", profile_reading("happy"))
        mic.write_mono(tone(3000.0, 1.0, RATE, 0.3))
        assert wait_for(t, lambda: len(decided(states, "mic")) == 2, 5.0)
        assert read_as(decided(states, "mic")[1]) == "happy"
    finally:
        finish(engine, t)


def test_frames_lost_while_an_input_was_away_are_counted_as_overruns() -> None:
    states: list[EmotionState] = []
    relayed: list[str] = []
    engine = engine_on_stub(states, keep_running=True)
    mic = device(engine, "mic", ring_seconds=1.0)
    engine.on_status = lambda stream, status, detail: relayed.append(status)
    t = start(engine)
    try:
        engine.report_status("mic", "no_audio", "device gone")
        assert wait_for(t, lambda: relayed == ["no_audio"], 5.0)
        mic.write_mono(tone(3000.0, 1.5, RATE, 0.3))  # the device is back: 0.5 s more than the ring holds
        assert wait_for(t, lambda: len(decided(states, "mic")) == 2, 5.0)
    finally:
        finish(engine, t)
    assert engine.stream_stats()["mic"]["overruns"] == RATE // 2


def test_stopping_emits_one_final_state_per_stream_once_even_if_an_output_fails(caplog) -> None:
    states: list[EmotionState] = []

    def emit(state: EmotionState) -> None:
        if state.final and state.stream == "a":
            raise OSError("output gone")
        states.append(state)

    b = stub_bundle()
    engine = Engine(b, Recording(b), SETTINGS, emit, keep_running=True)
    device(engine, "a")
    device(engine, "b")
    t = start(engine)
    with caplog.at_level(logging.ERROR, logger="ser_daemon.app.engine"):
        finish(engine, t)
    assert [(s.stream, s.final) for s in states] == [("b", True)]
    assert [r.getMessage() for r in caplog.records] == ["final state of a"]
    assert all(st.done for st in engine.streams)
    engine.emit_final_states()  # a second shutdown path (signal and loop end) sends nothing twice
    assert len(states) == 1 and len(caplog.records) == 1


@pytest.mark.parametrize("devices, ended_files, bucket", [(1, 2, 1), (2, 0, 2), (3, 1, 4)])
def test_after_a_wave_of_remote_ends_the_model_keeps_buffers_for_the_streams_still_running(
        devices: int, ended_files: int, bucket: int) -> None:
    states: list[EmotionState] = []
    engine = engine_on_stub(states, keep_running=True)
    for k in range(devices):
        device(engine, f"mic{k}")
    for k in range(ended_files):
        fast_file(engine, f"file{k}", 0.1)
    t = start(engine)
    try:
        guest = IngestSource("guest", RATE, 1, 1.0)
        engine.add_remote("guest", guest, guest.ring, RATE)
        guest.write_mono(tone(3000.0, 0.1, RATE, 0.3))
        guest.stop()
        engine.wake.set()
        # The release waits until no stream ended for a while (0.3 s), then runs once.
        assert wait_for(t, lambda: engine.classifier.released != [], 5.0)
    finally:
        finish(engine, t)
    assert engine.classifier.released == [bucket]


def test_with_keep_running_the_loop_outlives_its_inputs_and_waits_calmly() -> None:
    """The host keeps the loop for remote streams: it stays after every input ended, idles without
    spinning, and survives the memory trim on a model that has no buffers to release."""
    states: list[EmotionState] = []
    b = stub_bundle()
    engine = Engine(b, StubClassifier(b), SETTINGS, states.append, keep_running=True)
    fast_file(engine, "file", 0.3)
    t = start(engine)
    try:
        assert wait_for(t, lambda: any(s.final for s in states))
        time.sleep(0.2)
        assert t.is_alive(), "with keep_running the loop stays when every input has ended"
        idle = IngestSource("idle", RATE, 1, 1.0)
        idle.finished = PolledEvent()
        polls = idle.finished.polls
        engine.add_remote("idle", idle, idle.ring, RATE)
        assert wait_for(t, lambda: len(polls) > 0)
        t0, n0 = time.monotonic(), len(polls)
        time.sleep(0.6)
        n, elapsed = len(polls) - n0, time.monotonic() - t0
        idle.stop()
        engine.wake.set()
        assert wait_for(t, lambda: not engine.is_live("idle"))
        time.sleep(0.45)  # the memory trim runs 0.3 s after the last stream ended
        assert t.is_alive(), "the trim must cope with a model that has no buffers to release"
    finally:
        finish(engine, t)
    assert 3 <= n <= elapsed / 0.05 * 3 + 5, (n, elapsed)  # a 50 ms wait per idle tick, the ended file not pumped
