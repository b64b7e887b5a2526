"""Log-mel features: one definition shared by training and streaming inference.

The model only ever sees what :func:`log_mel` produces.  Training cuts windows
from clips and calls :func:`log_mel` on them; the daemon feeds audio hop by hop
into :class:`StreamingLogMel`, which computes only the frames each hop adds and
keeps them in a bounded frame ring.  Frames sit on a fixed grid anchored at the
stream's first sample (frame ``k`` covers samples ``[k*hop, k*hop + n_fft)``),
so a streaming window that ends on a hop boundary is bit-for-bit the batch
features of the same samples (``tests/unit/core/test_features.py`` checks this, and
checks :func:`log_mel` against librosa).

Everything here is pure numpy/scipy: no I/O, no clocks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import scipy.fft

from ..errors import ConfigError
from .audio_format import AudioFormat

__all__ = [
    "FeatureConfig",
    "mel_filterbank",
    "log_mel",
    "StreamingLogMel",
    "frames_for_samples",
]


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the log-mel front end; stored with every model.

    Attributes:
        sample_rate: Hertz of the audio the model consumes (mono).
        n_fft: samples per analysis frame (the FFT size).
        win_length: samples of the Hann window, centred and zero-padded to ``n_fft``.
        hop_length: samples between frame starts.
        n_mels: mel bands.
        fmin_hz: lowest mel band edge, Hertz.
        fmax_hz: highest mel band edge, Hertz (at most ``sample_rate / 2``).
        log_offset: added to mel power before the natural log, so silence stays finite.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin_hz: float = 50.0
    fmax_hz: float = 8000.0
    log_offset: float = 1e-6

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be positive. Received: sample_rate={self.sample_rate}")
        if not 0 < self.win_length <= self.n_fft:
            raise ConfigError(
                f"win_length must be in (0, n_fft]. Received: win_length={self.win_length}, n_fft={self.n_fft}"
            )
        if not 0 < self.hop_length:
            raise ConfigError(f"hop_length must be positive. Received: hop_length={self.hop_length}")
        if self.n_mels <= 0:
            raise ConfigError(f"n_mels must be positive. Received: n_mels={self.n_mels}")
        if not 0 <= self.fmin_hz < self.fmax_hz <= self.sample_rate / 2:
            raise ConfigError(
                "need 0 <= fmin_hz < fmax_hz <= sample_rate/2. "
                f"Received: fmin_hz={self.fmin_hz}, fmax_hz={self.fmax_hz}, sample_rate={self.sample_rate}"
            )
        if self.log_offset <= 0:
            raise ConfigError(f"log_offset must be positive. Received: log_offset={self.log_offset}")

    @property
    def audio_format(self) -> AudioFormat:
        """What the front end consumes: mono float32 at :attr:`sample_rate`."""
        return AudioFormat(int(self.sample_rate))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown feature settings {unknown}; known: {sorted(known)}")
        return cls(**dict(data))


def frames_for_samples(n_samples: int, cfg: FeatureConfig) -> int:
    """How many whole frames ``n_samples`` samples hold (no centre padding)."""
    if n_samples < cfg.n_fft:
        return 0
    return 1 + (n_samples - cfg.n_fft) // cfg.hop_length


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    # Slaney's auditory-toolbox scale (librosa's default, htk=False):
    # linear below 1 kHz, logarithmic above.
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = hz / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-12) / min_log_hz) / logstep, mels)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


@lru_cache(maxsize=16)
def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape ``(n_fft // 2 + 1, n_mels)``.

    Built by hand (not from librosa) so the runtime needs only numpy; it matches
    ``librosa.filters.mel(..., htk=False, norm="slaney")``.
    """
    n_bins = cfg.n_fft // 2 + 1
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2, n_bins)
    mel_points = np.linspace(_hz_to_mel(cfg.fmin_hz), _hz_to_mel(cfg.fmax_hz), cfg.n_mels + 2)
    hz_points = _mel_to_hz(mel_points)
    fdiff = np.diff(hz_points)
    ramps = hz_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (hz_points[2 : cfg.n_mels + 2] - hz_points[: cfg.n_mels])
    weights *= enorm[:, None]
    filters = np.ascontiguousarray(weights.T.astype(np.float32))
    filters.setflags(write=False)
    return filters


@lru_cache(maxsize=16)
def _window(cfg: FeatureConfig) -> np.ndarray:
    # Periodic Hann window, as scipy.signal.get_window("hann", n, fftbins=True) and librosa use.
    win = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(cfg.win_length) / cfg.win_length)).astype(np.float32)
    pad = (cfg.n_fft - cfg.win_length) // 2
    full = np.zeros(cfg.n_fft, dtype=np.float32)
    full[pad : pad + cfg.win_length] = win
    full.setflags(write=False)
    return full


def _frames_to_log_mel(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    spectrum = scipy.fft.rfft(frames * _window(cfg), n=cfg.n_fft, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = power.astype(np.float32) @ mel_filterbank(cfg)
    log_mel_frames: np.ndarray = np.log(mel + np.float32(cfg.log_offset)).astype(np.float32)
    return log_mel_frames


def log_mel(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel spectrogram of mono audio, shape ``(frames, n_mels)``, float32.

    No centre padding: frame ``k`` covers ``samples[k*hop : k*hop + n_fft]`` and
    a trailing partial frame is not computed.  Audio is expected in [-1, 1].

    Raises:
        ConfigError: if ``samples`` is not one-dimensional.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ConfigError(f"log_mel takes mono audio (1-D). Received shape {x.shape}")
    n = frames_for_samples(len(x), cfg)
    if n == 0:
        return np.zeros((0, cfg.n_mels), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.n_fft)[:: cfg.hop_length][:n]
    return _frames_to_log_mel(frames, cfg)


class StreamingLogMel:
    """Incremental :func:`log_mel` with a bounded ring of the newest frames.

    ``push`` accepts any number of samples and computes only the frames they
    complete; the leftover (at most ``n_fft - 1`` samples plus a partial hop) is
    carried to the next call.  ``window()`` returns the newest ``window_frames``
    frames in time order.
    """

    def __init__(self, cfg: FeatureConfig, window_frames: int) -> None:
        if window_frames <= 0:
            raise ConfigError(f"window_frames must be positive. Received: {window_frames}")
        self.cfg = cfg
        self.window_frames = window_frames
        self._ring = np.zeros((window_frames, cfg.n_mels), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_total = 0  # frames computed since the last reset
        self.samples_total = 0  # samples pushed since the last reset

    def reset(self) -> None:
        """Forget all audio, e.g. after a gap in the input."""
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_total = 0
        self.samples_total = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; return the frames they completed, shape ``(k, n_mels)``."""
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise ConfigError(f"StreamingLogMel takes mono audio (1-D). Received shape {x.shape}")
        self.samples_total += len(x)
        buf = np.concatenate((self._pending, x)) if len(self._pending) else x
        new = log_mel(buf, self.cfg)
        k = len(new)
        # Keep the samples that later frames still need: from the start of frame k.
        self._pending = buf[k * self.cfg.hop_length :].copy()
        if k:
            self._store(new)
        return new

    def _store(self, frames: np.ndarray) -> None:
        cap = self.window_frames
        if len(frames) > cap:
            # Only the newest `cap` frames fit; the rest still count as computed.
            self.frames_total += len(frames) - cap
            frames = frames[-cap:]
        idx = (self.frames_total + np.arange(len(frames))) % cap
        self._ring[idx] = frames
        self.frames_total += len(frames)

    @property
    def ready(self) -> bool:
        """Whether a full window of frames is available."""
        return self.frames_total >= self.window_frames

    def window(self) -> np.ndarray:
        """Newest ``window_frames`` frames in time order, a fresh array."""
        cap = self.window_frames
        start = self.frames_total % cap
        return np.concatenate((self._ring[start:], self._ring[:start]))
