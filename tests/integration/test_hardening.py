"""Issue 32, second hardening round: each case through the real CLI, sockets or files.

Every refusal is one line naming the cause and exit 2 (or the documented close code), never a
traceback; what must keep working keeps working.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd, free_port

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_idle_daemon_does_not_burn_a_core_after_its_fast_file_ends(tiny_bundle, tmp_path) -> None:
    from tiny_model import tone, write_wav

    wav = write_wav(tmp_path / "ok.wav", tone(3000, 3.0))
    proc = subprocess.Popen(
        daemon_cmd("--input", str(wav), "--fast", "--ingest", f"127.0.0.1:{free_port()}", "--no-osc", "--no-ws",
                   "--print", "--quiet"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
    )
    try:
        deadline = time.monotonic() + timeout(30)
        assert proc.stdout is not None
        for line in proc.stdout:  # the file's last state: it has ended, the ingest server stays up
            if line.rstrip().endswith(" final") or time.monotonic() > deadline:
                break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.5)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(2.0)
        share = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=timeout(10))
    finally:
        proc.kill()
    assert share < 0.25, f"the idle daemon used {share:.0%} of a core"  # it used 100% before
    assert proc.returncode == 0


@pytest.mark.parametrize("redirect, code, cause", [
    (">&-", 2, "stdout is closed"),  # checked at start-up, before any output opens
    ("> /dev/full", 1, "cannot write to stdout (No space left on device)"),  # fails mid-run: one line, a clean stop
])
def test_jsonl_to_a_closed_or_full_stdout_is_one_line(tiny_bundle, redirect: str, code: int, cause: str) -> None:
    import shlex

    cmd = " ".join(shlex.quote(a) for a in daemon_cmd("--input", str(REPO / "ser_daemon/data/demo.wav"), "--fast",
                                                        "--jsonl", "--no-osc", "--no-ws", "--quiet"))
    r = subprocess.run(["bash", "-c", f"exec {cmd} {redirect}"], capture_output=True, text=True, cwd=REPO,
                       timeout=timeout(60), env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)})
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert cause in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("flag", ["--ws", "--web", "--ingest"])
def test_a_name_that_starts_with_127_is_not_loopback(flag: str) -> None:
    """Issue 32: '127.example.invalid' passed a prefix check, so no --allow-remote or token was asked for."""
    r = subprocess.run(daemon_cmd(flag, "127.example.invalid:8765", "--input", str(REPO / "ser_daemon/data/demo.wav"),
                                  "--fast", "--no-osc"), capture_output=True, text=True, cwd=REPO, timeout=timeout(60))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "refusing to listen on 127.example.invalid" in r.stderr, r.stderr


def test_a_long_wav_replays_without_loading_it(tiny_bundle) -> None:
    """Issue 32: a 5-hour, 576 MB WAV peaked at 2.8 GB resident. The benchmark's one-hour smoke size
    (115 MB of WAV: +541 MB before, when the file was converted whole to float32)."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import replay_memory

    res = replay_memory.measure(1.0, env={"SER_MODEL_DIR": str(tiny_bundle)})
    assert res["short"]["exit_code"] == 0 and res["long"]["exit_code"] == 0, res
    assert res["long"]["first_line"].startswith("[long]"), res
    assert res["extra_peak_mb"] <= 200, res
