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


def private_pulse_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a PulseAudio of the test's own (runtime dir and home under ``tmp_path``).

    Skips (or fails, with SER_REQUIRE_PULSE=1) when PulseAudio or PortAudio is missing.
    """
    reason = _missing()
    if reason:
        if os.environ.get("SER_REQUIRE_PULSE") == "1":
            pytest.fail(f"SER_REQUIRE_PULSE=1 but {reason}")
        pytest.skip(reason)
    runtime = tmp_path / "xdg"
    home = tmp_path / "home"
    runtime.mkdir(mode=0o700)
    home.mkdir()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(home), **extra}
    env.pop("PULSE_SERVER", None)
    return env


def _start_pulse(env: dict[str, str], sink: str = "sink_name=vmic rate=48000 channels=2",
                 more: tuple[str, ...] = (), wait_for: str = "vmic.monitor") -> subprocess.Popen:
    daemon = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
         f"--load=module-null-sink {sink}", *(f"--load={m}" for m in more),
         "--load=module-native-protocol-unix"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + timeout(15)
    while True:
        ok = subprocess.run(["pactl", "list", "short", "sources"], env=env, capture_output=True, text=True)
        if ok.returncode == 0 and "vmic.monitor" in ok.stdout and wait_for in ok.stdout:
            return daemon
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            err = daemon.stderr.read() if daemon.stderr else ""
            pytest.fail(f"PulseAudio did not start: {err[-500:]}")
        time.sleep(0.1)


def _stop_pulse(daemon: subprocess.Popen) -> None:
    daemon.terminate()
    try:
        daemon.wait(timeout=5)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait(timeout=5)


class Pulse:
    """A private PulseAudio with a null sink "vmic", startable and stoppable by the test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = _start_pulse(env)

    def kill(self) -> None:
        if self.proc is not None:
            _stop_pulse(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.proc = _start_pulse(self.env)


@pytest.fixture
def pulse_server(tmp_path: Path):
    env = private_pulse_env(tmp_path, PULSE_SOURCE="vmic.monitor")
    server = Pulse(env)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def pulse(pulse_server: Pulse) -> dict[str, str]:
    return pulse_server.env


def test_list_devices_shows_the_pulse_input(pulse) -> None:
    r = subprocess.run(daemon_cmd("--list-devices"), capture_output=True, text=True, env=pulse,
                       timeout=timeout(30), cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "index" in r.stdout and "channels" in r.stdout
    assert any(line.rstrip().endswith("pulse") for line in r.stdout.splitlines())


def test_devices_grouped_by_host_api_on_real_portaudio(pulse, tiny_bundle) -> None:
    r = subprocess.run(daemon_cmd("--list-devices"), capture_output=True, text=True, env=pulse,
                       timeout=timeout(30), cwd=REPO)
    heads = [ln for ln in r.stdout.splitlines() if ln and not ln.startswith(" ")]
    assert r.returncode == 0 and heads and heads[0].startswith("ALSA"), r.stdout
    bad = subprocess.run(daemon_cmd("--device", "pulse", "--host-api", "wasapi", "--no-ws", "--no-osc"),
                         capture_output=True, text=True, env={**pulse, "SER_MODEL_DIR": str(tiny_bundle)},
                         timeout=timeout(30), cwd=REPO)
    assert bad.returncode == 2 and "not a host API with input devices here; choose one of: ALSA" in bad.stderr


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
        n_bundles = lambda: sum(OscBundle.dgram_is_bundle(d) for _, d in rx.packets)  # noqa: E731
        while n_bundles() < 3 and time.monotonic() < deadline and proc.poll() is None:
            rx.collect(time.monotonic() + 0.2)
        assert n_bundles() >= 3, proc.communicate(timeout=5)[1][-2000:]
        before = n_bundles()
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
    assert proc.returncode == 130, err[-2000:]  # Ctrl-C: 130 after the clean stop (README)
    bundles = [list(OscBundle(d)) for _, d in rx.packets if OscBundle.dgram_is_bundle(d)]
    silent = bundles[:before]
    assert all(b[0].params[0] == "neutral" and b[5].params == [0] for b in silent)
    during = bundles[before:]
    labels = [b[0].params[0] for b in during]
    assert "angry" in labels, labels
    assert any(b[5].params == [1] for b in during)
    seqs = [b[6].params[0] for b in bundles]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost between capture and OSC
    assert bundles[-1][0].params[0] == "neutral"  # the final state on Ctrl-C


def test_microphone_unplugged_and_back(pulse_server, tiny_bundle, tmp_path) -> None:
    """Kill the sound server mid-stream, bring it back: outputs stay up, capture resumes."""
    import asyncio
    import json

    from helpers import free_port
    from websockets.asyncio.client import connect

    env = {**pulse_server.env, "SER_MODEL_DIR": str(tiny_bundle)}
    wav = write_wav(tmp_path / "angry_tone.wav", np.concatenate([tone(3000, 2.5), np.zeros(8000, np.float32)]))
    rx = UdpReceiver()
    ws_port = free_port()
    proc = subprocess.Popen(
        daemon_cmd("--device", "pulse", "--osc", f"127.0.0.1:{rx.port}", "--ws", f"127.0.0.1:{ws_port}", "--quiet"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )

    def statuses() -> list[str]:
        out = []
        for _, d in rx.packets:
            if not OscBundle.dgram_is_bundle(d):
                from pythonosc.osc_message import OscMessage

                m = OscMessage(d)
                if m.address == "/ser/status":
                    out.append(m.params[0])
        return out

    def wait_for(pred, limit_s: float) -> bool:
        deadline = time.monotonic() + timeout(limit_s)
        while time.monotonic() < deadline:
            rx.collect(time.monotonic() + 0.1)
            if pred():
                return True
        return False

    async def ws_watch(out: list[dict], stop_after_s: float) -> None:
        from websockets.exceptions import ConnectionClosed

        async with connect(f"ws://127.0.0.1:{ws_port}") as ws:
            end = time.monotonic() + stop_after_s
            while time.monotonic() < end:
                try:
                    out.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
                except asyncio.TimeoutError:
                    pass
                except ConnectionClosed:
                    return

    try:
        assert wait_for(lambda: len(rx.packets) >= 2, 20), "no decisions from the device"
        import threading

        ws_msgs: list[dict] = []
        watcher = threading.Thread(target=lambda: asyncio.run(ws_watch(ws_msgs, timeout(25))))
        watcher.start()
        assert wait_for(lambda: any(m.get("type") == "hello" for m in ws_msgs), 10), "WebSocket watcher not connected"
        pulse_server.kill()  # the "headset" is gone
        assert wait_for(lambda: "no_audio" in statuses(), 10), statuses()
        n_lost = len(rx.packets)
        time.sleep(3.0)  # several retries happen meanwhile
        assert proc.poll() is None  # the daemon is still up
        pulse_server.restart()
        assert wait_for(lambda: statuses()[-1:] == ["capturing"], 15), statuses()
        play = subprocess.run(["paplay", "--device=vmic", str(wav)], env=pulse_server.env, capture_output=True,
                              timeout=timeout(20))
        assert play.returncode == 0
        assert wait_for(lambda: any(
            list(OscBundle(d))[0].params[0] == "angry" for _, d in rx.packets[n_lost:] if OscBundle.dgram_is_bundle(d)
        ), 5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=timeout(5))
        watcher.join(timeout=timeout(30))
    finally:
        proc.kill()
        rx.close()
    assert proc.returncode == 0
    kinds = [(m["type"], m.get("status")) for m in ws_msgs if m["type"] == "status"]
    assert ("status", "no_audio") in kinds and ("status", "capturing") in kinds  # WebSocket side stayed alive
    assert err.count("stopped delivering audio") == 1 and err.count("is back after") == 1, err  # logged once each
