"""What every output is to the daemon: three calls, and one fan-out that makes them.

An output hears each state (with its expression weights) and each input-status change,
and is closed once at the end.  OSC, WebSocket clients, ``--print`` lines, ``--jsonl``
lines and the live status line are outputs; the daemon holds a :class:`FanOut` of them and
knows none of them by name.  States come from the processing thread: an output that
lives in the event loop's thread (the WebSocket broadcaster) is wrapped in :class:`OnLoop`,
the one place that hands work across threads.

With ``--mood`` (or ``--session-log``) the fan-out also hands on mood updates
(:meth:`FanOut.send_mood`): an output that has a ``send_mood`` method (see
:class:`MoodOutput`) hears them; one without it (the status line) does not: that is the
protocol's default.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable, Mapping, Protocol

from ..core.mood_stage import MoodUpdate
from ..core.state import EmotionState

__all__ = ["Output", "MoodOutput", "Weights", "FanOut", "OnLoop", "post_to_loop"]

# Expression weights of a state: set name (vrm, vrm0, arkit) -> expression -> weight in [0, 1].
Weights = Mapping[str, Mapping[str, float]]


class Output(Protocol):
    """One place states go to."""

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        """A new state (``now``: monotonic seconds)."""

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        """An input's health changed (``no_audio``, ``ok``, ...; ``detail`` says why)."""

    def close(self) -> None:
        """Release what the output holds; called once, after the final states."""


class MoodOutput(Protocol):
    """An output that also hears mood updates (optional: outputs without it are passed over)."""

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        """A stream's mood reading (at most one a second) and the events it fired."""


def post_to_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> bool:
    """Run ``fn(*args)`` in ``loop``'s thread; False when the loop is already closed (shutdown)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop closed meanwhile: nobody is left to hear it
        return False
    return True


class OnLoop:
    """An output whose calls must run in an event loop's thread, callable from any thread.

    ``close`` is left to the owner, who closes such an output with its server (awaited).
    """

    def __init__(self, output: Output, loop: asyncio.AbstractEventLoop) -> None:
        self.output = output
        self.loop = loop

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        post_to_loop(self.loop, self.output.send_state, state, weights, now)

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        post_to_loop(self.loop, self.output.send_status, stream, status, detail, now)

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        send = getattr(self.output, "send_mood", None)
        if send is not None:
            post_to_loop(self.loop, send, update, now)

    def close(self) -> None:
        pass


class FanOut:
    """Every output hears every state and status, in the order they were added."""

    def __init__(self, outputs: Iterable[Output] = ()) -> None:
        self.outputs: list[Output] = list(outputs)

    def add(self, output: Output) -> None:
        self.outputs.append(output)

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        for output in self.outputs:
            output.send_state(state, weights, now)

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        for output in self.outputs:
            output.send_status(stream, status, detail, now)

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        for output in self.outputs:
            send = getattr(output, "send_mood", None)
            if send is not None:
                send(update, now)

    def close(self) -> None:
        for output in self.outputs:
            output.close()
