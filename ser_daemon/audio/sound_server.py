"""Linux microphones by name: the sound server's sources (PulseAudio, or PipeWire's PulseAudio side).

Under PulseAudio and PipeWire, PortAudio sees only its ALSA devices ``pulse`` and
``default``: the headset itself is not in its list, so ``--device Headset`` found
nothing.  The sound server knows every source by name and description; ``pactl``
(pulseaudio-utils, or pipewire-pulse's) lists them.  A source is then recorded
through PortAudio's ``pulse`` device with ``PULSE_SOURCE`` naming it, which the
ALSA pulse plugin reads when the stream opens.

Parsing is pure (:func:`parse_sources`, :func:`match_source`); :func:`list_sources`
runs ``pactl`` (bounded in time, the C locale so the field names are English).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Sequence

from ..errors import AudioInputError

__all__ = ["SoundSource", "parse_sources", "list_sources", "match_source", "format_sources", "PULSE_DEVICE"]

log = logging.getLogger(__name__)

PULSE_DEVICE = "pulse"  # PortAudio's ALSA device that records from the sound server
PACTL_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class SoundSource:
    """One source of the sound server.

    Attributes:
        name: its name (what ``PULSE_SOURCE`` takes), e.g. ``alsa_input.usb-...``.
        description: the name people see, e.g. "USB Headset Analog Stereo".
        channels: channel count of its sample specification (0 when not said).
        rate_hz: its sample rate (0 when not said).
        monitor: it is the monitor of an output (what the speakers play), not a microphone.
        default: it is the server's default source.
    """

    name: str
    description: str
    channels: int = 0
    rate_hz: int = 0
    monitor: bool = False
    default: bool = False


_SPEC = re.compile(r"(\d+)ch\s+(\d+)Hz")


def parse_sources(pactl_list: str, default_name: str = "") -> list[SoundSource]:
    """Sources from ``LC_ALL=C pactl list sources`` text (pure)."""
    out: list[SoundSource] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        if "Name" in fields:
            spec = _SPEC.search(fields.get("Sample Specification", ""))
            monitor_of = fields.get("Monitor of Sink", "n/a")
            out.append(SoundSource(
                name=fields["Name"],
                description=fields.get("Description", fields["Name"]),
                channels=int(spec.group(1)) if spec else 0,
                rate_hz=int(spec.group(2)) if spec else 0,
                monitor=monitor_of not in ("", "n/a") or fields["Name"].endswith(".monitor"),
                default=fields["Name"] == default_name,
            ))
        fields.clear()

    for line in pactl_list.splitlines():
        if line.startswith("Source #"):
            flush()
            continue
        if line.startswith("\t") and not line.startswith("\t\t") and ":" in line:
            key, _, value = line.strip().partition(":")
            fields.setdefault(key.strip(), value.strip())
    flush()
    return out


def _pactl(*args: str) -> str | None:
    exe = shutil.which("pactl")
    if exe is None:
        return None
    try:
        r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=PACTL_TIMEOUT_S,
                           env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("pactl %s: %s", " ".join(args), exc)
        return None
    return r.stdout if r.returncode == 0 else None


def list_sources() -> list[SoundSource]:
    """The running sound server's sources; empty when there is none (or no ``pactl``)."""
    text = _pactl("list", "sources")
    if not text:
        return []
    info = _pactl("info") or ""
    default = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("Default Source:")), "")
    return parse_sources(text, default)


def match_source(sources: Sequence[SoundSource], wanted: str) -> SoundSource | None:
    """The source ``--device NAME`` means: exact name, else part of its name or description (any case).

    Several matches: the one microphone among them if only one is not a monitor.

    Raises:
        AudioInputError: the name matches several sources.
    """
    want = wanted.strip().lower()
    if not want:
        return None
    exact = [s for s in sources if s.name.lower() == want or s.description.lower() == want]
    found = exact or [s for s in sources if want in s.name.lower() or want in s.description.lower()]
    if len(found) > 1:
        mics = [s for s in found if not s.monitor]
        found = mics if len(mics) == 1 else found
    if len(found) > 1:
        names = "; ".join(f"{s.description} ({s.name})" for s in found)
        raise AudioInputError(f"{wanted!r} matches several sound server sources: {names}; give more of the name")
    return found[0] if found else None


def format_sources(sources: Sequence[SoundSource]) -> str:
    """``--list-devices``'s part for the sound server."""
    lines = ["Sound server (PulseAudio/PipeWire) sources: --device takes part of a name or description,",
             "recorded through PortAudio's 'pulse' device"]
    for s in sources:
        tags = [t for t, on in (("default", s.default), ("monitor of an output", s.monitor)) if on]
        spec = f"{s.channels} ch {s.rate_hz} Hz" if s.rate_hz else ""
        extra = f"  ({', '.join(tags)})" if tags else ""
        lines.append(f"  {s.description}  [{s.name}]  {spec}{extra}".rstrip())
    return "\n".join(lines)
