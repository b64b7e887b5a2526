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

from ..audio.clips import load_audio
from ..core.features import log_mel
from ..core.settings import AnalysisSettings
from ..core.speaker_norm import voiced_frames
from ..errors import ProfileError
from ..model.analyzer import replay_audio
from ..profiles.enroll import Take, fit_profile
from ..profiles.store import VoiceProfile
from .datasets import Clip
from .timeline import assemble, plan_timeline, score_timelines

__all__ = ["pick_enrollment", "evaluate_enrollment", "format_enrollment", "class_groups", "NEUTRAL_ONLY_S"]

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
                   reference: np.ndarray, profile: VoiceProfile | None) -> dict[str, tuple[int, int]]:
    """Per label of the scored clips: ``(clips right, clips scored)``."""
    from ..profiles.enroll import clip_windows

    bundle = classifier.bundle
    index = {lab: i for i, lab in enumerate(bundle.labels)}
    counts: dict[str, tuple[int, int]] = {}
    for c in clips:
        x = clip_windows(audio[str(c.path)], bundle, reference)
        if profile is not None and profile.head is not None:
            probs = profile.head.probs(classifier.predict_embedded(x)[1])
        else:
            probs = classifier.predict(x)
        right, total = counts.get(c.label, (0, 0))
        counts[c.label] = (right + int(np.argmax(probs.mean(axis=0)) == index[c.label]), total + 1)
    return counts


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
    enroll_labels: Sequence[str] | None = None,
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

    ``enroll_labels``: the classes the K-clip profiles are made from (None:
    all); the rows then carry :func:`class_groups` figures.

    Raises:
        ValueError: ``draws`` below 1.
        ProfileError: an ``enroll_labels`` entry the model does not know.
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, not {draws}")
    bundle = classifier.bundle
    if enroll_labels is not None:
        enroll_labels = list(dict.fromkeys(enroll_labels))
        unknown = [lab for lab in enroll_labels if lab not in bundle.labels]
        if unknown or not enroll_labels:
            raise ProfileError(f"--enroll-labels {','.join(unknown) or '(none)'}: not labels of model "
                               f"{bundle.name!r} ({', '.join(bundle.labels)})")
    rate = bundle.features.sample_rate
    load = load or (lambda c: load_audio(c.path, rate))
    speakers = sorted({c.speaker for c in clips})
    names = ["K=0"] + [f"K={k}" for k in range(1, k_max + 1)] + ["neutral-only"]
    t0 = time.perf_counter()
    runs: list[dict[str, list[tuple[Any, Any]]]] = [{s: [] for s in names} for _ in range(draws)]
    by_speaker: list[dict[str, dict[str, float]]] = [{s: {} for s in names} for _ in range(draws)]
    clip_counts: list[dict[str, dict[str, list[int]]]] = [{s: {} for s in names} for _ in range(draws)]
    enroll_info: list[dict[str, dict[str, list[float]]]] = [{s: {"seconds": [], "fit_s": []} for s in names[1:]}
                                                            for _ in range(draws)]
    for n, spk in enumerate(speakers):
        own = [c for c in clips if c.speaker == spk]
        audio = {str(c.path): load(c) for c in own}  # once per speaker, whatever the number of draws
        for d in range(draws):
            for name, (states, segments, per_label, info) in _one_speaker(
                    own, audio, classifier, k_max, seed + d, settings, l2, names, enroll_labels).items():
                runs[d][name].append((states, segments))
                spk_score = score_timelines([(states, segments)], bundle.labels, sample_rate=rate,
                                            settle_s=settle_s, merge=merge)
                by_speaker[d][name][spk] = spk_score.settled_accuracy
                for lab, (right, total) in per_label.items():
                    got = clip_counts[d][name].setdefault(lab, [0, 0])
                    got[0] += right
                    got[1] += total
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
            right = sum(r for r, _ in clip_counts[d][name].values())
            scored = sum(t for _, t in clip_counts[d][name].values())
            rows[name] = {
                "timeline_settled_accuracy": sd["settled_accuracy"],
                "timeline_macro_f1": sd["macro_f1"],
                "neutral_share_emotional": sd["neutral_share_emotional"],
                "flicker_per_min": sd["flicker_per_min"],
                "clip_accuracy": right / max(1, scored),
                "clips_scored": scored,
                "per_class_recall": {lab: m["recall"] for lab, m in sd["per_class"].items()},
                "clip_per_class_recall": {lab: r / t for lab, (r, t) in sorted(clip_counts[d][name].items())},
                "per_speaker_timeline": by_speaker[d][name],
            }
            if name in enroll_info[d]:
                rows[name]["enroll_audio_s_mean"] = float(np.mean(enroll_info[d][name]["seconds"]))
                rows[name]["fit_s_max"] = float(np.max(enroll_info[d][name]["fit_s"]))
        per_draw.append(rows)
    out: dict[str, Any] = {"speakers": speakers, "k_max": k_max, "seed": seed, "draws": draws,
                           "settings": _mean_over_draws(per_draw, names)}
    if enroll_labels is not None:
        out["enroll_labels"] = enroll_labels
        out["classes"] = class_groups(out["settings"], enroll_labels)
    out["wall_s"] = time.perf_counter() - t0
    return out


def _one_speaker(own: Sequence[Clip], audio: Mapping[str, np.ndarray], classifier: Any, k_max: int, seed: int,
                 settings: AnalysisSettings | None, l2: float | None, names: Sequence[str],
                 enroll_labels: Sequence[str] | None = None,
                 ) -> dict[str, tuple[Any, Any, dict[str, tuple[int, int]], dict[str, float]]]:
    """One speaker, one draw: per setting, the replay's states and segments, clips right / scored per label, fit info.

    With ``enroll_labels`` the K-clip sets keep only those classes' clips; the
    scored clips are the same as without (the others' enrollment clips are not scored).
    """
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
            chosen = [c for c in sets[name]
                      if enroll_labels is None or name == "neutral-only" or c.label in enroll_labels]
            takes = [Take(c.label, audio[str(c.path)], str(c.path)) for c in chosen]
            t1 = time.perf_counter()
            kw = {"l2": l2} if l2 is not None else {}
            profile = fit_profile(bundle, classifier, takes, **kw)
            info = {"fit_s": time.perf_counter() - t1, "seconds": sum(durations[str(c.path)] for c in chosen)}
        states = replay_audio(rec.samples, rate, classifier, settings, stream=spk, profile=profile)
        ref = profile.baseline if profile is not None else oracle
        out[name] = (states, rec.segments, _clip_accuracy(classifier, audio, scored, ref, profile), info)
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


def class_groups(rows: Mapping[str, Mapping[str, Any]], recorded: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per setting: mean recall of the recorded and of the unrecorded classes, and what each unrecorded class kept.

    For the timeline (``per_class_recall``) and the clips (``clip_per_class_recall``):
    ``recorded`` and ``unrecorded`` are means over the classes scored;
    ``kept`` is, per unrecorded class, its recall over its recall without a
    profile (``K=0``; None where that was 0), and ``kept_min`` the least of
    them.  Neutral-only profiles record only neutral; the K-clip ones ``recorded``.
    """
    out: dict[str, dict[str, Any]] = {}
    base = rows["K=0"]
    for name, row in rows.items():
        mine = ["neutral"] if name == "neutral-only" else list(recorded)
        entry: dict[str, Any] = {"recorded_labels": mine}
        for key, short in (("per_class_recall", "timeline"), ("clip_per_class_recall", "clip")):
            recall, without = row[key], base[key]
            rec = [recall[lab] for lab in mine if lab in recall]
            unrec = {lab: r for lab, r in recall.items() if lab not in mine}
            kept = {lab: (r / without[lab] if without.get(lab) else None) for lab, r in unrec.items()}
            known = [k for k in kept.values() if k is not None]
            entry[short] = {
                "recorded": float(np.mean(rec)) if rec else None,
                "unrecorded": float(np.mean(list(unrec.values()))) if unrec else None,
                "kept": kept,
                "kept_min": min(known) if known else None,
            }
        out[name] = entry
    return out


def _format_classes(result: Mapping[str, Any]) -> list[str]:
    """The recorded / unrecorded recall table of a run with ``enroll_labels``."""
    classes = result["classes"]
    settings = result["settings"]
    labels = list(settings["K=0"]["per_class_recall"])
    lines = [f"recall per class (K-clip profiles from {', '.join(result['enroll_labels'])} only; "
             "kept: least share of its recall without a profile that an unrecorded class keeps):"]
    for short, key in (("timeline", "per_class_recall"), ("clip", "clip_per_class_recall")):
        lines.append(f"  {short:<8} {'enrollment':<13} {'recorded':>8} {'unrec.':>7} {'kept':>6}  "
                     + " ".join(f"{lab[:7]:>7}" for lab in labels))
        for name, entry in classes.items():
            g = entry[short]
            fmt = lambda v: f"{v:.3f}" if v is not None else "-"  # noqa: E731
            per = settings[name][key]
            lines.append(f"  {'':<8} {name:<13} {fmt(g['recorded']):>8} {fmt(g['unrecorded']):>7} "
                         f"{fmt(g['kept_min']):>6}  "
                         + " ".join(f"{per.get(lab, float('nan')):7.3f}" for lab in labels))
    return lines


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
    if "classes" in result:
        lines.extend(_format_classes(result))
    return "\n".join(lines)
