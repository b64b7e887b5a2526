"""The Ray Serve application (ser_daemon/cluster/) against the single daemon, on one local Ray instance.

One Ray instance (2 CPUs, loopback only) and one single-daemon subprocess serve the
whole module: Ray's start-up costs ~10 s on 2 cores.  The replica-kill test runs
last, because it leaves a restarted replica behind.  Needs ``pip install -e '.[cluster]'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser_daemon.cluster.runner import loopback_ray_env

os.environ.update(loopback_ray_env())  # before Ray is imported: a loopback-only instance
ray = pytest.importorskip("ray", reason="Ray Serve is needed: pip install -e '.[cluster]'")

from conftest import timeout  # noqa: E402
from helpers import REPO, daemon_cmd, free_port, ws_connect  # noqa: E402
from ser_daemon.audio.sources import read_wav  # noqa: E402

pytestmark = pytest.mark.slow

MODEL_DIR = REPO / "models" / "default"
CLIP_S = 4.0  # 2 s window + 8 hops of 250 ms: 9 decisions and the final state
BLOCK_S = 0.02
# Fields that depend on when things happened, not on the audio: they differ between any two runs.
TIMING_FIELDS = ("audio_time", "emitted_time", "latency_ms", "late", "client_dropped", "_recv_time")


def _clip() -> tuple[np.ndarray, int]:
    samples, rate = read_wav(REPO / "ser_daemon" / "data" / "demo.wav")
    return samples[: int(CLIP_S * rate), 0], rate


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


async def _connect(port: int, limit_s: float = 20.0) -> Any:
    """The cluster's ingest endpoint (its replicas may still be starting)."""
    return await ws_connect(port, "/", limit_s, open_timeout=5, max_size=None)


async def _send_paced(ws: Any, pcm: bytes, rate: int) -> None:
    """Real-time audio in 20 ms messages (bounded: the clip's length)."""
    step = int(rate * BLOCK_S) * 2
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(pcm), step)):
        await ws.send(pcm[i : i + step])
        delay = t0 + (k + 1) * BLOCK_S - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def _recv_all(ws: Any, limit_s: float) -> list[dict]:
    """Messages until the server closes (bounded in time)."""
    from websockets.exceptions import ConnectionClosed

    out: list[dict] = []
    end = time.monotonic() + timeout(limit_s)
    try:
        while time.monotonic() < end:
            out.append(json.loads(await asyncio.wait_for(ws.recv(), max(0.1, end - time.monotonic()))))
    except (ConnectionClosed, asyncio.TimeoutError):
        pass
    return out


async def _talk(port: int, stream: str, pcm: bytes, rate: int, **start: Any) -> tuple[dict, list[dict], int | None, str]:
    """One ingest client: start, real-time audio, stop; everything the server sent back and its close."""
    ws = await _connect(port)
    try:
        await ws.send(json.dumps({"type": "start", "stream": stream, "sample_rate": rate, **start}))
        started = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
        reader = asyncio.ensure_future(_recv_all(ws, CLIP_S + 20))
        await _send_paced(ws, pcm, rate)
        await ws.send(json.dumps({"type": "stop"}))
        msgs = await reader
        await asyncio.wait_for(ws.wait_closed(), timeout(5))
        return started, msgs, ws.close_code, ws.close_reason
    finally:
        await ws.close()


async def _close_code(port: int, *messages: str | bytes) -> tuple[int | None, str]:
    ws = await _connect(port)
    try:
        for m in messages:
            await ws.send(m)
        await _recv_all(ws, 15)
        return ws.close_code, ws.close_reason
    finally:
        await ws.close()


def _comparable(msg: dict) -> dict:
    return {k: v for k, v in msg.items() if k not in TIMING_FIELDS}


def _ray_listening_addresses() -> set[str]:
    """Local addresses of the TCP sockets Ray's processes listen on (from /proc, no tools needed)."""
    inodes: set[str] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"ray" not in cmd.lower():
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                found.add(cols[1].rsplit(":", 1)[0])
    return found


LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, ::1, ::ffff:127.0.0.1


def local_cluster(**args: Any) -> Any:
    """A local Ray instance (2 CPUs, loopback) running the application with the shipped model on LiteRT
    and ``args``; yields its port and the registry's handle (a module fixture's body)."""
    from ray import serve

    from ser_daemon.cluster.app import APP_NAME, settings_from_args
    from ser_daemon.cluster.runner import deploy, start_ray, stop

    port = free_port()
    start_ray(num_cpus=2)
    try:
        settings = settings_from_args({"model_dir": str(MODEL_DIR), "backend": "litert", "ingress_cpus": 0.25,
                                       "model_cpus": 0.25, "lease_s": 1.0, **args})
        deploy(settings, "127.0.0.1", port)
        registry = serve.get_deployment_handle("Registry", app_name=APP_NAME)
        yield {"port": port, "registry": registry}
    finally:
        stop()


@pytest.fixture(scope="module")
def cluster() -> Any:
    """A local Ray instance with the application: 2 ingress replicas, 1 model replica, LiteRT, the mood stage."""
    yield from local_cluster(ingress_replicas=2, allow_stream_osc="127.0.0.1", mood="true")


@pytest.fixture(scope="module")
def daemon() -> Any:
    """The single daemon with the same model and --mood, its ingest endpoint and its state socket."""
    ingest, ws = free_port(), free_port()
    proc = subprocess.Popen(
        daemon_cmd("--ingest", f"127.0.0.1:{ingest}", "--ws", f"127.0.0.1:{ws}", "--ws-queue", "1000",
                   "--no-osc", "--quiet", "--backend", "litert", "--model", str(MODEL_DIR), "--mood"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        yield {"ingest": ingest, "ws": ws, "proc": proc}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout(10))
        finally:
            proc.kill()


def test_ray_listens_on_loopback_only(cluster) -> None:
    addresses = _ray_listening_addresses()
    assert addresses, "found no listening Ray sockets: the check itself is broken"
    assert addresses <= LOOPBACK_HEX, f"Ray listens beyond loopback: {addresses}"


def test_states_match_the_single_daemon(cluster, daemon) -> None:
    samples, rate = _clip()
    pcm = _pcm(samples)

    async def main() -> tuple[Any, list[dict]]:
        watcher = await _connect(daemon["ws"])
        hello = json.loads(await asyncio.wait_for(watcher.recv(), timeout(10)))
        assert hello["type"] == "hello"

        async def watch() -> list[dict]:
            """The daemon's states, moods and events of the stream, up to the final state's mood."""
            msgs: list[dict] = []
            end = time.monotonic() + timeout(CLIP_S + 20)
            final = False
            while time.monotonic() < end and not (final and msgs[-1]["type"] == "mood"):
                m = json.loads(await asyncio.wait_for(watcher.recv(), max(0.1, end - time.monotonic())))
                if m.get("type") in ("state", "mood", "event") and m.get("stream") == "same":
                    msgs.append(m)
                    final = final or bool(m.get("final"))
            return msgs

        w = asyncio.ensure_future(watch())
        ours, theirs = await asyncio.gather(_talk(cluster["port"], "same", pcm, rate),
                                            _talk(daemon["ingest"], "same", pcm, rate))
        daemon_msgs = await w
        await watcher.close()
        return (ours, theirs), daemon_msgs

    (ours, theirs), daemon_msgs = asyncio.run(main())
    started, cluster_msgs, code, reason = ours
    cluster_states = [m for m in cluster_msgs if m["type"] == "state"]
    daemon_states = [m for m in daemon_msgs if m["type"] == "state"]
    assert started == theirs[0] == {"type": "started", "stream": "same"}
    assert (code, reason) == (theirs[2], theirs[3]) == (1000, "stopped")
    n = int((CLIP_S - 2.0) / 0.25) + 1
    assert len(cluster_states) == n + 1 and cluster_states[-1]["final"]
    assert all(s["dropped_windows"] == 0 for s in cluster_states + daemon_states), "a run fell behind"
    assert [_comparable(s) for s in cluster_states[:-1]] == [_comparable(s) for s in daemon_states[:-1]]
    # The final state's end_sample counts the audio each server had read when the stream ended.
    for k in ("label", "probs", "voice", "final", "seq"):
        assert cluster_states[-1][k] == daemon_states[-1][k]
    # The mood stage (mood=true, the daemon's --mood): the same mood and event messages after the same
    # states, in the same order; the last follows the final state (whose time is each server's own).
    kinds = [m["type"] for m in cluster_msgs]
    assert kinds == [m["type"] for m in daemon_msgs] and kinds[0] == "state" and kinds[-1] == "mood"
    assert kinds.count("mood") >= 3, kinds  # at most one a second of stream time, and the final state's
    assert [_comparable(m) for m in cluster_msgs[:-2]] == [_comparable(m) for m in daemon_msgs[:-2]]
    final_mood, theirs_final = cluster_msgs[-1], daemon_msgs[-1]
    assert final_mood["stream"] == "same" and final_mood["voice"] is False
    assert final_mood["valence"]["session"] == theirs_final["valence"]["session"]


def test_bad_start_messages_are_refused_as_the_daemon_does(cluster, daemon) -> None:
    start = json.dumps({"type": "start", "stream": "held", "sample_rate": 16000})

    async def codes(port: int) -> dict[str, tuple[int | None, str]]:
        holder = await _connect(port)
        await holder.send(start)
        await asyncio.wait_for(holder.recv(), timeout(10))
        out = {
            "not_json": await _close_code(port, "hello"),
            "not_start": await _close_code(port, json.dumps({"type": "stop"})),
            "audio_first": await _close_code(port, b"\x00\x00"),
            "bad_rate": await _close_code(port, json.dumps({"type": "start", "stream": "y", "sample_rate": 5})),
            "bad_stream": await _close_code(port, json.dumps({"type": "start", "stream": "../x", "sample_rate": 8000})),
            # Two tries: with two replicas they may land beside the holder or not (both ways: next test).
            "duplicate": await _close_code(port, start),
            "duplicate_2": await _close_code(port, start),
            "odd_bytes": await _close_code(port, json.dumps({"type": "start", "stream": "z", "sample_rate": 16000}),
                                           b"\x00"),
            "bad_control": await _close_code(port, json.dumps({"type": "start", "stream": "w", "sample_rate": 16000}),
                                             json.dumps({"type": "pause"})),
            "too_big": await _close_code(port, json.dumps({"type": "start", "stream": "v", "sample_rate": 16000}),
                                         b"\x00" * (256 * 1024 + 2)),
            "osc_malformed": await _close_code(port, json.dumps({"type": "start", "stream": "u", "sample_rate": 16000,
                                                                 "osc": "9000"})),
            # Not on the cluster's list (127.0.0.1 only); the daemon has no list and refuses every target.
            "osc_not_allowed": await _close_code(port, json.dumps({"type": "start", "stream": "t",
                                                                   "sample_rate": 16000, "osc": "127.0.0.2:9"})),
        }
        await holder.close()
        return out

    async def main() -> tuple[dict, dict]:
        return await codes(cluster["port"]), await codes(daemon["ingest"])

    ours, theirs = asyncio.run(main())
    assert ours == theirs
    assert {k: c for k, (c, _) in ours.items()} == {
        "not_json": 1007, "not_start": 1007, "audio_first": 1008, "bad_rate": 1007, "bad_stream": 1007,
        "duplicate": 1008, "duplicate_2": 1008, "odd_bytes": 1007, "bad_control": 1007, "too_big": 1009,
        "osc_malformed": 1007, "osc_not_allowed": 1008,
    }
    assert ours["osc_not_allowed"][1] == "OSC output to 127.0.0.2 is not allowed by this server"
    assert daemon["proc"].poll() is None


def test_states_also_go_out_as_osc_when_the_operator_allows_it(cluster) -> None:
    """A start message naming an allowed UDP receiver: every state on the socket also arrives there as a bundle."""
    from pythonosc.osc_bundle import OscBundle

    samples, rate = _clip()
    pcm = _pcm(samples[: int(2.5 * rate)])  # 3 decisions and the final state: enough, and short
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    try:
        target = f"127.0.0.1:{rx.getsockname()[1]}"
        _started, msgs, code, _reason = asyncio.run(_talk(cluster["port"], "osc_out", pcm, rate, osc=target))
        states = [m for m in msgs if m.get("type") == "state"]
        moods = [m for m in msgs if m.get("type") == "mood"]
        assert code == 1000 and len(states) == 4 and states[-1]["final"] and moods
        # Each bundle left before its WebSocket message, so all are queued here by now (bounded reads).
        rx.settimeout(timeout(2))
        bundles, valence = [], []
        for _ in range(len(states) + len(moods)):
            msg = {m.address: m.params for m in OscBundle(rx.recv(65536))}
            if "/ser/state" in msg:
                bundles.append((msg["/ser/state"][0], msg["/ser/seq"][0]))
            else:  # the mood stage's reading, generic scheme
                valence.append(msg["/ser/mood/valence"])
    finally:
        rx.close()
    assert bundles == [("unsure" if s["uncertain"] else s["label"], s["seq"]) for s in states]
    assert valence == [pytest.approx([m["valence"][h] or 0.0 for h in ("moment", "minute", "session")], abs=1e-4)
                       for m in moods]


def test_duplicates_are_refused_on_either_replica(cluster) -> None:
    """A held id is refused whether the duplicate lands beside its holder or on the other replica."""
    registry = cluster["registry"]

    async def main() -> list[tuple[int | None, str]]:
        holders = []
        owners: dict[str, str] = {}
        for k in range(6):  # until each replica holds one (bounded)
            ws = await _connect(cluster["port"])
            await ws.send(json.dumps({"type": "start", "stream": f"dup{k}", "sample_rate": 16000}))
            await asyncio.wait_for(ws.recv(), timeout(10))
            holders.append(ws)
            owners = await registry.owners.remote()
            if len({o for s, o in owners.items() if s.startswith("dup")}) == 2:
                break
        held = [s for s in owners if s.startswith("dup")]
        # Both replicas are equally loaded now, so each attempt lands on either: 3 per held id.
        codes = [await _close_code(cluster["port"], json.dumps({"type": "start", "stream": s, "sample_rate": 16000}))
                 for s in held for _ in range(3)]
        for ws in holders:
            await ws.close()
        return [(c, r.split("'")[0]) for c, r in codes]

    codes = asyncio.run(main())
    assert len(codes) >= 6 and set(codes) == {(1008, "stream id ")}, codes


def test_a_killed_replica_loses_only_its_own_streams(cluster) -> None:
    samples, rate = _clip()
    pcm = _pcm(np.tile(samples, 2))  # 8 s: the kill comes while every stream is mid-way
    registry = cluster["registry"]

    async def stream(ws: Any) -> tuple[list[dict], int | None]:
        reader = asyncio.ensure_future(_recv_all(ws, 2 * CLIP_S + 20))
        try:
            await _send_paced(ws, pcm, rate)
            await ws.send(json.dumps({"type": "stop"}))
        except Exception:  # noqa: BLE001 - the connection died under us: what came back tells
            pass
        msgs = await reader
        return msgs, ws.close_code

    async def main() -> tuple[dict[str, str], dict[str, tuple[list[dict], int | None]], str]:
        # Open streams one by one (the router then sees each replica's load) until both replicas
        # hold some: at most 6.
        conns: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for k in range(6):
            name = f"talker{k}"
            ws = await _connect(cluster["port"])
            await ws.send(json.dumps({"type": "start", "stream": name, "sample_rate": rate}))
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))["type"] == "started"
            conns[name] = ws
            owners = await registry.owners.remote()
            if len(set(owners.values())) >= 2 and k >= 2:
                break
        assert len(set(owners.values())) == 2, f"all streams on one replica: {owners}"
        tasks = {name: asyncio.ensure_future(stream(ws)) for name, ws in conns.items()}
        await asyncio.sleep(2.5)
        victim = owners["talker0"]
        os.kill(int(victim.split("@")[1]), signal.SIGKILL)
        results = dict(zip(tasks, await asyncio.gather(*tasks.values())))
        for ws in conns.values():
            await ws.close()
        return owners, results, victim

    owners, results, victim = asyncio.run(main())
    for name, (msgs, code) in results.items():
        states = [m for m in msgs if m.get("type") == "state"]
        if owners[name] == victim:
            assert code == 1006, f"{name}: a dead replica's connection ends without a close frame"
            assert not states or not states[-1]["final"]
        else:
            assert code == 1000, f"{name} on the surviving replica was disturbed ({code})"
            assert [s["seq"] for s in states] == list(range(len(states))) and states[-1]["final"]
            assert len(states) == int((2 * CLIP_S - 2.0) / 0.25) + 2

    # The lost stream's id falls free once its lease lapses (1 s here): its client reconnects.
    async def reconnect() -> dict:
        deadline = time.monotonic() + timeout(30)
        while True:
            code, reason = None, ""
            ws = await _connect(cluster["port"])
            try:
                await ws.send(json.dumps({"type": "start", "stream": "talker0", "sample_rate": rate}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
                await ws.send(json.dumps({"type": "stop"}))
                return reply
            except Exception:  # noqa: BLE001 - refused (1008 while the lease lives): try again
                code, reason = ws.close_code, ws.close_reason
            finally:
                await ws.close()
            assert time.monotonic() < deadline, f"talker0 could not reconnect: {code} {reason}"
            await asyncio.sleep(0.3)

    assert asyncio.run(reconnect()) == {"type": "started", "stream": "talker0"}
