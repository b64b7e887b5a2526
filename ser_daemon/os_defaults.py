"""Per-operating-system defaults: the user's config and data folders, and the preferred audio host API.

Decided from an explicit ``system`` argument (``sys.platform`` by default), so the Windows and
macOS behaviour is unit-tested on Linux by passing ``"win32"`` or ``"darwin"``.  Paths come from
``platformdirs`` (``%LOCALAPPDATA%`` on Windows, ``~/Library/Application Support`` on macOS,
``$XDG_CONFIG_HOME`` or ``~/.config`` on Linux).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["APP_NAME", "CONFIG_FILE_NAME", "default_host_api", "host_api_preference", "user_config_path", "user_data_path"]


APP_NAME = "ser-daemon"
CONFIG_FILE_NAME = "config.toml"

_HOST_API_PREFERENCE = {
    "win32": ("Windows WASAPI", "Windows DirectSound", "MME", "Windows WDM-KS"),
    "darwin": ("Core Audio",),
    # Linux: PortAudio's own default (ALSA, whose "pulse"/"default" devices reach
    # PulseAudio or PipeWire) is right; JACK only when asked for.
    "linux": ("ALSA", "JACK Audio Connection Kit", "OSS"),
}


def _system(system: str | None) -> str:
    s = system or sys.platform
    if s.startswith("win") or s == "cygwin":
        return "win32"
    if s == "darwin":
        return "darwin"
    return "linux"


def host_api_preference(system: str | None = None) -> tuple[str, ...]:
    """PortAudio host API names in the order a device name match prefers them."""
    return _HOST_API_PREFERENCE[_system(system)]


def default_host_api(system: str | None = None) -> str | None:
    """The host API used when ``--host-api`` is not given: WASAPI on Windows, Core Audio on macOS.

    None on Linux, where PortAudio's own default host API is used.
    """
    s = _system(system)
    return None if s == "linux" else _HOST_API_PREFERENCE[s][0]


def user_config_path(system: str | None = None) -> Path:
    """The per-user default config file (read when ``--config`` is not given)."""
    return _dirs(system).user_config_path / CONFIG_FILE_NAME


def user_data_path(system: str | None = None) -> Path:
    """The per-user data folder (personal profiles and the like; never audio)."""
    return _dirs(system).user_data_path


def _dirs(system: str | None):  # -> platformdirs.api.PlatformDirsABC
    s = _system(system)
    if s == _system(None):
        from platformdirs import PlatformDirs as cls
    elif s == "darwin":
        from platformdirs.macos import MacOS as cls
    elif s == "linux":
        from platformdirs.unix import Unix as cls
    else:
        from platformdirs.windows import Windows as cls
    return cls(APP_NAME, appauthor=False)
