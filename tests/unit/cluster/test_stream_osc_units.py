"""Per-stream OSC targets: the start message's ``osc`` field, the operator's allowlist, the replica's sender.

Pure logic plus one loopback UDP receiver; no Ray (the cluster's end-to-end check is in test_cluster.py).
"""

from __future__ import annotations

import json
import logging
import socket

import pytest
from pythonosc.osc_bundle import OscBundle

from ser_daemon.cluster.settings import ClusterSettings
from ser_daemon.cluster.stream_osc import StreamOscOut
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.errors import ConfigError
from ser_daemon.net.ingest_protocol import IngestSession, OscAllowlist, ProtocolError, Started, parse_start
from ser_daemon.core.state import EmotionState


def _start(**extra: object) -> str:
    return json.dumps({"type": "start", "stream": "amy", "sample_rate": 16000, **extra})


def test_start_message_osc_field_is_parsed() -> None:
    assert parse_start(_start()).osc is None
    assert parse_start(_start(osc="127.0.0.1:9000")).osc == Endpoint("127.0.0.1", 9000)
    assert parse_start(_start(osc="[::1]:9001")).osc == Endpoint("::1", 9001)


@pytest.mark.parametrize("value", ["9000", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:x", ":9000",
                                   "a b:9000", 9000, None, ["127.0.0.1:9000"], "h" * 400 + ":9000"])
def test_malformed_osc_field_is_invalid_data(value: object) -> None:
    with pytest.raises(ProtocolError) as exc:
        parse_start(_start(osc=value))
    assert exc.value.code == 1007 and str(exc.value).startswith("osc")


def test_allowlist_takes_addresses_only_and_compares_canonical_forms() -> None:
    allow = OscAllowlist("127.0.0.1, [::1],localhost")
    assert allow.hosts == {"127.0.0.1", "::1", "localhost"}
    assert allow.allows(Endpoint("127.0.0.1", 9000))
    assert allow.allows(Endpoint("0:0:0:0:0:0:0:1", 9000))  # the same address written out
    assert not allow.allows(Endpoint("127.0.0.2", 9000))
    assert not allow.allows(Endpoint("example.org", 9000))  # a name: never resolved, never allowed
    assert allow.sockaddr(Endpoint("localhost", 9000)) == ("127.0.0.1", 9000)
    assert OscAllowlist().hosts == frozenset() and OscAllowlist(None).hosts == frozenset()
    for bad in ("example.org", "10.0.0.0/8", "127.0.0.1:9000"):
        with pytest.raises(ConfigError):
            OscAllowlist(bad)
    assert ClusterSettings("m", allow_stream_osc="::1,127.0.0.1").allow_stream_osc == ("127.0.0.1", "::1")
    with pytest.raises(ConfigError):
        ClusterSettings("m", allow_stream_osc=("host.example",))


def test_session_refuses_targets_the_operator_did_not_allow_before_the_id_check() -> None:
    taken = lambda _s: True  # noqa: E731 - the OSC refusal comes first
    for allow in (None, OscAllowlist("10.1.2.3")):
        with pytest.raises(ProtocolError) as exc:
            IngestSession(taken, lambda: True, "full", allow).receive(_start(osc="127.0.0.1:9000"))
        assert (exc.value.code, str(exc.value)) == (1008, "OSC output to 127.0.0.1 is not allowed by this server")
    ok = IngestSession(lambda _s: False, lambda: True, "full", OscAllowlist("127.0.0.1")).receive(
        _start(osc="127.0.0.1:9000"))
    assert isinstance(ok, Started) and ok.request.osc == Endpoint("127.0.0.1", 9000)


def _state(seq: int) -> EmotionState:
    return EmotionState("amy", seq, ("neutral", "happy"), "happy", 0.75, (0.25, 0.75), (0.25, 0.75), True, 0, 0.0, 0.0)


def test_sender_sends_generic_bundles_and_counts_failures(caplog: pytest.LogCaptureFixture) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    now = [0.0]
    out = StreamOscOut(clock=lambda: now[0])
    try:
        assert out.send_state(rx.getsockname(), _state(3), {"vrm": {"happy": 0.5}})
        bundle = OscBundle(rx.recv(65536))
        msgs = {m.address: m.params for m in bundle}
        assert msgs["/ser/state"][0] == "happy" and msgs["/ser/seq"] == [3] and "/ser/vrm/happy" in msgs
        # A send that fails (port 0 is not a destination) is counted, logged once a minute, not raised.
        with caplog.at_level(logging.WARNING, "ser_daemon.cluster.stream_osc"):
            for k in range(3):
                assert not out.send_state(("127.0.0.1", 0), _state(k), {})
            now[0] = 61.0
            assert not out.send_state(("127.0.0.1", 0), _state(9), {})
        assert out.errors == 4 and out.sent == 1
        lines = [r for r in caplog.records if "stream OSC" in r.getMessage()]
        assert len(lines) == 2 and "2 more failures" in lines[1].getMessage()
    finally:
        out.close()
        rx.close()


def test_sender_sends_mood_readings_and_events_as_the_generic_scheme() -> None:
    from pythonosc.osc_message import OscMessage

    from ser_daemon.core.mood import Horizons, MoodReading
    from ser_daemon.core.mood_events import MoodEvent
    from ser_daemon.core.mood_stage import MoodUpdate

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    out = StreamOscOut()
    try:
        assert out.send_mood(rx.getsockname(), MoodUpdate(None)), "nothing to send is no failure"
        reading = MoodReading(stream="amy", time_s=6.0, voice=True, valence=Horizons(0.1, -0.2, 0.3),
                              arousal=Horizons(0.4, 0.5, 0.6), point=(0.1, 0.4), talking_minute=0.8, talking_session=0.9,
                              silence_s=0.0, silent_share=0.2, voiced_s_minute=3.0, voiced_s_session=3.0,
                              session_s=4.0, emotions_minute={}, emotions_session={})
        event = MoodEvent("frustration_rising", "amy", 6.0, {"valence_minute": -0.2})
        assert out.send_mood(rx.getsockname(), MoodUpdate(reading, (event,)))
        msgs: dict[str, list] = {}
        for _ in range(2):  # generic bundles: the reading's, then the event's (or one bundle with all)
            data = rx.recv(65536)
            for m in (OscBundle(data) if OscBundle.dgram_is_bundle(data) else [OscMessage(data)]):
                msgs[m.address] = m.params
            if "/ser/mood/event" in msgs:
                break
        assert msgs["/ser/mood/valence"] == pytest.approx([0.1, -0.2, 0.3])
        assert msgs["/ser/mood/event"][0] == "frustration_rising"
        assert json.loads(msgs["/ser/mood/event"][2]) == {"valence_minute": -0.2}
        assert not out.send_mood(("127.0.0.1", 0), MoodUpdate(reading)) and out.errors == 1
    finally:
        out.close()
        rx.close()
