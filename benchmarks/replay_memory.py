"""Resident memory of a WAV replay: a five-hour file against a ten-second one (issue 32).

Writes two 16 kHz mono 16-bit WAV files of silence (the long one sparse on disk: 576 MB that
take no space), starts ``ser-daemon --input FILE --print`` on each at real time, waits for its
first printed state plus a second, then reads the daemon's peak resident memory (VmHWM from
/proc) and stops it. Loading the long file whole peaked at 2.8 GB; the target is at most
200 MB more than the short one.

Usage: python benchmarks/replay_memory.py [--hours 5] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _util import REPO, git_rev, machine, save

RATE = 16000


def silent_wav(path: Path, seconds: float) -> Path:
    """A 16 kHz mono 16-bit WAV of ``seconds`` of silence; its data is a hole in the file."""
    n_bytes = int(seconds * RATE) * 2
    header = b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16) + b"data" + struct.pack("<I", n_bytes)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + n_bytes)
    return path


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_mb(wav: Path, env: dict[str, str] | None = None, settle_s: float = 1.0, timeout_s: float = 120.0) -> dict[str, Any]:
    """Run the daemon on ``wav`` until its first state + ``settle_s``; its peak and current resident MB."""
    cmd = [sys.executable, "-m", "ser_daemon", "--input", str(wav), "--print", "--no-osc", "--no-ws", "--quiet"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **(env or {})})
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        started_s = time.monotonic() - t0
        time.sleep(settle_s)
        out = {"file_mb": round(wav.stat().st_size / 1e6, 1), "first_state_s": round(started_s, 2),
               "peak_mb": round(_kib(proc.pid, "VmHWM") / 1024, 1), "rss_mb": round(_kib(proc.pid, "VmRSS") / 1024, 1),
               "first_line": first.strip()[:80]}
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout_s)
    finally:
        proc.kill()
    out["exit_code"] = proc.returncode
    out["stderr_tail"] = err[-500:]
    return out


def measure(hours: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="replay-mem-") as d:
        short = peak_mb(silent_wav(Path(d) / "short.wav", 10.0), env)
        long = peak_mb(silent_wav(Path(d) / "long.wav", hours * 3600), env)
    return {"hours": hours, "short": short, "long": long, "extra_peak_mb": round(long["peak_mb"] - short["peak_mb"], 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=5.0)
    ap.add_argument("--smoke", action="store_true", help="a one-hour file, result not saved")
    args = ap.parse_args()
    res = {"machine": machine(), "git": git_rev(), **measure(1.0 if args.smoke else args.hours)}
    print(json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=2))
    if not args.smoke:
        save("replay_memory", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
