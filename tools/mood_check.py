"""Measure the mood tracker on scripted sessions of real clips, on validation speakers only.

Per speaker, a ten-minute "session" with a mood arc is built from the speaker's own clips::

    neutral (120 s) -> growing anger (180 s) -> happy (180 s) -> long quiet (120 s)

Growing anger: its first third alternates neutral and angry clips, then angry only (RAVDESS's
normal-intensity takes before its strong ones).  Clips are repeated in a seeded shuffled order
where a speaker has too few to fill a phase, with at least ``--pause-s`` of quiet between two
clips' speech (``ser_daemon.training.timeline.assemble``); the quiet phase is faint noise
(-80 dBFS); a phase is cut at its length, mid-clip if need be.  The session is replayed through the daemon's streaming pipeline and smoother
(``ser_daemon.core.pipeline.replay_audio``), and its states feed the mood tracker and event detector.

Scores:

- events: each expected event (``frustration_rising`` in the anger phase or 30 s after it;
  ``delighted`` and ``recovered`` in the happy phase; ``disengaging`` in the quiet) found or not
  (recall), every event fired inside or outside an expected window (precision), and the delay
  from the arc's turn (the phase's start) to the event;
- false alarms: a control session per speaker (neutral, sad, surprised, neutral, happy; two
  minutes each, no anger) counts the ``frustration_rising`` and ``recovered`` events it fires;
- minute-level valence sign: for each whole minute inside the anger and happy phases, the sign
  of the tracker's last-minute valence at the minute's end against the script (negative,
  positive); neutral minutes report their mean |valence| and quiet minutes whether valence
  stayed unknown (silence is not a mood).

Validation speakers only (RAVDESS Actor_13..16, EMOVO f1 m1, nEMO SM0 IC0): the speakers the
model card reports on (Actor_17..20, f3, m3, WR0, KD0) are refused.  The shipped model trained on
the RAVDESS and EMOVO validation speakers (only nEMO SM0 and IC0 are new to it); a twin trained
without them (``--model runs/sn8-twin``, see the model card) gives the unbiased figure.

    python tools/mood_check.py --out runs/mood-check.json
    python tools/mood_check.py --speakers SM0,IC0 --model runs/sn8-twin --cache runs/mood-cache
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import zlib
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ser_daemon.errors import SerError
from ser_daemon.core.mood import MoodTracker
from ser_daemon.core.mood_events import MoodEventDetector
from ser_daemon.core.mood_settings import MoodSettings, mood_settings_from_options

log = logging.getLogger("mood_check")

VALIDATION = {"ravdess": ("Actor_13", "Actor_14", "Actor_15", "Actor_16"), "emovo": ("f1", "m1"),
              "nemo": ("SM0", "IC0")}
REPORTED = {"Actor_17", "Actor_18", "Actor_19", "Actor_20", "f3", "m3", "WR0", "KD0"}
PHASES = (("neutral", 120.0), ("angry", 180.0), ("happy", 180.0), ("quiet", 120.0))
# A control session without anger: frustration_rising and recovered must not fire in it.
CONTROL = (("neutral", 120.0), ("sad", 120.0), ("surprised", 120.0), ("neutral", 120.0), ("happy", 120.0))
FALSE_ALARMS = ("frustration_rising", "recovered")
# Where each expected event may fire: (kind, phase it answers, seconds after the phase's end still counted).
EXPECTED = (("frustration_rising", "angry", 30.0), ("delighted", "happy", 0.0), ("recovered", "happy", 30.0),
            ("disengaging", "quiet", 0.0))
SIGN = {"angry": -1, "happy": 1}


def _intensity(path: Path) -> int:
    """RAVDESS's emotional intensity from the file name (1 normal, 2 strong); 1 elsewhere."""
    parts = path.stem.split("-")
    return int(parts[3]) if len(parts) == 7 and parts[3].isdigit() else 1


def _fill(clips: list[Any], seconds: float, length: dict[Path, float], pause_s: float,
          rng: np.random.Generator, keep_order: bool = False) -> list[Any]:
    """Clips (repeated in shuffled rounds) whose lengths plus pauses first reach ``seconds``."""
    out: list[Any] = []
    total = 0.0
    for _ in range(10_000):
        batch = list(clips) if keep_order else [clips[i] for i in rng.permutation(len(clips))]
        for c in batch:
            if total >= seconds:
                return out
            out.append(c)
            total += length[c.path] + pause_s
    return out


def _phase_audio(speaker: str, pool: list[Any], seconds: float, audio: dict[Path, np.ndarray],
                 length: dict[Path, float], rate: int, pause_s: float, rng: np.random.Generator,
                 keep_order: bool = False) -> np.ndarray:
    """``seconds`` of the pool's clips played as a conversation (more rounds until long enough, then cut)."""
    from ser_daemon.training.timeline import assemble

    chosen: list[Any] = []
    x = np.zeros(0, np.float32)
    for _ in range(100):
        if len(x) >= seconds * rate:
            break
        chosen += _fill(pool, seconds - len(x) / rate, length, pause_s, rng, keep_order)
        x = assemble(speaker, [(c.label, (c,)) for c in chosen], lambda c: audio[c.path], rate, pause_s).samples
    return x[: int(round(seconds * rate))]


def build_session(speaker: str, clips: Sequence[Any], load: Any, rate: int, pause_s: float, seed: int,
                  script: Sequence[tuple[str, float]] = PHASES) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The arc's audio and its phases ``(name, start_s, end_s)``."""
    rng = np.random.default_rng([seed, zlib.crc32(speaker.encode())])
    by_label: dict[str, list[Any]] = {}
    for c in sorted(clips, key=lambda c: str(c.path)):
        by_label.setdefault(c.label, []).append(c)
    needed = sorted({name for name, _ in script if name != "quiet"} | ({"neutral"} if "angry" in dict(script) else set()))
    audio = {c.path: load(c) for lab in needed for c in by_label.get(lab, [])}
    length = {p: len(x) / rate for p, x in audio.items()}
    missing = [lab for lab in needed if not by_label.get(lab)]
    if missing:
        raise SerError(f"{speaker} has no {', '.join(missing)} clips")
    parts: list[np.ndarray] = []
    phases: list[tuple[str, float, float]] = []
    pos = 0
    noise = np.random.default_rng(zlib.crc32(speaker.encode()))
    for name, seconds in script:
        if name == "quiet":
            x = (noise.standard_normal(int(seconds * rate)) * 1e-4).astype(np.float32)
        else:
            if name == "angry":
                third = seconds / 3.0
                mixed = []
                for n, a in zip(_fill(by_label["neutral"], third, length, pause_s, rng),
                                _fill(by_label["angry"], third, length, pause_s, rng)):
                    mixed += [n, a]
                angry = sorted(by_label["angry"], key=lambda c: (_intensity(c.path), rng.random()))
                x = np.concatenate([
                    _phase_audio(speaker, mixed, third, audio, length, rate, pause_s, rng, keep_order=True),
                    _phase_audio(speaker, angry, seconds - third, audio, length, rate, pause_s, rng, keep_order=True)])
            else:
                x = _phase_audio(speaker, by_label[name], seconds, audio, length, rate, pause_s, rng)
        gap = (noise.standard_normal(int(pause_s * rate)) * 1e-4).astype(np.float32)
        parts += [x, gap]
        phases.append((name, pos / rate, (pos + len(x)) / rate))
        pos += len(x) + len(gap)
    return np.concatenate(parts), phases


def replay(speaker: str, samples: np.ndarray, rate: int, clf: Any, cache: Path | None) -> dict[str, np.ndarray]:
    """The states' window ends, raw probabilities, voice flags and shown labels (cached by content)."""
    key = f"{speaker}-{zlib.crc32(samples.tobytes()):08x}-{clf.bundle.name}-{zlib.crc32(str(clf.bundle.directory).encode()):08x}"
    path = cache / f"{key}.npz" if cache is not None else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    from ser_daemon.model.analyzer import replay_audio
    from ser_daemon.core.smoothing import UNSURE

    states = [s for s in replay_audio(samples, rate, clf, stream=speaker) if not s.final]
    n = len(clf.bundle.labels)
    out = {
        "end_sample": np.array([s.end_sample for s in states], dtype=np.int64),
        "raw": np.array([s.raw if s.raw else (np.nan,) * n for s in states], dtype=np.float32),
        "voice": np.array([s.voice_active for s in states], dtype=bool),
        "shown": np.array([UNSURE if s.uncertain else s.label for s in states]),
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **out)
    return out


def track(states: dict[str, np.ndarray], labels: Sequence[str], rate: int, settings: MoodSettings,
          speaker: str) -> tuple[list[Any], list[Any], float]:
    """Readings and events of one replay; also the tracker's mean cost per state, microseconds."""
    tracker, detector = MoodTracker(labels, settings, stream=speaker), MoodEventDetector(settings)
    readings, events = [], []
    t0 = time.perf_counter()
    for end, raw, voice, shown in zip(states["end_sample"], states["raw"], states["voice"], states["shown"]):
        probs = None if np.isnan(raw).any() else raw
        r = tracker.update(int(end) / rate, probs, bool(voice), str(shown))
        readings.append(r)
        events.extend(detector.update(r))
    cost_us = (time.perf_counter() - t0) / max(1, len(readings)) * 1e6
    return readings, events, cost_us


def score(readings: Sequence[Any], events: Sequence[Any], phases: Sequence[tuple[str, float, float]]) -> dict[str, Any]:
    """Event matches, delays and minute-level valence sign of one session (see the module docstring)."""
    span = {name: (a, b) for name, a, b in phases}
    windows = {kind: (span[ph][0], span[ph][1] + extra) for kind, ph, extra in EXPECTED}
    found: dict[str, float | None] = {kind: None for kind, _, _ in EXPECTED}
    correct = 0
    fired = []
    for e in events:
        lo, hi = windows[e.kind]
        ok = lo <= e.time_s <= hi
        correct += ok
        if ok and found[e.kind] is None:
            found[e.kind] = e.time_s - lo
        fired.append({"kind": e.kind, "time_s": round(e.time_s, 2), "in_window": ok,
                      "phase": next((n for n, a, b in phases if a <= e.time_s < b), "after")})
    times = np.array([r.time_s for r in readings])
    minutes = []
    for name, a, b in phases:
        m_end = a + 60.0
        while m_end <= b + 1e-6:
            i = int(np.searchsorted(times, m_end, side="right")) - 1
            v = readings[i].valence.minute if i >= 0 else None
            minutes.append({"phase": name, "end_s": round(m_end, 1), "valence": None if v is None else round(v, 3)})
            m_end += 60.0
    signed = [m for m in minutes if m["phase"] in SIGN]
    agree = sum(1 for m in signed if m["valence"] is not None and np.sign(m["valence"]) == SIGN[m["phase"]])
    neutral = [abs(m["valence"]) for m in minutes if m["phase"] == "neutral" and m["valence"] is not None]
    quiet = [m for m in minutes if m["phase"] == "quiet"]
    return {
        "events": fired, "found_delay_s": found, "events_correct": correct, "events_fired": len(events),
        "minutes": minutes, "sign_agree": agree, "sign_minutes": len(signed),
        "neutral_abs_valence": float(np.mean(neutral)) if neutral else None,
        "quiet_minutes_unknown": sum(1 for m in quiet if m["valence"] is None), "quiet_minutes": len(quiet),
    }


def summarize(per_speaker: dict[str, dict[str, Any]]) -> dict[str, Any]:
    fired = sum(s["events_fired"] for s in per_speaker.values())
    correct = sum(s["events_correct"] for s in per_speaker.values())
    out: dict[str, Any] = {"speakers": len(per_speaker), "events_fired": fired,
                           "precision": correct / fired if fired else None}
    expected = len(per_speaker) * len(EXPECTED)
    hits = sum(v is not None for s in per_speaker.values() for v in s["found_delay_s"].values())
    out["recall"] = hits / expected if expected else None
    per_kind = {}
    for kind, _, _ in EXPECTED:
        delays = [s["found_delay_s"][kind] for s in per_speaker.values() if s["found_delay_s"][kind] is not None]
        n_fired = sum(1 for s in per_speaker.values() for e in s["events"] if e["kind"] == kind)
        n_ok = sum(1 for s in per_speaker.values() for e in s["events"] if e["kind"] == kind and e["in_window"])
        per_kind[kind] = {"recall": len(delays) / len(per_speaker), "precision": n_ok / n_fired if n_fired else None,
                          "fired": n_fired, "median_delay_s": float(np.median(delays)) if delays else None,
                          "delays_s": [round(d, 1) for d in delays]}
    out["per_kind"] = per_kind
    agree = sum(s["sign_agree"] for s in per_speaker.values())
    minutes = sum(s["sign_minutes"] for s in per_speaker.values())
    out["valence_sign_agreement"] = agree / minutes if minutes else None
    out["valence_sign_minutes"] = minutes
    neutral = [s["neutral_abs_valence"] for s in per_speaker.values() if s["neutral_abs_valence"] is not None]
    out["neutral_mean_abs_valence"] = float(np.mean(neutral)) if neutral else None
    control_s = sum(s["control"]["duration_s"] for s in per_speaker.values() if "control" in s)
    out["control_false_alarms"] = sum(s["control"]["false_alarms"] for s in per_speaker.values() if "control" in s)
    out["control_minutes"] = round(control_s / 60.0, 1)
    out["quiet_minutes_unknown"] = f"{sum(s['quiet_minutes_unknown'] for s in per_speaker.values())}/" \
                                   f"{sum(s['quiet_minutes'] for s in per_speaker.values())}"
    return out


def _format(summary: dict[str, Any], per_speaker: dict[str, dict[str, Any]]) -> str:
    def f(x: Any, spec: str = ".2f") -> str:
        return "n/a" if x is None else format(x, spec)

    lines = [f"speakers {summary['speakers']}: event precision {f(summary['precision'])} "
             f"({summary['events_fired']} fired), recall {f(summary['recall'])}; minute valence sign agreement "
             f"{f(summary['valence_sign_agreement'])} over {summary['valence_sign_minutes']} minutes; neutral minutes "
             f"|valence| {f(summary['neutral_mean_abs_valence'])}; quiet minutes unknown {summary['quiet_minutes_unknown']}",
             f"control sessions (neutral, sad, surprised, neutral, happy; no anger): {summary['control_false_alarms']} "
             f"frustration_rising/recovered in {summary['control_minutes']} minutes"]
    for kind, k in summary["per_kind"].items():
        lines.append(f"  {kind:<19} recall {f(k['recall'])}  precision {f(k['precision'])}  fired {k['fired']}  "
                     f"median delay {f(k['median_delay_s'], '.1f')} s  {k['delays_s']}")
    for spk, s in per_speaker.items():
        ev = ", ".join(f"{e['kind']}@{e['time_s']:.0f}{'' if e['in_window'] else '(x)'}" for e in s["events"])
        mins = " ".join(f(m["valence"], "+.2f") for m in s["minutes"])
        ctl = ", ".join(f"{e['kind']}@{e['time_s']:.0f}({e['phase']})" for e in s.get("control", {}).get("events", []))
        lines.append(f"  {spk:<9} events: {ev or 'none'}  | minute valence: {mins}  | control: {ctl or 'none'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data", help="folder holding ravdess/, emovo/, nemo/")
    p.add_argument("--speakers", default=",".join(s for v in VALIDATION.values() for s in v),
                   help="validation speakers to use (comma separated)")
    p.add_argument("--model", default=None, help="model bundle (default: the shipped model)")
    p.add_argument("--backend", default="litert", choices=["litert", "keras"])
    p.add_argument("--mood-config", default=None, metavar="FILE.toml", help="a config file's [mood] section")
    p.add_argument("--pause-s", type=float, default=1.0, help="quiet between two clips' speech, at least")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="folder for replays, so a rerun only re-scores")
    p.add_argument("--out", default=None, help="JSON report")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()]
    refused = sorted(set(speakers) & REPORTED)
    unknown = sorted(set(speakers) - {s for v in VALIDATION.values() for s in v} - REPORTED)
    if refused or unknown:
        why = f"{', '.join(refused)} are reported speakers" if refused else f"{', '.join(unknown)} are not validation speakers"
        print(f"mood_check: {why}; use only {', '.join(s for v in VALIDATION.values() for s in v)}", file=sys.stderr)
        return 2
    from ser_daemon.bounded import read_toml
    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import default_model_dir, load_bundle
    from ser_daemon.audio.clips import load_audio
    from ser_daemon.training.datasets import load_dataset

    try:
        settings = mood_settings_from_options(read_toml(args.mood_config, "mood config")) if args.mood_config \
            else MoodSettings()
        bundle = load_bundle(args.model or default_model_dir())
        clf = load_classifier(bundle, backend=args.backend)
        rate = bundle.features.sample_rate
        per_speaker: dict[str, dict[str, Any]] = {}
        costs = []
        t0 = time.perf_counter()
        for corpus, members in VALIDATION.items():
            wanted = [s for s in members if s in speakers]
            if not wanted:
                continue
            clips = [c for c in load_dataset(Path(args.data) / corpus) if c.speaker in wanted]
            for spk in wanted:
                own = [c for c in clips if c.speaker == spk]
                load = lambda c: load_audio(c.path, rate)  # noqa: E731
                entry: dict[str, Any] = {"corpus": corpus}
                for name, script in (("arc", PHASES), ("control", CONTROL)):
                    samples, phases = build_session(spk, own, load, rate, args.pause_s, args.seed, script)
                    states = replay(f"{spk}_{name}", samples, rate, clf, Path(args.cache) if args.cache else None)
                    readings, events, cost = track(states, bundle.labels, rate, settings, spk)
                    costs.append(cost)
                    if name == "arc":
                        entry.update({"duration_s": round(len(samples) / rate, 1), "phases": phases,
                                      **score(readings, events, phases)})
                    else:
                        entry["control"] = {
                            "duration_s": round(len(samples) / rate, 1), "phases": phases,
                            "events": [{"kind": e.kind, "time_s": round(e.time_s, 2),
                                        "phase": next((n for n, a, b in phases if a <= e.time_s < b), "after")}
                                       for e in events],
                            "false_alarms": sum(e.kind in FALSE_ALARMS for e in events)}
                per_speaker[spk] = entry
                log.info("%s: %d + %d events, %.0f s elapsed", spk, entry["events_fired"],
                         len(entry["control"]["events"]), time.perf_counter() - t0)
    except SerError as exc:
        print(f"mood_check: {exc}", file=sys.stderr)
        return 2
    summary = summarize(per_speaker)
    summary["tracker_us_per_state"] = float(np.mean(costs)) if costs else None
    print(_format(summary, per_speaker))
    print(f"tracker + events: {summary['tracker_us_per_state']:.0f} us per state (mean)")
    if args.out:
        report = {"summary": summary, "speakers": per_speaker, "model": str(bundle.directory),
                  "settings": {f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "circumplex"},
                  "circumplex": {k: list(v) for k, v in settings.circumplex.items()},
                  "phases": PHASES, "control": CONTROL, "command": "python tools/mood_check.py " + " ".join(sys.argv[1:] if argv is None else argv)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
