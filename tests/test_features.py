import numpy as np
import pytest

from ser_daemon.cli import demo_recording
from ser_daemon.errors import ConfigError
from ser_daemon.features import FeatureConfig, StreamingLogMel, frames_for_samples, log_mel, mel_filterbank
from ser_daemon.sources import read_wav

CFG = FeatureConfig()


def speech() -> np.ndarray:
    """Real speech: the bundled espeak-ng demo recording (16 kHz mono)."""
    x, rate = read_wav(demo_recording())
    assert rate == 16000
    return x[:, 0]


def test_matches_librosa_on_real_speech() -> None:
    librosa = pytest.importorskip("librosa")
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
    librosa = pytest.importorskip("librosa")
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
