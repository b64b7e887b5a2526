"""The sans-I/O pipeline with a stand-in model: exact timing, attribution and counters (fast).

The real tiny model (tests/unit/model/test_pipeline.py) shows the decisions follow the audio; these tests
pin the arithmetic around it, at 16 kHz and at 48 kHz input, where a rate mix-up is 3x off.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fakes import LABELS, StubClassifier, profile_reading, stub_bundle, tone
from ser_daemon.core.settings import AnalysisSettings, SmoothingSettings
from ser_daemon.errors import ConfigError
from ser_daemon.model.analyzer import Analyzer, replay_audio
from ser_daemon.core.pipeline import StreamProcessor

BUNDLE = stub_bundle()
SMOOTH = SmoothingSettings(ema_ms=1000.0, hysteresis=0.1, min_dwell_ms=0.0, hold_ms=500.0, decay_ms=1500.0,
                           min_confidence=0.3)
SETTINGS = AnalysisSettings(hop_ms=250.0, latency_budget_ms=150.0, drop_stale=False, smoothing=SMOOTH)


def processor(rate: int = 16000, settings: AnalysisSettings = SETTINGS, now: list[float] | None = None,
              bundle=BUNDLE) -> StreamProcessor:
    clock = (lambda: now[0]) if now is not None else (lambda: 0.0)
    return StreamProcessor("s", bundle.labels, bundle.features, bundle.window_s, settings, rate, clock=clock)


def arrival_at(rate: int, t0: float = 1000.0):
    return lambda index: t0 + index / rate


@pytest.mark.parametrize("rate", [16000, 48000])
def test_decisions_fall_on_the_hop_grid_and_name_their_newest_input(rate: int) -> None:
    proc = processor(rate)
    x = tone(3000, 2.0, rate)
    due = []
    for start in range(0, len(x), rate // 50):
        due += proc.feed(x[start : start + rate // 50], start, arrival_at(rate))
    assert [d.end_sample for d in due] == [16000, 20000, 24000, 28000, 32000]
    # The window ending at model sample 16000 ends with input sample 16000 * rate / 16000 - (rate / 16000).
    ratio = rate // 16000
    newest = [(d.end_sample - 1) * ratio for d in due]
    assert [d.audio_time for d in due] == [1000.0 + i / rate for i in newest]
    assert proc.samples_seen == 32000
    assert all(d.window.shape == BUNDLE.input_shape for d in due)
    assert set(due[0].stage_ms) == {"resample", "features"}


@pytest.mark.parametrize("rate", [16000, 48000])
def test_gap_recovery_at_any_input_rate(rate: int) -> None:
    """After lost input the front end restarts on the stream's own time line, in model samples."""
    proc = processor(rate)
    x = tone(3000, 1.0, rate)
    first = proc.feed(x, 0, arrival_at(rate))
    assert [d.end_sample for d in first] == [16000]
    gap = rate // 2  # half a second lost
    restart = len(x) + gap
    due = proc.feed(x, restart, arrival_at(rate))
    assert proc.overruns == gap
    base = restart * 16000 // rate  # 24000 model samples
    assert [d.end_sample for d in due] == [base + 16000]
    assert due[0].audio_time == 1000.0 + (restart + len(x) - (rate // 16000)) / rate
    # A reported loss with contiguous indices counts what the ring lost, not less.
    more = proc.feed(x[: rate // 4], restart + len(x) + 100, arrival_at(rate), lost=300)
    assert proc.overruns == gap + 300 and more == []


def test_latency_budget_boundary_and_counting() -> None:
    now = [0.0]
    proc = processor(now=now, settings=dataclasses.replace(SETTINGS, latency_budget_ms=125.0))
    [d] = proc.feed(tone(3000, 1.0), 0, lambda i: 4.0)
    clf = StubClassifier(BUNDLE)
    now[0] = 4.125  # exactly the budget (binary-exact numbers): on time
    st = proc.finish(d, clf.predict(d.window[None])[0], infer_ms=3.0)
    assert st.late is False and st.emitted_time == 4.125 and st.audio_time == 4.0
    assert st.latency_ms == 125.0 and st.stage_ms["inference"] == 3.0
    now[0] = 4.12501
    st = proc.finish(d, None)
    assert st.late is True and proc.late_decisions == 1 and st.raw == ()
    assert st.stage_ms["inference"] == 0.0 and set(st.stage_ms) == {"resample", "features", "inference", "smoothing"}
    assert st.seq == 1


def test_stale_windows_are_dropped_only_when_asked() -> None:
    x = tone(3000, 3.0)
    keep = processor(settings=dataclasses.replace(SETTINGS, drop_stale=False))
    assert [d.end_sample for d in keep.feed(x, 0, lambda i: 0.0)] == [16000 + 4000 * k for k in range(9)]
    assert keep.dropped_windows == 0
    drop = processor(settings=dataclasses.replace(SETTINGS, drop_stale=True))
    assert [d.end_sample for d in drop.feed(x, 0, lambda i: 0.0)] == [48000]
    assert drop.dropped_windows == 8
    assert [d.end_sample for d in drop.feed(tone(3000, 0.25), 48000, lambda i: 0.0)] == [52000]
    assert drop.dropped_windows == 8  # one window due: nothing superseded


def test_time_between_decisions_drives_the_smoother() -> None:
    """The smoother advances by the audio between decisions: a hop, or more after skipped windows."""
    proc = processor(settings=dataclasses.replace(SETTINGS, drop_stale=True))
    p = np.array([0.0, 0.0, 1.0])
    [d1] = proc.feed(tone(3000, 1.0), 0, lambda i: 0.0)
    s1 = proc.finish(d1, p)
    a1 = 1.0 - np.exp(-250.0 / 1000.0)  # the first decision counts as one hop
    np.testing.assert_allclose(s1.smoothed, [1 - a1, 0.0, a1], atol=1e-12)
    [d2] = proc.feed(tone(3000, 0.75), 16000, lambda i: 0.0)  # three hops later; two were dropped
    s2 = proc.finish(d2, p)
    a2 = 1.0 - np.exp(-750.0 / 1000.0)
    np.testing.assert_allclose(s2.smoothed[2], a1 + a2 * (1 - a1), atol=1e-12)
    assert s2.voice_active is True and s2.label == "angry" and s2.dropped_windows == 2


def test_quiet_windows_are_not_voice() -> None:
    proc = processor()
    [d] = proc.feed(np.zeros(16000, np.float32), 0, lambda i: 0.0)
    assert d.voice_active is False
    st = proc.finish(d, np.array([0.0, 0.0, 1.0]))
    assert st.label == "neutral" and st.voice_active is False


def test_multichannel_input_is_downmixed() -> None:
    x = tone(3000, 1.0)
    stereo = np.stack([x, x], axis=1)
    [a] = processor().feed(stereo, 0, lambda i: 0.0)
    [b] = processor().feed(x, 0, lambda i: 0.0)
    np.testing.assert_allclose(a.window, b.window, atol=1e-6)
    assert processor().feed(np.zeros((0, 2), np.float32), 0, lambda i: 0.0) == []


def test_interrupt_relaxes_now_and_restarts_without_counting_overruns() -> None:
    now = [7.0]
    proc = processor(now=now)
    [d] = proc.feed(tone(3000, 1.0), 0, lambda i: 0.0)
    proc.finish(d, np.array([0.0, 0.0, 1.0]))
    st = proc.interrupt()
    assert (st.final, st.label, st.voice_active, st.raw, st.seq) == (False, "neutral", False, (), 1)
    assert st.smoothed == (1.0, 0.0, 0.0) and st.audio_time == st.emitted_time == 7.0
    due = proc.feed(tone(3000, 1.0), 10 * 16000, lambda i: 0.0)  # audio is back, ten seconds later
    assert proc.overruns == 0
    assert [x.end_sample for x in due] == [10 * 16000 + 16000]


def test_final_state_is_flagged_neutral_and_numbered() -> None:
    now = [3.5]
    proc = processor(now=now)
    [d] = proc.feed(tone(3000, 1.0), 0, lambda i: 0.0)
    proc.finish(d, np.array([0.0, 0.0, 1.0]))
    st = proc.final_state()
    assert st.final is True and st.label == "neutral" and st.voice_active is False and st.raw == ()
    assert st.confidence == 1.0 and st.smoothed == (1.0, 0.0, 0.0) and st.seq == 1 and proc.seq == 2
    assert st.end_sample == proc.samples_seen and st.audio_time == st.emitted_time == 3.5
    no_neutral = stub_bundle(labels=("happy", "angry"))
    st = processor(bundle=no_neutral).final_state()
    assert st.final is True and st.label == "neutral" and st.confidence == 1.0 and st.smoothed == (0.5, 0.5)


def test_window_length_must_match_the_model() -> None:
    processor(settings=dataclasses.replace(SETTINGS, window_ms=1000.4))
    with pytest.raises(ConfigError, match="window of 1001 ms requested, but the model was trained on 1000 ms"):
        processor(settings=dataclasses.replace(SETTINGS, window_ms=1001.0))


def test_analyzer_batches_all_streams_in_one_call() -> None:
    clf = StubClassifier(BUNDLE)
    a, b = processor(), processor()
    work = [(a, d) for d in a.feed(tone(3000, 1.25), 0, lambda i: 0.0)]
    work += [(b, d) for d in b.feed(np.zeros(16000, np.float32), 0, lambda i: 0.0)]
    states = Analyzer(clf).decide(work)
    assert clf.batches == [3]
    assert [(s.stream, s.seq, s.end_sample) for s in states] == [("s", 0, 16000), ("s", 1, 20000), ("s", 0, 16000)]
    assert states[0].raw[2] > 0.9 and states[2].raw[0] > 0.9
    assert Analyzer(clf).decide([]) == [] and clf.batches == [3]


def test_replay_uses_audio_time_and_every_hop() -> None:
    clf = StubClassifier(BUNDLE)
    x = np.concatenate([np.zeros(16000, np.float32), tone(3000, 2.0)])
    states = replay_audio(x, 16000, clf, dataclasses.replace(SETTINGS, drop_stale=True))
    assert [s.end_sample for s in states] == [16000 + 4000 * k for k in range(9)]
    assert [s.seq for s in states] == list(range(9)) and all(s.dropped_windows == 0 for s in states)
    assert states[0].audio_time == 1.0 and states[0].emitted_time == 1.0  # 20 ms blocks end on the window
    assert states[-1].label == "angry" and states[0].label == "neutral"
    odd = replay_audio(x, 16000, clf, SETTINGS, block_frames=3000)
    assert [s.end_sample for s in odd] == [s.end_sample for s in states]
    assert odd[0].emitted_time == 18000 / 16000  # decided when the block holding sample 16000 arrived
    with pytest.raises(ConfigError, match="needs the model bundle"):
        replay_audio(x, 16000, object())  # type: ignore[arg-type]


# -- more exact arithmetic -------------------------------------------------------------------

from ser_daemon.core.features import log_mel  # noqa: E402


@pytest.mark.parametrize("blocks", [[320], [1, 319, 4001, 7], [16000 * 3]])
def test_windows_are_the_batch_features_of_the_newest_second(blocks: list[int]) -> None:
    x = np.concatenate([np.zeros(4000, np.float32), tone(3000, 1.0), tone(500, 1.5)])
    proc = processor()
    due, start, k = [], 0, 0
    while start < len(x):
        n = blocks[k % len(blocks)]
        due += proc.feed(x[start : start + n], start, lambda i: 0.0)
        start, k = start + n, k + 1
    assert [d.end_sample for d in due] == [16000 + 4000 * j for j in range(8)]
    for d in due:
        np.testing.assert_allclose(d.window, log_mel(x[d.end_sample - 16000 : d.end_sample], BUNDLE.features),
                                   atol=1e-4)


def test_counters_accumulate_and_travel_with_every_state() -> None:
    now = [10.0]
    proc = processor(settings=dataclasses.replace(SETTINGS, drop_stale=True), now=now)
    x = tone(3000, 4.0)
    first = proc.feed(x[:20000], 0, lambda i: 0.0)  # windows ending at 16000 and 20000: one superseded
    assert [d.end_sample for d in first] == [20000] and proc.dropped_windows == 1
    second = proc.feed(x[20000:28000], 20000, lambda i: 0.0)
    assert [d.end_sample for d in second] == [28000] and proc.dropped_windows == 2
    proc.feed(x[28001:40000], 28001, lambda i: 0.0, lost=1)  # a single lost sample counts too
    assert proc.overruns == 1
    a = proc.finish(first[0], np.array([0.0, 0.0, 1.0]))
    b = proc.finish(second[0], None)
    assert (a.late, b.late, proc.late_decisions) == (True, True, 2)  # decided 10 s after the audio
    for st in (b, proc.final_state()):
        assert (st.stream, st.labels, st.dropped_windows, st.overruns) == ("s", LABELS, 2, 1)
    assert a.label == "neutral" and a.confidence == a.smoothed[0] == pytest.approx(np.exp(-0.25))  # one EMA step


def test_a_stream_that_starts_late_counts_the_missing_start() -> None:
    proc = processor()
    proc.feed(tone(3000, 0.5), 5000, lambda i: 0.0)
    assert proc.overruns == 5000


def test_window_tolerance_is_half_a_millisecond() -> None:
    processor(settings=dataclasses.replace(SETTINGS, window_ms=1000.5))
    with pytest.raises(ConfigError) as err:
        processor(settings=dataclasses.replace(SETTINGS, window_ms=1000.51))
    assert str(err.value) == ("window of 1000.51 ms requested, but the model was trained on 1000 ms windows: train a "
                              "model with that window (ser-train --window) or leave the window to the model")


def test_stage_times_are_milliseconds_accumulated_until_the_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each perf_counter reading is 1 ms after the previous one, so every stage time is a count of readings."""
    import time as time_module

    ticks = iter(100.0 + 0.001 * k for k in range(100000))
    monkeypatch.setattr(time_module, "perf_counter", lambda: next(ticks))
    proc = processor()
    x = tone(3000, 1.25)
    assert proc.feed(x[:8000], 0, lambda i: 0.0) == []  # resample 1 ms; 8000 waiting >= hop: features 1 ms
    [d] = proc.feed(x[8000:16000], 8000, lambda i: 0.0)  # resample 1 ms; features for the window 1 ms
    assert d.stage_ms == pytest.approx({"resample": 2.0, "features": 2.0}, abs=1e-6)
    [d2] = proc.feed(x[16000:20000], 16000, lambda i: 0.0)
    assert d2.stage_ms == pytest.approx({"resample": 1.0, "features": 1.0}, abs=1e-6)  # counted afresh
    clf = StubClassifier(BUNDLE)
    a, b = Analyzer(clf).decide([(proc, d), (proc, d2)])
    assert a.stage_ms["inference"] == pytest.approx(0.5, abs=1e-6)  # one 1 ms call shared by two windows
    assert b.stage_ms["inference"] == pytest.approx(0.5, abs=1e-6)
    assert a.stage_ms["smoothing"] == pytest.approx(1.0, abs=1e-6)
    assert a.stage_ms["resample"] == pytest.approx(2.0, abs=1e-6)
    # Hop-sized blocks: features are computed as audio arrives, and all of it is counted.
    hops = processor()
    due = [d for k in range(4) for d in hops.feed(x[4000 * k : 4000 * (k + 1)], 4000 * k, lambda i: 0.0)]
    assert [d.stage_ms for d in due] == [pytest.approx({"resample": 4.0, "features": 4.0}, abs=1e-6)]


class _NoBundle:
    """A classifier that does not carry its bundle (replay_audio must be given one)."""

    def __init__(self) -> None:
        self.inner = StubClassifier(BUNDLE)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.inner.predict(batch)


def test_replay_settings_stream_and_bundle() -> None:
    x = np.concatenate([np.zeros(16000, np.float32), tone(3000, 2.0)])
    clf = StubClassifier(BUNDLE)
    default = replay_audio(x, 16000, clf)  # default settings: 250 ms hop, nothing skipped
    assert [s.end_sample for s in default] == [16000 + 4000 * k for k in range(9)]
    assert {s.stream for s in default} == {"replay"}
    slow = replay_audio(x, 16000, clf, dataclasses.replace(SETTINGS, hop_ms=500.0, drop_stale=True),
                        block_frames=len(x), stream="clip")
    assert [s.end_sample for s in slow] == [16000, 24000, 32000, 40000, 48000]  # one block: every hop still decided
    assert {s.stream for s in slow} == {"clip"} and all(s.dropped_windows == 0 for s in slow)
    given = replay_audio(x, 16000, _NoBundle(), SETTINGS, bundle=BUNDLE)
    assert [s.end_sample for s in given] == [s.end_sample for s in default]
    with pytest.raises(ConfigError) as err:
        replay_audio(x, 16000, _NoBundle())
    assert str(err.value) == "replay_audio needs the model bundle (pass bundle=, or load the model with load_classifier)"


def test_replay_at_very_low_rates_feeds_single_frames() -> None:
    """20 ms of 50 Hz audio is one frame: the window (51 inputs, with the filter's lag) is decided at 1.02 s."""
    states = replay_audio(np.zeros(100, np.float32), 50, StubClassifier(BUNDLE), SETTINGS)
    assert states[0].end_sample == 16000 and states[0].emitted_time == 51 / 50


def test_unsure_decisions_are_flagged_and_the_final_state_never_is() -> None:
    unsure = dataclasses.replace(SETTINGS, smoothing=dataclasses.replace(SMOOTH, ema_ms=0.0, min_confidence=0.99))
    proc = processor(settings=unsure)
    [d] = proc.feed(tone(3000, 1.0), 0, lambda i: 0.0)
    st = proc.finish(d, np.array([0.05, 0.05, 0.9]))
    assert st.label == "angry" and st.uncertain is True
    assert proc.final_state().uncertain is False
    sure = processor(settings=dataclasses.replace(unsure, smoothing=dataclasses.replace(SMOOTH, ema_ms=0.0)))
    [d] = sure.feed(tone(3000, 1.0), 0, lambda i: 0.0)
    assert sure.finish(d, np.array([0.05, 0.05, 0.9])).uncertain is False


class _Recording(StubClassifier):
    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.last = batch.copy()
        return super().predict(batch)


def test_speaker_normalisation_from_the_bundle_reaches_the_model() -> None:
    from ser_daemon.core.speaker_norm import SpeakerNormSettings

    norm = SpeakerNormSettings(prior=(1.0,) * BUNDLE.features.n_mels)
    bundle = dataclasses.replace(BUNDLE, speaker_norm=norm)
    clf = _Recording(bundle)
    silence = np.zeros(16000, np.float32)  # no voice: the reference stays at the prior
    [st] = replay_audio(silence, 16000, clf, SETTINGS)
    np.testing.assert_allclose(clf.last[0], log_mel(silence, BUNDLE.features) - 1.0, atol=1e-6)
    assert st.end_sample == 16000


def test_the_speaker_reference_learns_only_from_voiced_audio() -> None:
    from ser_daemon.core.speaker_norm import SpeakerNormSettings

    norm = SpeakerNormSettings(prior=(0.0,) * BUNDLE.features.n_mels, prior_frames=10.0)
    proc = StreamProcessor("s", LABELS, BUNDLE.features, 1.0, SETTINGS, 16000, speaker_norm=norm)
    proc.feed(np.zeros(16000, np.float32), 0, lambda i: 0.0)
    assert proc.speaker.voiced_frames_seen == 0  # silence: the gate is shut
    proc.feed(tone(3000, 2.0), 16000, lambda i: 0.0)
    assert proc.speaker.voiced_frames_seen > 0 and proc.speaker.reference.max() > 0.0


def test_a_stream_from_a_bundle_takes_its_classes_window_and_speaker_normalisation() -> None:
    from ser_daemon.core.speaker_norm import SpeakerNormSettings

    norm = SpeakerNormSettings(prior=(0.5,) * BUNDLE.features.n_mels, prior_frames=10.0)
    bundle = dataclasses.replace(BUNDLE, speaker_norm=norm)
    proc = StreamProcessor.from_bundle("s", bundle, SETTINGS, 48000, clock=lambda: 7.0)
    assert (proc.labels, proc.in_rate, proc.clock()) == (BUNDLE.labels, 48000, 7.0)
    assert proc.window_samples == int(BUNDLE.window_s * BUNDLE.features.sample_rate) and proc.head is None
    np.testing.assert_allclose(proc.speaker.reference, 0.5)
    assert StreamProcessor.from_bundle("s", BUNDLE, SETTINGS, 16000).speaker is None  # the bundle has none


def test_switching_to_a_profile_restarts_the_reference_from_its_baseline_and_reads_with_its_head() -> None:
    from ser_daemon.core.head import LinearHead
    from ser_daemon.core.speaker_norm import SpeakerNormSettings

    n = BUNDLE.features.n_mels
    norm = SpeakerNormSettings(prior=(0.0,) * n, prior_frames=10.0)
    proc = StreamProcessor("s", LABELS, BUNDLE.features, 1.0, SETTINGS, 16000, speaker_norm=norm)
    proc.feed(tone(3000, 2.0), 0, lambda i: 0.0)
    assert proc.speaker.voiced_frames_seen > 0
    head = LinearHead(np.zeros((4, len(LABELS)), np.float32), np.zeros(len(LABELS), np.float32))
    profile = dataclasses.make_dataclass("P", ["baseline", "baseline_frames", "head"])(np.full(n, 2.0), 40.0, head)
    proc.use_profile(profile)
    assert proc.head is head and proc.speaker.voiced_frames_seen == 0 and proc.speaker.weight_frames == 40.0
    np.testing.assert_allclose(proc.speaker.reference, 2.0)
    plain = StreamProcessor("s", LABELS, BUNDLE.features, 1.0, SETTINGS, 16000)
    plain.use_profile(profile)
    assert plain.head is head and plain.speaker is None  # no speaker normalisation in the model: none added


def test_a_streams_statistics_are_its_counters() -> None:
    proc = processor()
    assert proc.statistics() == {"decisions": 0, "dropped_windows": 0, "late": 0, "overruns": 0}
    proc.seq, proc.dropped_windows, proc.late_decisions, proc.overruns = 5, 2, 1, 3
    assert proc.statistics() == {"decisions": 5, "dropped_windows": 2, "late": 1, "overruns": 3}


def test_an_offline_replay_reads_with_the_personal_profile_it_is_given() -> None:
    clf = StubClassifier(BUNDLE)
    loud = tone(3000, 1.5)
    assert {int(np.argmax(s.raw)) for s in replay_audio(loud, 16000, clf, SETTINGS)} == {LABELS.index("angry")}
    mine = replay_audio(loud, 16000, clf, SETTINGS, profile=profile_reading("happy"))
    assert len(mine) == 3 and {int(np.argmax(s.raw)) for s in mine} == {LABELS.index("happy")}


def _features_ms_per_decision(proc: StreamProcessor, x: np.ndarray, blocks: list[int], start: int = 0) -> list[float]:
    due = []
    for n in blocks:
        due += proc.feed(x[:n], start, lambda i: 0.0)
        x, start = x[n:], start + n
    return [round(d.stage_ms["features"], 6) for d in due]


def test_features_are_computed_once_a_hop_of_audio_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every front-end pass reads 1 ms here, so a decision's features time counts the passes since the last one."""
    import time as time_module

    ticks = iter(100.0 + 0.001 * k for k in range(1000000))
    monkeypatch.setattr(time_module, "perf_counter", lambda: next(ticks))
    x = tone(3000, 2.0)
    # 2000-frame blocks: a pass every second block (a hop, 4000 frames, waits), the last one at the decision.
    assert _features_ms_per_decision(processor(), x, [2000] * 10) == [4.0, 1.0]
    # 3000-frame blocks: what is left after a decision's cut counts alone, not with the cut.
    assert _features_ms_per_decision(processor(), x, [3000] * 8) == [3.0, 1.0, 1.0]
    # One frame short of a hop waits, at the start and after a pass; the window's pass takes it with the rest.
    assert _features_ms_per_decision(processor(), x, [3999, 12001]) == [1.0]
    assert _features_ms_per_decision(processor(), x, [4000, 3999, 8001]) == [2.0]
    # After a gap the front end starts afresh, with nothing waiting.
    proc = processor()
    assert _features_ms_per_decision(proc, x, [16000]) == [1.0]
    assert _features_ms_per_decision(proc, x, [3999, 12001], start=20000) == [1.0]
    assert proc.statistics()["overruns"] == 4000


def test_a_stream_with_a_profile_starts_its_speaker_reference_from_the_profiles_baseline() -> None:
    from ser_daemon.core.speaker_norm import SpeakerNormSettings

    n = BUNDLE.features.n_mels
    bundle = dataclasses.replace(BUNDLE, speaker_norm=SpeakerNormSettings(prior=(0.5,) * n, prior_frames=300.0))
    profile = dataclasses.replace(profile_reading("happy"), baseline=np.full(n, 2.0), baseline_frames=40.0)
    proc = StreamProcessor.from_bundle("s", bundle, SETTINGS, 16000, profile=profile)
    np.testing.assert_allclose(proc.speaker.reference, 2.0)
    assert proc.speaker.weight_frames == 40.0 and proc.head is profile.head
    plain = StreamProcessor.from_bundle("s", bundle, SETTINGS, 16000)
    np.testing.assert_allclose(plain.speaker.reference, 0.5)
    assert plain.speaker.weight_frames == 300.0 and plain.head is None
