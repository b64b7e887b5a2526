"""The guided enrollment's state machine, fed arrays (no microphone, no terminal, no clock)."""

from __future__ import annotations

import io
import queue
import threading

import numpy as np
import pytest

from ser_daemon.profiles.enroll import check_take
from ser_daemon.profiles.guided import GuidedSession, MonoTap, RecorderSettings, event_line, meter_line, plan_steps
from ser_daemon.profiles.mic import Display, record_session
from ser_daemon.errors import ProfileError
from tiny_model import tone

LABELS = ("angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
SR = 16000


@pytest.fixture(scope="module")
def bundle(shipped_bundle):
    return shipped_bundle


def _session(bundle, steps=None, **kw) -> GuidedSession:
    steps = steps or plan_steps(bundle.labels, ["happy"], neutral_takes=2)
    return GuidedSession(steps, bundle.features, lambda a: check_take(a, bundle), RecorderSettings(**kw))


def _feed(session: GuidedSession, audio: np.ndarray, block: int = 320) -> list:
    events = []
    for i in range(0, len(audio), block):
        events += session.feed(audio[i : i + block])
    return events


def _speech(seconds: float = 2.0) -> np.ndarray:
    """Voiced-enough audio: a tone with a slow vibrato (the gate wants level and a non-flat spectrum)."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (220 + 30 * np.sin(2 * np.pi * 3 * t)) * t)).astype(np.float32)


def test_plan_steps_neutral_first_then_emotions() -> None:
    steps = plan_steps(LABELS)
    assert [s.label for s in steps[:3]] == ["neutral"] * 3
    assert [s.label for s in steps[3:6]] == ["happy", "angry", "sad"]
    assert sorted(s.label for s in steps[3:]) == sorted(set(LABELS) - {"neutral"})
    assert "delighted" in steps[3].cue and "furious" in steps[4].cue
    assert len({s.sentence for s in steps}) > 3  # different sentences, not one repeated
    assert [s.label for s in plan_steps(LABELS, [])] == ["neutral"] * 3
    assert [s.label for s in plan_steps(LABELS, ["Sad ", "happy", "sad"], takes_per_emotion=2)][3:] == \
        ["sad", "sad", "happy", "happy"]
    with pytest.raises(ProfileError, match="'joyful' is not a label the model knows; its labels: angry"):
        plan_steps(LABELS, ["joyful"])
    with pytest.raises(ProfileError, match="no 'neutral' label"):
        plan_steps(("a", "b"))


def test_a_silent_take_is_refused_with_the_reason_and_asked_again(bundle) -> None:
    s = _session(bundle)
    first = s.start()
    assert first[0].kind == "step" and first[0].step.label == "neutral"
    _feed(s, np.zeros(SR // 2, np.float32))
    assert [e.kind for e in s.record()] == ["recording"]
    _feed(s, np.zeros(2 * SR, np.float32))
    events = s.stop()
    assert [e.kind for e in events] == ["refused", "step"]
    assert "no voice heard" in events[0].text and "try again (2 of 3)" in events[0].text
    assert events[1].step.label == "neutral" and events[1].progress.attempt == 2 and s.index == 0
    assert "(try 2)" in event_line(events[1])
    assert not s.takes


def test_a_take_stops_by_itself_after_voice_then_silence(bundle) -> None:
    s = _session(bundle)
    s.start()
    _feed(s, np.zeros(SR, np.float32))  # the room first: the gate learns its floor
    s.record()
    events = _feed(s, np.concatenate([_speech(2.0), np.zeros(3 * SR, np.float32)]))
    kinds = [e.kind for e in events]
    assert "accepted" in kinds, [(e.kind, e.text) for e in events if e.kind != "level"]
    accepted = events[kinds.index("accepted")]
    stopped_at = accepted.progress
    assert stopped_at.state == "ready" and s.index == 1 and len(s.takes) == 1
    take = s.takes[0]
    # Stopped about a second (plus the gate's hangover) after the voice, not at the end of the audio.
    assert 2.8 * SR < len(take.audio) < 4.2 * SR, len(take.audio) / SR
    assert take.label == "neutral"
    levels = [e for e in events if e.kind == "level"]
    assert levels and max(e.progress.level_db for e in levels) > -20
    assert any(e.progress.voice_s > 1.0 for e in levels)


def test_max_length_skip_finish_and_give_up(bundle) -> None:
    s = _session(bundle, max_take_s=3.0, max_tries=2)
    s.start()
    s.record()
    events = _feed(s, _speech(5.0))  # never silent: the take stops at its maximum length
    assert "accepted" in [e.kind for e in events] and len(s.takes[0].audio) == 3 * SR
    for _ in range(2):  # step 2 refused twice: skipped
        s.record()
        _feed(s, np.zeros(SR + SR // 2, np.float32))
        events = s.stop()
    assert [e.kind for e in events] == ["refused", "skipped", "step"]
    assert "skipping this step after 2 tries" in events[0].text
    assert events[2].step.label == "happy"
    s.record()
    _feed(s, _speech(1.0))
    events = s.skip()  # a running take is thrown away
    assert [e.kind for e in events] == ["skipped", "done"]
    assert s.state == "done" and len(s.takes) == 1 and s.finish() == [] and s.record() == []
    assert s.feed(_speech(0.5)) == []


def test_finish_keeps_accepted_takes_and_too_short_is_refused(bundle) -> None:
    s = _session(bundle)
    s.start()
    s.record()
    _feed(s, _speech(0.5))
    events = s.stop()
    assert events[0].kind == "refused" and "too short" in events[0].text
    s.record()
    _feed(s, _speech(1.0))
    events = s.finish()
    assert [e.kind for e in events] == ["done"] and s.takes == []


def test_meter_and_lines() -> None:
    from ser_daemon.profiles.guided import Progress, Step

    step = Step("happy", "The shop closes at six.", "as if you were delighted")
    line = meter_line(Progress("recording", 2, 4, 1, 1, -12.0, 3.25, 1.5), step, width=10)
    assert line.startswith("[#####     ] 2/4 happy") and "REC  3.2 s, voice  1.5 s" in line
    assert "level [||||||||  ]   -12 dBFS" in line
    assert "-inf dBFS" in meter_line(Progress("ready", 0, 4, 0, 1, float("-inf"), 0.0, 0.0), step, width=10)


def test_mono_tap_resamples_and_downmixes() -> None:
    tap = MonoTap(48000, 16000)
    stereo = np.stack([tone(440, 1.0, rate=48000), tone(440, 1.0, rate=48000)], axis=1)
    out = np.concatenate([tap(stereo[i : i + 960]) for i in range(0, len(stereo), 960)])
    assert abs(len(out) - 16000) <= 2 and out.ndim == 1
    assert 0.15 < float(np.sqrt(np.mean(out[2000:] ** 2))) < 0.25


def test_record_session_driven_by_lines(bundle) -> None:
    """The terminal loop: commands as lines, audio from a reader, plain lines on a non-TTY."""
    s = _session(bundle)
    audio = iter([np.zeros(SR, np.float32)] + [_speech(2.0), np.zeros(3 * SR, np.float32)] + [np.zeros(0)] * 50)
    commands: queue.SimpleQueue = queue.SimpleQueue()
    for line in ("", "s", "x", "q"):
        commands.put(line)
    out = io.StringIO()
    wake = threading.Event()
    wake.set()
    fed: list[int] = []

    def read() -> np.ndarray:
        a = next(audio, np.zeros(0, np.float32))
        fed.append(len(a))
        return a

    record_session(s, read, wake, commands, Display(out), max_session_s=10)
    text = out.getvalue()
    assert s.state == "done"
    assert "step 1/3: say it in your everyday voice" in text and "Enter = record, s = skip, q = finish now" in text
    assert "recording:" in text and "skipped: skipped" in text and "'x'?" in text and "done: 0 takes" in text
    assert "\r" not in text  # not a terminal: plain lines only


def test_display_rewrites_one_meter_line_on_a_terminal(bundle) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    s = _session(bundle)
    d = Display(out)
    d.show(s.start(), s)
    d.show(s.record(), s)
    d.show(_feed(s, _speech(0.5)), s)
    text = out.getvalue()
    assert text.count("step 1/3") == 1  # the prompt once, as a line; the meter is rewritten in place
    meters = [part for part in text.split("\r") if part.startswith("[")]
    assert len(meters) >= 3 and "0/3 neutral   REC  0.5 s" in meters[-1] and "dBFS" in meters[-1]
    assert "\x1b" not in text  # no ANSI codes (the classic Windows console prints them)


@pytest.mark.slow  # starts a process
def test_the_benchmark_still_runs(bundle) -> None:
    import json
    import subprocess
    import sys

    from conftest import timeout
    from helpers import REPO

    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "enroll_guided.py"), "--smoke"], capture_output=True,
                       text=True, timeout=timeout(60), cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout)
    assert result["blocks"] == 100 and result["verdict"] == "accepted"


@pytest.mark.slow  # starts a process
@pytest.mark.needs_tf
def test_enroll_fit_benchmark_smoke() -> None:
    """The profile-fitting benchmark runs: one full fit (with a personal head) and one baseline-only fit."""
    import json
    import subprocess
    import sys

    from conftest import timeout
    from helpers import REPO

    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "enroll_fit.py"), "--smoke"], capture_output=True,
                       text=True, timeout=timeout(120), cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["takes"] == 4 and result["takes_audio_s"] == 8.0 and result["head"] is True
    assert result["full_fit_ms"]["n"] == 1 and result["baseline_only_ms"]["median"] > 0
