"""The commented config file ``ser-daemon --write-config`` writes (pure text).

Generated from the argument parser, so every option is in it with its help
text and its default (or an example where there is no default), all
commented out: the file changes nothing until a line is uncommented, and a
newer daemon's defaults are not frozen into an old file.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import MISSING, fields
from typing import Any

from ..core.settings import AnalysisSettings, SmoothingSettings, VadSettings
from .config import DaemonConfig

__all__ = ["config_template", "EXAMPLES"]

# Options whose default is "none" or a computed value: an example value to show instead.
EXAMPLES: dict[str, Any] = {
    "input": ["clip.wav"],
    "device": ["Headset"],
    "host_api": "wasapi",
    "samplerate": 48000,
    "channels": 1,
    "model": "path/to/model",
    "mapping": "my_mapping.toml",
    "osc": ["127.0.0.1:9000", "vrchat"],
    "osc_profile": "generic",
    "ws": "127.0.0.1:8765",
    "web": "127.0.0.1:8080",
    "ingest": "127.0.0.1:8766",
    "ws_token": "a-long-random-secret-of-16-or-more-characters",
    "ws_allow_origin": ["http://localhost:3000"],
    "window_ms": 2000.0,
    "stats_json": "stats.json",
    "session_log": "",
    "print": False,
    "no_osc": False,
    "no_ws": False,
    "no_oscquery": False,
}


def _defaults(config: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cls in (config, AnalysisSettings, VadSettings, SmoothingSettings):
        for f in fields(cls):
            if f.default is not MISSING and f.default is not None and not isinstance(f.default, tuple):
                out[f.name] = f.default
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def config_template(parser: argparse.ArgumentParser, options: set[str] | None = None,
                    config: type = DaemonConfig) -> str:
    """The commented TOML text: one ``# key = value`` line per option, its help above it (defaults: ``config``'s)."""
    defaults = {**_defaults(config), **EXAMPLES}
    lines = [
        "# ser-daemon configuration (TOML). Read when --config is not given;",
        "# `ser-daemon --config-path` says where this file belongs.",
        "# Every option below is commented out: remove the leading '# ' of a `key = value`",
        "# line to use it. Flags on the command line win over this file.",
        "",
    ]
    for group in parser._action_groups:  # argparse keeps no public list of groups
        acts = [a for a in group._group_actions
                if a.dest in defaults and (options is None or a.dest in options) and a.option_strings]
        if not acts:
            continue
        lines.append(f"# --- {group.title} ---")
        for a in acts:
            text = (a.help or "").replace("%%", "%")
            for ln in textwrap.wrap(f"{a.option_strings[0]}: {text}", 96):
                lines.append(f"## {ln}")
            lines.append(f"# {a.dest} = {_toml(defaults[a.dest])}")
        lines.append("")
    return "\n".join(lines)
