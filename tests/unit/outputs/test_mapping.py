import re

import numpy as np
import pytest

from ser_daemon.errors import ConfigError
from ser_daemon.outputs.mapping import ARKIT_BLENDSHAPES, VRM1_PRESETS, load_mapping, mapping_from_dict

RAVDESS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def probs(label: str, p: float = 0.9, labels=RAVDESS) -> np.ndarray:
    v = np.full(len(labels), (1 - p) / (len(labels) - 1))
    v[labels.index(label)] = p
    return v


def test_default_mapping_covers_vrm_and_all_52_arkit_names() -> None:
    m = load_mapping(None, RAVDESS)
    assert len(ARKIT_BLENDSHAPES) == len(set(ARKIT_BLENDSHAPES)) == 52
    assert m.targets["arkit"] == ARKIT_BLENDSHAPES
    assert m.targets["vrm"] == VRM1_PRESETS
    assert m.targets["vrm0"][:5] == ("Joy", "Angry", "Sorrow", "Fun", "Neutral") and "Surprised" in m.targets["vrm0"]


def test_confident_emotions_drive_their_expressions() -> None:
    m = load_mapping(None, RAVDESS)
    happy = m.all_weights(probs("happy"))
    assert happy["vrm"]["happy"] > 0.8 and happy["vrm"]["angry"] < 0.05
    assert happy["vrm0"]["Joy"] > 0.8
    assert happy["arkit"]["mouthSmileLeft"] > 0.7 and happy["arkit"]["browDownLeft"] < 0.05
    angry = m.all_weights(probs("angry"))
    assert angry["arkit"]["browDownLeft"] > 0.7 and angry["vrm0"]["Angry"] > 0.8


def test_neutral_and_unsure_fall_back_to_the_neutral_row() -> None:
    m = load_mapping(None, RAVDESS)
    rest = m.all_weights(probs("neutral", 1.0))
    assert rest["vrm"]["neutral"] == 1.0 and rest["vrm"]["happy"] == 0.0
    assert all(v == 0.0 for v in rest["arkit"].values())
    faint = m.weights(probs("happy", 0.12), "vrm")  # evidence (0.126, the others) below confidence_low 0.15
    assert faint["happy"] == 0.0 and faint["neutral"] > 0.7


def test_weights_are_bounded_and_change_smoothly() -> None:
    m = load_mapping(None, RAVDESS)
    rng = np.random.default_rng(0)
    prev = None
    for t in np.linspace(0, 1, 200):
        p = (1 - t) * probs("sad") + t * probs("surprised")
        w = m.weights(p, "arkit")
        assert all(0.0 <= v <= 1.0 for v in w.values())
        if prev is not None:
            assert max(abs(w[k] - prev[k]) for k in w) < 0.05  # no jumps for small input changes
        prev = w
    for _ in range(100):
        p = rng.dirichlet(np.ones(len(RAVDESS)))
        w = m.weights(p, "vrm")
        assert all(0.0 <= v <= 1.0 for v in w.values())


def test_a_class_the_file_does_not_map_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"does not map the model's class\(es\) \['bored'\]"):
        load_mapping(None, RAVDESS + ("bored",))


def test_bad_files_are_refused_with_the_reason(tmp_path) -> None:
    base = {"vrm": {c: {} for c in RAVDESS}, "vrm0": {c: {} for c in RAVDESS}, "arkit": {c: {} for c in RAVDESS}}
    mapping_from_dict(base, RAVDESS)
    bad = {**base, "arkit": {**base["arkit"], "happy": {"mouthSmile": 1.0}}}
    with pytest.raises(ConfigError, match="'mouthSmile' is not a arkit target"):
        mapping_from_dict(bad, RAVDESS)
    bad = {**base, "vrm": {**base["vrm"], "happy": {"happy": 1.5}}}
    with pytest.raises(ConfigError, match=r"happy.happy must be a weight in \[0, 1\]"):
        mapping_from_dict(bad, RAVDESS)
    with pytest.raises(ConfigError, match="the \\[arkit\\] table is missing"):
        mapping_from_dict({"vrm": base["vrm"], "vrm0": base["vrm0"]}, RAVDESS)
    f = tmp_path / "m.toml"
    f.write_text("[vrm\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_mapping(f, RAVDESS)
    # VRM 0.x takes custom clip names (a user renames "Surprised" to their clip).
    custom = {**base, "vrm0": {**base["vrm0"], "surprised": {"Shock": 1.0}}}
    assert "Shock" in mapping_from_dict(custom, RAVDESS).targets["vrm0"]


# -- exact formula on a small hand-written mapping -------------------------------------------

SMALL = ("neutral", "happy", "angry")


def small(options: dict | None = None, **rows: dict) -> "object":
    vrm = {"neutral": {"neutral": 0.3}, "happy": {"happy": 0.4}, "angry": {"angry": 1.0, "sad": 0.5}, **rows}
    data = {"vrm": vrm, "vrm0": {c: {} for c in SMALL}, "arkit": {c: {} for c in SMALL}}
    if options is not None:
        data["options"] = options
    return mapping_from_dict(data, SMALL)


def test_weights_follow_the_documented_formula() -> None:
    m = small({"gain": 1.0, "confidence_low": 0.25, "confidence_high": 0.65})
    w = m.weights([0.0, 1.0, 0.0], "vrm")
    assert w == {**dict.fromkeys(VRM1_PRESETS, 0.0), "happy": 0.4}
    # Evidence (the strongest emotional probability) halfway through the range: smoothstep 0.5,
    # times the emotional mass 0.45.
    w = m.weights([0.55, 0.45, 0.0], "vrm")
    k = 0.5 * 0.45
    assert w["happy"] == pytest.approx(k * 0.4, abs=1e-12) and w["neutral"] == pytest.approx((1 - k) * 0.3, abs=1e-12)
    # A quarter of the way: 0.25^2 * (3 - 0.5) = 0.15625.
    w = m.weights([0.65, 0.35, 0.0], "vrm")
    k = 0.15625 * 0.35
    assert w["happy"] == pytest.approx(0.4 * k, abs=1e-12)
    assert w["neutral"] == pytest.approx(0.3 * (1 - k), abs=1e-12)
    assert m.weights([0.75, 0.25, 0.0], "vrm")["happy"] == 0.0  # evidence at confidence_low: nothing yet
    # The pose is the probability-weighted mix of the emotional rows, renormalised over them.
    m = small({"confidence_low": 0.0, "confidence_high": 0.0})  # a step at 0: k is the emotional mass
    w = m.weights([0.5, 0.25, 0.25], "vrm")
    k = 0.5  # emotional mass
    assert w["happy"] == pytest.approx(k * 0.2, abs=1e-12)
    assert w["angry"] == pytest.approx(k * 0.5, abs=1e-12)
    assert w["neutral"] == pytest.approx((1 - k) * 0.3, abs=1e-12)


def test_gain_scales_and_the_result_is_clamped_to_one() -> None:
    w = small({"gain": 2.0}).weights([0.0, 1.0, 0.0], "vrm")
    assert w["happy"] == pytest.approx(0.8, abs=1e-12)
    w = small({"gain": 2.0}).weights([0.0, 0.0, 1.0], "vrm")
    assert w["angry"] == 1.0 and w["sad"] == 1.0  # 2.0 and 1.0 before the clamp
    rest = small({"gain": 2.0}).weights([1.0, 0.0, 0.0], "vrm")
    assert rest["neutral"] == pytest.approx(0.6, abs=1e-12)
    assert all(v == 0.0 for v in small({"gain": 0.0}).weights([0.0, 0.0, 1.0], "vrm").values())


def test_bad_probabilities_and_confidence_count_as_nothing() -> None:
    m = small()
    w = m.weights([float("nan"), -1.0, float("inf")], "vrm")
    assert w["neutral"] == pytest.approx(0.3) and w["happy"] == 0.0 and w["angry"] == 0.0
    # Probabilities that add up to more than one do not push past the pose.
    w = m.weights([0.0, 2.0, 0.0], "vrm")
    assert w["happy"] == pytest.approx(0.4, abs=1e-12)


def test_equal_confidence_bounds_make_a_step() -> None:
    m = small({"confidence_low": 0.5, "confidence_high": 0.5})
    assert m.weights([0.5, 0.5, 0.0], "vrm")["happy"] == pytest.approx(0.5 * 0.4)  # evidence 0.5: on
    assert m.weights([0.51, 0.49, 0.0], "vrm")["happy"] == 0.0


@pytest.mark.parametrize("options,match", [
    ({"gain": 4.01}, "gain must be a number in"),
    ({"gain": -0.01}, "gain must be a number in"),
    ({"gain": True}, "gain must be a number in"),
    ({"confidence_low": 1.01}, "confidence_low must be"),
    ({"confidence_high": -0.1}, "confidence_high must be"),
    ({"confidence_low": 0.6, "confidence_high": 0.5}, "must not exceed"),
    ({"sharpnes": 2.0}, "unknown option 'sharpnes'"),
    ("fast", r"\[options\] must be a table"),
])
def test_options_are_checked(options, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        small(options)


def test_option_edges_and_defaults() -> None:
    m = small({"gain": 4.0, "confidence_low": 0.0, "confidence_high": 1.0})
    assert (m.gain, m.confidence_low, m.confidence_high) == (4.0, 0.0, 1.0)
    d = small()
    assert (d.gain, d.confidence_low, d.confidence_high) == (1.0, 0.25, 0.65)
    assert isinstance(small({"gain": 2}).gain, float)


def test_rows_and_tables_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"unknown table\(s\) \['vrm2'\]"):
        mapping_from_dict({"vrm2": {}}, SMALL)
    with pytest.raises(ConfigError, match=r"\[vrm\] must be a table"):
        mapping_from_dict({"vrm": 1, "vrm0": {}, "arkit": {}}, SMALL)
    with pytest.raises(ConfigError, match="must be a table of target = weight"):
        small(happy=0.5)
    with pytest.raises(ConfigError, match="must be a weight in"):
        small(happy={"happy": True})
    with pytest.raises(ConfigError, match="must be a weight in"):
        small(happy={"happy": float("nan")})
    with pytest.raises(ConfigError, match="must be a weight in"):
        small(happy={"happy": -0.01})
    assert small(happy={"happy": 1, "sad": 0.0}).weights([0, 1, 0], "vrm")["happy"] == 1.0
    # A model without a neutral class still needs the neutral row (the rest pose).
    labels = ("happy", "angry")
    with pytest.raises(ConfigError, match=r"\['neutral'\]"):
        mapping_from_dict({ts: {c: {} for c in labels} for ts in ("vrm", "vrm0", "arkit")}, labels)


def test_vrm0_lists_the_presets_first_then_custom_clips() -> None:
    data = {"vrm": {c: {} for c in SMALL}, "arkit": {c: {} for c in SMALL},
            "vrm0": {"neutral": {}, "happy": {"Wink": 1.0, "Joy": 0.5}, "angry": {"Angry": 1.0}}}
    m = mapping_from_dict(data, SMALL)
    assert m.targets["vrm0"] == ("Joy", "Angry", "Sorrow", "Fun", "Neutral", "Wink")
    assert m.targets["vrm"] == VRM1_PRESETS and m.source == "mapping"
    assert m.all_weights([0, 1, 0])["vrm0"] == {"Joy": 0.5, "Angry": 0.0, "Sorrow": 0.0, "Fun": 0.0,
                                                      "Neutral": 0.0, "Wink": 1.0}


def test_source_names_the_file(tmp_path) -> None:
    assert load_mapping(None, RAVDESS).source == "default mapping"
    f = tmp_path / "m.toml"
    f.write_text("[vrm]\n")
    with pytest.raises(ConfigError, match=re.escape(str(f)) + r": \[vrm\] does not map"):
        load_mapping(f, RAVDESS)


def test_the_default_target_set_is_vrm() -> None:
    assert set(small().weights([0.0, 1.0, 0.0])) == set(VRM1_PRESETS)


def test_messages_name_the_file_and_the_fix(tmp_path) -> None:
    with pytest.raises(ConfigError, match="^mapping file not found: "):
        load_mapping(tmp_path / "none.toml", SMALL)
    with pytest.raises(ConfigError) as err:
        small(happy={"smile": 1.0})
    assert str(err.value) == ("mapping: [vrm].happy: 'smile' is not a vrm target; known: "
                              "happy, angry, sad, relaxed, surprised, neutral")
    data = {ts: {"happy": {}, "angry": {}} for ts in ("vrm", "vrm0", "arkit")}
    with pytest.raises(ConfigError) as err:
        mapping_from_dict(data, SMALL)
    assert str(err.value) == ("mapping: [vrm] does not map the model's class(es) ['neutral']; add a row for each "
                              "(an empty table {} means no expression)")
    with pytest.raises(ConfigError, match="confidence_high must be a number in"):
        small({"confidence_high": 1.01})


def test_a_mapping_built_in_code_may_leave_out_the_neutral_row() -> None:
    from ser_daemon.outputs.mapping import ExpressionMapping

    m = ExpressionMapping(("happy",), {"vrm": ("happy", "neutral")}, {"vrm": {"happy": {"happy": 1.0}}})
    assert m.weights([1.0]) == {"happy": 1.0, "neutral": 0.0}
    assert m.weights([0.0]) == {"happy": 0.0, "neutral": 0.0}
    # Weights are documented as [0, 1] even for unchecked rows built in code.
    odd = ExpressionMapping(("happy",), {"vrm": ("happy",)}, {"vrm": {"happy": {"happy": -0.5}}})
    assert odd.weights([1.0]) == {"happy": 0.0}


def test_sharpness_lets_the_leading_class_dominate_the_pose() -> None:
    p = np.array([0.1, 0.0, 0.5, 0.3, 0.1, 0.0, 0.0, 0.0])  # happy leads sad
    flat = mapping_from_dict({**_default_tables(), "options": {"confidence_low": 0.0, "confidence_high": 0.0}}, RAVDESS)
    sharp = mapping_from_dict({**_default_tables(), "options": {"confidence_low": 0.0, "confidence_high": 0.0,
                                                                "sharpness": 2.0}}, RAVDESS)
    # k = 1 * 0.9 emotional mass.  Plain: happy's share of the pose is 0.5 / 0.9;
    # squared: 0.25 / (0.25 + 0.09 + 0.01).
    assert flat.weights(p, "vrm")["happy"] == pytest.approx(0.9 * 0.5 / 0.9, abs=1e-12)
    assert sharp.weights(p, "vrm")["happy"] == pytest.approx(0.9 * 0.25 / 0.35, abs=1e-12)
    assert sharp.weights(p, "vrm")["sad"] == pytest.approx(0.9 * 0.09 / 0.35, abs=1e-12)
    for bad in (0.5, -1, 9, True, "2"):
        with pytest.raises(ConfigError, match="sharpness"):
            mapping_from_dict({**_default_tables(), "options": {"sharpness": bad}}, RAVDESS)


def _default_tables() -> dict:
    import tomllib
    from importlib.resources import files

    text = files("ser_daemon").joinpath("data/mapping_default.toml").read_text(encoding="utf-8")
    return {k: v for k, v in tomllib.loads(text).items() if k != "options"}


def test_odd_weights_and_options_are_refused_with_their_name() -> None:
    with pytest.raises(ConfigError, match=r"\[vrm\].happy.happy must be a weight in \[0, 1\]. Received: 'x'"):
        small(happy={"happy": "x"})
    with pytest.raises(ConfigError) as err:
        small({"sharpness": 9})
    assert str(err.value) == "mapping: options.sharpness must be a number in [0, 8.0]. Received: 9"


def test_a_model_with_only_a_neutral_class_shows_the_neutral_row() -> None:
    data = {"vrm": {"neutral": {"neutral": 0.7}}, "vrm0": {"neutral": {}}, "arkit": {"neutral": {}}}
    m = mapping_from_dict(data, ("neutral",))
    assert m.weights([1.0], "vrm")["neutral"] == pytest.approx(0.7)


def test_the_vrchat_table_is_kept_for_the_vrchat_profile() -> None:
    table = {"SER_Label": "label"}
    data = {ts: {c: {} for c in SMALL} for ts in ("vrm", "vrm0", "arkit")}
    assert dict(mapping_from_dict({**data, "vrchat": table}, SMALL).vrchat) == table
    assert dict(mapping_from_dict(data, SMALL).vrchat) == {}
    with pytest.raises(ConfigError) as err:
        mapping_from_dict({**data, "vrchat": 1}, SMALL)
    assert str(err.value) == "mapping: [vrchat] must be a table"
