import numpy as np
import pytest

from ser_daemon.errors import ConfigError
from ser_daemon.mapping import ARKIT_BLENDSHAPES, VRM1_PRESETS, load_mapping, mapping_from_dict

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
    faint = m.weights(probs("happy", 0.2), "vrm")  # evidence below confidence_low
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
