"""The outputs the daemon can build from its config, by name: the one place to register a new one.

Each entry builds its output from an :class:`OutputContext` (None when the config does not
ask for it).  The daemon fans every state and status out to what was built, in this order,
and closes them at the end; the WebSocket clients join when their server is up.  Adding an
output is its module under ``outputs/`` plus one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..outputs.base import Output
from ..outputs.console import ConsoleOutput, JsonLines, PrintLines, StatusLine
from ..outputs.mapping import ExpressionMapping
from ..outputs.osc import OscSender
from ..outputs.osc_schemes import GenericScheme, make_scheme
from .config import DaemonConfig

__all__ = ["OutputContext", "OUTPUTS", "build_outputs"]


@dataclass(frozen=True)
class OutputContext:
    """What an output may be built from.

    Attributes:
        config: the daemon's config.
        labels: the model's classes, in its order.
        mapping: the expression mapping (weights, and the VRChat table).
        console: stdout lines and the status line.
        streams: the local streams' names at start.
        clients: how many WebSocket clients are connected now.
        note: a few words about VRChat for the status line ("" without VRChat).
    """

    config: DaemonConfig
    labels: tuple[str, ...]
    mapping: ExpressionMapping
    console: ConsoleOutput
    streams: tuple[str, ...]
    clients: Callable[[], int]
    note: Callable[[], str]


def _osc(ctx: OutputContext) -> OscSender | None:
    cfg = ctx.config
    if not cfg.osc:
        return None
    sender = OscSender(
        (t, make_scheme(t.profile, ctx.labels, bundle=cfg.osc_format == "bundle", vrchat_prefix=cfg.vrchat_prefix,
                         max_hz=cfg.vrchat_max_hz, vrchat_params=cfg.vrchat_params,
                         vrchat_table=ctx.mapping.vrchat, targets=ctx.mapping.targets))
        for t in cfg.osc
    )
    # With several streams: generic OSC carries the stream in its addresses; avatars follow the first.
    multi = len(ctx.streams) > 1 or cfg.ingest is not None
    for p in sender.profiles:
        if isinstance(p, GenericScheme):
            p.per_stream = multi
        elif multi:
            p.follow_stream = ctx.streams[0] if ctx.streams else None
    return sender


def _print(ctx: OutputContext) -> PrintLines | None:
    return PrintLines(ctx.console) if ctx.config.print_states else None


def _jsonl(ctx: OutputContext) -> JsonLines | None:
    return JsonLines(ctx.console) if ctx.config.jsonl else None


def _status_line(ctx: OutputContext) -> StatusLine:
    return StatusLine(ctx.console, ctx.clients, ctx.note)


OUTPUTS: dict[str, Callable[[OutputContext], Output | None]] = {
    "osc": _osc,
    "print": _print,
    "jsonl": _jsonl,
    "status_line": _status_line,
}


def build_outputs(ctx: OutputContext) -> dict[str, Output]:
    """Every registered output the config asks for, by name, in registration order."""
    built = {name: make(ctx) for name, make in OUTPUTS.items()}
    return {name: out for name, out in built.items() if out is not None}
