"""Utterance boundaries in a stream of log-mel frames (sans-I/O).

Emotion usually changes between utterances, not inside one.  A 2 s window
taken half a second after someone starts a new sentence still holds a second
and a half of the pause and the sentence before it, so the model keeps
hearing the old mood and the face lags.  :class:`UtteranceTracker` notes where
an utterance began (the gate reopened after a long enough pause) and what the
pause sounded like, so that the part of a window older than the onset can be
filled with the pause's background: the window then looks like the onset
windows the model was trained on (speech with quiet before it).
"""

from __future__ import annotations

import numpy as np

__all__ = ["UtteranceTracker"]


class UtteranceTracker:
    """Onset of the current utterance and the background of the pause before it.

    Args:
        gap_frames: frames of closed gate that separate two utterances.
        margin_frames: frames kept before the first speech frame of an onset
            (the gate opens a little after the voice does; training keeps the
            same margin when it trims clips).
    """

    def __init__(self, gap_frames: int, margin_frames: int) -> None:
        if gap_frames < 1:
            raise ValueError(f"gap_frames must be at least 1. Received: gap_frames={gap_frames}")
        self.gap_frames = int(gap_frames)
        self.margin_frames = max(0, int(margin_frames))
        self.reset()

    def reset(self) -> None:
        """Forget everything (a gap in the input): the stream starts as after a pause with nothing heard."""
        self.onset_frame: int | None = None
        self._quiet: np.ndarray | None = None
        self._closed_frames = self.gap_frames  # the start of a stream counts as a pause
        self._pause_sum: np.ndarray | None = None
        self._pause_n = 0
        self._was_active = False
        self._frames_total = 0

    @property
    def quiet_frame(self) -> np.ndarray | None:
        """Mean log-mel frame of the pause before the current utterance (None if none was heard)."""
        return self._quiet

    def update(self, frames: np.ndarray, frame_speech: np.ndarray, gate_active: bool) -> bool:
        """Take the frames of one push and the gate's verdicts; return True if an utterance began.

        Args:
            frames: ``(k, n_mels)`` log-mel frames, oldest first.
            frame_speech: ``(k,)`` per-frame speech verdicts (before the gate's hangover).
            gate_active: the gate's state after these frames.
        """
        k = len(frames)
        before = self._frames_total
        self._frames_total += k
        began = False
        if gate_active and not self._was_active:
            if self._closed_frames >= self.gap_frames:
                hits = np.flatnonzero(np.asarray(frame_speech, dtype=bool)[:k])
                first = before + (int(hits[0]) if len(hits) else 0)
                self.onset_frame = max(0, first - self.margin_frames)
                # _pause_n > 0 means _pause_sum holds the pause frames' sum (see below).
                self._quiet = (self._pause_sum / self._pause_n) if self._pause_n else None  # type: ignore[operator,assignment]
                began = True
            self._closed_frames = 0
            self._pause_sum, self._pause_n = None, 0
        elif not gate_active and self._was_active:
            # The frames of the push that closed the gate are the hangover's tail of speech:
            # the pause (and its background) is counted from the next push on.
            self._closed_frames = 0
            self._pause_sum, self._pause_n = None, 0
        elif not gate_active and k:
            self._closed_frames += k
            total = frames.astype(np.float64).sum(axis=0)
            self._pause_sum = total if self._pause_sum is None else self._pause_sum + total
            self._pause_n += k
        self._was_active = gate_active
        return began

    def mask(self, window: np.ndarray, frames_total: int) -> np.ndarray:
        """``window`` (the newest frames, ending at ``frames_total``) with its pre-onset part quietened.

        Returns ``window`` itself when nothing is to be masked: no onset yet, no
        pause heard, or the utterance is already older than the window.
        """
        if self.onset_frame is None or self._quiet is None:
            return window
        older = len(window) - (frames_total - self.onset_frame)
        if older <= 0:
            return window
        out = np.array(window, copy=True)
        out[: min(older, len(window))] = self._quiet.astype(out.dtype)
        return out
