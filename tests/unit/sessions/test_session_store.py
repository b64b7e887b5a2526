"""Session log files on disk: names, listing, retention and the writer (real files in a temporary folder)."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ser_daemon.errors import OutputError
from ser_daemon.sessions.records import read_session_log, session_header
from ser_daemon.sessions.store import SessionLogWriter, list_logs, log_path, prune, sessions_dir

T0 = datetime(2026, 12, 1, 9, 30, 5, tzinfo=timezone.utc)


def header(stream: str = "mic") -> dict:
    return session_header(stream=stream, labels=("neutral", "angry"), started_utc=T0, sample_rate=16000)


def test_names_sort_by_start_and_never_collide(tmp_path: Path) -> None:
    p = log_path(tmp_path, "mic", T0)
    assert p.name == "mic-20261201T093005Z.jsonl"
    p.write_text("x")
    assert log_path(tmp_path, "mic", T0).name == "mic-20261201T093005Z-1.jsonl"
    assert log_path(tmp_path, "../a b/c", T0).name == "___a_b_c-20261201T093005Z.jsonl"
    with pytest.raises(ValueError, match="timezone"):
        log_path(tmp_path, "mic", datetime(2026, 1, 1))
    assert sessions_dir().name == "sessions"


def test_writer_writes_a_log_the_reader_reads(tmp_path: Path) -> None:
    path = log_path(tmp_path / "new", "mic", T0)
    with SessionLogWriter(path, header(), flush_s=1.0) as w:
        for k in range(8):
            w.write({"type": "state", "t": 0.25 * k, "label": "angry", "uncertain": False, "voice": True,
                     "confidence": 0.9}, time_s=0.25 * k)
        w.write({"type": "event", "stream": "mic", "kind": "delighted", "time": 2.0, "evidence": {}}, time_s=2.0)
        assert w.records == 9
    log = read_session_log(path)
    assert len(log.state_t) == 8 and [e["kind"] for e in log.events] == ["delighted"]
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    w.close()  # twice is harmless
    with pytest.raises(OutputError, match="closed"):
        w.write({"type": "state"})
    with pytest.raises(OutputError, match="cannot write the session log"):
        SessionLogWriter(path, header())  # never overwrites an existing log
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write the session log"):
        SessionLogWriter(blocker / "mic.jsonl", header())


def test_list_and_prune_touch_only_session_logs(tmp_path: Path) -> None:
    for days in (0, 3, 10, 40):
        log_path(tmp_path, "mic", T0 - timedelta(days=days)).write_text("{}\n")
    (tmp_path / "notes.jsonl").write_text("mine")
    (tmp_path / "mic-2026.jsonl").write_text("mine too")
    (tmp_path / "mic-20200101T000000Z.jsonl.bak").write_text("and this")
    if os.name == "posix":
        (tmp_path / "s2-20200101T000000Z.jsonl").symlink_to(tmp_path / "notes.jsonl")
    logs = list_logs(tmp_path)
    assert [f.started for f in logs] == [T0 - timedelta(days=d) for d in (40, 10, 3, 0)]
    assert {f.stream for f in logs} == {"mic"} and all(f.size == 3 for f in logs)
    gone = prune(tmp_path, 7, now=T0)
    assert sorted(p.name for p in gone) == sorted(f.path.name for f in logs[:2])
    assert len(list_logs(tmp_path)) == 2
    assert {"notes.jsonl", "mic-2026.jsonl", "mic-20200101T000000Z.jsonl.bak"} <= {p.name for p in tmp_path.iterdir()}
    assert list_logs(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="retention_days"):
        prune(tmp_path, -1, now=T0)
