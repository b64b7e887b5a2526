"""The ``[mood]`` config section and ``--mood``/``--session-log`` options, through the option machinery."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser_daemon import cli
from ser_daemon.app.config import DaemonConfig, load_toml
from ser_daemon.app.options import _from_toml, config_from_options
from ser_daemon.errors import ConfigError
from ser_daemon.sessions.store import sessions_dir


def _config(tmp_path: Path, text: str, **flags: object) -> DaemonConfig:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return config_from_options({**_from_toml(load_toml(path), str(path)), **flags})


def test_a_mood_section_sets_the_tracker_and_enabled_turns_it_on(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "[mood]\nenabled = true\ncooldown_s = 5\n[mood.circumplex]\nangry = [-0.5, 0.7]\n")
    assert cfg.mood and cfg.tracks_mood and cfg.session_log is None
    assert cfg.mood_settings.cooldown_s == 5 and cfg.mood_settings.circumplex["angry"] == (-0.5, 0.7)
    off = _config(tmp_path, "[mood]\nmin_voiced_s = 3\n")
    assert not off.mood and not off.tracks_mood and off.mood_settings.min_voiced_s == 3
    assert _config(tmp_path, "mood = true\n").mood


def test_an_unknown_or_bad_mood_key_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.toml: \[mood\] has no setting 'cooldwn_s'; did you mean cooldown_s\?"):
        _config(tmp_path, "[mood]\ncooldwn_s = 5\n")
    with pytest.raises(ConfigError, match=r"c\.toml: mood cooldown_s must be a number in \[0.0, 86400.0\]"):
        _config(tmp_path, "[mood]\ncooldown_s = -1\n")


def test_session_log_folder_and_retention(tmp_path: Path) -> None:
    assert _config(tmp_path, 'session_log = ""\n').session_log == sessions_dir()
    cfg = _config(tmp_path, f'session_log = "{tmp_path / "logs"}"\nsession_retention_days = 7\n')
    assert cfg.session_log == tmp_path / "logs" and cfg.session_retention_days == 7 and cfg.tracks_mood and not cfg.mood
    with pytest.raises(ConfigError, match="session_retention_days"):
        DaemonConfig(session_retention_days=0.5)
    args = vars(cli.build_parser().parse_args(["--session-log", "--mood"]))
    assert args == {"session_log": "", "mood": True}


def test_a_bad_mood_key_through_the_cli_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[mood]\nfrustration = 1\n", encoding="utf-8")
    assert cli.main(["--config", str(path), "--no-ws", "--no-osc"]) == 2
    err = capsys.readouterr().err
    assert err == f"ser-daemon: error: {path}: [mood] has no setting 'frustration'\n" or (
        err.startswith(f"ser-daemon: error: {path}: [mood] has no setting 'frustration'; did you mean ")
        and err.count("\n") == 1)
