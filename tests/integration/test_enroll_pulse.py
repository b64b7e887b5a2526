"""The guided enrollment at a real (virtual) microphone: PulseAudio null sink, espeak-ng speech, stdin lines.

``ser-daemon enroll --profile NAME --device pulse`` runs as a subprocess; the
test plays espeak-ng sentences into the sink with paplay while it records,
answers the prompts by writing lines to its stdin (Enter = record/stop, s =
skip, q = finish), and checks the profile file: the labels recorded, a head,
no audio.  A silent take is refused with its reason and the step asked again.
Skipped without PulseAudio/espeak-ng unless SER_REQUIRE_PULSE=1.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd
from test_capture_pulse import pulse, pulse_server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow]


def speech_wav(folder: Path, name: str, text: str, pad_s: float = 2.5) -> Path:
    """An espeak-ng sentence at 48 kHz stereo with silence after it (the take stops by itself there)."""
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            msg = f"{tool} is not installed (apt install espeak-ng sox)"
            if os.environ.get("SER_REQUIRE_PULSE") == "1":
                pytest.fail(msg + " and SER_REQUIRE_PULSE=1")
            pytest.skip(msg)
    raw = folder / f"{name}_raw.wav"
    out = folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, timeout=timeout(30))
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "2", str(out), "pad", "0.2", str(pad_s)], check=True,
                   timeout=timeout(30))
    return out


class Lines:
    """The enroll process's stderr, line by line, read by a thread; wait for a line with a deadline."""

    def __init__(self, stream) -> None:
        self.seen: list[str] = []
        self._q: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._t.start()

    def _run(self, stream) -> None:
        for line in stream:
            self._q.put(line)
        self._q.put(None)

    def wait_for(self, text: str, limit_s: float) -> str:
        end = time.monotonic() + timeout(limit_s)
        while time.monotonic() < end:
            try:
                line = self._q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {limit_s} s:\n{''.join(self.seen)[-3000:]}")


def test_guided_enrollment_at_a_virtual_microphone(pulse, tmp_path) -> None:  # noqa: F811
    neutral = speech_wav(tmp_path, "neutral", "The train to the coast leaves at half past nine.")
    happy = speech_wav(tmp_path, "happy", "I put the blue folder on the kitchen table!")
    data = tmp_path / "data"
    env = {**pulse, "XDG_DATA_HOME": str(data)}
    env.pop("SER_MODEL_DIR", None)  # the shipped model: it has the head a profile needs
    proc = subprocess.Popen(
        daemon_cmd("enroll", "--profile", "me", "--device", "pulse", "--emotions", "happy,sad"),
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        bufsize=1,
    )
    assert proc.stdin is not None and proc.stderr is not None

    def say(line: str) -> None:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    def play(wav: Path) -> None:
        r = subprocess.run(["paplay", "--device=vmic", str(wav)], env=pulse, capture_output=True,
                           timeout=timeout(20))
        assert r.returncode == 0, r.stderr

    err = Lines(proc.stderr)
    try:
        err.wait_for("guided enrollment into", 30)
        assert "step 1/5" in err.wait_for("step 1/5", 20)
        # A silent take: refused with the reason, and the same step asked again.
        say("")
        err.wait_for("recording", 10)
        time.sleep(2.5)  # seconds of silence recorded (what the take is, not a readiness wait)
        say("")
        refused = err.wait_for("refused", 10)
        assert "no voice heard" in refused and "try again (2 of 3)" in refused
        err.wait_for("step 1/5 (try 2)", 5)
        # A spoken take stops by itself after the sentence and is accepted.
        say("")
        err.wait_for("recording", 10)
        play(neutral)
        assert "take accepted" in err.wait_for("accepted", 15)
        err.wait_for("step 2/5", 5)
        say("s")
        err.wait_for("skipped", 5)
        err.wait_for("step 3/5", 5)
        say("s")
        step4 = err.wait_for("step 4/5", 5)
        assert "delighted" in step4
        say("")
        err.wait_for("recording", 10)
        play(happy)
        err.wait_for("accepted", 15)
        err.wait_for("step 5/5", 5)
        say("q")  # finish now: sad is left out
        out, rest = proc.communicate(timeout=timeout(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, "".join(err.seen)[-3000:] + (rest or "")
    path = data / "ser-daemon" / "profiles" / "me.json"
    assert f"profile {path}: 2 takes" in out and "personal head for happy, neutral" in out, out
    saved = json.loads(path.read_text())
    assert sorted(saved["takes"]) == ["happy", "neutral"]
    assert saved["head"] is not None and "audio" not in json.dumps(saved).replace("never holds audio", "")


def test_guided_enrollment_errors_write_nothing(pulse, tmp_path) -> None:  # noqa: F811
    data = tmp_path / "data"
    env = {**pulse, "XDG_DATA_HOME": str(data)}
    env.pop("SER_MODEL_DIR", None)
    bad = subprocess.run(daemon_cmd("enroll", "--profile", "me", "--device", "no-such-mic"), env=env,
                         capture_output=True, text=True, timeout=timeout(60), cwd=REPO, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "no input device matches 'no-such-mic'" in bad.stderr
    # End of input at once (q): no take, nothing written.
    none = subprocess.run(daemon_cmd("enroll", "--profile", "me", "--device", "pulse", "--emotions", "none"),
                          env=env, capture_output=True, text=True, timeout=timeout(60), cwd=REPO, input="q\n")
    assert none.returncode == 2 and "no take was accepted" in none.stderr.splitlines()[-1], none.stderr
    assert not (data / "ser-daemon" / "profiles" / "me.json").exists()
    both = subprocess.run(daemon_cmd("enroll", "--profile", "me", "--device", "pulse", "--label", "neutral", "x.wav"),
                          env=env, capture_output=True, text=True, timeout=timeout(60), cwd=REPO,
                          stdin=subprocess.DEVNULL)
    assert both.returncode == 2 and "not both" in both.stderr
