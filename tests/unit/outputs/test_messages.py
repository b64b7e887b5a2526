import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from conftest import reference_module, schema_validator
from ser_daemon.outputs.messages import (
    dumps,
    generic_osc_messages,
    HelloMessage,
    hello_json,
    osc_message,
    osc_name,
    osc_packets,
    state_json,
)
from ser_daemon.core.state import EmotionState


def make_state(**kw) -> EmotionState:
    base = dict(
        stream="mic", seq=7, labels=("neutral", "happy", "angry"), label="happy", confidence=np.float32(0.75),
        raw=(0.1, 0.8, 0.1), smoothed=(np.float32(0.15), np.float64(0.75), 0.1), voice_active=True,
        end_sample=48000, audio_time=100.0, emitted_time=100.004,
    )
    base.update(kw)
    return EmotionState(**base)


def test_generic_scheme_addresses_types_and_order() -> None:
    msgs = [OscMessage(m) for m in generic_osc_messages(make_state())]
    assert [m.address for m in msgs] == [
        "/ser/state", "/ser/emotion/neutral", "/ser/emotion/happy", "/ser/emotion/angry", "/ser/voice", "/ser/seq",
    ]
    # Raw type tags on the wire: floats stay floats, ints stay ints (numpy converted).
    tags = [m.dgram.split(b",", 1)[1].split(b"\x00", 1)[0] for m in msgs]
    assert tags == [b"sf", b"f", b"f", b"f", b"i", b"i"]
    assert msgs[0].params[0] == "happy" and msgs[0].params[1] == pytest.approx(0.75)
    assert msgs[4].params == [1] and msgs[5].params == [7]


def test_zero_and_one_go_out_as_float() -> None:
    m = OscMessage(osc_message("/x", ("f", 0), ("f", 1), ("f", np.float32(1.0)), ("f", float("nan"))))
    assert m.dgram.split(b",", 1)[1].startswith(b"ffff")
    assert m.params == [0.0, 1.0, 1.0, 0.0]


def test_bundle_holds_all_messages() -> None:
    msgs = generic_osc_messages(make_state())
    [pkt] = osc_packets(msgs, bundle=True)
    b = OscBundle(pkt)
    assert b.num_contents == len(msgs)
    assert [c.address for c in b] == [OscMessage(m).address for m in msgs]
    assert osc_packets(msgs, bundle=False) == msgs


def test_prefix_and_name_sanitising() -> None:
    msgs = generic_osc_messages(make_state(labels=("a b", "c/d", "e"), smoothed=(0.1, 0.2, 0.7)), prefix="/ser/s1")
    assert OscMessage(msgs[1]).address == "/ser/s1/emotion/a_b"
    assert OscMessage(msgs[2]).address == "/ser/s1/emotion/c_d"
    assert osc_name("") == "_"


def _schema() -> dict:
    return json.loads((resources.files("ser_daemon") / "schema" / "messages.schema.json").read_text())


def test_json_matches_schema_and_is_plain_json() -> None:
    jsonschema = reference_module("jsonschema")
    schema = schema_validator()
    st = state_json(make_state(), client_dropped=3)
    schema.validate(st)
    text = dumps(st)
    back = json.loads(text)
    assert back["probs"] == {"neutral": 0.15, "happy": 0.75, "angry": 0.1}
    assert back["client_dropped"] == 3 and back["latency_ms"] == pytest.approx(4.0)
    final = state_json(make_state(raw=(), final=True))
    schema.validate(final)
    assert final["raw"] is None
    hello = hello_json(labels=["a", "b"], model="m", sample_rate=16000, window_ms=2000, hop_ms=250, streams=["mic"])
    schema.validate(hello)
    with pytest.raises(jsonschema.ValidationError):
        schema.validate({**st, "confidence": 2})


def test_hand_built_osc_bytes_equal_python_osc_builder() -> None:
    from pythonosc.osc_message_builder import OscMessageBuilder

    cases = [
        ("/ser/state", [("s", "happy"), ("f", 0.75)]),
        ("/a", [("i", -3), ("f", 1.0), ("s", ""), ("s", "abcd")]),
        ("/avatar/parameters/SER_Voice", [("T", True)]),
        ("/VMC/Ext/Blend/Apply", []),
        ("/ünï", [("s", "grüße")]),
    ]
    for address, args in cases:
        b = OscMessageBuilder(address=address)
        for tag, value in args:
            b.add_arg(value, tag)
        assert osc_message(address, *args) == b.build().dgram, address


def test_bundle_time_tag_is_immediately() -> None:
    """OSC 1.0: the time tag 0x0000000000000001 means "now"; any other value delays or drops the bundle."""
    [pkt] = osc_packets([osc_message("/a", ("i", 1)), osc_message("/b")], bundle=True)
    assert pkt[:8] == b"#bundle\x00"
    assert pkt[8:16] == b"\x00\x00\x00\x00\x00\x00\x00\x01"
    first = osc_message("/a", ("i", 1))
    assert pkt[16:20] == len(first).to_bytes(4, "big") and pkt[20 : 20 + len(first)] == first
    assert osc_packets([], bundle=True) == [b"#bundle\x00" + b"\x00" * 7 + b"\x01"]


def test_bad_addresses_and_tags_are_refused() -> None:
    with pytest.raises(ValueError, match="start with '/'"):
        osc_message("ser/state", ("f", 1.0))
    for tag in "dX,":
        with pytest.raises(ValueError, match=f"unsupported OSC type tag '{tag}'"):
            osc_message("/x", (tag, 1.0))
    assert osc_message("/x", ("T", True), ("F", False)) == b"/x\x00\x00,TF\x00"


def test_header_cache_is_bounded() -> None:
    from ser_daemon.outputs import messages

    for k in range(messages._MAX_HEADERS + 10):
        osc_message(f"/cache/{k}", ("i", k))
    assert len(messages._HEADERS) == messages._MAX_HEADERS
    assert OscMessage(osc_message(f"/cache/{messages._MAX_HEADERS + 5}", ("i", 3))).params == [3]


def test_state_json_fields_exactly() -> None:
    st = make_state(confidence=0.123456, audio_time=100.1234567, emitted_time=100.1358023, dropped_windows=2,
                    overruns=5, late=True, smoothed=(0.1, float("nan"), 0.87654321))
    msg = state_json(st, client_dropped=4, weights={"vrm": {"happy": 0.333333333}})
    # Every documented field, exactly (fields added later, e.g. by a newer protocol, are not refused here).
    expected = {
        "type": "state", "protocol": 1, "stream": "mic", "seq": 7, "label": "happy", "confidence": 0.1235,
        "voice": True, "probs": {"neutral": 0.1, "happy": 0.0, "angry": 0.8765},
        "raw": {"neutral": 0.1, "happy": 0.8, "angry": 0.1}, "end_sample": 48000, "audio_time": 100.123457,
        "emitted_time": 100.135802, "latency_ms": 12.346, "dropped_windows": 2, "overruns": 5, "late": True,
        "final": False, "weights": {"vrm": {"happy": 0.3333}}, "client_dropped": 4,
    }
    assert {k: msg.get(k) for k in expected} == expected
    assert list(msg)[-1] == "client_dropped"  # the WebSocket server rewrites this tail per client
    assert state_json(make_state(final=True, raw=()))["final"] is True
    assert state_json(make_state())["client_dropped"] == 0
    assert dumps({"a": [1, 2]}) == '{"a":[1,2]}'
    with pytest.raises(ValueError):
        dumps({"x": float("nan")})


def test_hello_and_status_messages_exactly() -> None:
    from ser_daemon import __version__
    from ser_daemon.outputs.messages import status_json

    assert hello_json(labels=("a", "b"), model="m", sample_rate=16000, window_ms=1000.12345, hop_ms=250.12345,
                      streams=("mic",)) == {
        "type": "hello", "protocol": 1, "server": f"ser-daemon/{__version__}", "model": "m", "labels": ["a", "b"],
        "sample_rate": 16000, "window_ms": 1000.123, "hop_ms": 250.123, "streams": ["mic"],
    }
    # The personal profile in use is named as text (a path too); none at all leaves the field out.
    assert hello_json(labels=("a",), model="m", sample_rate=16000, window_ms=1000, hop_ms=250, streams=(),
                      profile="me")["profile"] == "me"
    assert HelloMessage.of(labels=("a",), model="m", sample_rate=16000, window_ms=1000, hop_ms=250, streams=(),
                           profile=Path("profiles/me.json")).to_dict()["profile"] == str(Path("profiles/me.json"))
    assert status_json("mic", "no_audio", "device gone", 12.3456789) == {
        "type": "status", "protocol": 1, "stream": "mic", "status": "no_audio", "detail": "device gone",
        "time": 12.345679,
    }


def test_silence_is_voice_zero_and_packets_are_bundled_by_default() -> None:
    msgs = generic_osc_messages(make_state(voice_active=False))
    assert OscMessage(msgs[4]).address == "/ser/voice" and OscMessage(msgs[4]).params == [0]
    [pkt] = osc_packets(msgs)
    assert OscBundle.dgram_is_bundle(pkt)


def test_an_unsure_state_says_so_on_both_wires() -> None:
    from ser_daemon.outputs.messages import UNSURE

    st = make_state(uncertain=True)
    assert OscMessage(generic_osc_messages(st)[0]).params[0] == UNSURE
    assert state_json(st)["uncertain"] is True and state_json(make_state())["uncertain"] is False


def test_one_clients_drop_count_is_written_into_a_state_encoded_once() -> None:
    from ser_daemon.outputs.messages import dumps, state_json, with_client_dropped

    text = dumps(state_json(make_state()))
    assert with_client_dropped(text, 0) == text
    assert json.loads(with_client_dropped(text, 7)) == {**json.loads(text), "client_dropped": 7}
    other = dumps({"type": "status", "client_dropped": 0, "stream": "s"})  # not a state's shape: left alone
    assert with_client_dropped(other, 7) == other
