"""The session log: one stream's states, mood and events as JSON lines (never audio).

A session log is a UTF-8 text file, one JSON object per line.  The first line
says what the file is; every other line is one record, oldest first::

    {"type": "session", "format": "ser-session-log", "version": 1, "stream": "mic",
     "started_utc": "2026-12-07T01:50:00Z", "labels": ["angry", ...], "sample_rate": 16000,
     "model": "default"}
    {"type": "state", "t": 12.25, "label": "angry", "uncertain": false, "voice": true, "confidence": 0.81}
    {"type": "mood", ...}      the WebSocket ``mood`` message (see messages.schema.json)
    {"type": "event", ...}     the WebSocket ``event`` message

``t`` and the mood and event ``time`` are stream seconds (audio position) from
the session's start; ``started_utc`` anchors them to the calendar.  A state
record may also be a full WebSocket ``state`` message (its ``end_sample`` over
the header's ``sample_rate`` gives ``t``), so ``--jsonl`` output behind a
header reads as a log.  Records of other types are skipped, for logs written by
a newer version.  Nothing in a record is audio or derived from it beyond the
model's decisions.

This module encodes the header and the state records and reads a log back
(:func:`read_session_log`); writing the file (where, when, for how long) is the
daemon's job.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = [
    "LOG_FORMAT",
    "LOG_VERSION",
    "MAX_LINE_BYTES",
    "MAX_RECORDS",
    "SessionLog",
    "session_header",
    "state_record",
    "read_session_log",
]

log = logging.getLogger(__name__)

LOG_FORMAT = "ser-session-log"
LOG_VERSION = 1
MAX_LINE_BYTES = 64 * 1024  # a mood record is about 600 bytes; a longer line is not ours
MAX_RECORDS = 5_000_000  # 24 hours of 250 ms states with a mood record each, with room


def _utc_text(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("started_utc needs a timezone-aware datetime")
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_header(*, stream: str, labels: Sequence[str], started_utc: datetime, sample_rate: int,
                   model: str | None = None) -> dict[str, Any]:
    """The first line of a session log."""
    return {"type": "session", "format": LOG_FORMAT, "version": LOG_VERSION, "stream": str(stream),
            "started_utc": _utc_text(started_utc), "labels": list(labels), "sample_rate": int(sample_rate),
            "model": model}


def state_record(state: Any, sample_rate: int) -> dict[str, Any]:
    """The log record of one :class:`~ser_daemon.core.state.EmotionState` (the shown label, voice, confidence)."""
    c = float(state.confidence)
    return {"type": "state", "t": round(int(state.end_sample) / float(sample_rate), 3), "label": str(state.label),
            "uncertain": bool(getattr(state, "uncertain", False)), "voice": bool(state.voice_active),
            "confidence": round(c, 4) if math.isfinite(c) else 0.0}


@dataclass
class SessionLog:
    """One session log, read back.

    Attributes:
        path: where it was read from.
        header: the first line.
        started: the session's start (UTC).
        state_t, state_label, state_voice: the state records, in time order.
        mood: the mood records (dicts as written).
        events: the event records.
    """

    path: Path
    header: Mapping[str, Any]
    started: datetime
    state_t: np.ndarray
    state_label: list[str]
    state_voice: np.ndarray
    mood: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return str(self.header.get("stream", ""))

    @property
    def duration_s(self) -> float:
        """From the first to the last record's time."""
        times = [float(x) for x in self.state_t[[0, -1]]] if len(self.state_t) else []
        times += [float(m["time"]) for m in self.mood[:1] + self.mood[-1:]]
        times += [float(e["time"]) for e in self.events]
        return max(times) - min(times) if times else 0.0

    def _steps(self) -> np.ndarray:
        """Time each state covers (to the next one; the last one a median hop)."""
        t = self.state_t
        if len(t) < 2:
            return np.zeros(len(t))
        d = np.diff(t)
        return np.append(d, np.median(d)).clip(0.0, 2.0)

    def voiced_shares(self) -> dict[str, float]:
        """Share of voiced time per shown label ("unsure" for uncertain states)."""
        steps = self._steps()
        totals: dict[str, float] = {}
        for lab, voiced, dt in zip(self.state_label, self.state_voice, steps):
            if voiced:
                totals[lab] = totals.get(lab, 0.0) + float(dt)
        whole = sum(totals.values())
        return {k: v / whole for k, v in sorted(totals.items())} if whole > 0 else {}

    def talking_share(self) -> float | None:
        steps = self._steps()
        total = float(steps.sum())
        return float(steps[self.state_voice].sum()) / total if total > 0 else None

    def session_mean(self, key: str) -> float | None:
        """The session horizon of ``key`` ("valence" or "arousal") in the last mood record that knows it."""
        for m in reversed(self.mood):
            v = (m.get(key) or {}).get("session")
            if v is not None:
                return float(v)
        return None


def _record_time(rec: Mapping[str, Any], rate: float) -> float:
    if "t" in rec:
        return float(rec["t"])
    return float(rec["end_sample"]) / rate


def _records(path: Path) -> Iterable[tuple[int, Any]]:
    with path.open("rb") as f:
        for number, line in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if number > MAX_RECORDS:
                raise ConfigError(f"session log {path}: more than {MAX_RECORDS} records; not a session log")
            if len(line) > MAX_LINE_BYTES:
                raise ConfigError(f"session log {path}:{number}: a line longer than {MAX_LINE_BYTES} bytes")
            if not line.strip():
                continue
            try:
                yield number, json.loads(line.decode("utf-8-sig" if number == 1 else "utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if not line.endswith(b"\n"):
                    # The last line of a log whose writer stopped mid-line: keep what came before.
                    log.warning("session log %s:%d: incomplete last line left out", path, number)
                    return
                raise ConfigError(f"session log {path}:{number}: not JSON ({exc})") from None


def read_session_log(path: str | Path) -> SessionLog:
    """Read one session log.

    Raises:
        ConfigError: a missing or unreadable file, a first line that is not a
            session header, or a record that is not JSON or lacks its time.
    """
    p = Path(path).expanduser()
    try:
        if not p.is_file():
            raise ConfigError(f"session log {p}: no such file")
        recs = _records(p)
        first = next(recs, None)
        if first is None:
            raise ConfigError(f"session log {p}: empty")
        header = first[1]
        if not isinstance(header, dict) or header.get("format") != LOG_FORMAT:
            raise ConfigError(f"session log {p}: the first line is not a {LOG_FORMAT} header")
        if header.get("version") != LOG_VERSION:
            raise ConfigError(f"session log {p}: version {header.get('version')!r}; this reader knows {LOG_VERSION}")
        try:
            started = datetime.strptime(str(header.get("started_utc")), "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=timezone.utc)
            rate = float(header.get("sample_rate") or 16000)
        except ValueError:
            raise ConfigError(f"session log {p}: bad started_utc or sample_rate in the header") from None
        t: list[float] = []
        labels: list[str] = []
        voice: list[bool] = []
        mood: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for number, rec in recs:
            if not isinstance(rec, dict):
                raise ConfigError(f"session log {p}:{number}: a record must be a JSON object")
            kind = rec.get("type")
            try:
                if kind == "state":
                    t.append(_record_time(rec, rate))
                    labels.append("unsure" if rec.get("uncertain") else str(rec["label"]))
                    voice.append(bool(rec.get("voice")))
                elif kind == "mood":
                    float(rec["time"])
                    mood.append(rec)
                elif kind == "event":
                    float(rec["time"])
                    events.append(rec)
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"session log {p}:{number}: a {kind} record without its time or label") from None
    except OSError as exc:
        raise ConfigError(f"session log {p}: cannot read it ({exc.strerror or exc})") from None
    order = np.argsort(np.asarray(t), kind="stable")
    return SessionLog(p, header, started, np.asarray(t, dtype=np.float64)[order], [labels[i] for i in order],
                      np.asarray(voice, dtype=bool)[order], mood, events)
