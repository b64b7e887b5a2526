"""Avatar output profiles end to end: the daemon against real receivers on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from conftest import require_reference, timeout
from helpers import REPO, OscDump, UdpReceiver, daemon_cmd, free_port
from tiny_model import tone, write_wav

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]


def test_vmc_profile_decoded_by_liblo(tiny_bundle, tmp_path) -> None:
    require_reference("oscdump", shutil.which("oscdump") is not None, "apt-get install liblo-tools")
    port = free_port(kind=socket.SOCK_DGRAM)
    wav = write_wav(tmp_path / "angry.wav", tone(3000, 2.5))
    dump = OscDump(port)  # returns once oscdump listens
    try:
        r = subprocess.run(
            daemon_cmd("--input", str(wav), "--osc", f"vmc@127.0.0.1:{port}", "--no-ws", "--quiet"),
            capture_output=True, text=True, timeout=timeout(60), cwd=REPO,
            env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
        )
        assert r.returncode == 0, r.stderr
        printed = dump.wait_for(7 + 1, "/VMC/Ext/Blend/Apply")
    finally:
        dump.close()
    lines = [ln.split(" ", 1)[1] for ln in printed if " /VMC/" in ln]
    applies = [i for i, ln in enumerate(lines) if ln == "/VMC/Ext/Blend/Apply "]
    assert len(applies) == 7 + 1  # decisions at 1.0 .. 2.5 s and the final state
    vals = [ln for ln in lines if ln.startswith("/VMC/Ext/Blend/Val ")]
    assert all(re.fullmatch(r'/VMC/Ext/Blend/Val sf "\w+" [0-9.]+', v) for v in vals)
    # Every Apply follows its Val messages: Joy, Angry, Sorrow, Fun, Neutral (+ custom Surprised).
    first = lines[: applies[0]]
    assert [re.search(r'"(\w+)"', v).group(1) for v in first] == ["Joy", "Angry", "Sorrow", "Fun", "Neutral"]
    angry = [float(v.split()[-1]) for v in vals if '"Angry"' in v]
    assert max(angry) > 0.5 and angry[-1] == 0.0  # the final state relaxes the face


def test_vrchat_profile_and_avatar_change(tiny_bundle, tmp_path) -> None:
    rx = UdpReceiver()
    listen = free_port(kind=socket.SOCK_DGRAM)
    wav = write_wav(tmp_path / "long.wav", np.concatenate([tone(3000, 4.0), tone(200, 3.0)]))
    proc = subprocess.Popen(
        daemon_cmd("--input", str(wav), "--osc", f"vrchat@127.0.0.1:{rx.port}", "--vrchat-listen", str(listen),
                   "--no-oscquery",
                   "--vrchat-params", "full", "--no-ws", "--quiet"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
    )
    names = {f"/avatar/parameters/SER_{n}"
             for n in ("Neutral", "Calm", "Happy", "Angry", "Confidence", "Label", "Intensity", "Voice")}
    try:
        deadline = time.monotonic() + timeout(20)
        while len(rx.packets) < 8 and time.monotonic() < deadline:
            rx.collect(time.monotonic() + 0.2)
        first = [OscMessage(d) for _, d in rx.packets[:8]]
        assert {m.address for m in first} == names  # the first decision sends everything
        rx.collect(time.monotonic() + 1.5)  # receive as they come: arrival times are checked below
        n_before = len(rx.packets)
        change = OscMessageBuilder("/avatar/change")
        change.add_arg("avtr_00000000-0000-0000-0000-000000000000", "s")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(change.build().dgram, ("127.0.0.1", listen))
        rx.collect(time.monotonic() + 0.6)
        after = [OscMessage(d) for _, d in rx.packets[n_before:]]
        assert names <= {m.address for m in after}  # full state again for the new avatar
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout(5))
        rx.collect(time.monotonic() + 0.3)
    finally:
        proc.kill()
        rx.close()
    msgs = [OscMessage(d) for _, d in rx.packets]
    # Types as VRChat expects them; never more than the throttle allows.
    for m in msgs:
        tag = m.dgram.split(b",", 1)[1][:1]
        if m.address.endswith(("Label",)):
            assert tag == b"i" and 0 <= m.params[0] <= 4
        elif m.address.endswith("Voice"):
            assert tag in (b"T", b"F")
        else:
            assert tag == b"f"
    labels = [m.params[0] for m in msgs if m.address.endswith("Label")]
    assert 4 in labels  # angry = 1 + its index in (neutral, calm, happy, angry)
    assert labels[-1] == 1  # final: the neutral face (1 + neutral's index)
    times = sorted({round(t, 3) for t, _ in rx.packets})
    bursts = [t for i, t in enumerate(times) if i == 0 or t - times[i - 1] > 0.05]
    gaps = np.diff(bursts[:-1])  # the final state (on SIGTERM) is never throttled: leave it out
    assert len(gaps) and gaps.min() > 0.15  # on change only, at most 5 updates a second


def test_vxp_profile_on_a_real_receiver(tiny_bundle, tmp_path) -> None:
    """Avatars made for the VXP mod: VXP_Expression int (RAVDESS order), VXP_Confidence float."""
    rx = UdpReceiver()
    wav = write_wav(tmp_path / "calm.wav", np.concatenate([tone(200, 2.5), np.zeros(16000, np.float32)]))
    r = subprocess.run(
        daemon_cmd("--input", str(wav), "--osc", f"vxp@127.0.0.1:{rx.port}", "--vrchat-listen", "0",
                   "--no-ws", "--quiet"),
        capture_output=True, text=True, timeout=timeout(60), cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
    )
    rx.collect(time.monotonic() + 0.5, stop_after_idle=0.2)
    rx.close()
    assert r.returncode == 0, r.stderr
    msgs = [OscMessage(d) for _, d in rx.packets]
    assert {m.address for m in msgs} == {"/avatar/parameters/VXP_Expression", "/avatar/parameters/VXP_Confidence"}
    expr = [m.params[0] for m in msgs if m.address.endswith("Expression")]
    assert all(m.dgram.split(b",", 1)[1][:1] == b"i" for m in msgs if m.address.endswith("Expression"))
    assert 2 in expr  # calm is 2 in VXP's numbering
    assert expr[-1] == 1  # silence past the hold / final: neutral
