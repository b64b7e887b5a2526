"""Output and input edges that a fast test can pin: OSC send failures, PCM framing, the final state.

Everything talks to real sockets on 127.0.0.1 and runs the real daemon in-process with the
stand-in model of tests/fakes.py, so these run in the fast tier (no TensorFlow).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time

import numpy as np
import pytest

from conftest import timeout
from fakes import StubClassifier, stub_bundle, tone
from helpers import UdpReceiver
from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.app.config import DaemonConfig
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.outputs.osc_targets import OscTarget
from ser_daemon.net.ingest import IngestSource, ProtocolError
from ser_daemon.outputs.osc import OscSender
from ser_daemon.outputs.osc_schemes import GenericScheme
from tiny_model import write_wav


class _Packets(GenericScheme):
    """A profile that sends what it is given (to make the kernel refuse some datagrams)."""

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets = packets

    def encode(self, state, weights, now):  # type: ignore[no-untyped-def]
        return list(self.packets)


def test_osc_send_failures_are_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    rx = UdpReceiver()
    too_big = b"/x\x00\x00,b\x00\x00" + b"\x00" * 70000  # over UDP's 65507-byte limit: EMSGSIZE
    profile = _Packets([too_big, b"/ok\x00,\x00\x00\x00", too_big])
    sender = OscSender([(OscTarget(Endpoint("127.0.0.1", rx.port)), profile)])
    try:
        with caplog.at_level(logging.WARNING, logger="ser_daemon.outputs.osc"):
            for _ in range(3):
                sender.send_state(None, {}, 0.0)  # type: ignore[arg-type]
        assert (sender.sent, sender.errors) == (3, 6)
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and lines[0].startswith(f"OSC to 127.0.0.1:{rx.port} failed: ")
        assert lines[0].endswith("(further failures of this kind are counted, not logged)")
        got = rx.collect(time.monotonic() + timeout(2), stop_after_idle=0.2)
        assert [p for _, p in got] == [b"/ok\x00,\x00\x00\x00"] * 3
    finally:
        sender.close()
        rx.close()


def test_osc_status_and_follow_stream() -> None:
    rx = UdpReceiver()
    follow = _Packets([b"/f\x00\x00,\x00\x00\x00"])
    follow.follow_stream = "mic"
    sender = OscSender([(OscTarget(Endpoint("127.0.0.1", rx.port)), follow)])
    try:
        from test_messages import make_state

        sender.send_state(make_state(stream="other"), {}, 0.0)
        sender.send_state(make_state(stream="mic"), {}, 0.0)
        sender.send_status("mic", "no_audio")
        got = [p for _, p in rx.collect(time.monotonic() + timeout(2), stop_after_idle=0.2)]
        assert got == [b"/f\x00\x00,\x00\x00\x00", b"/ser/status\x00,s\x00\x00no_audio\x00\x00\x00\x00"]
        assert sender.sent == 2 and sender.errors == 0
    finally:
        sender.close()
        rx.close()


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_ingest_takes_only_whole_frames(channels: int) -> None:
    src = IngestSource("a", 16000, channels, 1.0)
    frame = np.arange(1, channels + 1, dtype="<i2") * 4096  # one frame, channels interleaved
    with pytest.raises(ProtocolError, match=f"whole frames of {2 * channels} bytes") as err:
        src.write_pcm(frame.tobytes()[:-2] if channels > 1 else b"\x00")
    assert err.value.code == 1007
    src.write_pcm(np.tile(frame, 3).tobytes())
    r = src.ring.read()
    # Downmixed on arrival: the ring holds the mean of each whole frame.
    assert src.frames_received == 3 and r.samples.shape == (3, 1)
    np.testing.assert_allclose(r.samples[:, 0], frame.astype(np.float32).mean() / 32768.0, rtol=1e-6)


def test_a_source_filled_from_outside_pumps_nothing_and_says_whether_it_goes_on() -> None:
    src = IngestSource("a", 16000, 1, 1.0)
    assert src.pump(4) is True and src.ring.read().samples.shape[0] == 0  # the client's messages fill it
    src.stop()
    assert src.pump(4) is False


def test_final_state_reaches_the_client_flagged(tmp_path) -> None:
    """On stop the last state a client gets is flagged final (not merely neutral by smoothing)."""
    from websockets.asyncio.client import connect

    from ser_daemon.app.daemon import Daemon

    # Ends loud: without the final state the last state would be angry, with voice.
    wav = write_wav(tmp_path / "clip.wav", np.concatenate([np.zeros(8000, np.float32), tone(3000, 1.75)]))
    bundle = stub_bundle()
    cfg = DaemonConfig(inputs=(wav,), fast=True, ws=Endpoint("127.0.0.1", 0), wait_clients=1, quiet=True,
                       print_states=True, analysis=AnalysisSettings(hop_ms=250.0))
    out = io.StringIO()
    daemon = Daemon(cfg, bundle, StubClassifier(bundle), out=out, status_out=io.StringIO())
    runner = threading.Thread(target=daemon.run, name="daemon-under-test")
    runner.start()
    try:
        deadline = time.monotonic() + timeout(20)
        while (daemon.ws is None or daemon.ws.port is None) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert daemon.ws is not None and daemon.ws.port is not None

        async def collect() -> list[dict]:
            msgs = []
            async with connect(f"ws://127.0.0.1:{daemon.ws.port}") as ws:
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout(20)))
                    msgs.append(msg)
                    if msg.get("final"):
                        return msgs

        msgs = asyncio.run(collect())
    finally:
        daemon.stop()
        runner.join(timeout(20))
    assert not runner.is_alive() and daemon.exit_code == 0
    states = [m for m in msgs if m["type"] == "state"]
    assert [m["seq"] for m in states] == list(range(len(states)))
    *decisions, last = states
    assert len(decisions) == 6  # 2.25 s of audio: windows ending at 1.0, 1.25, ..., 2.25 s
    assert all(not m["final"] for m in decisions) and decisions[-1]["label"] == "angry" and decisions[-1]["voice"]
    assert last["final"] is True and last["label"] == "neutral" and last["voice"] is False and last["raw"] is None
    printed = out.getvalue().splitlines()
    assert len(printed) == len(states) and printed[-1].endswith(" final") and " final" not in printed[-2]


def test_stopping_a_daemon_that_has_ended_is_harmless(tmp_path) -> None:
    """stop() after the daemon ended on its own (its loop closed) must not raise: a caller racing
    the end of a --fast replay did get 'Event loop is closed' (1 in ~40 runs of the test above)."""
    from ser_daemon.app.daemon import Daemon

    wav = write_wav(tmp_path / "clip.wav", tone(3000, 1.25))
    bundle = stub_bundle()
    cfg = DaemonConfig(inputs=(wav,), fast=True, ws=None, osc=(), quiet=True, analysis=AnalysisSettings(hop_ms=250.0))
    daemon = Daemon(cfg, bundle, StubClassifier(bundle), out=io.StringIO(), status_out=io.StringIO())
    runner = threading.Thread(target=daemon.run, name="daemon-under-test")
    runner.start()
    runner.join(timeout(20))
    assert not runner.is_alive() and daemon.exit_code == 0
    daemon.stop()
    daemon.stop()


def _state(stream: str):  # type: ignore[no-untyped-def]
    from ser_daemon.core.state import EmotionState

    return EmotionState(stream=stream, seq=0, labels=("neutral", "happy"), label="neutral", confidence=1.0, raw=(1.0, 0.0),
                        smoothed=(1.0, 0.0), voice_active=False, end_sample=0, audio_time=0.0, emitted_time=0.0)


class _Recorder:
    """An output that writes down what it hears, with the thread it heard it in."""

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    def send_state(self, state, weights, now):  # type: ignore[no-untyped-def]
        self.log.append((self.name, "state", state.stream, threading.current_thread().name))

    def send_status(self, stream, status, detail, now):  # type: ignore[no-untyped-def]
        self.log.append((self.name, "status", f"{stream}:{status}:{detail}", threading.current_thread().name))

    def close(self) -> None:
        self.log.append((self.name, "close", "", ""))


def test_the_fan_out_gives_every_output_each_state_and_status_in_order_then_closes_them() -> None:
    from ser_daemon.outputs.base import FanOut

    heard: list = []
    fan = FanOut([_Recorder("a", heard)])
    fan.add(_Recorder("b", heard))
    state = _state("mic")
    fan.send_state(state, {}, 1.0)
    fan.send_status("mic", "no_audio", "silent for 2 s", 2.0)
    fan.close()
    me = threading.current_thread().name
    assert heard == [("a", "state", "mic", me), ("b", "state", "mic", me),
                     ("a", "status", "mic:no_audio:silent for 2 s", me), ("b", "status", "mic:no_audio:silent for 2 s", me),
                     ("a", "close", "", ""), ("b", "close", "", "")]


def test_an_output_on_the_loop_hears_in_the_loop_thread_and_nothing_after_the_loop_closed() -> None:
    from ser_daemon.outputs.base import OnLoop, post_to_loop

    heard: list = []
    loop = asyncio.new_event_loop()
    ran = threading.Thread(target=loop.run_forever, name="the-loop")
    ran.start()
    try:
        out = OnLoop(_Recorder("ws", heard), loop)
        out.send_state(_state("s1"), {}, 0.0)
        out.send_status("s1", "ok", "", 0.0)
        done = threading.Event()
        assert post_to_loop(loop, done.set)
        assert done.wait(timeout(5))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        ran.join(timeout(5))
        loop.close()
    assert heard == [("ws", "state", "s1", "the-loop"), ("ws", "status", "s1:ok:", "the-loop")]
    assert post_to_loop(loop, heard.append, "late") is False and heard[-1] != "late"


def test_the_registry_builds_only_the_outputs_the_config_asks_for() -> None:
    from ser_daemon.app.outputs import OUTPUTS, OutputContext, build_outputs
    from ser_daemon.outputs.console import ConsoleOutput, JsonLines, StatusLine
    from ser_daemon.outputs.mapping import load_mapping

    labels = ("neutral", "happy")
    console = ConsoleOutput(io.StringIO(), io.StringIO(), quiet=True, on_closed=lambda exc, gone: None)
    cfg = DaemonConfig(inputs=(), osc=(), jsonl=True, print_states=False, ws=None)
    built = build_outputs(OutputContext(cfg, labels, load_mapping(None, labels), console, ("mic",),
                                        lambda: 0, lambda: ""))
    assert list(built) == ["jsonl", "status_line"] and list(OUTPUTS)[:2] == ["osc", "print"]
    assert isinstance(built["jsonl"], JsonLines) and isinstance(built["status_line"], StatusLine)
    cfg = DaemonConfig(inputs=(), osc=(OscTarget(Endpoint("127.0.0.1", 9), "generic"),), ws=None)
    built = build_outputs(OutputContext(cfg, labels, load_mapping(None, labels), console, ("a", "b"),
                                        lambda: 0, lambda: ""))
    try:
        assert isinstance(built["osc"], OscSender) and built["osc"].profiles[0].per_stream  # two streams
    finally:
        built["osc"].close()
