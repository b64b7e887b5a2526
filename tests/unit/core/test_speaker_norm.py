"""Per-speaker normalisation: exact running estimate, voice gating, per stream, neutral-then-angry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.errors import ConfigError, ModelError
from ser_daemon.core.features import FeatureConfig, log_mel
from ser_daemon.model.bundle import load_bundle
from ser_daemon.core.pipeline import StreamProcessor
from ser_daemon.core.speaker_norm import SpeakerNormalizer, SpeakerNormSettings, speaker_reference, voiced_frames
from tiny_model import tone

BANDS = 4


def settings(prior=(0.0,) * BANDS, prior_frames=10.0, max_frames=40.0) -> SpeakerNormSettings:
    return SpeakerNormSettings(prior=tuple(prior), prior_frames=prior_frames, max_frames=max_frames)


def frames(value, n: int) -> np.ndarray:
    return np.tile(np.asarray(value, np.float32), (n, 1))


def test_starts_at_the_prior_and_averages_voiced_frames_exactly() -> None:
    norm = SpeakerNormalizer(settings(prior=(1.0, 2.0, 3.0, 4.0)))
    np.testing.assert_array_equal(norm.reference, [1, 2, 3, 4])
    norm.update(frames([11.0, 12.0, 13.0, 14.0], 10), voice_active=True)
    # 10 prior frames + 10 voiced frames: the plain mean of both.
    np.testing.assert_allclose(norm.reference, [6, 7, 8, 9], rtol=1e-6)
    assert norm.weight_frames == 20 and norm.voiced_frames_seen == 10
    norm.update(frames([0.0] * BANDS, 20), voice_active=True)
    # Running mean while the memory fills: (20 * [6..9] + 20 * 0) / 40.
    np.testing.assert_allclose(norm.reference, [3, 3.5, 4, 4.5], rtol=1e-6)
    assert norm.weight_frames == 40


def test_after_the_memory_is_full_each_frame_weighs_one_over_max_frames() -> None:
    norm = SpeakerNormalizer(settings(max_frames=40.0))
    norm.update(frames([0.0] * BANDS, 30), voice_active=True)  # weight 40: full
    norm.update(frames([8.0] * BANDS, 10), voice_active=True)
    np.testing.assert_allclose(norm.reference, [2.0] * BANDS, rtol=1e-6)  # 0 * 30/40 + 8 * 10/40
    norm.update(frames([8.0] * BANDS, 4), voice_active=True)
    np.testing.assert_allclose(norm.reference, [2.0 + (8.0 - 2.0) * 4 / 40] * BANDS, rtol=1e-6)
    assert norm.weight_frames == 40


def test_closed_gate_and_quiet_frames_do_not_move_it() -> None:
    norm = SpeakerNormalizer(settings())
    norm.update(frames([5.0] * BANDS, 50), voice_active=False)
    np.testing.assert_array_equal(norm.reference, [0.0] * BANDS)
    # Frames 35 dB or more below the loudest of the push are gaps between words.
    loud = frames([2.0] * BANDS, 10)
    quiet = frames([2.0 - 36.0 * np.log(10) / 10] * BANDS, 10)
    assert len(voiced_frames(np.concatenate([loud, quiet]))) == 10
    norm.update(np.concatenate([loud, quiet]), voice_active=True)
    np.testing.assert_allclose(norm.reference, [1.0] * BANDS, rtol=1e-6)  # (10 * 0 + 10 * 2) / 20


def test_neutral_for_minutes_then_angry_still_reads_angry() -> None:
    """Minutes of neutral speech set the reference; a burst of anger is not normalised away."""
    cfg = SpeakerNormSettings(prior=(0.0,) * BANDS)  # the shipped memory: 300 prior frames, 6000 max
    norm = SpeakerNormalizer(cfg)
    neutral = np.array([-2.0, -3.0, -5.0, -7.0], np.float32)
    angry = np.array([0.0, -0.5, -1.0, -2.0], np.float32)  # louder, brighter
    for _ in range(180 * 4):  # three minutes of neutral speech, 25 frames per hop
        norm.update(frames(neutral, 25), voice_active=True)
    # The prior's share: 300 of 6000 frames once the memory is full (after 5700 voiced
    # frames), then shrinking by (1 - 25/6000) per hop over the remaining 492 hops.
    prior_share = 300 / 6000 * (1 - 25 / 6000) ** ((18000 - 5700) // 25)
    np.testing.assert_allclose(norm.reference, neutral * (1 - prior_share), rtol=1e-4)
    seen = []
    for _ in range(10 * 4):  # ten seconds of anger
        norm.update(frames(angry, 25), voice_active=True)
        seen.append(norm.normalize(angry[None])[0])
    # After 10 s of anger the normalised frame still carries 80+ % of the difference from neutral.
    remaining = seen[-1] / (angry - neutral)
    assert np.all(remaining > 0.8), remaining
    assert np.all(remaining < 0.9)  # and it does adapt (1000 of 6000 frames: about 15 %)


def test_reference_of_utterances_uses_their_voiced_frames() -> None:
    a = np.concatenate([frames([1.0] * BANDS, 5), frames([-30.0] * BANDS, 5)])
    b = frames([3.0] * BANDS, 15)
    np.testing.assert_allclose(speaker_reference([a, b]), [2.5] * BANDS)  # 5 ones and 15 threes
    with pytest.raises(ConfigError):
        speaker_reference([])


@pytest.mark.parametrize("bad", [
    {"prior": []}, {"prior": [1.0, float("nan")]}, {"prior": [1.0], "prior_frames": 0},
    {"prior": [1.0], "prior_frames": 10, "max_frames": 5}, {"prior": [1.0], "kind": "zscore"},
    {"prior": [1.0], "extra": 1}, {"prior": "abc"},
])
def test_bad_settings_are_refused(bad) -> None:
    with pytest.raises(ConfigError):
        SpeakerNormSettings.from_dict(bad)


def test_settings_round_trip() -> None:
    s = settings(prior=(1.5, 2.5, 3.5, 4.5))
    assert SpeakerNormSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


# -- in the pipeline ---------------------------------------------------------------------------

FEATURES = FeatureConfig()


def processor(stream: str = "s", prior: float = -8.0) -> StreamProcessor:
    sn = SpeakerNormSettings(prior=(prior,) * FEATURES.n_mels, prior_frames=100, max_frames=1000)
    return StreamProcessor(stream, ("neutral", "angry"), FEATURES, 1.0, AnalysisSettings(), 16000, speaker_norm=sn)


def feed_all(proc: StreamProcessor, x: np.ndarray, start: int = 0, block: int = 320) -> list:
    due = []
    for i in range(0, len(x), block):
        due += proc.feed(x[i : i + block], start + i, lambda _i: 0.0)
    return due


def test_windows_reach_the_model_normalised_and_each_stream_keeps_its_own() -> None:
    low, high = processor("a"), processor("b")
    due_low = feed_all(low, tone(200, 4.0))
    feed_all(high, tone(3000, 4.0))
    assert low.speaker is not None and high.speaker is not None
    assert low.speaker.voiced_frames_seen > 200 and high.speaker.voiced_frames_seen > 200
    # Each stream converges toward its own voice, not the other's.
    ref_low = log_mel(tone(200, 4.0), FEATURES)
    assert np.abs(low.speaker.reference - high.speaker.reference).max() > 5.0
    band_200 = int(np.argmax(ref_low.mean(axis=0)))
    assert low.speaker.reference[band_200] > high.speaker.reference[band_200]
    # What the model gets is the window minus the stream's reference at that moment.
    last = due_low[-1].window
    raw = low._mel.window()
    np.testing.assert_allclose(last, raw - low.speaker.reference[None, :], atol=1e-5)


def test_silence_does_not_train_the_reference() -> None:
    proc = processor()
    feed_all(proc, np.zeros(16000 * 3, np.float32))
    assert proc.speaker is not None and proc.speaker.voiced_frames_seen == 0
    np.testing.assert_array_equal(proc.speaker.reference, np.full(FEATURES.n_mels, -8.0, np.float32))


def test_reference_survives_a_gap_and_a_device_restart() -> None:
    proc = processor()
    feed_all(proc, tone(300, 3.0))
    assert proc.speaker is not None
    before = proc.speaker.reference.copy()
    seen = proc.speaker.voiced_frames_seen
    # An overrun (input indices jump) restarts the front end, and a device that went away
    # and came back (interrupt) does too: the speaker is the same, so the reference stays.
    proc.feed(np.zeros(320, np.float32), 10 * 16000, lambda _i: 0.0)
    proc.interrupt()
    proc.feed(np.zeros(320, np.float32), 20 * 16000, lambda _i: 0.0)
    np.testing.assert_array_equal(proc.speaker.reference, before)
    assert proc.speaker.voiced_frames_seen == seen
    feed_all(proc, tone(300, 2.0), start=30 * 16000)
    assert proc.speaker.voiced_frames_seen > seen


# -- in the bundle -----------------------------------------------------------------------------


def test_bundle_carries_the_settings_and_refuses_bad_ones(tiny_bundle: Path, tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(tiny_bundle, d)
    meta = json.loads((d / "ser_model.json").read_text())
    meta["speaker_norm"] = SpeakerNormSettings(prior=(-7.0,) * FEATURES.n_mels).to_dict()
    (d / "ser_model.json").write_text(json.dumps(meta))
    b = load_bundle(d)
    assert b.speaker_norm is not None and b.speaker_norm.prior == (-7.0,) * FEATURES.n_mels
    meta["speaker_norm"]["prior"] = [-7.0] * 3
    (d / "ser_model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="3 bands"):
        load_bundle(d)
    meta["speaker_norm"] = "yes"
    (d / "ser_model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="speaker_norm"):
        load_bundle(d)
