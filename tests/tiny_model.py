"""A tiny, hand-weighted model bundle for tests (no training, no shared data).

Average log-mel over time, then one dense layer whose weights favour
``angry`` for high-frequency sound, ``calm`` for low-frequency sound and
``happy`` for the middle bands.  So a 3 kHz tone reads as angry and a 200 Hz
tone as calm: tests can check that the daemon follows what it hears.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser_daemon.core.features import FeatureConfig, mel_filterbank
from ser_daemon.model.bundle import write_metadata

LABELS = ("neutral", "calm", "happy", "angry")
WINDOW_S = 1.0


def build_tiny_bundle(directory: Path, window_s: float = WINDOW_S, profiles: bool = False) -> Path:
    """Write ser_model.json, model.keras and model.tflite into ``directory``.

    With ``profiles``: as ``ser-train`` exports today, the LiteRT model also gives
    the head's input (the time-averaged log-mel, layer "gap") and the metadata
    carries a flat speaker-normalisation prior and the head, so personal
    profiles can be made for it.  A flat prior changes no output (each class's
    weights sum to zero over the bands), so the model reads tones as above.
    """
    import keras
    import tensorflow as tf

    cfg = FeatureConfig()
    frames = int((window_s * cfg.sample_rate - cfg.n_fft) // cfg.hop_length + 1)
    # Band centre frequencies to decide which bands count as low / mid / high.
    fb = mel_filterbank(cfg)  # (bins, mels)
    freqs = np.linspace(0, cfg.sample_rate / 2, fb.shape[0])
    centres = (fb * freqs[:, None]).sum(axis=0) / np.maximum(fb.sum(axis=0), 1e-9)
    low = (centres < 500).astype(np.float32)
    mid = ((centres >= 700) & (centres < 1800)).astype(np.float32)
    high = (centres >= 2200).astype(np.float32)
    k = 0.5
    w = np.zeros((cfg.n_mels, len(LABELS)), dtype=np.float32)
    w[:, 1] = k * (low / low.sum() - high / high.sum()) * 10
    w[:, 2] = k * (mid / mid.sum() - (low + high) / (low + high).sum()) * 10
    w[:, 3] = k * (high / high.sum() - low / low.sum()) * 10
    b = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)

    inp = keras.Input(shape=(frames, cfg.n_mels), name="logmel")
    x = keras.layers.GlobalAveragePooling1D(name="gap")(inp)
    out = keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(x)
    model = keras.Model(inp, out, name="tiny_test_model")
    model.get_layer("probs").set_weights([w, b])

    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    served = keras.Model(inp, [out, x]) if profiles else model
    tflite = tf.lite.TFLiteConverter.from_keras_model(served).convert()
    (directory / "model.tflite").write_bytes(tflite)
    extra, norm = None, None
    if profiles:
        from ser_daemon.core.head import LinearHead
        from ser_daemon.core.speaker_norm import SpeakerNormSettings

        extra = {"head": LinearHead(w, b).to_dict()}
        norm = SpeakerNormSettings(prior=(-10.0,) * cfg.n_mels)
    write_metadata(directory, name="tiny-test-profiles" if profiles else "tiny-test", labels=LABELS, features=cfg,
                   window_s=window_s, extra=extra, speaker_norm=norm)
    return directory


def tone(freq_hz: float, seconds: float, rate: int = 16000, level: float = 0.3) -> np.ndarray:
    """A sine tone with 10 ms fades (float32 mono)."""
    t = np.arange(int(seconds * rate)) / rate
    x = level * np.sin(2 * np.pi * freq_hz * t)
    fade = min(len(x) // 2, int(0.01 * rate))
    if fade:
        ramp = np.linspace(0, 1, fade)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    return x.astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """Write float samples as 16-bit PCM WAV."""
    from scipy.io import wavfile

    data = np.clip(samples, -1, 1)
    wavfile.write(str(path), rate, (data * 32767).astype(np.int16))
    return path


# A mood arc for --mood in seconds (short horizons; thresholds otherwise the shipped ones): with
# mood_arc_wav the tiny model reads calm (delighted, low-arousal disengaging), then angry
# (frustration_rising), then silence.
MOOD_ARC_TOML = """\
[mood]
enabled = true
minute_s = 5
min_voiced_s = 1
frustration_trend_s = 2
cooldown_s = 5
"""


def mood_arc_wav(path: Path) -> Path:
    """3 s calm tone, 6 s angry tone, 1.5 s silence, for the tiny model with :data:`MOOD_ARC_TOML`."""
    return write_wav(path, np.concatenate([tone(200, 3.0), tone(3000, 6.0), np.zeros(24000, dtype=np.float32)]))
