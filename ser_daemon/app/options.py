"""From option values (flags over the config file) to a checked :class:`DaemonConfig`.

The CLI parses flags; a config file's values are checked here with the same rules
(:func:`_from_toml`), and :func:`config_from_options` turns the merged values into the
config the daemon runs with.  ``ser-eval`` reads a daemon config file's analysis settings
through :func:`analysis_settings_from_file`, without the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..bounded import MAX_TOKEN_FILE_BYTES, read_text_bounded
from ..core.mood_settings import mood_settings_from_options
from ..core.settings import AnalysisSettings, SmoothingSettings, VadSettings
from ..errors import ConfigError
from ..net.endpoints import parse_endpoint
from ..outputs.osc_targets import parse_osc_target
from .config import DaemonConfig, load_toml
from .flags import DEFAULT_OSC, DEFAULT_WS, _device, build_parser

__all__ = ["config_from_options", "analysis_settings_from_file", "demo_recording", "option_kinds"]




def demo_recording() -> Path:
    """The bundled demo recording (synthetic speech made with espeak-ng)."""
    return Path(str(resources.files("ser_daemon") / "data" / "demo.wav"))



def option_kinds(parser: argparse.ArgumentParser) -> dict[str, tuple[str, Callable[[Any], Any] | None]]:
    """Each config-file key and its kind, read from the option declarations (the parser).

    Kinds: "bool" (a switch), "list" (a repeatable flag), "int"/"num" (checked numbers), "str"
    (anything else, with ``str`` as its converter).  Flags that only act and exit (``--config``,
    ``--list-devices``, ...) are not config keys.
    """
    kinds: dict[str, tuple[str, Callable[[Any], Any] | None]] = {}
    for action in parser._actions:  # argparse keeps no public list of its options
        if not action.option_strings or action.dest in _NOT_OPTIONS or action.dest in ("help", "version"):
            continue
        if isinstance(action, argparse._StoreTrueAction):
            kinds[action.dest] = ("bool", None)
        elif isinstance(action, argparse._AppendAction):
            kinds[action.dest] = ("list", str)
        elif getattr(action.type, "kind", None) in ("int", "num"):
            kinds[action.dest] = (action.type.kind, None)
        else:
            kinds[action.dest] = ("str", str)
    return kinds


# Flags that act and exit: never config-file keys.
_NOT_OPTIONS = ("config", "list_devices", "config_path", "write_config", "vrchat_table")

# Config-file key -> (kind, converter), from the declarations (see option_kinds).
_OPTIONS = option_kinds(build_parser())

# DaemonConfig fields that take their option's value as it is; config_from_options turns the
# others into their types (addresses, paths, OSC targets, the token, the analysis settings).
_TURNED = ("osc", "ws", "web", "ingest", "model", "mapping", "device", "ws_token", "ws_allow_origin", "profile_update",
           "session_log")
_AS_GIVEN = tuple(f.name for f in dataclasses.fields(DaemonConfig) if f.name in _OPTIONS and f.name not in _TURNED)


def _from_toml(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Check a config file's values with the same rules as the flags."""
    out: dict[str, Any] = {}
    values = dict(values)
    if "mood_enabled" in values:  # [mood] enabled = true: the --mood switch, beside its settings
        values["mood"] = values.pop("mood_enabled")
    mood = {k: values.pop(k) for k in list(values) if k.startswith("mood_")}
    try:
        mood_settings_from_options(mood)  # the [mood] section, checked now: one line naming a bad key
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    out.update(mood)
    for key, value in values.items():
        if key not in _OPTIONS or key in _NOT_OPTIONS:
            known = ", ".join(sorted(_OPTIONS))
            raise ConfigError(f"{source}: unknown option {key!r}. Known options: {known}")
        kind, conv = _OPTIONS[key]
        bad = ConfigError(f"{source}: {key} has the wrong type ({type(value).__name__}: {value!r})")
        if kind == "bool":
            if not isinstance(value, bool):
                raise bad
        elif kind == "num":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            try:
                value = float(value)
            except OverflowError:
                raise ConfigError(f"{source}: {key} is out of range (a number of {len(str(value))} digits)") from None
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
        elif kind == "list":
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                value = [value]
            if key == "device" and isinstance(value, list):
                value = [_device(str(v)) if isinstance(v, (str, int)) and not isinstance(v, bool) else v for v in value]
                if all(isinstance(v, (str, int)) for v in value):
                    out[key] = value
                    continue
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad
        elif kind == "str":
            if key == "device" and isinstance(value, int) and not isinstance(value, bool):
                pass
            elif not isinstance(value, str):
                raise bad
            elif conv is not None:
                value = conv(value)
        out[key] = value
    return out


def _settings(opts: dict[str, Any]) -> AnalysisSettings:
    vad = VadSettings(**{k: opts[k] for k in VadSettings.__dataclass_fields__ if k in opts})
    smooth = SmoothingSettings(**{k: opts[k] for k in SmoothingSettings.__dataclass_fields__ if k in opts})
    kw = {k: opts[k] for k in ("hop_ms", "window_ms", "latency_budget_ms") if k in opts}
    return AnalysisSettings(vad=vad, smoothing=smooth, **kw)


def analysis_settings_from_file(path: str | Path) -> AnalysisSettings:
    """The analysis settings (hop, window, gate, smoothing) a daemon config file gives.

    Lets ``ser-eval`` replay with exactly the settings a user runs the daemon
    with; options of the file that are not analysis settings are checked and
    ignored.

    Raises:
        ConfigError: the file is missing, not TOML, or holds a bad option.
    """
    return _settings(_from_toml(load_toml(path), str(path)))


def _token(opts: dict[str, Any]) -> str | None:
    """The WebSocket token: --ws-token, else --ws-token-file, else $SER_WS_TOKEN (checked by DaemonConfig)."""
    if opts.get("ws_token"):
        return str(opts["ws_token"])
    if opts.get("ws_token_file"):
        text = read_text_bounded(opts["ws_token_file"], "token file", MAX_TOKEN_FILE_BYTES)
        lines = text.splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise ConfigError(f"token file {opts['ws_token_file']} is empty")
        return token
    return os.environ.get("SER_WS_TOKEN") or None


def config_from_options(opts: dict[str, Any]) -> DaemonConfig:
    """Turn merged option values (flags over file) into a validated config."""
    inputs = tuple(Path(p) for p in opts.get("input", ()))
    demo = not inputs and not opts.get("device") and "ingest" not in opts
    if demo:
        inputs = (demo_recording(),)
    profile = opts.get("osc_profile", "generic")
    osc_specs = opts.get("osc") or ([profile] if "osc_profile" in opts else [DEFAULT_OSC])
    osc = () if opts.get("no_osc") else tuple(parse_osc_target(t, profile) for t in osc_specs)
    ws = None if opts.get("no_ws") else parse_endpoint(opts.get("ws", DEFAULT_WS), what="--ws")
    web = parse_endpoint(opts["web"], what="--web") if "web" in opts else None
    ingest = parse_endpoint(opts["ingest"], what="--ingest") if "ingest" in opts else None
    token = _token(opts)
    model = Path(opts["model"]).expanduser() if "model" in opts else None
    mapping = Path(opts["mapping"]).expanduser() if "mapping" in opts else None
    kw: dict[str, Any] = {k: opts[k] for k in _AS_GIVEN if k in opts}
    if opts.get("profile_update") and opts.get("no_profile_update"):
        raise ConfigError("--profile-update and --no-profile-update contradict each other; give one")
    kw["profile_update"] = True if opts.get("profile_update") else False if opts.get("no_profile_update") else None
    log_dir = opts.get("session_log")
    if log_dir is not None:
        from ..sessions.store import sessions_dir

        log_dir = Path(log_dir).expanduser() if log_dir else sessions_dir()
    return DaemonConfig(
        inputs=inputs,
        mood_settings=mood_settings_from_options(opts),
        session_log=log_dir,
        model=model,
        mapping=mapping,
        device=tuple(opts["device"]) if opts.get("device") else None,
        web=web,
        ingest=ingest,
        ws_token=token,
        ws_allow_origin=tuple(opts.get("ws_allow_origin", ())),
        oscquery=not opts.get("no_oscquery", False),
        osc=osc,
        ws=ws,
        print_states=bool(opts.get("print", demo and not opts.get("jsonl"))),
        analysis=_settings(opts),
        **kw,
    )


