import numpy as np
import pytest

from conftest import reference_module
from ser_daemon.app.options import demo_recording
from ser_daemon.errors import ConfigError
from ser_daemon.core.features import FeatureConfig, StreamingLogMel, frames_for_samples, log_mel, mel_filterbank
from ser_daemon.audio.sources import read_wav

CFG = FeatureConfig()


def speech() -> np.ndarray:
    """Real speech: the bundled espeak-ng demo recording (16 kHz mono)."""
    x, rate = read_wav(demo_recording())
    assert rate == 16000
    return x[:, 0]


def test_matches_librosa_on_real_speech() -> None:
    librosa = reference_module("librosa")
    x = speech()[: 16000 * 3]
    ours = log_mel(x, CFG)
    mel = librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=512, win_length=400, hop_length=160, window="hann",
        center=False, power=2.0, n_mels=64, fmin=50.0, fmax=8000.0, htk=False, norm="slaney",
    ).T
    ref = np.log(mel + 1e-6)
    assert ours.shape == ref.shape == (frames_for_samples(len(x), CFG), 64)
    # Compare where there is energy (log of near-zero bands amplifies float noise).
    loud = mel > 1e-4
    np.testing.assert_allclose(ours[loud], ref[loud], atol=2e-3)
    assert np.median(np.abs(ours - ref)) < 1e-4


def test_filterbank_matches_librosa() -> None:
    librosa = reference_module("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50.0, fmax=8000.0, htk=False, norm="slaney").T
    np.testing.assert_allclose(mel_filterbank(CFG), ref, atol=1e-7)


@pytest.mark.parametrize("block", [1, 160, 256, 1000, 4096])
def test_streaming_equals_batch_for_any_block_size(block: int) -> None:
    x = speech()[: 16000 * 2 + 1234]
    batch = log_mel(x, CFG)
    s = StreamingLogMel(CFG, window_frames=len(batch))
    got = [s.push(x[i : i + block]) for i in range(0, len(x), block)]
    np.testing.assert_allclose(np.concatenate(got), batch, atol=1e-5)
    assert s.ready
    np.testing.assert_allclose(s.window(), batch, atol=1e-5)


def test_window_keeps_newest_frames_in_order() -> None:
    x = speech()[:16000]
    batch = log_mel(x, CFG)
    s = StreamingLogMel(CFG, window_frames=40)
    for i in range(0, len(x), 333):
        s.push(x[i : i + 333])
    np.testing.assert_allclose(s.window(), batch[-40:], atol=1e-5)
    s.reset()
    assert not s.ready and s.frames_total == 0


def test_silence_is_finite_and_short_input_gives_no_frames() -> None:
    assert log_mel(np.zeros(100, np.float32), CFG).shape == (0, 64)
    z = log_mel(np.zeros(16000, np.float32), CFG)
    assert np.all(np.isfinite(z)) and np.allclose(z, np.log(1e-6))


def test_rejects_multichannel_and_bad_config() -> None:
    with pytest.raises(ConfigError):
        log_mel(np.zeros((100, 2), np.float32), CFG)
    with pytest.raises(ConfigError):
        FeatureConfig(fmax_hz=9000.0)
    assert FeatureConfig.from_dict(CFG.to_dict()) == CFG


def test_fmin_and_fmax_are_honoured() -> None:
    """The filters span exactly [fmin_hz, fmax_hz]: nothing outside, the edge filters reach the edges."""
    for fmin, fmax in [(50.0, 8000.0), (300.0, 4000.0), (0.0, 6000.0)]:
        cfg = FeatureConfig(fmin_hz=fmin, fmax_hz=fmax)
        fb = mel_filterbank(cfg)
        freqs = np.linspace(0, 8000, cfg.n_fft // 2 + 1)
        used = freqs[fb.sum(axis=1) > 0]
        assert used.min() >= fmin and used.max() <= fmax
        assert used.min() < fmin + 40.0 and used.max() > fmax - 150.0, (fmin, fmax)
        peaks = freqs[np.argmax(fb, axis=0)]
        assert np.all(np.diff(peaks) >= 0)  # filters in rising order
    narrow = log_mel(speech()[:16000], FeatureConfig(fmax_hz=4000.0))
    assert not np.allclose(narrow, log_mel(speech()[:16000], CFG))


def test_filters_are_slaney_normalised_triangles() -> None:
    """Each filter's area in Hertz is about 1 (Slaney norm: 2 / bandwidth)."""
    fb = mel_filterbank(CFG).astype(np.float64)
    bin_hz = 16000 / 512
    area = fb.sum(axis=0) * bin_hz
    np.testing.assert_allclose(area[16:], 1.0, atol=0.12)  # the narrow low filters cover few bins
    assert not mel_filterbank(CFG).flags.writeable  # cached and shared: must not be changed in place


def test_log_offset_and_window_are_used() -> None:
    z = log_mel(np.zeros(1000, np.float32), FeatureConfig(log_offset=1e-3))
    np.testing.assert_allclose(z, np.log(1e-3), rtol=1e-6)
    # A click just outside the centred 400-sample Hann window (of 512) is invisible; inside it is not.
    x = np.zeros(512, np.float32)
    x[50] = 1.0
    assert np.allclose(log_mel(x, CFG), np.log(1e-6))
    x[:] = 0.0
    x[256] = 1.0
    assert log_mel(x, CFG).max() > np.log(1e-3)


def test_frame_counts_are_exact() -> None:
    assert [frames_for_samples(n, CFG) for n in (0, 511, 512, 671, 672, 16000)] == [0, 0, 1, 1, 2, 97]
    assert log_mel(np.zeros(672, np.float32), CFG).shape == (2, 64)


@pytest.mark.parametrize("kw", [
    dict(sample_rate=0), dict(win_length=0), dict(win_length=513), dict(hop_length=0), dict(n_mels=0),
    dict(fmin_hz=-1.0), dict(fmin_hz=8000.0), dict(fmax_hz=8000.5), dict(log_offset=0.0),
])
def test_bad_feature_settings_are_refused(kw: dict) -> None:
    with pytest.raises(ConfigError):
        FeatureConfig(**kw)


def test_edge_feature_settings_are_accepted() -> None:
    FeatureConfig(win_length=512, hop_length=1, n_mels=1, fmin_hz=0.0, fmax_hz=8000.0, log_offset=1e-12)
    with pytest.raises(ConfigError, match="unknown feature settings"):
        FeatureConfig.from_dict({**CFG.to_dict(), "n_ffts": 1})


def test_streaming_counters_and_overflow() -> None:
    with pytest.raises(ConfigError):
        StreamingLogMel(CFG, window_frames=0)
    s = StreamingLogMel(CFG, window_frames=3)
    with pytest.raises(ConfigError):
        s.push(np.zeros((10, 2), np.float32))
    x = speech()[:2000]
    assert len(s.push(x[:511])) == 0 and not s.ready and s.samples_total == 511
    assert len(s.push(x[511:832])) == 3 and s.ready and s.frames_total == 3  # 832 = 512 + 2 hops
    s.push(x[832:])
    batch = log_mel(x, CFG)
    assert s.frames_total == len(batch) and s.samples_total == 2000
    np.testing.assert_allclose(s.window(), batch[-3:], atol=1e-5)
    one = StreamingLogMel(CFG, window_frames=3)
    one.push(x)  # more frames than the ring holds in one push: the newest are kept
    assert one.frames_total == len(batch)
    np.testing.assert_allclose(one.window(), batch[-3:], atol=1e-5)


def test_features_are_float32_whatever_comes_in() -> None:
    x = speech()[:4000].astype(np.float64)
    ref = log_mel(x.astype(np.float32), CFG)
    got = log_mel(x, CFG)  # float64 samples are read as float32: the same features, bit for bit
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)
    assert log_mel(np.zeros(10), CFG).dtype == np.float32
    s = StreamingLogMel(CFG, window_frames=5)
    np.testing.assert_array_equal(s.push(x), ref)
    assert s.window().dtype == np.float32


def test_reset_starts_the_frame_grid_afresh() -> None:
    x = speech()[:4000]
    s = StreamingLogMel(CFG, window_frames=4)
    s.push(x[:1000])
    s.reset()
    assert (s.frames_total, s.samples_total, s.ready) == (0, 0, False)
    np.testing.assert_array_equal(s.push(x), log_mel(x, CFG))


@pytest.mark.parametrize("kw,message", [
    (dict(sample_rate=0), "sample_rate must be positive. Received: sample_rate=0"),
    (dict(win_length=0), "win_length must be in (0, n_fft]. Received: win_length=0, n_fft=512"),
    (dict(hop_length=0), "hop_length must be positive. Received: hop_length=0"),
    (dict(n_mels=0), "n_mels must be positive. Received: n_mels=0"),
    (dict(fmax_hz=9000.0), "need 0 <= fmin_hz < fmax_hz <= sample_rate/2. Received: fmin_hz=50.0, fmax_hz=9000.0, "
                           "sample_rate=16000"),
    (dict(log_offset=0.0), "log_offset must be positive. Received: log_offset=0.0"),
])
def test_feature_setting_messages(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        FeatureConfig(**kw)
    assert str(err.value) == message


def test_smallest_feature_settings_and_messages() -> None:
    FeatureConfig(sample_rate=1, fmin_hz=0.0, fmax_hz=0.5, n_fft=4, win_length=1, hop_length=1, n_mels=1)
    StreamingLogMel(CFG, window_frames=1)
    with pytest.raises(ConfigError) as err:
        StreamingLogMel(CFG, window_frames=0)
    assert str(err.value) == "window_frames must be positive. Received: 0"
    with pytest.raises(ConfigError) as err:
        log_mel(np.zeros((3, 2), np.float32), CFG)
    assert str(err.value) == "log_mel takes mono audio (1-D). Received shape (3, 2)"
    with pytest.raises(ConfigError) as err:
        StreamingLogMel(CFG, window_frames=1).push(np.zeros((3, 2), np.float32))
    assert str(err.value) == "StreamingLogMel takes mono audio (1-D). Received shape (3, 2)"
