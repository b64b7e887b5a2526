"""N real-time talkers over M connections of the multiplexed ingest protocol, against the daemon.

Each talker is the bundled speech recording (looped, each from its own offset) as 16 kHz 16-bit
PCM.  A connection carries its share of the talkers (``ser-ingest-mux.v1``, or ``.binary`` with
``--states binary``): one start per talker, then every 20 ms one audio frame holding every one of
its talkers' 20 ms chunk (the batching the protocol allows), then one stop per talker; the states
come back on the same connection.  Each talker's first audio comes at its own moment within one
decision hop (``--phases random``, seeded: a voice server's talkers join at random times, so their
decisions fall due at different ticks); ``--phases same`` starts all of them on one tick, so that
every talker's window is due on the same tick (the worst case for batching, as in
``cluster_bench.py``).  With ``--compare`` the same talkers then run once more over
today's protocol (one connection per talker, states on ``--ws``: ``cluster_bench.py``'s daemon
phase), against a fresh daemon, in the same run.

Measured per run:

- decision latency, client side: a state's arrival minus the send time of the frame holding the
  window's newest sample (same process, same clock), p50/p99 over all decisions;
- lost streams: talkers without a final state followed by ``ended`` 1000 "stopped" (or, for
  today's protocol, a close other than 1000);
- cores per talker: the daemon's user+system CPU seconds over the load / wall seconds / talkers
  (the idle cost, measured before, is also given and subtracted for the marginal figure); the
  clients' own process is not counted.

With ``--cluster`` the same talkers then run against ``cluster_bench.py``'s two-node local Ray
cluster (2 ingress replicas, 1 model replica, one Serve proxy), in the same run: its cores per
talker (every Ray process), their ratio to the daemon's, and the cluster's cores by process.
``--kill-at S`` SIGKILLs the ingress replica holding ``talker0`` S seconds into that load.
``--direct``: the connections go to the ingress replicas' own ports (``GET /endpoints``, round
robin), not through Serve's proxy.

Usage: python benchmarks/ingest_mux_load.py [--talkers 16] [--connections 2] [--seconds 20]
           [--states json|binary] [--phases random|same] [--compare] [--cluster [--direct] [--kill-at S]]
       python benchmarks/ingest_mux_load.py --smoke     (4 talkers over 2 connections, 5 s)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import REPO, demo_audio, git_rev, machine, proc_cpu_seconds, save, stats_ms  # noqa: E402

from ser_daemon.net.mux_wire import (  # noqa: E402
    SUBPROTOCOL_BINARY,
    SUBPROTOCOL_JSON,
    MuxStartMessage,
    MuxStopMessage,
    decode_states,
    encode_audio_frame,
)

RATE = 16000
BLOCK_S = 0.02
BLOCK = int(RATE * BLOCK_S)
HOP_S = 0.25
WINDOW_S = 2.0
HOP_BLOCKS = int(np.ceil(HOP_S / BLOCK_S))  # a talker's first audio comes 0 .. HOP_BLOCKS - 1 ticks in


@dataclass
class Talker:
    name: str
    tag: int
    pcm: bytes
    latencies_ms: list[float] = field(default_factory=list)
    decisions: int = 0
    finals: int = 0
    ended: tuple[int, str] | None = None
    final_before_ended: bool = False
    lead: int = 0  # ticks before the talker's first audio (its phase within a decision hop)
    segment_start: int = 0  # block at which the stream's current audio began (its lead, or a reconnect)
    drops: int = 0

    def chunk(self, k: int) -> bytes:
        """The talker's 20 ms of PCM sent on tick ``k`` (empty before its lead and after its end)."""
        j = k - self.lead
        return self.pcm[j * 2 * BLOCK : (j + 1) * 2 * BLOCK] if j >= 0 else b""

    def on_state(self, end_sample: int, final: bool, now: float, send_times: list[float]) -> None:
        if final:
            self.finals += 1
            return
        self.decisions += 1
        # end_sample counts the stream's samples at the model's 16 kHz, from its latest start
        block = self.segment_start + (end_sample - 1) // BLOCK
        if 0 <= block < len(send_times) and send_times[block]:
            self.latencies_ms.append((now - send_times[block]) * 1000.0)

    @property
    def lost(self) -> bool:
        return not (self.final_before_ended and self.ended == (1000, "stopped"))


def make_talkers(n: int, seconds: float, phases: str = "random", seed: int = 0) -> list[Talker]:
    """``n`` talkers of ``seconds`` of speech; ``phases``: "random" (each starts 0 .. one hop in) or "same"."""
    if phases not in ("random", "same"):
        raise ValueError(f"phases must be 'random' or 'same', not {phases!r}")
    audio = demo_audio(seconds + 1.0)
    leads = np.random.default_rng(seed).integers(0, HOP_BLOCKS, n) if phases == "random" else np.zeros(n, int)
    out = []
    for i in range(n):
        shift = (i * RATE * 7 // 10) % len(audio)  # each from its own offset: not n copies of one voice
        x = np.roll(audio, -shift)[: int(seconds * RATE)]
        lead = int(leads[i])
        out.append(Talker(f"talker{i}", i, (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes(),
                          lead=lead, segment_start=lead))
    return out


async def connect(port: int | str, subprotocol: str | None, deadline: float) -> Any:
    """A connection to the server on loopback ``port``, or to the ``ws://`` URL ``port``."""
    from websockets.asyncio.client import connect as ws_connect

    url = port if isinstance(port, str) else f"ws://127.0.0.1:{port}/"
    while True:
        try:
            return await ws_connect(url, subprotocols=[subprotocol] if subprotocol else None,
                                    max_size=None, open_timeout=10)
        except (OSError, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def run_connection(port: int | str, talkers: list[Talker], binary: bool, t0: float, deadline: float,
                         others: list[int | str] | None = None) -> dict:
    """One connection: start its talkers, send one frame per tick from ``t0``, stop, wait for every ``ended``.

    A connection that drops (its replica was killed) is opened again (to the next of ``others``,
    round robin) with the same stream ids, retried while they are still held (until the dead
    replica's lease lapses); the audio of the gap is skipped, as a live talker's would be.
    """
    dests = [port, *(others or [])]
    n_blocks = max(t.lead for t in talkers) + min(len(t.pcm) for t in talkers) // (2 * BLOCK)
    send_times = [0.0] * n_blocks
    k, drops, reconnect_s = 0, 0, []
    lost_at: float | None = None
    while True:
        ws, reader, state = await _open(dests[drops % len(dests)], talkers, binary, send_times, deadline)
        if lost_at is not None:  # every stream of the connection runs again
            reconnect_s.append(time.monotonic() - lost_at)
        try:
            while k < n_blocks:
                delay = t0 + k * BLOCK_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                send_times[k] = time.monotonic()
                chunks = [(t.tag, c) for t in talkers if (c := t.chunk(k))]
                if chunks:
                    await ws.send(encode_audio_frame(chunks))
                k += 1
            for t in talkers:
                await ws.send(MuxStopMessage(t.name).to_json())
            try:
                await asyncio.wait_for(state["all_ended"].wait(), 10)
            except asyncio.TimeoutError:
                pass
            await ws.close()
            await reader
            return {"close_code": ws.close_code, "drops": drops, "reconnect_s": reconnect_s}
        except ConnectionClosed:
            lost_at = time.monotonic()
            drops += 1
            for t in talkers:
                t.drops += 1
            await reader
            if time.monotonic() > deadline:
                raise
            k = max(k, int((time.monotonic() - t0) / BLOCK_S) + 1)  # the gap's audio is gone
            for t in talkers:
                t.segment_start = max(k, t.lead)


async def _open(dest: int | str, talkers: list[Talker], binary: bool, send_times: list[float],
                deadline: float) -> tuple[Any, Any, dict]:
    """Connect, start every talker (again, while its id is still held elsewhere), and read in the background."""
    ws = await connect(dest, SUBPROTOCOL_BINARY if binary else SUBPROTOCOL_JSON, deadline)
    welcome = json.loads(await ws.recv())
    labels = welcome["labels"]
    by_tag = {t.tag: t for t in talkers}
    by_name = {t.name: t for t in talkers}
    started: set[str] = set()
    retry: list[str] = []
    state = {"all_started": asyncio.Event(), "all_ended": asyncio.Event()}

    async def read() -> None:
        try:
            async for m in ws:
                now = time.monotonic()
                if isinstance(m, bytes):
                    for s in decode_states(m, labels):
                        by_tag[s["tag"]].on_state(s["end_sample"], s["final"], now, send_times)
                    continue
                msg = json.loads(m)
                if msg["type"] == "states":
                    for s in msg["states"]:
                        by_name[s["stream"]].on_state(s["end_sample"], s["final"], now, send_times)
                elif msg["type"] == "started":
                    started.add(msg["stream"])
                    if len(started) == len(talkers):
                        state["all_started"].set()
                elif msg["type"] == "ended":
                    t = by_name.get(msg["stream"])
                    if t is not None and msg["stream"] not in started:  # refused: held by the dead replica still
                        retry.append(t.name)
                    elif t is not None:
                        t.ended = (msg["code"], msg["reason"])
                        t.final_before_ended = t.finals == 1
                    if all(t.ended is not None for t in talkers):
                        state["all_ended"].set()
        except ConnectionClosed:
            pass

    reader = asyncio.ensure_future(read())
    for t in talkers:
        t.finals, t.ended = 0, None
        await ws.send(MuxStartMessage(t.name, t.tag, RATE).to_json())
    while not state["all_started"].is_set():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(talkers) - len(started)} talkers could not (re)start")
        await asyncio.sleep(0.2)
        for name in list(retry):
            retry.remove(name)
            await ws.send(MuxStartMessage(name, by_name[name].tag, RATE).to_json())
    return ws, reader, state


def start_daemon(port: int, n: int, extra: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ser_daemon", "--ingest", f"127.0.0.1:{port}", "--no-osc", "--quiet",
         "--backend", "litert", "--max-streams", str(n + 8), "--max-clients", str(n + 16), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)


def stop_daemon(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    finally:
        proc.kill()


async def play_mux(port: int, talkers: list[Talker], m: int, binary: bool, seconds: float, idle_s: float,
                   cpu: Any, midway: Any = None, midway_s: float | None = None,
                   on_load: Any = None, targets: list[str] | None = None) -> dict[str, Any]:
    """The talkers over ``m`` connections to ``port`` (or, round robin, to the ``targets`` URLs);
    ``cpu()`` reads the server's CPU seconds (``on_load()`` is called as the load's measurement starts).

    Returns the idle cores, the CPU seconds and wall time of the load, and each connection's end.
    """
    probe = await connect(port, SUBPROTOCOL_JSON, time.monotonic() + 60)  # the server is up
    await probe.close()
    c0 = cpu()
    await asyncio.sleep(idle_s)
    idle = (cpu() - c0) / idle_s
    c1, w0 = cpu(), time.monotonic()
    if on_load is not None:
        on_load()
    t0 = w0 + 1.0
    groups = [talkers[i::m] for i in range(m)]
    dests = targets or [port]
    runs = asyncio.gather(*(run_connection(dests[i % len(dests)], g, binary, t0, w0 + seconds + 60,
                                           dests[i % len(dests) + 1:] + dests[: i % len(dests)])
                            for i, g in enumerate(groups)))
    if midway is not None and midway_s is not None:
        await asyncio.sleep(max(0.0, t0 + midway_s - time.monotonic()))
        await midway()
    ends = await asyncio.wait_for(runs, seconds + 60)
    return {"idle": idle, "cpu": cpu() - c1, "wall": time.monotonic() - w0, "ends": list(ends)}


def summarise_mux(talkers: list[Talker], m: int, binary: bool, seconds: float, run: dict[str, Any]) -> dict[str, Any]:
    n = len(talkers)
    lat = [x for t in talkers for x in t.latencies_ms]
    cores = run["cpu"] / run["wall"]
    leads = sorted({t.lead for t in talkers})
    return {
        "protocol": SUBPROTOCOL_BINARY if binary else SUBPROTOCOL_JSON,
        "talkers": n,
        "connections": m,
        "phases": "same" if leads == [0] else f"{len(leads)} start ticks within one {HOP_S} s hop",
        "decisions": sum(t.decisions for t in talkers),
        "expected_decisions_per_talker": int((seconds - WINDOW_S) / HOP_S) + 1,
        "latency_ms": stats_ms(lat),
        "lost_streams": sum(t.lost for t in talkers),
        "dropped_streams": sum(1 for t in talkers if t.drops),
        "reconnect_ms": stats_ms([x * 1000.0 for e in run["ends"] for x in e["reconnect_s"]]),
        "ended": sorted({str(t.ended) for t in talkers}),
        "connection_close_codes": [e["close_code"] for e in run["ends"]],
        "server_cores": round(cores, 4),
        "idle_cores": round(run["idle"], 4),
        "cores_per_talker": round(cores / n, 5),
        "marginal_cores_per_talker": round(max(0.0, cores - run["idle"]) / n, 5),
        "wall_s": round(run["wall"], 2),
    }


def measure_mux(n: int, m: int, seconds: float, binary: bool, idle_s: float, phases: str = "random") -> dict[str, Any]:
    """The talkers against a fresh daemon (``--ingest``, LiteRT)."""
    from cluster_bench import free_port

    port = free_port()
    proc = start_daemon(port, n, ["--no-ws"])
    talkers = make_talkers(n, seconds, phases)
    try:
        run = asyncio.run(play_mux(port, talkers, m, binary, seconds, idle_s, lambda: proc_cpu_seconds(proc.pid)))
    finally:
        stop_daemon(proc)
    return summarise_mux(talkers, m, binary, seconds, run)


def measure_mux_cluster(n: int, m: int, seconds: float, binary: bool, idle_s: float, kill_at: float | None,
                        lease_s: float, direct: bool = False, phases: str = "random") -> dict[str, Any]:
    """The talkers against cluster_bench.py's two-node local Ray cluster (2 ingress replicas, 1 model).

    ``direct``: the replicas also serve their own ports (``direct_host``), found with ``GET
    /endpoints`` through the proxy; the connections go there round robin, past the proxy.

    With ``kill_at``, the ingress replica holding ``talker0`` is SIGKILLed that many seconds into
    the load: the talkers of its connections are lost (the benchmark does not reconnect them).
    """
    from cluster_bench import kill_replica_of, two_node_cluster

    with two_node_cluster(n, lease_s, **({"direct_host": "127.0.0.1"} if direct else {})) as c:
        meter = c["meter"]
        talkers = make_talkers(n, seconds, phases)
        targets = endpoints(c["port"], 2) if direct else None
        killed: dict[str, Any] = {}
        kill = kill_replica_of(c["registry"], "talker0", killed) if kill_at is not None else None
        before: dict[str, float] = {}

        async def main() -> dict[str, Any]:
            return await play_mux(c["port"], talkers, m, binary, seconds, idle_s, meter.read, kill, kill_at,
                                  on_load=lambda: before.update(meter.by_role()), targets=targets)

        run = asyncio.run(main())
        out = summarise_mux(talkers, m, binary, seconds, run)
        roles = meter.by_role()
        out["cores_by_process"] = dict(sorted(((k, round((v - before.get(k, 0.0)) / run["wall"], 4))
                                               for k, v in roles.items()), key=lambda kv: -kv[1]))
        killed.pop("at", None)
        out.update({"start_to_ready_s": round(c["ready_s"], 2), "placement": c["placement"], "killed": killed,
                    "nodes": 2, "cpus": 2, "direct_endpoints": targets})
        return out


def endpoints(port: int, want: int, limit_s: float = 30.0) -> list[str]:
    """The replicas' direct endpoints (``GET /endpoints`` through the proxy), once ``want`` are listed."""
    import urllib.request

    deadline = time.monotonic() + limit_s
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/endpoints", timeout=10) as resp:
            found = json.loads(resp.read())["endpoints"]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def measure_today(n: int, seconds: float, idle_s: float) -> dict[str, Any]:
    """Today's protocol, one connection per talker (cluster_bench.py's daemon phase, unchanged)."""
    from cluster_bench import measure_daemon

    out = measure_daemon(n, seconds, idle_s)
    out["protocol"] = "today's (one connection per talker, states on --ws)"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--talkers", type=int, default=16)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--states", choices=("json", "binary"), default="json")
    ap.add_argument("--idle-s", type=float, default=3.0)
    ap.add_argument("--phases", choices=("random", "same"), default="random",
                    help="random: each talker's first audio 0 .. one decision hop in (seeded); same: all on one tick")
    ap.add_argument("--compare", action="store_true", help="also run today's protocol with the same talkers")
    ap.add_argument("--cluster", action="store_true",
                    help="also run the same talkers against a two-node local Ray cluster; report the ratio")
    ap.add_argument("--kill-at", type=float, default=None,
                    help="with --cluster: SIGKILL the ingress replica holding talker0 this many seconds in")
    ap.add_argument("--lease-s", type=float, default=2.0)
    ap.add_argument("--direct", action="store_true",
                    help="with --cluster: connect to the replicas' own ports (GET /endpoints), past Serve's proxy")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.talkers, args.connections, args.seconds, args.idle_s = 4, 2, 5.0, 0.5
    if not 1 <= args.connections <= args.talkers <= 255 * args.connections:
        ap.error("need 1 <= connections <= talkers <= 255 x connections")
    result: dict[str, Any] = {"machine": machine(), "git": git_rev(), "args": vars(args)}
    result["mux"] = measure_mux(args.talkers, args.connections, args.seconds, args.states == "binary", args.idle_s,
                                args.phases)
    if args.compare:
        result["today"] = measure_today(args.talkers, args.seconds, args.idle_s)
    if args.cluster:
        result["cluster"] = measure_mux_cluster(args.talkers, args.connections, args.seconds, args.states == "binary",
                                                args.idle_s, args.kill_at, args.lease_s, args.direct, args.phases)
        d, c = result["mux"], result["cluster"]
        result["cluster_vs_daemon"] = {
            "cores_per_talker_ratio": round(c["cores_per_talker"] / d["cores_per_talker"], 2)
            if d["cores_per_talker"] else None,
            "marginal_cores_per_talker_ratio": round(c["marginal_cores_per_talker"] / d["marginal_cores_per_talker"], 2)
            if d["marginal_cores_per_talker"] else None,
        }
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    if not args.smoke:
        tail = ("_cluster_direct" if args.direct else "_cluster") if args.cluster else ""
        tail += "_kill" if args.cluster and args.kill_at is not None else ""
        tail += "_samephase" if args.phases == "same" else ""
        save(f"ingest_mux_load_{args.talkers}x{args.connections}_{args.states}{tail}", result)


if __name__ == "__main__":
    main()
