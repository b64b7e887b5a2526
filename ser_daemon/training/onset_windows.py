"""Training windows that hold only the first part of an utterance (sans-I/O).

With utterance boundaries on, the daemon fills the part of a window older
than a new utterance's onset with the pause's mean log-mel frame
(:class:`~ser_daemon.core.utterance.UtteranceTracker`), so in the first second
after a pause the network reads a window of 0.25-1 s of speech behind a flat
background.  Ordinary training windows hold at least
``(1 - edge)`` of a window of speech (0.8 s at the shipped ``edge`` 0.6), so
the network never learned to read those onset windows: it was right 27-45 %
of the time there on English validation speakers (model card, third round).
These windows are built the way the daemon builds them: the window ends
``speech_s`` after the onset, and every frame that starts before the onset
is replaced by the mean frame of the clip's own pause before its speech.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.features import FeatureConfig, log_mel

__all__ = ["onset_windows", "pause_frame"]

QUIET_PAD = 1e-4  # faint noise where a window reaches before the audio, as cut_windows pads


def pause_frame(pause: np.ndarray, cfg: FeatureConfig) -> np.ndarray | None:
    """The mean log-mel frame of ``pause`` (audio before the speech), or None if it is shorter than a frame."""
    frames = log_mel(pause, cfg)
    if len(frames) == 0:
        return None
    return frames.astype(np.float64).mean(axis=0).astype(np.float32)


def onset_windows(
    y: np.ndarray,
    onset: int,
    window_samples: int,
    speech_s: Sequence[float],
    cfg: FeatureConfig,
    *,
    pause_start: int = 0,
) -> np.ndarray:
    """Log-mel windows ``(len(speech_s), frames, n_mels)`` ending ``speech_s`` seconds after ``onset``.

    Args:
        y: the clip's audio (model rate, mono).
        onset: sample index where the speech begins (with the trim margin,
            as the daemon keeps its onset margin).
        window_samples: samples per window.
        speech_s: seconds of speech each window holds (its end past the onset).
        cfg: feature settings.
        pause_start: where the clip's own pause begins in ``y`` (after any
            artificial padding), so the fill is the recording's background.

    Frames that start before the onset take the pause's mean frame; a clip
    with no pause before its speech keeps the quietest tenth of each window's
    frames as its background instead.

    Raises:
        ValueError: on an onset outside ``y`` or a non-positive duration.
    """
    y = np.asarray(y, dtype=np.float32)
    if not 0 <= onset <= len(y):
        raise ValueError(f"onset {onset} is outside the clip of {len(y)} samples")
    quiet = pause_frame(y[max(0, pause_start):onset], cfg)
    out = []
    for i, s in enumerate(speech_s):
        if s <= 0:
            raise ValueError(f"speech_s must be positive. Received: {s}")
        end = min(len(y), onset + int(round(s * cfg.sample_rate)))
        start = end - window_samples
        if start < 0:
            pad = (np.random.default_rng(i).standard_normal(-start) * QUIET_PAD).astype(np.float32)
            w = np.concatenate([pad, y[:end]])
        else:
            w = y[start:end]
        f = log_mel(w, cfg)
        before = int(np.ceil((onset - start) / cfg.hop_length))
        before = min(max(before, 0), len(f))
        if before:
            fill = quiet
            if fill is None:
                energy = f.sum(axis=1)
                fill = f[energy <= np.percentile(energy, 10)].mean(axis=0)
            f[:before] = fill
        out.append(f)
    if not out:
        frames = 1 + (window_samples - cfg.n_fft) // cfg.hop_length
        return np.zeros((0, frames, cfg.n_mels), np.float32)
    return np.stack(out).astype(np.float32)
