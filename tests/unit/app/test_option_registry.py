"""One declaration per plain option: a DaemonConfig field made with option() is its flag, key, template line, part (fast)."""

from __future__ import annotations

import dataclasses

import pytest

from ser_daemon.app.config import DaemonConfig, _part, declared_options, option
from ser_daemon.app.config_template import config_template
from ser_daemon.app.flags import build_parser
from ser_daemon.app.options import _AS_GIVEN, _from_toml, config_from_options, option_kinds


def extended() -> type:
    """A copy of the registry with made-up options, each declared once, as a new option would be.

    Built inside each test (not at import), so a test exercises option() itself.
    """
    return dataclasses.make_dataclass(
        "Extended",
        [("made_up_rate", float, option(2.5, "outputs", "a made-up rate (default 2.5)", metavar="HZ",
                                        parts=("servers",))),
         ("made_up_switch", bool, option(False, "general", "a made-up switch")),
         ("made_up_count", int, option(3, "general", "a made-up count")),
         ("made_up_name", str, option("abc", "general", "a made-up name")),
         ("made_up_mode", str, option("a", "general", "a made-up mode", choices=("a", "b")))],
        bases=(DaemonConfig,), frozen=True,
    )


def test_one_declaration_makes_the_flag_with_its_type_and_group() -> None:
    parser = build_parser(extended())
    got = vars(parser.parse_args(["--made-up-rate", "3.5", "--made-up-switch", "--made-up-count", "0",
                                  "--made-up-name", "x.y", "--made-up-mode", "b"]))
    assert got == {"made_up_rate": 3.5, "made_up_switch": True, "made_up_count": 0, "made_up_name": "x.y",
                   "made_up_mode": "b"}
    assert [type(got[k]) for k in ("made_up_rate", "made_up_count")] == [float, int]
    assert vars(parser.parse_args([])) == {}  # unset stays absent: the config file may still set it
    for bad in (["--made-up-rate", "fast"], ["--made-up-count", "-1"], ["--made-up-count", "2.5"],
                ["--made-up-mode", "c"], ["--made-up-switch", "on"]):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(bad)
        assert exc.value.code == 2, bad
    groups = {a.dest: g.title for g in parser._action_groups for a in g._group_actions}
    assert groups["made_up_rate"] == "outputs" and groups["made_up_switch"] == "general"
    assert "--made-up-rate HZ" in parser.format_help()
    assert "a made-up count" in parser.format_help()
    assert "--made-up-rate" not in build_parser().format_help()  # the real registry is untouched


def test_one_declaration_makes_the_config_key_and_the_template_line() -> None:
    Extended = extended()
    parser = build_parser(Extended)
    kinds = option_kinds(parser)
    assert kinds["made_up_rate"] == ("num", None) and kinds["made_up_switch"] == ("bool", None)
    lines = config_template(parser, config=Extended).splitlines()
    at = lines.index("# made_up_rate = 2.5")
    assert lines[at - 1] == "## --made-up-rate: a made-up rate (default 2.5)"
    assert "# made_up_switch = false" in lines


def test_one_declaration_makes_the_field_and_its_part() -> None:
    Extended = extended()
    assert Extended().made_up_rate == 2.5 and Extended(made_up_rate=4.0).made_up_rate == 4.0
    assert not Extended().made_up_switch
    servers = _part("Servers", "servers", "test", ("ws",), config=Extended)
    assert [f.name for f in dataclasses.fields(servers)] == ["ws", "made_up_rate"]
    assert "made_up_rate" not in [f.name for f in dataclasses.fields(_part("Inputs", "inputs", "test", ("fast",),
                                                                            config=Extended))]


def test_a_switch_on_by_default_is_refused_with_where_it_belongs() -> None:
    with pytest.raises(TypeError) as err:
        option(True, "general", "always on")
    assert str(err.value) == "a switch that is on by default needs its own --no-... flag in app/flags.py"


def test_a_part_is_a_frozen_dataclass_of_its_options_with_the_configs_defaults() -> None:
    """Made inside the test (the module's own parts are made at import, out of a test's sight)."""
    Part = _part("Part", "outputs", "What a made-up subsystem reads.", ("osc_format", "mood_settings"),
                 twice=property(lambda self: self.osc_format * 2))
    assert (Part.__name__, Part.__doc__, Part.__module__) == ("Part", "What a made-up subsystem reads.",
                                                              "ser_daemon.app.config")
    assert [f.name for f in dataclasses.fields(Part)] == ["osc_format", "mood_settings"]
    p = Part()
    assert p.osc_format == DaemonConfig().osc_format and p.mood_settings == DaemonConfig().mood_settings
    assert p.mood_settings is not Part().mood_settings  # a factory stays a factory
    assert Part(osc_format="messages").twice == "messagesmessages"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.osc_format = "messages"
    with pytest.raises(TypeError) as err:
        _part("Broken", "outputs", "doc", ("osc_format", "no_such_option"))
    assert str(err.value) == "Broken: not options of DaemonConfig: ['no_such_option']"


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
