"""Where OSC goes and in which scheme: ``--osc`` targets (``vrchat``, ``vmc@HOST:PORT``, ...).

:data:`OSC_SCHEMES` is the one place an OSC scheme is registered: ``--osc`` and
``--osc-profile`` read their choices and default ports from it, the start-up lines their
words, and :func:`~ser_daemon.outputs.osc_schemes.make_scheme` the class that encodes it.
Adding a scheme is its encoder class plus one entry here.  This module stays light (the
command line reads it at start-up): the class is named as ``module:Class`` and imported
when a scheme is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..net.endpoints import Endpoint, parse_endpoint

__all__ = ["OscTarget", "SchemeEntry", "OSC_SCHEMES", "OSC_PROFILES", "OSC_DEFAULT_PORTS", "parse_osc_target",
           "scheme_class"]


@dataclass(frozen=True)
class OscTarget:
    """Where to send OSC and in which profile (generic, vrchat, vmc, vxp)."""

    endpoint: Endpoint
    profile: str = "generic"

    def __str__(self) -> str:
        return f"{self.profile}@{self.endpoint}"


@dataclass(frozen=True)
class SchemeEntry:
    """One OSC scheme.

    Attributes:
        name: what ``--osc NAME`` and ``--osc-profile`` call it.
        default_port: where on 127.0.0.1 it goes when no port is given.
        says: what the start-up line calls its packets ("OSC: <says> to HOST:PORT").
        encoder: ``module:Class`` of its encoder, built by ``Class.from_options(labels, options)``.
    """

    name: str
    default_port: int
    says: str
    encoder: str


OSC_SCHEMES: dict[str, SchemeEntry] = {
    "generic": SchemeEntry("generic", 9000, "OSC (generic scheme)", "ser_daemon.outputs.osc_schemes:GenericScheme"),
    "vrchat": SchemeEntry("vrchat", 9000, "VRChat avatar parameters", "ser_daemon.outputs.osc_schemes:VRChatScheme"),
    "vmc": SchemeEntry("vmc", 39539, "VMC blendshapes", "ser_daemon.outputs.osc_schemes:VmcScheme"),
    "vxp": SchemeEntry("vxp", 9000, "VXP avatar parameters", "ser_daemon.outputs.osc_schemes:VxpScheme"),
}
OSC_PROFILES = tuple(OSC_SCHEMES)
OSC_DEFAULT_PORTS = {name: s.default_port for name, s in OSC_SCHEMES.items()}


def scheme_class(name: str) -> Any:
    """The encoder class of scheme ``name`` (KeyError for an unknown one)."""
    module, _, cls = OSC_SCHEMES[name].encoder.partition(":")
    return getattr(importlib.import_module(module), cls)


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
