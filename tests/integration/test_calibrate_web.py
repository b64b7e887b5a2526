"""The web view's Calibrate over its real WebSocket: a daemon replaying speech with --input --loop.

The shipped model (it has the head a profile needs) analyses an espeak-ng
sentence followed by silence, looped.  A client sends the control messages
the page sends and checks what comes back: prompts, a refused take with its
reason, accepted takes (they stop by themselves after the sentence), skips,
the saved profile and the switch to it (a new client's hello names it); and
the access rules: malformed control messages close with 1007, only loopback
web-view clients may calibrate, one calibration at a time, no overwriting.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import reference_module, timeout
from helpers import REPO, daemon_cmd, free_port, ws_connect
from ser_daemon.profiles.calibration import parse_request

SENTENCE = "The train to the coast leaves at half past nine."


def test_parse_request_accepts_the_page_messages_and_refuses_the_rest() -> None:
    req = parse_request({"type": "calibrate", "action": "start", "profile": "me", "replace": True, "emotions": ["happy"]})
    assert (req.action, req.profile, req.replace, req.emotions) == ("start", "me", True, ("happy",))
    assert parse_request({"type": "calibrate", "action": "record"}).action == "record"
    bad: list[Any] = [
        {"type": "calibrate"},
        {"type": "calibrate", "action": "explode"},
        {"type": "calibrate", "action": "start"},  # no profile
        {"type": "calibrate", "action": "start", "profile": 7},
        {"type": "calibrate", "action": "start", "profile": "x" * 65},
        {"type": "calibrate", "action": "start", "profile": "me", "replace": "yes"},
        {"type": "calibrate", "action": "start", "profile": "me", "emotions": "happy"},
        {"type": "calibrate", "action": "start", "profile": "me", "emotions": ["h"] * 17},
        {"type": "calibrate", "action": "start", "profile": "me", "emotions": ["h" * 33]},
        {"type": "calibrate", "action": "record", "profile": "me"},
        {"type": "calibrate", "action": "record", "extra": 1},
        ["calibrate"],
    ]
    for message in bad:
        with pytest.raises(ValueError):
            parse_request(message)
    # The schema's calibrate_request says the same.
    jsonschema = reference_module("jsonschema")
    schema = json.loads((resources.files("ser_daemon") / "schema" / "messages.schema.json").read_text())
    request = {**schema["$defs"]["calibrate_request"], "$defs": schema["$defs"]}
    jsonschema.validate({"type": "calibrate", "action": "start", "profile": "me", "emotions": []}, request)
    for message in bad[1:2] + bad[3:9] + bad[10:]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(message, request)


def speech_loop_wav(folder: Path) -> Path:
    """An espeak-ng sentence then 2.5 s of silence, 16 kHz mono (replayed with --loop)."""
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            msg = f"{tool} is not installed (apt install espeak-ng sox)"
            if os.environ.get("SER_REQUIRE_BROWSER") == "1" or os.environ.get("SER_REQUIRE_PULSE") == "1":
                pytest.fail(msg)
            pytest.skip(msg)
    raw, out = folder / "sentence_raw.wav", folder / "sentence.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), SENTENCE], check=True, timeout=timeout(30))
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(out), "pad", "0.2", "2.5"], check=True,
                   timeout=timeout(30))
    return out


def start_daemon(wav: Path, data: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    env.pop("SER_MODEL_DIR", None)  # the shipped model
    with log.open("w") as out:
        proc = subprocess.Popen(
            daemon_cmd("--input", str(wav), "--loop", "--web", f"127.0.0.1:{port}", "--no-osc", "--quiet",
                       "--log-level", "info", *extra),
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
        )
    return proc, port


def stop_daemon(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


class Client:
    """A WebSocket client that keeps every message and waits for one with a deadline."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict] = []

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps({"type": "calibrate", **message}))

    async def wait(self, pred: Callable[[dict], bool], limit_s: float = 20.0) -> dict:
        end = time.monotonic() + timeout(limit_s)
        for _ in range(100_000):
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                m = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            except asyncio.TimeoutError:
                break
            self.messages.append(m)
            if pred(m):
                return m
        seen = [(m.get("type"), m.get("event"), m.get("text")) for m in self.messages if m.get("event") != "level"]
        raise AssertionError(f"no such message within {limit_s} s; got {seen[-20:]}")

    def event(self, name: str) -> Callable[[dict], bool]:
        return lambda m: m.get("type") == "calibrate" and m.get("event") == name


async def connect_when_up(url: str, proc: subprocess.Popen, limit_s: float = 30.0, **kw: Any) -> Any:
    return await ws_connect(url, limit_s=limit_s, proc=proc, open_timeout=timeout(5), **kw)


def page_ws_url(port: int) -> str:
    """What the page does: read this run's key from the served page, connect with it."""
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout(5)) as r:
        key = re.search(rb'<meta name="ser-page-key" content="([^"]+)">', r.read())
    assert key, "the page carries no key"
    return f"ws://127.0.0.1:{port}/ws?key={key.group(1).decode()}"


@pytest.mark.slow  # starts a process
def test_calibrate_over_the_websocket(tmp_path) -> None:
    from websockets.exceptions import ConnectionClosed

    jsonschema = reference_module("jsonschema")
    schema = json.loads((resources.files("ser_daemon") / "schema" / "messages.schema.json").read_text())
    wav = speech_loop_wav(tmp_path)
    data = tmp_path / "data"
    profile = data / "ser-daemon" / "profiles" / "me.json"
    ws_port = free_port()
    proc, port = start_daemon(wav, data, tmp_path / "daemon.log", "--ws", f"127.0.0.1:{ws_port}")

    async def run() -> tuple[Client, dict]:
        keyless = Client(await connect_when_up(f"ws://127.0.0.1:{port}/ws", proc))
        page = Client(await connect_when_up(page_ws_url(port), proc))
        hello = await page.wait(lambda m: m["type"] == "hello")
        assert "profile" not in hello
        # A local client that did not read the page (no Origin, no token) may watch but not calibrate.
        await keyless.send(action="start", profile="me", replace=True)
        assert "needs the key of the web page" in (await keyless.wait(keyless.event("error")))["text"]
        # The plain --ws endpoint (Unity, scripts) may not calibrate; a bad name is refused.
        plain = Client(await connect_when_up(f"ws://127.0.0.1:{ws_port}", proc))
        await plain.send(action="start", profile="me")
        assert "only offered to the web view" in (await plain.wait(plain.event("error")))["text"]
        await page.send(action="start", profile="../etc")
        assert "is not a profile name" in (await page.wait(page.event("error")))["text"]
        await page.send(action="record")
        assert "no calibration is running" in (await page.wait(page.event("error")))["text"]

        await page.send(action="start", profile="me", emotions=["happy"])
        started = await page.wait(page.event("started"))
        assert started["steps"] == 4 and started["stream"] == "sentence"
        step = await page.wait(page.event("step"))
        assert (step["step"], step["label"], step["attempt"]) == (0, "neutral", 1) and step["sentence"]
        # Another page cannot start a second one meanwhile.
        other = Client(await connect_when_up(page_ws_url(port), proc))
        await other.send(action="start", profile="you")
        assert "in another window" in (await other.wait(other.event("error")))["text"]
        # Record and stop at once: far too short, refused with the reason, the same step again.
        await page.send(action="record")
        await page.send(action="stop")
        refused = await page.wait(page.event("refused"))
        assert "too short" in refused["text"] and "try again (2 of 3)" in refused["text"]
        again = await page.wait(page.event("step"))
        assert (again["step"], again["attempt"]) == (0, 2)
        # A real take: it stops by itself after the sentence and its silence.
        await page.send(action="record")
        await page.wait(page.event("recording"))
        level = await page.wait(lambda m: m.get("event") == "level" and (m.get("voice_s") or 0) > 0.5, 15)
        assert level["level_db"] > -40
        accepted = await page.wait(page.event("accepted"), 20)
        assert accepted["accepted"] == 1
        await page.send(action="skip")
        await page.send(action="skip")
        happy = await page.wait(lambda m: m.get("event") == "step" and m.get("label") == "happy")
        assert "delighted" in happy["cue"] and happy["step"] == 3
        await page.send(action="record")
        await page.wait(page.event("accepted"), 20)
        await page.wait(page.event("done"))
        saved = await page.wait(page.event("saved"), 30)
        active = await page.wait(page.event("active"), 10)
        assert saved["labels"] == ["happy", "neutral"] and saved["head"] is True and saved["path"] == str(profile)
        assert active["profile"] == "me" and active["stream"] == "sentence"
        # The others hear of the switch too, and a new client's hello names the profile.
        assert (await other.wait(other.event("active")))["profile"] == "me"
        later = Client(await connect_when_up(page_ws_url(port), proc))
        hello2 = await later.wait(lambda m: m["type"] == "hello")
        # No overwriting without replace.
        await page.send(action="start", profile="me")
        assert "exists already" in (await page.wait(page.event("error")))["text"]
        # A page that goes away drops its session: another page may start one then (and cancel it).
        await later.send(action="start", profile="gone")
        await later.wait(later.event("started"))
        await later.ws.close()
        for _ in range(50):
            await page.send(action="start", profile="next")
            reply = await page.wait(lambda m: m.get("event") in ("started", "error"))
            if reply["event"] == "started":
                break
            assert "another window" in reply["text"]
            await asyncio.sleep(0.1)
        assert reply["event"] == "started", reply
        await page.send(action="cancel")
        assert "nothing written" in (await page.wait(page.event("cancelled")))["text"]
        # A malformed control message closes the connection with 1007, like any garbage.
        await page.ws.send(json.dumps({"type": "calibrate", "action": "explode"}))
        with pytest.raises(ConnectionClosed) as closed:
            await page.wait(lambda m: False, 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        for c in (plain, other, keyless):
            await c.ws.close()
        return page, hello2

    try:
        page, hello2 = asyncio.run(run())
        assert profile.is_file()
    finally:
        code = stop_daemon(proc)
    log = (tmp_path / "daemon.log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert hello2["profile"] == "me"
    saved = json.loads(profile.read_text())
    assert sorted(saved["takes"]) == ["happy", "neutral"] and saved["head"] is not None
    assert "stream sentence now uses profile me" in log
    assert not (data / "ser-daemon" / "profiles" / "gone.json").exists()  # dropped and cancelled: nothing written
    assert not (data / "ser-daemon" / "profiles" / "next.json").exists()
    for m in page.messages + [hello2]:
        jsonschema.validate(m, schema)
    assert any(m.get("event") == "level" for m in page.messages)
