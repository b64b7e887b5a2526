"""``--osc`` targets: the forms a user writes, and a mistyped profile refused with what was meant."""

from __future__ import annotations

import pytest

from ser_daemon.errors import ConfigError
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.outputs.osc_targets import OSC_SCHEMES, OscTarget, parse_osc_target, scheme_class


@pytest.mark.parametrize("text, target", [
    ("vrchat:9001", OscTarget(Endpoint("127.0.0.1", 9001), "vrchat")),  # PROFILE:PORT goes to this machine
    ("vmc:39540", OscTarget(Endpoint("127.0.0.1", 39540), "vmc")),
    ("vrchat.lan:9000", OscTarget(Endpoint("vrchat.lan", 9000), "generic")),  # a dotted host name is no typo
    ("vmc.local", None),  # ... and without a port it is a bad address, not an unknown profile
    ("9000", OscTarget(Endpoint("127.0.0.1", 9000), "generic")),
    ("localhost:9000", OscTarget(Endpoint("localhost", 9000), "generic")),
])
def test_profiles_ports_and_host_names_are_told_apart(text: str, target: OscTarget | None) -> None:
    if target is None:
        with pytest.raises(ConfigError) as err:
            parse_osc_target(text)
        assert str(err.value).startswith("--osc: bad port")
    else:
        assert parse_osc_target(text) == target


@pytest.mark.parametrize("text, typo, meant", [
    ("vrcaht", "vrcaht", "vrchat"), ("vrcaht:9000", "vrcaht", "vrchat"), ("VRCAHT", "VRCAHT", "vrchat"),
    ("genric:9000", "genric", "generic"), ("vxpp", "vxpp", "vxp"), ("vrcaht@127.0.0.1:9000", "vrcaht", "vrchat"),
])
def test_a_mistyped_profile_is_refused_with_the_one_meant(text: str, typo: str, meant: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_osc_target(text)
    assert str(err.value) == f"--osc: unknown profile {typo!r}; did you mean {meant}?"


def test_a_known_profile_with_a_bad_port_is_refused_for_its_port() -> None:
    with pytest.raises(ConfigError) as err:
        parse_osc_target("vrchat:90:00")
    assert "unknown profile" not in str(err.value) and "port" in str(err.value)


def test_every_registered_scheme_names_a_class_that_builds_it() -> None:
    for name, entry in OSC_SCHEMES.items():
        cls = scheme_class(name)
        assert f"{cls.__module__}:{cls.__name__}" == entry.encoder
