"""How long the running daemon takes to stop, per way of stopping it (signal or closed pipe).

For each of SIGINT, SIGTERM, SIGHUP and a --print reader that goes away, ``--runs`` times:
start the daemon on the looped demo recording with --print, wait for its first state, then
stop it and time the moment of the signal (or of closing the pipe) to the process's exit.
Exit codes and whether the last printed line was the final neutral state are recorded too.

Usage: python benchmarks/exit_times.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

from _util import REPO, git_rev, machine, save, stats_ms


def one(way: str) -> dict:
    cmd = [sys.executable, "-m", "ser_daemon", "--input", str(REPO / "ser_daemon/data/demo.wav"), "--loop",
           "--print", "--no-osc", "--ws", "127.0.0.1:0", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        first = proc.stdout.readline()
        t0 = time.monotonic()
        if way == "closed_pipe":
            proc.stdout.close()
            proc.wait(timeout=10)
            took = time.monotonic() - t0
            rest, err = "", proc.stderr.read()
        else:
            proc.send_signal(getattr(signal, way))
            rest, err = proc.communicate(timeout=10)
            took = time.monotonic() - t0
    finally:
        proc.kill()
    lines = (first + rest).strip().splitlines()
    return {"ms": took * 1000, "code": proc.returncode, "final": lines[-1].endswith(" final") if rest else None,
            "traceback": "Traceback" in err}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    out = {"machine": machine(), "git": git_rev(), "ways": {}}
    for way in ("SIGINT", "SIGTERM", "SIGHUP", "closed_pipe"):
        runs = [one(way) for _ in range(args.runs)]
        out["ways"][way] = {"stop_ms": stats_ms(r["ms"] for r in runs), "codes": sorted({r["code"] for r in runs}),
                            "final_state_printed": [r["final"] for r in runs],
                            "tracebacks": sum(r["traceback"] for r in runs)}
        print(way, json.dumps(out["ways"][way]))
    save("exit_times", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
