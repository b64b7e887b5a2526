#!/usr/bin/env python3
"""Mutation score of the sans-I/O core, per module, with mutmut (a measurement, not CI).

Why: a suite that passes is only worth as much as the faults it would catch.  mutmut
changes one operator, constant or call at a time in the core modules and runs the fast
unit tests that cover the changed function; a mutant the tests still pass on is a
regression nobody would notice.  The result per module goes into TESTING.md, with every
survivor either killed by a test or listed in ``EQUIVALENT`` below with its reason.

Usage (from the repository root, after ``pip install -e '.[test,mutation]'``)::

    python tools/mutation.py                 # every core module, one after the other
    python tools/mutation.py smoothing vad   # some modules
    python tools/mutation.py --report        # only summarise the last run (mutants/)

It runs mutmut under ``nice -n 10`` with ``--max-children 2`` (the machine is small and
shared), one module at a time so numbers arrive early.  The mutmut configuration
(modules, fast test files) is the ``[mutmut]`` section of setup.cfg.
"""

from __future__ import annotations

import argparse
import re
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Module paths below ser_daemon/: the sans-I/O core, the pure modules it was measured with before the layers
# became folders (the mapping, the wire formats, the OSC schemes, the option checks, the offline replay), and
# the engine's loop, which the fast tier now runs on the stand-in classifier.
CORE = (
    "core.ringbuffer", "core.resample", "core.features", "core.vad", "core.smoothing", "core.pipeline",
    "core.settings", "model.analyzer", "outputs.mapping", "outputs.messages", "outputs.osc_schemes",
    "outputs.osc_targets", "net.endpoints", "app.config", "app.engine",
)
KILLED = {"killed", "timeout", "caught by type check", "segfault"}



def equivalent_mutants() -> dict[str, str]:
    """Survivors no test can kill because the program behaves the same: name -> reason.

    Read from the table rows of TESTING.md (``| `ser_daemon.m.f__mutmut_3` | reason |``),
    so the list and its reasons live in one place; check one with ``mutmut show NAME``.
    """
    found = {}
    path = REPO / "TESTING.md"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else ():
        m = re.match(r"^\|\s*`(ser_daemon\.[^`]+__mutmut_\d+)`\s*\|\s*(.*?)\s*\|\s*$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def mutmut() -> list[str]:
    exe = Path(sys.executable).with_name("mutmut")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mutmut"]


def run_module(module: str, children: int) -> float:
    """Mutate and test one module; return the seconds it took."""
    t0 = time.monotonic()
    cmd = ["nice", "-n", "10", *mutmut(), "run", "--max-children", str(children), f"ser_daemon.{module}.*"]
    done = subprocess.run(cmd, cwd=REPO, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        # A failed run leaves its mutants "not checked"; say why instead of reporting them silently.
        print(f"mutmut failed on {module} (exit {done.returncode}):", *(done.stdout + done.stderr).splitlines()[-15:],
              sep="\n  ", file=sys.stderr)
    return time.monotonic() - t0


def statuses() -> dict[str, str]:
    """Mutant name -> mutmut status, for every mutant of the last runs."""
    out = subprocess.run([*mutmut(), "results", "--all", "true"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            result[name] = status
    return result


def module_of(mutant: str) -> str:
    """``ser_daemon.core.vad.x_f__mutmut_3`` -> ``core.vad`` (the function part holds no dot)."""
    return mutant.split(".", 1)[1].rsplit(".", 1)[0]


def resolve(name: str) -> str:
    """A module as given (``core.vad``) or by its last part alone (``vad``)."""
    matches = [m for m in CORE if m == name or m.rsplit(".", 1)[-1] == name]
    return matches[0] if len(matches) == 1 else name


def report(modules: tuple[str, ...]) -> int:
    """Print the score table and the unexplained survivors; exit 1 if any survivor is unexplained."""
    equivalent = equivalent_mutants()
    by_module: dict[str, Counter] = {m: Counter() for m in modules}
    unexplained = []
    for name, status in sorted(statuses().items()):
        m = module_of(name)
        if m not in by_module:
            continue
        if status in KILLED:
            by_module[m]["killed"] += 1
        elif name in equivalent:
            by_module[m]["equivalent"] += 1
        elif status == "not checked":
            by_module[m]["not checked"] += 1
        else:
            by_module[m]["survived"] += 1
            unexplained.append(f"{name}: {status}")
    # score: killed / (killed + survived), equivalent mutants left out; raw: killed / all mutants.
    print(f"{'module':<20} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} {'score':>7} {'raw':>7}")
    tk = tn = tall = 0
    for m, c in by_module.items():
        total = sum(c.values())
        scored = c["killed"] + c["survived"]
        score = f"{100.0 * c['killed'] / scored:.1f}%" if scored else "-"
        raw = f"{100.0 * c['killed'] / total:.1f}%" if total else "-"
        tk, tn, tall = tk + c["killed"], tn + scored, tall + total
        extra = f"  ({c['not checked']} not checked)" if c["not checked"] else ""
        print(f"{m:<20} {total:>7} {c['killed']:>7} {c['equivalent']:>7} {c['survived']:>8} {score:>7} {raw:>7}{extra}")
    if tn:
        print(f"{'core':<20} {tall:>7} {tk:>7} {tall - tn:>7} {tn - tk:>8} {100.0 * tk / tn:.1f}% "
              f"{100.0 * tk / tall:.1f}%")
    for line in unexplained:
        print("survived:", line)
    return 1 if unexplained else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"core modules to mutate (default: all of {', '.join(CORE)})")
    ap.add_argument("--report", action="store_true", help="only summarise the last run")
    ap.add_argument("--max-children", type=int, default=2, help="parallel test processes (default 2)")
    ap.add_argument("--fresh", action="store_true", help="delete mutmut's cache (mutants/) first")
    args = ap.parse_args(argv)
    modules = tuple(resolve(m) for m in args.modules) or CORE
    unknown = [m for m in modules if m not in CORE]
    if unknown:
        ap.error(f"not a core module: {', '.join(unknown)}")
    os.chdir(REPO)
    if not args.report:
        if args.fresh:
            shutil.rmtree(REPO / "mutants", ignore_errors=True)
        for m in modules:
            took = run_module(m, args.max_children)
            print(f"mutated {m} in {took:.0f} s", flush=True)
    return report(modules)


if __name__ == "__main__":
    sys.exit(main())
