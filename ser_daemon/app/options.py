"""From option values (flags over the config file) to a checked :class:`DaemonConfig`.

The CLI parses flags; a config file's values are checked here with the same rules
(:func:`_from_toml`), and :func:`config_from_options` turns the merged values into the
config the daemon runs with.  ``ser-eval`` reads a daemon config file's analysis settings
through :func:`analysis_settings_from_file`, without the command line.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..bounded import MAX_TOKEN_FILE_BYTES, read_text_bounded
from ..core.settings import AnalysisSettings, SmoothingSettings, VadSettings
from ..errors import ConfigError
from ..net.endpoints import parse_endpoint
from ..outputs.osc_targets import parse_osc_target
from .config import DaemonConfig, load_toml

__all__ = ["config_from_options", "analysis_settings_from_file", "demo_recording", "DEFAULT_WS", "DEFAULT_OSC"]


DEFAULT_WS = "127.0.0.1:8765"
DEFAULT_OSC = "127.0.0.1:9000"


def demo_recording() -> Path:
    """The bundled demo recording (synthetic speech made with espeak-ng)."""
    return Path(str(resources.files("ser_daemon") / "data" / "demo.wav"))


def _device(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


# name -> (kind, converter); kinds: "str", "num", "int", "bool", "list"
_OPTIONS: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "input": ("list", str),
    "device": ("list", str),
    "fast": ("bool", None),
    "loop": ("bool", None),
    "samplerate": ("int", None),
    "channels": ("int", None),
    "block_ms": ("num", None),
    "model": ("str", str),
    "backend": ("str", str),
    "threads": ("int", None),
    "profile": ("str", str),
    "profile_update": ("bool", None),
    "no_profile_update": ("bool", None),
    "osc": ("list", str),
    "osc_profile": ("str", str),
    "mapping": ("str", str),
    "vrchat_prefix": ("str", str),
    "vrchat_max_hz": ("num", None),
    "vrchat_listen": ("int", None),
    "vrchat_params": ("str", str),
    "vrchat_ignore_mute": ("bool", None),
    "no_oscquery": ("bool", None),
    "host_api": ("str", str),
    "jsonl": ("bool", None),
    "no_osc": ("bool", None),
    "osc_format": ("str", str),
    "ws": ("str", str),
    "no_ws": ("bool", None),
    "ws_queue": ("int", None),
    "web": ("str", str),
    "ingest": ("str", str),
    "max_clients": ("int", None),
    "max_message_bytes": ("int", None),
    "ws_token": ("str", str),
    "ws_token_file": ("str", str),
    "max_streams": ("int", None),
    "ws_allow_origin": ("list", str),
    "allow_remote": ("bool", None),
    "wait_clients": ("int", None),
    "hop_ms": ("num", None),
    "window_ms": ("num", None),
    "latency_budget_ms": ("num", None),
    "print": ("bool", None),
    "quiet": ("bool", None),
    "log_level": ("str", str),
    "stats_json": ("str", str),
}
for _cls in (VadSettings, SmoothingSettings):
    for _name in _cls.__dataclass_fields__:
        _OPTIONS[_name] = ("num", None)
def _from_toml(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Check a config file's values with the same rules as the flags."""
    out: dict[str, Any] = {}
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
    kw: dict[str, Any] = {
        k: opts[k]
        for k in (
            "fast", "loop", "samplerate", "channels", "block_ms", "backend", "threads",
            "osc_format", "ws_queue", "allow_remote", "wait_clients", "quiet", "log_level",
            "vrchat_prefix", "vrchat_max_hz", "vrchat_listen", "max_clients", "max_message_bytes",
            "max_streams",
            "vrchat_params", "vrchat_ignore_mute", "host_api", "jsonl", "profile",
        )
        if k in opts
    }
    if opts.get("profile_update") and opts.get("no_profile_update"):
        raise ConfigError("--profile-update and --no-profile-update contradict each other; give one")
    kw["profile_update"] = True if opts.get("profile_update") else False if opts.get("no_profile_update") else None
    return DaemonConfig(
        inputs=inputs,
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


_NOT_OPTIONS = ("config", "list_devices", "config_path", "write_config", "vrchat_table")
