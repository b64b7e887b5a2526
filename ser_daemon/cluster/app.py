"""Builds the Ray Serve application: ingress -> model, plus the stream-id registry.

``serve run ser_daemon.cluster:build_app model_dir=/path ingress_replicas=2`` passes
its ``key=value`` arguments here as strings; ``ser-daemon cluster`` passes typed ones.
``mood=true`` turns the mood stage on; ``mood_<key>=value`` sets one of its settings
(the daemon's ``[mood]`` keys, e.g. ``mood_cooldown_s=120``; a circumplex point as
JSON, ``mood_circumplex_angry=[-0.6,0.6]``) and turns it on too.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

from ray.serve import Application

from ..core.settings import AnalysisSettings
from ..errors import ConfigError, ModelError
from ..model.bundle import default_model_dir, load_bundle
from .ingress import Ingress
from .model import Model
from .registry import Registry
from .settings import ClusterSettings, mood_from_args

__all__ = ["build_app", "settings_from_args", "APP_NAME"]

APP_NAME = "ser"
_ANALYSIS_KEYS = ("hop_ms", "latency_budget_ms")


def _convert(name: str, value: Any, kind: Any) -> Any:
    if not isinstance(value, str):
        return value
    kind = str(kind)
    try:
        if "int" in kind and value.lower() not in ("none", ""):
            return int(value)
        if "float" in kind:
            return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number. Received: {name}={value!r}") from None
    if value.lower() == "none":
        return None
    return value


def settings_from_args(args: Mapping[str, Any]) -> ClusterSettings:
    """Typed settings from ``serve run`` / CLI arguments; the model folder resolved here, on the driver.

    Raises:
        ConfigError: an unknown key or a value of the wrong type.
        ModelError: no model folder given and no default model installed, or the folder is not a model.
    """
    fields = {f.name: f.type for f in dataclasses.fields(ClusterSettings)}
    opts: dict[str, Any] = {}
    analysis: dict[str, float] = {}
    mood_options: dict[str, Any] = {}
    for key, value in args.items():
        if key in _ANALYSIS_KEYS:
            analysis[key] = float(value)
        elif key.startswith("mood_"):
            mood_options[key] = value
        elif key == "mood":
            continue
        elif key in fields and key != "analysis":
            opts[key] = _convert(key, value, fields[key])
        else:
            raise ConfigError(f"unknown cluster setting {key!r}")
    model_dir = opts.get("model_dir") or default_model_dir()
    if model_dir is None:
        raise ModelError("no model: pass model_dir=DIR (a folder with ser_model.json, readable on every node)")
    try:
        resolved = Path(model_dir).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"model folder {str(model_dir)[:200]!r}: {exc}") from None
    load_bundle(resolved)  # its description and files, checked on the driver before any replica starts
    opts["model_dir"] = os.fspath(resolved)
    opts["analysis"] = AnalysisSettings(**analysis)
    opts["mood"] = mood_from_args(args.get("mood"), mood_options)
    return ClusterSettings(**opts)


def build_app(args: Mapping[str, Any]) -> Application:
    """The application graph for :func:`ray.serve.run` (also Serve's app-builder signature)."""
    settings = args if isinstance(args, ClusterSettings) else settings_from_args(args)
    model = Model.options(**settings.model_options()).bind(settings)
    registry = Registry.bind(settings.lease_s)
    return Ingress.options(**settings.ingress_options()).bind(model, registry, settings)
