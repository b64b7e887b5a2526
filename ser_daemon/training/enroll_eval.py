"""``ser-eval --enroll K``: what a personal profile gains for a speaker the model never heard.

For each evaluation speaker, profiles are made from some of that speaker's
clips (K clips per class for K in 1..K, and neutral speech only), and the
speaker's other clips are scored with and without them: the timeline (the
same conversation-like replay as ``--timeline``, through the daemon's
pipeline with the profile) and clip accuracy.  The scored clips are the same
for every setting (none of them is ever used to enroll), so the gains are
differences on identical material.

Clip accuracy without a profile uses the reference of all the scored clips of
the speaker (what the live estimate converges to, as the model card's clip
figure does); with a profile it uses the profile's baseline and head.  The
comparison is therefore, if anything, unfair to the profile.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Mapping, Sequence, TextIO

import numpy as np

from ..audio_prep import load_audio
from ..config import AnalysisSettings
from ..enroll import Take, fit_profile
from ..pipeline import replay_audio
from ..profiles import Profile
from ..speaker_norm import voiced_frames
from ..features import log_mel
from .datasets import Clip
from .timeline import assemble, plan_timeline, score_timelines

__all__ = ["pick_enrollment", "evaluate_enrollment", "format_enrollment", "NEUTRAL_ONLY_S"]

NEUTRAL_ONLY_S = 30.0  # neutral-only enrollment: up to this much audio of neutral clips


def pick_enrollment(
    clips: Sequence[Clip], k_max: int, seed: int, durations: Mapping[str, float], neutral_label: str = "neutral"
) -> tuple[dict[str, list[Clip]], list[Clip]]:
    """One speaker's enrollment sets and the clips left to score.

    Returns ``({"K=1": [...], ..., "neutral-only": [...]}, scored)``.  Each
    class keeps at least one clip for scoring; K=k takes the first k of a
    seeded order of that class's clips (so K=1 is inside K=2); neutral-only
    takes neutral clips in the same order up to :data:`NEUTRAL_ONLY_S`.
    """
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[Clip]] = {}
    for c in sorted(clips, key=lambda c: str(c.path)):
        by_label.setdefault(c.label, []).append(c)
    order = {lab: [cs[i] for i in rng.permutation(len(cs))] for lab, cs in sorted(by_label.items())}
    sets: dict[str, list[Clip]] = {}
    for k in range(1, k_max + 1):
        sets[f"K={k}"] = [c for cs in order.values() for c in cs[: min(k, len(cs) - 1)]]
    neutral: list[Clip] = []
    total = 0.0
    for c in order.get(neutral_label, [])[:-1]:
        if neutral and total + durations[str(c.path)] > NEUTRAL_ONLY_S:
            break
        neutral.append(c)
        total += durations[str(c.path)]
    sets["neutral-only"] = neutral
    used = {str(c.path) for cs in sets.values() for c in cs}
    scored = [c for c in clips if str(c.path) not in used]
    return sets, scored


def _clip_accuracy(classifier: Any, audio: Mapping[str, np.ndarray], clips: Sequence[Clip],
                   reference: np.ndarray, profile: Profile | None) -> tuple[int, int]:
    from ..enroll import clip_windows

    bundle = classifier.bundle
    index = {lab: i for i, lab in enumerate(bundle.labels)}
    right = 0
    for c in clips:
        x = clip_windows(audio[str(c.path)], bundle, reference)
        if profile is not None and profile.head is not None:
            probs = profile.head.probs(classifier.predict_embedded(x)[1])
        else:
            probs = classifier.predict(x)
        right += int(np.argmax(probs.mean(axis=0)) == index[c.label])
    return right, len(clips)


def evaluate_enrollment(
    clips: Sequence[Clip],
    classifier: Any,
    k_max: int = 2,
    *,
    settings: AnalysisSettings | None = None,
    seed: int = 0,
    draws: int = 1,
    settle_s: float = 2.0,
    merge: Mapping[str, str] | None = None,
    l2: float | None = None,
    load: Callable[[Clip], np.ndarray] | None = None,
    progress: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """Score every enrollment setting on every speaker; figures per setting and the gains over K=0.

    With ``draws`` > 1 the whole measurement is repeated with seeds ``seed``,
    ``seed + 1``, ...: other clips to enroll from, other clips left to score,
    another order of segments.  The figures are then means over the draws, and
    each row also carries the spread of its gain.  With four speakers one draw
    moves the gain by about 3 points (validation speakers), as much as many of
    the choices it is used to judge, so the model card quotes ten.
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, not {draws}")
    bundle = classifier.bundle
    rate = bundle.features.sample_rate
    load = load or (lambda c: load_audio(c.path, rate))
    speakers = sorted({c.speaker for c in clips})
    names = ["K=0"] + [f"K={k}" for k in range(1, k_max + 1)] + ["neutral-only"]
    t0 = time.perf_counter()
    runs: list[dict[str, list[tuple[Any, Any]]]] = [{s: [] for s in names} for _ in range(draws)]
    by_speaker: list[dict[str, dict[str, float]]] = [{s: {} for s in names} for _ in range(draws)]
    clip_counts = [{s: [0, 0] for s in names} for _ in range(draws)]
    enroll_info: list[dict[str, dict[str, list[float]]]] = [{s: {"seconds": [], "fit_s": []} for s in names[1:]}
                                                            for _ in range(draws)]
    for n, spk in enumerate(speakers):
        own = [c for c in clips if c.speaker == spk]
        audio = {str(c.path): load(c) for c in own}  # once per speaker, whatever the number of draws
        for d in range(draws):
            for name, (states, segments, right, total, info) in _one_speaker(
                    own, audio, classifier, k_max, seed + d, settings, l2, names).items():
                runs[d][name].append((states, segments))
                spk_score = score_timelines([(states, segments)], bundle.labels, sample_rate=rate,
                                            settle_s=settle_s, merge=merge)
                by_speaker[d][name][spk] = spk_score.settled_accuracy
                clip_counts[d][name][0] += right
                clip_counts[d][name][1] += total
                for key, value in info.items():
                    enroll_info[d][name][key].append(value)
        if progress is not None:
            progress.write(f"enroll eval: {n + 1}/{len(speakers)} speakers ({draws} draws), "
                           f"{time.perf_counter() - t0:.0f} s\n")
            progress.flush()
    per_draw: list[dict[str, dict[str, Any]]] = []
    for d in range(draws):
        rows: dict[str, dict[str, Any]] = {}
        for name in names:
            score = score_timelines(runs[d][name], bundle.labels, sample_rate=rate, settle_s=settle_s, merge=merge)
            sd = score.to_dict()
            rows[name] = {
                "timeline_settled_accuracy": sd["settled_accuracy"],
                "timeline_macro_f1": sd["macro_f1"],
                "neutral_share_emotional": sd["neutral_share_emotional"],
                "flicker_per_min": sd["flicker_per_min"],
                "clip_accuracy": clip_counts[d][name][0] / max(1, clip_counts[d][name][1]),
                "clips_scored": clip_counts[d][name][1],
                "per_class_recall": {lab: m["recall"] for lab, m in sd["per_class"].items()},
                "per_speaker_timeline": by_speaker[d][name],
            }
            if name in enroll_info[d]:
                rows[name]["enroll_audio_s_mean"] = float(np.mean(enroll_info[d][name]["seconds"]))
                rows[name]["fit_s_max"] = float(np.max(enroll_info[d][name]["fit_s"]))
        per_draw.append(rows)
    out: dict[str, Any] = {"speakers": speakers, "k_max": k_max, "seed": seed, "draws": draws,
                           "settings": _mean_over_draws(per_draw, names)}
    out["wall_s"] = time.perf_counter() - t0
    return out


def _one_speaker(own: Sequence[Clip], audio: Mapping[str, np.ndarray], classifier: Any, k_max: int, seed: int,
                 settings: AnalysisSettings | None, l2: float | None,
                 names: Sequence[str]) -> dict[str, tuple[Any, Any, int, int, dict[str, float]]]:
    """One speaker, one draw: per setting, the replay's states and segments, clips right / scored, fit info."""
    bundle = classifier.bundle
    rate = bundle.features.sample_rate
    spk = own[0].speaker
    durations = {p: len(a) / rate for p, a in audio.items()}
    sets, scored = pick_enrollment(own, k_max, seed, durations)
    plan = plan_timeline(scored, seed)[spk]
    rec = assemble(spk, plan, lambda c: audio[str(c.path)], rate)
    oracle = np.concatenate([voiced_frames(log_mel(audio[str(c.path)], bundle.features)) for c in scored]).mean(axis=0)
    out = {}
    for name in names:
        profile = None
        info: dict[str, float] = {}
        if name != "K=0":
            takes = [Take(c.label, audio[str(c.path)], str(c.path)) for c in sets[name]]
            t1 = time.perf_counter()
            kw = {"l2": l2} if l2 is not None else {}
            profile = fit_profile(bundle, classifier, takes, **kw)
            info = {"fit_s": time.perf_counter() - t1, "seconds": sum(durations[str(c.path)] for c in sets[name])}
        states = replay_audio(rec.samples, rate, classifier, settings, stream=spk, profile=profile)
        ref = profile.baseline if profile is not None else oracle
        right, total = _clip_accuracy(classifier, audio, scored, ref, profile)
        out[name] = (states, rec.segments, right, total, info)
    return out


def _mean_over_draws(per_draw: Sequence[Mapping[str, Mapping[str, Any]]],
                     names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each setting's figures averaged over the draws, with the gains over K=0 and their spread."""
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        draws = [d[name] for d in per_draw]
        row: dict[str, Any] = {}
        for key, value in draws[0].items():
            if isinstance(value, Mapping):
                row[key] = {k: float(np.mean([d[key][k] for d in draws])) for k in value}
            elif key == "fit_s_max":
                row[key] = float(np.max([d[key] for d in draws]))
            elif key == "clips_scored":  # the same in every draw: each class gives up the same number
                row[key] = int(round(np.mean([d[key] for d in draws])))
            else:
                row[key] = float(np.mean([d[key] for d in draws]))
        gains = [d[name]["timeline_settled_accuracy"] - d["K=0"]["timeline_settled_accuracy"] for d in per_draw]
        clip_gains = [d[name]["clip_accuracy"] - d["K=0"]["clip_accuracy"] for d in per_draw]
        row["timeline_gain"] = float(np.mean(gains))
        row["clip_gain"] = float(np.mean(clip_gains))
        row["timeline_gain_per_draw"] = [float(g) for g in gains]
        row["timeline_gain_sd"] = float(np.std(gains))
        row["per_speaker_timeline_gain"] = {
            spk: float(np.mean([d[name]["per_speaker_timeline"][spk] - d["K=0"]["per_speaker_timeline"][spk]
                                for d in per_draw]))
            for spk in draws[0]["per_speaker_timeline"]
        }
        rows[name] = row
    return rows


def format_enrollment(result: Mapping[str, Any], title: str) -> str:
    """The per-setting table as text; with several draws, the gain's spread over them and per speaker."""
    draws = int(result.get("draws", 1))
    spread = draws > 1
    lines = [
        f"== {title}: personal profiles (speakers {', '.join(result['speakers'])}"
        + (f"; means over {draws} draws of enrollment clips, seeds {result['seed']}-{result['seed'] + draws - 1}"
           if spread else "") + ") ==",
        f"{'enrollment':<13} {'audio s':>7} {'fit s':>6} {'timeline':>8} {'gain':>6} "
        + (f"{'gain sd':>7} " if spread else "") + f"{'neutral':>7} {'clip':>6} {'gain':>6}",
    ]
    for name, r in result["settings"].items():
        audio = f"{r['enroll_audio_s_mean']:7.1f}" if "enroll_audio_s_mean" in r else f"{'-':>7}"
        fit = f"{r['fit_s_max']:6.2f}" if "fit_s_max" in r else f"{'-':>6}"
        sd = f"{r['timeline_gain_sd']:7.3f} " if spread else ""
        lines.append(
            f"{name:<13} {audio} {fit} {r['timeline_settled_accuracy']:8.3f} {r['timeline_gain']:+6.3f} {sd}"
            f"{r['neutral_share_emotional']:7.3f} {r['clip_accuracy']:6.3f} {r['clip_gain']:+6.3f}"
        )
    lines.append("timeline gain per speaker:")
    for name, r in result["settings"].items():
        if name != "K=0":
            per = ", ".join(f"{spk} {g:+.3f}" for spk, g in r["per_speaker_timeline_gain"].items())
            lines.append(f"  {name:<13} {per}")
    return "\n".join(lines)
