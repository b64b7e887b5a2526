"""The outputs the daemon can build from its config, by name: the one place to register a new one.

Each entry builds its output from an :class:`OutputContext` (None when the config does not
ask for it).  The daemon fans every state and status out to what was built, in this order,
and closes them at the end; the WebSocket clients join when their server is up.  Adding an
output is its module under ``outputs/`` plus one entry here.

With ``--mood`` or ``--session-log`` the fan-out is a :class:`MoodFanOut`: the mood stage
sits beside the smoother, reads every state and hands each mood update to the outputs
(``--mood``) or to the session log alone (``--session-log`` without ``--mood``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, cast

from ..core.mood_stage import MoodStage, MoodUpdate
from ..core.state import EmotionState
from ..outputs.base import FanOut, MoodOutput, Output, Weights
from ..outputs.console import ConsoleOutput, JsonLines, PrintLines, StatusLine
from ..outputs.mapping import ExpressionMapping
from ..outputs.osc import OscSender
from ..outputs.osc_schemes import GenericScheme, make_scheme
from ..sessions.log_output import SessionLogOutput
from ..sessions.store import prune
from .config import DaemonConfig, OutputSettings

__all__ = ["OutputContext", "OUTPUTS", "build_outputs", "MoodFanOut", "fan_out"]


@dataclass(frozen=True)
class OutputContext:
    """What an output may be built from.

    Attributes:
        config: the config's outputs part (``DaemonConfig.parts.outputs``); a whole
            DaemonConfig given here is cut to that part.
        labels: the model's classes, in its order.
        mapping: the expression mapping (weights, and the VRChat table).
        console: stdout lines and the status line.
        streams: the local streams' names at start.
        clients: how many WebSocket clients are connected now.
        note: a few words about VRChat for the status line ("" without VRChat).
        sample_rate: the model's sample rate (states count their samples in it).
        model: the model's name.
    """

    config: OutputSettings
    labels: tuple[str, ...]
    mapping: ExpressionMapping
    console: ConsoleOutput
    streams: tuple[str, ...]
    clients: Callable[[], int]
    note: Callable[[], str]
    sample_rate: int = 16000
    model: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.config, DaemonConfig):
            object.__setattr__(self, "config", self.config.parts.outputs)


def _osc(ctx: OutputContext) -> OscSender | None:
    cfg = ctx.config
    if not cfg.osc:
        return None
    sender = OscSender(
        (t, make_scheme(t.profile, ctx.labels, bundle=cfg.osc_format == "bundle", vrchat_prefix=cfg.vrchat_prefix,
                         max_hz=cfg.vrchat_max_hz, vrchat_params=cfg.vrchat_params,
                         vrchat_table=ctx.mapping.vrchat, targets=ctx.mapping.targets, mood=cfg.mood))
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


def _session_log(ctx: OutputContext) -> SessionLogOutput | None:
    cfg = ctx.config
    if cfg.session_log is None:
        return None
    prune(cfg.session_log, cfg.session_retention_days, datetime.now(timezone.utc))
    ctx.console.note(f"session log: writing states, mood and events (never audio) to {cfg.session_log}; "
                     f"kept {cfg.session_retention_days:g} days", always=True)
    return SessionLogOutput(cfg.session_log, ctx.labels, ctx.sample_rate, ctx.model)


OUTPUTS: dict[str, Callable[[OutputContext], Output | None]] = {
    "osc": _osc,
    "print": _print,
    "jsonl": _jsonl,
    "status_line": _status_line,
    "session_log": _session_log,
}


def build_outputs(ctx: OutputContext) -> dict[str, Output]:
    """Every registered output the config asks for, by name, in registration order."""
    built = {name: make(ctx) for name, make in OUTPUTS.items()}
    return {name: out for name, out in built.items() if out is not None}


class MoodFanOut(FanOut):
    """The fan-out with the mood stage: after each state, its stream's mood update goes out.

    Args:
        outputs: every output (they hear every state and status).
        stage: the mood stage (one tracker and detector per stream).
        only: the one output that hears mood updates (the session log without ``--mood``),
            or None for every output that takes them.
    """

    def __init__(self, outputs: Iterable[Output], stage: MoodStage, only: MoodOutput | None = None) -> None:
        super().__init__(outputs)
        self.stage = stage
        self.only = only

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        super().send_state(state, weights, now)
        update = self.stage.update(state)
        if update.reading is not None or update.events:
            self.send_mood(update, now)

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        if self.only is None:
            super().send_mood(update, now)
        else:
            self.only.send_mood(update, now)


def fan_out(ctx: OutputContext, built: dict[str, Output]) -> FanOut:
    """The daemon's fan-out of ``built``: with the mood stage when the config tracks mood."""
    cfg = ctx.config
    if not cfg.tracks_mood:
        return FanOut(built.values())
    stage = MoodStage(ctx.labels, ctx.sample_rate, cfg.mood_settings)
    # Without --mood the stage runs for the session log alone (tracks_mood: there is one).
    only = None if cfg.mood else cast(MoodOutput, built["session_log"])
    return MoodFanOut(built.values(), stage, only)
