"""The --session-log output on its own: one log per stream and session, and a log that fails is given up once."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ser_daemon.core.mood_settings import MoodSettings
from ser_daemon.core.mood_stage import MoodStage
from ser_daemon.core.state import EmotionState
from ser_daemon.sessions.log_output import SessionLogOutput
from ser_daemon.sessions.records import read_session_log

LABELS = ("neutral", "happy", "angry")
START = datetime(2026, 12, 7, 3, 0, 0, tzinfo=timezone.utc)


def _state(stream: str, t: float, final: bool = False) -> EmotionState:
    return EmotionState(stream=stream, seq=0, labels=LABELS, label="neutral" if final else "angry", confidence=0.8,
                        raw=None if final else (0.0, 0.0, 1.0), smoothed=(0.0, 0.0, 1.0), voice_active=not final,
                        end_sample=int(t * 16000), audio_time=t, emitted_time=t, final=final)


def _feed(out: SessionLogOutput, stage: MoodStage, state: EmotionState) -> None:
    out.send_state(state, {}, 0.0)  # as MoodFanOut does: the state, then its mood update
    out.send_mood(stage.update(state), 0.0)


def test_each_stream_gets_its_log_and_a_stream_back_after_its_end_a_new_one(tmp_path: Path) -> None:
    out = SessionLogOutput(tmp_path / "logs", LABELS, 16000, "stub", utc_now=lambda: START)
    stage = MoodStage(LABELS, 16000, MoodSettings())
    for t in (1.0, 1.25, 1.5, 2.0):
        _feed(out, stage, _state("a", t))
        _feed(out, stage, _state("b", t))
    _feed(out, stage, _state("a", 2.0, final=True))
    _feed(out, stage, _state("a", 1.0))  # "a" again (an ingest client that came back): a new session
    out.close()
    names = [p.name for p in out.paths]
    assert names == ["a-20261207T030000Z.jsonl", "b-20261207T030000Z.jsonl", "a-20261207T030000Z-1.jsonl"]
    first = read_session_log(out.paths[0])
    assert list(first.state_t) == [1.0, 1.25, 1.5, 2.0, 2.0] and first.state_label[-1] == "neutral"
    assert [m["time"] for m in first.mood] == [1.0, 2.0, 2.0]  # one a second, and the final state's
    assert len(read_session_log(out.paths[1]).state_t) == 4 and len(read_session_log(out.paths[2]).state_t) == 1


def test_a_log_that_cannot_be_written_is_given_up_with_one_warning(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    out = SessionLogOutput(blocker / "logs", LABELS, 16000)
    stage = MoodStage(LABELS, 16000)
    with caplog.at_level(logging.WARNING, logger="ser_daemon.sessions.log_output"):
        for t in (1.0, 1.25, 2.5):
            _feed(out, stage, _state("mic", t))
    out.close()
    assert out.paths == [] and [r.getMessage()[:33] for r in caplog.records] == ["session log of mic given up: cann"]
