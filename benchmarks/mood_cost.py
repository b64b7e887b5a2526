"""Per-decision cost of the mood tracker: tracker + event detector + message encoding, one core.

Feeds an hour of states (one per 250 ms hop: talk in four moods and pauses, the model's
probabilities drawn from a seeded Dirichlet) to one stream's MoodTracker and MoodEventDetector and
encodes each reading as the WebSocket ``mood`` message and the generic OSC messages, as the daemon
would on every decision.  Reports median, p99 and max per decision, wall clock and the thread's CPU
time (on a shared machine the wall clock includes waiting for a core), against the 5 ms budget of
a decision (the tracker must take a small part of it).

    python benchmarks/mood_cost.py            (an hour of states; writes benchmarks/results/mood_cost.json)
    python benchmarks/mood_cost.py --smoke    (two minutes; a check that it runs)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _util import machine, save, stats_ms

from ser_daemon.outputs.messages import dumps
from ser_daemon.core.mood import MoodTracker
from ser_daemon.core.mood_events import MoodEventDetector
from ser_daemon.outputs.mood_messages import event_json, generic_mood_osc_messages, mood_json

LABELS = ("angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
HOP_S = 0.25


def states(seconds: float, seed: int = 0) -> list[tuple[float, np.ndarray | None]]:
    """(time, probabilities or None) per hop: 40 s of one mood, 20 s of pause, moods in turn."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(int(seconds / HOP_S)):
        t = (k + 1) * HOP_S
        phase = int(t // 60) % 4
        if t % 60 >= 40:
            out.append((t, None))
            continue
        alpha = np.ones(len(LABELS))
        alpha[LABELS.index(("neutral", "angry", "happy", "sad")[phase])] = 6.0
        out.append((t, rng.dirichlet(alpha)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="two minutes of states, nothing saved")
    args = ap.parse_args()
    script = states(120.0 if args.smoke else 3600.0)
    tracker, detector = MoodTracker(LABELS), MoodEventDetector()
    per_ms, cpu_ms, events = [], [], 0
    for t, p in script:
        t0, c0 = time.perf_counter(), time.thread_time()
        reading = tracker.update(t, p, p is not None, None if p is None else LABELS[int(np.argmax(p))])
        fired = detector.update(reading)
        dumps(mood_json(reading))
        generic_mood_osc_messages(reading)
        for e in fired:
            dumps(event_json(e))
        per_ms.append((time.perf_counter() - t0) * 1000.0)
        cpu_ms.append((time.thread_time() - c0) * 1000.0)
        events += len(fired)
    result = {"machine": machine(), "states": len(script), "events": events, "per_decision_ms": stats_ms(per_ms),
              "per_decision_cpu_ms": stats_ms(cpu_ms),
              "budget_ms": 5.0}
    s, c = result["per_decision_ms"], result["per_decision_cpu_ms"]
    print(f"{len(script)} states, {events} events: per decision wall median {s['median']:.3f} ms, "
          f"p99 {s['p99']:.3f} ms, max {s['max']:.3f} ms; CPU median {c['median']:.3f} ms, p99 {c['p99']:.3f} ms, "
          f"max {c['max']:.3f} ms (budget 5 ms for the whole decision; wall includes waiting for a busy core)")
    if not args.smoke:
        save("mood_cost", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
