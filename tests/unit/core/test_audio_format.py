"""AudioFormat: one checked value for rate, channels and sample type, and the bare-``int`` form it replaces (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from fakes import StubClassifier, stub_bundle, tone
from ser_daemon.core.audio_format import AudioFormat, as_format
from ser_daemon.core.features import FeatureConfig
from ser_daemon.core.pipeline import StreamProcessor
from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.errors import ConfigError
from ser_daemon.model.analyzer import replay_audio
from ser_daemon.net.ingest_protocol import parse_start

BUNDLE = stub_bundle()


def test_defaults_are_mono_float32_and_the_conversions_use_the_rate() -> None:
    fmt = AudioFormat(48000)
    assert (fmt.sample_rate, fmt.channels, fmt.dtype) == (48000, 1, "float32")
    assert fmt.frames(0.02) == 960
    assert fmt.frames(1 / 3) == 16000
    assert fmt.seconds(24000) == 0.5
    assert AudioFormat(44100, 2, "int16").mono() == AudioFormat(44100, 1, "int16")


@pytest.mark.parametrize("kwargs", [
    {"sample_rate": 0}, {"sample_rate": -8000}, {"sample_rate": 16000.0}, {"sample_rate": True},
    {"sample_rate": 16000, "channels": 0}, {"sample_rate": 16000, "channels": 1.0},
    {"sample_rate": 16000, "dtype": "float16"},
])
def test_a_format_that_cannot_be_is_refused_with_its_field_named(kwargs: dict) -> None:
    field = next(k for k in ("dtype", "channels") if k in kwargs) if len(kwargs) > 1 else "sample_rate"
    with pytest.raises(ConfigError, match=field):
        AudioFormat(**kwargs)


def test_as_format_reads_a_bare_rate_as_mono_float32_and_passes_a_format_through() -> None:
    stereo = AudioFormat(44100, 2)
    assert as_format(stereo) is stereo
    assert as_format(22050) == AudioFormat(22050)
    assert as_format(np.int64(8000)) == AudioFormat(8000)  # scipy's wavfile returns numpy integers
    assert type(as_format(np.int64(8000)).sample_rate) is int
    for bad in (True, 16000.5, "16000", None):
        with pytest.raises(ConfigError):
            as_format(bad)  # type: ignore[arg-type]


def test_the_front_end_and_an_ingest_start_name_their_format() -> None:
    assert FeatureConfig(sample_rate=22050, fmax_hz=8000.0).audio_format == AudioFormat(22050)
    start = parse_start('{"type": "start", "stream": "a", "sample_rate": 48000, "channels": 2}')
    assert start.format == AudioFormat(48000, 2, "int16")


@pytest.mark.parametrize("rate", [16000, 48000])
def test_a_processor_given_a_format_decides_exactly_as_one_given_the_rate(rate: int) -> None:
    settings = AnalysisSettings(hop_ms=250.0, drop_stale=False)
    by_int = StreamProcessor.from_bundle("s", BUNDLE, settings, rate, clock=lambda: 0.0)
    by_fmt = StreamProcessor.from_bundle("s", BUNDLE, settings, AudioFormat(rate, 2), clock=lambda: 0.0)
    assert by_fmt.in_rate == by_int.in_rate == rate
    assert by_fmt.in_format == AudioFormat(rate, 2) and by_int.in_format == AudioFormat(rate)
    x = tone(3000, 1.5, rate)
    a = by_int.feed(x, 0, lambda i: i / rate)
    b = by_fmt.feed(x, 0, lambda i: i / rate)
    assert [d.end_sample for d in a] == [d.end_sample for d in b] == [16000, 20000, 24000]
    assert all(np.array_equal(p.window, q.window) for p, q in zip(a, b))


def test_replay_takes_a_format_or_a_rate_alike() -> None:
    x = tone(3000, 2.0, 48000)
    by_int = replay_audio(x, 48000, StubClassifier(BUNDLE), bundle=BUNDLE)
    by_fmt = replay_audio(x, AudioFormat(48000), StubClassifier(BUNDLE), bundle=BUNDLE)
    assert len(by_int) == len(by_fmt) > 0
    assert [(s.seq, s.label, s.end_sample) for s in by_int] == [(s.seq, s.label, s.end_sample) for s in by_fmt]
