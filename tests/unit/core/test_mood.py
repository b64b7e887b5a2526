"""The mood tracker and its events, driven by a scripted classifier of known outputs.

A script is a list of phases (seconds, probabilities or None for silence); it becomes one
state per 250 ms hop with its stream time, as the daemon's smoother emits them.  The expected
firing times follow from the thresholds: each test says why an event must fire where it does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np
import pytest

from ser_daemon.errors import ConfigError
from ser_daemon.core.mood import MoodReading, MoodTracker
from ser_daemon.core.mood_events import EVENT_KINDS, MoodEvent, MoodEventDetector
from ser_daemon.core.mood_settings import DEFAULT_CIRCUMPLEX, Circumplex, MoodSettings, mood_settings_from_options

LABELS = ("angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
HOP_S = 0.25
# The settings these tests pin, written out, so retuned defaults do not change what they check.
PINNED = MoodSettings(
    moment_s=3.0, minute_s=60.0, silence_window_s=120.0, max_step_s=2.0, min_voiced_s=10.0,
    frustration_valence=-0.2, frustration_valence_off=-0.1, frustration_arousal=0.35, frustration_trend_s=30.0,
    frustration_drop=0.05, disengage_silent_share=0.8, disengage_silent_share_off=0.6, disengage_rise=0.2,
    disengage_silence_s=60.0, disengage_arousal=-0.35, disengage_arousal_off=-0.2, delighted_valence=0.3,
    delighted_valence_off=0.15, delighted_hold_s=2.0, recovered_valence=0.05, recovered_within_s=900.0,
    cooldown_s=60.0, sharpness=2.0,
)

Phase = tuple[float, Any]  # seconds, and probabilities, None (silence) or fraction-of-phase -> probabilities


def probs(**peaks: float) -> np.ndarray:
    """Probabilities with the given classes, the rest spread evenly."""
    p = np.full(len(LABELS), (1.0 - sum(peaks.values())) / (len(LABELS) - len(peaks)))
    for k, v in peaks.items():
        p[LABELS.index(k)] = v
    return p


def script(phases: Sequence[Phase]) -> list[tuple[float, np.ndarray | None]]:
    """One (time, probabilities or None) per hop; a callable phase gets the fraction of the phase done."""
    out = []
    t = 0.0
    for seconds, what in phases:
        n = int(round(seconds / HOP_S))
        for i in range(n):
            t = round(t + HOP_S, 6)
            out.append((t, what(i / n) if callable(what) else what))
    return out


def run(steps, settings: MoodSettings = PINNED) -> tuple[list[MoodReading], list[MoodEvent]]:
    tracker = MoodTracker(LABELS, settings)
    detector = MoodEventDetector(settings)
    readings, events = [], []
    for t, p in steps:
        r = tracker.update(t, p, p is not None, None if p is None else LABELS[int(np.argmax(p))])
        readings.append(r)
        events.extend(detector.update(r))
    return readings, events


def times(events: list[MoodEvent], kind: str) -> list[float]:
    return [e.time_s for e in events if e.kind == kind]


NEUTRAL = probs(neutral=0.8)
HAPPY = probs(happy=0.8)
ANGRY = probs(angry=0.8)
ARC = [(120, NEUTRAL), (180, lambda x: probs(angry=0.3 + 0.6 * x, neutral=0.5 - 0.4 * x)), (180, HAPPY), (120, None)]


def test_valence_and_arousal_are_the_probability_weighted_circumplex_points() -> None:
    c = Circumplex.for_labels(LABELS, DEFAULT_CIRCUMPLEX)
    assert c.valence_arousal(np.eye(len(LABELS))[LABELS.index("angry")]) == pytest.approx(DEFAULT_CIRCUMPLEX["angry"])
    mix = np.zeros(len(LABELS))
    mix[LABELS.index("happy")] = mix[LABELS.index("sad")] = 0.5
    v, a = c.valence_arousal(mix)
    assert v == pytest.approx((0.8 - 0.6) / 2) and a == pytest.approx((0.5 - 0.3) / 2)
    assert c.valence_arousal(np.zeros(len(LABELS))) == (0.0, 0.0)
    assert c.valence_arousal(2 * mix) == pytest.approx((v, a))  # renormalised
    # Sharpened: weights are the probabilities squared, renormalised (0.25 and 0.0625 of happy and sad here).
    lopsided = np.zeros(len(LABELS))
    lopsided[LABELS.index("happy")], lopsided[LABELS.index("sad")] = 0.5, 0.25
    sharp = Circumplex.for_labels(LABELS, DEFAULT_CIRCUMPLEX, sharpness=2.0)
    assert sharp.valence_arousal(lopsided)[0] == pytest.approx((0.25 * 0.8 + 0.0625 * -0.6) / 0.3125)
    assert PINNED.circumplex_for(LABELS).sharpness == PINNED.sharpness
    odd = Circumplex.for_labels(("Happy", "contempt"), DEFAULT_CIRCUMPLEX)
    assert odd.unmapped == ("contempt",) and odd.points[0].tolist() == [0.8, 0.5]


def test_horizons_are_time_weighted_not_count_weighted() -> None:
    happy_v = DEFAULT_CIRCUMPLEX["happy"][0]
    # Ten happy states 0.25 s apart (2.25 s), then one angry state covering 6.75 s (a late hop).
    s = dataclasses.replace(PINNED, max_step_s=10.0)
    tracker = MoodTracker(LABELS, s)
    for k in range(10):
        r = tracker.update(0.25 * (k + 1), np.eye(len(LABELS))[LABELS.index("happy")], True, "happy")
    r = tracker.update(2.5 + 6.75, np.eye(len(LABELS))[LABELS.index("angry")], True, "angry")
    angry_v = DEFAULT_CIRCUMPLEX["angry"][0]
    expected = (2.25 * happy_v + 6.75 * angry_v) / 9.0  # the first state covers no time
    assert r.valence.session == pytest.approx(expected)
    assert r.valence.minute == pytest.approx(expected)
    assert r.emotions_session == pytest.approx({"happy": 0.25, "angry": 0.75})
    # The step cap: with the default max_step_s (2 s) the late state weighs 2 s only.
    tracker = MoodTracker(LABELS, PINNED)
    for k in range(10):
        tracker.update(0.25 * (k + 1), np.eye(len(LABELS))[LABELS.index("happy")], True, "happy")
    r = tracker.update(2.5 + 6.75, np.eye(len(LABELS))[LABELS.index("angry")], True, "angry")
    assert r.valence.session == pytest.approx((2.25 * happy_v + 2.0 * angry_v) / 4.25)


def test_minute_horizon_forgets_what_is_older_than_a_minute() -> None:
    readings, _ = run(script([(60, ANGRY), (60, HAPPY)]))
    c = PINNED.circumplex_for(LABELS)
    last = readings[-1]
    assert last.valence.minute == pytest.approx(c.valence_arousal(HAPPY)[0])
    # Session: a happy minute and an angry minute weigh by their time (the first state covers none).
    assert last.valence.session == pytest.approx(
        (59.75 * c.valence_arousal(ANGRY)[0] + 60 * c.valence_arousal(HAPPY)[0]) / 119.75)
    # The moment follows the change with its time constant (3 s): e^-1 of the gap left after 3 s.
    angry_v, happy_v = c.valence_arousal(ANGRY)[0], c.valence_arousal(HAPPY)[0]
    at_63 = readings[int(63 / HOP_S) - 1]
    assert at_63.valence.moment == pytest.approx(happy_v + (angry_v - happy_v) * math.exp(-1), abs=1e-6)


def test_silence_never_lowers_valence_and_is_its_own_signal() -> None:
    readings, events = run(script([(30, HAPPY), (240, None)]))
    spoken = readings[int(30 / HOP_S) - 1]
    for r in readings[int(30 / HOP_S):]:
        assert r.valence.moment == spoken.valence.moment
        assert r.valence.session == spoken.valence.session
        assert r.arousal.session == spoken.arousal.session
        assert r.valence.minute is None or r.valence.minute == pytest.approx(spoken.valence.minute)
        assert not r.voice and r.point is None
    last = readings[-1]
    assert last.valence.minute is None  # no voice in the last minute: unknown, not low
    assert last.silence_s == pytest.approx(240.0)
    assert last.silent_share == pytest.approx(1.0)
    assert last.talking_session == pytest.approx(29.75 / 269.75)
    assert "frustration_rising" not in {e.kind for e in events}
    # A stream that never spoke: every horizon unknown, no event but none of sadness either.
    readings, events = run(script([(300, None)]))
    assert readings[-1].valence == readings[-1].arousal
    assert readings[-1].valence.to_dict() == {"moment": None, "minute": None, "session": None}
    assert events == []


def test_the_scripted_arc_fires_each_event_once_at_its_scripted_time() -> None:
    s = PINNED
    readings, events = run(script(ARC), s)
    assert [e.kind for e in events] == ["frustration_rising", "delighted", "recovered", "disengaging"]
    by_kind = {e.kind: e for e in events}
    c = PINNED.circumplex_for(LABELS)
    # frustration_rising: the first state whose minute valence is at the threshold, its minute arousal high
    # enough, and the minute valence 30 s before it higher by the drop; found in the readings, then checked
    # against the evidence.
    lag = int(s.frustration_trend_s / HOP_S)
    first = next(r for k, r in enumerate(readings) if k >= lag and r.valence.minute is not None
                 and r.valence.minute <= s.frustration_valence and r.arousal.minute >= s.frustration_arousal
                 and readings[k - lag].valence.minute - r.valence.minute >= s.frustration_drop)
    f = by_kind["frustration_rising"]
    assert 120 < f.time_s == first.time_s < 300
    assert f.evidence["valence_minute"] <= s.frustration_valence
    assert f.evidence["arousal_minute"] >= s.frustration_arousal
    assert f.evidence["valence_minute_before"] - f.evidence["valence_minute"] >= s.frustration_drop
    # delighted: the moment valence crosses delighted_valence in the happy phase and holds 2 s of voice.
    cross = next(r.time_s for r in readings if r.time_s > 300 and r.valence.moment >= s.delighted_valence)
    assert by_kind["delighted"].time_s == pytest.approx(cross + s.delighted_hold_s, abs=HOP_S)
    assert by_kind["delighted"].evidence["valence_moment"] >= s.delighted_valence
    # recovered: the first state after the frustration whose minute valence reaches recovered_valence.
    back = next(r.time_s for r in readings if r.time_s > f.time_s and r.valence.minute >= s.recovered_valence)
    assert by_kind["recovered"].time_s == back and 300 < back < 360
    assert by_kind["recovered"].evidence["valence_at_frustration"] == f.evidence["valence_minute"]
    # disengaging: the silence that starts at 480 s reaches disengage_silence_s.
    d = by_kind["disengaging"]
    assert d.time_s == pytest.approx(480 + s.disengage_silence_s)
    assert d.evidence["reason"] == "silence" and d.evidence["silence_s"] == pytest.approx(s.disengage_silence_s)
    assert c.valence_arousal(HAPPY)[0] == pytest.approx(readings[-1].valence.moment)


def test_no_event_in_a_steady_neutral_or_happy_session() -> None:
    assert run(script([(600, NEUTRAL)]))[1] == []
    _, events = run(script([(600, HAPPY)]))
    assert [e.kind for e in events] == ["delighted"]  # the peak at the start, never again while it holds


def test_frustration_needs_growth_from_a_heard_baseline() -> None:
    s = PINNED
    # Steady anger from the first word: negative and aroused, but never growing (nothing to grow from).
    assert times(run(script([(300, ANGRY)]), s)[1], "frustration_rising") == []
    # The same after silence: the minute before had no voice, so there is no baseline either.
    assert times(run(script([(120, None), (300, ANGRY)]), s)[1], "frustration_rising") == []
    # After a heard neutral minute it grows, and fires within the minute that takes in the change.
    _, events = run(script([(60, NEUTRAL), (120, ANGRY)]), s)
    [t] = times(events, "frustration_rising")
    assert 60 < t < 120
    # With a trend window longer than the session, growth is never known.
    _, events = run(script([(60, NEUTRAL), (120, ANGRY)]), dataclasses.replace(s, frustration_trend_s=200.0))
    assert times(events, "frustration_rising") == []


def test_hysteresis_one_event_per_episode_even_with_no_cooldown() -> None:
    s = dataclasses.replace(PINNED, cooldown_s=0.0)
    # Anger with a dip that stays below the re-arm threshold: one event only.
    mild = probs(angry=0.3, neutral=0.55)  # minute valence between the on (-0.25) and off (-0.1) thresholds
    c = PINNED.circumplex_for(LABELS)
    assert s.frustration_valence < c.valence_arousal(mild)[0] < s.frustration_valence_off
    _, events = run(script([(60, NEUTRAL), (90, ANGRY), (120, mild), (90, ANGRY)]), s)
    assert len(times(events, "frustration_rising")) == 1
    # The same with a real recovery in between (neutral, valence ~0 > off): two episodes, two events.
    _, events = run(script([(60, NEUTRAL), (90, ANGRY), (120, NEUTRAL), (90, ANGRY)]), s)
    assert len(times(events, "frustration_rising")) == 2


def test_cooldown_holds_back_a_second_event_of_the_same_kind() -> None:
    phases = [(60, NEUTRAL), (60, ANGRY), (70, HAPPY), (60, ANGRY)]
    free = run(script(phases), dataclasses.replace(PINNED, cooldown_s=0.0))[1]
    held = run(script(phases), dataclasses.replace(PINNED, cooldown_s=300.0))[1]
    first, second = times(free, "frustration_rising")
    assert second - first < 300
    assert times(held, "frustration_rising") == [first]  # the second falls inside the cooldown
    # Other kinds have their own cooldown: the recovery still fires.
    assert times(held, "recovered") == times(free, "recovered")[:1]
    # A cooldown that ends while the condition holds lets the event through then.
    gap = second - first
    mid = run(script(phases), dataclasses.replace(PINNED, cooldown_s=gap + 5.0))[1]
    assert times(mid, "frustration_rising") == [first, pytest.approx(first + gap + 5.0, abs=HOP_S)]


def test_disengaging_by_a_growing_silent_share_and_by_flat_arousal() -> None:
    s = dataclasses.replace(PINNED, disengage_silence_s=1000.0)  # only the share may fire here
    # Talk in bursts that thin out: 10 s talk / 5 s pause, then 5 s talk / 25 s pause.
    busy = [(10, NEUTRAL), (5, None)] * 8
    sparse = [(5, NEUTRAL), (25, None)] * 8
    readings, events = run(script(busy + sparse), s)
    [d] = [e for e in events if e.kind == "disengaging"]
    assert d.evidence["reason"] == "silence" and d.time_s > 120
    assert d.evidence["silent_share"] >= s.disengage_silent_share
    assert d.evidence["silent_share"] - d.evidence["silent_share_before"] >= s.disengage_rise
    assert readings[-1].silence_s < s.disengage_silence_s  # never one long silence
    # Flat, sleepy talk: minute arousal at or below disengage_arousal.
    sleepy = probs(sad=0.4, calm=0.55)
    c = PINNED.circumplex_for(LABELS)
    assert c.valence_arousal(sleepy)[1] <= s.disengage_arousal
    _, events = run(script([(60, NEUTRAL), (60, sleepy)]), s)
    [d] = [e for e in events if e.kind == "disengaging"]
    assert d.evidence["reason"] == "low_arousal" and 60 < d.time_s < 120
    # Low valence with low arousal is not frustration.
    assert "frustration_rising" not in {e.kind for e in events}


def test_few_words_after_silence_fire_nothing() -> None:
    # 3 s of anger after a long silence: under min_voiced_s of voice in the minute.
    _, events = run(script([(120, None), (3, ANGRY), (60, None)]))
    assert [e.kind for e in events] == []


def test_time_going_back_counts_as_no_time() -> None:
    tracker = MoodTracker(LABELS, PINNED)
    tracker.update(10.0, HAPPY, True, "happy")
    r = tracker.update(5.0, ANGRY, True, "angry")
    assert r.session_s == 0.0 and r.time_s == 10.0


def test_unusable_probabilities_are_not_a_mood() -> None:
    tracker = MoodTracker(LABELS, PINNED)
    r = tracker.update(1.0, HAPPY, True, "happy")
    r = tracker.update(2.0, HAPPY, True, "happy")
    before = r.valence
    for k, bad in enumerate((np.full(len(LABELS), np.nan), HAPPY[:3], None)):
        r = tracker.update(3.0 + k, bad, True, "happy")
        assert not r.voice and r.valence.session == before.session and math.isfinite(r.valence.session)


def test_standing_time_does_not_grow_the_event_history() -> None:
    from ser_daemon.core.mood_events import _Lagged

    lag = _Lagged(10.0, max_items=50)
    for k in range(200):
        lag.push(5.0, float(k))  # a stream whose time stands still
    assert len(lag._items) == 50 and lag.ago(5.0) == (False, None)
    for k in range(100):
        t = 5.0 + 0.25 * (k + 1)
        lag.push(t, t)
    assert len(lag._items) <= 50
    assert lag.ago(30.0) == (True, 20.0)  # 10 s before the last push (30 s): the value pushed at 20 s


def test_update_state_reads_an_emotion_state() -> None:
    from ser_daemon.core.state import EmotionState

    def state(seq: int, voiced: bool, **kw) -> EmotionState:
        return EmotionState(stream="mic", seq=seq, labels=LABELS, label="angry", confidence=0.8,
                            raw=tuple(ANGRY) if voiced else (), smoothed=tuple(ANGRY), voice_active=voiced,
                            end_sample=16000 * (seq + 1) // 4, audio_time=0.0, emitted_time=0.0, **kw)

    tracker = MoodTracker(LABELS, PINNED, stream="mic")
    for k in range(8):
        r = tracker.update_state(state(k, True, uncertain=k % 2 == 1), 16000)
    assert r.time_s == pytest.approx(2.0) and r.voice
    # The first state covers no time; of the seven after it, the odd ones (four) were unsure.
    assert r.emotions_session == pytest.approx({"angry": 3 / 7, "unsure": 4 / 7})
    r = tracker.update_state(state(8, True, final=True), 16000)
    assert not r.voice and r.silence_s == pytest.approx(0.25)


def test_windows_stay_bounded_over_a_long_session() -> None:
    from ser_daemon.core import mood

    tracker = MoodTracker(LABELS, PINNED)
    for k in range(int(3 * 60 / HOP_S)):
        tracker.update(HOP_S * (k + 1), HAPPY, True, "happy")
    assert len(tracker._minute._entries) == int(60 / HOP_S)
    assert len(tracker._session._entries) <= mood.MAX_WINDOW_ENTRIES


def test_settings_from_a_mood_table_and_flat_options() -> None:
    s = mood_settings_from_options({"mood": {"cooldown-s": 30, "circumplex": {"angry": [-0.9, 0.9], "zen": [0.5, -0.8]}}})
    assert s.cooldown_s == 30 and s.circumplex["angry"] == (-0.9, 0.9) and s.circumplex["zen"] == (0.5, -0.8)
    assert s.circumplex["happy"] == DEFAULT_CIRCUMPLEX["happy"]  # the rest of the table kept
    flat = mood_settings_from_options({"mood_min_voiced_s": 5, "mood_circumplex_happy": [0.9, 0.4], "hop_ms": 250})
    assert flat.min_voiced_s == 5 and flat.circumplex["happy"] == (0.9, 0.4)
    assert MoodTracker(("zen",), s).circumplex.points.tolist() == [[0.5, -0.8]]
    with pytest.raises(ConfigError, match="did you mean cooldown_s"):
        mood_settings_from_options({"mood_cooldown": 3})
    with pytest.raises(ConfigError, match=r"angry: expected \[valence, arousal\]"):
        mood_settings_from_options({"mood_circumplex_angry": 0.5})
    with pytest.raises(ConfigError, match="valence must be a number in"):
        mood_settings_from_options({"mood": {"circumplex": {"angry": [-2, 0]}}})
    with pytest.raises(ConfigError, match="cooldown_s must be a number"):
        MoodSettings(cooldown_s=math.nan)
    with pytest.raises(ConfigError, match="frustration_valence_off .* must be at or above"):
        MoodSettings(frustration_valence_off=-0.5)
    with pytest.raises(ConfigError, match="delighted_valence_off .* must be at or below"):
        MoodSettings(delighted_valence_off=0.9)
    assert set(EVENT_KINDS) == {"frustration_rising", "disengaging", "delighted", "recovered"}


def test_states_of_the_real_pipeline_feed_the_tracker() -> None:
    """A stub classifier (loud high sound reads angry) through replay_audio: anger, then real silence."""
    from fakes import LABELS as STUB_LABELS
    from fakes import StubClassifier, stub_bundle, tone
    from ser_daemon.model.analyzer import replay_audio

    bundle = stub_bundle()
    rate = bundle.features.sample_rate
    quiet = (np.random.default_rng(0).standard_normal(40 * rate) * 1e-4).astype(np.float32)
    audio = np.concatenate([tone(3000, 20.0, rate), quiet])
    states = replay_audio(audio, rate, StubClassifier(bundle), stream="s")
    tracker = MoodTracker(STUB_LABELS, stream="s")
    readings = [tracker.update_state(st, rate) for st in states]
    talking = [r for r in readings if r.time_s <= 20.0 and r.voice]
    assert talking and talking[-1].valence.minute < -0.3 and talking[-1].arousal.minute > 0.3
    end_of_voice = max(r.time_s for r in readings if r.voice)
    after = [r for r in readings if r.time_s > end_of_voice]
    assert after and after[-1].silence_s > 15.0
    assert {r.valence.session for r in after} == {readings[len(readings) - len(after) - 1].valence.session}
    assert after[-1].emotions_session.get("angry", 0.0) > 0.8


@pytest.mark.slow
def test_cost_benchmark_smoke() -> None:
    """benchmarks/mood_cost.py runs and times every decision (its figures are not asserted: benchmarks measure)."""
    import subprocess
    import sys

    from conftest import timeout
    from helpers import REPO

    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "mood_cost.py"), "--smoke"], capture_output=True,
                       text=True, timeout=timeout(120), cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("480 states,") and "CPU median" in r.stdout
