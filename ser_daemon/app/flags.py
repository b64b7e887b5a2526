"""Every ``ser-daemon`` option, declared once: its flag, group, type, help and choices.

The parser is the declaration.  The config file's keys and their types
(:data:`~ser_daemon.app.options.option_kinds`), the commented template
(:mod:`~ser_daemon.app.config_template`) and ``--help`` are all read from it.  A plain
option (its value reaches the daemon as given) is declared once, as a field of
:class:`~ser_daemon.app.config.DaemonConfig` made with
:func:`~ser_daemon.app.config.option`: :func:`build_parser` adds its flag from there.
The flags written here are those that act and exit, whose choices are read when the parser
is built (``--backend``: the backend registry), or whose values are turned into something
else (addresses, paths, OSC targets) by :func:`~ser_daemon.app.options.config_from_options`.
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import __version__
from ..arguments import OneLineParser, checked_float
from ..core.settings import SmoothingSettings
from ..model.backends import BACKENDS, backend_choices
from ..outputs.osc_targets import OSC_PROFILES
from .config import LOG_LEVELS, DaemonConfig, declared_options

__all__ = ["build_parser", "SUBCOMMANDS", "LOG_LEVELS", "DEFAULT_WS", "DEFAULT_OSC"]

DEFAULT_WS = "127.0.0.1:8765"
DEFAULT_OSC = "127.0.0.1:9000"


def _device(text: str) -> int | str:
    """``--device``: an index, or part of a name."""
    return int(text) if text.strip().isdigit() else text


_float = checked_float()


_SMOOTH = SmoothingSettings()  # the defaults --help states


class _StoreOnce(argparse._StoreAction):
    """A single-valued option given twice (``--web 8080 --web 8081``) is an error, not "the last one wins".

    Options that take several values say so (``action="append"``); the config file is not
    a second value: flags win over it (it is merged after parsing).
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        # Unset, the attribute is absent (argument_default=SUPPRESS) or the option's own default object.
        if getattr(namespace, self.dest, self.default) is not self.default:
            parser.error(f"{option_string} was given twice; it takes one value "
                         f"({getattr(namespace, self.dest)!r} and {values!r})")
        setattr(namespace, self.dest, values)


SUBCOMMANDS = (
    ("enroll", "teach it your voice: record a few takes, make a personal profile"),
    ("profiles", "list, show or delete personal profiles"),
    ("cluster", "serve --ingest from a Ray Serve application on many machines"),
    ("sessions", "list or delete the session logs of --session-log"),
    ("report", "one HTML page with plots from session logs"),
)


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps the description as usual, keeps the epilog's lines (the subcommand list) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(super(_HelpFormatter, self)._fill_text(part, width, indent) if not part.startswith("  ")
                         else part for part in text.split("\n"))


def build_parser(config: type = DaemonConfig) -> argparse.ArgumentParser:
    """The ``ser-daemon`` parser: the flags written here, then the plain options ``config`` declares.

    Each option declared with :func:`~ser_daemon.app.config.option` (a ``DaemonConfig`` field) is
    added at the end of its group; ``config`` is a parameter so a test can add one.
    """
    p = OneLineParser(
        prog="ser-daemon",
        usage="ser-daemon [options]\n       ser-daemon {enroll,profiles,cluster,sessions,report} ... (each: --help)",
        formatter_class=_HelpFormatter,
        description=(
            "Streaming speech-emotion daemon for VR avatars: listens to a microphone (or replays a WAV), "
            "classifies how the speaker sounds several times a second, smooths it, and broadcasts it over "
            "OSC (UDP) and WebSocket. With no --device and no --input it replays a bundled demo recording "
            "and prints each state."
        ),
        epilog=(
            "Every option can also be set in a TOML file given with --config; its keys are the option names "
            "with underscores (latency_budget_ms = 120, osc = [\"127.0.0.1:9000\"]). Flags win over the file. "
            "'ser-daemon cluster' needs pip install 'ser-daemon[cluster]'.\n\nsubcommands:\n"
            + "\n".join(f"  {name:<10s} {text}" for name, text in SUBCOMMANDS)
        ),
        argument_default=argparse.SUPPRESS,
    )
    p.register("action", None, _StoreOnce)  # the default action, for every option group
    p.register("action", "store", _StoreOnce)
    g = p.add_argument_group("input")
    g.add_argument("--device", action="append", type=_device, metavar="N|NAME",
                   help="capture from this input device: index or part of its name (see --list-devices; on Linux also "
                        "a PulseAudio/PipeWire source by part of its name or description); "
                        "repeatable: one stream per device")
    g.add_argument("--list-devices", action="store_true",
                   help="list input devices, grouped by host API (on Linux also the sound server's sources), and exit")
    g.add_argument("--input", action="append", metavar="FILE.wav",
                   help="replay a WAV file at real time through the same pipeline (repeatable: one stream each)")

    g = p.add_argument_group("model")
    g.add_argument("--model", metavar="DIR|NAME",
                   help="model bundle folder, or a shipped model: default (best on English voices) or multilingual "
                        "(trained with Polish too: better on other languages, worse on English; see its MODEL_CARD.md)")
    g.add_argument("--backend", choices=backend_choices(),
                   help=f"inference runtime: auto (GPU via Keras if visible, else LiteRT), {', '.join(BACKENDS)}")
    g.add_argument("--profile-update", action="store_true",
                   help="save the voice baseline learned while running back into the profile at exit, also for "
                        "--input files (by default only microphones update it: a file is usually someone else's voice)")
    g.add_argument("--no-profile-update", action="store_true",
                   help="do not save the voice baseline learned while running back into the profile at exit")

    g = p.add_argument_group("outputs")
    g.add_argument("--osc", action="append", metavar="[PROFILE@]HOST:PORT|PROFILE[:PORT]",
                   help=f"send OSC (UDP) here, repeatable; a profile name alone uses its default port "
                        f"(vrchat/vxp 127.0.0.1:9000, vmc 127.0.0.1:39539), PROFILE:PORT another port on "
                        f"127.0.0.1 (default {DEFAULT_OSC})")
    g.add_argument("--osc-profile", choices=OSC_PROFILES,
                   help="profile of --osc targets given without one: generic (ser-daemon's scheme), vrchat "
                        "(avatar parameters), vmc (VMC protocol blendshapes), vxp (VXP mod parameters)")
    g.add_argument("--mapping", metavar="FILE.toml",
                   help="emotion-to-expression mapping (VRM, VRM 0.x, ARKit); default: the shipped one")
    g.add_argument("--no-oscquery", action="store_true",
                   help="do not use OSCQuery/mDNS (127.0.0.1 only) to find VRChat and be found by it; "
                        "listen on --vrchat-listen at once and send to the --osc address as given")
    g.add_argument("--vrchat-table", action="store_true",
                   help="print the VRChat parameters (names, types, synced bits) and the SER_Label numbers for "
                        "this model, mapping and --vrchat-params as Markdown tables, and exit")
    g.add_argument("--no-osc", action="store_true", help="send no OSC")
    g.add_argument("--ws", metavar="[HOST:]PORT", help=f"serve WebSocket clients here (default {DEFAULT_WS})")
    g.add_argument("--no-ws", action="store_true", help="run no WebSocket server")
    g.add_argument("--web", metavar="[HOST:]PORT",
                   help="serve the live web view (page and its WebSocket) here, e.g. --web 8080; loopback by default")
    g.add_argument("--ingest", metavar="[HOST:]PORT",
                   help="accept remote audio: WebSocket clients stream 16-bit PCM, one stream each (see README)")
    g.add_argument("--ws-token", metavar="SECRET",
                   help="clients must send this token (?token= or Authorization: Bearer). Other local users can "
                        "read a command line: prefer --ws-token-file or the SER_WS_TOKEN environment variable")
    g.add_argument("--ws-token-file", metavar="FILE",
                   help="read the token from this file (its first line; keep it readable only by you)")
    g.add_argument("--ws-allow-origin", action="append", metavar="ORIGIN",
                   help="also accept browser pages from this origin (e.g. http://localhost:3000); repeatable")

    g = p.add_argument_group("mood (for apps)")
    g.add_argument("--session-log", nargs="?", const="", metavar="DIR",
                   help="log each stream's states, mood and events (never audio) as JSON lines into DIR (default: "
                        "the per-user data folder's sessions/); tracks the mood even without --mood. "
                        "'ser-daemon sessions' lists them, 'ser-daemon report LOG...' plots them")

    g = p.add_argument_group("analysis")
    g.add_argument("--hop-ms", type=_float, metavar="MS", help="time between decisions (default 250)")
    g.add_argument("--window-ms", type=_float, metavar="MS",
                   help="audio per decision; must match the model's window (default: the model's)")
    g.add_argument("--latency-budget-ms", type=_float, metavar="MS",
                   help="a decision older than this is marked late; superseded windows are skipped (default 150)")
    vad_help = {
        "vad_threshold_db": "speech must be this many dB above the noise floor (default 9)",
        "vad_min_level_dbfs": "and louder than this, dBFS (default -55)",
        "vad_max_flatness": "and less spectrally flat than this, 0..1 (default 0.55)",
        "vad_hangover_ms": "voice counts as active this long after speech (default 500)",
        "vad_min_speech_ms": "speech needed within the hangover to open the gate (default 40)",
        "vad_floor_rise_db_per_s": "how fast the noise floor may rise (default 3)",
        "ema_ms": f"time constant of the probability average while voiced (default {_SMOOTH.ema_ms:g})",
        "hysteresis": f"a new label must beat the current one by this probability (default {_SMOOTH.hysteresis:g})",
        "min_dwell_ms": f"shortest time a label is shown (default {_SMOOTH.min_dwell_ms:g})",
        "hold_ms": f"after the voice stops, hold the face this long (default {_SMOOTH.hold_ms:g})",
        "decay_ms": f"then relax toward neutral with this time constant (default {_SMOOTH.decay_ms:g})",
        "min_confidence": "below this smoothed probability the state is uncertain (shown as unsure; "
                          f"default {_SMOOTH.min_confidence:g})",
        "utterance_gap_ms": "a voice back after this much closed gate starts a new utterance: the window "
                            "forgets the last one and the average restarts (default 0: off; faster, but "
                            "flickers more on validation speakers)",
        "utterance_prior": "at a new utterance the shown state weighs like this many of its windows "
                           f"(default {_SMOOTH.utterance_prior:g})",
    }
    for name, text in vad_help.items():
        g.add_argument("--" + name.replace("_", "-"), type=_float, metavar="X", help=text)

    g = p.add_argument_group("general")
    g.add_argument("--config", metavar="FILE.toml",
                   help="read options from a TOML file (default: the per-user file --config-path prints, if it exists)")
    g.add_argument("--config-path", action="store_true", help="print where the per-user config file is and exit")
    g.add_argument("--write-config", nargs="?", const="", metavar="FILE.toml",
                   help="write a commented config file (default: the per-user one) and exit; never overwrites")
    g.add_argument("--print", action="store_true", help="print every decision on stdout (on by default for the demo)")
    g.add_argument("--stats-json", metavar="FILE", help="at exit, write per-stage timing statistics here")
    p.add_argument("--version", action="version", version=f"ser-daemon {__version__}")
    _add_declared(p, config)
    return p


def _add_declared(parser: argparse.ArgumentParser, config: type) -> None:
    """Add the plain options ``config``'s fields declare, each at the end of its ``--help`` group."""
    groups = {g.title: g for g in parser._action_groups}  # argparse keeps no public list of groups
    for title, flag, spec in declared_options(config):
        if title not in groups:
            raise TypeError(f"{config.__name__}: {flag} is declared in a group the parser lacks: {title!r}")
        groups[title].add_argument(flag, **spec)
