"""The multiplexed ingest's way back: its streams' states return on the connection they came in on.

An output like the others (see :mod:`.base`), so the daemon fans every state out once; the
ingest server keeps only the states of its own multiplexed streams and sends them per tick.
"""

from __future__ import annotations

from typing import Any, Callable

from ..core.state import EmotionState
from .base import Weights
from .mapping import ExpressionMapping
from .messages import state_json

__all__ = ["IngestReturn", "state_message"]


class IngestReturn:
    """Hands each state to the ingest server's ``deliver`` (processing thread); statuses stay local."""

    def __init__(self, deliver: Callable[[EmotionState], None]) -> None:
        self._deliver = deliver

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        self._deliver(state)

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        pass

    def close(self) -> None:
        pass


def state_message(mapping: ExpressionMapping, state: EmotionState) -> dict[str, Any]:
    """A state as the WebSocket's ``state`` message: what the multiplexed ingest's JSON states carry."""
    return state_json(state, 0, mapping.all_weights(state.smoothed))
