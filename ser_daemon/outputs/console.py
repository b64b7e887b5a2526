"""What the daemon writes for people and scripts: ``--print``/``--jsonl`` lines, the live status line, stage timings.

Split out of :mod:`ser_daemon.app.daemon` so the daemon wires outputs together instead
of also knowing how a closed pipe or a Windows console behaves.  Network outputs
(OSC, WebSocket) have their own modules.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from ..core.mood_stage import MoodUpdate
from ..core.state import EmotionState
from ..errors import OutputError
from .base import Weights
from .messages import dumps, state_json, status_json
from .mood_messages import update_lines, update_messages

__all__ = ["StageStats", "format_state", "status_text", "ConsoleOutput", "STATUS_MAX_COLUMNS", "check_output_file",
           "PrintLines", "JsonLines", "StatusLine", "write_stats_json"]

log = logging.getLogger(__name__)

STATUS_MAX_COLUMNS = 80  # the status line fits the classic terminal width, even on a wider one


class StageStats:
    """Per-stage times and latencies of the newest decisions, in fixed-size arrays.

    Preallocated so that a daemon running for days holds constant memory; the
    summary covers the last ``max_items`` decisions.
    """

    def __init__(self, max_items: int = 16384) -> None:
        self.max_items = max_items
        self.decisions = 0
        self._names: list[str] = []
        self._data = np.zeros((0, max_items), dtype=np.float64)

    def _column(self, name: str) -> int:
        if name not in self._names:
            self._names.append(name)
            self._data = np.vstack([self._data, np.zeros((1, self.max_items))])
        return self._names.index(name)

    def record(self, state: EmotionState, send_ms: float) -> None:
        i = self.decisions % self.max_items
        stages = dict(state.stage_ms)
        stages["encode_send"] = send_ms
        stages["compute_total"] = sum(stages.values())
        stages["decision_latency"] = state.latency_ms
        for k, v in stages.items():
            col = self._column(k)  # may grow the array: look it up first
            self._data[col, i] = v
        self.decisions += 1

    def report(self, classifier: Any, model: str, streams: dict[str, Any], vrchat_listener: Any = None) -> dict[str, Any]:
        """What ``--stats-json`` writes: the backend and model, the stage summary, each stream's counters."""
        data = {"backend": getattr(classifier, "backend", "?"), "model": model, "decisions": self.decisions,
                "stages": self.summary(), "streams": streams}
        if vrchat_listener is not None:
            data["vrchat_listener"] = vrchat_listener
        return data

    def summary(self) -> dict[str, dict[str, float]]:
        n = min(self.decisions, self.max_items)
        out: dict[str, dict[str, float]] = {}
        for k, row in zip(self._names, self._data):
            a = row[:n]
            if not n:
                out[k] = {"n": 0}
                continue
            out[k] = {
                "n": int(n),
                "median_ms": round(float(np.median(a)), 4),
                "p95_ms": round(float(np.percentile(a, 95)), 4),
                "p99_ms": round(float(np.percentile(a, 99)), 4),
                "max_ms": round(float(a.max()), 4),
            }
        return out


def format_state(state: EmotionState) -> str:
    """One human-readable line for a state (the CLI's --print output)."""
    t = state.end_sample / 16000.0 if state.end_sample else 0.0
    probs = " ".join(f"{k[:4]} {v:.2f}" for k, v in zip(state.labels, state.smoothed))
    flag = " final" if state.final else (" LATE" if state.late else "")
    flag += " unsure" if state.uncertain else ""
    return (
        f"[{state.stream}] #{state.seq:<4d} {t:7.2f}s  {state.label:<9s} {state.confidence:.2f}  "
        f"voice={'yes' if state.voice_active else 'no '}  {state.latency_ms:6.1f} ms | {probs}{flag}"
    )


def status_text(state: EmotionState, clients: int, note: str = "", width: int = STATUS_MAX_COLUMNS - 1) -> str:
    """The live status line, at most ``width`` characters (the last column of a terminal would wrap).

    Emotion, confidence, voice and latency always, and ``note`` (what is up with
    VRChat) before the stream's full name; then, as room allows, drops and
    overruns, WebSocket clients.
    """
    label = "unsure" if state.uncertain and not state.final else state.label
    body = (f"{label:<9s} {state.confidence:4.2f} voice {'on ' if state.voice_active else 'off'} "
            f"latency {state.latency_ms:4.0f} ms")
    if note:
        body += "  " + note
    room = max(3, width - len(body) - 2)
    text = f"{state.stream[:room]}: {body}"
    for extra in (f"dropped {state.dropped_windows}/{state.overruns}", f"ws {clients}"):
        if len(text) + 2 + len(extra) <= width:
            text += "  " + extra
    return text[:width]


def _same_file(a: TextIO, b: TextIO) -> bool:
    """Whether two streams write to the same file or terminal."""
    try:
        sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (OSError, ValueError, AttributeError):
        return a is b
    return (sa.st_dev, sa.st_ino, sa.st_rdev) == (sb.st_dev, sb.st_ino, sb.st_rdev)


class _EraseStatusFirst(logging.Filter):
    """Before a log record is written to the status line's terminal, clear that line (no shared rows)."""

    def __init__(self, console: "ConsoleOutput") -> None:
        super().__init__()
        self.console = console

    def filter(self, record: logging.LogRecord) -> bool:
        self.console.clear_status()
        return True


class ConsoleOutput:
    """Lines on stdout and the status line on stderr (a terminal only).

    The status line goes only to a terminal that nothing else prints lines to:
    when ``--print``/``--jsonl`` lines go to the same terminal (the demo's
    default) there is none, since a line printed after it would continue its row.
    Log records and :meth:`note` lines clear it first.

    With ``lines_on_out`` (``--print``/``--jsonl``), a stdout that is closed is refused at once
    (:class:`~ser_daemon.errors.OutputError`).  A reader that goes away (``ser-daemon --print |
    head``) must stop the daemon cleanly, not with a traceback: the first failed write points
    stdout at nothing (Python flushes it again at exit) and calls ``on_closed`` once, with the
    error and whether it was the reader going away (a closed pipe) rather than stdout failing
    (a full disk, an I/O error).
    """

    def __init__(self, out: TextIO | None, status_out: TextIO, *, quiet: bool,
                 on_closed: Callable[[BaseException, bool], None], lines_on_out: bool = False) -> None:
        self.out = out
        self.status_out = status_out
        self.quiet = quiet
        self.on_closed = on_closed
        self.broken = False
        self._last_status = 0.0
        self._status_len = 0
        self._lock = threading.RLock()  # the processing thread draws, the event loop and loggers clear
        try:
            tty = status_out.isatty()
        except (AttributeError, ValueError):
            tty = False
        if lines_on_out:
            self.check_writable()  # refuse at start a stdout that is closed
        self.show_status = tty and not quiet and not (lines_on_out and _same_file(out, status_out))
        self._filter: _EraseStatusFirst | None = None
        if self.show_status:
            self._filter = _EraseStatusFirst(self)
            for h in logging.getLogger().handlers:
                if getattr(h, "stream", None) is status_out:
                    h.addFilter(self._filter)

    def _columns(self) -> int:
        try:
            columns = os.get_terminal_size(self.status_out.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        if columns <= 0:  # a terminal that does not say its size (a bare pty): assume the classic width
            columns = STATUS_MAX_COLUMNS
        return max(20, min(STATUS_MAX_COLUMNS, columns) - 1)  # the last column would wrap on some terminals

    def note(self, text: str, always: bool = False) -> None:
        """One line for people on the status terminal (stderr), on a row of its own; nothing with ``--quiet``.

        Start-up facts (where OSC goes, the web view's address): never on stdout.  ``always``:
        also with ``--quiet`` (what the user must know, e.g. that a session log is written).
        """
        if self.quiet and not always:
            return
        with self._lock:
            self.clear_status()
            try:
                self.status_out.write(text + "\n")
                self.status_out.flush()
            except (OSError, ValueError):
                pass

    def clear_status(self) -> None:
        """Blank the status line's row and put the cursor at its start (it is redrawn at the next state)."""
        with self._lock:
            if not self.show_status or not self._status_len:
                return
            try:
                self.status_out.write("\r" + " " * self._status_len + "\r")
                self.status_out.flush()
            except (OSError, ValueError):
                pass
            self._status_len = 0

    def line(self, text: str) -> None:
        """One line on stdout (``--print``, ``--jsonl``)."""
        if self.broken:
            return
        try:
            if self.out is None:  # Python found no stdout at start (``>&-``)
                raise OSError(errno.EBADF, "stdout is closed")
            self.out.write(text + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError) as exc:  # ValueError: stdout already closed
            self._closed(exc, True)
        except OSError as exc:  # EPIPE / EINVAL: the reader went away; ENOSPC, EIO, EBADF: stdout failed
            self._closed(exc, exc.errno in (errno.EPIPE, errno.EINVAL))

    def check_writable(self) -> None:
        """Refuse to start printing to a stdout that is closed (``>&-``).

        Raises:
            OutputError: no stdout, or its descriptor is not open.
        """
        if self.out is None:
            raise OutputError("stdout is closed: --print / --jsonl have nowhere to write")
        try:
            fd = self.out.fileno()
        except (AttributeError, OSError, ValueError):
            return  # not a file (a test's StringIO): nothing to check
        try:
            os.fstat(fd)
        except OSError as exc:
            raise OutputError(f"stdout is closed ({exc.strerror}): --print / --jsonl have nowhere to write") from None

    def _closed(self, exc: BaseException, reader_gone: bool) -> None:
        self.broken = True
        try:
            if self.out is sys.stdout:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
        self.on_closed(exc, reader_gone)

    def status(self, state: EmotionState, clients: int, note: str = "") -> None:
        """Rewrite the live status line, at most 5 times a second (and for the final state)."""
        if not self.show_status:
            return
        now = time.monotonic()
        if now - self._last_status < 0.2 and not state.final:
            return
        self._last_status = now
        text = status_text(state, clients, note, self._columns())
        # Carriage return and spaces over the old line instead of an ANSI erase: the classic
        # Windows console prints escape codes literally unless a program switches them on.
        with self._lock:
            pad = " " * max(0, self._status_len - len(text))
            self._status_len = len(text)
            self.status_out.write("\r" + text + pad)
            self.status_out.flush()

    def end_status(self) -> None:
        """End the status line so the shell prompt starts on a fresh line."""
        if self._filter is not None:
            for h in logging.getLogger().handlers:
                h.removeFilter(self._filter)
        if self.show_status and self._status_len:
            try:
                self.status_out.write("\n")
            except (OSError, ValueError):
                pass
            self._status_len = 0


class PrintLines:
    """``--print``: one human-readable line per state and per input-status change, on stdout."""

    def __init__(self, console: ConsoleOutput) -> None:
        self.console = console

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        self.console.line(format_state(state))

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        self.console.line(f"[{stream}] status: {status} ({detail})")

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        for text in update_lines(update):
            self.console.line(text)

    def close(self) -> None:
        pass


class JsonLines:
    """``--jsonl``: every message as one JSON line on stdout, in the WebSocket schema."""

    def __init__(self, console: ConsoleOutput) -> None:
        self.console = console

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        self.console.line(dumps(state_json(state, 0, weights)))

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        self.console.line(dumps(status_json(stream, status, detail, now)))

    def send_mood(self, update: MoodUpdate, now: float) -> None:
        for message in update_messages(update):
            self.console.line(dumps(message))

    def send_message(self, message: dict[str, Any]) -> None:
        """A message that is not a state (the hello, VRChat facts)."""
        self.console.line(dumps(message))

    def close(self) -> None:
        pass


class StatusLine:
    """The live status line on a terminal: the newest state, the client count and a short note.

    Args:
        console: draws it (only on a terminal, at most 5 times a second).
        clients: how many WebSocket clients are connected now.
        note: a few words to add (what is known about VRChat), or "".
    """

    def __init__(self, console: ConsoleOutput, clients: Callable[[], int], note: Callable[[], str]) -> None:
        self.console = console
        self.clients = clients
        self.note = note

    def send_state(self, state: EmotionState, weights: Weights, now: float) -> None:
        self.console.status(state, self.clients(), self.note())

    def send_status(self, stream: str, status: str, detail: str, now: float) -> None:
        pass

    def close(self) -> None:
        self.console.end_status()


def write_stats_json(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write the statistics at exit; a full disk now costs the statistics (one error line), not the exit."""
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:  # the path was checked at start-up (check_output_file)
        log.error("cannot write the statistics to %s: %s", path, exc.strerror or exc)


def check_output_file(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse at start-up a file the daemon will write at exit that it cannot write.

    Raises:
        OutputError: the name is too long, its folder is missing or not writable, or it is a
            folder, a FIFO or a device rather than a regular file.
    """
    text = os.fspath(path)
    shown = text if len(text) <= 120 else f"{text[:120]}... ({len(text)} characters)"
    p = Path(text).expanduser()
    try:
        folder = p.parent
        if not folder.is_dir():
            raise OutputError(f"{what} {shown}: the folder {folder} does not exist")
        if p.is_dir():
            raise OutputError(f"{what} {shown} is a folder, not a file")
        if p.exists() and not p.is_file():
            raise OutputError(f"{what} {shown} is not a regular file")
        if not os.access(folder, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
            raise OutputError(f"{what} {shown}: not writable")
    except OSError as exc:  # over the file-name limit, a loop of links
        raise OutputError(f"{what} {shown}: {exc.strerror or exc}") from None
    return p
