"""The timeline evaluation: builder, scorer and replay, on generated fixtures with exact answers.

The end-to-end cases use a fake classifier that reads the label from the
frequency of a tone in the newest log-mel frame, so every decision's output is
known in advance and the scores can be computed by hand.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser_daemon.core.settings import AnalysisSettings, SmoothingSettings, VadSettings
from ser_daemon.core.features import FeatureConfig, mel_filterbank
from ser_daemon.model.bundle import ModelBundle
from ser_daemon.model.analyzer import replay_audio
from ser_daemon.training.datasets import Clip
from ser_daemon.training.timeline import (
    UNSURE,
    Decision,
    accuracy_by_speech_heard,
    Segment,
    assemble,
    evaluate_timeline,
    format_timeline,
    plan_timeline,
    replay_timelines,
    resmooth,
    score_timeline,
    score_timelines,
    sweep_smoothing,
)
from tiny_model import tone, write_wav

RATE = 16000
LABELS = ("neutral", "happy", "sad", "angry")
TONES = {"neutral": 250.0, "happy": 500.0, "sad": 1000.0, "angry": 2000.0}


class ToneClassifier:
    """Reads the label from the loudest mel band of the window's newest frame.

    Args:
        confuse: tone label -> label reported instead (a known mistake).
        sure: probability given to the reported label; the rest is spread evenly.
    """

    backend = "fake"

    def __init__(self, confuse: dict[str, str] | None = None, sure: float = 1.0, window_s: float = 1.0) -> None:
        cfg = FeatureConfig()
        self.labels = LABELS
        self.bundle = ModelBundle(Path("."), "fake", LABELS, cfg, window_s, None, None)
        self.input_shape = self.bundle.input_shape
        fb = mel_filterbank(cfg)
        freqs = np.linspace(0, cfg.sample_rate / 2, fb.shape[0])
        centres = (fb * freqs[:, None]).sum(axis=0) / np.maximum(fb.sum(axis=0), 1e-9)
        self._band_label = [min(TONES, key=lambda lab: abs(math.log(TONES[lab] / max(c, 1.0)))) for c in centres]
        self.confuse = dict(confuse or {})
        self.sure = sure

    def predict(self, batch: np.ndarray) -> np.ndarray:
        out = np.full((len(batch), len(LABELS)), (1.0 - self.sure) / (len(LABELS) - 1), dtype=np.float32)
        for i, window in enumerate(batch):
            heard = self._band_label[int(np.argmax(window[-1]))]
            out[i, LABELS.index(self.confuse.get(heard, heard))] = self.sure
        return out


# The gate's noise floor rises 3 dB/s by default, so minutes of steady tone would become "floor";
# speech is never that steady.  A slow rise keeps the fixtures' tones voiced throughout.
STEADY_VAD = VadSettings(vad_floor_rise_db_per_s=0.01)
PASSTHROUGH = SmoothingSettings(ema_ms=0.0, hysteresis=0.0, min_dwell_ms=0.0, hold_ms=500.0, min_confidence=0.0)


def clips_for(tmp_path: Path, speaker: str, per_label: dict[str, int], seconds: float = 2.0,
              pad_s: float = 0.0) -> list[Clip]:
    """Tone clips on disk: ``pad_s`` of silence, the label's tone, ``pad_s`` of silence."""
    out = []
    pad = np.zeros(int(pad_s * RATE), np.float32)
    for label, n in per_label.items():
        for k in range(n):
            x = np.concatenate([pad, tone(TONES[label], seconds), pad])
            path = write_wav(tmp_path / f"{speaker}_{label}_{k}.wav", x)
            out.append(Clip(path, label, speaker))
    return out


# ----------------------------------------------------------------------------- builder


def fake_clips(speaker: str, counts: dict[str, int]) -> list[Clip]:
    return [Clip(Path(f"/x/{speaker}/{lab}_{k:02d}.wav"), lab, speaker) for lab, n in counts.items() for k in range(n)]


RAVDESS_LIKE = {"neutral": 4, "calm": 8, "happy": 8, "sad": 8, "angry": 8, "fearful": 8, "disgust": 8, "surprised": 8}


def test_plan_is_seeded_complete_and_interleaved() -> None:
    clips = fake_clips("a", RAVDESS_LIKE) + fake_clips("b", RAVDESS_LIKE)
    plan = plan_timeline(clips, seed=3)
    assert plan == plan_timeline(list(reversed(clips)), seed=3)  # input order does not matter
    assert plan != plan_timeline(clips, seed=4)
    # A speaker's timeline does not depend on which other speakers are scored.
    assert plan["a"] == plan_timeline(fake_clips("a", RAVDESS_LIKE), seed=3)["a"]
    for speaker, segs in plan.items():
        used = [c for _, cs in segs for c in cs]
        assert sorted(map(str, (c.path for c in used))) == sorted(str(c.path) for c in clips if c.speaker == speaker)
        assert all(2 <= len(cs) <= 4 for _, cs in segs)
        assert all(c.label == lab for lab, cs in segs for c in cs)
        assert all(segs[i][0] != segs[i + 1][0] for i in range(len(segs) - 1))
    # Shuffled: the two speakers do not share one order.
    assert [lab for lab, _ in plan["a"]] != [lab for lab, _ in plan["b"]]


def test_plan_keeps_a_lone_clip_and_refuses_impossible_sizes() -> None:
    plan = plan_timeline(fake_clips("a", {"happy": 1, "sad": 5}), seed=0)["a"]
    sizes = sorted((lab, len(cs)) for lab, cs in plan)
    assert sizes[0] == ("happy", 1) and sum(n for lab, n in sizes if lab == "sad") == 5
    with pytest.raises(ValueError):
        plan_timeline(fake_clips("a", {"happy": 5}), min_clips=3, max_clips=4)


def test_assemble_keeps_pauses_and_marks_boundaries() -> None:
    a = np.concatenate([np.zeros(3), np.ones(4), np.zeros(2)]).astype(np.float32)  # 9 samples, pauses inside
    b = np.full(5, 0.5, np.float32)
    audio = {"a1": a, "a2": a * 2, "b1": b}
    plan = [("happy", [Clip(Path("a1"), "happy", "s"), Clip(Path("a2"), "happy", "s")]),
            ("sad", [Clip(Path("b1"), "sad", "s")])]
    rec = assemble("s", plan, lambda c: audio[str(c.path)], 10)
    assert np.array_equal(rec.samples, np.concatenate([a, a * 2, b]))  # nothing trimmed, nothing added
    # Onsets: the first clip's own leading silence skipped (speech at 3, kept with a 0.1 s margin).
    assert rec.segments == (Segment("happy", 0, 18, ("a1", "a2"), onset=2), Segment("sad", 18, 23, ("b1",), onset=18))
    assert rec.duration_s == 2.3


def test_assemble_adds_only_the_pause_a_clip_lacks() -> None:
    """Clips cut at the speech (nEMO) get silence between them; clips with their own pauses keep them."""
    speech = np.ones(10, np.float32)
    padded = np.concatenate([np.zeros(6), np.ones(10), np.zeros(6)]).astype(np.float32)
    audio = {"a1": speech, "a2": speech, "b1": padded}
    plan = [("happy", [Clip(Path("a1"), "happy", "s"), Clip(Path("a2"), "happy", "s")]),
            ("sad", [Clip(Path("b1"), "sad", "s")])]
    rec = assemble("s", plan, lambda c: audio[str(c.path)], 10, min_pause_s=1.0)
    # a1 | 10 quiet | a2 | 5 quiet (b1 brings 5 of its own: 6 less the 0.1 s margin) | b1
    assert len(rec.samples) == 10 + 10 + 10 + 5 + 22
    assert np.abs(rec.samples[10:20]).max() < 1e-3 and rec.samples[20:30].min() == 1.0
    assert rec.segments == (Segment("happy", 0, 30, ("a1", "a2"), onset=0),
                            Segment("sad", 30, 57, ("b1",), onset=30 + 5 + 5))
    same = assemble("s", plan, lambda c: audio[str(c.path)], 10, min_pause_s=1.0)
    assert np.array_equal(same.samples, rec.samples)  # seeded: a speaker's recording is reproducible
    assert len(assemble("s", plan, lambda c: audio[str(c.path)], 10).samples) == 42  # default: nothing added


def test_assemble_merges_forced_neighbours_of_one_label() -> None:
    x = np.ones(4, np.float32)
    plan = plan_timeline(fake_clips("s", {"happy": 4}), min_clips=2, max_clips=3)["s"]
    assert [lab for lab, _ in plan] == ["happy", "happy"]  # nothing else to put between them
    rec = assemble("s", plan, lambda c: x, 4)
    assert rec.segments == (Segment("happy", 0, 16, tuple(str(c.path) for _, cs in plan for c in cs), onset=0),)


def test_time_to_right_counts_from_the_speech_onset_not_the_pause() -> None:
    """A new mood's segment starts with its first clip's silence; the face cannot react to silence."""
    decisions, segments = hand_case()
    late_speech = [segments[0], Segment("sad", 24, 48, onset=30)]  # 1.5 s of pause before the first word
    s = score_timeline(decisions, late_speech, ("neutral", "happy", "sad"), sample_rate=4, settle_s=2.0)
    assert s.median_time_to_right_s == pytest.approx((1.5 + 1.5) / 2)  # sad: right at 36, 6 samples after 30
    before = [Segment("happy", 0, 24, onset=8), segments[1]]  # right at 6, before the onset: no reaction time
    s = score_timeline(decisions, before, ("neutral", "happy", "sad"), sample_rate=4, settle_s=2.0)
    assert s.median_time_to_right_s == pytest.approx((0.0 + 3.0) / 2)
    # Everything else is scored as before: settling still counts from the segment's start.
    assert s.n_settled == 17 and s.settled_accuracy == pytest.approx(13 / 17)


# ----------------------------------------------------------------------------- scorer, by hand


def hand_case() -> tuple[list[Decision], list[Segment]]:
    """Rate 4 Hz (a sample is 0.25 s), a decision every 2 samples (0.5 s), settle 2 s = 8 samples.

    happy [0, 24): ends 2..24.  Settled and voiced: 8 H, 10 H, 12 S, 14 H, 18 unsure(H), 20 H, 22 H,
    24 H (16 is unvoiced).  Right: 6 (guess: 7).  Changes: H>S, S>H, H>U, U>H = 4.  First right at 6: 1.5 s.
    sad [24, 48): ends 26..48.  Settled: 32 N, 34 N, 36..48 S (7).  Right 7; neutral 2; changes N>S = 1.
    First right at 36: 3.0 s.
    """
    d = Decision
    happy = [d(2, "neutral", True), d(4, "neutral", True), d(6, "happy", True), d(8, "happy", True),
             d(10, "happy", True), d(12, "sad", True), d(14, "happy", True), d(16, "happy", False),
             d(18, "happy", True, uncertain=True), d(20, "happy", True), d(22, "happy", True), d(24, "happy", True)]
    sad = [d(26, "happy", True), d(28, "neutral", True), d(30, "neutral", True), d(32, "neutral", True),
           d(34, "neutral", True)] + [d(e, "sad", True) for e in range(36, 49, 2)]
    return happy + sad, [Segment("happy", 0, 24), Segment("sad", 24, 48)]


def test_scores_of_a_hand_computed_case() -> None:
    decisions, segments = hand_case()
    s = score_timeline(decisions, segments, ("neutral", "happy", "sad"), sample_rate=4, settle_s=2.0)
    assert (s.n_decisions, s.n_settled, s.segments, s.segments_never_right) == (24, 17, 2, 0)
    assert s.settled_accuracy == pytest.approx(13 / 17)
    assert s.settled_accuracy_guess == pytest.approx(14 / 17)
    assert s.neutral_share_emotional == pytest.approx(2 / 17) and s.n_settled_emotional == 17
    assert s.unsure_share == pytest.approx(1 / 17)
    assert s.label_changes == 5
    assert s.guess_changes == 3  # H>S, S>H in happy (the unsure one's guess is happy); N>S in sad
    assert s.flicker_guess_per_min == pytest.approx(3 / (17 * 0.5 / 60))
    assert s.voiced_settled_min == pytest.approx(17 * 0.5 / 60)
    assert s.flicker_per_min == pytest.approx(5 / (17 * 0.5 / 60))
    assert s.median_time_to_right_s == pytest.approx(2.25)  # median of 1.5 and 3.0
    pc = s.per_class
    assert pc["happy"] == pytest.approx({"precision": 1.0, "recall": 0.75, "f1": 6 / 7, "n": 8})
    assert pc["sad"] == pytest.approx({"precision": 7 / 8, "recall": 7 / 9, "f1": 14 / 17, "n": 9})
    assert pc["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 0}
    assert s.macro_f1 == pytest.approx((6 / 7 + 14 / 17) / 2)  # classes present in the truth only
    # rows: true neutral, happy, sad; columns: shown neutral, happy, sad, unsure
    assert s.confusion == ((0, 0, 0, 0), (0, 6, 1, 1), (2, 0, 7, 0))


def test_window_end_on_a_boundary_belongs_to_the_segment_before() -> None:
    segs = [Segment("happy", 0, 8), Segment("sad", 8, 16)]
    ds = [Decision(8, "happy", True), Decision(16, "sad", True)]
    s = score_timeline(ds, segs, ("happy", "sad"), sample_rate=4, settle_s=2.0)
    assert s.n_settled == 2 and s.settled_accuracy == 1.0


def test_settle_time_voice_and_final_states_decide_what_is_scored() -> None:
    segs = [Segment("angry", 0, 40)]
    ds = [Decision(e, "angry", e != 20) for e in range(4, 41, 4)]
    s = score_timeline(ds, segs, ("neutral", "angry"), sample_rate=4, settle_s=3.0)
    assert s.n_settled == 7  # ends 12..40 are >= 3 s in; 20 is unvoiced
    s0 = score_timeline(ds, segs, ("neutral", "angry"), sample_rate=4, settle_s=0.0)
    assert s0.n_settled == 9
    final = replace_final(Decision(40, "neutral", False))
    assert score_timeline(ds + [final], segs, ("neutral", "angry"), sample_rate=4).n_decisions == len(ds)


def replace_final(d: Decision) -> object:
    class Final:
        end_sample, label, voice_active, uncertain, final = d.end_sample, d.label, d.voice_active, False, True

    return Final()


def test_merge_scores_calm_as_neutral_and_out_of_the_emotional_share() -> None:
    segs = [Segment("calm", 0, 16), Segment("happy", 16, 32)]
    ds = [Decision(e, "neutral", True) for e in range(2, 17, 2)] + [Decision(e, "calm", True) for e in range(18, 33, 2)]
    plain = score_timeline(ds, segs, ("neutral", "calm", "happy"), sample_rate=4)
    assert plain.settled_accuracy == 0.0 and plain.neutral_share_emotional == 0.0
    merged = score_timeline(ds, segs, ("neutral", "calm", "happy"), sample_rate=4, merge={"calm": "neutral"})
    assert merged.labels == ("neutral", "happy")
    # calm segment: 5 settled decisions showing neutral, now right; happy segment: 5 shown calm = neutral.
    assert merged.settled_accuracy == pytest.approx(5 / 10)
    assert merged.neutral_share_emotional == pytest.approx(1.0) and merged.n_settled_emotional == 5
    assert merged.segments_never_right == 1


def test_pooled_recordings_score_as_one_and_unknown_truth_is_refused() -> None:
    decisions, segments = hand_case()
    one = score_timeline(decisions, segments, ("neutral", "happy", "sad"), sample_rate=4)
    two = score_timelines([(decisions, segments), (decisions, segments)], ("neutral", "happy", "sad"), sample_rate=4)
    assert two.n_settled == 2 * one.n_settled and two.settled_accuracy == one.settled_accuracy
    assert two.flicker_per_min == pytest.approx(one.flicker_per_min)
    with pytest.raises(ValueError, match="surprised"):
        score_timeline(decisions, [Segment("surprised", 0, 48)], ("neutral", "happy", "sad"), sample_rate=4)


def test_format_and_json_round_trip() -> None:
    decisions, segments = hand_case()
    s = score_timeline(decisions, segments, ("neutral", "happy", "sad"), sample_rate=4)
    text = format_timeline(s, "hand")
    assert "settled accuracy 0.765" in text and "unsur" in text and "happy" in text
    d = json.loads(json.dumps(s.to_dict()))
    assert d["confusion_columns"] == ["neutral", "happy", "sad", UNSURE]
    assert format_timeline(d, "hand") == text


def test_accuracy_by_speech_heard_restarts_at_each_utterance() -> None:
    """Rate 4: one decision per 0.25 s.  Windows are binned by voiced time since the gate reopened."""
    from types import SimpleNamespace as S

    labels = ("neutral", "happy", "sad", "calm")
    one = {lab: [float(lab == other) for other in labels] for lab in labels}
    segs = [Segment("happy", 0, 12), Segment("calm", 12, 24)]
    states = [
        S(end_sample=1, raw=one["happy"], label="happy", voice_active=True),   # heard 0    -> <= 0.25
        S(end_sample=2, raw=one["happy"], label="happy", voice_active=True),   # 0.25       -> <= 0.25
        S(end_sample=3, raw=one["sad"], label="happy", voice_active=True),     # 0.5        -> <= 0.5
        S(end_sample=4, raw=one["sad"], label="sad", voice_active=True),       # 0.75       -> <= 0.75
        S(end_sample=5, raw=one["sad"], label="sad", voice_active=False),      # 0.5 s of closed gate
        S(end_sample=6, raw=one["sad"], label="sad", voice_active=False),
        S(end_sample=7, raw=one["sad"], label="happy", voice_active=True),     # a new utterance: 0.25
        S(end_sample=8, raw=one["happy"], label="happy", voice_active=True),   # 0.5
        S(end_sample=9, raw=[], label="happy", voice_active=True),             # no inference: skipped
        S(end_sample=10, raw=one["happy"], label="happy", voice_active=False),  # 0.25 s: not a new utterance
        S(end_sample=11, raw=one["happy"], label="happy", voice_active=True),  # 1.0 (0.25 of quiet not heard)
        S(end_sample=14, raw=one["neutral"], label="calm", voice_active=True),  # 1.75, truth calm -> neutral
        S(end_sample=15, raw=one["calm"], label="calm", voice_active=True, final=True),
        S(end_sample=40, raw=one["happy"], label="happy", voice_active=True),  # past every segment
    ]
    rows = accuracy_by_speech_heard([(states, segs)], labels, sample_rate=4, merge={"calm": "neutral"}, gap_s=0.5)
    by = {r["up_to_s"]: r for r in rows}
    assert [r["up_to_s"] for r in rows] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, None]
    assert (by[0.25]["n"], by[0.25]["window"], by[0.25]["shown"]) == (3, pytest.approx(2 / 3), 1.0)
    assert (by[0.5]["n"], by[0.5]["window"], by[0.5]["shown"]) == (2, 0.5, 1.0)
    assert (by[0.75]["n"], by[0.75]["window"], by[0.75]["shown"]) == (1, 0.0, 0.0)
    assert (by[1.0]["n"], by[1.0]["window"]) == (1, 1.0)
    assert (by[1.75]["n"], by[1.75]["window"], by[1.75]["shown"]) == (1, 1.0, 1.0)  # calm shown = neutral truth
    assert by[None]["n"] == 0 and math.isnan(by[None]["window"])
    assert sum(r["n"] for r in rows) == 8
    # With the default gap (0.25 s) the 0.25 s pause starts an utterance too: the window at 11 is
    # 0.25 s into it, and the one at 14 is 1.0 s in, not 1.75.
    rows = accuracy_by_speech_heard([(states, segs)], labels, sample_rate=4, merge={"calm": "neutral"})
    counts = {r["up_to_s"]: r["n"] for r in rows}
    assert (counts[0.25], counts[1.0], counts[1.75]) == (4, 1, 0)


# ----------------------------------------------------------------------------- replay with a fake model


def test_fake_model_gives_the_exact_expected_scores(tmp_path: Path) -> None:
    # Two 2-second clips per label: one segment of 4 s each, three segments, no pauses.
    clips = clips_for(tmp_path, "s1", {"happy": 2, "sad": 2, "angry": 2})
    clf = ToneClassifier(confuse={"sad": "neutral"})
    settings = AnalysisSettings(vad=STEADY_VAD, smoothing=PASSTHROUGH)
    score, runs = evaluate_timeline(clips, clf, settings=settings, seed=0, progress=None)
    [run] = runs
    assert [(s.start, s.end) for s in run.segments] == [(0, 64000), (64000, 128000), (128000, 192000)]
    # Decisions every 250 ms from 1 s (the window) to 12 s; per segment those ending 2.0..4.0 s in settle.
    assert score.n_decisions == 45 and score.n_settled == 27
    assert score.settled_accuracy == pytest.approx(18 / 27)
    assert score.neutral_share_emotional == pytest.approx(9 / 27)
    assert score.macro_f1 == pytest.approx(2 / 3)
    assert score.flicker_per_min == 0.0 and score.label_changes == 0 and score.guess_changes == 0
    assert score.per_class["sad"]["recall"] == 0.0 and score.per_class["neutral"]["precision"] == 0.0
    assert score.per_class["happy"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "n": 9}
    # Right label 250 ms after a change (first decision past the boundary); the first segment's first
    # decision comes when the first window is full (1 s).  Sad is never shown.
    times = [1.0 if i == 0 else 0.25 for i, s in enumerate(run.segments) if s.label != "sad"]
    assert score.median_time_to_right_s == pytest.approx(float(np.median(times)))
    assert score.segments_never_right == 1
    assert score.extra["speakers"] == ["s1"] and score.extra["audio_s"] == pytest.approx(12.0)
    heard = score.extra["by_speech_heard"]
    assert sum(r["n"] for r in heard) == 45  # every decision is voiced, inside a segment, with raw outputs
    # One utterance of 11 s of decisions (from 1 s): the 13 of its first 3 s fall in the sad segment
    # (seed 0 puts it first; read as neutral), the 32 after them in the happy and angry ones.
    assert run.segments[0].label == "sad"
    assert heard[-1]["n"] == 32 and heard[-1]["window"] == 1.0 == heard[-1]["shown"]
    assert all(r["window"] == 0.0 for r in heard[:-1]) and [r["n"] for r in heard[:-1]] == [2] + [1] * 7 + [2, 2]
    assert "right by speech heard since the utterance began" in format_timeline(score, "fake")


def test_draws_replay_other_segment_orders_and_summarise_them(tmp_path: Path) -> None:
    from ser_daemon.training.timeline import evaluate_timeline_draws, summarize_draws

    # Pauses between clips and a smoother with memory: the segment order changes what is shown.
    clips = clips_for(tmp_path, "s1", {"happy": 3, "sad": 3, "angry": 3}, seconds=1.2, pad_s=0.3)
    clf = ToneClassifier(confuse={"sad": "happy"}, sure=0.55)
    settings = AnalysisSettings(vad=STEADY_VAD)
    singles = [evaluate_timeline(clips, clf, settings=settings, seed=s, progress=None)[0] for s in (2, 3, 4)]
    score = evaluate_timeline_draws(clips, clf, 3, settings=settings, seed=2, progress=None)
    assert score.settled_accuracy == singles[0].settled_accuracy and score.extra["seed"] == 2
    draws = score.extra["draws"]
    assert draws["n"] == 3 and draws["seeds"] == [2, 3, 4]
    acc = [s.settled_accuracy for s in singles]
    assert len(set(acc)) > 1  # the orders do differ here, so the summary has something to summarise
    assert draws["settled_accuracy"]["per_draw"] == pytest.approx(acc)
    assert draws["settled_accuracy"]["mean"] == pytest.approx(np.mean(acc))
    assert draws["settled_accuracy"]["sd"] == pytest.approx(np.std(acc))
    assert draws["flicker_per_min"]["max"] == pytest.approx(max(s.flicker_per_min for s in singles))
    assert len({tuple(s.extra["segment_labels"].items()) for s in singles}) == 1  # the same clips every time
    text = format_timeline(json.loads(json.dumps(score.to_dict())), "draws")
    assert "over 3 segment orders (seeds 2-4" in text and f"mean {np.mean(acc):.3f}" in text
    assert "segment orders" not in format_timeline(singles[0], "one")
    with pytest.raises(ValueError, match="at least 1"):
        evaluate_timeline_draws(clips, clf, 0, settings=settings, progress=None)
    with pytest.raises(ValueError, match="no timeline"):
        summarize_draws([])


def test_pauses_reach_the_gate_and_the_face_relaxes_in_them(tmp_path: Path) -> None:
    # 0.8 s of silence around each 1.5 s tone: with a 500 ms hold the label goes neutral in the
    # pauses, so some decisions are unvoiced and not scored, and voice resumes each clip.
    clips = clips_for(tmp_path, "s1", {"happy": 2, "angry": 2}, seconds=1.5, pad_s=0.8)
    clf = ToneClassifier()
    short_hold = SmoothingSettings(hold_ms=500.0, decay_ms=1000.0)
    score, [run] = evaluate_timeline(clips, clf, settings=AnalysisSettings(vad=STEADY_VAD, smoothing=short_hold),
                                     progress=None)
    voiced = [s.voice_active for s in run.states]
    assert any(voiced) and not all(voiced)
    assert any(s.label == "neutral" and not s.voice_active for s in run.states)
    assert score.n_settled < sum(voiced)
    assert score.extra["audio_s"] == pytest.approx(4 * 3.1)


@pytest.mark.parametrize("smoothing", [SmoothingSettings(), PASSTHROUGH,
                                       SmoothingSettings(ema_ms=300.0, hysteresis=0.05, min_dwell_ms=250.0,
                                                         min_confidence=0.5)])
def test_resmoothing_equals_a_full_replay(tmp_path: Path, smoothing: SmoothingSettings) -> None:
    clips = clips_for(tmp_path, "s1", {"happy": 3, "sad": 2, "angry": 2}, seconds=1.2, pad_s=0.4)
    clf = ToneClassifier(confuse={"sad": "happy"}, sure=0.55)
    base = AnalysisSettings(vad=STEADY_VAD)
    [run] = replay_timelines(clips, clf, settings=base, seed=1)
    from ser_daemon.audio.clips import load_audio
    from ser_daemon.training.timeline import decisions_from_states

    full_settings = replace(base, smoothing=smoothing)
    plan = plan_timeline(clips, seed=1)["s1"]
    rec = assemble("s1", plan, lambda c: load_audio(c.path, RATE), RATE)
    full = decisions_from_states(replay_audio(rec.samples, RATE, clf, full_settings))
    again = resmooth(run.states, LABELS, smoothing, hop_samples=4000, sample_rate=RATE)
    assert again == full
    [(cand, swept)] = sweep_smoothing([run], [smoothing], LABELS, sample_rate=RATE, settings=base)
    assert cand == smoothing
    assert swept == score_timeline(full, rec.segments, LABELS, sample_rate=RATE)


def test_several_speakers_are_several_recordings(tmp_path: Path) -> None:
    clips = clips_for(tmp_path, "a", {"happy": 2, "angry": 2}) + clips_for(tmp_path, "b", {"happy": 2, "sad": 2})
    runs = replay_timelines(clips, ToneClassifier(), settings=AnalysisSettings(vad=STEADY_VAD))
    assert [r.speaker for r in runs] == ["a", "b"]
    assert all(r.states[0].end_sample == RATE for r in runs)  # each starts afresh
    assert {s.label for s in runs[1].segments} == {"happy", "sad"}


@pytest.mark.needs_tf
def test_ser_eval_timeline_on_two_corpora(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ser_daemon.training.eval_cli import main
    from ser_daemon.training.synthetic import write_synthetic_dataset

    labels = ("neutral", "calm", "happy", "angry")
    rav = write_synthetic_dataset(tmp_path / "rav", "ravdess", labels=labels, speakers=("a", "b"), clips_per=2)
    man = write_synthetic_dataset(tmp_path / "man", "manifest", labels=labels, speakers=("x",), clips_per=2)
    out = tmp_path / "eval"
    cfg = tmp_path / "daemon.toml"
    cfg.write_text("osc = ['127.0.0.1:9000']\n[smoothing]\nmin_confidence = 0.05\nema_ms = 400\n")
    argv = ["--model", str(tiny_bundle), "--data", str(rav), str(man), "--out", str(out), "--timeline",
            "--timeline-seed", "5", "--merge", "calm=neutral", "--exclude-speakers", "Actor_02", "-q",
            "--config", str(cfg)]
    assert main(argv) == 0
    rep = json.loads((out / "report.json").read_text())
    tl = rep["timeline"]
    assert tl["extra"]["speakers"] == ["Actor_01", "x"] and tl["extra"]["seed"] == 5
    assert tl["labels"] == ["neutral", "happy", "angry"] and tl["extra"]["merge"] == {"calm": "neutral"}
    assert tl["segments"] == 2 * 4 and 0.0 <= tl["settled_accuracy"] <= 1.0
    assert {"clip", "window", "streaming"} <= set(rep)  # the other figures stay
    smoothing = tl["extra"]["settings"]["smoothing"]
    assert smoothing["min_confidence"] == 0.05 and smoothing["ema_ms"] == 400.0  # the daemon's own config
    cfg.write_text("[smoothing]\nmin_confidence = 7\n")
    assert main(argv) == 2  # a bad config is refused with a one-line message
    printed = capsys.readouterr().out
    assert "timeline (settled" in printed and "label changes/min" in printed
    assert "timeline (settled" in (out / "report.txt").read_text()


@pytest.mark.needs_tf
def test_model_card_carries_the_timeline(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    from ser_daemon.training.eval_cli import main as eval_main
    from ser_daemon.training.report import main as report_main
    from ser_daemon.training.synthetic import write_synthetic_dataset

    labels = ("neutral", "calm", "happy", "angry")
    data = write_synthetic_dataset(tmp_path / "d", "manifest", labels=labels, speakers=("x",), clips_per=2)
    out = tmp_path / "eval"
    assert eval_main(["--model", str(tiny_bundle), "--data", str(data), "--out", str(out), "--timeline",
                      "--no-streaming", "-q"]) == 0
    model = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, model)
    assert report_main(["--model", str(model), "--eval-dir", str(out), "--timing-calls", "5",
                        "--timeline-report", str(out / "report.json")]) == 0
    card = (model / "MODEL_CARD.md").read_text()
    assert "**Timeline, held-out x**" in card and "**Timeline, d, unseen: x**" in card
    assert "| settled accuracy | best guess |" in card
    rep = json.loads((out / "report.json").read_text())["timeline"]
    meta = json.loads((model / "ser_model.json").read_text())
    assert meta["evaluation"]["timeline"]["heldout"]["settled_accuracy"] == rep["settled_accuracy"]
