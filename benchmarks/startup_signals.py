"""Signals at random moments of start-up: how often does the daemon end as the README says?

For each way of starting the daemon (``python -m ser_daemon`` and the ``ser-daemon`` script)
and each stop signal (SIGINT, SIGTERM, SIGHUP), ``--runs`` times: start the daemon on the looped
demo recording with ``--print``, wait a random delay in [0, ``--max-delay-ms``) after the
process exists, send the signal and wait (at most 5 s) for it to end.

A run passes when the daemon ended within 1 s of the signal, printed no traceback and nothing
else on stderr, exited with the documented code (130 SIGINT, 0 SIGTERM/SIGHUP) and, if states
went out, ended with the final neutral one.  Being killed by the signal itself (SIGTERM or SIGHUP
before Python runs ser-daemon's first line, README "Operations") is counted apart: allowed, with
nothing printed.  Everything else is a failure; the first few are shown with their stderr.

Usage: python benchmarks/startup_signals.py [--runs 20] [--max-delay-ms 300] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from _util import REPO, git_rev, machine, save

EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 0, signal.SIGHUP: 0}
STOP_S = 1.0  # README: every stop ends within a second
WAIT_S = 5.0  # a run that takes longer than this is a hang


def launcher(name: str) -> list[str]:
    if name == "module":
        return [sys.executable, "-m", "ser_daemon"]
    script = Path(sys.executable).with_name("ser-daemon")
    return [str(script if script.exists() else shutil.which("ser-daemon") or "ser-daemon")]


def classify(sig: int, code: int | None, took: float, out: str, err: str) -> str:
    """'ok', 'killed' (by the signal, before our first line) or why the run failed."""
    if code is None:
        return "hang"
    if code == -sig and sig != signal.SIGINT and not out and not err:
        return "killed"
    if "Traceback" in err:
        return "traceback"
    if code != EXPECTED[sig]:
        return f"exit {code}"
    if err.strip():
        return "stderr"
    if took >= STOP_S:
        return "slow"
    lines = out.strip().splitlines()
    if any(" final" not in ln for ln in lines) and not (lines[-1].endswith(" final") and " neutral " in lines[-1]):
        return "no final state"
    return "ok"


def one(cmd: list[str], sig: int, delay_s: float) -> dict:
    args = ["--input", str(REPO / "ser_daemon/data/demo.wav"), "--loop", "--print", "--no-osc",
            "--ws", "127.0.0.1:0", "--quiet"]
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    code: int | None
    try:
        time.sleep(delay_s)
        t0 = time.monotonic()
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=WAIT_S)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            code = None
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"signal": signal.Signals(sig).name, "delay_ms": round(delay_s * 1000, 1), "code": code,
            "took_ms": round(took * 1000, 1), "result": classify(sig, code, took, out, err), "stderr": err[-600:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="runs per launcher and signal")
    ap.add_argument("--max-delay-ms", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--launchers", default="module,script", help="module, script or both (comma-separated)")
    ap.add_argument("--out", default="startup_signals", help="name of the JSON file in benchmarks/results/")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cases = [(name, sig) for name in args.launchers.split(",") for sig in EXPECTED]
    runs = []
    for _ in range(args.runs):  # interleaved, so load changes hit every case alike
        for name, sig in cases:
            r = one(launcher(name), sig, rng.uniform(0.0, args.max_delay_ms / 1000.0))
            r["launcher"] = name
            runs.append(r)
    summary = {}
    for name, sig in cases:
        mine = [r for r in runs if r["launcher"] == name and r["signal"] == signal.Signals(sig).name]
        counts = Counter(r["result"] for r in mine)
        good = counts["ok"] + counts["killed"]
        summary[f"{name} {signal.Signals(sig).name}"] = {"passed": good, "runs": len(mine), **dict(counts)}
    total = sum(s["passed"] for s in summary.values())
    print(json.dumps(summary, indent=1))
    print(f"passed {total}/{len(runs)} ({100.0 * total / max(1, len(runs)):.1f}%)")
    for r in [r for r in runs if r["result"] not in ("ok", "killed")][:8]:
        print(f"FAIL {r['launcher']} {r['signal']} at {r['delay_ms']} ms: {r['result']} (code {r['code']}, "
              f"{r['took_ms']} ms)\n  " + r["stderr"].strip().replace("\n", "\n  ")[-400:])
    save(args.out, {"machine": machine(), "git": git_rev(), "args": vars(args), "summary": summary,
                    "passed": total, "runs": len(runs), "failures": [r for r in runs if r["result"] not in ("ok", "killed")]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
