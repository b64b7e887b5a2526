"""``--mood`` and ``--session-log`` end to end in one process: the real daemon on the stand-in model.

A clip of 2 s of a loud 3 kHz tone (the stand-in hears ``angry``) and 3 s of silence, replayed
fast, with thresholds short enough for seconds (``disengaging`` after 1 s of silence once 1 s
was voiced).  The mood and event messages are read where an app reads them: a WebSocket client
on 127.0.0.1, ``--jsonl`` lines, generic OSC on a real UDP socket, and the session log read
back with :mod:`ser_daemon.sessions.records`.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from conftest import timeout
from fakes import StubClassifier, stub_bundle, tone
from helpers import UdpReceiver
from ser_daemon.app.config import DaemonConfig
from ser_daemon.app.daemon import Daemon
from ser_daemon.core.mood_settings import MoodSettings
from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.outputs.osc_targets import OscTarget
from ser_daemon.sessions.records import read_session_log
from ser_daemon.sessions.store import list_logs
from tiny_model import write_wav

QUICK = MoodSettings(min_voiced_s=1.0, disengage_silence_s=1.0)
SCHEMA = json.loads((Path(__file__).parents[3] / "ser_daemon" / "schema" / "messages.schema.json").read_text())


def _clip(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "talk.wav", np.concatenate([tone(3000, 2.0), np.zeros(48000, np.float32)]))


def _run(cfg: DaemonConfig, with_ws_client: bool = False) -> tuple[Daemon, str, list[dict]]:
    bundle = stub_bundle()
    out = io.StringIO()
    daemon = Daemon(cfg, bundle, StubClassifier(bundle), out=out, status_out=io.StringIO())
    runner = threading.Thread(target=daemon.run, name="daemon-under-test")
    runner.start()
    msgs: list[dict] = []
    try:
        if with_ws_client:
            deadline = time.monotonic() + timeout(20)
            while (daemon.ws is None or daemon.ws.port is None) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert daemon.ws is not None and daemon.ws.port is not None

            async def collect() -> None:
                from websockets.asyncio.client import connect

                async with connect(f"ws://127.0.0.1:{daemon.ws.port}") as ws:
                    for _ in range(1000):  # bounded: the clip gives ~40 messages
                        msgs.append(json.loads(await asyncio.wait_for(ws.recv(), timeout(20))))
                        if msgs[-1]["type"] == "mood" and msgs[-1]["voice"] is False and msgs[-1]["time"] >= 5.0:
                            return

            asyncio.run(collect())
    finally:
        runner.join(timeout(30))
        daemon.stop()
    assert not runner.is_alive() and daemon.exit_code == 0
    return daemon, out.getvalue(), msgs


def _check_mood_stream(msgs: list[dict]) -> None:
    """What every mood output must carry for the clip: thinned moods, the disengaging event, the schema."""
    for m in msgs:
        jsonschema.validate(m, SCHEMA)
    moods = [m for m in msgs if m["type"] == "mood"]
    events = [m for m in msgs if m["type"] == "event"]
    times = [m["time"] for m in moods]
    # At most one a second of stream time, plus the final state's (the clip's end, 5.0 s).
    assert all(b - a >= 1.0 for a, b in zip(times[:-2], times[1:-1])) and times[-1] == 5.0
    assert moods[0]["voice"] is True and moods[0]["valence"]["moment"] < 0 and moods[-1]["voice"] is False
    voiced = [m for m in moods if m["voice"]]
    # Silence is no mood: the session valence after 3 s of it is the angry voice's (-0.6), not lower.
    assert voiced[-1]["valence"]["session"] == moods[-1]["valence"]["session"] == pytest.approx(-0.6, abs=0.05)
    assert [(e["kind"], e["evidence"]["reason"], e["stream"]) for e in events] == [("disengaging", "silence", "talk")]
    assert 3.0 <= events[0]["time"] < 5.0


def test_mood_reaches_the_websocket_jsonl_and_generic_osc(tmp_path: Path) -> None:
    rx = UdpReceiver()
    try:
        cfg = DaemonConfig(inputs=(_clip(tmp_path),), fast=True, ws=Endpoint("127.0.0.1", 0), wait_clients=1,
                           quiet=True, jsonl=True, osc=(OscTarget(Endpoint("127.0.0.1", rx.port), "generic"),),
                           analysis=AnalysisSettings(hop_ms=250.0), mood=True, mood_settings=QUICK)
        _, out, ws_msgs = _run(cfg, with_ws_client=True)
        packets = [p for _, p in rx.collect(time.monotonic() + timeout(3), stop_after_idle=0.3)]
    finally:
        rx.close()
    _check_mood_stream(ws_msgs)
    lines = [json.loads(x) for x in out.splitlines()]
    _check_mood_stream(lines)
    # Each mood message follows the state it was read from, on both.
    for msgs in (ws_msgs, lines):
        kinds = [m["type"] for m in msgs if m["type"] in ("state", "mood")]
        assert all(kinds[i - 1] == "state" for i, k in enumerate(kinds) if k == "mood")
    addresses = []
    for p in packets:
        for content in OscBundle(p):
            addresses.append((content.address, content.params))
    moods = [a for a in addresses if a[0] == "/ser/mood/valence"]
    assert len(moods) == len([m for m in lines if m["type"] == "mood"])
    ev = [params for addr, params in addresses if addr == "/ser/mood/event"]
    assert len(ev) == 1 and ev[0][0] == "disengaging" and json.loads(ev[0][2])["reason"] == "silence"


def test_without_mood_nothing_of_it_is_sent(tmp_path: Path) -> None:
    cfg = DaemonConfig(inputs=(_clip(tmp_path),), fast=True, ws=None, osc=(), quiet=True, jsonl=True,
                       analysis=AnalysisSettings(hop_ms=250.0), mood_settings=QUICK)
    _, out, _ = _run(cfg)
    kinds = {json.loads(x)["type"] for x in out.splitlines()}
    assert "state" in kinds and not kinds & {"mood", "event"}


def test_print_lines_say_the_mood_and_the_event(tmp_path: Path) -> None:
    cfg = DaemonConfig(inputs=(_clip(tmp_path),), fast=True, ws=None, osc=(), quiet=True, print_states=True,
                       analysis=AnalysisSettings(hop_ms=250.0), mood=True, mood_settings=QUICK)
    _, out, _ = _run(cfg)
    lines = out.splitlines()
    assert sum(" mood " in x for x in lines) >= 4 and lines[0].startswith("[talk] #0")
    events = [x for x in lines if x.startswith("[talk] event ")]
    assert len(events) == 1 and "disengaging" in events[0] and '"reason":"silence"' in events[0]


def test_the_session_log_alone_keeps_the_mood_to_itself(tmp_path: Path) -> None:
    """--session-log without --mood: the log has states, mood and events; the outputs have no mood."""
    folder = tmp_path / "logs"
    cfg = DaemonConfig(inputs=(_clip(tmp_path),), fast=True, ws=None, osc=(), quiet=True, jsonl=True,
                       analysis=AnalysisSettings(hop_ms=250.0), mood_settings=QUICK, session_log=folder)
    _, out, _ = _run(cfg)
    assert {json.loads(x)["type"] for x in out.splitlines()} & {"mood", "event"} == set()
    [found] = list_logs(folder)
    assert found.stream == "talk"
    s = read_session_log(found.path)
    states = [json.loads(x) for x in out.splitlines() if json.loads(x)["type"] == "state"]
    assert s.state_label == ["unsure" if m["uncertain"] else m["label"] for m in states]
    assert list(s.state_voice) == [m["voice"] for m in states] and "angry" in s.state_label
    assert list(s.state_t) == [m["end_sample"] / 16000 for m in states]
    _check_mood_stream(s.mood + s.events)
    assert s.header["labels"] == ["neutral", "happy", "angry"] and s.header["sample_rate"] == 16000
    assert oct(found.path.stat().st_mode & 0o777) == "0o600"
