"""Mood and event messages: the JSON schema, exact fields, OSC addresses and types (pure)."""

from __future__ import annotations

import json

import pytest
from pythonosc.osc_message import OscMessage

from conftest import reference_module, schema_validator
from ser_daemon.outputs.messages import dumps
from ser_daemon.core.mood import Horizons, MoodReading
from ser_daemon.core.mood_events import EVENT_KINDS, MoodEvent
from ser_daemon.outputs.mood_messages import (
    event_json,
    generic_mood_osc_messages,
    mood_event_osc_message,
    mood_json,
    vrchat_mood_osc_messages,
    vrchat_mood_params,
)
from test_mood import ARC, run, script


def reading(**kw) -> MoodReading:
    base = dict(stream="mic", time_s=12.5, voice=True, valence=Horizons(-0.31234567, -0.2, None),
                arousal=Horizons(0.5, 0.4, None), point=(-0.3, 0.5), talking_minute=0.75, talking_session=None,
                silence_s=0.0, silent_share=0.25, voiced_s_minute=9.0, voiced_s_session=9.0, session_s=12.0,
                emotions_minute={"angry": 0.6, "unsure": 0.4}, emotions_session={"angry": 1.0})
    base.update(kw)
    return MoodReading(**base)


def test_every_reading_and_event_of_a_scripted_session_validates() -> None:
    schema = schema_validator()
    readings, events = run(script(ARC))
    for r in readings[:: 40] + readings[-3:]:
        msg = mood_json(r)
        schema.validate(msg)
        assert json.loads(dumps(msg)) == msg  # plain JSON, no NaN
    assert {e.kind for e in events} == set(EVENT_KINDS)
    for e in events:
        schema.validate(event_json(e))
    silent = mood_json(run(script([(10, None)]))[0][-1])
    schema.validate(silent)
    assert silent["valence"] == {"moment": None, "minute": None, "session": None}


def test_the_schema_refuses_what_it_should() -> None:
    jsonschema = reference_module("jsonschema")
    schema = schema_validator()
    good = mood_json(reading())
    for bad in ({**good, "valence": {**good["valence"], "minute": 1.5}},
                {**good, "talking": {"minute": -0.1, "session": None}},
                {k: v for k, v in good.items() if k != "arousal"}):
        with pytest.raises(jsonschema.ValidationError):
            schema.validate(bad)
    ev = event_json(MoodEvent("delighted", "mic", 3.0, {"valence_moment": 0.5}))
    schema.validate(ev)
    for bad in ({**ev, "kind": "bored"}, {**ev, "evidence": {"x": [1]}}):
        with pytest.raises(jsonschema.ValidationError):
            schema.validate(bad)


def test_mood_json_fields_exactly() -> None:
    assert mood_json(reading()) == {
        "type": "mood", "protocol": 1, "stream": "mic", "time": 12.5, "voice": True,
        "valence": {"moment": -0.3123, "minute": -0.2, "session": None},
        "arousal": {"moment": 0.5, "minute": 0.4, "session": None},
        "talking": {"minute": 0.75, "session": None}, "silence_s": 0.0, "silent_share": 0.25,
        "voiced_s": {"minute": 9.0, "session": 9.0}, "session_s": 12.0,
        "emotions": {"minute": {"angry": 0.6, "unsure": 0.4}, "session": {"angry": 1.0}},
    }
    ev = MoodEvent("disengaging", "s1", 100.123456, {"reason": "silence", "silent_share": 0.812345, "arousal_minute": None})
    assert event_json(ev) == {"type": "event", "protocol": 1, "stream": "s1", "kind": "disengaging", "time": 100.123,
                              "evidence": {"reason": "silence", "silent_share": 0.8123, "arousal_minute": None}}


def test_generic_osc_addresses_types_and_unknowns() -> None:
    msgs = [OscMessage(m) for m in generic_mood_osc_messages(reading(), prefix="/ser/s1")]
    assert [m.address for m in msgs] == ["/ser/s1/mood/valence", "/ser/s1/mood/arousal", "/ser/s1/mood/talking",
                                         "/ser/s1/mood/silence", "/ser/s1/mood/known"]
    tags = [m.dgram.split(b",", 1)[1].split(b"\x00", 1)[0] for m in msgs]
    assert tags == [b"fff", b"fff", b"ff", b"ff", b"i"]
    assert msgs[0].params == pytest.approx([-0.31234567, -0.2, 0.0])  # unknown session: 0, and known says so
    assert msgs[2].params == pytest.approx([0.75, 0.0]) and msgs[4].params == [1]
    silent = [OscMessage(m) for m in generic_mood_osc_messages(reading(valence=Horizons(), arousal=Horizons()))]
    assert silent[0].params == [0.0, 0.0, 0.0] and silent[4].params == [0]


def test_event_osc_message_carries_kind_time_and_evidence() -> None:
    m = OscMessage(mood_event_osc_message(MoodEvent("frustration_rising", "mic", 181.0,
                                                    {"valence_minute": -0.25, "arousal_minute": 0.27351})))
    assert m.address == "/ser/mood/event"
    kind, when, evidence = m.params
    assert kind == "frustration_rising" and when == pytest.approx(181.0)
    assert json.loads(evidence) == {"valence_minute": -0.25, "arousal_minute": 0.2735}


def test_vrchat_floats_use_the_minute_horizon_clipped() -> None:
    assert vrchat_mood_params(reading(), prefix="SER_") == [
        ("SER_MoodValence", -0.2), ("SER_MoodArousal", 0.4), ("SER_MoodTalking", 0.75)]
    assert vrchat_mood_params(reading(valence=Horizons(), talking_minute=None), prefix="X")[0::2] == [
        ("XMoodValence", 0.0), ("XMoodTalking", 0.0)]
    msgs = [OscMessage(m) for m in vrchat_mood_osc_messages(reading())]
    assert [m.address for m in msgs] == ["/avatar/parameters/SER_MoodValence", "/avatar/parameters/SER_MoodArousal",
                                         "/avatar/parameters/SER_MoodTalking"]
    assert all(m.dgram.split(b",", 1)[1].startswith(b"f\x00") for m in msgs)
