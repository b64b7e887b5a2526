"""Where OSC goes and in which scheme: ``--osc`` targets (``vrchat``, ``vmc@HOST:PORT``, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..net.endpoints import Endpoint, parse_endpoint

__all__ = ["OscTarget", "OSC_PROFILES", "OSC_DEFAULT_PORTS", "parse_osc_target"]


@dataclass(frozen=True)
class OscTarget:
    """Where to send OSC and in which profile (generic, vrchat, vmc, vxp)."""

    endpoint: Endpoint
    profile: str = "generic"

    def __str__(self) -> str:
        return f"{self.profile}@{self.endpoint}"


OSC_PROFILES = ("generic", "vrchat", "vmc", "vxp")
OSC_DEFAULT_PORTS = {"generic": 9000, "vrchat": 9000, "vmc": 39539, "vxp": 9000}


def _profile_typo(word: str) -> str | None:
    """The OSC profile ``word`` was probably meant to be (``vrcaht`` -> ``vrchat``), or None."""
    import difflib

    if not word or word in OSC_PROFILES or word.replace(".", "").isdigit() or "." in word:
        return None  # a profile, a port, or a dotted host name: no typo of a profile
    close = difflib.get_close_matches(word.lower(), OSC_PROFILES, n=1, cutoff=0.6)
    return close[0] if close else None


def parse_osc_target(text: str, default_profile: str = "generic") -> OscTarget:
    """Parse ``HOST:PORT``, ``PROFILE``, ``PROFILE:PORT`` (to 127.0.0.1) or ``PROFILE@HOST:PORT``.

    A first part that reads like a mistyped profile (``vrcaht``, ``vrcaht:9000``) is refused
    with the profile it was probably meant to be, rather than taken for a host name and
    sent to nowhere.

    Raises:
        ConfigError: unknown profile or bad address.
    """
    s = str(text).strip()
    profile, sep, rest = s.partition("@")
    if not sep:
        head, colon, port = s.partition(":")
        if s in OSC_PROFILES:
            profile, rest = s, ""
        elif colon and head in OSC_PROFILES:  # PROFILE:PORT, e.g. vrchat:9000 (never a host called "vrchat")
            profile, rest = head, f"127.0.0.1:{port}"
        elif _profile_typo(head if colon else s):
            profile, rest = head if colon else s, ""
        else:
            profile, rest = default_profile, s
    if profile not in OSC_PROFILES:
        hint = _profile_typo(profile)
        raise ConfigError(f"--osc: unknown profile {profile!r}" + (f"; did you mean {hint}?" if hint else
                          f" in {s!r}; choose one of {', '.join(OSC_PROFILES)}"))
    if not rest:
        rest = f"127.0.0.1:{OSC_DEFAULT_PORTS[profile]}"
    endpoint = parse_endpoint(rest, what="--osc")
    if endpoint.port == 0:
        raise ConfigError(f"--osc: port 0 is not a place to send to; give the receiver's port. Received: {s!r}")
    return OscTarget(endpoint, profile)
