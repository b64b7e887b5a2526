"""GPU batch scaling with Keras 3 on the JAX backend (for the lent GPU machine; no TensorFlow there).

Loads the shipped ``.keras`` model with KERAS_BACKEND=jax, jit-compiles the forward pass and
measures, for batch sizes 1 .. 4096, the time per call (median, p99) including the copy of
the batch to the GPU and of the probabilities back.  From that it derives how many streams at
4 decisions a second fit: with S streams and a 250 ms hop, a tick that batches every due
window carries S windows per 250 ms; a stream count holds when p99 of one call of that batch
stays under the budget (50 ms).

Usage (see benchmarks/README.md for carrying Keras to the machine):
    KERAS_BACKEND=jax python benchmarks/gpu_jax.py [--model models/default] [--max-batch 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(Path(__file__).resolve().parent.parent / "models" / "default"))
    ap.add_argument("--max-batch", type=int, default=4096)
    ap.add_argument("--budget-ms", type=float, default=50.0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "gpu_jax.json"))
    args = ap.parse_args()

    import jax
    import keras

    meta = json.loads((Path(args.model) / "ser_model.json").read_text())
    frames, mels = meta["input_shape"]
    model = keras.saving.load_model(str(Path(args.model) / meta["files"]["keras"]), compile=False)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(x):
        y, _ = model.stateless_call(tv, ntv, x, training=False)
        return y

    devices = [str(d) for d in jax.devices()]
    rng = np.random.default_rng(0)
    results = {}
    b = 1
    while b <= args.max_batch:
        x = rng.normal(-6, 3, size=(b, frames, mels)).astype(np.float32)
        np.asarray(forward(x))  # compile for this shape
        times = []
        for _ in range(max(20, min(200, 20000 // b))):
            t0 = time.perf_counter()
            np.asarray(forward(x))  # host -> device, run, device -> host
            times.append((time.perf_counter() - t0) * 1000)
        a = np.array(times)
        results[b] = {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)),
                      "per_window_us": float(np.median(a)) / b * 1000}
        print(f"batch {b:5d}: median {results[b]['median_ms']:.2f} ms, p99 {results[b]['p99_ms']:.2f} ms, "
              f"{results[b]['per_window_us']:.1f} us per window")
        b *= 2
    daemon = daemon_path(Path(args.model), args.max_batch)
    fits = [bs for bs, r in results.items() if r["p99_ms"] <= args.budget_ms]
    # All streams due in the same tick is the worst case; 4 decisions/s each.
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "devices": devices,
           "jax": jax.__version__, "keras": keras.__version__, "batch": results,
           "max_streams_at_4_per_s_within_budget": max(fits) if fits else 0, "budget_ms": args.budget_ms,
           "daemon_path": daemon}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("batch", "daemon_path")}, indent=1))


def daemon_path(model: Path, max_batch: int) -> dict:
    """The daemon's own Keras classifier (``--backend auto`` with a GPU) on odd batch sizes.

    A tick batches however many windows are due, so sizes are rarely powers of two;
    ``first_ms`` is the first call at a size (a JAX compilation where the size is new
    to it), ``median_ms``/``p99_ms`` the calls after.  ``chunked`` is the daemon's
    Analyzer, which splits a tick into calls of at most ``MAX_BATCH`` windows.
    """
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ser_daemon.model.inference import gpu_visible, load_classifier
    from ser_daemon.model.bundle import load_bundle
    from ser_daemon.core.pipeline import MAX_BATCH

    bundle = load_bundle(model)
    clf = load_classifier(bundle, "keras")  # what --backend auto takes where a GPU is visible
    rng = np.random.default_rng(1)
    sizes = [n for n in (1, 3, 37, 64, 100, 160, 500, 1000, 2000, 4000) if n <= max_batch]
    rows = {}
    for n in sizes:
        x = rng.normal(-6, 3, size=(n, *bundle.input_shape)).astype(np.float32)
        t0 = time.perf_counter()
        clf.predict(x)
        first = (time.perf_counter() - t0) * 1000
        a = []
        for _ in range(max(20, min(100, 10000 // n))):
            t0 = time.perf_counter()
            clf.predict(x)
            a.append((time.perf_counter() - t0) * 1000)
        rows[n] = {"first_ms": first, "median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99))}
        print(f"daemon path ({clf.backend}) batch {n:5d}: first call {first:8.1f} ms, then median "
              f"{rows[n]['median_ms']:.2f} ms, p99 {rows[n]['p99_ms']:.2f} ms")
    chunked = {}
    for n in (512, 2048, 4096):
        if n > max_batch:
            continue
        x = rng.normal(-6, 3, size=(n, *bundle.input_shape)).astype(np.float32)
        a = []
        for _ in range(20):
            t0 = time.perf_counter()
            for s in range(0, n, MAX_BATCH):
                clf.predict(x[s : s + MAX_BATCH])
            a.append((time.perf_counter() - t0) * 1000)
        chunked[n] = {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)), "calls": -(-n // MAX_BATCH)}
        print(f"daemon path, {n} windows in calls of {MAX_BATCH}: median {chunked[n]['median_ms']:.2f} ms, "
              f"p99 {chunked[n]['p99_ms']:.2f} ms")
    return {"backend": clf.backend, "gpu_visible": gpu_visible(), "max_batch": MAX_BATCH, "sizes": rows,
            "chunked": chunked}


if __name__ == "__main__":
    main()
