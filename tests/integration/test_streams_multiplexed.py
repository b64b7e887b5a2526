"""The multiplexed ingest protocol on the daemon's ``--ingest`` server: real WebSocket sockets on 127.0.0.1.

The in-process tests run the real :class:`IngestServer` and the real :class:`Engine` (its processing
thread, the stand-in model of fakes.py), wired as the daemon wires them; the last test runs the
daemon's CLI with the tiny TensorFlow model.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from typing import Any

import numpy as np
import pytest

from conftest import timeout
from fakes import StubClassifier, stub_bundle, tone
from helpers import REPO, daemon_cmd, free_port
from ser_daemon.app.engine import Engine
from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.net.endpoints import Endpoint
from ser_daemon.net.ingest import IngestServer
from ser_daemon.net.ingest_mux import (
    SUBPROTOCOL_BINARY,
    SUBPROTOCOL_JSON,
    MuxLimits,
    decode_states,
    encode_audio_frame,
)
from ser_daemon.net.websocket_server import AccessPolicy

TICK_S = 0.02

# Real-time audio over real sockets (seconds per test): the slow tier; the protocol's rules are
# unit-tested in the fast tier (tests/unit/net/test_ingest_mux.py).
pytestmark = pytest.mark.slow


class Rig:
    """An ingest server and an engine in a thread, wired as the daemon wires them."""

    def __init__(self, max_streams: int = 16, idle_timeout_s: float = 10.0, mux_limits: MuxLimits | None = None,
                 max_message_bytes: int = 256 * 1024) -> None:
        bundle = stub_bundle(window_s=0.5)
        self.labels = bundle.labels
        self.engine = Engine(bundle, StubClassifier(bundle), AnalysisSettings(hop_ms=100.0, drop_stale=False),
                             self._emit, keep_running=True)
        self.server = IngestServer(
            AccessPolicy(max_message_bytes=max_message_bytes),
            lambda src: self.engine.add_remote(src.name, src, src.ring, src.format), self.engine.is_live,
            self.engine.wake.set, max_streams=max_streams, idle_timeout_s=idle_timeout_s, labels=bundle.labels,
            mux_limits=mux_limits)
        self.engine.on_tick_end = self.server.flush
        self.thread = threading.Thread(target=self.engine.run, daemon=True)
        self.port = 0

    def _emit(self, state: Any) -> None:
        self.server.deliver(state)

    async def __aenter__(self) -> Rig:
        self.port = await self.server.start(Endpoint("127.0.0.1", 0))
        self.thread.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.engine.stop()
        await asyncio.to_thread(self.thread.join, timeout(5))
        await self.server.close()
        assert not self.thread.is_alive()

    async def connect(self, protocol: str | None = SUBPROTOCOL_JSON) -> Any:
        from websockets.asyncio.client import connect

        return await connect(f"ws://127.0.0.1:{self.port}", subprotocols=[protocol] if protocol else None,
                             max_size=None)


def start(stream: str, tag: int, rate: int = 16000, channels: int = 1, **extra: Any) -> str:
    return json.dumps({"type": "start", "stream": stream, "tag": tag, "sample_rate": rate, "channels": channels,
                       **extra})


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


class Reader:
    """Everything a multiplexed client receives, sorted by kind; bounded in time."""

    def __init__(self, ws: Any, labels: tuple[str, ...] = ()) -> None:
        self.ws, self.labels = ws, labels
        self.welcome: dict | None = None
        self.started: list[dict] = []
        self.ended: list[dict] = []
        self.batches: list[list[dict]] = []
        self.order: list[tuple[str, str]] = []  # (kind, stream) in arrival order: finals before ended
        self.close: tuple[int | None, str | None] = (None, None)
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                m = await self.ws.recv()
                if isinstance(m, bytes):
                    states = decode_states(m, self.labels)
                    self.batches.append(states)
                    self.order += [("state", str(s["tag"])) for s in states]
                    continue
                d = json.loads(m)
                if d["type"] == "welcome":
                    self.welcome = d
                    self.labels = tuple(d["labels"])
                elif d["type"] == "started":
                    self.started.append(d)
                elif d["type"] == "ended":
                    self.ended.append(d)
                    self.order.append(("ended", str(d["stream"] if d["stream"] is not None else d["tag"])))
                else:
                    assert d["type"] == "states", d
                    self.batches.append(d["states"])
                    self.order += [("state", s["stream"]) for s in d["states"]]
        except ConnectionClosed:
            self.close = (self.ws.close_code, self.ws.close_reason)

    def states(self, key: str, value: Any) -> list[dict]:
        return [s for b in self.batches for s in b if s[key] == value]

    async def wait(self, cond: Any, limit_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout(limit_s)
        while not cond():
            assert time.monotonic() < deadline, (self.started, self.ended, len(self.batches), self.close)
            await asyncio.sleep(0.01)


def ended_of(r: Reader, stream: str) -> list[tuple[int, str]]:
    return [(e["code"], e["reason"]) for e in r.ended if e["stream"] == stream]


async def play(ws: Any, tracks: dict[int, np.ndarray], rate: int = 16000, speed: float = 1.0) -> None:
    """Send every track's audio, one frame per 20 ms tick carrying every stream's chunk (mono int16)."""
    block = int(rate * TICK_S)
    n = max(len(t) for t in tracks.values())
    t0 = time.monotonic()
    for k, i in enumerate(range(0, n, block)):
        chunks = [(tag, pcm16(t[i : i + block])) for tag, t in tracks.items() if i < len(t)]
        await ws.send(encode_audio_frame(chunks))
        delay = t0 + (k + 1) * TICK_S / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def test_many_streams_on_one_connection_each_with_its_format_states_and_final() -> None:
    async def main() -> Reader:
        async with Rig() as rig:
            ws = await rig.connect()
            r = Reader(ws)
            await ws.send(start("alice", 1))
            await ws.send(start("bob", 2))
            await ws.send(start("carol", 3, rate=48000, channels=2))
            await r.wait(lambda: len(r.started) == 3)
            loud, quiet = tone(3000, 1.5), tone(200, 1.5, level=0.01)
            stereo = np.repeat(tone(3000, 1.5, rate=48000)[:, None], 2, axis=1)
            block16, block48 = 320, 960
            t0 = time.monotonic()
            for k in range(75):
                await ws.send(encode_audio_frame([
                    (1, pcm16(loud[k * block16:(k + 1) * block16])), (2, pcm16(quiet[k * block16:(k + 1) * block16])),
                    (3, pcm16(stereo[k * block48:(k + 1) * block48].reshape(-1)))]))
                await asyncio.sleep(max(0.0, t0 + (k + 1) * TICK_S - time.monotonic()))
            for name in ("alice", "bob", "carol"):
                await ws.send(json.dumps({"type": "stop", "stream": name}))
            await r.wait(lambda: len(r.ended) == 3)
            await ws.close()
            await asyncio.wait_for(r.task, timeout(5))
            return r

    r = asyncio.run(main())
    assert r.welcome is not None and r.welcome["states"] == "json" and r.welcome["protocol"] == SUBPROTOCOL_JSON
    assert r.started == [{"type": "started", "stream": "alice", "tag": 1}, {"type": "started", "stream": "bob", "tag": 2},
                         {"type": "started", "stream": "carol", "tag": 3}]
    for name, label in (("alice", "angry"), ("bob", "neutral"), ("carol", "angry")):
        mine = r.states("stream", name)
        assert [s["seq"] for s in mine] == list(range(len(mine))) and len(mine) >= 5, name
        assert label in {s["label"] for s in mine if not s["final"]}, (name, {s["label"] for s in mine})
        assert mine[-1]["final"] and sum(s["final"] for s in mine) == 1
        assert ended_of(r, name) == [(1000, "stopped")]
        assert r.order.index(("ended", name)) > max(i for i, o in enumerate(r.order) if o == ("state", name))
    assert max(len(b) for b in r.batches) >= 2  # one message carries several streams' states of a tick


def test_one_bad_stream_never_ends_its_neighbours_and_every_final_state_arrives() -> None:
    async def main() -> Reader:
        async with Rig() as rig:
            ws = await rig.connect()
            r = Reader(ws)
            for i, name in enumerate(("good1", "odd", "greedy", "good2"), start=1):
                await ws.send(start(name, i))
            await r.wait(lambda: len(r.started) == 4)
            voice = tone(3000, 1.6)
            await play(ws, {1: voice[:8000], 2: voice[:8000], 4: voice[:8000]})
            await ws.send(encode_audio_frame([(1, pcm16(voice[:320])), (2, b"\x00\x00\x00"), (9, b"\x00\x00"),
                                              (3, pcm16(np.zeros(16000 * 4))), (4, pcm16(voice[:320]))]))
            await play(ws, {1: voice[8000:], 2: voice[8000:], 3: voice[8000:], 4: voice[8000:]})
            await r.wait(lambda: len(r.ended) == 3)  # odd, greedy, the unknown tag
            for name in ("good1", "good2"):
                await ws.send(json.dumps({"type": "stop", "stream": name}))
            await r.wait(lambda: len(r.ended) == 5)
            await ws.close()
            return r

    check_bad_neighbours(asyncio.run(main()), min_seq=10)  # 1.6 s of audio, 100 ms hops


def check_bad_neighbours(r: Reader, min_seq: int) -> None:
    """What a client of "good1", "odd" (3 bytes), "greedy" (4 s at once), "good2" and tag 9 (never
    started) sees, on either server: the bad ones end alone, each after its final state."""
    assert ended_of(r, "odd") == [(1007, "audio messages must hold whole frames of 2 bytes")]
    assert ended_of(r, "greedy") == [(1008, "over 64000 bytes/s (2x real time)")]
    assert [(e["tag"], e["code"], e["reason"]) for e in r.ended if e["stream"] is None] == [
        (9, 1008, "send the start message before any audio")]
    for name in ("good1", "good2"):
        mine = r.states("stream", name)
        assert ended_of(r, name) == [(1000, "stopped")] and mine[-1]["final"]
        assert mine[-1]["seq"] >= min_seq  # decisions went on after the bad neighbours ended
    for name in ("odd", "greedy"):  # an ended stream's final state comes before its ended message
        mine = r.states("stream", name)
        assert mine and mine[-1]["final"] and sum(s["final"] for s in mine) == 1
        assert r.order.index(("ended", name)) > r.order.index(("state", name))


def test_every_per_stream_refusal_has_todays_code_and_reason_and_the_connection_goes_on() -> None:
    async def main() -> tuple[Reader, dict]:
        from websockets.asyncio.client import connect

        async with Rig(max_streams=5, mux_limits=MuxLimits(max_streams=3)) as rig:
            old = await connect(f"ws://127.0.0.1:{rig.port}")  # today's protocol holds "x"
            await old.send(json.dumps({"type": "start", "stream": "x", "sample_rate": 16000}))
            assert json.loads(await old.recv()) == {"type": "started", "stream": "x"}
            ws = await rig.connect()
            r = Reader(ws)
            for msg in (start("a", 1), json.dumps({"type": "start", "stream": "y", "sample_rate": 5, "tag": 2}),
                        start("nl\n", 2), start("b", 2, osc="127.0.0.1:9000"), start("b", 1), start("x", 2),
                        start("a", 2), json.dumps({"type": "start", "stream": "b", "sample_rate": 16000}),
                        start("b", 2), start("c", 3), start("d", 4),
                        json.dumps({"type": "stop", "stream": "nobody"})):
                await ws.send(msg)
            await r.wait(lambda: len(r.started) == 3 and len(r.ended) == 9)
            other = await rig.connect()
            r2 = Reader(other)
            await other.send(start("e", 1))  # the server's 4th stream: room
            await other.send(start("f", 2))  # its 5th: --max-streams
            await r2.wait(lambda: len(r2.started) == 1 and len(r2.ended) == 1)
            await ws.send(encode_audio_frame([(1, pcm16(tone(3000, 0.02)))]))  # the connection is still open
            for name in ("a", "b", "c"):
                await ws.send(json.dumps({"type": "stop", "stream": name}))
            await r.wait(lambda: len(r.ended) == 12)
            await old.close()
            await ws.close()
            await other.close()
            return r, {"e": r2.ended[0], "close": r.close}

    r, more = asyncio.run(main())
    got = [(e["stream"], e["tag"], e["code"], e["reason"]) for e in r.ended[:9]]
    assert got == [
        ("y", 2, 1007, "sample_rate must be an integer in 8000..192000"),
        ("nl\n", 2, 1007, "stream must be 1-64 letters, digits, '_' or '-'"),
        ("b", 2, 1008, "OSC output to 127.0.0.1 is not allowed by this server"),
        ("b", 1, 1008, "tag 1 is in use on this connection"),
        ("x", 2, 1008, "stream id 'x' is in use"),
        ("a", 2, 1008, "stream id 'a' is in use"),
        ("b", None, 1007, "tag must be an integer in 0..65535"),
        ("d", 4, 1013, "too many streams on this connection (3)"),
        ("nobody", None, 1008, "no stream 'nobody' on this connection"),
    ]
    assert [s["stream"] for s in r.started] == ["a", "b", "c"]
    assert (more["e"]["stream"], more["e"]["code"], more["e"]["reason"]) == ("f", 1013,
                                                                             "too many streams (--max-streams 5)")
    assert sorted(e["stream"] for e in r.ended[9:]) == ["a", "b", "c"]


@pytest.mark.parametrize("message, code", [
    ("hello", 1007),
    ('{"type": "hello"}', 1007),
    (b"\x05\x01", 1007),
    (b"\x01\x01\x01\x00\x10\x00\x00\x00", 1007),
    (b"\x01" * 2048, 1009),
])
def test_only_connection_level_abuse_closes_the_connection(message, code) -> None:
    async def main() -> tuple[Reader, Reader]:
        async with Rig(max_message_bytes=1024) as rig:
            neighbour = await rig.connect()
            rn = Reader(neighbour)
            await neighbour.send(start("n", 1))
            ws = await rig.connect()
            r = Reader(ws)
            await ws.send(start("a", 1))
            await r.wait(lambda: len(r.started) == 1 and len(rn.started) == 1)
            await ws.send(message)
            await asyncio.wait_for(r.task, timeout(5))
            await play(neighbour, {1: tone(3000, 0.7)})
            await neighbour.send(json.dumps({"type": "stop", "stream": "n"}))
            await rn.wait(lambda: len(rn.ended) == 1)
            await neighbour.close()
            return r, rn

    r, rn = asyncio.run(main())
    assert r.close[0] == code
    assert ended_of(rn, "n") == [(1000, "stopped")] and rn.states("stream", "n")[-1]["final"]


def test_a_connection_whose_messages_pile_up_unsent_is_closed_1008_and_its_streams_end() -> None:
    """The outgoing queue is bounded (MUX_OUT_QUEUE); here 2, overflowed by one frame's 5 refusals."""
    async def main() -> tuple[Reader, Reader, int]:
        async with Rig() as rig:
            rig.server.mux.out_queue = 2
            ws = await rig.connect()
            r = Reader(ws)
            await ws.send(start("a", 1))
            await r.wait(lambda: len(r.started) == 1)
            rig.server.mux.out_queue = 256
            neighbour = await rig.connect()
            rn = Reader(neighbour)
            await neighbour.send(start("n", 1))
            await rn.wait(lambda: len(rn.started) == 1)
            await ws.send(encode_audio_frame([(t, b"") for t in range(10, 15)]))
            await asyncio.wait_for(r.task, timeout(5))
            await play(neighbour, {1: tone(3000, 0.6)})
            await neighbour.send(json.dumps({"type": "stop", "stream": "n"}))
            await rn.wait(lambda: len(rn.ended) == 1)
            await neighbour.close()
            return r, rn, rig.server.active_streams

    r, rn, active = asyncio.run(main())
    assert r.close == (1008, "states not read: too far behind")
    assert ended_of(rn, "n") == [(1000, "stopped")] and active == 0  # "a" ended with its connection


def test_binary_states_are_tagged_records_one_frame_per_tick() -> None:
    async def main() -> Reader:
        async with Rig() as rig:
            ws = await rig.connect(SUBPROTOCOL_BINARY)
            r = Reader(ws)
            await ws.send(start("a", 10))
            await ws.send(start("b", 20))
            await r.wait(lambda: len(r.started) == 2)
            await play(ws, {10: tone(3000, 1.5), 20: tone(200, 1.5, level=0.01)})
            await ws.send(json.dumps({"type": "stop", "stream": "a"}))
            await ws.send(json.dumps({"type": "stop", "stream": "b"}))
            await r.wait(lambda: len(r.ended) == 2)
            await ws.close()
            return r

    r = asyncio.run(main())
    assert r.welcome is not None and r.welcome["states"] == "binary" and r.welcome["labels"] == ["neutral", "happy", "angry"]
    for tag, label in ((10, "angry"), (20, "neutral")):
        mine = r.states("tag", tag)
        assert [s["seq"] for s in mine] == list(range(len(mine))) and len(mine) >= 3
        assert label in {s["label"] for s in mine[:-1]} and mine[-1]["final"]
        assert abs(sum(mine[-2]["probs"].values()) - 1.0) < 1e-3
    assert {(e["stream"], e["tag"], e["code"]) for e in r.ended} == {("a", 10, 1000), ("b", 20, 1000)}
    assert max(len(b) for b in r.batches) == 2


def test_a_silent_stream_is_ended_alone_and_an_idle_connection_is_closed() -> None:
    # Scaled on a loaded machine: a talker whose frames arrive late must not be taken for a silent one.
    idle = round(timeout(1.0), 3)

    async def main() -> tuple[Reader, Reader]:
        async with Rig(mux_limits=MuxLimits(idle_timeout_s=idle, start_timeout_s=idle)) as rig:
            ws = await rig.connect()
            r = Reader(ws)
            await ws.send(start("quiet", 1))
            await ws.send(start("talker", 2))
            await r.wait(lambda: len(r.started) == 2)
            for _ in range(int(timeout(10) / 0.1)):  # the talker talks on until the quiet one is ended
                await play(ws, {2: tone(3000, 0.1)})
                if r.ended:
                    break
            await r.wait(lambda: len(r.ended) == 1)
            await ws.send(json.dumps({"type": "stop", "stream": "talker"}))
            await r.wait(lambda: len(r.ended) == 2)
            await ws.close()
            # A connection that never starts a stream is closed after the start timeout (the same scaled timeout here).
            lazy = await rig.connect()
            rl = Reader(lazy)
            await asyncio.wait_for(rl.task, timeout(5))
            return r, rl

    r, rl = asyncio.run(main())
    assert ended_of(r, "quiet") == [(1008, f"no audio within {idle:g} s")]
    assert r.states("stream", "quiet")[-1]["final"]
    assert ended_of(r, "talker") == [(1000, "stopped")]
    assert rl.close == (1008, f"no start message within {idle:g} s")


def test_a_stopping_server_sends_every_final_state_then_ended_1001() -> None:
    async def main() -> Reader:
        rig = Rig()
        await rig.__aenter__()
        ws = await rig.connect()
        r = Reader(ws)
        await ws.send(start("a", 1))
        await ws.send(start("b", 2))
        await r.wait(lambda: len(r.started) == 2)
        await play(ws, {1: tone(3000, 0.8), 2: tone(3000, 0.8)})
        await rig.__aexit__(None, None, None)  # engine first (final states), then the server
        await asyncio.wait_for(r.task, timeout(5))
        return r

    r = asyncio.run(main())
    for name in ("a", "b"):
        assert r.states("stream", name)[-1]["final"]
        assert ended_of(r, name) == [(1001, "the server is stopping")]
    assert r.close[0] == 1001


def test_the_readme_example_client_runs_against_the_server() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rest = readme[readme.index("### Many talkers on one connection"):]
    code = rest[rest.index("```python\n") + len("```python\n"):]
    code = code[: code.index("```")]
    printed: list[tuple] = []

    async def main() -> None:
        async with Rig() as rig:
            example = code.replace("ws://127.0.0.1:8766", f"ws://127.0.0.1:{rig.port}")
            await asyncio.wait_for(asyncio.to_thread(exec, example, {"print": lambda *a: printed.append(a)}),
                                   timeout(20))

    asyncio.run(main())
    assert printed[0] == (["neutral", "happy", "angry"],)
    finals = sorted(p[0] for p in printed[1:] if p[-1] == "final")
    assert finals == ["alice", "bob"]
    assert len(printed) > 10


def test_todays_protocol_is_untouched_beside_it() -> None:
    """No subprotocol, or one the server does not know: the one-stream protocol, as before."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

    async def main() -> list[Any]:
        out = []
        async with Rig() as rig:
            for i, offered in enumerate((None, ["chat.v2"])):
                async with connect(f"ws://127.0.0.1:{rig.port}", subprotocols=offered) as ws:
                    assert ws.subprotocol is None
                    await ws.send(json.dumps({"type": "start", "stream": f"solo{i}", "sample_rate": 16000}))
                    out.append(await ws.recv())
                    await ws.send(pcm16(tone(3000, 0.1)))
                    await ws.send(json.dumps({"type": "stop"}))
                    with pytest.raises(ConnectionClosedOK):
                        await asyncio.wait_for(ws.recv(), timeout(5))
                    out.append((ws.close_code, ws.close_reason))
            # An id a multiplexed connection holds is in use for today's protocol too.
            mux = await rig.connect()
            r = Reader(mux)
            await mux.send(start("held", 1))
            await r.wait(lambda: len(r.started) == 1)
            async with connect(f"ws://127.0.0.1:{rig.port}") as ws:
                await ws.send(json.dumps({"type": "start", "stream": "held", "sample_rate": 16000}))
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), timeout(5))
                out.append((ws.close_code, ws.close_reason))
            await mux.close()
        return out

    assert asyncio.run(main()) == ['{"type": "started", "stream": "solo0"}', (1000, "stopped"),
                                   '{"type": "started", "stream": "solo1"}', (1000, "stopped"),
                                   (1008, "stream id 'held' is in use")]


@pytest.mark.needs_tf
@pytest.mark.slow
def test_the_daemon_serves_the_multiplexed_protocol_on_ingest(tiny_bundle) -> None:
    from websockets.asyncio.client import connect

    ingest = free_port()
    proc = subprocess.Popen(
        daemon_cmd("--ingest", f"127.0.0.1:{ingest}", "--no-ws", "--no-osc", "--quiet"),
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO,
    )

    async def main() -> Reader:
        deadline = time.monotonic() + timeout(30)
        while True:
            try:
                ws = await connect(f"ws://127.0.0.1:{ingest}", subprotocols=[SUBPROTOCOL_JSON])
                break
            except OSError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        r = Reader(ws)
        await ws.send(start("alice", 1))
        await ws.send(start("bob", 2))
        await r.wait(lambda: len(r.started) == 2)
        await play(ws, {1: tone(3000, 2.0), 2: tone(200, 2.0)})
        await ws.send(json.dumps({"type": "stop", "stream": "alice"}))
        await ws.send(json.dumps({"type": "stop", "stream": "bob"}))
        await r.wait(lambda: len(r.ended) == 2, 20)
        await ws.close()
        return r

    try:
        r = asyncio.run(main())
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout(10))
    finally:
        proc.kill()
    for name in ("alice", "bob"):
        mine = r.states("stream", name)
        assert [s["seq"] for s in mine] == list(range(len(mine))) and mine[-1]["final"]
        assert "weights" in mine[0] and mine[0]["type"] == "state"  # the daemon's own state message
        assert ended_of(r, name) == [(1000, "stopped")]
    assert "angry" in {s["label"] for s in r.states("stream", "alice")}



@pytest.mark.slow
def test_the_load_generator_smoke_run_loses_nothing() -> None:
    """benchmarks/ingest_mux_load.py, smoke size: 4 talkers over 2 binary connections, 5 s, shipped model."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import ingest_mux_load

    res = ingest_mux_load.measure_mux(4, 2, 5.0, True, 0.5)
    assert res["lost_streams"] == 0 and res["ended"] == ["(1000, 'stopped')"], res
    assert res["decisions"] == 4 * res["expected_decisions_per_talker"], res
    assert res["connection_close_codes"] == [1000, 1000] and res["latency_ms"]["n"] == res["decisions"]
