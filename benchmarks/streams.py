"""Many streams in one daemon: batching, and how many real-time streams one machine sustains.

Part 1 (in process): inference time per window against batch size, for LiteRT (1 thread) and
Keras (tf.function), i.e. how per-stream cost falls when the due windows of all streams go
into one call.

Part 2 (the real daemon): N file inputs replayed at real time on one clock (every stream gets
a 20 ms block each tick, as the channels of one sound card), default hop 250 ms (4 decisions a
second per stream), for --seconds each; N grows until a run has dropped windows, late
decisions or overruns.  The largest clean N is the capacity.

Usage: python benchmarks/streams.py [--seconds 20] [--backends litert,keras] [--max-streams 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _util import (REPO, default_model, git_rev, machine, proc_cpu_seconds, proc_rss_mb, save, stats_ms,
                   write_demo_wav)


def batch_scaling(model: Path, backend: str, sizes=(1, 2, 4, 8, 16, 32, 64)) -> dict[str, dict]:
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle

    bundle = load_bundle(model)
    clf = load_classifier(bundle, backend, num_threads=1)
    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        x = rng.normal(-6, 3, size=(n, *bundle.input_shape)).astype(np.float32)
        clf.predict(x)
        reps = max(5, int(200 / n))
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            clf.predict(x)
            times.append((time.perf_counter() - t0) * 1000)
        st = stats_ms(times)
        st["per_window_median"] = round(st["median"] / n, 4)
        out[str(n)] = st
        print(f"{backend:6s} batch {n:3d}: {st['median']:8.2f} ms per call, {st['per_window_median']:.3f} ms per window")
    return out


def run_daemon(n: int, backend: str, wav: Path, model: Path, seconds: float, tmp: Path) -> dict:
    stats = tmp / f"streams-{backend}-{n}.json"
    cmd = [sys.executable, "-m", "ser_daemon", "--model", str(model), "--backend", backend, "--no-osc", "--no-ws",
           "--quiet", "--stats-json", str(stats)]
    for _ in range(n):
        cmd += ["--input", str(wav)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    samples = []  # (time, cpu seconds, rss MB) while it runs
    deadline = time.monotonic() + seconds + 120
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{n} streams: the daemon did not finish")
        try:
            samples.append((time.monotonic(), proc_cpu_seconds(proc.pid), proc_rss_mb(proc.pid)))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.5)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.read()[-2000:])
    data = json.loads(stats.read_text())
    steady = samples[len(samples) // 4 : -2] or samples  # skip start-up and the end
    cpu_share = (steady[-1][1] - steady[0][1]) / max(1e-9, steady[-1][0] - steady[0][0])
    per_stream = data["streams"].values()
    return {
        "streams": n,
        "decisions": sum(s["decisions"] for s in per_stream),
        "dropped_windows": sum(s["dropped_windows"] for s in per_stream),
        "late": sum(s["late"] for s in per_stream),
        "overruns": sum(s["overruns"] for s in per_stream),
        "decision_latency_ms": data["stages"].get("decision_latency"),
        "inference_per_window_ms": data["stages"].get("inference"),
        "cpu_share_of_one_core": round(cpu_share, 3),
        "cpu_share_per_stream": round(cpu_share / n, 5),
        "rss_mb": round(max(s[2] for s in samples), 1) if samples else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--backends", default="litert,keras")
    ap.add_argument("--max-streams", type=int, default=256)
    ap.add_argument("--model", help="model bundle (default: the shipped one)")
    args = ap.parse_args()
    model = Path(args.model) if args.model else default_model()
    out: dict = {"machine": machine(), "git": git_rev(), "model_dir": str(model), "seconds": args.seconds,
                 "hop_ms": 250, "batch_scaling": {}, "capacity": {}}
    for backend in args.backends.split(","):
        out["batch_scaling"][backend] = batch_scaling(model, backend)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        wav = write_demo_wav(tmp / "speech.wav", args.seconds)
        for backend in args.backends.split(","):
            runs = []
            n = 8
            while n <= args.max_streams:
                r = run_daemon(n, backend, wav, model, args.seconds, tmp)
                runs.append(r)
                lat = r["decision_latency_ms"] or {}
                print(f"{backend:6s} {n:4d} streams: {r['decisions']} decisions, dropped {r['dropped_windows']}, "
                      f"late {r['late']}, overruns {r['overruns']}, latency p99 {lat.get('p99_ms')} ms, "
                      f"CPU {r['cpu_share_of_one_core']:.2f} core, RSS {r['rss_mb']} MB")
                if r["dropped_windows"] or r["late"] or r["overruns"]:
                    break
                n *= 2
            clean = [r["streams"] for r in runs if not (r["dropped_windows"] or r["late"] or r["overruns"])]
            out["capacity"][backend] = {"runs": runs, "max_clean_streams_tried": max(clean) if clean else 0}
    save("streams", out)


if __name__ == "__main__":
    main()
