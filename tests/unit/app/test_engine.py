"""The engine without the daemon around it: streams in, states out, across threads."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np

from conftest import timeout
from helpers import add_fast_file, in_thread
from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.app.engine import Engine
from ser_daemon.model.inference import load_classifier
from ser_daemon.net.ingest import IngestSource
from ser_daemon.model.bundle import load_bundle
from ser_daemon.core.state import EmotionState

RATE = 16000


def _voice(seconds: float, seed: int) -> np.ndarray:
    """A voiced-looking tone with a little noise (the gate opens on it)."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * (140 + 20 * seed) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)[:, None]


def _engine(bundle_dir: Path, states: list[EmotionState], **kw) -> Engine:
    b = load_bundle(bundle_dir)
    return Engine(b, load_classifier(b, "litert"), AnalysisSettings(drop_stale=False), states.append, **kw)


def _file(engine: Engine, name: str, seconds: float, seed: int) -> None:
    add_fast_file(engine, name, _voice(seconds, seed), RATE)


def _start(engine: Engine) -> threading.Thread:
    return in_thread(engine.run)


def test_local_streams_run_to_their_end_with_one_final_state_each(profile_bundle: Path) -> None:
    states: list[EmotionState] = []
    engine = _engine(profile_bundle, states)
    _file(engine, "a", 4.0, 1)
    _file(engine, "b", 3.0, 2)
    t = _start(engine)
    t.join(timeout(60))
    assert not t.is_alive(), "the engine must return once every input has ended"
    finals = Counter(s.stream for s in states if s.final)
    assert finals == {"a": 1, "b": 1}
    decided = Counter(s.stream for s in states if not s.final)
    stats = engine.stream_stats()
    # One decision per hop once a window is full: 4 s and 3 s at the default hop.
    hop = AnalysisSettings().hop_ms / 1000
    assert decided["a"] >= int((4.0 - 2.0) / hop) and decided["b"] >= int((3.0 - 2.0) / hop)
    # Its sequence numbers count every state it sent, the final one included.
    assert stats["a"]["decisions"] == decided["a"] + 1 and stats["b"]["decisions"] == decided["b"] + 1
    assert decided["a"] > decided["b"]
    for name in ("a", "b"):  # nothing after a stream's final state, and that state rests the face
        last = [s for s in states if s.stream == name][-1]
        assert last.final and last.label == "neutral"
    assert engine.speaker_estimate() is not None  # the local inputs' voice was learned


def test_remote_streams_come_and_go_while_it_keeps_running(profile_bundle: Path) -> None:
    states: list[EmotionState] = []
    engine = _engine(profile_bundle, states, keep_running=True)
    t = _start(engine)
    try:
        src = IngestSource("guest", RATE, 1, 1.0)
        engine.add_remote("guest", src, src.ring, RATE)
        assert engine.is_live("guest")
        voice = _voice(3.0, 3)[:, 0]
        for k in range(0, len(voice), 320):  # 20 ms messages, as a client sends them
            src.write_mono(voice[k:k + 320])
            engine.wake.set()
            if k % 3200 == 0:
                threading.Event().wait(0.01)  # let the loop drain the 1 s ring
        src.stop()
        for _ in range(400):
            if not engine.is_live("guest"):
                break
            threading.Event().wait(0.025)
        assert not engine.is_live("guest") and engine.streams == []
        assert [s.final for s in states if s.stream == "guest"][-1] is True
        assert sum(1 for s in states if s.stream == "guest" and not s.final) >= 2
        assert engine.speaker_estimate() is None  # a guest's voice is not the user's
        assert t.is_alive(), "with keep_running the loop waits for the next remote stream"
    finally:
        engine.stop()
        t.join(timeout(10))
    assert not t.is_alive()


def _lost_input_relaxes_at_once(engine: Engine, states: list[EmotionState]) -> None:
    """A lost input's face relaxes at once (an interrupt state), and its status reaches on_status."""
    relayed: list[tuple[str, str, str]] = []
    engine.on_status = lambda *a: relayed.append(a)
    engine.report_status("mic", "no_audio", "device gone")
    t = _start(engine)
    for _ in range(400):
        if relayed:
            break
        threading.Event().wait(0.025)
    engine.stop()
    t.join(timeout(10))
    assert not t.is_alive()
    assert relayed == [("mic", "no_audio", "device gone")]
    interrupts = [s for s in states if s.stream == "mic" and not s.final]
    assert interrupts and interrupts[0].label == "neutral"
    assert [s.final for s in states].count(True) == 1


def test_a_lost_device_relaxes_its_face_at_once_and_the_status_is_relayed(tiny_bundle: Path) -> None:
    states: list[EmotionState] = []
    engine = _engine(tiny_bundle, states, keep_running=True)
    _file(engine, "mic", 0.5, 4)
    _lost_input_relaxes_at_once(engine, states)


def test_the_model_is_warmed_for_every_batch_bucket(tiny_bundle: Path) -> None:
    states: list[EmotionState] = []
    engine = _engine(tiny_bundle, states)
    seen: list[int] = []
    real = engine.classifier.predict
    engine.classifier.predict = lambda x: (seen.append(len(x)), real(x))[1]  # type: ignore[method-assign]
    engine.warm_up(5)
    assert seen == [1, 2, 4, 5]


# -- the same loop on the stand-in classifier (fast tier, and mutation testing of the engine) ----------


def _stub_engine(states: list[EmotionState], **kw) -> Engine:
    from fakes import StubClassifier, stub_bundle

    b = stub_bundle()
    return Engine(b, StubClassifier(b), AnalysisSettings(drop_stale=False), states.append, **kw)


def _tone_file(engine: Engine, name: str, seconds: float, level: float) -> None:
    from fakes import tone

    add_fast_file(engine, name, tone(3000.0, seconds, RATE, level)[:, None], RATE)


def test_the_loop_decides_every_hop_batches_the_streams_and_ends_each_with_one_final_state() -> None:
    """Two 3 s files on the stand-in model (1 s windows, 250 ms hop): loud tone reads angry."""
    states: list[EmotionState] = []
    engine = _stub_engine(states)
    _tone_file(engine, "loud", 3.0, 0.3)
    _tone_file(engine, "soft", 2.0, 0.3)
    t = _start(engine)
    t.join(timeout(30))
    assert not t.is_alive(), "the engine must return once every input has ended"
    decided = Counter(s.stream for s in states if not s.final)
    # Decision k falls when window + k * hop samples have arrived: 1 + (3 - 1) / 0.25 = 9 and 5.
    assert decided == {"loud": 9, "soft": 5}
    assert Counter(s.stream for s in states if s.final) == {"loud": 1, "soft": 1}
    assert engine.stream_stats() == {"loud": {"decisions": 10, "dropped_windows": 0, "late": 0, "overruns": 0},
                                     "soft": {"decisions": 6, "dropped_windows": 0, "late": 0, "overruns": 0}}
    loud = [s for s in states if s.stream == "loud"]
    assert [s.seq for s in loud] == list(range(10)) and loud[-1].final and loud[-1].label == "neutral"
    assert any(s.label == "angry" for s in loud[:-1])  # the stand-in reads a loud 3 kHz tone as angry
    assert max(engine.classifier.batches) == 2  # both streams' due windows went in one call
    assert engine.streams and all(st.done for st in engine.streams)


def test_a_lost_input_relaxes_its_face_at_once_on_the_stand_in() -> None:
    states: list[EmotionState] = []
    engine = _stub_engine(states, keep_running=True)
    _tone_file(engine, "mic", 0.5, 0.3)
    _lost_input_relaxes_at_once(engine, states)
