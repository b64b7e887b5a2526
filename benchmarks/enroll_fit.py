"""How long fitting a personal profile takes on one core (the issue asks under 5 s for a minute of speech).

A minute of takes, two per label, cut from the bundled recording (so it runs anywhere), fitted
with the shipped model again and again: the full fit (baseline, held-out choice of the pull,
personal head) against the baseline only, in the same process, as the ratio's baseline.

    python benchmarks/enroll_fit.py              (10 fits of each kind, 60 s of takes)
    python benchmarks/enroll_fit.py --smoke      (one fit of each, 8 s of takes; a check that it runs)
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ser_daemon.app.math_threads import limit_math_threads  # noqa: E402

limit_math_threads()  # one BLAS thread, as the ser-daemon command sets before numpy loads

from _util import default_model, demo_audio, git_rev, machine, save, stats_ms


def takes_from_demo(labels: list[str], per_label: int, seconds: float) -> list:
    """``per_label`` takes of ``seconds`` for every label, consecutive slices of the looped recording."""
    from ser_daemon.profiles.enroll import Take

    n = len(labels) * per_label
    audio = demo_audio(n * seconds)
    step = int(seconds * 16000)
    return [Take(labels[i // per_label], audio[i * step : (i + 1) * step]) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="fits of each kind")
    ap.add_argument("--smoke", action="store_true", help="one fit of each kind on 8 s of takes")
    ap.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    args = ap.parse_args()

    from ser_daemon.profiles.enroll import fit_profile
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle

    bundle = load_bundle(args.model or default_model())
    classifier = load_classifier(bundle, "litert", num_threads=1)
    labels = list(bundle.labels)[:2] if args.smoke else list(bundle.labels)
    takes = takes_from_demo(labels, 2, 2.0 if args.smoke else 3.75)
    runs = 1 if args.smoke else args.runs
    fit_profile(bundle, classifier, takes)  # warm-up: the interpreter's first calls
    times: dict[str, list[float]] = {"full": [], "baseline_only": []}
    profile = None
    for _ in range(runs):
        for kind in ("baseline_only", "full"):  # interleaved, so both see the same machine
            t0 = time.perf_counter()
            p = fit_profile(bundle, classifier, takes, head=kind == "full")
            times[kind].append((time.perf_counter() - t0) * 1000.0)
            if kind == "full":
                profile = p
    full, base = stats_ms(times["full"]), stats_ms(times["baseline_only"])
    result = {
        "machine": machine(),
        "git": git_rev(),
        "model": bundle.name,
        "takes": len(takes),
        "takes_audio_s": round(sum(len(t.audio) for t in takes) / 16000, 2),
        "labels": len(labels),
        "full_fit_ms": full,
        "baseline_only_ms": base,
        "ratio_median_full_over_baseline": round(full["median"] / base["median"], 2) if base["median"] else None,
        "head": profile is not None and profile.head is not None,
        "head_fit": profile.head_fit if profile is not None else None,
    }
    print(f"{len(takes)} takes, {result['takes_audio_s']} s, model {bundle.name}, {runs} fits of each kind")
    print(f"full fit:      median {full['median']:.0f} ms, p99 {full['p99']:.0f} ms")
    print(f"baseline only: median {base['median']:.0f} ms, p99 {base['p99']:.0f} ms")
    print(f"ratio full / baseline only (median): {result['ratio_median_full_over_baseline']}")
    if not args.smoke:
        save("enroll_fit", result)
    print(json.dumps({k: result[k] for k in ("takes", "takes_audio_s", "full_fit_ms", "baseline_only_ms", "head")}))


if __name__ == "__main__":
    main()
