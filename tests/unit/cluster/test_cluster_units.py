"""The cluster application's pure parts, without Ray: ingest session, stream leases, settings."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from ser_daemon.cluster.autoscale import STREAMS_POLICY
from ser_daemon.cluster.leases import StreamLeases
from ser_daemon.cluster.settings import (
    MAX_BATCH_WAIT_S,
    MAX_INGRESS_WAIT_S,
    ClusterSettings,
    batch_wait_s,
    ingress_wait_s,
    mood_from_args,
)
from ser_daemon.core.mood_settings import MoodSettings
from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.errors import ConfigError
from ser_daemon.net.ingest_protocol import Audio, IngestSession, ProtocolError, Started, Stop, decode_pcm

START = json.dumps({"type": "start", "stream": "amy", "sample_rate": 48000, "channels": 2})


def _session(taken: bool = False, room: bool = True) -> IngestSession:
    return IngestSession(lambda _s: taken, lambda: room, "full")


def test_session_runs_start_audio_stop_in_order() -> None:
    s = _session()
    started = s.receive(START)
    assert isinstance(started, Started) and json.loads(started.reply) == {"type": "started", "stream": "amy"}
    pcm = np.array([[32767, -32768], [0, 0]], dtype="<i2").tobytes()
    audio = s.receive(pcm)
    assert isinstance(audio, Audio) and audio.mono.dtype == np.float32
    np.testing.assert_allclose(audio.mono, [(32767 - 32768) / 2 / 32768, 0.0])
    assert isinstance(s.receive(json.dumps({"type": "stop"})), Stop)


@pytest.mark.parametrize(("taken", "room", "code"), [(True, True, 1008), (False, False, 1013), (True, False, 1008)])
def test_session_refuses_taken_ids_before_full_servers(taken: bool, room: bool, code: int) -> None:
    with pytest.raises(ProtocolError) as exc:
        _session(taken, room).receive(START)
    assert exc.value.code == code


@pytest.mark.parametrize(("messages", "code"), [
    ((b"\x00\x00",), 1008),
    (("nope",), 1007),
    ((START, b"\x00\x00"), 1007),  # stereo frames are 4 bytes
    ((START, '{"type": "pause"}'), 1007),
    ((START, "[1"), 1007),
])
def test_session_protocol_errors(messages: tuple, code: int) -> None:
    s = _session()
    with pytest.raises(ProtocolError) as exc:
        for m in messages:
            s.receive(m)
    assert exc.value.code == code


def test_decode_pcm_scales_and_downmixes() -> None:
    np.testing.assert_allclose(decode_pcm(np.array([16384, -16384], dtype="<i2").tobytes(), 1), [0.5, -0.5])


def test_leases_keep_ids_unique_until_they_lapse() -> None:
    now = [0.0]
    leases = StreamLeases(2.0, clock=lambda: now[0])
    assert leases.claim("a", "r1") and leases.claim("a", "r1")  # its own again: fine
    assert not leases.claim("a", "r2")
    now[0] = 1.5
    assert leases.renew("r1", ["a"]) == []
    now[0] = 3.0
    assert not leases.claim("a", "r2")  # renewed at 1.5: held until 3.5
    now[0] = 3.6
    assert leases.claim("a", "r2")  # r1 died: its id fell free
    assert leases.renew("r1", ["a"]) == ["a"]  # r1 cannot take it back
    leases.release("a", "r1")  # only the owner releases
    assert leases.owners() == {"a": "r2"}
    leases.release("a", "r2")
    assert leases.owners() == {}


def test_leases_are_bounded() -> None:
    leases = StreamLeases(10.0, clock=lambda: 0.0, max_streams=2)
    assert leases.claim("a", "r") and leases.claim("b", "r")
    assert not leases.claim("c", "r")


def test_batch_wait_comes_from_the_latency_budget() -> None:
    assert ingress_wait_s(150.0) == pytest.approx(0.0375) and ingress_wait_s(60000.0) == MAX_INGRESS_WAIT_S
    assert batch_wait_s(150.0) == pytest.approx(0.0075)
    assert batch_wait_s(60000.0) == MAX_BATCH_WAIT_S
    s = ClusterSettings(model_dir="/m", analysis=AnalysisSettings(latency_budget_ms=100.0))
    assert s.batch_wait_s == pytest.approx(0.005) and s.max_batch_size == 64
    assert s.ingress_wait_s == pytest.approx(0.025)


def test_autoscaling_targets_open_streams() -> None:
    auto = ClusterSettings(model_dir="/m", streams_per_replica=100, max_streams_per_replica=200,
                           min_ingress_replicas=2, max_ingress_replicas=5).ingress_options()
    scaling = auto["autoscaling_config"]
    # Serve's count of ongoing requests misses multiplexed and direct streams: the replicas report
    # their open streams and autoscale.py's policy sizes the ingress on them, 100 per replica.
    assert scaling["policy"] == {"policy_function": STREAMS_POLICY}
    assert scaling["target_ongoing_requests"] == 100
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (2, 5)
    assert scaling["upscale_delay_s"] <= 10 < 60 <= scaling["downscale_delay_s"]  # up within seconds, down slowly
    assert auto["max_ongoing_requests"] > 200 and "num_replicas" not in auto
    fixed = ClusterSettings(model_dir="/m", ingress_replicas=2).ingress_options()
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    gpu = ClusterSettings(model_dir="/m", model_gpus=1).model_options()
    assert gpu["ray_actor_options"]["num_gpus"] == 1
    assert gpu["max_ongoing_requests"] >= 64


@pytest.mark.parametrize("kwargs", [{"backend": "onnx"}, {"streams_per_replica": 0},
                                    {"streams_per_replica": 300, "max_streams_per_replica": 200},
                                    {"min_ingress_replicas": 5, "max_ingress_replicas": 2}, {"direct_port": 70000}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        ClusterSettings(model_dir="/m", **kwargs)


def test_mood_is_off_unless_asked_for() -> None:
    assert ClusterSettings(model_dir="/m").mood is None
    for off in (None, False, "false", "0", "no", "None"):
        assert mood_from_args(off, {}) is None, off
    assert mood_from_args("false", {"mood_cooldown_s": "120"}) is None  # said off, stays off
    for on in (True, "true", "1", "Yes"):
        assert mood_from_args(on, {}) == MoodSettings(), on


def test_mood_settings_from_serve_run_strings_and_cli_pairs() -> None:
    from ser_daemon.cluster.cli import _settings_args, build_parser

    # serve run passes strings; a mood_* key alone turns the stage on.
    m = mood_from_args(None, {"mood_cooldown_s": "120", "mood_min_voiced_s": "1.5",
                              "mood_circumplex_angry": "[-0.5, 0.7]"})
    assert m is not None and m.cooldown_s == 120 and m.min_voiced_s == 1.5
    assert m.circumplex["angry"] == (-0.5, 0.7) and m.circumplex["happy"] == MoodSettings().circumplex["happy"]
    typed = mood_from_args(MoodSettings(cooldown_s=5), {"mood_minute_s": 30})
    assert typed is not None and (typed.cooldown_s, typed.minute_s) == (5, 30)
    for bad in ({"mood_cooldwn_s": "1"}, {"mood_cooldown_s": "soon"}, {"mood_cooldown_s": "-1"}):
        with pytest.raises(ConfigError):
            mood_from_args(True, bad)
    with pytest.raises(ConfigError, match="mood must be true or false"):
        mood_from_args("maybe", {})
    # ser-daemon cluster --mood / --mood-setting KEY=VALUE
    args = vars(build_parser().parse_args(["--mood-setting", "cooldown_s=120", "--mood-setting", "circumplex-sad=[-0.6,-0.3]"]))
    assert {k: v for k, v in _settings_args(args).items() if k.startswith("mood")} == {
        "mood_cooldown_s": "120", "mood_circumplex_sad": "[-0.6,-0.3]"}
    assert _settings_args(vars(build_parser().parse_args(["--mood"])))["mood"] is True
    assert "mood" not in _settings_args(vars(build_parser().parse_args([])))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--mood-setting", "cooldown_s"])


def test_batcher_sends_one_call_per_tick_in_order() -> None:
    from ser_daemon.cluster.batcher import WindowBatcher

    calls: list[int] = []

    async def model(x: np.ndarray) -> tuple[np.ndarray, float]:
        calls.append(len(x))
        return x[:, 0, :2] * 2, 0.5

    async def main() -> list:
        b = WindowBatcher(model, wait_s=0.01, max_batch=4)
        futs = [b.infer(np.full((3, 2), float(i), np.float32)) for i in range(6)]
        return [await f for f in futs]

    out = asyncio.run(main())
    assert calls == [4, 2]  # a full batch at once, the rest after the wait
    assert [float(p[0]) for p, _ in out] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert all(ms == 0.5 for _, ms in out)


def test_batcher_sends_a_tick_of_windows_as_one_stack_and_answers_it_with_one_future() -> None:
    from ser_daemon.cluster.batcher import WindowBatcher

    calls: list[int] = []

    async def model(x: np.ndarray) -> tuple[np.ndarray, float]:
        calls.append(len(x))
        return x[:, 0, :2] * 2, 0.5

    async def main() -> tuple:
        b = WindowBatcher(model, wait_s=0.01, max_batch=4)
        one = b.infer(np.full((3, 2), 7.0, np.float32))
        tick = b.infer_many(np.stack([np.full((3, 2), float(i), np.float32) for i in range(3)]))
        late = b.infer_many(np.stack([np.full((3, 2), 9.0, np.float32)] * 2))  # would overflow: next call
        with pytest.raises(ValueError, match="at most 4 windows"):
            b.infer_many(np.zeros((5, 3, 2), np.float32))
        return await one, await tick, await late

    (p1, _), (pt, ms), (pl, _) = asyncio.run(main())
    assert calls == [4, 2]  # the tick joined the waiting window; the next stack did not split it
    assert float(p1[0]) == 14.0 and p1.shape == (2,)
    assert pt.shape == (3, 2) and [float(r[0]) for r in pt] == [0.0, 2.0, 4.0] and ms == 0.5
    assert pl.shape == (2, 2) and float(pl[1, 0]) == 18.0


def test_batcher_hands_a_failed_call_to_every_window() -> None:
    from ser_daemon.cluster.batcher import WindowBatcher

    async def model(x: np.ndarray) -> tuple[np.ndarray, float]:
        raise RuntimeError("replica died")

    async def main() -> list:
        b = WindowBatcher(model, wait_s=0.001, max_batch=8)
        futs = [b.infer(np.zeros((3, 2), np.float32)) for _ in range(3)]
        return await asyncio.gather(*futs, return_exceptions=True)

    assert all(isinstance(e, RuntimeError) for e in asyncio.run(main()))


def test_a_multiplexed_stream_the_server_ends_drops_its_audio_and_ends_alone_after_its_final_state() -> None:
    """The cluster's ingress ends a stream whose model call failed (1011): MuxSession.end."""
    from ser_daemon.net.ingest_mux import MuxSession, StreamAudio, encode_audio_frame

    s = MuxSession(lambda _n: False, lambda: True)
    for tag, name in ((1, "a"), (2, "b")):
        s.receive(json.dumps({"type": "start", "stream": name, "tag": tag, "sample_rate": 16000}), 0.0)
    ended = s.end("a", 1011, "model unavailable: reconnect")
    assert ended is not None and (ended.stream_id, ended.tag, ended.code) == ("a", 1, 1011)
    assert s.end("a", 1011, "again") is None and s.end("nobody", 1011, "x") is None
    events = s.receive(encode_audio_frame([(1, b"\x00\x00" * 4), (2, b"\x00\x00" * 4)]), 0.1)
    assert [e.stream.name for e in events if isinstance(e, StreamAudio)] == ["b"]  # a's audio is dropped
    assert s.receive(json.dumps({"type": "stop", "stream": "a"}), 0.2) == []  # its stop crossed the end
    assert json.loads(s.finish("a") or "{}") == {"type": "ended", "stream": "a", "tag": 1, "code": 1011,
                                                 "reason": "model unavailable: reconnect"}
    assert [x.name for x in s.live_streams()] == ["b"]



def test_the_direct_port_options_reach_the_settings() -> None:
    from ser_daemon.cluster.cli import _settings_args, build_parser

    args = _settings_args(vars(build_parser().parse_args(["--direct-host", "127.0.0.1", "--direct-port", "9100"])))
    s = ClusterSettings(model_dir="/m", **args)
    assert (s.direct_host, s.direct_port) == ("127.0.0.1", 9100)
    assert ClusterSettings(model_dir="/m").direct_host is None  # off unless asked for


def test_a_local_cluster_is_always_a_new_instance_of_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without address="local", Ray joins any cluster /tmp/ray/ray_current_cluster names and refuses num_cpus."""
    ray = pytest.importorskip("ray")
    from ser_daemon.cluster.runner import loopback_ray_env, start_ray

    for key, value in loopback_ray_env().items():
        monkeypatch.setenv(key, value)
    calls: list[dict] = []
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    start_ray(num_cpus=2)
    start_ray(address="ray://10.0.0.5:10001")
    assert calls[0]["address"] == "local" and calls[0]["num_cpus"] == 2 and calls[0]["_node_ip_address"] == "127.0.0.1"
    assert calls[1] == {"address": "ray://10.0.0.5:10001"}
