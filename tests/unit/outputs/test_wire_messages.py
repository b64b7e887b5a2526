"""Every JSON wire message as one dataclass: written, held to the schema, read back to the same value (pure).

The texts must stay byte for byte what the older functions wrote (``state_json``, ``hello_json``,
``status_json``, ``mood_json``, ``event_json``, the ingest replies): clients parse them.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from conftest import schema_validator
from ser_daemon.core.mood import Horizons, MoodReading
from ser_daemon.core.mood_events import MoodEvent
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.net.ingest_protocol import (
    Audio,
    IngestSession,
    ProtocolError,
    StartedMessage,
    StartRequest,
    Stop,
    StopMessage,
    parse_start,
)
from ser_daemon.net.wire import MessageError, WireMessage
from ser_daemon.outputs.messages import (
    HelloMessage,
    StateMessage,
    StatusMessage,
    dumps,
    hello_json,
    state_json,
    status_json,
    with_client_dropped,
)
from ser_daemon.outputs.mood_messages import EventMessage, MoodMessage, event_json, mood_json
from ser_daemon.vrchat.status import VRChatFacts
from test_messages import make_state


def _schema() -> dict[str, Any]:
    return json.loads((resources.files("ser_daemon") / "schema" / "messages.schema.json").read_text())


def _validate(msg: dict[str, Any], definition: str) -> None:
    schema = _schema()
    schema_validator({**schema, "oneOf": [{"$ref": f"#/$defs/{definition}"}]}).validate(msg)


def _reading() -> MoodReading:
    return MoodReading(stream="mic", time_s=12.5, voice=True, valence=Horizons(-0.31234567, -0.2, None),
                       arousal=Horizons(0.5, 0.4, None), point=(-0.3, 0.5), talking_minute=0.75, talking_session=None,
                       silence_s=0.0, silent_share=0.25, voiced_s_minute=9.0, voiced_s_session=9.0, session_s=12.0,
                       emotions_minute={"angry": 0.6, "unsure": 0.4}, emotions_session={"angry": 1.0})


EVENT = MoodEvent(stream="mic", kind="frustration_rising", time_s=31.23456,
                  evidence={"arousal_minute": 0.51234567, "label": "angry", "valence_minute": None})


def cases() -> list[tuple[WireMessage, str, str]]:
    """(message, the schema's definition, the text the older function wrote).

    Built inside each test, not at import, so the code that builds them runs under the test.
    """
    return [
        (StateMessage.of(make_state(), client_dropped=3, weights={"vrchat": {"Joy": 0.25}}), "state",
         dumps(state_json(make_state(), 3, {"vrchat": {"Joy": 0.25}}))),
        (StateMessage.of(make_state(raw=(), final=True)), "state", dumps(state_json(make_state(raw=(), final=True)))),
        (HelloMessage.of(labels=["a", "b"], model="m", sample_rate=16000, window_ms=2000, hop_ms=250, streams=["mic"]),
         "hello", dumps(hello_json(labels=["a", "b"], model="m", sample_rate=16000, window_ms=2000, hop_ms=250,
                                   streams=["mic"]))),
        (HelloMessage.of(labels=["a", "b"], model="m", sample_rate=16000, window_ms=1000.5, hop_ms=250, streams=[],
                         profile="me"), "hello",
         dumps(hello_json(labels=["a", "b"], model="m", sample_rate=16000, window_ms=1000.5, hop_ms=250, streams=[],
                          profile="me"))),
        (StatusMessage.of("mic", "no_audio", "device gone", 12.3456789), "status",
         dumps(status_json("mic", "no_audio", "device gone", 12.3456789))),
        (MoodMessage.of(_reading()), "mood", dumps(mood_json(_reading()))),
        (EventMessage.of(EVENT), "event", dumps(event_json(EVENT))),
        (StartRequest("alice", 48000, 2), "ingest_start", '{"type": "start", "stream": "alice", "sample_rate": 48000, '
                                                          '"channels": 2}'),
        (StartRequest("bob", 16000, 1, Endpoint("127.0.0.1", 9000)), "ingest_start",
         '{"type": "start", "stream": "bob", "sample_rate": 16000, "channels": 1, "osc": "127.0.0.1:9000"}'),
        (StartedMessage("alice"), "ingest_started", json.dumps({"type": "started", "stream": "alice"})),
        (StopMessage(), "ingest_stop", '{"type": "stop"}'),
    ]


@pytest.mark.parametrize("case", range(len(cases())), ids=[f"{c[1]}-{i}" for i, c in enumerate(cases())])
def test_each_message_writes_the_old_bytes_fits_the_schema_and_reads_back_equal(case: int) -> None:
    msg, definition, text = cases()[case]
    assert msg.to_json() == text
    _validate(json.loads(msg.to_json()), definition)
    back = type(msg).from_json(msg.to_json())
    assert back == msg
    assert back.to_json() == text


def test_the_hello_with_vrchat_facts_puts_them_last_and_reads_them_back() -> None:
    facts = VRChatFacts(target="127.0.0.1:9000", heard=True, muted=True).to_json()
    hello = HelloMessage.of(labels=["a", "b"], model="m", sample_rate=16000, window_ms=1000, hop_ms=250, streams=["mic"],
                            vrchat=facts)
    assert list(hello.to_dict())[-1] == "vrchat"
    _validate(hello.to_dict(), "hello")
    assert HelloMessage.from_json(hello.to_json()) == hello


def test_client_dropped_stays_last_so_the_broadcaster_can_set_it() -> None:
    text = StateMessage.of(make_state()).to_json()
    assert with_client_dropped(text, 5) == StateMessage.of(make_state(), client_dropped=5).to_json()


def test_reading_refuses_another_message_an_old_protocol_a_missing_field_and_non_json() -> None:
    state = StateMessage.of(make_state()).to_dict()
    with pytest.raises(MessageError, match="state"):
        StateMessage.from_dict({**state, "type": "status"})
    with pytest.raises(MessageError, match="protocol"):
        StateMessage.from_dict({**state, "protocol": 2})
    with pytest.raises(MessageError, match="'seq'"):
        StateMessage.from_dict({k: v for k, v in state.items() if k != "seq"})
    with pytest.raises(MessageError, match="JSON"):
        StatusMessage.from_json("{not json")
    with pytest.raises(MessageError):
        StopMessage.from_json("[]")
    # a newer sender's extra field is ignored, fields with defaults may be absent
    assert StateMessage.from_dict({**state, "future": 1}) == StateMessage.of(make_state())
    assert StateMessage.from_dict({k: v for k, v in state.items() if k != "weights"}).weights == {}
    assert StopMessage.from_json('{"type": "stop", "why": "done"}') == StopMessage()


def test_the_start_message_reads_with_the_protocols_rules_and_codes() -> None:
    assert parse_start('{"type": "start", "stream": "a", "sample_rate": 8000}') == StartRequest("a", 8000, 1)
    with pytest.raises(ProtocolError, match="before any audio") as bytes_first:
        StartRequest.from_json(b"\x00\x00")
    assert bytes_first.value.code == 1008
    for bad, why in [('{"type": "stop"}', "first message"), ('{"type": "start", "stream": "a b", "sample_rate": 8000}',
                     "stream"), ('{"type": "start", "stream": "a", "sample_rate": 7999}', "sample_rate"),
                     ('{"type": "start", "stream": "a", "sample_rate": 8000, "channels": 9}', "channels"), ("{", "JSON")]:
        with pytest.raises(ProtocolError, match=why) as err:
            StartRequest.from_json(bad)
        assert err.value.code == 1007


def test_an_ingest_session_answers_with_the_started_message_and_reads_stop_with_the_stop_message() -> None:
    session = IngestSession(is_taken=lambda name: False, room_for_stream=lambda: True)
    started = session.receive(StartRequest("alice", 48000, 1).to_json())
    assert StartedMessage.from_json(started.reply) == StartedMessage("alice")  # type: ignore[union-attr]
    assert started.reply == '{"type": "started", "stream": "alice"}'  # type: ignore[union-attr]
    assert isinstance(session.receive(StopMessage().to_json()), Stop)
    with pytest.raises(ProtocolError, match="only control message"):
        session.receive('{"type": "pause"}')
    assert isinstance(session.stream_event(b"\x00\x00" * 4), Audio)  # the started loop's typed call
    with pytest.raises(RuntimeError, match="before the stream's start"):
        IngestSession(is_taken=lambda name: False, room_for_stream=lambda: True).stream_event(b"\x00\x00")
