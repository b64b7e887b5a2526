"""Backends and OSC schemes are registered once; every command line and check reads them there."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from fakes import stub_bundle
from ser_daemon import cli
from ser_daemon.cluster import cli as cluster_cli
from ser_daemon.errors import ConfigError, ModelError
from ser_daemon.model import backends
from ser_daemon.model.inference import load_classifier
from ser_daemon.outputs import osc_targets
from ser_daemon.outputs.osc_schemes import GenericScheme, make_scheme
from ser_daemon.profiles import cli as profiles_cli
from ser_daemon.training import eval_cli


def _choices(parser: argparse.ArgumentParser, flag: str) -> tuple:
    for action in parser._actions:
        if flag in action.option_strings:
            return tuple(action.choices)
    for action in parser._actions:  # sub-commands
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found = _choices(sub, flag)
                if found:
                    return found
    return ()


def test_every_backend_flag_offers_the_registered_backends() -> None:
    assert backends.backend_choices() == ("auto", "litert", "keras")
    assert _choices(cli.build_parser(), "--backend") == backends.backend_choices()
    assert _choices(cluster_cli.build_parser(), "--backend") == backends.backend_choices()
    assert _choices(profiles_cli.build_parser(), "--backend") == backends.backend_choices()
    assert _choices(eval_cli.build_parser(), "--backend") == backends.backend_choices(auto=False)


def test_a_new_backend_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered with a classifier class, it is offered, checked and loaded like the others."""

    class Echo:
        backend = "echo"

        def __init__(self, path, labels, input_shape, num_threads):  # type: ignore[no-untyped-def]
            self.args = (path, labels, input_shape, num_threads)

    monkeypatch.setitem(backends.BACKENDS, "echo", backends.Backend("echo", "tflite_file", ".tflite", "x:y", "litert"))
    monkeypatch.setattr(backends, "load_backend_class", lambda entry: Echo)
    monkeypatch.setattr("ser_daemon.model.inference.load_backend_class", lambda entry: Echo)
    assert "echo" in _choices(cli.build_parser(), "--backend")
    from ser_daemon.app.config import DaemonConfig

    assert DaemonConfig(backend="echo").backend == "echo"
    bundle = dataclasses.replace(stub_bundle(labels=("neutral", "happy")), tflite_file=Path("m.tflite"))
    clf = load_classifier(bundle, "echo", num_threads=3)
    assert isinstance(clf, Echo) and clf.args[3] == 3 and clf.args[1] == ("neutral", "happy")
    with pytest.raises(ModelError, match="choose auto, litert, keras or echo"):
        load_classifier(bundle, "nope")
    with pytest.raises(ConfigError, match="backend must be auto, litert, keras or echo"):
        DaemonConfig(backend="nope")


def test_a_new_osc_scheme_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered with its encoder, it is offered by --osc-profile, parsed by --osc and built."""

    class Quiet(GenericScheme):
        name = "quiet"

    entry = osc_targets.SchemeEntry("quiet", 9123, "quiet packets", "ser_daemon.outputs.osc_schemes:GenericScheme")
    monkeypatch.setitem(osc_targets.OSC_SCHEMES, "quiet", entry)
    monkeypatch.setattr(osc_targets, "OSC_PROFILES", tuple(osc_targets.OSC_SCHEMES))
    monkeypatch.setattr(osc_targets, "OSC_DEFAULT_PORTS", {n: s.default_port for n, s in osc_targets.OSC_SCHEMES.items()})
    monkeypatch.setattr("ser_daemon.outputs.osc_schemes.scheme_class", lambda name: Quiet)
    target = osc_targets.parse_osc_target("quiet")
    assert (target.profile, target.endpoint.port) == ("quiet", 9123)
    assert isinstance(make_scheme("quiet", ("neutral",)), Quiet)
    assert _choices(cli.build_parser(), "--osc-profile")[:4] == ("generic", "vrchat", "vmc", "vxp")
    with pytest.raises(ConfigError, match="unknown OSC profile 'nope'"):
        make_scheme("nope", ("neutral",))


def test_the_old_names_of_schemes_and_profiles_still_import_with_a_deprecation_warning() -> None:
    from ser_daemon.outputs import osc_schemes
    from ser_daemon.profiles import store

    with pytest.warns(DeprecationWarning, match="is now GenericScheme"):
        from ser_daemon.outputs.osc_schemes import GenericProfile
    assert GenericProfile is osc_schemes.GenericScheme
    with pytest.warns(DeprecationWarning, match="is now make_scheme"):
        assert osc_schemes.make_profile is osc_schemes.make_scheme
    with pytest.warns(DeprecationWarning, match="is now VoiceProfile"):
        assert store.Profile is store.VoiceProfile
    with pytest.raises(AttributeError):
        osc_schemes.NoSuchScheme  # noqa: B018
