"""VRChat parameter sets, the [vrchat] table, what VRChat sends back, and the README's tables."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from helpers import REPO
from ser_daemon import cli
from ser_daemon.errors import ConfigError
from ser_daemon.outputs.mapping import load_mapping
from ser_daemon.model.bundle import load_bundle
from ser_daemon.net.osc_in import OscRejected
from ser_daemon.outputs.osc_schemes import VRChatScheme
from ser_daemon.outputs.vrchat_params import VRC_BIT_BUDGET, label_index, plan_from_table
from ser_daemon.vrchat.input import VRChatInput, silenced
from test_messages import make_state

SHIPPED = load_bundle(REPO / "models" / "default").labels


def osc(address: str, *args: tuple[object, str]) -> bytes:
    b = OscMessageBuilder(address)
    for value, tag in args:
        b.add_arg(value, tag)
    return b.build().dgram


def test_shipped_model_is_numbered_in_its_own_order() -> None:
    """The bug this replaces: SER_Neutral 0.75 went out with SER_Label 6, which the README called fearful."""
    labels = SHIPPED
    st = make_state(labels=labels, label="neutral", smoothed=tuple(0.75 if c == "neutral" else 0.03 for c in labels))
    assert label_index(st) == 1 + labels.index("neutral")
    assert labels[label_index(st) - 1] == "neutral"
    # 0 is reserved for "unsure"; a pause (no voice, label held by the smoother) keeps the label.
    assert label_index(make_state(voice_active=False)) == 1 + make_state().labels.index(make_state().label)
    assert label_index(make_state(uncertain=True)) == 0


@pytest.mark.parametrize("preset, bits", [("compact", 17), ("full", 8 * 8 + 8 + 8 + 8 + 1), ("vxp", 16), ("none", 0)])
def test_bit_cost_of_each_set_fits_vrchats_budget(preset: str, bits: int) -> None:
    plan, _ = plan_from_table(None, SHIPPED, preset=preset)
    assert plan.bits == bits <= VRC_BIT_BUDGET


def test_compact_is_the_default_label_intensity_and_voice() -> None:
    prof = VRChatScheme(("neutral", "happy", "angry"))
    st = make_state()
    msgs = {OscMessage(d).address: OscMessage(d) for d in prof.encode(st, {}, now=0.0)}
    assert set(msgs) == {"/avatar/parameters/SER_Label", "/avatar/parameters/SER_Intensity",
                         "/avatar/parameters/SER_Voice"}
    assert msgs["/avatar/parameters/SER_Label"].params == [2]
    assert msgs["/avatar/parameters/SER_Intensity"].params[0] == pytest.approx(0.75)


def test_vrchat_table_renames_drops_adds_and_switches_per_avatar() -> None:
    labels = ("neutral", "happy", "angry")
    mapping = load_mapping(None, labels)
    table = {
        "preset": "full",
        "rename": {"SER_Label": "Face/Emotion", "SER_Enabled": "Face/On"},
        "drop": ["SER_Neutral", "SER_Confidence"],
        "add": {"Face/Smile": "arkit:mouthSmileLeft", "Face/Happy": "prob:happy"},
        "avatars": {"avtr_small": {"preset": "compact", "drop": ["SER_Intensity", "SER_Voice"]}},
    }
    prof = VRChatScheme(labels, table=table, targets=mapping.targets)
    names = [p.name for p in prof.plan.params]
    assert "Face/Emotion" in names and "SER_Label" not in names and "SER_Neutral" not in names
    assert {"Face/Smile", "Face/Happy", "SER_Happy", "SER_Voice"} <= set(names)
    assert prof.plan.enabled_param == "Face/On"
    st = make_state()
    w = mapping.all_weights(st.smoothed)
    msgs = {OscMessage(d).address: OscMessage(d).params for d in prof.encode(st, w, now=0.0)}
    assert msgs["/avatar/parameters/Face/Emotion"] == [2]
    assert msgs["/avatar/parameters/Face/Smile"][0] == pytest.approx(w["arkit"]["mouthSmileLeft"], abs=1e-6)
    prof.set_avatar("avtr_small")
    msgs = {OscMessage(d).address for d in prof.encode(st, w, now=1.0)}
    assert msgs == {"/avatar/parameters/SER_Label"}
    prof.set_avatar("avtr_other")  # not listed: the default plan again
    assert "/avatar/parameters/Face/Emotion" in {OscMessage(d).address for d in prof.encode(st, w, now=2.0)}


@pytest.mark.parametrize("table, match", [
    ({"add": {"Bad Name": "label"}}, "letters, digits"),
    ({"add": {"X": "prob:joy"}}, "no class 'joy'"),
    ({"add": {"X": "arkit:smile"}}, "no arkit target"),
    ({"add": {"X": "mood"}}, "unknown VRChat parameter source"),
    ({"drop": ["SER_Nope"]}, "not one of the parameters"),
    ({"preset": "huge"}, "unknown VRChat parameter set"),
    ({"colour": 1}, "unknown key"),
])
def test_vrchat_table_mistakes_are_named(table: dict, match: str) -> None:
    mapping = load_mapping(None, ("neutral", "happy"))
    with pytest.raises(ConfigError, match=match):
        plan_from_table(table, ("neutral", "happy"), targets=mapping.targets)


def test_mute_and_toggle_close_the_gate_and_avatar_change_reopens_the_toggle() -> None:
    vin = VRChatInput("SER_Enabled")
    assert vin.open
    assert vin.feed(osc("/avatar/parameters/MuteSelf", (True, "T"))) == [("gate", False)]
    assert vin.feed(osc("/avatar/parameters/MuteSelf", (False, "F"))) == [("gate", True)]
    assert vin.feed(osc("/avatar/parameters/SER_Enabled", (False, "F"))) == [("gate", False)]
    # VRChat sends bundles too; a new avatar may have no toggle: it starts enabled.
    bb = OscBundleBuilder(IMMEDIATELY)
    bb.add_content(OscMessage(osc("/avatar/change", ("avtr_1", "s"))))
    assert vin.feed(bb.build().dgram) == [("avatar", "avtr_1"), ("gate", True)]
    with pytest.raises(OscRejected, match="neither an OSC message nor a bundle"):
        vin.feed(b"not osc at all")  # the listener counts it and logs it at most once per interval
    ignoring = VRChatInput(honour_mute=False)
    assert ignoring.feed(osc("/avatar/parameters/MuteSelf", (True, "T"))) == [] and ignoring.open


def test_silenced_state_says_nothing_about_the_voice() -> None:
    st = silenced(make_state())
    assert st.label == "neutral" and not st.voice_active and st.raw == ()
    assert st.smoothed == (1.0, 0.0, 0.0) and label_index(st) == 1 + st.labels.index("neutral")


def _generated_blocks(text: str) -> list[tuple[str, str]]:
    pat = re.compile(r"<!-- BEGIN generated: ser-daemon (.*?) -->\n(.*?)\n<!-- END generated -->", re.S)
    return pat.findall(text)


def _markdown_table(text: str) -> list[list[str]]:
    return [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in text.splitlines()
            if ln.startswith("|") and not ln.startswith("|---")]


def test_readme_tables_are_the_codes_output() -> None:
    """Each generated README block is what `ser-daemon ARGS` prints today, table cell by table cell."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = _generated_blocks(readme)
    assert len(blocks) >= 3, "the README's VRChat tables are missing their generated markers"
    for args, body in blocks:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert cli.main(args.split()) == 0
        assert _markdown_table(body) == _markdown_table(buf.getvalue()), (
            f"README block for `ser-daemon {args}` is stale: paste that command's output between its markers"
        )
    # The SER_Label table is the shipped model's order, the one the hello announces.
    label_block = next(body for args, body in blocks if "| `SER_Label` | class |" in body)
    rows = _markdown_table(label_block[label_block.index("| `SER_Label` | class |"):])[1:]
    assert [r[1] for r in rows[1:]] == list(SHIPPED) and rows[0][0] == "0"


def test_readme_websocket_example_uses_the_models_order() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    hello = json.loads(re.search(r'^\{"type":"hello".*\}$', readme, re.M).group(0))
    assert hello["labels"] == list(SHIPPED)
    probs = re.search(r'"probs":\{(.*?)\}', readme).group(1)
    keys = re.findall(r'"(\w+)":', probs)
    assert keys == list(SHIPPED)[: len(keys)]


@pytest.mark.parametrize("mood", [True, False])
def test_the_avatar_is_asked_for_the_mood_floats_only_with_mood(mood: bool) -> None:
    """The names checked against VRChat's OSCQuery tree (the plan the daemon says it sends) follow --mood."""
    from types import SimpleNamespace

    from ser_daemon.net.endpoints import Endpoint
    from ser_daemon.outputs.osc import OscSender
    from ser_daemon.outputs.osc_schemes import make_scheme
    from ser_daemon.outputs.osc_targets import OscTarget
    from ser_daemon.vrchat.session import VRChatSession

    labels = ("neutral", "happy", "angry")
    sender = OscSender([(OscTarget(Endpoint("127.0.0.1", 9), "vrchat"), make_scheme("vrchat", labels, mood=mood))])
    try:
        cfg = SimpleNamespace(vrchat_prefix="SER_", vrchat_ignore_mute=False, oscquery=False, vrchat_listen=0)
        session = VRChatSession(cfg, sender, 9000, lambda _: None, lambda _: None)  # type: ignore[arg-type]
        mood_names = ["SER_MoodValence", "SER_MoodArousal", "SER_MoodTalking"]
        assert session.wanted_names() == ["SER_Label", "SER_Intensity", "SER_Voice"] + (mood_names if mood else [])
        session.input.muted = True
        state = make_state()
        assert session.gate(state) == silenced(state) and sender.profiles[0].muted  # type: ignore[attr-defined]
        session.input.muted = False
        assert session.gate(state) == state and not sender.profiles[0].muted  # type: ignore[attr-defined]
    finally:
        sender.close()
