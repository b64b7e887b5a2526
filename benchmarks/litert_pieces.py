"""LiteRT: a batch as power-of-two pieces against one call padded to the next power of two.

The daemon's Analyzer and the cluster's model replica hand LiteRT however many windows fell
due (1 to 64).  Padded to the next power of two, a padded row costs as much as a real one;
run as pieces (32 + 8 + 4 + 1 for 45), only real rows are computed, and no piece is larger
than 32 windows, past which a window costs more here.  Both ways run in this process,
interleaved, on the shipped model, one thread.

Usage: python benchmarks/litert_pieces.py [--reps 200] [--sizes 1,5,12,20,33,45,64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import git_rev, machine, save  # noqa: E402

from ser_daemon.model.bundle import default_model_dir, load_bundle  # noqa: E402
from ser_daemon.model.inference import load_classifier, pad_to_bucket  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--sizes", default="1,5,12,20,33,45,64")
    args = ap.parse_args()
    bundle = load_bundle(default_model_dir())
    clf = load_classifier(bundle, "litert", num_threads=1)
    rng = np.random.default_rng(0)
    rows = []
    for n in [int(v) for v in args.sizes.split(",")]:
        x = rng.normal(-8.0, 3.0, (n, *bundle.input_shape)).astype(np.float32)
        padded, _ = pad_to_bucket(x)
        whole = clf._interpreter(len(padded))

        def one_padded_call() -> np.ndarray:
            whole.set_tensor(clf._in, padded)
            whole.invoke()
            return np.array(whole.get_tensor(clf._out))[:n]

        a, b = one_padded_call(), clf.predict(x)  # warm both, and they agree
        agree = float(np.max(np.abs(a - b)))
        t_pad, t_pieces = [], []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            one_padded_call()
            t1 = time.perf_counter()
            clf.predict(x)
            t2 = time.perf_counter()
            t_pad.append(t1 - t0)
            t_pieces.append(t2 - t1)
        row = {"windows": n, "padded_to": len(padded),
               "padded_ms": {"median": float(np.median(t_pad) * 1e3), "p99": float(np.percentile(t_pad, 99) * 1e3)},
               "pieces_ms": {"median": float(np.median(t_pieces) * 1e3), "p99": float(np.percentile(t_pieces, 99) * 1e3)},
               "max_abs_difference": agree}
        row["ratio_median"] = row["pieces_ms"]["median"] / row["padded_ms"]["median"]
        rows.append(row)
        print(f"{n:3d} windows (padded to {len(padded):2d}): padded {row['padded_ms']['median']:6.2f} ms "
              f"(p99 {row['padded_ms']['p99']:6.2f}), pieces {row['pieces_ms']['median']:6.2f} ms "
              f"(p99 {row['pieces_ms']['p99']:6.2f}), ratio {row['ratio_median']:.2f}, "
              f"largest difference {agree:.1e}", flush=True)
    save("litert_pieces", {"machine": machine(), "git": git_rev(), "model": bundle.name, "reps": args.reps,
                           "rows": rows})


if __name__ == "__main__":
    main()
