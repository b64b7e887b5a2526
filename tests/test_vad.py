import numpy as np

from ser_daemon.config import VadSettings
from ser_daemon.features import FeatureConfig, log_mel
from ser_daemon.vad import VoiceActivityGate, frame_levels, _calibration_db
from test_features import speech

CFG = FeatureConfig()


def run_gate(x: np.ndarray, hop: int = 4000) -> list[bool]:
    gate = VoiceActivityGate(CFG, VadSettings())
    frames = log_mel(x, CFG)
    out = []
    per = hop // CFG.hop_length
    for i in range(0, len(frames), per):
        out.append(gate.update(frames[i : i + per]))
    return out


def test_levels_read_dbfs() -> None:
    t = np.arange(16000) / 16000
    sine = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)  # RMS 0.354 = -9.0 dBFS
    level, flat = frame_levels(log_mel(sine, CFG), CFG, _calibration_db(CFG))
    # Mel weighting tilts narrow-band levels by a few dB; the gate only needs the rough scale.
    assert abs(np.median(level) - (-9.03)) < 6.0
    assert np.median(flat) < 0.1  # a tone is anything but flat


def test_silence_is_not_voice() -> None:
    assert not any(run_gate(np.zeros(16000 * 3, np.float32)))


def test_steady_noise_is_not_voice() -> None:
    rng = np.random.default_rng(3)
    noise = (rng.standard_normal(16000 * 6) * 0.05).astype(np.float32)  # -26 dBFS hiss
    assert not any(run_gate(noise))


def test_steady_hum_becomes_floor() -> None:
    t = np.arange(16000 * 20) / 16000
    hum = (0.01 * np.sin(2 * np.pi * 120 * t)).astype(np.float32)  # a mains hum at -43 dBFS
    decisions = run_gate(hum)
    assert not any(decisions[-20:])  # after the floor has risen to it


def test_speech_opens_the_gate_and_hangover_closes_it() -> None:
    x = speech()
    quiet = np.zeros(16000 * 2, np.float32)
    decisions = run_gate(np.concatenate([quiet, x[: 16000 * 2], quiet]))
    # 8 hops of silence, 8 of speech, 8 of silence (250 ms hops)
    assert not any(decisions[:8])
    assert sum(decisions[8:16]) >= 6
    assert not any(decisions[-5:])


def test_speech_under_noise_still_detected() -> None:
    rng = np.random.default_rng(4)
    x = speech()[: 16000 * 4]
    noise = (rng.standard_normal(16000 * 8) * 0.01).astype(np.float32)
    mix = noise.copy()
    mix[16000 * 4 :] += x
    decisions = run_gate(mix)
    assert not any(decisions[4:16])
    assert sum(decisions[16:]) >= 10
