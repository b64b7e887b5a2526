"""The daemon's mood stage: per-stream trackers, readings thinned to one per second, events all kept."""

from __future__ import annotations

from ser_daemon.core.mood_settings import MoodSettings
from ser_daemon.core.mood_stage import MoodStage
from ser_daemon.core.state import EmotionState

LABELS = ("neutral", "happy", "angry")
RATE = 16000
# Fires disengaging after 1 s of silence once 1 s was voiced (the real thresholds need minutes).
QUICK = MoodSettings(min_voiced_s=1.0, disengage_silence_s=1.0)


def state(stream: str, t: float, raw: tuple[float, ...] | None, final: bool = False) -> EmotionState:
    return EmotionState(stream=stream, seq=0, labels=LABELS, label="angry" if raw else "neutral", confidence=0.9,
                        raw=raw, smoothed=(0.1, 0.0, 0.9), voice_active=raw is not None,
                        end_sample=int(round(t * RATE)), audio_time=t, emitted_time=t, final=final)


ANGRY = (0.0, 0.0, 1.0)


def test_readings_go_out_at_most_once_a_second_of_stream_time_per_stream() -> None:
    stage = MoodStage(LABELS, RATE, QUICK)
    sent = {"a": [], "b": []}
    for i in range(1, 13):  # 0.25 .. 3.0 s, two streams interleaved
        for name in ("a", "b"):
            u = stage.update(state(name, i * 0.25, ANGRY))
            if u.reading is not None:
                sent[name].append(u.reading.time_s)
    assert sent["a"] == sent["b"] == [0.25, 1.25, 2.25]
    assert stage.streams == ("a", "b")


def test_the_final_state_is_always_read_and_ends_the_stream() -> None:
    stage = MoodStage(LABELS, RATE, QUICK)
    assert stage.update(state("a", 0.25, ANGRY)).reading is not None
    assert stage.update(state("a", 0.5, ANGRY)).reading is None
    last = stage.update(state("a", 0.5, None, final=True))
    assert last.reading is not None and last.reading.voice is False and stage.streams == ()
    again = stage.update(state("a", 0.25, ANGRY))  # the same name later: a new session
    assert again.reading is not None and again.reading.session_s == 0.0


def test_events_are_never_thinned_and_carry_their_stream() -> None:
    stage = MoodStage(LABELS, RATE, QUICK)
    events = []
    steps = [(i * 0.25, ANGRY) for i in range(1, 9)] + [(2.0 + i * 0.25, None) for i in range(1, 9)]
    for t, raw in steps:
        events += [(t, e) for e in stage.update(state("mic", t, raw)).events]
    # 2 s voiced, then silence: disengaging (reason silence) as the silence reaches 1 s, at 3.0 s.
    assert [(t, e.kind, e.stream, e.evidence["reason"]) for t, e in events] == [(3.0, "disengaging", "mic", "silence")]
