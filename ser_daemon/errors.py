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
    "OutputError",
    "import_failure",
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


class OutputError(SerError):
    """An output that cannot be written at all (stdout closed, a statistics file in a missing folder)."""


def import_failure(exc: ImportError, package: str, missing_hint: str) -> str:
    """The message for an optional import that failed; re-raises an interrupt hidden in it.

    Guards around optional imports catch ImportError only, never Exception or BaseException,
    because a signal can land in any import.  Even so an interrupt can come back disguised:
    an exception raised while a pybind11 extension initialises (LiteRT's interpreter wrapper)
    is turned into ``ImportError("initialization failed")`` with the real one as its cause.
    Reporting that as a missing package would be wrong twice (message and exit code), so a
    KeyboardInterrupt, SystemExit or other non-Exception anywhere in the chain is raised again.

    Returns ``missing_hint`` when a module is not installed (ModuleNotFoundError), else a
    message saying that ``package`` is there but cannot be loaded, with the reason.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if not isinstance(cause, Exception):
            raise cause
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, ModuleNotFoundError):
        return missing_hint
    return f"{package} is installed but cannot be loaded ({exc}): reinstall it"
