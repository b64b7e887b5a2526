"""``--session-log``, ``ser-daemon sessions`` and ``ser-daemon report`` through the real CLI (subprocesses).

The daemon replays the bundled demo recording with the shipped model, as a first run does; the
log is read back with :mod:`ser_daemon.sessions.records` and compared with the ``--jsonl`` lines
of the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd
from ser_daemon.sessions.records import read_session_log
from ser_daemon.sessions.store import list_logs

pytestmark = pytest.mark.slow  # every test starts the CLI

STATE_KEYS = {"type", "t", "label", "uncertain", "voice", "confidence"}  # a state record: decisions, never audio


def _run(*args: str, data_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "XDG_CONFIG_HOME": str(data_home / "no-config")}
    return subprocess.run(daemon_cmd(*args), capture_output=True, text=True, timeout=timeout(90), cwd=REPO, env=env)


def _demo(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    r = _run("--fast", "--no-osc", "--no-ws", "--quiet", "--jsonl", *extra, data_home=tmp_path / "data")
    assert r.returncode == 0, r.stderr
    return r


def test_the_demo_is_logged_into_the_user_data_folder_and_reads_back(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "ser-daemon" / "sessions"
    folder.mkdir(parents=True)
    (folder / "demo-20200101T000000Z.jsonl").write_text("{}\n", encoding="utf-8")  # years old: pruned
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")  # not a log: never touched
    r = _demo(tmp_path, "--session-log", "--mood")
    assert r.stderr == (f"session log: writing states, mood and events (never audio) to {folder}; kept 30 days\n")
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    [found] = list_logs(folder)
    assert found.stream == "demo" and found.path.stat().st_mode & 0o777 == 0o600
    log = read_session_log(found.path)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    states = [m for m in lines if m["type"] == "state"]
    assert len(log.state_t) == len(states) > 20
    assert log.state_label == ["unsure" if m["uncertain"] else m["label"] for m in states]
    assert log.mood == [m for m in lines if m["type"] == "mood"] and len(log.mood) >= 10
    assert log.events == [m for m in lines if m["type"] == "event"]
    assert log.header["model"] == "default" and log.header["stream"] == "demo"
    records = [json.loads(x) for x in found.path.read_text(encoding="utf-8").splitlines()[1:]]
    assert all(set(rec) == STATE_KEYS for rec in records if rec["type"] == "state")


def test_without_session_log_nothing_is_written(tmp_path: Path) -> None:
    r = _demo(tmp_path, "--mood")
    assert r.stderr == "" and not (tmp_path / "data").exists()
    assert {json.loads(x)["type"] for x in r.stdout.splitlines()} >= {"hello", "state", "mood"}


def test_sessions_lists_and_deletes_and_report_draws(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for _ in range(2):
        _demo(tmp_path, "--session-log", str(logs))
    names = [f.path.name for f in list_logs(logs)]
    assert len(names) == 2
    home = tmp_path / "data"
    listed = _run("sessions", "--dir", str(logs), data_home=home)
    assert listed.returncode == 0 and all(n in listed.stdout for n in names), listed
    out = tmp_path / "report"
    rep = _run("report", *(str(logs / n) for n in names), "--out", str(out), data_home=home)
    assert rep.returncode == 0, rep.stderr
    assert Path(rep.stdout.strip()) == out / "index.html"
    assert all((out / f"{p}.png").stat().st_size > 1000 for p in ("timeline", "trace", "shares", "trend"))
    bad = _run("report", str(tmp_path / "missing.jsonl"), data_home=home)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr
    gone = _run("sessions", "--dir", str(logs), "--delete", names[0], data_home=home)
    assert gone.returncode == 0 and [f.path.name for f in list_logs(logs)] == names[1:]
    wrong = _run("sessions", "--dir", str(logs), "--delete", "../elsewhere.jsonl", data_home=home)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "no session log named" in wrong.stderr
    (logs / "keep.txt").write_text("x", encoding="utf-8")
    everything = _run("sessions", "--dir", str(logs), "--delete-all", data_home=home)
    assert everything.returncode == 0 and list_logs(logs) == [] and (logs / "keep.txt").exists()
    empty = _run("sessions", data_home=home)
    assert empty.returncode == 0 and empty.stdout == f"no session logs in {home / 'ser-daemon' / 'sessions'}\n"
