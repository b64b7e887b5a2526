"""Stateful polyphase resampling and downmixing for audio that arrives in blocks.

``scipy.signal.resample_poly`` treats each call as a whole signal, so calling it
per block puts a click at every block edge.  :class:`StreamingResampler` runs
the same kind of filter (Kaiser-windowed FIR, designed as resample_poly does)
as one causal filter over the endless stream: feeding a signal in any block
sizes gives exactly the output of filtering it in one piece.  It keeps only
the input history the next output needs, and computes only the new outputs,
in polyphase form with numpy (importing scipy.signal would add about a second
to start-up).
"""

from __future__ import annotations

from math import gcd

import numpy as np

from ..errors import ConfigError

__all__ = ["StreamingResampler", "downmix"]


def downmix(frames: np.ndarray) -> np.ndarray:
    """Average ``(n, channels)`` frames to mono float32; 1-D input passes through."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    if frames.shape[1] == 1:
        return frames[:, 0].astype(np.float32, copy=False)
    mono: np.ndarray = frames.mean(axis=1, dtype=np.float32)
    return mono


class StreamingResampler:
    """Resample an endless mono stream from ``in_rate`` to ``out_rate``.

    The filter is causal, so output lags input by :attr:`delay_out_samples`
    output samples (under a millisecond for common rates).
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ConfigError(f"sample rates must be positive. Received: in_rate={in_rate}, out_rate={out_rate}")
        g = gcd(int(in_rate), int(out_rate))
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self.up = self.out_rate // g
        self.down = self.in_rate // g
        self.passthrough = self.up == self.down == 1
        if self.passthrough:
            self._h = np.ones(1, dtype=np.float64)
            self.delay_out_samples = 0.0
        else:
            max_rate = max(self.up, self.down)
            half_len = 10 * max_rate
            self._h = _lowpass(2 * half_len + 1, 1.0 / max_rate) * self.up
            self.delay_out_samples = half_len / self.down
        self._taps = len(self._h)
        # Polyphase table: row r holds the taps h[r], h[r+up], ... used by outputs of phase r.
        self._t = -(-self._taps // self.up)
        padded = np.zeros(self._t * self.up)
        padded[: self._taps] = self._h
        self._phases = padded.reshape(self._t, self.up).T.copy()
        self.reset()

    def reset(self) -> None:
        """Start a new stream (after a gap): forget the history."""
        self._hist = np.zeros(0, dtype=np.float32)
        self._hist_start = 0  # absolute input index of _hist[0]; a multiple of `down`
        self._in_total = 0
        self.out_total = 0  # output samples produced so far

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed mono input samples; return the output samples they complete."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 1:
            raise ConfigError(f"StreamingResampler takes mono audio. Received shape {x.shape}")
        if self.passthrough:
            self._in_total += len(x)
            self.out_total += len(x)
            return x.copy()
        if len(x) == 0:
            return np.zeros(0, dtype=np.float32)
        up, down = self.up, self.down
        hist = np.concatenate((self._hist, x)) if len(self._hist) else x
        self._in_total += len(x)
        # Output m needs upsampled input up to index m*down, i.e. input (m*down)//up.
        m_max = (up * (self._in_total - 1)) // down
        if m_max < self.out_total:
            self._hist = self._own(hist, x)
            return np.zeros(0, dtype=np.float32)
        ms = np.arange(self.out_total, m_max + 1, dtype=np.int64)
        j = ms * down  # position of each output on the upsampled grid
        newest = j // up  # newest input each output uses
        phase = j - newest * up
        t = self._t
        # Inputs before the stream began are zero: pad the front of the history.
        xpad = np.concatenate((np.zeros(t, dtype=np.float64), hist.astype(np.float64)))
        pos = newest - self._hist_start + t
        if up == 1:
            # Pure decimation (48 kHz -> 16 kHz): one C-level convolution, then pick the outputs.
            # With up == 1 there are t == taps zeros in front, so pos >= taps and lo >= 1.
            lo = int(pos[0]) - (self._taps - 1)
            seg = xpad[lo : int(pos[-1]) + 1]
            out = np.convolve(seg, self._h, mode="valid")[pos - int(pos[0])].astype(np.float32)
        else:
            idx = pos[:, None] - np.arange(t)[None, :]
            out = np.einsum("ij,ij->i", xpad[idx], self._phases[phase]).astype(np.float32)
        self.out_total = m_max + 1
        # Keep the input that the next output still reaches back to.
        new_start = max(0, (self.out_total * down) // up - (t - 1))
        if new_start > self._hist_start:
            hist = hist[new_start - self._hist_start :]
            self._hist_start = new_start
        self._hist = self._own(hist, x)
        return out

    @staticmethod
    def _own(hist: np.ndarray, block: np.ndarray) -> np.ndarray:
        """``hist`` in memory of our own: callers may reuse their block buffer (a sound card does)."""
        return hist.copy() if np.may_share_memory(hist, block) else hist

    def input_index_for_output(self, out_index: int) -> int:
        """Newest input sample index that output ``out_index`` depends on."""
        if self.passthrough:
            return out_index
        return (out_index * self.down) // self.up


def _lowpass(numtaps: int, cutoff: float, beta: float = 5.0) -> np.ndarray:
    """Kaiser-windowed sinc lowpass with unit DC gain; ``cutoff`` relative to Nyquist.

    Equal to ``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))``.
    """
    n = np.arange(numtaps) - (numtaps - 1) / 2.0
    h = cutoff * np.sinc(cutoff * n) * np.kaiser(numtaps, beta)
    taps: np.ndarray = h / h.sum()
    return taps
