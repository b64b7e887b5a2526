"""Signals at random moments of start-up: how often does the daemon end as the README says?

For each way of starting the daemon (``python -m ser_daemon`` and the ``ser-daemon`` script)
and each stop signal (SIGINT, SIGTERM, SIGHUP), ``--runs`` times: start the daemon on the looped
demo recording with ``--print``, wait a random delay in [0, ``--max-delay-ms``) after the
process exists, send the signal and wait (at most 5 s) for it to end.

A run is "ok" when the daemon ended within 1 s of the signal, printed nothing on stderr, exited
with the documented code (130 SIGINT, 0 SIGTERM/SIGHUP) and, if states went out, ended with the
final neutral one.  Before ser-daemon's first line has installed its handlers Python handles the
signal (README "Operations"); those runs are counted apart: "killed" (ended by the signal the OS
way, nothing printed) and "python" (SIGINT: Python's own KeyboardInterrupt traceback with no frame
of ours).  Everything else is a failure; the first few are shown with their stderr.
Also measured: how long after launch the handlers are in (``--window-runs``, /proc SigCgt).

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

from _util import REPO, git_rev, machine, save, stats_ms

EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 0, signal.SIGHUP: 0}
STOP_S = 1.0  # README: every stop ends within a second
WAIT_S = 5.0  # a run that takes longer than this is a hang


SCRIPT: list[str] = []  # --script


def launcher(name: str) -> list[str]:
    if name == "module":
        return [sys.executable, "-m", "ser_daemon"]
    if SCRIPT:
        return SCRIPT
    script = Path(sys.executable).with_name("ser-daemon")
    return [str(script if script.exists() else shutil.which("ser-daemon") or "ser-daemon")]


def pythons_own_interrupt(err: str) -> bool:
    """Python's KeyboardInterrupt traceback from before ser-daemon's handlers were in: no frame of ours
    past the module that installs them."""
    ours = [ln for ln in err.splitlines() if "/ser_daemon/" in ln and "/ser_daemon/__init__.py" not in ln]
    return err.rstrip().endswith("KeyboardInterrupt") and not ours


def classify(sig: int, code: int | None, took: float, out: str, err: str) -> str:
    """'ok', 'killed' / 'python' (before our handlers were in: documented) or why the run failed."""
    if code is None:
        return "hang"
    if code == -sig and not out and not err:
        return "killed"
    if sig == signal.SIGINT and code in (1, -sig) and pythons_own_interrupt(err):
        return "python"
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


def handlers_in_ms(cmd: list[str]) -> float:
    """Milliseconds from launch until the process catches SIGTERM (its stop handlers are in)."""
    proc = subprocess.Popen([*cmd, "--input", str(REPO / "ser_daemon/data/demo.wav"), "--loop", "--no-osc", "--no-ws",
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < WAIT_S:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    caught = next(int(ln.split()[1], 16) for ln in f if ln.startswith("SigCgt:"))
                if caught & (1 << (signal.SIGTERM - 1)):
                    return (time.monotonic() - t0) * 1000.0
            except (OSError, StopIteration):
                pass
            time.sleep(0.0002)
        return float("nan")
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="runs per launcher and signal")
    ap.add_argument("--max-delay-ms", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--launchers", default="module,script", help="module, script or both (comma-separated)")
    ap.add_argument("--out", default="startup_signals", help="name of the JSON file in benchmarks/results/")
    ap.add_argument("--window-runs", type=int, default=10, help="launches per launcher timing when the handlers go in")
    ap.add_argument("--script", help="the ser-daemon command to launch (default: the one beside this Python)")
    args = ap.parse_args()
    if args.script:
        SCRIPT.append(args.script)
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
        summary[f"{name} {signal.Signals(sig).name}"] = {"runs": len(mine), **dict(sorted(counts.items()))}
    counts = Counter(r["result"] for r in runs)
    failed = len(runs) - counts["ok"] - counts["killed"] - counts["python"]
    print(json.dumps(summary, indent=1))
    print(f"{len(runs)} runs: ok {counts['ok']}, before our handlers (documented) killed {counts['killed']} / "
          f"python {counts['python']}, failed {failed} -> {100.0 * (len(runs) - failed) / max(1, len(runs)):.1f}% "
          f"as documented, {100.0 * counts['ok'] / max(1, len(runs)):.1f}% ok")
    window = {name: stats_ms(handlers_in_ms(launcher(name)) for _ in range(args.window_runs))
              for name in dict.fromkeys(n for n, _ in cases)} if args.window_runs else {}
    if window:
        print("handlers in after (ms from launch):", json.dumps(window))
    for r in [r for r in runs if r["result"] not in ("ok", "killed", "python")][:8]:
        print(f"FAIL {r['launcher']} {r['signal']} at {r['delay_ms']} ms: {r['result']} (code {r['code']}, "
              f"{r['took_ms']} ms)\n  " + r["stderr"].strip().replace("\n", "\n  ")[-400:])
    save(args.out, {"machine": machine(), "git": git_rev(), "args": vars(args), "summary": summary,
                    "runs": len(runs), "failed": failed, "handlers_in_ms": window,
                    "failures": [r for r in runs if r["result"] not in ("ok", "killed", "python")]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
