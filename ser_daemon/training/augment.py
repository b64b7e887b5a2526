"""Augmentation that imitates headset use, all driven by a seeded ``numpy`` Generator.

Waveform side (applied before features, see :func:`augment_waveform`): speed
perturbation (tempo and pitch together), headset/room coloration (random
high-pass / low-pass / peaking EQ, or a short synthetic room impulse
response), additive noise (white, pink or brown) at several SNRs, gain, and
optionally an Ogg Opus round trip (what voice chat does to the voice).
Small time shifts come from jittering where windows are cut.

Feature side: :func:`spec_augment` masks random time and mel bands of a
batch, filling with each window's mean (which the model's per-window
normalisation maps to zero).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.signal

__all__ = ["AugmentConfig", "augment_waveform", "spec_augment", "colored_noise", "warp_mels", "mix_speakers",
           "opus_round_trip"]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges.

    Attributes:
        copies: augmented versions per clip (besides the clean one).
        gain_db: range of gain, decibels.
        snr_db: SNRs to draw from, decibels; ``None`` entries mean no noise.
        speed: range of speed factors (1.1 = 10 % faster and higher).
        p_eq: probability of a random headset EQ.
        p_rir: probability of a synthetic room impulse response.
        rt60_s: range of the synthetic room's reverberation time, seconds.
        shift_s: largest random shift of the window grid, seconds.
        time_masks: SpecAugment time masks per window.
        time_mask_frames: largest time mask, frames.
        freq_masks: SpecAugment mel masks per window.
        freq_mask_bands: largest mel mask, bands.
        mel_warp: range of a per-window stretch of the mel axis, drawn every
            epoch ((1, 1): none).  The CNN learns the training speakers'
            formants and pitch by heart (91 % clip accuracy on them, 57 % on
            new ones); stretching the spectrum makes every window a slightly
            different vocal tract, so cues that hold across voices win.
        mix_speakers: share of windows, every epoch, averaged (in the log-mel
            domain, the window itself weighing 0.5-1) with a window of the same
            emotion from another speaker: a voice no training speaker has,
            saying the same emotion, so what is left to learn is the emotion.
        mixup: Beta(alpha, alpha) parameter of mixup, every epoch (0: none):
            each window is averaged with another window of the batch, any
            emotion and speaker, and its target with that window's target by
            the same weight (the window itself weighing at least half, so its
            own label stays the largest).  Soft targets between emotions keep
            the network from being sure of the training voices' quirks.
        p_opus: probability that an augmented copy goes through an Ogg Opus
            encoder and decoder, last (after noise and gain, as a voice chat
            client codes what the microphone gives it).  nEMO is Opus-coded
            and the other corpora are not: without it the codec's mark on the
            upper bands (2.5 dB at 6-8 kHz) is one more way to tell the
            corpora, and so their class sets, apart.
        opus_level: range of libsndfile's compression level for that encoder
            (0.75 is about 70 kbit/s on speech, 0.92 about 16 kbit/s).
    """

    copies: int = 3
    gain_db: tuple[float, float] = (-18.0, 6.0)
    snr_db: tuple[float | None, ...] = (None, 30.0, 20.0, 15.0, 10.0, 5.0)
    speed: tuple[float, float] = (0.9, 1.1)
    p_eq: float = 0.6
    p_rir: float = 0.3
    rt60_s: tuple[float, float] = (0.1, 0.5)
    shift_s: float = 0.25
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bands: int = 8
    mel_warp: tuple[float, float] = (1.0, 1.0)
    mix_speakers: float = 0.0
    time_reverse: float = 0.0
    mixup: float = 0.0
    p_opus: float = 0.0
    opus_level: tuple[float, float] = (0.75, 0.92)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AugmentConfig":
        d = dict(data)
        for k in ("gain_db", "snr_db", "speed", "rt60_s", "mel_warp", "opus_level"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    white = rng.standard_normal(n)
    if exponent == 0:
        out = white
    else:
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (exponent / 2)
        out = np.fft.irfft(spec, n)
    out = out - out.mean()
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


def _peaking_sos(f0: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    # RBJ audio-EQ-cookbook peaking filter as one second-order section.
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def _headset_eq(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    sections = [scipy.signal.butter(2, rng.uniform(80, 400), "highpass", fs=sr, output="sos")]
    if rng.random() < 0.6:
        sections.append(scipy.signal.butter(4, rng.uniform(3400, 7500), "lowpass", fs=sr, output="sos"))
    for _ in range(rng.integers(1, 3)):
        sections.append(_peaking_sos(rng.uniform(300, 5000), rng.uniform(-8, 8), rng.uniform(0.7, 2.0), sr))
    return scipy.signal.sosfilt(np.concatenate(sections), x).astype(np.float32)


def _room(x: np.ndarray, sr: int, rng: np.random.Generator, rt60: tuple[float, float]) -> np.ndarray:
    t60 = rng.uniform(*rt60)
    n = max(16, int(t60 * sr))
    t = np.arange(n) / sr
    rir = rng.standard_normal(n) * np.exp(-6.9078 * t / t60)  # -60 dB at t60
    rir[: int(0.002 * sr)] = 0.0  # a little gap after the direct sound
    rir *= rng.uniform(0.2, 0.7) / (np.sqrt(np.sum(rir**2)) + 1e-12)
    rir[0] = 1.0
    y = scipy.signal.fftconvolve(x, rir)[: len(x)]
    peak = np.max(np.abs(y)) + 1e-9
    return (y * (np.max(np.abs(x)) / peak)).astype(np.float32)


def opus_round_trip(x: np.ndarray, sample_rate: int, level: float) -> np.ndarray:
    """``x`` after an Ogg Opus encoder (libsndfile, compression ``level`` in [0, 1]) and decoder.

    Done in memory; libsndfile drops the codec's pre-skip, so the samples stay
    aligned with ``x`` and the result has its length.  ``soundfile`` (the
    ``train`` extra) is imported here, so nothing else in training needs it.
    """
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0).astype(np.float32), sample_rate, format="OGG", subtype="OPUS",
             compression_level=float(level))
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    out = np.zeros(len(x), dtype=np.float32)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def augment_waveform(
    x: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    speech: tuple[int, int] | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """One random headset-like version of ``x`` and where its speech now is.

    Args:
        x: mono float32 audio.
        sample_rate: Hertz.
        rng: the generator all randomness comes from.
        cfg: ranges.
        speech: ``(start, end)`` of the speech in ``x`` (for the SNR and for
            tracking the speech through the speed change); whole clip if None.
    """
    s, e = speech if speech is not None else (0, len(x))
    y = x.astype(np.float32)
    speed = rng.uniform(*cfg.speed)
    if abs(speed - 1.0) > 0.005:
        up, down = 100, int(round(100 * speed))
        y = scipy.signal.resample_poly(y, up, down).astype(np.float32)
        s, e = int(s * up / down), int(e * up / down)
    if rng.random() < cfg.p_eq:
        y = _headset_eq(y, sample_rate, rng)
    if rng.random() < cfg.p_rir:
        y = _room(y, sample_rate, rng, cfg.rt60_s)
    snr = cfg.snr_db[rng.integers(len(cfg.snr_db))]
    if snr is not None:
        seg = y[s:e] if e > s else y
        p_speech = float(np.mean(seg.astype(np.float64) ** 2)) + 1e-12
        noise = colored_noise(len(y), rng, float(rng.choice([0.0, 1.0, 2.0])))
        y = y + noise * np.float32(np.sqrt(p_speech / 10 ** (snr / 10)))
    y = np.clip(y * np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20)), -1.0, 1.0)
    if cfg.p_opus > 0 and rng.random() < cfg.p_opus:  # no draw when off: earlier recipes stay as they were
        y = opus_round_trip(y, sample_rate, rng.uniform(*cfg.opus_level))
    return y.astype(np.float32), (s, min(e, len(y)))


def spec_augment(batch: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """SpecAugment masks on a copy of ``batch`` ``(n, frames, n_mels)``."""
    out = np.array(batch, dtype=np.float32, copy=True)
    n, frames, mels = out.shape
    if cfg.mel_warp[0] != cfg.mel_warp[1] or cfg.mel_warp[0] != 1.0:
        out = warp_mels(out, rng.uniform(cfg.mel_warp[0], cfg.mel_warp[1], n))
    if cfg.time_reverse > 0:
        backwards = rng.random(n) < cfg.time_reverse
        out[backwards] = out[backwards, ::-1, :]
    fill = out.mean(axis=(1, 2))
    for i in range(n):
        for _ in range(cfg.time_masks):
            w = int(rng.integers(0, cfg.time_mask_frames + 1))
            t0 = int(rng.integers(0, max(1, frames - w)))
            out[i, t0 : t0 + w, :] = fill[i]
        for _ in range(cfg.freq_masks):
            w = int(rng.integers(0, cfg.freq_mask_bands + 1))
            f0 = int(rng.integers(0, max(1, mels - w)))
            out[i, :, f0 : f0 + w] = fill[i]
    return out


def warp_mels(batch: np.ndarray, factors: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Stretch each window's mel axis by its factor (> 1 moves energy up), linear interpolation.

    Band ``j`` of the result reads band ``j / factor`` of the input; bands past the
    top repeat the last one.
    """
    n, _, mels = batch.shape
    out = np.empty(batch.shape, np.float32)
    idx = np.arange(mels, dtype=np.float64)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        src = np.clip(idx[None, :] / np.asarray(factors[a:b], np.float64)[:, None], 0, mels - 1)
        i0 = np.floor(src).astype(np.intp)
        i1 = np.minimum(i0 + 1, mels - 1)
        w = (src - i0).astype(np.float32)[:, None, :]
        x = batch[a:b].astype(np.float32, copy=False)
        lo = np.take_along_axis(x, i0[:, None, :], axis=2)
        hi = np.take_along_axis(x, i1[:, None, :], axis=2)
        out[a:b] = lo + w * (hi - lo)
    return out


def mixup(batch: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
          alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018) of windows and their targets, in the log-mel domain.

    Each window ``i`` becomes ``lam_i * x_i + (1 - lam_i) * x_p(i)`` for a random
    partner ``p(i)`` of the batch, its target likewise; ``lam_i`` is drawn from
    Beta(alpha, alpha) and folded into [0.5, 1].  Returns copies.
    """
    x = np.asarray(batch, dtype=np.float32)
    y = np.asarray(targets, dtype=np.float32)
    if alpha <= 0:
        return x.copy(), y.copy()
    partner = rng.permutation(len(x))
    lam = rng.beta(alpha, alpha, len(x)).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)
    # float32 throughout (lam is float32), so the mix is built once, not copied again
    mixed_x = lam[:, None, None] * x + (1.0 - lam[:, None, None]) * x[partner]
    mixed_y = lam[:, None] * y + (1.0 - lam[:, None]) * y[partner]
    return mixed_x, mixed_y


def mix_speakers(batch: np.ndarray, labels: np.ndarray, speakers: np.ndarray, rng: np.random.Generator,
                 share: float) -> np.ndarray:
    """``share`` of the windows averaged with a same-label window of another speaker (a copy).

    Each chosen window keeps a weight drawn from [0.5, 1); windows whose label
    no other speaker has are left alone.
    """
    out = np.array(batch, dtype=np.float32, copy=True)
    if share <= 0:
        return out
    labels = np.asarray(labels)
    speakers = np.asarray(speakers)
    chosen = np.nonzero(rng.random(len(out)) < share)[0]
    by_label = {lab: np.nonzero(labels == lab)[0] for lab in np.unique(labels)}
    for i in chosen:
        pool = by_label[labels[i]]
        partner = pool[rng.integers(len(pool))]
        for _ in range(8):  # another speaker, a few draws at most
            if speakers[partner] != speakers[i]:
                break
            partner = pool[rng.integers(len(pool))]
        else:
            continue
        lam = np.float32(rng.uniform(0.5, 1.0))
        out[i] = lam * out[i] + (1 - lam) * np.asarray(batch[partner], np.float32)
    return out
