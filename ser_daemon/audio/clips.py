"""From a clip on disk to model inputs: load, trim silence, cut windows, log-mel.

Training and evaluation cut windows of exactly the daemon's window length and
compute features with :func:`ser_daemon.core.features.log_mel`, the function the
daemon uses, so the model sees in training what it sees when streaming.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import scipy.signal

from ..core.features import FeatureConfig, log_mel
from ..core.resample import downmix
from ..errors import AudioInputError
from .sources import read_wav

__all__ = ["TrimConfig", "COMPRESSED_SUFFIXES", "read_compressed", "load_audio", "speech_bounds", "window_starts", "cut_windows", "features_of"]


@dataclass(frozen=True)
class TrimConfig:
    """Energy-based silence trimming.

    Attributes:
        frame_ms: analysis frame for the energy envelope, milliseconds.
        threshold_db: frames quieter than the loudest frame by more than this
            are silence.
        margin_ms: kept around the detected speech, milliseconds.
    """

    frame_ms: float = 25.0
    threshold_db: float = 35.0
    margin_ms: float = 100.0


COMPRESSED_SUFFIXES = (".opus", ".ogg", ".oga", ".flac")


def read_compressed(path: str | Path) -> tuple[np.ndarray, int]:
    """Float32 ``(n, channels)`` samples and rate of an Ogg Opus/Vorbis or FLAC file.

    Corpora that would not fit the shared folder as WAV (nEMO) come as Opus;
    libsndfile reads them, and the wheels of ``soundfile`` bundle a libsndfile
    built with Opus, so no system codec is needed.

    Raises:
        AudioInputError: ``soundfile`` is missing, or the file is unreadable or empty.
    """
    try:
        import soundfile
    except ImportError as exc:  # the train/test extras install it
        raise AudioInputError(
            f"{path}: reading {Path(path).suffix} files needs the soundfile package "
            "(pip install 'ser-daemon[train]' or pip install soundfile)"
        ) from exc
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError for broken files
        raise AudioInputError(f"{path}: not a readable audio file ({type(exc).__name__}: {exc})") from None
    if data.shape[0] == 0:
        raise AudioInputError(f"{path}: the file holds no audio (0 samples)")
    if not np.all(np.isfinite(data)):
        raise AudioInputError(f"{path}: samples are NaN or infinite")
    return data, int(rate)


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 audio of ``path`` at ``sample_rate`` Hz (WAV, or Opus/Vorbis/FLAC via soundfile)."""
    compressed = Path(path).suffix.lower() in COMPRESSED_SUFFIXES
    data, rate = read_compressed(path) if compressed else read_wav(path)
    x = downmix(data) if data.ndim == 2 else data
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if rate != sample_rate:
        g = gcd(int(rate), int(sample_rate))
        x = scipy.signal.resample_poly(x, sample_rate // g, rate // g).astype(np.float32)
    return x


def speech_bounds(x: np.ndarray, sample_rate: int, cfg: TrimConfig = TrimConfig()) -> tuple[int, int]:
    """``(start, end)`` sample indices of the speech in ``x`` (end exclusive).

    Returns ``(0, len(x))`` when the clip is too short or silent throughout.
    """
    frame = max(1, int(sample_rate * cfg.frame_ms / 1000))
    n = len(x) // frame
    if n < 2:
        return 0, len(x)
    energy = np.square(x[: n * frame].astype(np.float64)).reshape(n, frame).mean(axis=1)
    db = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(db > db.max() - cfg.threshold_db)
    if len(loud) == 0 or db.max() < -90:
        return 0, len(x)
    margin = int(sample_rate * cfg.margin_ms / 1000)
    start = max(0, loud[0] * frame - margin)
    end = min(len(x), (loud[-1] + 1) * frame + margin)
    return int(start), int(end)


def window_starts(
    n_samples: int, bounds: tuple[int, int], window_samples: int, hop_samples: int, offset: int = 0,
    edge: float = 0.25,
) -> list[int]:
    """Start indices of windows covering the speech in ``bounds``.

    A window may begin ``edge`` of a window before the speech and end ``edge``
    after it (the daemon's windows also hold some silence around an
    utterance); speech shorter than a window gets one window centred on it.
    Starts are clamped to the clip; a clip shorter than a window gives ``[0]``
    (:func:`cut_windows` pads it).
    """
    if n_samples <= window_samples:
        return [0]
    s, e = bounds
    last_ok = n_samples - window_samples
    margin = int(round(edge * window_samples))
    lo = s - margin
    hi = e - window_samples + margin
    if hi <= lo:
        centre = (s + e) // 2 - window_samples // 2 + offset
        return [int(min(max(centre, 0), last_ok))]
    starts = np.arange(lo + offset % hop_samples, hi + 1, hop_samples)
    if len(starts) == 0:
        starts = np.array([lo])
    starts = np.clip(starts, 0, last_ok)
    return sorted(set(int(v) for v in starts))


def cut_windows(x: np.ndarray, starts: list[int], window_samples: int, pad_seed: int = 0) -> np.ndarray:
    """Windows ``(len(starts), window_samples)``; short clips padded with faint noise.

    Padding uses noise at about -80 dBFS rather than zeros: a live microphone
    never delivers digital silence, and exact zeros would give feature values
    the model never meets in the daemon.
    """
    if len(x) < window_samples:
        rng = np.random.default_rng(pad_seed)
        pad = window_samples - len(x)
        left = pad // 2
        noise = (rng.standard_normal(window_samples) * 1e-4).astype(np.float32)
        noise[left : left + len(x)] = x
        x = noise
    return np.stack([x[s : s + window_samples] for s in starts]).astype(np.float32)


def features_of(windows: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel of each window, ``(n, frames, n_mels)`` float32."""
    return np.stack([log_mel(w, cfg) for w in windows]).astype(np.float32)
