"""Moved to :mod:`ser_daemon.audio.clips` (enrollment needs it without the training extra)."""

from ..audio.clips import TrimConfig, cut_windows, features_of, load_audio, speech_bounds, window_starts

__all__ = ["TrimConfig", "load_audio", "speech_bounds", "window_starts", "cut_windows", "features_of"]
