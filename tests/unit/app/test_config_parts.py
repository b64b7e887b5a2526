"""The config cut per subsystem: every option in a part or the daemon's own, same names, same defaults (fast)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ser_daemon.app.config import (
    DAEMON_OWN,
    DaemonConfig,
    DaemonParts,
    InputSettings,
    OutputSettings,
    ServerSettings,
    VRChatSettings,
)
from ser_daemon.app.inputs import add_local_inputs
from ser_daemon.app.outputs import OutputContext
from ser_daemon.app.servers import Servers, access_policy
from ser_daemon.core.mood_settings import MoodSettings
from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.outputs.osc_targets import OscTarget

PARTS = (InputSettings, OutputSettings, VRChatSettings, ServerSettings)


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_option_is_in_a_part_or_the_daemons_own_and_nothing_else() -> None:
    options = _names(DaemonConfig)
    in_parts = set().union(*(_names(p) for p in PARTS)) | {"analysis"}
    assert in_parts <= options, sorted(in_parts - options)
    assert options - in_parts == set(DAEMON_OWN)


def test_a_part_is_declared_as_the_config_declares_it_and_is_frozen() -> None:
    """One declaration per option: a part takes the config's type and default, it does not repeat them."""
    declared = {f.name: f for f in dataclasses.fields(DaemonConfig)}
    defaults = DaemonConfig()
    for part in PARTS:
        assert dataclasses.is_dataclass(part) and part.__module__ == "ser_daemon.app.config"
        for f in dataclasses.fields(part):
            assert f.type == declared[f.name].type, (part.__name__, f.name)
            assert getattr(part(), f.name) == getattr(defaults, f.name), (part.__name__, f.name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part(), dataclasses.fields(part)[0].name, None)
    assert OutputSettings().mood_settings is not OutputSettings().mood_settings  # a factory, not one shared object


def test_parts_carry_the_configs_values_to_each_subsystem() -> None:
    cfg = DaemonConfig(inputs=(Path("a.wav"),), block_ms=40.0, fast=True, osc=(OscTarget(Endpoint("127.0.0.1", 9000)),),
                       osc_format="messages", vrchat_prefix="X_", vrchat_listen=0, oscquery=False, jsonl=True,
                       mood=True, mood_settings=MoodSettings(), ws=Endpoint("127.0.0.1", 0), max_clients=3,
                       ws_token="0123456789abcdef0123", ingest=Endpoint("127.0.0.1", 0), wait_clients=2,
                       analysis=AnalysisSettings(hop_ms=125.0))
    parts = cfg.parts
    assert isinstance(parts, DaemonParts)
    assert parts.inputs == InputSettings(inputs=(Path("a.wav"),), block_ms=40.0, fast=True, ingest=Endpoint("127.0.0.1", 0))
    assert parts.analysis is cfg.analysis and parts.analysis.hop_ms == 125.0
    assert parts.outputs.osc == cfg.osc and parts.outputs.osc_format == "messages" and parts.outputs.jsonl
    assert parts.outputs.vrchat_prefix == "X_" and parts.outputs.tracks_mood == cfg.tracks_mood is True
    assert parts.vrchat == VRChatSettings(vrchat_prefix="X_", vrchat_listen=0, oscquery=False)
    assert parts.servers.max_clients == 3 and parts.servers.wait_clients == 2 and parts.servers.ws == cfg.ws
    assert access_policy(parts.servers) == access_policy(cfg)  # the part and the whole config say the same
    assert Servers(parts.servers).policy.token == "0123456789abcdef0123"


def test_the_output_context_takes_the_outputs_part_or_cuts_a_whole_config() -> None:
    cfg = DaemonConfig(jsonl=True, session_log=Path("logs"))
    whole = OutputContext(cfg, ("a", "b"), None, None, ("mic",), lambda: 0, lambda: "")  # type: ignore[arg-type]
    part = OutputContext(cfg.parts.outputs, ("a", "b"), None, None, ("mic",), lambda: 0, lambda: "")  # type: ignore[arg-type]
    assert whole.config == part.config == cfg.parts.outputs
    assert whole.config.tracks_mood


def test_the_inputs_read_only_their_part() -> None:
    class NoEngine:
        """add_local_inputs with nothing to add touches no engine."""

    assert add_local_inputs(InputSettings(ingest=Endpoint("127.0.0.1", 0)), NoEngine()) is None  # type: ignore[arg-type]
