"""Resident memory of a running ``ser-daemon``, as a user starts it (the README's "Cost" figure).

Starts the real CLI (shipped model, LiteRT) on the bundled recording in a loop at real time,
with a few output set-ups, and reads ``VmRSS`` / ``VmHWM`` from ``/proc/PID/status`` every
second for ``--seconds``; figures in MiB (1024 x 1024 bytes).  Linux only.

    python benchmarks/resident_memory.py                # about 4 x 35 s
    python benchmarks/resident_memory.py --seconds 10   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from _util import machine, save  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(extra: list[str], seconds: float) -> dict:
    demo = REPO / "ser_daemon" / "data" / "demo.wav"
    cmd = [sys.executable, "-m", "ser_daemon", "--input", str(demo), "--loop", "--quiet",
           "--ws", f"127.0.0.1:{_free_port()}", *extra]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    samples = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(1.0)
            samples.append(_kib(proc.pid, "VmRSS"))
        peak = _kib(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if not samples or proc.returncode not in (0, -15):
        raise SystemExit(f"{cmd} failed: {proc.stderr.read()[-500:] if proc.stderr else ''}")
    steady = samples[len(samples) // 2:]
    return {"args": extra, "rss_mib_steady_median": round(sorted(steady)[len(steady) // 2] / 1024, 1),
            "rss_mib_last": round(samples[-1] / 1024, 1), "peak_mib": round(peak / 1024, 1), "samples": len(samples)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=35.0)
    a = ap.parse_args()
    setups = [
        ["--osc", "127.0.0.1:9"],                                   # the defaults: generic OSC + WebSocket
        ["--osc", "vrchat:9", "--vrchat-listen", "0"],               # VRChat parameters, no listener
        ["--osc", "vrchat"],                                        # VRChat with OSCQuery (mDNS, HTTP)
        ["--osc", "127.0.0.1:9", "--web", f"127.0.0.1:{_free_port()}"],  # the web view
    ]
    rows = [measure(s, a.seconds) for s in setups]
    for r in rows:
        print(f"{' '.join(r['args']):<50s} RSS {r['rss_mib_steady_median']:6.1f} MiB (peak {r['peak_mib']:.1f} MiB)")
    save("resident_memory", {"machine": machine(), "seconds": a.seconds, "rows": rows})
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
