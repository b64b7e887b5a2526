"""Neutral is a class, unsure is a state: the smoother, the state, the wire formats and the face.

Weak evidence must not turn the label into ``neutral``: the label stays the
best guess (or the previous label while a change waits for the hysteresis or
dwell), ``uncertain`` says so, receivers show "unsure" (OSC ``/ser/state``,
``SER_Label`` 0, ``VXP_Expression`` 0), and the face moves with the evidence.
"""

from __future__ import annotations


import numpy as np
import pytest
from pythonosc.osc_message import OscMessage

from conftest import schema_validator

from ser_daemon.core.settings import AnalysisSettings, SmoothingSettings
from ser_daemon.core.features import FeatureConfig
from ser_daemon.outputs.mapping import load_mapping
from ser_daemon.outputs.messages import generic_osc_messages, state_json
from ser_daemon.outputs.osc_schemes import VRChatScheme, VxpScheme
from ser_daemon.core.pipeline import DueWindow, StreamProcessor
from ser_daemon.core.smoothing import NEUTRAL, UNSURE, Smoother
from test_messages import make_state
from test_osc_profiles import decode

LABELS = ("neutral", "happy", "sad", "angry")
RAVDESS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
HOP = 0.25
DIRECT = SmoothingSettings(ema_ms=0.0, hysteresis=0.12, min_dwell_ms=0.0, hold_ms=500.0, min_confidence=0.3)


def test_weak_evidence_keeps_the_guess_and_is_flagged_not_neutral() -> None:
    s = Smoother(LABELS, DIRECT)
    d = s.update(np.array([0.1, 0.6, 0.2, 0.1]), True, HOP)
    assert (d.label, d.uncertain) == ("happy", False)
    d = s.update(np.array([0.2, 0.28, 0.27, 0.25]), True, HOP)  # best guess below the 0.3 floor
    assert (d.label, d.uncertain) == ("happy", True) and d.confidence == pytest.approx(0.28)
    d = s.update(np.array([0.1, 0.29, 0.36, 0.25]), True, HOP)  # sad leads by 0.07 < 0.12 hysteresis
    assert (d.label, d.uncertain) == ("happy", True) and d.confidence == pytest.approx(0.29)
    # Back at the floor: still unsure inside the band (floor + half the hysteresis = 0.36).
    d = s.update(np.array([0.1, 0.3, 0.35, 0.25]), True, HOP)
    assert (d.label, d.uncertain) == ("happy", True) and d.confidence == pytest.approx(0.3)
    # Above the band, held by the hysteresis while sad leads by 0.08: shown, not unsure on that account.
    d = s.update(np.array([0.05, 0.37, 0.45, 0.13]), True, HOP)
    assert (d.label, d.uncertain) == ("happy", False) and d.confidence == pytest.approx(0.37)
    d = s.update(np.array([0.05, 0.2, 0.6, 0.15]), True, HOP)  # a clear lead: the change happens
    assert (d.label, d.uncertain) == ("sad", False)


def test_a_change_held_back_by_dwell_is_unsure_until_it_happens() -> None:
    s = Smoother(LABELS, SmoothingSettings(ema_ms=0.0, hysteresis=0.0, min_dwell_ms=750.0))
    s.update(np.array([0.1, 0.8, 0.05, 0.05]), True, HOP)
    assert s.label == "happy"
    got = [(d.label, d.uncertain) for d in (s.update(np.array([0.05, 0.05, 0.1, 0.8]), True, HOP) for _ in range(4))]
    assert got == [("happy", True), ("happy", True), ("angry", False), ("angry", False)]


def test_silence_relaxes_to_a_certain_neutral_after_the_hold() -> None:
    s = Smoother(LABELS, DIRECT)
    s.update(np.array([0.1, 0.6, 0.2, 0.1]), True, HOP)
    d = s.update(np.array([0.2, 0.28, 0.27, 0.25]), True, HOP)
    assert (d.label, d.uncertain) == ("happy", True)
    held = [s.update(None, False, HOP) for _ in range(2)]  # within the 500 ms hold: unchanged
    assert [(d.label, d.uncertain) for d in held] == [("happy", True), ("happy", True)]
    d = s.update(None, False, HOP)
    assert (d.label, d.uncertain) == (NEUTRAL, False)
    # A faint voice right after: neutral is a class here, it leads, and it is certain above the floor.
    d = s.update(np.array([0.4, 0.2, 0.2, 0.2]), True, HOP)
    assert d.label == NEUTRAL and not d.uncertain


def _processor() -> StreamProcessor:
    return StreamProcessor("s", LABELS, FeatureConfig(), 1.0, AnalysisSettings(smoothing=DIRECT), 16000,
                           clock=lambda: 5.0)


def test_states_carry_the_flag_and_the_final_state_is_certain_neutral() -> None:
    proc = _processor()
    window = np.zeros((98, 64), np.float32)
    first = proc.finish(DueWindow(16000, window, True, 1.0), np.array([0.1, 0.6, 0.2, 0.1], np.float32))
    weak = proc.finish(DueWindow(20000, window, True, 1.25), np.array([0.2, 0.28, 0.27, 0.25], np.float32))
    assert (first.label, first.uncertain) == ("happy", False)
    assert (weak.label, weak.uncertain) == ("happy", True) and weak.confidence == pytest.approx(0.28, abs=1e-6)
    gone = proc.interrupt()
    assert (gone.label, gone.uncertain, gone.final) == (NEUTRAL, False, False)
    proc.finish(DueWindow(24000, window, True, 1.5), np.array([0.2, 0.28, 0.27, 0.25], np.float32))
    final = proc.final_state()
    assert (final.label, final.uncertain, final.final, final.voice_active) == (NEUTRAL, False, True, False)
    assert final.confidence == 1.0


def test_generic_osc_says_unsure_and_json_carries_the_flag() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = schema_validator()
    unsure = make_state(uncertain=True, confidence=0.28)
    first = OscMessage(generic_osc_messages(unsure)[0])
    assert first.address == "/ser/state" and first.params[0] == UNSURE == "unsure"
    assert first.params[1] == pytest.approx(0.28)
    assert OscMessage(generic_osc_messages(make_state())[0]).params[0] == "happy"
    msg = state_json(unsure)
    assert msg["uncertain"] is True and msg["label"] == "happy"  # the best guess stays in the JSON
    schema.validate(msg)
    assert state_json(make_state())["uncertain"] is False
    final = state_json(make_state(label="neutral", raw=(), final=True))
    assert final["uncertain"] is False and final["final"] is True
    missing = {k: v for k, v in msg.items() if k != "uncertain"}
    with pytest.raises(jsonschema.ValidationError, match="uncertain"):
        schema.validate(missing)


def test_vrchat_label_and_vxp_expression_are_zero_while_unsure() -> None:
    sure = make_state()
    unsure = make_state(uncertain=True)
    vrc = VRChatScheme(("neutral", "happy", "angry"), preset="full")
    assert vrc.label_index(sure) == 2 and vrc.label_index(unsure) == 0
    params = {m.address: m.params for m in decode(vrc.encode(unsure, {}, now=0.0))}
    assert params["/avatar/parameters/SER_Label"] == [0]
    assert params["/avatar/parameters/SER_Intensity"] == [0.0]  # compact avatars show neutral while unsure
    assert params["/avatar/parameters/SER_Voice"] == [True]  # a voice is heard; only the label is unsure
    assert params["/avatar/parameters/SER_Happy"][0] == pytest.approx(0.75)  # the evidence still goes out
    vxp = VxpScheme()
    assert vxp.expression(sure) == 3 and vxp.expression(unsure) == 0
    params = {m.address: m.params for m in decode(vxp.encode(unsure, {}, now=0.0))}
    assert params["/avatar/parameters/VXP_Expression"] == [0]
    assert params["/avatar/parameters/VXP_Confidence"] == [0.0]


def test_the_face_follows_the_evidence_not_the_label() -> None:
    m = load_mapping(None, RAVDESS)
    p = np.array([0.2, 0.05, 0.5, 0.05, 0.05, 0.05, 0.05, 0.05])
    w = m.weights(p, "vrm")
    # s = 0.8 emotional mass, evidence 0.5 is above the ramp (0.15..0.45): e = 1, k = e * s;
    # with sharpness 2 happy's pose share is 0.5**2 / (0.5**2 + 6 * 0.05**2); the neutral row takes the rest.
    k = 1.0 * 0.8
    assert w["happy"] == pytest.approx(k * 0.25 / 0.265, abs=1e-12)
    assert w["neutral"] == pytest.approx(1.0 - k, abs=1e-12)
    # Whatever the shown label or flag, the same evidence gives the same face (no snap to neutral).
    states = [make_state(labels=RAVDESS, smoothed=tuple(p), raw=tuple(p), label=lab, uncertain=u, confidence=c)
              for lab, u, c in (("happy", False, 0.5), ("neutral", True, 0.2), ("happy", True, 0.5))]
    faces = [m.all_weights(s.smoothed) for s in states]
    assert faces[0] == faces[1] == faces[2]
    # More evidence, more expression; at rest (silence decays to neutral) the neutral row.
    happy = [m.weights(np.array([1 - x, 0, x, 0, 0, 0, 0, 0]), "vrm")["happy"] for x in np.linspace(0, 1, 21)]
    assert all(b >= a for a, b in zip(happy, happy[1:])) and happy[-1] == 1.0
    rest = m.weights(np.array([1.0, 0, 0, 0, 0, 0, 0, 0]), "vrm")
    assert rest["neutral"] == 1.0 and rest["happy"] == 0.0


def test_the_floor_has_a_band_so_unsure_does_not_toggle_every_hop() -> None:
    s = Smoother(LABELS, DIRECT)  # floor 0.3, hysteresis 0.12: the flag clears at 0.36
    seq = [0.6, 0.28, 0.33, 0.35, 0.37, 0.33, 0.31, 0.29]
    got = []
    for p in seq:
        rest = (1.0 - p) / 3.0
        got.append(s.update(np.array([rest, p, rest, rest]), True, HOP).uncertain)
    assert got == [False, True, True, True, False, False, False, True]
    assert s.label == "happy"  # the guess never changed: only the flag did
