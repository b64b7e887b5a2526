import numpy as np
import pytest

from ser_daemon.core.settings import VadSettings
from ser_daemon.core.features import FeatureConfig, log_mel
from ser_daemon.core.vad import VoiceActivityGate, frame_levels, _calibration_db
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


# -- exact boundaries on hand-made log-mel frames (explicit settings) ---------------------------

SETTINGS = VadSettings(vad_threshold_db=9.0, vad_min_level_dbfs=-55.0, vad_max_flatness=0.55,
                       vad_hangover_ms=500.0, vad_min_speech_ms=40.0, vad_floor_rise_db_per_s=3.0)
CAL = _calibration_db(CFG)


def frames(level_dbfs: float, n: int, flat: bool = False) -> np.ndarray:
    """``n`` log-mel frames at ``level_dbfs``: voiced (power in 4 bands) or flat (power in every band)."""
    total = 10.0 ** ((level_dbfs - CAL) / 10.0)
    power = np.zeros(CFG.n_mels)
    bands = slice(None) if flat else slice(10, 14)
    power[bands] = total / len(power[bands])
    return np.tile(np.log(power + CFG.log_offset), (n, 1)).astype(np.float32)


def silence(n: int) -> np.ndarray:
    return frames(-140.0, n, flat=True)


def gate(**kw: float) -> VoiceActivityGate:
    return VoiceActivityGate(CFG, VadSettings(**{**SETTINGS.__dict__, **kw}))


def test_hand_made_frames_read_their_level_and_flatness() -> None:
    level, flat = frame_levels(np.concatenate([frames(-20.0, 1), frames(-30.0, 1, flat=True)]), CFG, CAL)
    np.testing.assert_allclose(level, [-20.0, -30.0], atol=1e-3)
    assert flat[1] == pytest.approx(1.0, abs=1e-6) and flat[0] < 1e-6
    lv, _ = frame_levels(frames(-20.0, 1), CFG, 0.0)
    assert lv[0] == pytest.approx(-20.0 - CAL, abs=1e-3)


def test_calibration_reads_white_noise_in_dbfs() -> None:
    noise = (np.random.default_rng(7).standard_normal(32000) * 10 ** (-30 / 20)).astype(np.float32)
    level, flat = frame_levels(log_mel(noise, CFG), CFG, CAL)
    assert np.mean(level) == pytest.approx(-30.0, abs=0.5)
    assert np.median(flat) > 0.55  # white noise is flat


@pytest.mark.parametrize("min_speech_ms,frames_needed", [(40.0, 4), (35.0, 4), (10.0, 1), (100.0, 10)])
def test_min_speech_boundary_is_exact(min_speech_ms: float, frames_needed: int) -> None:
    short = gate(vad_min_speech_ms=min_speech_ms)
    short.update(silence(20))
    assert short.update(frames(-20.0, frames_needed - 1)) is False  # one frame short: closed
    enough = gate(vad_min_speech_ms=min_speech_ms)
    enough.update(silence(20))
    assert enough.update(frames(-20.0, frames_needed)) is True
    assert enough.active is True


def test_level_floor_keeps_quiet_sounds_out() -> None:
    """Far above the room's floor is not enough: speech must also reach vad_min_level_dbfs."""
    quiet = gate()
    quiet.update(silence(20))
    assert quiet.update(frames(-56.0, 10)) is False
    loud = gate()
    loud.update(silence(20))
    assert loud.update(frames(-54.0, 10)) is True
    lower = gate(vad_min_level_dbfs=-60.0)
    lower.update(silence(20))
    assert lower.update(frames(-56.0, 10)) is True


def test_flat_sounds_are_not_voice() -> None:
    g = gate()
    g.update(silence(20))
    assert g.update(frames(-20.0, 10, flat=True)) is False
    # Half the bands 9x stronger than the others: flatness exactly 3/5 = 0.6.
    half = frames(-20.0, 10, flat=True)
    half[:, ::2] += np.float32(np.log(9.0))
    _, flat = frame_levels(half, CFG, CAL)
    assert flat[0] == pytest.approx(0.6, abs=1e-4)
    assert gate(vad_max_flatness=0.55).update(half) is False
    assert gate(vad_max_flatness=0.65).update(half) is True


def test_threshold_above_the_floor() -> None:
    g = gate(vad_threshold_db=9.0, vad_floor_rise_db_per_s=0.01)
    g.update(frames(-40.0, 5))  # the floor starts at min level - threshold = -64 dB and rises slowly
    assert g.noise_floor_db == pytest.approx(-64.0 + 5 * 0.01 * 0.01, abs=1e-9)
    assert g.active is True  # -40 is 24 dB above the floor
    # A fast-rising floor settles on a steady flat sound at -40 dB; the next frame is compared with
    # that floor plus one frame's rise (1 dB) plus the threshold: -30 dB.
    fast = dict(vad_threshold_db=9.0, vad_floor_rise_db_per_s=100.0, vad_min_speech_ms=10.0)
    below, above = gate(**fast), gate(**fast)
    for g2 in (below, above):
        g2.update(frames(-40.0, 30, flat=True))
        assert g2.noise_floor_db == pytest.approx(-40.0, abs=1e-3) and g2.active is False
    assert below.update(frames(-30.5, 1)) is False
    assert above.update(frames(-29.5, 1)) is True
    above.reset()
    assert above.noise_floor_db == -64.0 and above.active is False and above.last_level_db == -np.inf
    assert above.update(np.zeros((0, CFG.n_mels), np.float32)) is False  # the recent speech was forgotten too


def test_floor_rises_at_the_set_rate() -> None:
    g = gate(vad_floor_rise_db_per_s=3.0)
    g.update(frames(-30.0, 100))  # 1 s of a steady sound, far above the -64 dB start
    assert g.noise_floor_db == pytest.approx(-64.0 + 3.0, abs=1e-6)
    assert g.last_level_db == pytest.approx(-30.0, abs=1e-3)
    one_by_one = gate(vad_floor_rise_db_per_s=3.0)
    for _ in range(100):
        one_by_one.update(frames(-30.0, 1))
    assert one_by_one.noise_floor_db == pytest.approx(g.noise_floor_db, abs=1e-9)


@pytest.mark.parametrize("chunk", [1, 7, 60])
def test_hangover_closes_after_exactly_its_length(chunk: int) -> None:
    """With 500 ms hangover and 40 ms minimum, the gate stays open until fewer than 4 of the last 50 frames were speech."""
    g = gate()
    g.update(silence(20))
    g.update(frames(-20.0, 10))
    for start in range(0, 46, chunk):
        g.update(silence(min(chunk, 46 - start)))
    assert g.active is True  # the last 4 speech frames are still inside the window
    assert g.update(silence(1)) is False
    assert g.update(np.zeros((0, CFG.n_mels), np.float32)) is False  # no frames: the verdict stands


def test_short_hangovers_round_to_whole_frames() -> None:
    """10 ms of hangover is one frame, 15 ms rounds to two (never zero frames)."""
    g = gate(vad_hangover_ms=10.0, vad_min_speech_ms=10.0)
    g.update(silence(20))
    assert g.update(frames(-20.0, 1)) is True
    assert g.update(silence(1)) is False
    g = gate(vad_hangover_ms=15.0, vad_min_speech_ms=10.0)
    g.update(silence(20))
    assert g.update(frames(-20.0, 1)) is True
    assert g.update(silence(1)) is True
    assert g.update(silence(1)) is False


def test_each_bound_is_inclusive() -> None:
    """A frame exactly at the level floor, the flatness limit or the threshold counts as speech."""
    voiced = frames(-30.0, 1)
    level, flat = frame_levels(voiced, CFG, CAL)
    at_floor = gate(vad_min_speech_ms=10.0, vad_min_level_dbfs=float(level[0]))
    at_floor.update(silence(5))
    assert at_floor.update(voiced) is True
    half = frames(-30.0, 1, flat=True)
    half[:, ::2] += np.float32(np.log(9.0))
    _, hflat = frame_levels(half, CFG, CAL)
    at_flatness = gate(vad_min_speech_ms=10.0, vad_max_flatness=float(hflat[0]))
    at_flatness.update(silence(5))
    assert at_flatness.update(half) is True
    # The threshold: learn the floor the gate has when the voiced frame arrives, then set the
    # threshold to exactly the distance (the floor does not depend on it once silence set it).
    quiet = frames(-100.0, 8, flat=True)
    loud = frames(-50.0, 1)
    (loud_db,), _ = frame_levels(loud, CFG, CAL)
    probe = gate(vad_min_speech_ms=10.0, vad_floor_rise_db_per_s=100.0)
    probe.update(quiet)
    probe.update(loud)
    thr = float(loud_db) - probe.noise_floor_db  # about 49 dB
    assert probe.noise_floor_db + thr == float(loud_db)
    exact = gate(vad_min_speech_ms=10.0, vad_floor_rise_db_per_s=100.0, vad_threshold_db=thr)
    exact.update(quiet)
    assert exact.update(loud) is True
    assert exact.noise_floor_db == probe.noise_floor_db


def test_the_per_frame_verdicts_are_those_of_the_last_update_and_none_after_a_reset() -> None:
    """What the utterance tracker reads: one bool per frame of the last push, nothing before the first."""
    g = gate()
    assert g.frame_speech.dtype == bool and g.frame_speech.shape == (0,)
    g.update(np.concatenate([silence(10), frames(-20.0, 30)]))
    assert g.frame_speech.dtype == bool and g.frame_speech.shape == (40,)
    assert not g.frame_speech[:10].any() and g.frame_speech[-1]
    g.reset()
    assert g.frame_speech.dtype == bool and g.frame_speech.shape == (0,)
