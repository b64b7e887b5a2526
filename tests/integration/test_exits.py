"""Every way the daemon ends, provoked for real: SIGHUP, signals at random moments, a closed pipe.

Each must end within a second, without a traceback, with the documented exit code (130 for
SIGINT, 0 for SIGTERM and SIGHUP, 141 when the --print reader goes away) and, once states
have gone out, with the final neutral state.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from conftest import timeout
from helpers import REPO, UdpReceiver, daemon_cmd, free_port, wait_for_stop_handlers, ws_connect
from tiny_model import tone, write_wav

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]

EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 0, signal.SIGHUP: 0}
ONE_SECOND = 1.0 * max(1.0, timeout(1.0))


@pytest.fixture(scope="module")
def loop_wav(tmp_path_factory) -> Path:
    x = np.concatenate([tone(3000, 1.5), np.zeros(4000, np.float32), tone(200, 1.5)])
    return write_wav(tmp_path_factory.mktemp("wav") / "loop.wav", x)


def spawn(bundle: Path, *args: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(daemon_cmd(*args), stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "SER_MODEL_DIR": str(bundle)})


def signal_and_time(proc: subprocess.Popen, sig: int) -> tuple[float, str, str]:
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout(10))
    finally:
        proc.kill()
    return time.monotonic() - t0, out or "", err or ""


def test_sighup_stops_cleanly_with_the_final_state(tiny_bundle, loop_wav) -> None:
    """Terminal or SSH session closed: avatars must not freeze on the last emotion."""
    ws_port = free_port()
    rx = UdpReceiver()
    proc = spawn(tiny_bundle, "--input", str(loop_wav), "--loop", "--osc", f"127.0.0.1:{rx.port}",
                 "--ws", f"127.0.0.1:{ws_port}", "--quiet")

    async def watch() -> tuple[list[dict], float, str]:
        ws = await ws_connect(ws_port, limit_s=30, proc=proc)
        msgs: list[dict] = []
        async with ws:
            while not [m for m in msgs if m["type"] == "state"]:
                msgs.append(json.loads(await asyncio.wait_for(ws.recv(), timeout(20))))
            t0 = time.monotonic()
            proc.send_signal(signal.SIGHUP)
            while not (msgs[-1].get("final")):  # states keep coming until the stop: bound the wait as a whole
                assert time.monotonic() - t0 < timeout(10), "no final state 10 s after SIGHUP"
                msgs.append(json.loads(await asyncio.wait_for(ws.recv(), timeout(5))))
        took = await asyncio.to_thread(lambda: (proc.wait(timeout(10)), time.monotonic() - t0)[1])
        return msgs, took, proc.stderr.read()

    try:
        msgs, took, err = asyncio.run(watch())
        rx.collect(time.monotonic() + 0.3, stop_after_idle=0.1)
    finally:
        proc.kill()
        rx.close()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert took < ONE_SECOND, took
    final = msgs[-1]
    assert final["final"] and final["label"] == "neutral" and not final["voice"]
    last = list(OscBundle(rx.packets[-1][1]))
    assert last[0].address == "/ser/state" and last[0].params[0] == "neutral"


def _random_schedule(n: int, seed: int = 13) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    # Half in the first 100 ms of ser-daemon's own start-up, half anywhere in the next 3 s.
    return [(sigs[i % 3], rng.uniform(0.0, 0.1) if i < n // 2 else rng.uniform(0.1, 3.0)) for i in range(n)]


@pytest.mark.parametrize("sig,delay_s", _random_schedule(12))
def test_signal_at_a_random_moment(tiny_bundle, loop_wav, sig, delay_s) -> None:
    """From ser-daemon's first line on: the documented code, within a second, no traceback."""
    proc = spawn(tiny_bundle, "--input", str(loop_wav), "--loop", "--print", "--no-osc",
                 "--ws", "127.0.0.1:0", "--quiet")
    wait_for_stop_handlers(proc)
    time.sleep(delay_s)
    took, out, err = signal_and_time(proc, sig)
    assert proc.returncode == EXPECTED[sig], (proc.returncode, err)
    assert "Traceback" not in err and "Error" not in err, err
    assert took < ONE_SECOND, took
    lines = out.strip().splitlines()
    if any(" final" not in ln for ln in lines):  # states went out: the last one is the final neutral one
        assert lines[-1].endswith(" final") and " neutral " in lines[-1], lines[-3:]


def _pythons_own_interrupt(err: str) -> bool:
    """Python's KeyboardInterrupt traceback from before ser-daemon's first line (site, runpy):
    no frame of ours in it (the package's empty ``__init__`` aside)."""
    ours = [ln for ln in err.splitlines() if "/ser_daemon/" in ln and "/ser_daemon/__init__.py" not in ln]
    return err.rstrip().endswith("KeyboardInterrupt") and not ours


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("delay_s", [0.0, 0.02, 0.05, 0.1])
def test_stop_signal_while_python_itself_starts(tiny_bundle, loop_wav, sig, delay_s) -> None:
    """Before ser-daemon's first line runs, Python handles signals: SIGTERM/SIGHUP (and SIGINT
    before Python's own handler is in) end the process as the OS does (killed by the signal,
    nothing printed), and SIGINT may print Python's own KeyboardInterrupt traceback; from that
    line on, cleanly with the code and nothing printed."""
    proc = spawn(tiny_bundle, "--input", str(loop_wav), "--loop", "--no-osc", "--no-ws", "--quiet")
    time.sleep(delay_s)
    took, out, err = signal_and_time(proc, sig)
    assert took < ONE_SECOND, took
    if sig == signal.SIGINT and err:
        assert proc.returncode in (1, -sig) and _pythons_own_interrupt(err), (proc.returncode, err)
    else:
        assert proc.returncode in (EXPECTED[sig], -sig), (proc.returncode, err)
        assert err == "", err


def test_print_to_a_closed_pipe_stops_cleanly(tiny_bundle, loop_wav) -> None:
    """`ser-daemon --print | head -1`: the reader goes away; the daemon stops at once, exit 141,
    and the other outputs still get the final neutral state."""
    rx = UdpReceiver()
    proc = spawn(tiny_bundle, "--input", str(loop_wav), "--loop", "--print", "--osc", f"127.0.0.1:{rx.port}",
                 "--no-ws", "--quiet")
    try:
        first = proc.stdout.readline()
        assert first.startswith("[loop]"), first
        t0 = time.monotonic()
        proc.stdout.close()  # what `head -1` does after its line
        proc.wait(timeout=timeout(10))
        took = time.monotonic() - t0
        err = proc.stderr.read()
        rx.collect(time.monotonic() + 0.3, stop_after_idle=0.1)
    finally:
        proc.kill()
        rx.close()
    assert proc.returncode == 141 and "Traceback" not in err, err
    assert took < 1.0 + 0.25 * 2  # the next decision (hop 250 ms) finds the pipe closed
    last = list(OscBundle(rx.packets[-1][1]))
    assert last[0].address == "/ser/state" and last[0].params[0] == "neutral"


def test_print_into_head_in_a_real_shell_pipeline(tiny_bundle, loop_wav) -> None:
    script = (f"set -o pipefail; {' '.join(daemon_cmd())} --input {loop_wav} --loop --print --no-osc --no-ws "
              "--quiet | head -n 2; echo status=${PIPESTATUS[0]}")
    t0 = time.monotonic()
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=timeout(30), cwd=REPO,
                       env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)})
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[-1] == "status=141", r.stdout
    assert "Traceback" not in r.stderr and r.stderr == "", r.stderr
    assert time.monotonic() - t0 < timeout(20)


def _listens_on_tcp(pid: int) -> bool:
    """Whether the process holds a listening TCP socket (/proc: its socket inodes in LISTEN state)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
        with open(f"/proc/{pid}/net/tcp") as f:
            rows = [ln.split() for ln in f.readlines()[1:]]
    except OSError:
        return False
    return any(r[3] == "0A" and r[9] in inodes for r in rows)  # 0A: LISTEN


def test_stop_during_the_oscquery_announcement(tiny_bundle, loop_wav) -> None:
    """With a VRChat target the daemon announces itself over OSCQuery first (mDNS probing: ~3 s).
    A stop then must not wait for the announcement: within a second, code 0, final neutral state."""
    import secrets
    import socket

    rx = UdpReceiver()
    proc = subprocess.Popen(
        daemon_cmd("--input", str(loop_wav), "--loop", "--print", "--osc", f"vrchat@127.0.0.1:{rx.port}",
                   "--vrchat-listen", str(free_port(kind=socket.SOCK_DGRAM)), "--no-ws", "--log-level", "info"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle),
             "SER_VRCHAT_SERVICE_PREFIX": f"VRChat-Client-Nobody{secrets.token_hex(3)}"},
    )
    try:
        wait_for_stop_handlers(proc)
        deadline = time.monotonic() + timeout(30)
        while not _listens_on_tcp(proc.pid):  # the OSCQuery HTTP server: the announcement has begun
            assert time.monotonic() < deadline and proc.poll() is None, "no OSCQuery announcement"
            time.sleep(0.005)
        took, out, err = signal_and_time(proc, signal.SIGTERM)
    finally:
        proc.kill()
        rx.close()
    assert took < ONE_SECOND, took
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "OSCQuery: advertising" not in err, "the announcement was over before the signal: nothing tested"
    lines = out.strip().splitlines()
    assert lines and lines[-1].endswith(" final") and " neutral " in lines[-1], lines[-3:]
