"""A first run's terminal through the real CLI: --help, mistakes on the command line, the status line."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd, on_a_terminal
from tiny_model import tone, write_wav

pytestmark = pytest.mark.slow  # every test starts the CLI


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(daemon_cmd(*args), capture_output=True, text=True, timeout=timeout(60), cwd=REPO, **kw)


def test_help_lists_the_subcommands_within_80_columns() -> None:
    r = _run("--help")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    for sub in ("enroll", "profiles", "cluster", "sessions", "report"):
        assert re.search(rf"^  {sub}\s+\S", text, re.M), f"--help does not list '{sub}'"
    assert "ser-daemon {enroll,profiles,cluster,sessions,report}" in text
    long = [ln for ln in text.splitlines() if len(ln) > 80]
    assert not long, long


@pytest.mark.parametrize("args, said", [
    (("--web", "8080", "--web", "8081"), "--web was given twice; it takes one value ('8080' and '8081')"),
    (("--hop-ms", "250", "--hop-ms", "100"), "--hop-ms was given twice"),
    (("--osc", "vrcaht"), "unknown profile 'vrcaht'; did you mean vrchat?"),
    (("--osc", "vmcc:39539"), "unknown profile 'vmcc'; did you mean vmc?"),
    (("--osc", "vrcaht@127.0.0.1:9000"), "unknown profile 'vrcaht'; did you mean vrchat?"),
])
def test_mistakes_are_one_line_and_exit_2(args: tuple[str, ...], said: str) -> None:
    r = _run(*args, "--no-ws")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert said in r.stderr and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1


@pytest.mark.needs_tf
def test_options_that_take_several_values_still_do(tiny_bundle, tmp_path) -> None:
    """--osc, --input and --device are repeatable; only single-valued options refuse a second value."""
    wav = write_wav(tmp_path / "a.wav", tone(3000, 0.5))
    r = _run("--input", str(wav), "--input", str(wav), "--fast", "--no-ws", "--quiet", "--osc", "127.0.0.1:9",
             "--osc", "vrchat:9", "--vrchat-listen", "0", env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)})
    assert r.returncode == 0, r.stderr


@pytest.mark.needs_tf
def test_print_lines_and_the_status_line_never_share_a_row(tiny_bundle, tmp_path) -> None:
    """The demo's default: --print lines on the terminal, so no status line there at all."""
    wav = write_wav(tmp_path / "s.wav", tone(3000, 3.0))
    env = {**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}
    shown = on_a_terminal(["--input", str(wav), "--no-ws", "--no-osc", "--print"], env, stdout_too=True)
    rows = shown.replace("\r\n", "\n").split("\n")
    printed = [r for r in rows if "#" in r and "voice=" in r]
    assert len(printed) >= 3, shown
    assert all(r.startswith("[s] #") for r in printed), printed  # nothing before a --print line on its row
    assert "latency" not in shown and "\r" not in shown.replace("\r\n", "")


@pytest.mark.needs_tf
def test_status_line_alone_fits_80_columns_and_says_vrchat(tiny_bundle, tmp_path) -> None:
    wav = write_wav(tmp_path / "s.wav", tone(3000, 6.0))
    env = {**os.environ, "SER_MODEL_DIR": str(tiny_bundle), "SER_VRCHAT_SERVICE_PREFIX": "VRChat-Client-Nobody-x"}
    shown = on_a_terminal(["--input", str(wav), "--no-ws", "--osc", "vrchat:9", "--no-oscquery",
                            "--vrchat-listen", "0"], env, stdout_too=False)
    rows = [seg for line in shown.replace("\r\n", "\n").split("\n") for seg in line.split("\r")]
    status = [r.rstrip() for r in rows if "latency" in r]
    assert status, shown
    assert max(len(r) for r in status) < 80, max(status, key=len)
    assert all("VRChat: not found" in r for r in status if r), status
    assert "OSC: VRChat avatar parameters to 127.0.0.1:9" in shown
    assert "VRChat: avatar parameters go to 127.0.0.1:9; not listening for VRChat (--vrchat-listen 0)" in shown
