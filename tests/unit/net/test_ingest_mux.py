"""The multiplexed ingest protocol's rules, on bytes and dicts (no socket): ser_daemon/net/ingest_mux.py."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ser_daemon.core.state import EmotionState
from ser_daemon.net.ingest_mux import (
    SUBPROTOCOL_BINARY,
    SUBPROTOCOL_JSON,
    EndedMessage,
    MuxLimits,
    MuxSession,
    StreamAudio,
    StreamEnded,
    StreamStarted,
    decode_states,
    encode_audio_frame,
    encode_states,
    parse_audio_frame,
    select_subprotocol,
    states_json,
)
from ser_daemon.net.ingest_protocol import ProtocolError, parse_start

LABELS = ("neutral", "happy", "angry")


def start(stream: str = "alice", tag: int = 1, rate: int = 16000, channels: int = 1, **extra) -> str:
    return json.dumps({"type": "start", "stream": stream, "tag": tag, "sample_rate": rate, "channels": channels,
                       **extra})


def session(taken: set[str] | None = None, room: bool = True, **limits) -> MuxSession:
    return MuxSession(lambda s: s in (taken or set()), lambda: room, "too many streams (--max-streams 2)",
                      MuxLimits(**limits), now=0.0)


def pcm(frames: int, channels: int = 1) -> bytes:
    return np.zeros(frames * channels, dtype="<i2").tobytes()


def ended(events) -> list[tuple]:
    return [(e.stream_id, e.tag, e.code, e.reason) for e in events if isinstance(e, StreamEnded)]


def test_the_client_picks_the_protocol_by_subprotocol_and_no_subprotocol_is_todays() -> None:
    assert select_subprotocol([]) is None
    assert select_subprotocol(["chat", "v2"]) is None
    assert select_subprotocol(["chat", SUBPROTOCOL_BINARY, SUBPROTOCOL_JSON]) == SUBPROTOCOL_BINARY
    assert select_subprotocol([SUBPROTOCOL_JSON]) == SUBPROTOCOL_JSON


def test_welcome_names_the_form_of_the_states_the_labels_and_the_limits() -> None:
    s = session(max_streams=5)
    w = json.loads(s.welcome(SUBPROTOCOL_BINARY, LABELS))
    assert w == {"type": "welcome", "protocol": SUBPROTOCOL_BINARY, "states": "binary", "labels": list(LABELS),
                 "limits": {"streams": 5, "rate_factor": 2.0, "burst_s": 3.0, "frame_bytes": 256 * 1024,
                            "idle_s": 10.0}}
    assert json.loads(s.welcome(SUBPROTOCOL_JSON, LABELS))["states"] == "json"


def test_a_start_admits_a_stream_and_its_tagged_audio_comes_out_mono() -> None:
    s = session()
    (ev,) = s.receive(start("alice", 7, 48000, 2), 0.0)
    assert isinstance(ev, StreamStarted)
    assert json.loads(ev.reply) == {"type": "started", "stream": "alice", "tag": 7}
    assert (ev.stream.name, ev.stream.tag, ev.stream.request.sample_rate, ev.stream.request.channels) == (
        "alice", 7, 48000, 2)
    stereo = np.array([[1000, 3000], [-2000, 0]], dtype="<i2").tobytes()
    (audio,) = s.receive(encode_audio_frame([(7, stereo)]), 0.01)
    assert isinstance(audio, StreamAudio) and audio.stream is ev.stream
    np.testing.assert_allclose(audio.mono, [2000 / 32768, -1000 / 32768], rtol=1e-6)


@pytest.mark.parametrize("fields, code", [
    ({"sample_rate": 5}, 1007),
    ({"channels": 0}, 1007),
    ({"stream": "nl\n"}, 1007),
    ({"stream": 3}, 1007),
    ({"osc": "127.0.0.1:9000"}, 1008),
    ({"osc": "nohostport"}, 1007),
])
def test_a_bad_start_ends_that_stream_alone_with_todays_code_and_reason(fields, code) -> None:
    msg = {"type": "start", "stream": "alice", "sample_rate": 16000, "channels": 1, **fields}
    with pytest.raises(ProtocolError) as today:
        req = parse_start(json.dumps(msg))
        if req.osc is not None:
            raise ProtocolError(f"OSC output to {req.osc.host} is not allowed by this server", 1008)
    s = session()
    events = s.receive(json.dumps({**msg, "tag": 3}), 0.0)
    shown = msg["stream"] if isinstance(msg["stream"], str) else None
    assert ended(events) == [(shown, 3, code, str(today.value))]
    assert today.value.code == code
    assert json.loads(events[0].message) == {"type": "ended", "stream": shown, "tag": 3, "code": code,
                                             "reason": str(today.value)}
    assert not s.by_tag  # nothing held


@pytest.mark.parametrize("tag", [None, -1, 65536, True, "1", 1.5])
def test_a_start_without_a_usable_tag_is_ended_1007(tag) -> None:
    msg = {"type": "start", "stream": "alice", "sample_rate": 16000}
    if tag is not None:
        msg["tag"] = tag
    assert ended(session().receive(json.dumps(msg), 0.0)) == [("alice", None, 1007, "tag must be an integer in 0..65535")]


def test_ids_and_tags_in_use_and_no_room_are_ended_with_1008_and_1013() -> None:
    s = session(taken={"held"}, max_streams=2)
    assert isinstance(s.receive(start("a", 1), 0.0)[0], StreamStarted)
    assert ended(s.receive(start("b", 1), 0.0)) == [("b", 1, 1008, "tag 1 is in use on this connection")]
    assert ended(s.receive(start("a", 2), 0.0)) == [("a", 2, 1008, "stream id 'a' is in use")]
    assert ended(s.receive(start("held", 2), 0.0)) == [("held", 2, 1008, "stream id 'held' is in use")]
    assert isinstance(s.receive(start("b", 2), 0.0)[0], StreamStarted)
    assert ended(s.receive(start("c", 3), 0.0)) == [("c", 3, 1013, "too many streams on this connection (2)")]
    full = session(room=False)
    assert ended(full.receive(start("c", 3), 0.0)) == [("c", 3, 1013, "too many streams (--max-streams 2)")]


def test_one_bad_chunk_ends_its_stream_and_not_the_neighbours_in_the_same_frame() -> None:
    s = session()
    for i, name in enumerate(("a", "b", "c")):
        s.receive(start(name, i), 0.0)
    events = s.receive(encode_audio_frame([(0, pcm(320)), (1, b"\x00"), (2, pcm(320)), (9, pcm(4)), (9, pcm(4))]),
                       0.02)
    assert [e.stream.name for e in events if isinstance(e, StreamAudio)] == ["a", "c"]
    assert ended(events) == [("b", 1, 1007, "audio messages must hold whole frames of 2 bytes"),
                             (None, 9, 1008, "send the start message before any audio")]  # once per tag
    b_end = [e for e in events if isinstance(e, StreamEnded) and e.stream is not None]
    assert b_end[0].stream is s.by_name["b"]  # held (its tag too) until its final state is out
    # b's audio in flight after its end is dropped quietly; a and c go on.
    later = s.receive(encode_audio_frame([(1, pcm(320)), (0, pcm(320)), (2, pcm(320))]), 0.04)
    assert [e.stream.name for e in later] == ["a", "c"] and not ended(later)
    assert [x.name for x in s.live_streams()] == ["a", "c"]
    # Once b's final state is out its tag is free; audio still in flight for it, and more for the
    # unknown tag 9, is dropped without a word until the tag starts.
    s.finish("b")
    assert s.receive(encode_audio_frame([(1, pcm(4)), (9, pcm(4))]), 0.06) == []
    assert isinstance(s.receive(start("b2", 9), 0.06)[0], StreamStarted)
    assert [e.stream.name for e in s.receive(encode_audio_frame([(9, pcm(4))]), 0.07)] == ["b2"]
    assert ended(s.receive(encode_audio_frame([(5, pcm(4))]), 0.08)) == [
        (None, 5, 1008, "send the start message before any audio")]


def test_a_stream_over_its_byte_rate_is_ended_alone() -> None:
    s = session(rate_factor=2.0, burst_s=1.0)
    s.receive(start("fast", 1), 0.0)
    s.receive(start("calm", 2), 0.0)
    second = 16000  # frames of 16 kHz mono: 32000 bytes a second in real time
    assert len(s.receive(encode_audio_frame([(1, pcm(second)), (2, pcm(320))]), 0.0)) == 2  # the 1 s burst
    # 0.4 s later the bucket holds 0.4 s * 64000 bytes/s = 25600 bytes: one more second (32000) is too much.
    events = s.receive(encode_audio_frame([(1, pcm(second)), (2, pcm(320))]), 0.4)
    assert ended(events) == [("fast", 1, 1008, "over 64000 bytes/s (2x real time)")]
    assert [e.stream.name for e in events if isinstance(e, StreamAudio)] == ["calm"]


def test_stop_ends_one_stream_with_1000_and_an_unknown_stop_is_ended_1008() -> None:
    s = session()
    s.receive(start("a", 1), 0.0)
    s.receive(start("b", 2), 0.0)
    assert ended(s.receive(json.dumps({"type": "stop", "stream": "a"}), 0.1)) == [("a", 1, 1000, "stopped")]
    assert s.receive(json.dumps({"type": "stop", "stream": "a"}), 0.1) == []  # stopping twice is harmless
    assert ended(s.receive(json.dumps({"type": "stop", "stream": "zz"}), 0.1)) == [
        ("zz", None, 1008, "no stream 'zz' on this connection")]
    assert [x.name for x in s.live_streams()] == ["b"]


@pytest.mark.parametrize("message, code", [
    ("hello", 1007),
    ("[1, 2]", 1007),
    ('{"type": "hello"}', 1007),
    (b"", 1007),
    (b"\x01", 1007),
    (b"\x02\x01" + struct.pack("<HI", 1, 0), 1007),  # not an audio frame
    (b"\x01\x00", 1007),  # no chunk
    (b"\x01\x01\x01\x00", 1007),  # cut in a chunk header
    (b"\x01\x01" + struct.pack("<HI", 1, 4) + b"\x00\x00", 1007),  # chunk longer than the frame
    (b"\x01\x01" + struct.pack("<HI", 1, 2) + b"\x00\x00\x00", 1007),  # bytes after the last chunk
    (b"\x00" * 1025, 1009),
])
def test_only_an_unreadable_connection_is_closed(message, code) -> None:
    s = session(max_frame_bytes=1024)
    s.receive(start("a", 1), 0.0)
    with pytest.raises(ProtocolError) as exc:
        s.receive(message, 0.1)
    assert exc.value.code == code


def test_silent_streams_are_ended_by_time_and_an_empty_connection_is_closed() -> None:
    s = session(idle_timeout_s=10.0, start_timeout_s=10.0)
    assert s.next_deadline() == 10.0
    s.receive(start("a", 1), 1.0)
    s.receive(start("b", 2), 2.0)
    s.receive(encode_audio_frame([(2, pcm(160))]), 5.0)
    assert s.next_deadline() == 11.0
    assert s.expire(10.9) == []
    assert ended(s.expire(11.0)) == [("a", 1, 1008, "no audio within 10 s")]
    assert s.next_deadline() == 15.0
    assert ended(s.expire(15.0)) == [("b", 2, 1008, "no audio within 10 s")]
    assert s.next_deadline() == float("inf")  # waiting for final states only
    s.finish("a")
    s.finish("b")
    assert s.next_deadline() == 15.0 + 10.0 - 10.0  # last heard at 5.0
    with pytest.raises(ProtocolError) as exc:
        s.expire(15.0)
    assert (exc.value.code, str(exc.value)) == (1008, "no start message within 10 s")


def test_finish_sends_ended_after_the_final_state_and_frees_the_tag() -> None:
    s = session()
    s.receive(start("a", 1), 0.0)
    s.receive(json.dumps({"type": "stop", "stream": "a"}), 0.1)
    assert ended(s.receive(start("a2", 1), 0.1))[0][2:] == (1008, "tag 1 is in use on this connection")
    assert json.loads(s.finish("a")) == {"type": "ended", "stream": "a", "tag": 1, "code": 1000, "reason": "stopped"}
    assert s.finish("a") is None
    assert isinstance(s.receive(start("a2", 1), 0.2)[0], StreamStarted)
    # A final state that came unasked (the server is stopping): ended with 1001.
    assert json.loads(s.finish("a2"))["code"] == 1001


def _state(stream: str, seq: int, label: str = "angry", final: bool = False) -> EmotionState:
    return EmotionState(stream=stream, seq=seq, labels=LABELS, label=label, confidence=0.75, raw=(0.1, 0.2, 0.7),
                        smoothed=(0.125, 0.125, 0.75), voice_active=True, end_sample=16000 * seq, audio_time=1.0,
                        emitted_time=1.05, final=final, uncertain=seq == 2)


def test_binary_states_round_trip() -> None:
    frame = encode_states([(3, _state("a", 1)), (4, _state("b", 2, "neutral", final=True))], LABELS)
    assert len(frame) == 4 + 2 * (20 + 4 * len(LABELS))
    a, b = decode_states(frame, LABELS)
    assert (a["tag"], a["seq"], a["label"], a["voice"], a["final"], a["uncertain"], a["end_sample"]) == (
        3, 1, "angry", True, False, False, 16000)
    assert a["confidence"] == pytest.approx(0.75) and a["latency_ms"] == pytest.approx(50.0, abs=1e-3)
    assert a["probs"] == {"neutral": 0.125, "happy": 0.125, "angry": 0.75}
    assert (b["tag"], b["label"], b["final"], b["uncertain"]) == (4, "neutral", True, True)
    no_neutral = encode_states([(0, _state("c", 0, "neutral"))], ("sad", "happy", "angry"))
    assert decode_states(no_neutral, ("sad", "happy", "angry"))[0]["label"] == "neutral"
    with pytest.raises(ValueError):
        decode_states(frame, LABELS[:2])


def test_json_states_are_one_message_per_tick() -> None:
    text = states_json([{"type": "state", "stream": "a"}, {"type": "state", "stream": "b"}])
    assert json.loads(text) == {"type": "states", "states": [{"type": "state", "stream": "a"},
                                                            {"type": "state", "stream": "b"}]}
    assert EndedMessage.from_json(EndedMessage("a", 1, 1000, "stopped").to_json()).code == 1000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 65535), st.binary(max_size=40)), min_size=1, max_size=20))
def test_audio_frames_round_trip(chunks) -> None:
    assert parse_audio_frame(encode_audio_frame(chunks)) == chunks


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_or_are_refused_1007(data) -> None:
    try:
        chunks = parse_audio_frame(data)
    except ProtocolError as exc:
        assert exc.code == 1007
        return
    assert encode_audio_frame(chunks) == data


def test_every_json_message_fits_the_schema_and_reads_back_equal() -> None:
    from importlib import resources

    from conftest import reference_module
    from ser_daemon.net.ingest_mux import MuxStartedMessage, MuxStartMessage, MuxStopMessage, WelcomeMessage
    from ser_daemon.outputs.messages import state_json

    jsonschema = reference_module("jsonschema")
    schema = json.loads((resources.files("ser_daemon") / "schema" / "messages.schema.json").read_text())

    def check(text: str, definition: str) -> None:
        jsonschema.validate(json.loads(text), {**schema, "oneOf": [{"$ref": f"#/$defs/{definition}"}]})

    cases = [(MuxStartMessage("alice", 3, 48000, 2), "ingest_mux_start"),
             (MuxStartedMessage("alice", 3), "ingest_mux_started"),
             (MuxStopMessage("alice"), "ingest_mux_stop"),
             (EndedMessage("alice", 3, 1008, "no audio within 10 s"), "ingest_mux_ended"),
             (EndedMessage(None, None, 1007, "tag must be an integer in 0..65535"), "ingest_mux_ended")]
    for msg, definition in cases:
        check(msg.to_json(), definition)
        assert type(msg).from_json(msg.to_json()) == msg
    # The session's own texts, as a client receives them.
    s = session()
    check(s.welcome(SUBPROTOCOL_JSON, LABELS), "ingest_mux_welcome")
    assert WelcomeMessage.from_json(s.welcome(SUBPROTOCOL_BINARY, LABELS)).states == "binary"
    (started,) = s.receive(MuxStartMessage("alice", 3, 16000).to_json(), 0.0)
    check(started.reply, "ingest_mux_started")
    (bad,) = s.receive(start("x" * 70, 4), 0.0)
    check(bad.message, "ingest_mux_ended")
    check(states_json([state_json(_state("alice", 1)), state_json(_state("alice", 2, final=True))]),
          "ingest_mux_states")


def test_a_backlog_after_a_stall_of_two_seconds_is_absorbed_by_the_default_burst() -> None:
    """The server did not read for 2 s (load): 2 s of real-time audio arrive at one instant."""
    s = session()
    s.receive(start("a", 1), 0.0)
    for k in range(50):  # 1 s at real time
        assert isinstance(s.receive(encode_audio_frame([(1, pcm(320))]), k * 0.02)[0], StreamAudio)
    backlog = [s.receive(encode_audio_frame([(1, pcm(320))]), 3.0) for _ in range(100)]
    assert all(isinstance(ev[0], StreamAudio) for ev in backlog)
    # A client that keeps sending at 3x real time is ended once the burst is spent.
    events = [e for k in range(300) for e in s.receive(encode_audio_frame([(1, pcm(960))]), 3.0 + k * 0.02)]
    assert ended(events) == [("a", 1, 1008, "over 64000 bytes/s (2x real time)")]


def test_the_load_generators_talkers_start_at_their_own_tick_within_one_hop() -> None:
    """benchmarks/ingest_mux_load.py: random phases spread the talkers' first audio over one decision hop."""
    import sys

    from helpers import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    import ingest_mux_load as load

    talkers = load.make_talkers(64, 3.0, "random", seed=1)
    leads = [t.lead for t in talkers]
    assert min(leads) >= 0 and max(leads) < load.HOP_BLOCKS and len(set(leads)) >= load.HOP_BLOCKS - 2
    assert load.make_talkers(64, 3.0, "random", seed=1)[5].lead == talkers[5].lead  # seeded
    t = next(t for t in talkers if t.lead >= 2)
    assert t.segment_start == t.lead and t.chunk(t.lead - 1) == b""
    assert t.chunk(t.lead) == t.pcm[: 2 * load.BLOCK] and t.chunk(t.lead + 1) == t.pcm[2 * load.BLOCK : 4 * load.BLOCK]
    same = load.make_talkers(4, 3.0, "same")
    assert {x.lead for x in same} == {0} and same[0].chunk(0) == same[0].pcm[: 2 * load.BLOCK]
    with pytest.raises(ValueError, match="phases must be"):
        load.make_talkers(4, 3.0, "staggered")
