"""``--mood`` and ``--session-log`` end to end in one process: the real daemon on the stand-in model.

A clip of 2 s of a loud 3 kHz tone (the stand-in hears ``angry``) and 3 s of silence, replayed
fast, with thresholds short enough for seconds (``disengaging`` after 1 s of silence once 1 s
was voiced).  The mood and event messages are read where an app reads them: a WebSocket client
on 127.0.0.1, ``--jsonl`` lines, generic OSC on a real UDP socket, and the session log read
back with :mod:`ser_daemon.sessions.records`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import threading
import time
from pathlib import Path
from typing import Awaitable, Callable

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from conftest import schema_validator, timeout
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


def _run(cfg: DaemonConfig, client: Callable[[int], Awaitable[object]] | None = None) -> tuple[Daemon, str]:
    """Run the daemon on the stand-in model until its input ends; ``client(port)`` runs meanwhile."""
    bundle = stub_bundle()
    out = io.StringIO()
    daemon = Daemon(cfg, bundle, StubClassifier(bundle), out=out, status_out=io.StringIO())
    runner = threading.Thread(target=daemon.run, name="daemon-under-test")
    runner.start()
    try:
        if client is not None:
            deadline = time.monotonic() + timeout(20)
            while (daemon.ws is None or daemon.ws.port is None) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert daemon.ws is not None and daemon.ws.port is not None
            asyncio.run(asyncio.wait_for(client(daemon.ws.port), timeout(30)))
    finally:
        runner.join(timeout(30))
        daemon.stop()
    assert not runner.is_alive() and daemon.exit_code == 0
    return daemon, out.getvalue()


async def _collect(port: int, into: list[dict]) -> None:
    """A WebSocket client that reads until the final state's mood (the clip's end at 5 s)."""
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}") as ws:
        for _ in range(1000):  # bounded: the clip gives ~40 messages
            into.append(json.loads(await ws.recv()))
            if into[-1]["type"] == "mood" and into[-1]["voice"] is False and into[-1]["time"] >= 5.0:
                return


def _check_mood_stream(msgs: list[dict]) -> None:
    """What every mood output must carry for the clip: thinned moods, the disengaging event, the schema."""
    validator = schema_validator(SCHEMA)
    for m in msgs:
        validator.validate(m)
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
        ws_msgs: list[dict] = []
        _, out = _run(cfg, lambda port: _collect(port, ws_msgs))
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
    _, out = _run(cfg)
    kinds = {json.loads(x)["type"] for x in out.splitlines()}
    assert "state" in kinds and not kinds & {"mood", "event"}


def test_print_lines_say_the_mood_and_the_event(tmp_path: Path) -> None:
    cfg = DaemonConfig(inputs=(_clip(tmp_path),), fast=True, ws=None, osc=(), quiet=True, print_states=True,
                       analysis=AnalysisSettings(hop_ms=250.0), mood=True, mood_settings=QUICK)
    _, out = _run(cfg)
    lines = out.splitlines()
    assert sum(" mood " in x for x in lines) >= 4 and lines[0].startswith("[talk] #0")
    events = [x for x in lines if x.startswith("[talk] event ")]
    assert len(events) == 1 and "disengaging" in events[0] and '"reason":"silence"' in events[0]


def test_the_session_log_alone_keeps_the_mood_to_itself(tmp_path: Path) -> None:
    """--session-log without --mood: the log has states, mood and events; the outputs have no mood."""
    folder = tmp_path / "logs"
    cfg = DaemonConfig(inputs=(_clip(tmp_path),), fast=True, ws=None, osc=(), quiet=True, jsonl=True,
                       analysis=AnalysisSettings(hop_ms=250.0), mood_settings=QUICK, session_log=folder)
    _, out = _run(cfg)
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


def test_the_readme_client_offers_help_when_frustration_rises(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The README's Python client, run as written against the daemon: 3 s of a voiced low tone (the
    stand-in hears neutral), then 5 s of the loud high one (angry): the minute valence falls while
    the arousal rises, and frustration_rising fires (trend over 1 s, 1 s of voice needed)."""
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## For apps"):]
    code = section[section.index("```python\n") + len("```python\n"):]
    code = code[:code.index("```")]
    client: dict = {"__name__": "readme_client"}
    exec(compile(code, "README.md (For apps)", "exec"), client)

    clip = write_wav(tmp_path / "talk.wav", np.concatenate([tone(300, 3.0), tone(3000, 5.0), np.zeros(16000, np.float32)]))
    settings = MoodSettings(min_voiced_s=1.0, frustration_trend_s=1.0)
    cfg = DaemonConfig(inputs=(clip,), fast=True, ws=Endpoint("127.0.0.1", 0), wait_clients=1, osc=(), quiet=True,
                       analysis=AnalysisSettings(hop_ms=250.0), mood=True, mood_settings=settings)
    # The client returns when the daemon, at the end of the clip, closes the connection.
    _run(cfg, lambda port: client["follow"](f"ws://127.0.0.1:{port}"))
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 1 and said[0].startswith("talk: frustration rising at ") and said[0].endswith(": offer help")
    assert "(minute valence -0.2" in said[0]


def test_generic_osc_puts_the_mood_under_each_stream_with_several() -> None:
    from ser_daemon.core.mood_stage import MoodStage
    from ser_daemon.core.state import EmotionState
    from ser_daemon.outputs.osc_schemes import GenericScheme, OscScheme

    def state(stream: str) -> EmotionState:
        return EmotionState(stream=stream, seq=0, labels=("neutral", "happy", "angry"), label="angry", confidence=0.9,
                            raw=(0.0, 0.0, 1.0), smoothed=(0.0, 0.0, 1.0), voice_active=True, end_sample=16000,
                            audio_time=1.0, emitted_time=1.0)

    update = MoodStage(("neutral", "happy", "angry"), 16000).update(state("p2"))
    assert update.reading is not None and update.events == ()
    per_stream = [a for p in GenericScheme(bundle=False, per_stream=True).encode_mood(update)
                  for a in [p.split(b"\x00", 1)[0].decode()]]
    assert per_stream == [f"/ser/p2/mood/{x}" for x in ("valence", "arousal", "talking", "silence", "known")]
    one = GenericScheme(bundle=True).encode_mood(update)
    assert len(one) == 1 and [c.address for c in OscBundle(one[0])][0] == "/ser/mood/valence"
    assert OscScheme().encode_mood(update) == [] and GenericScheme().encode_mood(type(update)(None)) == []


def _vrchat_floats(packets: list[bytes]) -> list[tuple[str, float]]:
    """(parameter, value) of each SER_Mood* message among VRChat's (unbundled) packets."""
    from pythonosc.osc_message import OscMessage

    out = []
    for p in packets:
        m = OscMessage(p)
        if m.address.startswith("/avatar/parameters/SER_Mood"):
            out.append((m.address.rsplit("/", 1)[1], float(m.params[0])))
    return out


@pytest.mark.parametrize("mood", [True, False])
def test_vrchat_gets_the_mood_floats_only_with_mood(tmp_path: Path, mood: bool) -> None:
    rx = UdpReceiver()
    try:
        cfg = DaemonConfig(inputs=(_clip(tmp_path),), fast=True, ws=None, quiet=True, jsonl=True,
                           osc=(OscTarget(Endpoint("127.0.0.1", rx.port), "vrchat"),), vrchat_listen=0,
                           oscquery=False, analysis=AnalysisSettings(hop_ms=250.0), mood=mood, mood_settings=QUICK)
        _run(cfg)
        packets = [p for _, p in rx.collect(time.monotonic() + timeout(3), stop_after_idle=0.3)]
    finally:
        rx.close()
    floats = _vrchat_floats(packets)
    assert any(p.startswith(b"/avatar/parameters/SER_Label") for p in packets)
    if not mood:
        assert floats == []
        return
    names = {n for n, _ in floats}
    assert names == {"SER_MoodValence", "SER_MoodArousal", "SER_MoodTalking"}
    assert all(-1.0 <= v <= 1.0 for _, v in floats)
    # The stand-in hears "angry" in the tone: the minute's valence goes negative, and someone talked.
    assert min(v for n, v in floats if n == "SER_MoodValence") < 0
    assert max(v for n, v in floats if n == "SER_MoodTalking") > 0


def test_vrchat_mood_floats_are_throttled_sent_on_change_and_zero_while_muted() -> None:
    from ser_daemon.core.mood_stage import MoodStage
    from ser_daemon.core.state import EmotionState
    from ser_daemon.outputs.osc_schemes import VRChatScheme

    labels = ("neutral", "happy", "angry")
    st = EmotionState(stream="mic", seq=0, labels=labels, label="angry", confidence=0.9, raw=(0.0, 0.0, 1.0),
                      smoothed=(0.0, 0.0, 1.0), voice_active=True, end_sample=8000, audio_time=0.5, emitted_time=0.5)
    stage = MoodStage(labels, 16000)
    update = stage.update(st)
    for k in (2, 3):  # a second of an angry voice: the minute's mood is known
        update = stage.update(dataclasses.replace(st, seq=k, end_sample=8000 * k, audio_time=k / 2))
    assert update.reading is not None and update.reading.valence.minute is not None
    assert VRChatScheme(labels).encode_mood(update, 0.0) == [] and VRChatScheme(labels).mood_names == ()
    scheme = VRChatScheme(labels, max_hz=5.0, mood=True)
    assert scheme.mood_names == ("SER_MoodValence", "SER_MoodArousal", "SER_MoodTalking")
    assert scheme.encode_mood(update, 5.0) == []  # before the first state: they go with its full packet
    assert [n for n, _ in _vrchat_floats(scheme.encode(st, {}, 5.0))] == list(scheme.mood_names)
    scheme.request_full_resend()
    assert scheme.encode(st, {}, 9.0)  # everything again (an avatar change), the mood floats with it
    assert scheme.encode_mood(update, 9.5) == []  # nothing changed
    scheme.muted = True  # VRChat muted us: the floats go to 0, once, within the rate limit
    assert scheme.encode_mood(update, 9.1) == []  # within 1/max_hz of the last packet: throttled...
    muted = _vrchat_floats(scheme.encode(st, {}, 9.6))  # ...so the next state's packet carries them
    assert [n for n, _ in muted] == list(scheme.mood_names) and all(v == 0.0 for _, v in muted)
    assert scheme.encode_mood(update, 11.0) == []  # said once
    scheme.muted = False
    back = dict(_vrchat_floats(scheme.encode_mood(update, 12.0)))
    assert back["SER_MoodValence"] < 0 < back["SER_MoodTalking"]  # an angry voice, heard
    other = type(update)(update.reading.__class__(**{**update.reading.__dict__, "stream": "p2"}))
    scheme.follow_stream = "mic"
    assert scheme.encode_mood(other, 20.0) == []  # an avatar follows one stream
