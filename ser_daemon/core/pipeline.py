"""The sans-I/O pipeline: audio blocks in, emotion states out.

:class:`StreamProcessor` turns one stream's captured blocks into windows that
are due for a decision (downmix, resample, incremental log-mel, voice gate)
and turns the model's probabilities for them into :class:`EmotionState`
records (smoothing).  The model itself sits above this layer: ``model/analyzer.py``
runs it once per tick on the due windows of all streams together.

Nothing here reads a sound card, a socket or the wall clock on its own: time
comes from an injected clock, so the same code serves the live daemon, the
offline replay used by ``ser-eval`` and the tests.

Decision timing: decision ``k`` is taken when the stream has delivered
``window + k * hop`` samples (at the model's rate); its window is the newest
``window`` of audio.  When processing lags, windows that a newer one has
already superseded are skipped (counted in ``dropped_windows``) instead of
queued, and a decision made later than the latency budget is marked late.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import ConfigError
from .audio_format import AudioFormat, as_format
from .features import FeatureConfig, StreamingLogMel, frames_for_samples
from .head import LinearHead
from .resample import StreamingResampler, downmix
from .settings import AnalysisSettings
from .smoothing import NEUTRAL, Smoother
from .speaker_norm import SpeakerNormalizer, SpeakerNormSettings
from .state import EmotionState
from .utterance import UtteranceTracker
from .vad import VoiceActivityGate

__all__ = ["DueWindow", "StreamProcessor", "VoiceStart", "FrontEnd", "MAX_BATCH"]


class FrontEnd(Protocol):
    """What a stream takes from a model bundle (``model.bundle.ModelBundle`` is one)."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def features(self) -> FeatureConfig: ...

    @property
    def window_s(self) -> float: ...

    @property
    def speaker_norm(self) -> SpeakerNormSettings | None: ...


class VoiceStart(Protocol):
    """What a stream takes from a personal voice profile (``profiles.store.VoiceProfile`` is one).

    The core reads these three fields and nothing else, so it needs no profile store below it.
    """

    @property
    def baseline(self) -> np.ndarray: ...

    @property
    def baseline_frames(self) -> float: ...

    @property
    def head(self) -> LinearHead | None: ...

# Most windows per model call: bounds the batch-size buckets a runtime keeps (LiteRT keeps one
# interpreter per power of two), so a thousand streams do not leave a thousand-window interpreter.
MAX_BATCH = 64

Clock = Callable[[], float]

# Audio kept before an utterance's first speech frame when older audio is masked: the
# gate opens a little after the voice does (training trims clips with the same margin).
ONSET_MARGIN_MS = 100.0


@dataclass
class DueWindow:
    """A window waiting for the model.

    Attributes:
        end_sample: stream index (model rate) one past the window's newest sample.
        window: ``(frames, n_mels)`` log-mel features.
        voice_active: the gate's verdict at the window's end.
        audio_time: arrival time of the window's newest input sample.
        stage_ms: time spent so far on this decision, by stage.
    """

    end_sample: int
    window: np.ndarray
    voice_active: bool
    audio_time: float
    stage_ms: dict[str, float] = field(default_factory=dict)


class StreamProcessor:
    """One stream's path from captured blocks to emotion states.

    Args:
        stream: stream id carried in every state.
        labels: the model's classes in output order.
        features: the model's front end.
        window_s: the model's window, seconds.
        settings: hop, budget, gate and smoothing settings.
        in_rate: format of the blocks fed in (:class:`AudioFormat`), or their sample rate in Hertz.
        clock: monotonic clock in seconds (injected so tests and replay control time).
        speaker_norm: the model's per-speaker normalisation (from its bundle); the
            stream then keeps its own running speaker reference, which outlives
            gaps and device restarts (the speaker is the same).
        profile: the user's personal profile: the speaker reference starts from
            their baseline instead of the population prior, and their head (if
            any) replaces the model's.
    """

    def __init__(
        self,
        stream: str,
        labels: Sequence[str],
        features: FeatureConfig,
        window_s: float,
        settings: AnalysisSettings,
        in_rate: AudioFormat | int,
        clock: Clock = time.monotonic,
        speaker_norm: SpeakerNormSettings | None = None,
        profile: VoiceStart | None = None,
    ) -> None:
        self.stream = stream
        self.labels = tuple(labels)
        self.features = features
        self.settings = settings
        self.clock = clock
        sr = features.sample_rate
        self.window_samples = int(round(window_s * sr))
        if settings.window_ms is not None and abs(settings.window_ms - window_s * 1000.0) > 0.5:
            raise ConfigError(
                f"window of {settings.window_ms:g} ms requested, but the model was trained on "
                f"{window_s * 1000:g} ms windows: train a model with that window (ser-train --window) "
                "or leave the window to the model"
            )
        self.hop_samples = int(round(settings.hop_ms / 1000.0 * sr))
        self.window_frames = frames_for_samples(self.window_samples, features)
        self.in_format = as_format(in_rate)
        self.in_rate = self.in_format.sample_rate
        self._resampler = StreamingResampler(self.in_rate, sr)
        self._mel = StreamingLogMel(features, self.window_frames)
        self._vad = VoiceActivityGate(features, settings.vad)
        self._utterance: UtteranceTracker | None = None
        gap_ms = settings.smoothing.utterance_gap_ms
        if gap_ms > 0 and settings.mask_previous_utterance:
            frame_ms = 1000.0 * features.hop_length / sr
            self._utterance = UtteranceTracker(max(1, int(round(gap_ms / frame_ms))),
                                               int(round(ONSET_MARGIN_MS / frame_ms)))
        self.speaker: SpeakerNormalizer | None = None
        self._speaker_norm = speaker_norm
        if speaker_norm is not None:
            start = (profile.baseline, profile.baseline_frames) if profile is not None else (None, None)
            self.speaker = SpeakerNormalizer(speaker_norm, start=start[0], start_frames=start[1])
        self.head: LinearHead | None = profile.head if profile is not None else None
        self._smoother = Smoother(self.labels, settings.smoothing)
        self.seq = 0
        self.dropped_windows = 0
        self.overruns = 0
        self.late_decisions = 0
        self._expected_in = 0  # next input index we expect (gap detection)
        self._in_base = 0  # input index at the last (re)start of the front end
        self._out_base = 0  # stream sample index (model rate) at the last (re)start
        self._next_boundary = self.window_samples  # local (since restart) sample count of the next decision
        self._last_end_sample: int | None = None
        self._acc_ms: dict[str, float] = {"resample": 0.0, "features": 0.0}
        self._unpushed: list[np.ndarray] = []  # resampled audio not yet turned into frames
        self._unpushed_len = 0

    @classmethod
    def from_bundle(cls, stream: str, bundle: FrontEnd, settings: AnalysisSettings, in_rate: AudioFormat | int,
                    clock: Clock = time.monotonic, profile: VoiceStart | None = None) -> StreamProcessor:
        """A stream for the model of ``bundle``: its classes, front end, window and speaker normalisation."""
        return cls(stream, bundle.labels, bundle.features, bundle.window_s, settings, in_rate, clock=clock,
                   speaker_norm=bundle.speaker_norm, profile=profile)

    def use_profile(self, profile: VoiceStart) -> None:
        """Read with ``profile`` from now on: its head, and the speaker reference restarted from its baseline."""
        if self._speaker_norm is not None:
            self.speaker = SpeakerNormalizer(self._speaker_norm, start=profile.baseline,
                                             start_frames=profile.baseline_frames)
        self.head = profile.head

    def statistics(self) -> dict[str, int]:
        """Decisions made, windows skipped (superseded), decisions late, input frames lost to overruns."""
        return {"decisions": self.seq, "dropped_windows": self.dropped_windows, "late": self.late_decisions,
                "overruns": self.overruns}

    @property
    def samples_seen(self) -> int:
        """Stream samples (model rate) delivered to the front end so far."""
        return self._out_base + self._resampler.out_total

    def _restart(self, in_index: int) -> None:
        """Start the front end afresh at input index ``in_index`` (after a gap)."""
        self._resampler.reset()
        self._mel.reset()
        if self._utterance is not None:
            self._utterance.reset()
        self._unpushed = []
        self._unpushed_len = 0
        self._in_base = in_index
        self._out_base = int(round(in_index * self.features.sample_rate / self.in_rate))
        self._next_boundary = self.window_samples

    def feed(
        self, samples: np.ndarray, start_index: int, arrival_time: Callable[[int], float], lost: int = 0
    ) -> list[DueWindow]:
        """Take captured frames; return the windows now due (oldest first).

        Args:
            samples: ``(n, channels)`` or ``(n,)`` float32 frames at ``in_rate``.
            start_index: stream input index of ``samples[0]``.
            arrival_time: maps an input index to the time its block arrived.
            lost: frames the ring lost just before these (an overrun).
        """
        if lost or start_index != self._expected_in:
            gap = max(lost, start_index - self._expected_in) if self._expected_in >= 0 else lost
            if gap > 0:
                self.overruns += gap
            self._restart(start_index)
        self._expected_in = start_index + len(samples)
        if len(samples) == 0:
            return []
        t0 = time.perf_counter()
        y = self._resampler.process(downmix(samples))
        t1 = time.perf_counter()
        self._acc_ms["resample"] += (t1 - t0) * 1000.0
        due: list[DueWindow] = []
        produced_before = self._resampler.out_total - len(y)
        pos = 0
        while produced_before + len(y) >= self._next_boundary:
            cut = self._next_boundary - produced_before
            t2 = time.perf_counter()
            # Features are computed once per hop, on everything since the last one.
            self._unpushed.append(y[pos:cut])
            self._push_features()
            window = self._mel.window()
            if self._utterance is not None:
                window = self._utterance.mask(window, self._mel.frames_total)
            if self.speaker is not None:
                window = self.speaker.normalize(window)
            voice = self._vad.active
            t3 = time.perf_counter()
            self._acc_ms["features"] += (t3 - t2) * 1000.0
            local_end = self._next_boundary
            newest_in = self._in_base + self._resampler.input_index_for_output(local_end - 1)
            newest_in = min(newest_in, self._expected_in - 1)
            due.append(
                DueWindow(
                    end_sample=self._out_base + local_end,
                    window=window,
                    voice_active=voice,
                    audio_time=arrival_time(newest_in),
                    stage_ms=dict(self._acc_ms),
                )
            )
            self._acc_ms = {"resample": 0.0, "features": 0.0}
            pos = cut
            self._next_boundary += self.hop_samples
        if pos < len(y):
            self._unpushed.append(y[pos:])
            self._unpushed_len += len(y) - pos
            if self._unpushed_len >= self.hop_samples:
                # Before the first window is full (or with a long hop), keep up as audio arrives
                # rather than computing a whole window's frames at the decision.
                t2 = time.perf_counter()
                self._push_features()
                self._acc_ms["features"] += (time.perf_counter() - t2) * 1000.0
        if self.settings.drop_stale and len(due) > 1:
            self.dropped_windows += len(due) - 1
            due = due[-1:]
        return due

    def _push_features(self) -> None:
        parts, self._unpushed = self._unpushed, []
        self._unpushed_len = 0
        y = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if len(y):
            frames = self._mel.push(y)
            self._vad.update(frames)
            if self._utterance is not None:
                self._utterance.update(frames, self._vad.frame_speech, self._vad.active)
            if self.speaker is not None:
                self.speaker.update(frames, self._vad.active)

    def finish(self, due: DueWindow, probs: np.ndarray | None, infer_ms: float = 0.0) -> EmotionState:
        """Smooth the model's output for ``due`` into the next state."""
        t0 = time.perf_counter()
        sr = self.features.sample_rate
        if self._last_end_sample is None:
            dt = self.hop_samples / sr
        else:
            dt = (due.end_sample - self._last_end_sample) / sr
        self._last_end_sample = due.end_sample
        decision = self._smoother.update(probs, due.voice_active, dt)
        now = self.clock()
        late = (now - due.audio_time) * 1000.0 > self.settings.latency_budget_ms
        if late:
            self.late_decisions += 1
        stage = dict(due.stage_ms)
        stage["inference"] = infer_ms
        stage["smoothing"] = (time.perf_counter() - t0) * 1000.0
        state = EmotionState(
            stream=self.stream,
            seq=self.seq,
            labels=self.labels,
            label=decision.label,
            confidence=decision.confidence,
            raw=tuple(float(x) for x in probs) if probs is not None else (),
            smoothed=tuple(float(x) for x in decision.smoothed),
            voice_active=due.voice_active,
            end_sample=due.end_sample,
            audio_time=due.audio_time,
            emitted_time=now,
            dropped_windows=self.dropped_windows,
            overruns=self.overruns,
            late=late,
            stage_ms=MappingProxyType(stage),
            uncertain=decision.uncertain,
        )
        self.seq += 1
        return state

    def interrupt(self) -> EmotionState:
        """The input went away: relax to neutral now and restart the front end on the next audio."""
        self._expected_in = -1  # forces a restart (not counted as an overrun) at the next feed
        state = self.final_state()
        return dataclasses.replace(state, final=False)

    def final_state(self) -> EmotionState:
        """The neutral, voiceless, certain state sent when the stream stops."""
        self._smoother.reset()
        now = self.clock()
        rest = self._smoother.probs
        state = EmotionState(
            stream=self.stream,
            seq=self.seq,
            labels=self.labels,
            label=NEUTRAL,
            confidence=float(rest[self.labels.index(NEUTRAL)]) if NEUTRAL in self.labels else 1.0,
            raw=(),
            smoothed=tuple(float(x) for x in rest),
            voice_active=False,
            end_sample=self.samples_seen,
            audio_time=now,
            emitted_time=now,
            dropped_windows=self.dropped_windows,
            overruns=self.overruns,
            final=True,
            uncertain=False,
        )
        self.seq += 1
        return state


