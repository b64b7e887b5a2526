"""Guided enrollment: the steps a user reads aloud, and the recorder that turns them into takes.

Both guided flows, ``ser-daemon enroll --device N`` in a terminal and the web
page's Calibrate button, run this one state machine.  It owns no microphone,
no terminal and no socket: the adapters feed it audio (mono, the model's rate)
and the user's commands, and show the :class:`Event` values it returns.

A step is one sentence to read in one way (neutral first, then, optionally,
as if delighted, furious, sad ...).  A take of a step:

* starts with :meth:`GuidedSession.record`;
* ends with :meth:`GuidedSession.stop`, or by itself once voice was heard and
  the daemon's own voice gate then stayed shut for ``silence_stop_s`` (about
  1.5 s after the last word, the gate's hangover included), or at
  ``max_take_s``;
* is checked with :func:`ser_daemon.profiles.enroll.check_take` (no voice, clipping,
  far too short): a refused take is announced with the reason and the same
  step is asked again, at most ``max_tries`` times, after which the step is
  skipped;
* any step can be skipped, and the session finished at any time; the takes
  accepted so far are what a profile is fitted from.

Time is the audio itself (samples fed), so tests need no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core.features import FeatureConfig, StreamingLogMel
from ..core.resample import StreamingResampler, downmix
from ..core.settings import VadSettings
from ..core.vad import VoiceActivityGate
from ..errors import ProfileError
from .enroll import Take, TakeCheck

__all__ = ["SENTENCES", "Step", "plan_steps", "RecorderSettings", "Event", "Progress", "GuidedSession",
           "meter_line", "event_line", "MonoTap", "NEUTRAL_TAKES"]

# Short sentences with no emotional content of their own, so the voice carries the emotion.
SENTENCES = (
    "The train to the coast leaves at half past nine.",
    "I put the blue folder on the kitchen table.",
    "We are meeting again next Thursday afternoon.",
    "The window in the hall has been open all day.",
    "My brother bought a new bicycle last week.",
    "There are seven chairs in the meeting room.",
    "The shop on the corner closes at six.",
    "She wrote the numbers down on a card.",
)
_CUES = {
    "neutral": "in your everyday voice, as if reading out a timetable",
    "calm": "as if you were calm and relaxed",
    "happy": "as if you were delighted",
    "angry": "as if you were furious",
    "sad": "as if you were sad",
    "fearful": "as if you were afraid",
    "fear": "as if you were afraid",
    "surprised": "as if you were amazed",
    "surprise": "as if you were amazed",
    "disgust": "as if you were disgusted",
    "disgusted": "as if you were disgusted",
}
_EMOTION_ORDER = ("happy", "angry", "sad", "calm", "fearful", "fear", "surprised", "surprise", "disgust", "disgusted")
NEUTRAL_TAKES = 3
MAX_STEPS = 64


@dataclass(frozen=True)
class Step:
    """One sentence to read in one way.

    Attributes:
        label: the model label the take will teach.
        sentence: what to read.
        cue: how to say it, for the user ("as if you were delighted").
    """

    label: str
    sentence: str
    cue: str


def plan_steps(labels: Sequence[str], emotions: Sequence[str] | None = None, neutral_takes: int = NEUTRAL_TAKES,
               takes_per_emotion: int = 1) -> tuple[Step, ...]:
    """The steps of a session: ``neutral_takes`` neutral sentences, then each emotion in turn.

    Args:
        labels: the model's labels (one must be "neutral").
        emotions: the labels to ask for after the neutral ones; None asks for
            every other label the model knows, the common ones first; empty
            asks for neutral takes only (a baseline-only profile).

    Raises:
        ProfileError: a label the model does not know, or a model without "neutral".
    """
    known = list(labels)
    if "neutral" not in known:
        raise ProfileError(f"the model has no 'neutral' label to start from; its labels: {', '.join(known)}")
    if emotions is None:
        rest = [lab for lab in known if lab != "neutral"]
        chosen = [lab for lab in _EMOTION_ORDER if lab in rest] + [lab for lab in rest if lab not in _EMOTION_ORDER]
    else:
        chosen = [e.strip().lower() for e in emotions if e.strip() and e.strip().lower() != "neutral"]
        unknown = [e for e in chosen if e not in known]
        if unknown:
            raise ProfileError(f"emotion {', '.join(map(repr, unknown))} is not a label the model knows; "
                               f"its labels: {', '.join(known)}")
        chosen = list(dict.fromkeys(chosen))
    order = ["neutral"] * max(0, neutral_takes) + [lab for lab in chosen for _ in range(max(0, takes_per_emotion))]
    if not order:
        raise ProfileError("no steps: ask for at least one take")
    return tuple(Step(lab, SENTENCES[i % len(SENTENCES)], _CUES.get(lab, f"as if you felt {lab}"))
                 for i, lab in enumerate(order[:MAX_STEPS]))


@dataclass(frozen=True)
class RecorderSettings:
    """How takes are recorded.

    Attributes:
        max_take_s: a take stops by itself at this length.
        silence_stop_s: after voice, this long with the voice gate shut stops the take.
        min_voice_s: voice needed before silence may stop a take.
        max_tries: refused takes of one step before it is skipped.
        level_every_s: audio between two level events (the meter's refresh).
    """

    max_take_s: float = 15.0
    silence_stop_s: float = 1.0
    min_voice_s: float = 0.5
    max_tries: int = 3
    level_every_s: float = 0.1


@dataclass(frozen=True)
class Progress:
    """Where the session stands (what a progress bar and a level meter show).

    Attributes:
        state: "ready" (waiting to record), "recording" or "done".
        step: index of the current step (== steps when done).
        steps: number of steps.
        accepted: takes accepted so far.
        attempt: 1-based try of the current step.
        level_db: level of the newest audio, dBFS (-inf for silence).
        take_s: seconds recorded in the running take.
        voice_s: seconds of voice in the running take.
    """

    state: str
    step: int
    steps: int
    accepted: int
    attempt: int
    level_db: float
    take_s: float
    voice_s: float


@dataclass(frozen=True)
class Event:
    """Something to show the user.

    ``kind`` is one of: "step" (a new prompt, or the same one again after a
    refusal), "recording", "level", "refused", "accepted", "skipped", "done".

    Attributes:
        step: the step it is about (None for "done").
        text: a sentence for the user (the refusal's reason, ...).
        progress: the session's progress right after it.
    """

    kind: str
    step: Step | None
    text: str
    progress: Progress


def _db(x: np.ndarray) -> float:
    if not len(x):
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 1e-10 else -math.inf


@dataclass
class _Take:
    buf: np.ndarray
    n: int = 0
    voiced_frames: int = 0
    silent_frames: int = 0


class GuidedSession:
    """The guided enrollment's state machine (see the module docstring).

    Args:
        steps: from :func:`plan_steps`.
        features: the model's feature settings (its sample rate is the audio's).
        check: judges a finished take (``check_take`` with the model's bundle).
        settings: recorder settings.
        vad: the voice gate's settings (the daemon's defaults).
    """

    def __init__(self, steps: Sequence[Step], features: FeatureConfig, check: Callable[[np.ndarray], TakeCheck],
                 settings: RecorderSettings | None = None, vad: VadSettings | None = None) -> None:
        if not steps:
            raise ProfileError("no steps to guide through")
        self.steps = tuple(steps)
        self.features = features
        self.rate = features.sample_rate
        self.check = check
        self.settings = settings or RecorderSettings()
        self.takes: list[Take] = []
        self.index = 0
        self.attempt = 1
        self.state = "ready"
        self._mel = StreamingLogMel(features, 1)
        self._gate = VoiceActivityGate(features, vad or VadSettings())
        self._frame_s = features.hop_length / self.rate
        self._take: _Take | None = None
        self._level_db = -math.inf
        self._since_level = 0
        self._level_every = max(1, int(self.settings.level_every_s * self.rate))
        self._max_take = int(self.settings.max_take_s * self.rate)

    # -- what the adapters show ----------------------------------------------
    @property
    def step(self) -> Step | None:
        return self.steps[self.index] if self.index < len(self.steps) else None

    def progress(self) -> Progress:
        t = self._take
        return Progress(self.state, self.index, len(self.steps), len(self.takes), self.attempt, self._level_db,
                        t.n / self.rate if t else 0.0, t.voiced_frames * self._frame_s if t else 0.0)

    def _event(self, kind: str, text: str = "", step: Step | None = None) -> Event:
        return Event(kind, step if step is not None else self.step, text, self.progress())

    def start(self) -> list[Event]:
        """The first prompt."""
        return [self._event("step")]

    # -- commands --------------------------------------------------------------
    def record(self) -> list[Event]:
        """Start a take of the current step (ignored while recording or when done)."""
        if self.state != "ready":
            return []
        self.state = "recording"
        self._take = _Take(np.zeros(self._max_take, dtype=np.float32))
        return [self._event("recording", "recording: read the sentence, then stop (it also stops by itself "
                                         "after a moment of silence)")]

    def stop(self) -> list[Event]:
        """End the running take and judge it."""
        if self.state != "recording" or self._take is None:
            return []
        take, self._take = self._take, None
        self.state = "ready"
        audio = take.buf[: take.n].copy()
        verdict = self.check(audio)
        step = self.step
        assert step is not None
        if verdict.ok:
            self.takes.append(Take(step.label, audio, f"take {len(self.takes) + 1} ({step.label})"))
            events = [self._event("accepted", f"take accepted: {verdict.voiced_s:.1f} s of voice")]
            return events + self._advance()
        reason = verdict.problem or "refused"
        if self.attempt >= self.settings.max_tries:
            events = [self._event("refused", f"{reason}; skipping this step after {self.attempt} tries")]
            return events + self._skip_current("skipped after too many refused takes")
        self.attempt += 1
        return [self._event("refused", f"{reason}; try again ({self.attempt} of {self.settings.max_tries})"),
                self._event("step")]

    def skip(self) -> list[Event]:
        """Skip the current step (a running take is thrown away)."""
        if self.state == "done":
            return []
        self._take = None
        self.state = "ready"
        return self._skip_current("skipped")

    def finish(self) -> list[Event]:
        """End the session now (a running take is thrown away); keep the takes accepted so far."""
        if self.state == "done":
            return []
        self._take = None
        self.state = "done"
        return [self._event("done", f"{len(self.takes)} takes")]

    def _skip_current(self, why: str) -> list[Event]:
        return [self._event("skipped", why)] + self._advance()

    def _advance(self) -> list[Event]:
        self.index += 1
        self.attempt = 1
        if self.index >= len(self.steps):
            self.state = "done"
            return [self._event("done", f"{len(self.takes)} takes")]
        return [self._event("step")]

    # -- audio -----------------------------------------------------------------
    def feed(self, audio: np.ndarray) -> list[Event]:
        """Audio from the microphone (mono, the model's rate), recording or not.

        The voice gate hears everything, so it knows the room's noise floor
        before the first take; only a running take keeps the samples.
        """
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if not len(x) or self.state == "done":
            return []
        frames = self._mel.push(x)
        voiced = self._gate.update(frames) if len(frames) else self._gate.active
        self._level_db = _db(x[-self._level_every :])
        events: list[Event] = []
        take = self._take
        if self.state == "recording" and take is not None:
            room = len(take.buf) - take.n
            part = x[:room]
            take.buf[take.n : take.n + len(part)] = part
            take.n += len(part)
            if voiced:
                take.voiced_frames += len(frames)
                take.silent_frames = 0
            else:
                take.silent_frames += len(frames)
        self._since_level += len(x)
        if self._since_level >= self._level_every:
            self._since_level = 0
            events.append(self._event("level"))
        if self.state == "recording" and take is not None:
            heard = take.voiced_frames * self._frame_s >= self.settings.min_voice_s
            quiet = take.silent_frames * self._frame_s >= self.settings.silence_stop_s
            if take.n >= len(take.buf) or (heard and quiet):
                events += self.stop()
        return events


class MonoTap:
    """Device audio (any rate, any channels) to mono at the model's rate, carrying filter state across blocks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._resampler = StreamingResampler(int(in_rate), int(out_rate))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self._resampler.process(downmix(np.asarray(frames, dtype=np.float32)))


def meter_line(p: Progress, step: Step | None, width: int = 20) -> str:
    """The terminal's one rewritten line: progress bar, state, level meter (pure, for tests)."""
    done = min(p.step, p.steps)
    bar = "#" * round(width * done / p.steps) if p.steps else ""
    level = 0.0 if not math.isfinite(p.level_db) else min(1.0, max(0.0, (p.level_db + 60.0) / 60.0))
    meter = "|" * round(width * level)
    db = f"{p.level_db:5.0f}" if math.isfinite(p.level_db) else " -inf"
    what = f"REC {p.take_s:4.1f} s, voice {p.voice_s:4.1f} s" if p.state == "recording" else p.state
    label = step.label if step else "-"
    return (f"[{bar:<{width}}] {done}/{p.steps} {label:<9s} {what:<26s} level [{meter:<{width}}] {db} dBFS")


def event_line(e: Event) -> str | None:
    """A plain line for an event (terminals that are not TTYs and logs); None for level events."""
    p = e.progress
    if e.kind == "level":
        return None
    if e.kind == "step" and e.step is not None:
        again = f" (try {p.attempt})" if p.attempt > 1 else ""
        return (f"step {p.step + 1}/{p.steps}{again}: say it {e.step.cue}:\n    \"{e.step.sentence}\"\n"
                "    Enter = record, s = skip, q = finish now")
    if e.kind == "recording":
        return "  " + e.text
    if e.kind in ("refused", "accepted", "skipped"):
        return f"  {e.kind}: {e.text}"
    if e.kind == "done":
        return f"done: {p.accepted} takes accepted"
    return None
