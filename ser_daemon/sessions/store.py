"""Where session logs live, how they are named, listed, pruned and written (a thin file adapter).

Logging is opt-in (``--session-log [DIR]``): logs go only under the user's data
folder (``sessions_dir()``, e.g. ``~/.local/share/ser-daemon/sessions``) or the
folder the user named, never elsewhere.  One file per stream and session, named
``<stream>-<YYYYmmddTHHMMSSZ>.jsonl`` after its start, so a folder lists in time
order and ``ser-daemon sessions`` can find them again; files with other names
are never touched.  ``prune`` deletes logs older than the retention.

The writer owns one open file: it writes the header and one JSON line per record,
flushes at most every ``flush_s`` seconds of stream time (and at close), so a
crash loses at most that much, and counts what it wrote.  The record format is
:mod:`ser_daemon.sessions.records`'s.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Mapping

from ..errors import OutputError
from ..outputs.messages import dumps

__all__ = ["LOG_NAME", "LogFile", "sessions_dir", "log_path", "list_logs", "prune", "SessionLogWriter"]

log = logging.getLogger(__name__)

LOG_NAME = re.compile(r"^(?P<stream>[A-Za-z0-9_\-]{1,64})-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d{1,4}))?\.jsonl$")
_SAFE = re.compile(r"[^A-Za-z0-9_\-]")


def sessions_dir() -> Path:
    """The default folder: the per-user data folder's ``sessions``."""
    from ..os_defaults import user_data_path

    return user_data_path() / "sessions"


def log_path(folder: str | Path, stream: str, started: datetime) -> Path:
    """A new log's path in ``folder`` (a counter is added when the name is taken)."""
    if started.tzinfo is None:
        raise ValueError("started needs a timezone-aware datetime")
    name = (_SAFE.sub("_", stream) or "stream")[:64]
    stamp = started.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = Path(folder).expanduser()
    path = base / f"{name}-{stamp}.jsonl"
    for n in range(1, 10000):
        if not path.exists():
            return path
        path = base / f"{name}-{stamp}-{n}.jsonl"
    raise OutputError(f"too many session logs named {name}-{stamp} in {base}")


@dataclass(frozen=True)
class LogFile:
    """A session log found in a folder: its path, stream, start (UTC) and size in bytes."""

    path: Path
    stream: str
    started: datetime
    size: int


def list_logs(folder: str | Path) -> list[LogFile]:
    """The session logs in ``folder``, oldest first (a missing folder has none)."""
    base = Path(folder).expanduser()
    out = []
    try:
        entries = list(base.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise OutputError(f"cannot list session logs in {base}: {exc.strerror or exc}") from None
    for p in entries:
        m = LOG_NAME.match(p.name)
        if not m or not p.is_file() or p.is_symlink():
            continue
        started = datetime.strptime(m.group("stamp"), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        out.append(LogFile(p, m.group("stream"), started, p.stat().st_size))
    return sorted(out, key=lambda f: (f.started, f.path.name))


def prune(folder: str | Path, retention_days: float, now: datetime) -> list[Path]:
    """Delete the logs that started more than ``retention_days`` before ``now``; returns what went."""
    if not retention_days >= 0:
        raise ValueError(f"retention_days must be 0 or more. Received: {retention_days!r}")
    cutoff = now - timedelta(days=retention_days)
    gone = []
    for f in list_logs(folder):
        if f.started < cutoff:
            try:
                f.path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise OutputError(f"cannot delete {f.path}: {exc.strerror or exc}") from None
            gone.append(f.path)
    if gone:
        log.info("session logs: deleted %d older than %g days in %s", len(gone), retention_days, folder)
    return gone


class SessionLogWriter:
    """Writes one session log: the header, then one JSON line per record."""

    def __init__(self, path: str | Path, header: Mapping[str, Any], flush_s: float = 5.0) -> None:
        self.path = Path(path)
        self.flush_s = float(flush_s)
        self.records = 0
        self._last_flush: float | None = None
        try:
            made = not self.path.parent.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if made and os.name == "posix":
                os.chmod(self.path.parent, 0o700)  # a folder we made for personal data: the user's only
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # personal data: the user's only
            self._file: IO[str] | None = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
            self._file.write(dumps(dict(header)) + "\n")
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"cannot write the session log {self.path}: {exc.strerror or exc}") from None

    def write(self, record: Mapping[str, Any], time_s: float | None = None) -> None:
        """Append a record; ``time_s`` (stream time) decides when to flush."""
        if self._file is None:
            raise OutputError(f"the session log {self.path} is closed")
        try:
            self._file.write(dumps(dict(record)) + "\n")
            self.records += 1
            if time_s is not None and (self._last_flush is None or time_s - self._last_flush >= self.flush_s):
                self._file.flush()
                self._last_flush = time_s
        except OSError as exc:
            raise OutputError(f"cannot write the session log {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Flush and close (twice is harmless)."""
        if self._file is not None:
            f, self._file = self._file, None
            f.close()

    def __enter__(self) -> "SessionLogWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
