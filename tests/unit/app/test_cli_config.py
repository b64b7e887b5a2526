"""Per-user config file, --write-config and --jsonl, through the real CLI (subprocesses, real files)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from importlib import resources
from pathlib import Path

import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd
from ser_daemon import cli
from ser_daemon.app import options
from ser_daemon.app.config_template import config_template
from tiny_model import tone, write_wav


def _run(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(daemon_cmd(*args), capture_output=True, text=True, timeout=timeout(60), cwd=REPO,
                          env={**os.environ, **(env or {})}, **kw)


@pytest.mark.slow  # starts a process
def test_config_path_and_write_config(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    r = _run("--config-path", env=env)
    assert r.returncode == 0 and Path(r.stdout.strip()) == tmp_path / "cfg" / "ser-daemon" / "config.toml"
    w = _run("--write-config", env=env)
    assert w.returncode == 0, w.stderr
    path = Path(w.stdout.strip())
    assert path == Path(r.stdout.strip()) and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert "# hop_ms = 250.0" in text and "# vrchat_params = \"compact\"" in text
    again = _run("--write-config", env=env)  # never overwrites
    assert again.returncode == 2 and "exists already" in again.stderr
    assert path.read_text(encoding="utf-8") == text


def test_every_line_of_the_written_config_is_valid_when_uncommented() -> None:
    text = config_template(cli.build_parser())
    entries = re.findall(r"^# (\w+ = .+)$", text, re.M)
    assert len(entries) >= 40
    import tomllib

    for entry in entries:
        values = tomllib.loads(entry)
        opts = options._from_toml(values, "template")
        options.config_from_options(opts)  # raises ConfigError if the example does not hold


@pytest.mark.slow  # starts a process
def test_per_user_config_is_read_unless_config_is_given(tiny_bundle, tmp_path: Path) -> None:
    home = tmp_path / "cfg"
    (home / "ser-daemon").mkdir(parents=True)
    (home / "ser-daemon" / "config.toml").write_text("jsonl = true\nno_osc = true\nno_ws = true\n", encoding="utf-8")
    wav = write_wav(tmp_path / "a.wav", tone(3000, 1.5))
    env = {"XDG_CONFIG_HOME": str(home), "SER_MODEL_DIR": str(tiny_bundle)}
    r = _run("--input", str(wav), "--fast", "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["type"] == "hello"
    other = tmp_path / "other.toml"
    other.write_text("no_osc = true\nno_ws = true\n", encoding="utf-8")
    r = _run("--input", str(wav), "--fast", "--quiet", "--config", str(other), env=env)
    assert r.returncode == 0 and r.stdout == ""  # the per-user file was not read


@pytest.mark.slow  # starts a process
def test_jsonl_lines_follow_the_websocket_schema(tiny_bundle, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((resources.files("ser_daemon") / "schema" / "messages.schema.json").read_text())
    wav = write_wav(tmp_path / "a.wav", tone(3000, 2.5))
    r = _run("--input", str(wav), "--fast", "--jsonl", "--no-osc", "--no-ws", "--quiet",
             env={"SER_MODEL_DIR": str(tiny_bundle)})
    assert r.returncode == 0, r.stderr
    msgs = [json.loads(ln) for ln in r.stdout.splitlines()]
    for m in msgs:
        jsonschema.validate(m, schema)
    hello, states = msgs[0], msgs[1:]
    assert hello["type"] == "hello" and hello["labels"] == ["neutral", "calm", "happy", "angry"]
    assert [s["type"] for s in states] == ["state"] * len(states) and len(states) >= 4
    assert [s["seq"] for s in states] == list(range(len(states))) and states[-1]["final"]
    assert set(states[1]["weights"]) == {"vrm", "vrm0", "arkit"}


@pytest.mark.slow  # starts a process
def test_jsonl_reader_going_away_stops_the_daemon_quietly(tiny_bundle, tmp_path: Path) -> None:
    """`ser-daemon --jsonl | head -n 3`: the daemon ends when the pipe closes, without a traceback."""
    wav = write_wav(tmp_path / "long.wav", tone(3000, 30.0))
    proc = subprocess.Popen(
        daemon_cmd("--input", str(wav), "--jsonl", "--no-osc", "--no-ws", "--quiet"), cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
    )
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert all(json.loads(ln) for ln in lines)
        proc.stdout.close()
        t0 = time.monotonic()
        proc.wait(timeout=timeout(10))
        err = proc.stderr.read()
    finally:
        proc.kill()
    assert time.monotonic() - t0 < timeout(5)
    assert proc.returncode == 141 and "Traceback" not in err, err  # 128 + SIGPIPE, as `set -o pipefail` expects
