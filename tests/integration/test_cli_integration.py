"""The CLI as a subprocess with a real OSC receiver and real WebSocket clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from conftest import require_reference, timeout
from helpers import REPO, OscDump, UdpReceiver, daemon_cmd, free_port, on_a_terminal, start_daemon, ws_collect
from tiny_model import tone, write_wav

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def scene_wav(tmp_path_factory) -> Path:
    """48 kHz stereo: silence, low tone (calm), silence, high tone (angry), silence."""
    from scipy.signal import resample_poly

    z = np.zeros(16000, np.float32)
    x16 = np.concatenate([z, tone(200, 2.5), z, tone(3000, 2.5), z])
    x = resample_poly(x16, 3, 1).astype(np.float32)
    stereo = np.stack([x, x * 0.5], axis=1)
    return write_wav(tmp_path_factory.mktemp("wav") / "scene.wav", stereo, rate=48000)


def osc_messages(packets: list[tuple[float, bytes]]) -> list[list[OscMessage]]:
    """Each bundle as its list of messages."""
    out = []
    for _, data in packets:
        assert OscBundle.dgram_is_bundle(data)
        out.append(list(OscBundle(data)))
    return out


def test_file_replay_to_osc_and_websocket(tiny_bundle, scene_wav) -> None:
    rx = UdpReceiver()
    ws_port = free_port()
    proc = start_daemon(
        ["--input", str(scene_wav), "--fast", "--osc", f"127.0.0.1:{rx.port}", "--ws", f"127.0.0.1:{ws_port}",
         "--wait-clients", "1", "--ws-queue", "100000", "--quiet"],
        {"SER_MODEL_DIR": str(tiny_bundle)},
    )
    try:
        msgs = asyncio.run(ws_collect(ws_port))
        rx.collect(time.monotonic() + timeout(10), stop_after_idle=1.0)
        out, err = proc.communicate(timeout=timeout(20))
    finally:
        proc.kill()
        rx.close()
    assert proc.returncode == 0, err
    hello, states = msgs[0], msgs[1:]
    assert hello["type"] == "hello" and hello["protocol"] == 1
    assert hello["labels"] == ["neutral", "calm", "happy", "angry"] and hello["model"] == "tiny-test"
    assert hello["sample_rate"] == 16000 and hello["hop_ms"] == 250 and hello["window_ms"] == 1000
    assert hello["streams"] == ["scene"]
    # One message per decision, in order, nothing lost, the last one final and neutral.
    assert [s["seq"] for s in states] == list(range(len(states)))
    assert states[-1]["final"] and states[-1]["label"] == "neutral" and not states[-1]["voice"]
    labels = [s["label"] for s in states]
    first_calm, first_angry = labels.index("calm"), labels.index("angry")
    assert first_calm < first_angry
    assert all(s["client_dropped"] == 0 and s["dropped_windows"] == 0 for s in states)
    # The face follows: angry brows while angry, none in the final neutral state.
    angry = states[first_angry + 4]
    assert angry["label"] == "angry" and angry["weights"]["vrm"]["angry"] > 0.5
    assert angry["weights"]["arkit"]["browDownLeft"] > 0.4
    assert states[-1]["weights"]["vrm"]["angry"] == 0 and states[-1]["weights"]["vrm"]["neutral"] == 1
    # The scene lasts 8 s: decisions every 250 ms once the 1 s window is full, plus the final one.
    assert len(states) == 29 + 1

    bundles = osc_messages(rx.packets)
    assert len(bundles) == len(states)
    for bundle, st in zip(bundles, states):
        addrs = [m.address for m in bundle]
        assert addrs[:7] == ["/ser/state", "/ser/emotion/neutral", "/ser/emotion/calm", "/ser/emotion/happy",
                             "/ser/emotion/angry", "/ser/voice", "/ser/seq"]
        # Then the mapped weights: the six VRM 1.0 presets, the VRM 0.x clips of this model's classes, the 52
        # ARKit blendshapes; a final state ends with /ser/final.
        weights = {m.address: m.params[0] for m in bundle[7:] if m.address != "/ser/final"}
        assert len(weights) == 6 + len(st["weights"]["vrm0"]) + 52 and len(st["weights"]["vrm0"]) >= 4
        assert (bundle[-1].address == "/ser/final") is bool(st["final"])
        for target_set in ("vrm", "vrm0", "arkit"):
            for name, w in st["weights"][target_set].items():
                assert weights[f"/ser/{target_set}/{name}"] == pytest.approx(w, abs=1e-3)
        assert bundle[0].params[0] == ("unsure" if st["uncertain"] else st["label"])
        assert bundle[0].params[1] == pytest.approx(st["confidence"], abs=1e-3)
        assert bundle[5].params == [1 if st["voice"] else 0]
        assert bundle[6].params == [st["seq"]]
        for m in bundle[1:5]:
            assert m.params[0] == pytest.approx(st["probs"][m.address.rsplit("/", 1)[1]], abs=1e-3)


def test_osc_cross_checked_with_liblo_oscdump(tiny_bundle, tmp_path) -> None:
    """liblo's oscdump (not python-osc) must decode the same messages."""
    require_reference("oscdump", shutil.which("oscdump") is not None, "apt-get install liblo-tools")
    port = free_port(kind=2)  # SOCK_DGRAM
    short = write_wav(tmp_path / "short.wav", tone(3000, 2.0))
    dump = OscDump(port)  # returns once oscdump listens
    env = {**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}
    try:
        # At real time, as a live receiver gets them (oscdump prints slowly; a --fast flood would
        # overflow its socket buffer): bundles, then the same as unbundled messages.
        for wav, extra in ((short, []), (short, ["--osc-format", "messages"])):
            r = subprocess.run(
                daemon_cmd("--input", str(wav), "--osc", f"127.0.0.1:{port}", "--no-ws", "--quiet", *extra),
                capture_output=True, text=True, timeout=timeout(60), cwd=REPO, env=env,
            )
            assert r.returncode == 0, r.stderr
        printed = dump.wait_for(6 + 6, "/ser/state ")
    finally:
        dump.close()
    lines = [ln.split(" ", 1)[1] for ln in printed if " /ser/" in ln]
    states = [ln for ln in lines if ln.startswith("/ser/state ")]
    assert len(states) == 6 + 6  # every decision of both runs (5 + the final one each)
    assert all(re.fullmatch(r'/ser/state sf "(neutral|calm|happy|angry)" [0-9.]+', s) for s in states)
    assert any('"angry"' in s for s in states)
    floats = [ln for ln in lines if ln.startswith(("/ser/emotion/", "/ser/vrm/", "/ser/arkit/"))]
    assert len(floats) == 12 * (4 + 6 + 52)
    assert all(re.fullmatch(r"/ser/(emotion|vrm|arkit)/\w+ f [0-9.]+", f) for f in floats)
    assert all(re.fullmatch(r"/ser/voice i [01]", v) for v in lines if v.startswith("/ser/voice"))
    seqs = [int(ln.split()[-1]) for ln in lines if ln.startswith("/ser/seq")]
    assert seqs == list(range(6)) * 2


def test_real_time_replay_paces_and_prints(tiny_bundle, tmp_path) -> None:
    wav = write_wav(tmp_path / "short.wav", np.concatenate([tone(3000, 2.0), np.zeros(4000, np.float32)]))
    t0 = time.monotonic()
    r = subprocess.run(
        daemon_cmd("--input", str(wav), "--print", "--no-ws", "--no-osc", "--quiet"),
        capture_output=True, text=True, timeout=timeout(30), cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
    )
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed >= 2.2  # 2.25 s of audio at real time
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 7  # decisions at 1.0, 1.25, ..., 2.25 s, then the final state
    assert "angry" in lines[-2] and lines[-1].endswith("final")
    latencies = [float(m) for m in re.findall(r"([0-9.]+) ms \|", r.stdout)][:-1]
    assert latencies and max(latencies) < 150  # within the default budget even on a busy machine


def test_the_multilingual_model_is_picked_by_name_and_reads_the_bundled_recording(tmp_path) -> None:
    """``--model multilingual`` from any folder: the shipped bundle, not a path relative to it."""
    env = {k: v for k, v in os.environ.items() if k != "SER_MODEL_DIR"}
    runs = {}
    for model in ("multilingual", "default"):
        r = subprocess.run(daemon_cmd("--model", model, "--print", "--no-ws", "--no-osc", "--quiet"),
                           capture_output=True, text=True, timeout=timeout(120), cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
        runs[model] = [ln for ln in r.stdout.splitlines() if ln.startswith("[demo] #")]
    assert len(runs["multilingual"]) == len(runs["default"]) >= 20  # every decision of the recording
    # two different models: their probabilities differ somewhere along the recording
    assert [ln.split("|")[1] for ln in runs["multilingual"]] != [ln.split("|")[1] for ln in runs["default"]]
    bad = subprocess.run(daemon_cmd("--model", "multilingua", "--no-ws", "--no-osc", "--quiet"),
                         capture_output=True, text=True, timeout=timeout(60), cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "did you mean the shipped 'multilingual'" in bad.stderr


def test_sigterm_stops_within_a_second_with_final_neutral_state(tiny_bundle, scene_wav) -> None:
    rx = UdpReceiver()
    proc = start_daemon(
        ["--input", str(scene_wav), "--loop", "--osc", f"127.0.0.1:{rx.port}", "--no-ws", "--quiet"],
        {"SER_MODEL_DIR": str(tiny_bundle)},
    )
    try:
        deadline = time.monotonic() + timeout(30)
        while len(rx.packets) < 3 and time.monotonic() < deadline:
            rx.collect(time.monotonic() + 0.2)
        assert len(rx.packets) >= 3, proc.stderr.read() if proc.poll() is not None else "no OSC"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout(5))
        stop_s = time.monotonic() - t0
        rx.collect(time.monotonic() + 0.3)
    finally:
        proc.kill()
        rx.close()
    assert proc.returncode == 0
    assert stop_s < 1.0 * max(1.0, timeout(1.0))
    last = list(OscBundle(rx.packets[-1][1]))
    assert last[0].address == "/ser/state" and last[0].params[0] == "neutral"
    assert last[5].params == [0]
    # The final state says so (issue 32: without a marker, a lost final state looked like any neutral one),
    # and only it does.
    assert (last[-1].address, last[-1].params) == ("/ser/final", [1])
    assert not any(m.address == "/ser/final" for _, d in rx.packets[:-1] for m in OscBundle(d))


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--hop-ms", "abc"], "expected a number"),
        (["--osc", "localhost:notaport"], "bad port"),
        (["--ws", "0.0.0.0:8765"], "--allow-remote"),
        (["--input", "/nonexistent/x.wav"], "input file not found"),
        (["--model", "/nonexistent/model"], "model not found"),
        (["--window-ms", "2000"], "trained on 1000 ms"),
        (["--hysteresis", "3"], "hysteresis must be"),
    ],
)
def test_user_mistakes_give_one_line_and_exit_2(tiny_bundle, scene_wav, args, needle) -> None:
    base = [] if "--input" in args else ["--input", str(scene_wav)]
    base += [] if "--ws" in args else ["--no-ws"]
    r = subprocess.run(
        daemon_cmd(*base, *args), capture_output=True, text=True, timeout=timeout(60), cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("ser-daemon: error:")]) == 1


def test_bad_input_files_are_refused_clearly(tiny_bundle, tmp_path) -> None:
    good = write_wav(tmp_path / "good.wav", tone(440, 0.5))
    cases = {
        "not_audio.wav": b"this is not a wav file at all",
        "empty.wav": b"",
        "truncated.wav": good.read_bytes()[:30],
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        r = subprocess.run(
            daemon_cmd("--input", str(p), "--no-ws", "--no-osc", "--quiet"), capture_output=True, text=True,
            timeout=timeout(60), cwd=REPO, env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
        )
        assert r.returncode == 2, (name, r.stderr)
        assert str(p) in r.stderr and "Traceback" not in r.stderr


def test_config_file_keys_mirror_flags(tiny_bundle, scene_wav, tmp_path) -> None:
    rx = UdpReceiver()
    cfg = tmp_path / "ser.toml"
    cfg.write_text(
        f'input = ["{scene_wav}"]\nfast = true\nosc = ["127.0.0.1:{rx.port}"]\nno_ws = true\nquiet = true\n'
        "hop_ms = 500\n[smoothing]\nmin_dwell_ms = 0\n"
    )
    try:
        r = subprocess.run(daemon_cmd("--config", str(cfg)), capture_output=True, text=True, timeout=timeout(60),
                           cwd=REPO, env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)})
        rx.collect(time.monotonic() + 1.0, stop_after_idle=0.3)
    finally:
        rx.close()
    assert r.returncode == 0, r.stderr
    assert len(rx.packets) == 15 + 1  # hop 500 ms over 8 s with a 1 s window, plus final
    bad = tmp_path / "bad.toml"
    bad.write_text("hop_ms = 'fast'\n")
    r = subprocess.run(daemon_cmd("--config", str(bad)), capture_output=True, text=True, timeout=timeout(60), cwd=REPO)
    assert r.returncode == 2 and "hop_ms has the wrong type" in r.stderr
    bad.write_text("no_such_option = 1\n")
    r = subprocess.run(daemon_cmd("--config", str(bad)), capture_output=True, text=True, timeout=timeout(60), cwd=REPO)
    assert r.returncode == 2 and "unknown option 'no_such_option'" in r.stderr


def test_help_explains_every_option() -> None:
    r = subprocess.run(daemon_cmd("--help"), capture_output=True, text=True, timeout=timeout(30), cwd=REPO)
    assert r.returncode == 0
    for opt in ("--device", "--list-devices", "--input", "--fast", "--osc", "--ws", "--backend",
                "--latency-budget-ms", "--config", "--quiet", "--log-level", "--hop-ms", "--min-dwell-ms"):
        assert opt in r.stdout
    assert "TOML" in r.stdout


def test_no_model_is_said_clearly(scene_wav, tmp_path) -> None:
    r = subprocess.run(
        daemon_cmd("--input", str(scene_wav), "--model", str(tmp_path), "--no-ws", "--no-osc"),
        capture_output=True, text=True, timeout=timeout(30), cwd=REPO,
    )
    assert r.returncode == 2 and "no ser_model.json" in r.stderr


def test_file_input_does_not_import_tensorflow_or_sounddevice(tiny_bundle, scene_wav) -> None:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['ser-daemon', '--input', {str(scene_wav)!r}, '--fast', '--no-ws', '--no-osc', '--quiet']\n"
        "from ser_daemon.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print(rc, 'tensorflow' in sys.modules, 'sounddevice' in sys.modules, 'keras' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout(60), cwd=REPO,
                       env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)})
    assert r.stdout.strip().splitlines()[-1] == "0 False False False", r.stderr


def test_live_status_line_on_a_terminal(tiny_bundle, tmp_path) -> None:
    """On a terminal, one self-overwriting line: emotion, confidence, voice, latency; none with --quiet."""
    wav = write_wav(tmp_path / "s.wav", tone(3000, 2.0))
    env = {**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}

    def run(*extra: str) -> str:
        return on_a_terminal(["--input", str(wav), "--no-ws", "--no-osc", *extra], env, limit_s=30)

    shown = run()
    lines = [seg for seg in shown.split("\r") if "voice" in seg]
    assert lines, shown
    assert re.search(r"angry\s+[0-9.]+\s+voice on\s+latency\s+[0-9.]+ ms", shown)
    assert "\n" not in "".join(lines[:-1]).replace("\x1b[K", "")  # it rewrites one line
    assert "voice" not in run("--quiet")


def test_missing_portaudio_is_one_line_naming_the_package(tmp_path) -> None:
    """sounddevice raises OSError('PortAudio library not found') without libportaudio2; shadow it so."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for args in (["--device", "0"], ["--list-devices"]):
        r = subprocess.run(daemon_cmd(*args, "--no-ws", "--no-osc"), capture_output=True, text=True,
                           timeout=timeout(30), cwd=REPO, env=env)
        assert r.returncode == 2, r.stderr
        assert "libportaudio2" in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
