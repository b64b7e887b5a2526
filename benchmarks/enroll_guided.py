"""What the guided enrollment costs the audio path: the tap + session per block, and judging a take.

The web page's Calibrate runs GuidedSession.feed in the daemon's processing thread for every
block of its first local input while a session is open, so its cost per block matters; the
take check runs once per take, when it stops.

    python benchmarks/enroll_guided.py            (14 s of 48 kHz stereo in 20 ms blocks)
    python benchmarks/enroll_guided.py --smoke    (2 s; a check that it still runs)
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from ser_daemon.profiles.enroll import check_take
from ser_daemon.profiles.guided import GuidedSession, MonoTap, plan_steps
from ser_daemon.model.bundle import default_model_dir, load_bundle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=14.0, help="take length (under the 15 s maximum)")
    ap.add_argument("--smoke", action="store_true", help="2 s only")
    args = ap.parse_args()
    seconds = 2.0 if args.smoke else args.seconds
    bundle = load_bundle(default_model_dir())
    session = GuidedSession(plan_steps(bundle.labels), bundle.features, lambda a: check_take(a, bundle))
    session.start()
    session.record()
    rate, block = 48000, 960
    t = np.arange(int(rate * seconds)) / rate
    voice = (0.3 * np.sin(2 * np.pi * (220 + 30 * np.sin(2 * np.pi * 3 * t)) * t)).astype(np.float32)
    stereo = np.repeat(voice[:, None], 2, axis=1)
    tap = MonoTap(rate, bundle.features.sample_rate)
    times = []
    for i in range(0, len(stereo), block):
        t0 = time.perf_counter()
        session.feed(tap(stereo[i : i + block]))
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    events = session.stop()
    check_ms = (time.perf_counter() - t0) * 1000.0
    ms = np.array(times) * 1000.0
    print(json.dumps({
        "machine": platform.machine(), "python": platform.python_version(), "blocks": len(ms),
        "feed_ms_median": round(float(np.median(ms)), 4), "feed_ms_p99": round(float(np.percentile(ms, 99)), 4),
        "take_s": seconds, "stop_and_check_ms": round(check_ms, 2), "verdict": events[0].kind if events else None,
    }))


if __name__ == "__main__":
    main()
