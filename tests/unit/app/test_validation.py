"""Validation gaps closed: every bad value is one line and exit 2; the token can stay out of `ps`."""

from __future__ import annotations

import subprocess
import time

import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd
from ser_daemon.cli import build_parser, main
from ser_daemon.app.options import config_from_options
from ser_daemon.net.endpoints import parse_origin
from ser_daemon.errors import ConfigError

GOOD_TOKEN = "s3cret-token-0123456789"


def one_line_error(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser-daemon: error: "), err
    return lines[0]


@pytest.mark.parametrize("argv,needle", [
    (["--ws-token", " " * 20], "spaces"),
    (["--ws-token", "a" * 10 + " " * 10], "spaces"),
    (["--ws-token", "\t" * 20], "spaces"),
    (["--vrchat-max-hz", "0"], "vrchat_max_hz"),
    (["--vrchat-max-hz", "-3"], "vrchat_max_hz"),
    (["--osc", "127.0.0.1:0"], "port 0"),
    (["--osc", "vrchat@127.0.0.1:0"], "port 0"),
    (["--ws-allow-origin", "localhost:3000"], "not an origin"),
    (["--ws-allow-origin", "http://localhost:3000/path"], "not an origin"),
    (["--ws-allow-origin", "not a url"], "not an origin"),
    (["--ws-allow-origin", "http://"], "not an origin"),
    (["--max-streams", "0"], "max_streams"),
])
def test_bad_values_are_one_line_and_exit_2(capsys, argv, needle) -> None:
    assert needle in one_line_error(capsys, *argv)


def test_config_file_values_get_the_same_checks(capsys, tmp_path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('ws_token = "                    "\n')
    assert "spaces" in one_line_error(capsys, "--config", str(p))
    p.write_text("vrchat_max_hz = 0\n")
    assert "vrchat_max_hz" in one_line_error(capsys, "--config", str(p))
    p.write_text('ws_allow_origin = ["foo"]\n')
    assert "not an origin" in one_line_error(capsys, "--config", str(p))


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://example.org", "http://[::1]:8080",
                                    "chrome-extension://abcdef"])
def test_real_origins_are_accepted(origin) -> None:
    assert parse_origin(origin) == origin


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("argv", [["--no-such-flag"], ["--hop-ms", "fast"], ["--backend", "gpu"],
                                  ["--osc-profile"], ["stray-positional"]])
def test_argparse_errors_are_one_line_plus_a_hint(argv) -> None:
    r = subprocess.run(daemon_cmd(*argv), capture_output=True, text=True, timeout=timeout(30), cwd=REPO)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) <= 2 and lines[0].startswith("ser-daemon: error: "), r.stderr
    assert "--help" in lines[-1]


def test_token_from_a_file(tmp_path) -> None:
    f = tmp_path / "token"
    f.write_text(GOOD_TOKEN + "\n")
    cfg = config_from_options({"ws_token_file": str(f), "no_osc": True})
    assert cfg.ws_token == GOOD_TOKEN
    f.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        config_from_options({"ws_token_file": str(f)})
    f.write_text(" " * 20 + "\n")
    with pytest.raises(ConfigError):
        config_from_options({"ws_token_file": str(f)})


def test_token_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SER_WS_TOKEN", GOOD_TOKEN)
    assert config_from_options({"no_osc": True}).ws_token == GOOD_TOKEN
    monkeypatch.setenv("SER_WS_TOKEN", " " * 20)
    with pytest.raises(ConfigError, match="spaces"):
        config_from_options({"no_osc": True})


@pytest.mark.slow  # starts a process
def test_token_file_keeps_the_secret_out_of_the_process_list(tiny_bundle, tmp_path) -> None:
    """A real daemon given --ws-token-file: its command line (what `ps` shows) has no secret."""
    import os

    f = tmp_path / "token"
    f.write_text(GOOD_TOKEN + "\n")
    proc = subprocess.Popen(daemon_cmd("--input", str(REPO / "ser_daemon/data/demo.wav"), "--loop", "--no-osc",
                                       "--ws", "127.0.0.1:0", "--ws-token-file", str(f), "--quiet"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)})
    try:
        time.sleep(0.3)
        cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read().decode()
        assert GOOD_TOKEN not in cmdline
    finally:
        proc.terminate()
        proc.communicate(timeout=timeout(10))


def test_help_says_where_the_token_can_come_from() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "--ws-token-file" in text and "SER_WS_TOKEN" in text and "can read a command line" in text
    assert "--max-streams" in text and "1013" in text
