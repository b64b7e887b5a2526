"""``--session-log``: the output that writes each stream's states, mood and events into its own log.

One :class:`~ser_daemon.sessions.store.SessionLogWriter` per stream, opened at the
stream's first state (its header says when the session started, in UTC) and
closed after the stream's final state and its last mood reading, so an ingest
stream that comes back later gets a new log.  Nothing here is audio: a state
record is the shown label, voice and confidence (:func:`~ser_daemon.sessions.records.state_record`),
mood and event records are the WebSocket messages.

A log that cannot be written (a full disk, a folder removed) is given up with one
warning; the daemon goes on, since the face must not stop because a log failed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from ..core.mood_stage import MoodUpdate
from ..core.state import EmotionState
from ..errors import OutputError
from ..outputs.base import Weights
from ..outputs.mood_messages import update_messages
from .records import session_header, state_record
from .store import SessionLogWriter, log_path

__all__ = ["SessionLogOutput"]

log = logging.getLogger(__name__)


class SessionLogOutput:
    """Writes one session log per stream into ``folder``.

    Args:
        folder: where the logs go (made, private to the user, if missing).
        labels: the model's classes (in the header).
        sample_rate: the model's rate (states' ``end_sample`` is counted in it).
        model: the model's name (in the header).
        utc_now: the wall clock, for the session's start.
    """

    def __init__(self, folder: Path, labels: Sequence[str], sample_rate: int, model: str | None = None,
                 utc_now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.folder = Path(folder)
        self.labels = tuple(labels)
        self.sample_rate = int(sample_rate)
        self.model = model
        self.utc_now = utc_now
        self.paths: list[Path] = []  # every log opened, in order
        self._writers: dict[str, SessionLogWriter] = {}
        self._ending: set[str] = set()
        self._failed: set[str] = set()

    def _writer(self, stream: str) -> SessionLogWriter | None:
        w = self._writers.get(stream)
        if w is None and stream not in self._failed:
            started = self.utc_now()
            try:
                w = SessionLogWriter(log_path(self.folder, stream, started), session_header(
                    stream=stream, labels=self.labels, started_utc=started, sample_rate=self.sample_rate,
                    model=self.model))
            except OutputError as exc:
                self._give_up(stream, exc)
                return None
            self._writers[stream] = w
            self.paths.append(w.path)
        return w

    def _give_up(self, stream: str, exc: OutputError) -> None:
        log.warning("session log of %s given up: %s", stream, exc)
        self._close(stream)
        self._failed.add(stream)

    def _close(self, stream: str) -> None:
        w = self._writers.pop(stream, None)
        if w is not None:
            try:
                w.close()
            except OSError as exc:
                log.warning("session log %s: closing failed: %s", w.path, exc)

    def _write(self, stream: str, record: dict, time_s: float) -> None:
        w = self._writer(stream)
        if w is None:
            return
        try:
            w.write(record, time_s)
        except OutputError as exc:
            self._give_up(stream, exc)

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        rec = state_record(state, self.sample_rate)
        self._write(state.stream, rec, rec["t"])
        if state.final:
            self._ending.add(state.stream)  # closed once the final state's mood is written

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        pass

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        for message in update_messages(update):
            self._write(message["stream"], message, float(message["time"]))
        # The mood stage always reads a stream's final state: after it, the stream's log is done.
        if update.reading is not None and update.reading.stream in self._ending:
            self._end(update.reading.stream)

    def _end(self, stream: str) -> None:
        self._ending.discard(stream)
        self._failed.discard(stream)
        self._close(stream)

    def close(self) -> None:
        for stream in list(self._writers):
            self._end(stream)
