"""One declaration per plain option: a DaemonConfig field made with option() is its flag, key, template line, part (fast)."""

from __future__ import annotations

import dataclasses

import pytest

from ser_daemon.app.config import DaemonConfig, _part, declared_options, option
from ser_daemon.app.config_template import config_template
from ser_daemon.app.flags import build_parser
from ser_daemon.app.options import _AS_GIVEN, _from_toml, config_from_options, option_kinds

# A copy of the registry with two made-up options, each declared once, as a new option would be.
Extended = dataclasses.make_dataclass(
    "Extended",
    [("made_up_rate", float, option(2.5, "outputs", "a made-up rate (default 2.5)", metavar="HZ", parts=("servers",))),
     ("made_up_switch", bool, option(False, "general", "a made-up switch"))],
    bases=(DaemonConfig,), frozen=True,
)


def test_one_declaration_makes_the_flag_with_its_type_and_group() -> None:
    parser = build_parser(Extended)
    assert vars(parser.parse_args(["--made-up-rate", "3", "--made-up-switch"])) == {
        "made_up_rate": 3.0, "made_up_switch": True}
    assert vars(parser.parse_args([])) == {}  # unset stays absent: the config file may still set it
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--made-up-rate", "fast"])
    assert exc.value.code == 2
    groups = {a.dest: g.title for g in parser._action_groups for a in g._group_actions}
    assert groups["made_up_rate"] == "outputs" and groups["made_up_switch"] == "general"
    assert "--made-up-rate HZ" in parser.format_help()
    assert "--made-up-rate" not in build_parser().format_help()  # the real registry is untouched


def test_one_declaration_makes_the_config_key_and_the_template_line() -> None:
    parser = build_parser(Extended)
    kinds = option_kinds(parser)
    assert kinds["made_up_rate"] == ("num", None) and kinds["made_up_switch"] == ("bool", None)
    lines = config_template(parser, config=Extended).splitlines()
    at = lines.index("# made_up_rate = 2.5")
    assert lines[at - 1] == "## --made-up-rate: a made-up rate (default 2.5)"
    assert "# made_up_switch = false" in lines


def test_one_declaration_makes_the_field_and_its_part() -> None:
    assert Extended().made_up_rate == 2.5 and Extended(made_up_rate=4.0).made_up_rate == 4.0
    assert not Extended().made_up_switch
    servers = _part("Servers", "servers", "test", ("ws",), config=Extended)
    assert [f.name for f in dataclasses.fields(servers)] == ["ws", "made_up_rate"]
    assert "made_up_rate" not in [f.name for f in dataclasses.fields(_part("Inputs", "inputs", "test", ("fast",),
                                                                            config=Extended))]


def test_unknown_group_is_an_error_not_a_missing_flag() -> None:
    Lost = dataclasses.make_dataclass("Lost", [("lost", int, option(1, "nowhere", "lost"))], bases=(DaemonConfig,),
                                      frozen=True)
    with pytest.raises(TypeError, match="nowhere"):
        build_parser(Lost)


# Values other than the defaults for the declared options whose default says nothing of a good value.
_OTHER = {"samplerate": 48000, "channels": 1, "host_api": "alsa", "profile": "me", "vrchat_prefix": "X_",
          "log_level": "error", "osc_format": "messages", "vrchat_params": "full"}


@pytest.mark.parametrize("name", [flag[2:].replace("-", "_") for _, flag, _ in declared_options(DaemonConfig)])
def test_every_declared_option_reaches_the_config_from_a_file_as_given(name: str) -> None:
    assert name in _AS_GIVEN
    default = DaemonConfig.__dataclass_fields__[name].default
    if name in _OTHER:
        value = _OTHER[name]
    elif isinstance(default, bool):
        value = not default
    elif isinstance(default, int):
        value = default * 2 + 1
    else:
        value = default * 2
    assert value != default
    cfg = config_from_options(_from_toml({name: value}, "test.toml"))
    assert getattr(cfg, name) == value
