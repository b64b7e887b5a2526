"""The timeline evaluation: score what a viewer of the avatar sees, not single clips.

A user talks for minutes and changes mood now and then; the avatar must show
the right emotion soon after a change and keep it steady while the mood holds.
Clip accuracy says little about that, so ``ser-eval --timeline`` builds
conversation-like recordings and replays them through the daemon's own
streaming pipeline (voice gate, hop-by-hop windows, smoother):

Building (:func:`plan_timeline`, :func:`assemble`)
    Per speaker, the clips of each emotion are shuffled and cut into segments
    of 2–4 clips; the segments of all emotions are put in a shuffled order in
    which no emotion follows itself (when the counts allow it).  The clips are
    concatenated as they are, their own leading and trailing silence kept, so
    the pauses between sentences are the recordings' own.  One speaker's whole
    timeline is one recording.  The random generator is seeded from the seed
    and the speaker id, so a speaker's timeline does not depend on which other
    speakers are scored.

Scoring (:func:`score_timeline`, :func:`score_timelines`), on any list of
decisions (:class:`~ser_daemon.core.state.EmotionState` or :class:`Decision`) and
the segments' truth.  A decision belongs to the segment holding its window's
newest sample (``start < end_sample <= end``); it is *settled* when its window
ends at least ``settle_s`` into the segment and a voice is heard.

- settled accuracy: settled decisions whose *shown* label is the truth.  An
  uncertain decision shows "unsure" (as OSC and VRChat do) and is never right;
  ``settled_accuracy_guess`` counts its best guess instead.
- macro-F1 over the settled decisions (classes present in the truth).
- neutral share: settled decisions showing ``neutral`` during emotional
  segments (truth neither neutral nor calm).
- flicker: changes of the shown label (unsure included) between consecutive
  voiced, settled decisions of one segment, per minute of voiced settled time
  (decisions x hop); ``flicker_guess_per_min`` counts the best guess alone.  Relaxing to neutral in a pause is by design and not counted as such;
  but if the face has not come back when the voice resumes, that counts.
- time to right: from a segment's speech onset (its first clip's first
  speech sample, the clip's own leading silence skipped: the pause before a
  new mood is not reaction time) to the end of the window of its first
  decision that shows the truth; the median over segments, and how many
  segments never showed it.

Cheap smoothing sweeps (:func:`resmooth`, :func:`sweep_smoothing`): the
model's raw probabilities, the voice flags and the window ends do not depend
on the smoother's settings, so a replay is done once and only the
:class:`~ser_daemon.core.smoothing.Smoother` is run again over its ``raw`` outputs
per candidate.  This equals a full replay with those smoothing settings (a
test pins it); hop, window and voice-gate settings need a new replay.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence, TextIO

import numpy as np

from ..core.settings import AnalysisSettings, SmoothingSettings
from ..core.smoothing import NEUTRAL, UNSURE, Smoother
from .datasets import Clip

__all__ = [
    "UNSURE",
    "NON_EMOTIONAL",
    "Segment",
    "Recording",
    "Decision",
    "TimelineScore",
    "TimelineRun",
    "plan_timeline",
    "assemble",
    "score_timeline",
    "score_timelines",
    "decisions_from_states",
    "resmooth",
    "replay_timelines",
    "evaluate_timeline",
    "sweep_smoothing",
    "format_timeline",
]

log = logging.getLogger(__name__)

NON_EMOTIONAL = (NEUTRAL, "calm")


@dataclass(frozen=True)
class Segment:
    """A stretch of one emotion in a recording.

    Attributes:
        label: the true class.
        start: first sample (at the recording's rate).
        end: one past the last sample.
        clips: the files it was made of (for the report).
        onset: first sample of speech (its first clip's leading silence
            skipped); reaction is timed from here.  None: the segment's start.
    """

    label: str
    start: int
    end: int
    clips: tuple[str, ...] = ()
    onset: int | None = None

    @property
    def speech_start(self) -> int:
        return self.start if self.onset is None else self.onset


@dataclass(frozen=True)
class Recording:
    """One speaker's assembled timeline: audio and the truth."""

    speaker: str
    samples: np.ndarray
    sample_rate: int
    segments: tuple[Segment, ...]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Decision:
    """What the scorer needs of a decision (an :class:`EmotionState` has the same attributes).

    Attributes:
        end_sample: one past the window's newest sample, at the model's rate.
        label: the smoothed label.
        voice_active: whether the gate heard a voice.
        uncertain: the smoother was unsure (the face shows "unsure").
    """

    end_sample: int
    label: str
    voice_active: bool
    uncertain: bool = False


# ----------------------------------------------------------------------------- building


def _speaker_rng(seed: int, speaker: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(speaker.encode("utf-8"))])


def _partition(n: int, rng: np.random.Generator, min_clips: int, max_clips: int) -> list[int]:
    """Sizes in [min_clips, max_clips] summing to ``n`` (one smaller part only if n < min_clips)."""
    sizes = []
    remaining = n
    while remaining > max_clips:
        k = int(rng.integers(min_clips, min(max_clips, remaining - min_clips) + 1))
        sizes.append(k)
        remaining -= k
    if remaining:
        sizes.append(remaining)
    return sizes


def _order(groups: dict[str, list[tuple[Clip, ...]]], rng: np.random.Generator) -> list[tuple[str, tuple[Clip, ...]]]:
    """Interleave the segments so no label follows itself where the counts allow.

    At each step a label other than the last one is drawn with probability
    proportional to its remaining segments, except that a label holding more
    than half of what remains must go now (otherwise it would end up adjacent
    to itself).
    """
    left = {lab: list(segs) for lab, segs in groups.items() if segs}
    out: list[tuple[str, tuple[Clip, ...]]] = []
    last = None
    while left:
        total = sum(len(v) for v in left.values())
        names = sorted(left)
        forced = [lab for lab in names if lab != last and len(left[lab]) > total - len(left[lab])]
        cands = forced or [lab for lab in names if lab != last] or names
        weights = np.array([len(left[lab]) for lab in cands], dtype=np.float64)
        lab = cands[int(rng.choice(len(cands), p=weights / weights.sum()))]
        out.append((lab, left[lab].pop(0)))
        if not left[lab]:
            del left[lab]
        last = lab
    return out


def plan_timeline(
    clips: Sequence[Clip], seed: int = 0, min_clips: int = 2, max_clips: int = 4
) -> dict[str, list[tuple[str, tuple[Clip, ...]]]]:
    """Per speaker, the segments to play in order: ``(label, clips)``.

    Deterministic for a given seed and set of clips (their input order does
    not matter: clips are sorted by path first).

    Raises:
        ValueError: ``max_clips < 2 * min_clips - 1`` (no partition always exists).
    """
    if min_clips < 1 or max_clips < 2 * min_clips - 1:
        raise ValueError(f"need 1 <= min_clips and max_clips >= 2*min_clips-1. Received: {min_clips}, {max_clips}")
    by_speaker: dict[str, dict[str, list[Clip]]] = defaultdict(lambda: defaultdict(list))
    for c in sorted(clips, key=lambda c: (c.speaker, c.label, str(c.path))):
        by_speaker[c.speaker][c.label].append(c)
    plans = {}
    for speaker in sorted(by_speaker):
        rng = _speaker_rng(seed, speaker)
        groups: dict[str, list[tuple[Clip, ...]]] = {}
        for label in sorted(by_speaker[speaker]):
            items = by_speaker[speaker][label]
            perm = rng.permutation(len(items))
            shuffled = [items[i] for i in perm]
            segs, pos = [], 0
            for k in _partition(len(shuffled), rng, min_clips, max_clips):
                segs.append(tuple(shuffled[pos : pos + k]))
                pos += k
            groups[label] = segs
        plans[speaker] = _order(groups, rng)
    return plans


def assemble(
    speaker: str,
    plan: Sequence[tuple[str, Sequence[Clip]]],
    load: Callable[[Clip], np.ndarray],
    sample_rate: int,
    min_pause_s: float = 0.0,
) -> Recording:
    """Concatenate the planned clips as they are (pauses kept) and record the segments.

    Consecutive segments of the same label (only when the counts forced it)
    become one truth segment.

    Args:
        load: mono float32 audio of a clip at ``sample_rate``.
        min_pause_s: at least this much silence between two clips' speech: a
            corpus whose clips are cut at the speech (nEMO) would otherwise play
            as one breathless monologue, unlike a conversation.  What a clip's
            own silence lacks is added as faint noise (-80 dBFS, seeded) before it.
    """
    from ..audio.clips import speech_bounds

    parts: list[np.ndarray] = []
    segments: list[Segment] = []
    pos = 0
    trailing = None  # samples of silence after the previous clip's speech
    quiet_rng = np.random.default_rng(zlib.crc32(speaker.encode()))
    for label, seg_clips in plan:
        start = pos
        onset = None
        for c in seg_clips:
            x = np.asarray(load(c), dtype=np.float32).reshape(-1)
            lo, hi = speech_bounds(x, sample_rate) if len(x) else (0, 0)
            if trailing is not None and min_pause_s > 0:
                missing = int(round(min_pause_s * sample_rate)) - trailing - lo
                if missing > 0:
                    parts.append((quiet_rng.standard_normal(missing) * 1e-4).astype(np.float32))
                    pos += missing
            if onset is None and len(x):
                onset = pos + lo
            trailing = len(x) - hi
            parts.append(x)
            pos += len(x)
        names = tuple(str(c.path) for c in seg_clips)
        if segments and segments[-1].label == label:
            prev = segments[-1]
            segments[-1] = Segment(label, prev.start, pos, prev.clips + names, prev.onset)
        elif pos > start:
            segments.append(Segment(label, start, pos, names, onset))
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return Recording(speaker, samples, int(sample_rate), tuple(segments))


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class TimelineScore:
    """Figures of a timeline evaluation (see the module docstring for definitions).

    Rates are NaN when their denominator is empty.
    """

    labels: tuple[str, ...]
    n_decisions: int
    n_settled: int
    settled_accuracy: float
    settled_accuracy_guess: float
    macro_f1: float
    neutral_share_emotional: float
    n_settled_emotional: int
    unsure_share: float
    flicker_per_min: float
    label_changes: int
    flicker_guess_per_min: float
    guess_changes: int
    voiced_settled_min: float
    median_time_to_right_s: float
    segments: int
    segments_never_right: int
    per_class: Mapping[str, Mapping[str, float]]
    confusion: tuple[tuple[int, ...], ...]
    settle_s: float
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["labels"] = list(self.labels)
        d["confusion_columns"] = list(self.labels) + [UNSURE]
        d["confusion"] = [list(r) for r in self.confusion]
        d["per_class"] = {k: dict(v) for k, v in self.per_class.items()}
        d["extra"] = dict(self.extra)
        return d


def _nan_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def _merged_labels(labels: Sequence[str], merge: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(merge.get(lab, lab) for lab in labels))


def decisions_from_states(states: Iterable[Any]) -> list[Decision]:
    """Plain :class:`Decision` records of states (final states left out)."""
    return [
        Decision(int(s.end_sample), str(s.label), bool(s.voice_active), bool(getattr(s, "uncertain", False)))
        for s in states
        if not getattr(s, "final", False)
    ]


def score_timelines(
    runs: Iterable[tuple[Iterable[Any], Sequence[Segment]]],
    labels: Sequence[str],
    *,
    sample_rate: int,
    settle_s: float = 2.0,
    merge: Mapping[str, str] | None = None,
) -> TimelineScore:
    """Score several recordings together (decisions pooled).

    Args:
        runs: per recording, its decisions (oldest first; anything with
            ``end_sample``, ``label``, ``voice_active`` and optionally
            ``uncertain`` and ``final``) and its segments.
        labels: the model's classes.
        sample_rate: rate of ``end_sample`` and the segments, Hertz.
        settle_s: decisions this far into a segment (and voiced) are scored.
        merge: label renames applied to truth and shown labels alike
            (e.g. ``{"calm": "neutral"}``).
    """
    merge = dict(merge or {})
    names = _merged_labels(labels, merge)
    index = {lab: i for i, lab in enumerate(names)}
    n = len(names)
    cm = np.zeros((n, n + 1), dtype=np.int64)  # last column: unsure
    settle = int(round(settle_s * sample_rate))
    n_dec = n_settled = guess_right = 0
    emo_settled = emo_neutral = 0
    changes = guess_changes = 0
    hops: list[int] = []
    to_right: list[float] = []
    n_segments = never = 0
    for states, segments in runs:
        decs = decisions_from_states(states)
        n_dec += len(decs)
        ends = np.array([d.end_sample for d in decs], dtype=np.int64)
        if len(ends) > 1:
            hops.extend(np.diff(ends).tolist())
        for seg in segments:
            truth = merge.get(seg.label, seg.label)
            if truth not in index:
                raise ValueError(f"segment label {seg.label!r} is not among the model's classes {list(labels)}")
            lo = int(np.searchsorted(ends, seg.start, side="right"))
            hi = int(np.searchsorted(ends, seg.end, side="right"))
            if hi <= lo:
                continue
            n_segments += 1
            reached = None
            prev_shown = prev_guess = None
            for d in decs[lo:hi]:
                guess = merge.get(d.label, d.label)
                shown = UNSURE if d.uncertain else guess
                into = d.end_sample - seg.start
                if reached is None and shown == truth:
                    reached = max(0, d.end_sample - seg.speech_start) / sample_rate
                if into < settle or not d.voice_active:
                    continue
                n_settled += 1
                cm[index[truth], index.get(shown, n)] += 1
                guess_right += guess == truth
                if truth not in NON_EMOTIONAL:
                    emo_settled += 1
                    emo_neutral += shown == NEUTRAL
                if prev_shown is not None:
                    changes += shown != prev_shown
                    guess_changes += guess != prev_guess
                prev_shown, prev_guess = shown, guess
            if reached is None:
                never += 1
            else:
                to_right.append(reached)
    tp = np.diag(cm[:, :n]).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm[:, :n].sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n), where=denom > 0)
    present = support > 0
    hop_s = float(np.median(hops)) / sample_rate if hops else 0.0
    minutes = n_settled * hop_s / 60.0
    return TimelineScore(
        labels=names,
        n_decisions=n_dec,
        n_settled=n_settled,
        settled_accuracy=_nan_div(tp.sum(), n_settled),
        settled_accuracy_guess=_nan_div(guess_right, n_settled),
        macro_f1=float(np.mean(f1[present])) if present.any() else float("nan"),
        neutral_share_emotional=_nan_div(emo_neutral, emo_settled),
        n_settled_emotional=emo_settled,
        unsure_share=_nan_div(int(cm[:, n].sum()), n_settled),
        flicker_per_min=_nan_div(changes, minutes),
        label_changes=changes,
        flicker_guess_per_min=_nan_div(guess_changes, minutes),
        guess_changes=guess_changes,
        voiced_settled_min=minutes,
        median_time_to_right_s=float(np.median(to_right)) if to_right else float("nan"),
        segments=n_segments,
        segments_never_right=never,
        per_class={
            names[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                       "n": int(support[i])}
            for i in range(n)
        },
        confusion=tuple(tuple(int(v) for v in row) for row in cm),
        settle_s=float(settle_s),
    )


def score_timeline(
    states: Iterable[Any],
    segments: Sequence[Segment],
    labels: Sequence[str],
    *,
    sample_rate: int,
    settle_s: float = 2.0,
    merge: Mapping[str, str] | None = None,
) -> TimelineScore:
    """Score one recording's decisions against its segments (see :func:`score_timelines`)."""
    return score_timelines([(states, segments)], labels, sample_rate=sample_rate, settle_s=settle_s, merge=merge)


def resmooth(
    states: Sequence[Any], labels: Sequence[str], smoothing: SmoothingSettings, *, hop_samples: int, sample_rate: int
) -> list[Decision]:
    """Run a fresh :class:`Smoother` over a replay's raw outputs, as the pipeline would.

    Gives the decisions a full replay with these smoothing settings would give
    (same window ends, raw probabilities and voice flags; the time step is the
    distance between window ends, the first one a hop), without recomputing
    features or running the model.
    """
    smoother = Smoother(tuple(labels), smoothing)
    out: list[Decision] = []
    last_end: int | None = None
    for s in states:
        if getattr(s, "final", False):
            continue
        dt = hop_samples / sample_rate if last_end is None else (s.end_sample - last_end) / sample_rate
        last_end = s.end_sample
        raw = np.asarray(s.raw, dtype=np.float64) if len(s.raw) else None
        d = smoother.update(raw, bool(s.voice_active), dt)
        out.append(Decision(int(s.end_sample), d.label, bool(s.voice_active), bool(getattr(d, "uncertain", False))))
    return out


# ----------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class TimelineRun:
    """One speaker's replay: the truth and every decision (with raw probabilities)."""

    speaker: str
    segments: tuple[Segment, ...]
    states: tuple[Any, ...]
    duration_s: float


def replay_timelines(
    clips: Sequence[Clip],
    classifier: Any,
    *,
    settings: AnalysisSettings | None = None,
    seed: int = 0,
    min_clips: int = 2,
    max_clips: int = 4,
    load: Callable[[Clip], np.ndarray] | None = None,
    progress: TextIO | None = None,
    min_pause_s: float = 0.0,
) -> list[TimelineRun]:
    """Build every speaker's timeline and replay it through :func:`ser_daemon.model.analyzer.replay_audio`.

    Args:
        classifier: a loaded model with its ``bundle`` (from ``load_classifier``).
        settings: the daemon's analysis settings (default: the daemon's defaults).
        load: clip -> mono audio at the model's rate (default: read the file).
        min_pause_s: silence between clips' speech at least (see :func:`assemble`).
    """
    from ..model.analyzer import replay_audio

    bundle = classifier.bundle
    rate = bundle.features.sample_rate
    if load is None:
        from ..audio.clips import load_audio

        def load(c: Clip) -> np.ndarray:
            return load_audio(c.path, rate)

    runs = []
    plans = plan_timeline(clips, seed, min_clips, max_clips)
    t0 = time.perf_counter()
    for k, (speaker, plan) in enumerate(plans.items()):
        rec = assemble(speaker, plan, load, rate, min_pause_s)
        states = replay_audio(rec.samples, rate, classifier, settings, stream=speaker)
        runs.append(TimelineRun(speaker, rec.segments, tuple(states), rec.duration_s))
        if progress is not None:
            progress.write(f"timeline replay: {k + 1}/{len(plans)} speakers, {rec.duration_s:.0f} s of audio, "
                           f"{time.perf_counter() - t0:.0f} s elapsed\n")
            progress.flush()
    return runs


def _hop_samples(settings: AnalysisSettings | None, sample_rate: int) -> int:
    s = settings if settings is not None else AnalysisSettings()
    return int(round(s.hop_ms / 1000.0 * sample_rate))


def sweep_smoothing(
    runs: Sequence[TimelineRun],
    candidates: Iterable[SmoothingSettings],
    labels: Sequence[str],
    *,
    sample_rate: int,
    settings: AnalysisSettings | None = None,
    settle_s: float = 2.0,
    merge: Mapping[str, str] | None = None,
) -> list[tuple[SmoothingSettings, TimelineScore]]:
    """Score each smoothing candidate on replays done once (see :func:`resmooth`).

    Args:
        runs: from :func:`replay_timelines` (with the hop and gate settings to keep).
        settings: the analysis settings the runs were replayed with (for the hop).
    """
    hop = _hop_samples(settings, sample_rate)
    out = []
    for cand in candidates:
        scored = [(resmooth(r.states, labels, cand, hop_samples=hop, sample_rate=sample_rate), r.segments)
                  for r in runs]
        out.append((cand, score_timelines(scored, labels, sample_rate=sample_rate, settle_s=settle_s, merge=merge)))
    return out


SPEECH_HEARD_BINS_S = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)


def accuracy_by_speech_heard(
    runs: Iterable[tuple[Iterable[Any], Sequence[Segment]]],
    labels: Sequence[str],
    *,
    sample_rate: int,
    merge: Mapping[str, str] | None = None,
    gap_s: float = 0.25,
    bins_s: Sequence[float] = SPEECH_HEARD_BINS_S,
) -> list[dict[str, Any]]:
    """How often the window's own best class and the shown label are right, by speech heard so far.

    Why: the reaction time can only be as short as the point where the windows start being right.
    "Speech heard" is the voiced time since the gate opened after at least ``gap_s`` of closed
    gate (an utterance's start), counted in decision steps.  A decision falls in the first bin
    whose bound is at least its speech heard; the last row holds everything beyond the last bound.
    Only voiced decisions with raw probabilities and inside a segment count.

    Args:
        runs: per recording, its states (``end_sample``, ``raw``, ``label``, ``voice_active``;
            finals are skipped) and its segments.
        merge: label renames applied to truth, window and shown labels alike.

    Returns:
        One row per bin: ``up_to_s`` (None for the last), ``n``, ``window`` and ``shown`` accuracy
        (NaN where ``n`` is 0).
    """
    merge = dict(merge or {})
    edges = [float(b) for b in bins_s]
    n = np.zeros(len(edges) + 1, np.int64)
    win = np.zeros_like(n)
    shown = np.zeros_like(n)
    for states, segments in runs:
        starts = np.array([seg.start for seg in segments], np.int64)
        heard = quiet = 0.0
        last_end: int | None = None
        for st in states:
            if getattr(st, "final", False):
                continue
            end = int(st.end_sample)
            dt = 0.0 if last_end is None else (end - last_end) / sample_rate
            last_end = end
            if not st.voice_active:
                quiet += dt
                continue
            if quiet >= gap_s:
                heard = 0.0
            quiet = 0.0
            heard += dt
            k = int(np.searchsorted(starts, end - 1, side="right")) - 1
            raw = np.asarray(st.raw, np.float64)
            if k < 0 or end - 1 >= segments[k].end or raw.size == 0:
                continue
            truth = merge.get(segments[k].label, segments[k].label)
            best = labels[int(np.argmax(raw))]
            row = int(np.searchsorted(edges, heard - 1e-9, side="left"))
            n[row] += 1
            win[row] += merge.get(best, best) == truth
            shown[row] += merge.get(st.label, st.label) == truth
    return [{"up_to_s": edges[i] if i < len(edges) else None, "n": int(n[i]),
             "window": _nan_div(win[i], n[i]), "shown": _nan_div(shown[i], n[i])} for i in range(len(n))]


def evaluate_timeline(
    clips: Sequence[Clip],
    classifier: Any,
    *,
    settings: AnalysisSettings | None = None,
    seed: int = 0,
    settle_s: float = 2.0,
    merge: Mapping[str, str] | None = None,
    min_clips: int = 2,
    max_clips: int = 4,
    load: Callable[[Clip], np.ndarray] | None = None,
    progress: TextIO | None = sys.stderr,
    min_pause_s: float = 0.0,
) -> tuple[TimelineScore, list[TimelineRun]]:
    """Build, replay and score; returns the score and the runs (for :func:`sweep_smoothing`)."""
    t0 = time.perf_counter()
    runs = replay_timelines(clips, classifier, settings=settings, seed=seed, min_clips=min_clips,
                            max_clips=max_clips, load=load, progress=progress, min_pause_s=min_pause_s)
    rate = classifier.bundle.features.sample_rate
    score = score_timelines([(r.states, r.segments) for r in runs], classifier.bundle.labels,
                            sample_rate=rate, settle_s=settle_s, merge=merge)
    extra = {
        "seed": int(seed),
        "speakers": [r.speaker for r in runs],
        "audio_s": float(sum(r.duration_s for r in runs)),
        "segments_per_speaker": {r.speaker: len(r.segments) for r in runs},
        "segment_labels": dict(sorted(Counter(s.label for r in runs for s in r.segments).items())),
        "merge": dict(merge or {}),
        "min_pause_s": float(min_pause_s),
        "settings": dataclasses.asdict(settings if settings is not None else AnalysisSettings()),
        "wall_s": time.perf_counter() - t0,
        "by_speech_heard": accuracy_by_speech_heard([(r.states, r.segments) for r in runs], classifier.bundle.labels,
                                                    sample_rate=rate, merge=merge),
    }
    return dataclasses.replace(score, extra=extra), runs


DRAW_FIGURES = ("settled_accuracy", "macro_f1", "neutral_share_emotional", "flicker_per_min")


def summarize_draws(scores: Sequence[TimelineScore]) -> dict[str, Any]:
    """Mean, spread and range of the headline figures over timelines of several segment orders.

    The same clips are replayed in every draw, only in another order with
    other pauses; the smoother carries its state across segments, so the order
    moves the settled accuracy by about a point on four speakers.
    """
    if not scores:
        raise ValueError("no timeline scores to summarise")
    out: dict[str, Any] = {"n": len(scores), "seeds": [int(s.extra.get("seed", -1)) for s in scores]}
    for key in DRAW_FIGURES:
        values = np.array([getattr(s, key) for s in scores], dtype=np.float64)
        out[key] = {"mean": float(np.mean(values)), "sd": float(np.std(values)), "min": float(np.min(values)),
                    "max": float(np.max(values)), "per_draw": [float(v) for v in values]}
    return out


def evaluate_timeline_draws(clips: Sequence[Clip], classifier: Any, draws: int, *, seed: int = 0,
                            **kwargs: Any) -> TimelineScore:
    """:func:`evaluate_timeline` with seeds ``seed`` .. ``seed + draws - 1``.

    Returns the first seed's full score (what one ``--timeline`` run gives),
    with :func:`summarize_draws` of all of them in ``extra["draws"]``.
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, not {draws}")
    scores = [evaluate_timeline(clips, classifier, seed=seed + d, **kwargs)[0] for d in range(draws)]
    extra = dict(scores[0].extra)
    extra["draws"] = summarize_draws(scores)
    return dataclasses.replace(scores[0], extra=extra)


def format_timeline(score: TimelineScore | Mapping[str, Any], title: str) -> str:
    """The headline figures and the per-class table as text."""
    d = score.to_dict() if isinstance(score, TimelineScore) else dict(score)

    def f(x: Any, spec: str = ".3f") -> str:
        return "n/a" if x is None or (isinstance(x, float) and x != x) else format(x, spec)

    labels = d["labels"]
    w = max(9, max(len(x) for x in labels) + 1)
    lines = [
        f"== {title}: timeline (settled: >= {d['settle_s']:g} s into a segment, voice heard) ==",
        f"decisions={d['n_decisions']}  settled={d['n_settled']}  segments={d['segments']}",
        f"settled accuracy {f(d['settled_accuracy'])} (best guess when unsure: {f(d['settled_accuracy_guess'])})  "
        f"macro-F1 {f(d['macro_f1'])}",
        f"neutral shown during emotional segments {f(d['neutral_share_emotional'])} "
        f"(n={d['n_settled_emotional']})  unsure shown {f(d['unsure_share'])}",
        f"flicker {f(d['flicker_per_min'], '.2f')} label changes/min of voiced settled time "
        f"({d['label_changes']} in {f(d['voiced_settled_min'], '.1f')} min; best guess alone "
        f"{f(d['flicker_guess_per_min'], '.2f')}/min)",
        f"median time to the right label after a change {f(d['median_time_to_right_s'], '.2f')} s "
        f"({d['segments_never_right']} of {d['segments']} segments never showed it)",
        "",
        f"{'class':<{w}} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>6}",
    ]
    draws = (d.get("extra") or {}).get("draws")
    if draws and draws["n"] > 1:
        seeds = draws["seeds"]
        lines[-2:-2] = [
            f"over {draws['n']} segment orders (seeds {seeds[0]}-{seeds[-1]}; the figures above are seed {seeds[0]}'s):",
            *(f"  {key.replace('_', ' ')}: mean {f(v['mean'])}, sd {f(v['sd'])}, {f(v['min'])} to {f(v['max'])}"
              for key, v in ((k, draws[k]) for k in DRAW_FIGURES)),
        ]
    heard = (d.get("extra") or {}).get("by_speech_heard")
    if heard:
        lines[-2:-2] = [
            "right by speech heard since the utterance began (window's own best class / shown label):",
            "  " + "  ".join(f"{'<=' + format(r['up_to_s'], 'g') + ' s' if r['up_to_s'] is not None else 'more'} "
                             f"{f(r['window'], '.2f')}/{f(r['shown'], '.2f')}" for r in heard if r["n"]),
        ]
    for lab in labels:
        m = d["per_class"][lab]
        lines.append(f"{lab:<{w}} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['n']:6d}")
    lines.append("")
    lines.append("confusion of settled decisions (rows: true, columns: shown)")
    cols = list(labels) + [UNSURE]
    lines.append(" " * w + " ".join(f"{c[:5]:>5}" for c in cols))
    for lab, row in zip(labels, d["confusion"]):
        lines.append(f"{lab:<{w}}" + " ".join(f"{v:5d}" for v in row))
    return "\n".join(lines)
