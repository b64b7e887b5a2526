"""One exception tree for everything ser-daemon raises on purpose.

User mistakes (bad flags, unreadable files, unusable models) are ``SerError``
subclasses: the CLI prints their message on one line and exits with code 2.
Anything else is a bug and keeps its traceback.

    SerError
    ├── ConfigError          bad option, config file or feature setting
    ├── AudioInputError      input file or device unusable
    │   └── PortAudioMissing PortAudio shared library not installed
    ├── ModelError           model bundle missing, corrupt or inconsistent
    └── BackendUnavailable   (also ImportError) inference runtime not installed
"""

from __future__ import annotations

__all__ = [
    "SerError",
    "ConfigError",
    "AudioInputError",
    "PortAudioMissing",
    "ModelError",
    "BackendUnavailable",
    "ProfileError",
]


class SerError(Exception):
    """Base of every deliberate ser-daemon error."""


class ConfigError(SerError, ValueError):
    """An option, config file or setting has a value we cannot use."""


class AudioInputError(SerError):
    """An audio file or input device cannot be read."""


class PortAudioMissing(AudioInputError):
    """sounddevice could not load the PortAudio library."""


class ModelError(SerError):
    """A model bundle is missing, corrupt, or disagrees with its metadata."""


class BackendUnavailable(SerError, ImportError):
    """The requested inference runtime is not installed."""


class ProfileError(SerError):
    """A personal profile that cannot be made, read, used or written."""
