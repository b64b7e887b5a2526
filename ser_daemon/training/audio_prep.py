"""Moved to :mod:`ser_daemon.audio_prep` (enrollment needs it without the training extra)."""

from ..audio_prep import TrimConfig, cut_windows, features_of, load_audio, speech_bounds, window_starts

__all__ = ["TrimConfig", "load_audio", "speech_bounds", "window_starts", "cut_windows", "features_of"]
