"""Real capture: PulseAudio null sink as a virtual microphone, `ser-daemon --device pulse`.

The test starts its own PulseAudio (private runtime dir and home), plays a
WAV into the sink with paplay while the daemon captures the sink's monitor
through PortAudio's ``pulse`` device, and checks the broadcast states.  It
skips only when PulseAudio or PortAudio is not installed; with
SER_REQUIRE_PULSE=1 (set by .ci/run) a missing piece is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from conftest import timeout
from helpers import REPO, UdpReceiver, daemon_cmd
from tiny_model import tone, write_wav

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]


def _missing() -> str | None:
    for tool in ("pulseaudio", "pactl", "paplay"):
        if not shutil.which(tool):
            return f"{tool} not installed (apt install pulseaudio pulseaudio-utils)"
    try:
        import sounddevice  # noqa: F401
    except OSError:
        return "PortAudio not installed (apt install libportaudio2)"
    return None


@pytest.fixture
def pulse(tmp_path: Path):
    reason = _missing()
    if reason:
        if os.environ.get("SER_REQUIRE_PULSE") == "1":
            pytest.fail(f"SER_REQUIRE_PULSE=1 but {reason}")
        pytest.skip(reason)
    runtime = tmp_path / "xdg"
    home = tmp_path / "home"
    runtime.mkdir(mode=0o700)
    home.mkdir()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(home), "PULSE_SOURCE": "vmic.monitor"}
    env.pop("PULSE_SERVER", None)
    daemon = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
         "--load=module-null-sink sink_name=vmic rate=48000 channels=2",
         "--load=module-native-protocol-unix"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + timeout(15)
    while True:
        ok = subprocess.run(["pactl", "list", "short", "sources"], env=env, capture_output=True, text=True)
        if ok.returncode == 0 and "vmic.monitor" in ok.stdout:
            break
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            err = daemon.stderr.read() if daemon.stderr else ""
            pytest.fail(f"PulseAudio did not start: {err[-500:]}")
        time.sleep(0.1)
    try:
        yield env
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            daemon.kill()


def test_list_devices_shows_the_pulse_input(pulse) -> None:
    r = subprocess.run(daemon_cmd("--list-devices"), capture_output=True, text=True, env=pulse,
                       timeout=timeout(30), cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "index" in r.stdout and "channels" in r.stdout
    assert any(line.rstrip().endswith("pulse") for line in r.stdout.splitlines())


def test_captures_a_virtual_microphone(pulse, tiny_bundle, tmp_path) -> None:
    wav = write_wav(tmp_path / "angry_tone.wav", np.concatenate([tone(3000, 2.5), np.zeros(8000, np.float32)]))
    rx = UdpReceiver()
    env = {**pulse, "SER_MODEL_DIR": str(tiny_bundle)}
    proc = subprocess.Popen(
        daemon_cmd("--device", "pulse", "--osc", f"127.0.0.1:{rx.port}", "--no-ws", "--quiet",
                   "--log-level", "info"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        # Wait for decisions on silence first: capture runs and the gate stays shut.
        deadline = time.monotonic() + timeout(20)
        while len(rx.packets) < 3 and time.monotonic() < deadline and proc.poll() is None:
            rx.collect(time.monotonic() + 0.2)
        assert len(rx.packets) >= 3, proc.communicate(timeout=5)[1][-2000:]
        before = len(rx.packets)
        play = subprocess.run(["paplay", "--device=vmic", str(wav)], env=pulse, capture_output=True,
                              timeout=timeout(20))
        assert play.returncode == 0, play.stderr
        rx.collect(time.monotonic() + 1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout(5))
        rx.collect(time.monotonic() + 0.3)
    finally:
        proc.kill()
        rx.close()
    assert proc.returncode == 0, err[-2000:]
    bundles = [list(OscBundle(d)) for _, d in rx.packets]
    silent = bundles[:before]
    assert all(b[0].params[0] == "neutral" and b[5].params == [0] for b in silent)
    during = bundles[before:]
    labels = [b[0].params[0] for b in during]
    assert "angry" in labels, labels
    assert any(b[5].params == [1] for b in during)
    seqs = [b[6].params[0] for b in bundles]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost between capture and OSC
    assert bundles[-1][0].params[0] == "neutral"  # the final state on Ctrl-C
