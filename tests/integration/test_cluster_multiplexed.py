"""The multiplexed ingest protocol (``ser-ingest-mux.v1``) on the Ray Serve ingress, through Serve's proxy.

The same protocol tests as the daemon's (test_streams_multiplexed.py, whose client helpers these
use), against one local Ray instance (2 CPUs, loopback only) with one ingress replica that holds
at most 6 streams, the shipped model on LiteRT, OSC allowed to 127.0.0.1, and the replica's
own port for multiplexed connections on 127.0.0.1 (``direct.py``; the last test).  Every loop is
bounded in count and time.  Needs ``pip install -e '.[cluster]'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import numpy as np
import pytest

from ser_daemon.cluster.runner import loopback_ray_env

os.environ.update(loopback_ray_env())  # before Ray is imported: a loopback-only instance
ray = pytest.importorskip("ray", reason="Ray Serve is needed: pip install -e '.[cluster]'")

from conftest import timeout  # noqa: E402
from test_cluster import TIMING_FIELDS, _clip, _pcm, _talk, local_cluster  # noqa: E402
from test_streams_multiplexed import Reader, check_bad_neighbours, ended_of, play, start  # noqa: E402

from ser_daemon.net.mux_wire import SUBPROTOCOL_BINARY, SUBPROTOCOL_JSON, encode_audio_frame  # noqa: E402

pytestmark = pytest.mark.slow

ROOM = 6  # streams one ingress replica holds


@pytest.fixture(scope="module")
def cluster() -> Any:
    yield from local_cluster(ingress_replicas=1, allow_stream_osc="127.0.0.1", streams_per_replica=ROOM,
                             max_streams_per_replica=ROOM, direct_host="127.0.0.1")


async def _connect(port: int, protocol: str | None = SUBPROTOCOL_JSON) -> Any:
    from websockets.asyncio.client import connect

    deadline = time.monotonic() + timeout(20)
    while True:
        try:
            return await connect(f"ws://127.0.0.1:{port}/", subprotocols=[protocol] if protocol else None,
                                 max_size=None, open_timeout=timeout(5))
        except (OSError, asyncio.TimeoutError):
            assert time.monotonic() < deadline, f"no ingest endpoint on port {port}"
            await asyncio.sleep(0.1)


def _voice(seconds: float, offset_s: float = 0.0) -> np.ndarray:
    samples, rate = _clip()
    assert rate == 16000
    x = np.tile(samples, 3)
    k = int(offset_s * rate)
    return x[k : k + int(seconds * rate)]


def test_many_streams_on_one_connection_states_as_todays_protocol_and_every_final(cluster) -> None:
    """Three streams (one at 48 kHz stereo) share a connection; one also runs over today's protocol."""
    voice = _voice(4.0)
    stereo48 = np.repeat(np.repeat(voice, 3)[:, None], 2, axis=1)  # the same audio at 48 kHz, two channels

    async def main() -> tuple[Reader, list[dict]]:
        ws = await _connect(cluster["port"])
        r = Reader(ws)
        await ws.send(start("m-alice", 1))
        await ws.send(start("m-bob", 2))
        await ws.send(start("m-carol", 3, rate=48000, channels=2))
        await r.wait(lambda: len(r.started) == 3, 20)
        today = asyncio.ensure_future(_talk(cluster["port"], "t-alice", _pcm(voice), 16000))
        await play(ws, {1: voice, 2: voice[::-1].copy()})  # carol's 48 kHz chunks go in their own frames below
        for name in ("m-alice", "m-bob"):
            await ws.send(json.dumps({"type": "stop", "stream": name}))
        block = 960
        for k in range(0, len(stereo48), block * 25):  # carol: 0.5 s a frame, at 2x real time (within its rate)
            await ws.send(encode_audio_frame([(3, _pcm(stereo48[k : k + block * 25].reshape(-1)))]))
            await asyncio.sleep(0.25)
        await ws.send(json.dumps({"type": "stop", "stream": "m-carol"}))
        await r.wait(lambda: len(r.ended) == 3, 30)
        _, msgs, code, _ = await today
        await ws.close()
        await asyncio.wait_for(r.task, timeout(5))
        assert code == 1000
        return r, [m for m in msgs if m["type"] == "state"]

    r, todays = asyncio.run(main())
    assert r.welcome is not None and r.welcome["protocol"] == SUBPROTOCOL_JSON and r.welcome["states"] == "json"
    assert [s["stream"] for s in r.started] == ["m-alice", "m-bob", "m-carol"]
    for name in ("m-alice", "m-bob", "m-carol"):
        mine = r.states("stream", name)
        assert len(mine) >= 5 and [s["seq"] for s in mine] == list(range(len(mine))), name
        assert mine[-1]["final"] and sum(s["final"] for s in mine) == 1
        assert ended_of(r, name) == [(1000, "stopped")]
        assert r.order.index(("ended", name)) > max(i for i, o in enumerate(r.order) if o == ("state", name))
    assert max(len(b) for b in r.batches) >= 2  # one message carries several streams' states of a tick
    # The same audio gives the same states over either protocol: same front end, same model.  (Carol's
    # 48 kHz copy is resampled first, so hers are close, not equal: not compared.)
    def same(s: dict) -> dict:
        return {k: v for k, v in s.items() if k not in (*TIMING_FIELDS, "stream")}

    by_end = {s["end_sample"]: same(s) for s in todays if not s["final"]}
    mine = {s["end_sample"]: same(s) for s in r.states("stream", "m-alice") if not s["final"]}
    common = sorted(set(by_end) & set(mine))  # a window dropped under load is missing on one side
    assert len(common) >= 5, (sorted(by_end), sorted(mine))
    for end in common:
        assert mine[end]["label"] == by_end[end]["label"], end
        assert mine[end]["probs"] == pytest.approx(by_end[end]["probs"], abs=1e-3), end


def test_one_bad_stream_never_ends_its_neighbours_and_every_final_state_arrives(cluster) -> None:
    voice = _voice(4.0)

    async def main() -> Reader:
        ws = await _connect(cluster["port"])
        r = Reader(ws)
        for i, name in enumerate(("good1", "odd", "greedy", "good2"), start=1):
            await ws.send(start(name, i))
        await r.wait(lambda: len(r.started) == 4, 20)
        await play(ws, {1: voice[:40000], 2: voice[:40000], 4: voice[:40000]})
        await ws.send(encode_audio_frame([(1, _pcm(voice[:320])), (2, b"\x00\x00\x00"), (9, b"\x00\x00"),
                                          (3, _pcm(np.zeros(16000 * 4))), (4, _pcm(voice[:320]))]))
        await play(ws, {1: voice[40000:], 2: voice[40000:], 3: voice[40000:], 4: voice[40000:]})
        await r.wait(lambda: len(r.ended) == 3, 20)  # odd, greedy, the unknown tag
        for name in ("good1", "good2"):
            await ws.send(json.dumps({"type": "stop", "stream": name}))
        await r.wait(lambda: len(r.ended) == 5, 20)
        await ws.close()
        return r

    check_bad_neighbours(asyncio.run(main()), min_seq=8)  # 4 s of audio, 250 ms hops after a 2 s window


def test_every_per_stream_refusal_has_todays_code_and_reason_and_the_connection_goes_on(cluster) -> None:
    registry = cluster["registry"]

    async def main() -> tuple[Reader, Reader, dict]:
        from websockets.asyncio.client import connect

        old = await connect(f"ws://127.0.0.1:{cluster['port']}/")  # today's protocol holds "x"
        await old.send(json.dumps({"type": "start", "stream": "x", "sample_rate": 16000}))
        assert json.loads(await asyncio.wait_for(old.recv(), timeout(10))) == {"type": "started", "stream": "x"}
        assert await registry.claim.remote("z", "another-replica")  # "z" is held elsewhere in the cluster
        ws = await _connect(cluster["port"])
        r = Reader(ws)
        for msg in (start("a", 1), json.dumps({"type": "start", "stream": "y", "sample_rate": 5, "tag": 2}),
                    start("nl\n", 2), start("b", 2, osc="127.0.0.2:9000"), start("b", 1), start("x", 2),
                    start("z", 2), start("a", 2), json.dumps({"type": "start", "stream": "b", "sample_rate": 16000}),
                    start("b", 2), json.dumps({"type": "stop", "stream": "nobody"})):
            await ws.send(msg)
        await r.wait(lambda: len(r.started) == 2 and len(r.ended) == 9, 20)
        other = await _connect(cluster["port"])
        r2 = Reader(other)
        for i, name in enumerate(("c", "d", "e", "f"), start=1):  # the replica holds x, a, b: room for 3
            await other.send(start(name, i))
        await r2.wait(lambda: len(r2.started) == 3 and len(r2.ended) == 1, 20)
        await ws.send(encode_audio_frame([(1, _pcm(_voice(0.02)))]))  # the connection is still open
        for name in ("a", "b"):
            await ws.send(json.dumps({"type": "stop", "stream": name}))
        await r.wait(lambda: len(r.ended) == 11, 20)
        owners: dict = {}
        for _ in range(50):  # the stopped ids are released in the registry (bounded)
            owners = await registry.owners.remote()
            if not {"a", "b"} & set(owners):
                break
            await asyncio.sleep(0.1)
        await registry.release.remote("z", "another-replica")
        for c in (old, ws, other):
            await c.close()
        return r, r2, owners

    r, r2, owners = asyncio.run(main())
    got = [(e["stream"], e["tag"], e["code"], e["reason"]) for e in r.ended[:9]]
    assert got == [
        ("y", 2, 1007, "sample_rate must be an integer in 8000..192000"),
        ("nl\n", 2, 1007, "stream must be 1-64 letters, digits, '_' or '-'"),
        ("b", 2, 1008, "OSC output to 127.0.0.2 is not allowed by this server"),
        ("b", 1, 1008, "tag 1 is in use on this connection"),
        ("x", 2, 1008, "stream id 'x' is in use"),
        ("z", 2, 1008, "stream id 'z' is in use"),
        ("a", 2, 1008, "stream id 'a' is in use"),
        ("b", None, 1007, "tag must be an integer in 0..65535"),
        ("nobody", None, 1008, "no stream 'nobody' on this connection"),
    ]
    assert [s["stream"] for s in r.started] == ["a", "b"]
    assert [s["stream"] for s in r2.started] == ["c", "d", "e"]
    assert [(e["stream"], e["code"], e["reason"]) for e in r2.ended] == [
        ("f", 1013, f"too many streams on this replica ({ROOM})")]
    assert sorted((e["stream"], e["code"]) for e in r.ended[9:]) == [("a", 1000), ("b", 1000)]
    assert r.states("stream", "a")[-1]["final"] and r.states("stream", "b")[-1]["final"]
    assert not {"a", "b"} & set(owners), owners


@pytest.mark.parametrize("message, code", [
    ("hello", 1007),
    ('{"type": "hello"}', 1007),
    (b"\x01\x01\x01\x00\x10\x00\x00\x00", 1007),
    (b"\x01" * (256 * 1024 + 1), 1009),
])
def test_only_connection_level_abuse_closes_the_connection(cluster, message, code) -> None:
    async def main() -> tuple[Reader, Reader]:
        neighbour = await _connect(cluster["port"])
        rn = Reader(neighbour)
        await neighbour.send(start("n", 1))
        ws = await _connect(cluster["port"])
        r = Reader(ws)
        await ws.send(start("bad", 1))
        await r.wait(lambda: len(r.started) == 1 and len(rn.started) == 1, 20)
        await ws.send(message)
        await asyncio.wait_for(r.task, timeout(10))
        await play(neighbour, {1: _voice(0.5)})
        await neighbour.send(json.dumps({"type": "stop", "stream": "n"}))
        await rn.wait(lambda: len(rn.ended) == 1, 20)
        await neighbour.close()
        return r, rn

    r, rn = asyncio.run(main())
    assert r.close[0] == code
    assert ended_of(rn, "n") == [(1000, "stopped")] and rn.states("stream", "n")[-1]["final"]


def test_binary_states_are_tagged_records_and_osc_goes_out_where_allowed(cluster) -> None:
    import socket

    from ser_daemon.net.osc_in import parse_osc

    voice = _voice(3.0)
    osc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    osc.bind(("127.0.0.1", 0))
    osc.settimeout(0.2)

    async def main() -> Reader:
        ws = await _connect(cluster["port"], SUBPROTOCOL_BINARY)
        r = Reader(ws)
        await ws.send(start("bin-a", 10, osc=f"127.0.0.1:{osc.getsockname()[1]}"))
        await ws.send(start("bin-b", 20))
        await r.wait(lambda: len(r.started) == 2, 20)
        await play(ws, {10: voice, 20: voice[::-1].copy()})
        for name in ("bin-a", "bin-b"):
            await ws.send(json.dumps({"type": "stop", "stream": name}))
        await r.wait(lambda: len(r.ended) == 2, 20)
        await ws.close()
        return r

    try:
        r = asyncio.run(main())
        packets = []
        for _ in range(200):  # bounded: what the replica sent is queued in our socket already
            try:
                packets.append(osc.recv(65536))
            except socket.timeout:
                break
    finally:
        osc.close()
    assert r.welcome is not None and r.welcome["states"] == "binary" and r.welcome["labels"]
    for tag in (10, 20):
        mine = r.states("tag", tag)
        assert len(mine) >= 4 and [s["seq"] for s in mine] == list(range(len(mine)))
        assert mine[-1]["final"] and abs(sum(mine[-2]["probs"].values()) - 1.0) < 1e-3
    assert {(e["stream"], e["tag"], e["code"]) for e in r.ended} == {("bin-a", 10, 1000), ("bin-b", 20, 1000)}
    assert max(len(b) for b in r.batches) == 2
    assert len(packets) >= len(r.states("tag", 10)), "one OSC bundle per state of the stream that asked"
    assert all(parse_osc(p) for p in packets)


def test_todays_protocol_is_untouched_and_ids_are_shared_with_it(cluster) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def main() -> list[Any]:
        out = []
        async with connect(f"ws://127.0.0.1:{cluster['port']}/", subprotocols=["chat.v2"]) as ws:
            out.append(ws.subprotocol)
            await ws.send(json.dumps({"type": "start", "stream": "solo", "sample_rate": 16000}))
            out.append(json.loads(await asyncio.wait_for(ws.recv(), timeout(10))))
        mux = await _connect(cluster["port"])
        r = Reader(mux)
        await mux.send(start("held", 1))
        await r.wait(lambda: len(r.started) == 1, 20)
        async with connect(f"ws://127.0.0.1:{cluster['port']}/") as ws:
            await ws.send(json.dumps({"type": "start", "stream": "held", "sample_rate": 16000}))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout(10))
            out.append((ws.close_code, ws.close_reason))
        await mux.close()
        return out

    assert asyncio.run(main()) == [None, {"type": "started", "stream": "solo"}, (1008, "stream id 'held' is in use")]


def test_the_replica_serves_multiplexed_connections_on_its_own_port_found_with_get_endpoints(cluster) -> None:
    """No proxy in between: the same protocol and rules; today's protocol is not served there."""
    import urllib.request

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    deadline = time.monotonic() + timeout(10)
    while True:  # the replica announces its port when it has started (bounded)
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster['port']}/endpoints", timeout=timeout(5)) as resp:
            listed = json.loads(resp.read())
        if listed["endpoints"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(listed["endpoints"]) == 1 and listed["endpoints"][0].startswith("ws://127.0.0.1:"), listed
    assert listed["subprotocols"] == [SUBPROTOCOL_JSON, SUBPROTOCOL_BINARY]
    url = listed["endpoints"][0]
    voice = _voice(3.0)

    async def main() -> tuple[Reader, Any]:
        ws = await connect(url, subprotocols=[SUBPROTOCOL_BINARY], max_size=None)
        r = Reader(ws)
        await ws.send(start("d-a", 1))
        await ws.send(start("d-b", 2))
        await ws.send(start("d-a", 3))  # the same rules: an id in use is ended alone
        await r.wait(lambda: len(r.started) == 2 and len(r.ended) == 1, 20)
        await play(ws, {1: voice, 2: voice[::-1].copy()})
        for name in ("d-a", "d-b"):
            await ws.send(json.dumps({"type": "stop", "stream": name}))
        await r.wait(lambda: len(r.ended) == 3, 20)
        await ws.close()
        with pytest.raises(InvalidStatus) as refused:  # today's protocol: through the proxy only
            await connect(url)
        return r, refused.value.response.status_code

    r, plain = asyncio.run(main())
    assert r.welcome is not None and r.welcome["protocol"] == SUBPROTOCOL_BINARY
    assert [(e["stream"], e["code"], e["reason"]) for e in r.ended[:1]] == [("d-a", 1008, "stream id 'd-a' is in use")]
    for tag, name in ((1, "d-a"), (2, "d-b")):
        mine = r.states("tag", tag)
        assert len(mine) >= 4 and [s["seq"] for s in mine] == list(range(len(mine))) and mine[-1]["final"]
        assert ended_of(r, name)[-1] == (1000, "stopped")
    assert plain == 400
