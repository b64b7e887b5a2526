"""The sans-I/O pipeline with a real (tiny) model: decisions follow the audio."""

import numpy as np
import pytest

from ser_daemon.core.settings import AnalysisSettings, SmoothingSettings
from ser_daemon.errors import ConfigError
from ser_daemon.model.inference import load_classifier
from ser_daemon.model.bundle import load_bundle
from ser_daemon.model.analyzer import Analyzer, replay_audio
from ser_daemon.core.pipeline import StreamProcessor
from tiny_model import tone

pytestmark = pytest.mark.needs_tf


@pytest.fixture(scope="module")
def clf(tiny_bundle):
    return load_classifier(load_bundle(tiny_bundle), "litert")


def scene() -> np.ndarray:
    """Silence, a low tone (calm), silence, a high tone (angry), silence."""
    z = np.zeros(16000, np.float32)
    return np.concatenate([z, tone(200, 3.0), z, tone(3000, 3.0), z, z])


def test_replay_follows_the_audio(clf) -> None:
    # A short hold, so the face relaxes within the scene's closing 2 s of silence.
    quick = AnalysisSettings(smoothing=SmoothingSettings(hold_ms=500.0, decay_ms=1000.0))
    states = replay_audio(scene(), 16000, clf, quick)
    labels = [s.label for s in states]
    t = [s.end_sample / 16000 for s in states]
    at = lambda sec: labels[min(range(len(t)), key=lambda i: abs(t[i] - sec))]  # noqa: E731
    assert at(3.9) == "calm"
    assert at(7.9) == "angry"
    assert labels[-1] == "neutral"
    assert [s.seq for s in states] == list(range(len(states)))
    assert all(s.dropped_windows == 0 and s.overruns == 0 for s in states)
    # No emotion while nothing is heard: the first window is pure silence.
    assert states[0].voice_active is False and states[0].label == "neutral"
    # Hop of 250 ms, first decision when the 1 s window is full.
    assert states[0].end_sample == 16000 and states[1].end_sample - states[0].end_sample == 4000


@pytest.mark.parametrize("block", [256, 1000, 4096])
def test_same_decisions_for_any_block_size(clf, block: int) -> None:
    ref = replay_audio(scene(), 16000, clf, block_frames=320)
    got = replay_audio(scene(), 16000, clf, block_frames=block)
    assert [s.label for s in got] == [s.label for s in ref]
    assert [s.end_sample for s in got] == [s.end_sample for s in ref]
    np.testing.assert_allclose([s.raw for s in got], [s.raw for s in ref], atol=1e-4)


@pytest.mark.parametrize("rate,channels", [(48000, 2), (44100, 1), (22050, 6)])
def test_any_device_rate_and_channel_count(clf, rate: int, channels: int) -> None:
    from scipy.signal import resample_poly

    x16 = scene()
    x = resample_poly(x16, rate, 16000).astype(np.float32)
    multi = np.repeat(x[:, None], channels, axis=1)
    ref = replay_audio(x16, 16000, clf)
    got = replay_audio(multi, rate, clf)
    same = np.mean([a.label == b.label for a, b in zip(ref, got)])
    assert abs(len(ref) - len(got)) <= 1 and same > 0.9


def test_stale_windows_are_skipped_and_counted(clf, tiny_bundle) -> None:
    b = load_bundle(tiny_bundle)
    now = [0.0]
    proc = StreamProcessor("s", b.labels, b.features, b.window_s, AnalysisSettings(), 16000, clock=lambda: now[0])
    x = tone(3000, 3.0)
    # The processing thread was stalled: 3 s of audio arrive in one read.
    due = proc.feed(x, 0, lambda i: 0.0)
    assert len(due) == 1 and due[0].end_sample == 48000
    assert proc.dropped_windows == 8  # windows ending at 1.0, 1.25, ... 2.75 s were superseded
    now[0] = 3.0  # and decided long after the audio arrived
    [state] = Analyzer(clf).decide([(proc, due[0])])
    assert state.late and state.dropped_windows == 8
    # Every earlier window counted as skipped, never queued: memory stays bounded.


def test_gap_in_input_is_counted_and_front_end_restarts(clf, tiny_bundle) -> None:
    b = load_bundle(tiny_bundle)
    proc = StreamProcessor("s", b.labels, b.features, b.window_s, AnalysisSettings(), 16000)
    x = tone(3000, 2.0)
    proc.feed(x[:16000], 0, lambda i: 0.0)
    due = proc.feed(x, 16000 + 8000, lambda i: 0.0, lost=8000)
    assert proc.overruns == 8000
    # After a gap a full new window is needed before the next decision, at stream time.
    # (32000 new samples: windows end at 1.0 .. 2.0 s after the restart; the newest is kept).
    assert [d.end_sample for d in due] == [24000 + 32000]
    assert proc.dropped_windows == 4


def test_window_must_match_the_model(clf, tiny_bundle) -> None:
    b = load_bundle(tiny_bundle)
    with pytest.raises(ConfigError, match="trained on 1000 ms"):
        StreamProcessor("s", b.labels, b.features, b.window_s, AnalysisSettings(window_ms=2000), 16000)


def test_keras_and_litert_agree(tiny_bundle) -> None:
    b = load_bundle(tiny_bundle)
    lite = load_classifier(b, "litert")
    ker = load_classifier(b, "keras")
    x = np.random.default_rng(0).normal(-5, 3, size=(3, *b.input_shape)).astype(np.float32)
    np.testing.assert_allclose(lite.predict(x), ker.predict(x), atol=1e-5)
    np.testing.assert_allclose(lite.predict(x[:1]), ker.predict(x[:1]), atol=1e-5)
