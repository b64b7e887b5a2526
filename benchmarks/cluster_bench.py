"""The Ray Serve application against the single daemon, N real-time talkers each, in one run.

Phase 1: the single daemon (``--ingest``, LiteRT) with N talkers; its states are read
from its ``--ws`` socket.  Phase 2: a local Ray cluster of two nodes on loopback (a head
and a second worker node: separate raylets, object stores and worker pools, 1 CPU each,
so 2 in all, as the machine has), the application with 2 ingress replicas (HTTP proxy on
the head only: two proxies on one machine cannot share a port), the same N talkers;
mid-run the ingress replica holding ``talker0`` is killed with SIGKILL.  Talkers whose
connection drops reconnect with the same stream id (refused with 1008 until the dead
replica's lease lapses, ``lease_s``) and go on with the rest of their audio.

Each talker sends the bundled speech recording (looped) as 16 kHz 16-bit PCM in 20 ms
messages at real time, all talkers starting within one block (the same phase: the
worst case for batching, as in streams.py).  Measured, per phase:

- decision latency, client side: a state's arrival minus the send time of the audio block
  holding the window's newest sample (same process, same clock), p50/p99 over all states;
- lost streams: connections that ended other than with 1000 after ``stop``; reconnect time;
- CPU: user+system seconds of the server's processes (the daemon; or every process of the
  Ray cluster: GCS, raylets, controller, proxy, replicas) over the load, per stream and
  per second of audio, idle cost measured before the load and subtracted for the marginal
  figure; the benchmark process itself (clients) is not counted in either.

Usage: python benchmarks/cluster_bench.py [--streams 32] [--seconds 30] [--kill-at 15]
       python benchmarks/cluster_bench.py --smoke     (2 talkers, 6 s: a check that it still runs)
Needs: pip install -e '.[cluster]'.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import REPO, demo_audio, git_rev, machine, proc_cpu_seconds, save, stats_ms  # noqa: E402

from ser_daemon.cluster.runner import descendants, loopback_ray_env  # noqa: E402  (imports no Ray)

RATE = 16000
BLOCK_S = 0.02
BLOCK = int(RATE * BLOCK_S)
HOP_S = 0.25
WINDOW_S = 2.0
CONNECT_GAP_S = 0.02
MAX_STREAMS = 256  # bound on --streams (the clients share this process and the 2 cores)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CpuMeter:
    """CPU seconds of a set of processes, found afresh at each reading (replicas come and go).

    Processes that exit between readings take their time with them; the replica killed
    mid-run loses at most its last seconds, noted in the output.
    """

    def __init__(self, pids_fn: Any) -> None:
        self.pids_fn = pids_fn
        self.seen: dict[int, float] = {}
        self.roles: dict[int, str] = {}

    def read(self) -> float:
        for pid in self.pids_fn():
            try:
                self.seen[pid] = proc_cpu_seconds(pid)
                if pid not in self.roles:
                    self.roles[pid] = role(pid)
            except (OSError, ValueError, IndexError):
                pass
        return sum(self.seen.values())

    def by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, cpu in self.seen.items():
            out[self.roles.get(pid, "?")] = out.get(self.roles.get(pid, "?"), 0.0) + cpu
        return out


def role(pid: int) -> str:
    """What a Ray process is: its process title (``ray::ServeReplica:ser:Ingress``) or program name."""
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    if cmd.startswith("ray::"):
        return cmd.split()[0]
    return os.path.basename(cmd) or "?"


@dataclass
class Talker:
    name: str
    pcm: bytes
    send_times: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    states: int = 0
    finals: int = 0
    drops: int = 0  # connections that ended without a normal close
    reconnect_s: list[float] = field(default_factory=list)
    segment_start: int = 0  # block index at which the current connection began
    close_codes: list[int | None] = field(default_factory=list)

    def on_state(self, msg: dict[str, Any], now: float) -> None:
        if msg.get("final"):
            self.finals += 1
            return
        self.states += 1
        # end_sample counts the connection's own samples (16 kHz in, 16 kHz model rate).
        block = self.segment_start + (int(msg["end_sample"]) - 1) // BLOCK
        if 0 <= block < len(self.send_times):
            self.latencies_ms.append((now - self.send_times[block]) * 1000.0)


async def _connect(port: int, deadline: float) -> Any:
    from websockets.asyncio.client import connect

    while True:
        try:
            return await connect(f"ws://127.0.0.1:{port}/", max_size=None, open_timeout=10)
        except (OSError, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _start(port: int, talker: Talker, deadline: float) -> Any:
    """Connect and start; a refusal (id still held by a dead replica) is retried until ``deadline``."""
    from websockets.exceptions import ConnectionClosed

    while True:
        ws = await _connect(port, deadline)
        try:
            await ws.send(json.dumps({"type": "start", "stream": talker.name, "sample_rate": RATE}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply.get("type") == "started":
                return ws
        except (ConnectionClosed, asyncio.TimeoutError):
            pass
        await ws.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{talker.name} could not (re)start")
        await asyncio.sleep(0.2)


async def run_talker(port: int, talker: Talker, t0: float, states_inline: bool, deadline: float,
                     connect_at: float) -> None:
    """Send the talker's audio at real time from ``t0``; reconnect when the connection drops."""
    from websockets.exceptions import ConnectionClosed

    await asyncio.sleep(max(0.0, connect_at - time.monotonic()))
    ws = await _start(port, talker, deadline)
    n_blocks = len(talker.pcm) // (2 * BLOCK)
    talker.send_times = [0.0] * n_blocks

    async def read(conn: Any) -> None:
        try:
            async for text in conn:
                if states_inline:
                    talker.on_state(json.loads(text), time.monotonic())
        except ConnectionClosed:
            pass

    reader = asyncio.ensure_future(read(ws))
    k = 0
    while k < n_blocks:
        delay = t0 + k * BLOCK_S - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            talker.send_times[k] = time.monotonic()
            await ws.send(talker.pcm[k * 2 * BLOCK : (k + 1) * 2 * BLOCK])
            k += 1
        except ConnectionClosed:
            talker.drops += 1
            talker.close_codes.append(ws.close_code)
            lost_at = time.monotonic()
            await reader
            ws = await _start(port, talker, deadline)
            talker.reconnect_s.append(time.monotonic() - lost_at)
            # Audio meanwhile is gone (a live talker does not wait): resume at the current block.
            k = max(k, int((time.monotonic() - t0) / BLOCK_S))
            talker.segment_start = k
            reader = asyncio.ensure_future(read(ws))
    try:
        await ws.send(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 10)
    except (ConnectionClosed, asyncio.TimeoutError):
        pass
    talker.close_codes.append(ws.close_code)
    await ws.close()


async def drive(port: int, talkers: list[Talker], states_inline: bool, limit_s: float,
                on_midway: Any = None, midway_s: float | None = None) -> None:
    # Connections open 20 ms apart (as people join, not all in one instant), then all talkers
    # speak from the same instant t0: every window of every stream falls due in the same tick.
    now = time.monotonic()
    t0 = now + 0.5 + CONNECT_GAP_S * len(talkers)
    deadline = now + limit_s
    tasks = [asyncio.ensure_future(run_talker(port, t, t0, states_inline, deadline, now + CONNECT_GAP_S * i))
             for i, t in enumerate(talkers)]
    if on_midway is not None and midway_s is not None:
        await asyncio.sleep(max(0.0, t0 + midway_s - time.monotonic()))
        await on_midway()
    await asyncio.wait_for(asyncio.gather(*tasks), limit_s)


def summarise(talkers: list[Talker], cpu_s: float, idle_cpu_s_per_s: float, wall_s: float,
              audio_s: float) -> dict[str, Any]:
    lat = [x for t in talkers for x in t.latencies_ms]
    n = len(talkers)
    cores = cpu_s / wall_s
    marginal = max(0.0, cores - idle_cpu_s_per_s)
    return {
        "streams": n,
        "decisions": len(lat),
        "expected_decisions_per_stream": int((audio_s - WINDOW_S) / HOP_S) + 1,
        "latency_ms": stats_ms(lat),
        "lost_streams": sum(1 for t in talkers if t.drops),
        "drops": sum(t.drops for t in talkers),
        "reconnect_s": stats_ms([x * 1000.0 for x in (r for t in talkers for r in t.reconnect_s)]),
        "normal_ends": sum(1 for t in talkers if t.close_codes and t.close_codes[-1] == 1000),
        "final_states": sum(t.finals for t in talkers),
        "server_cores": round(cores, 4),
        "idle_cores": round(idle_cpu_s_per_s, 4),
        "cores_per_stream": round(cores / n, 5),
        "marginal_cores_per_stream": round(marginal / n, 5),
    }


def _talkers(n: int, seconds: float) -> list[Talker]:
    audio = demo_audio(seconds + 1.0)
    out = []
    for i in range(n):
        # Each talker starts at a different point of the recording: not n copies of one voice.
        shift = (i * RATE * 7 // 10) % len(audio)
        x = np.roll(audio, -shift)[: int(seconds * RATE)]
        out.append(Talker(f"talker{i}", (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()))
    return out


def measure_daemon(n: int, seconds: float, idle_s: float) -> dict[str, Any]:
    ingest, ws_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_daemon", "--ingest", f"127.0.0.1:{ingest}", "--ws", f"127.0.0.1:{ws_port}",
         "--ws-queue", "10000", "--no-osc", "--quiet", "--backend", "litert", "--max-streams", str(n + 8),
         "--max-clients", str(n + 16)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    talkers = _talkers(n, seconds)
    by_name = {t.name: t for t in talkers}

    async def main() -> tuple[float, float, float]:
        from websockets.exceptions import ConnectionClosed

        watcher = await _connect(ws_port, time.monotonic() + 30)
        await watcher.recv()  # hello

        async def watch() -> None:
            try:
                async for text in watcher:
                    msg = json.loads(text)
                    t = by_name.get(msg.get("stream", ""))
                    if msg.get("type") == "state" and t is not None:
                        t.on_state(msg, time.monotonic())
            except ConnectionClosed:
                pass

        w = asyncio.ensure_future(watch())
        c0 = proc_cpu_seconds(proc.pid)
        await asyncio.sleep(idle_s)
        idle = (proc_cpu_seconds(proc.pid) - c0) / idle_s
        c1, w0 = proc_cpu_seconds(proc.pid), time.monotonic()
        await drive(ingest, talkers, states_inline=False, limit_s=seconds + 60)
        await asyncio.sleep(0.5)  # the last states on the state socket
        cpu, wall = proc_cpu_seconds(proc.pid) - c1, time.monotonic() - w0
        w.cancel()
        await watcher.close()
        return idle, cpu, wall

    try:
        idle, cpu, wall = asyncio.run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        finally:
            proc.kill()
    return summarise(talkers, cpu, idle, wall, seconds)


@contextlib.contextmanager
def two_node_cluster(n: int, lease_s: float, **extra: Any) -> Iterator[dict[str, Any]]:
    """A local Ray cluster of two loopback nodes (1 CPU each) running the application for ``n`` talkers.

    ``extra``: more application settings (``direct_host``, ...).
    Yields its ``port``, the registry's handle (``registry``), a :class:`CpuMeter` of every Ray
    process (``meter``), ``ready_s`` and the replicas' ``placement``; shuts it all down after.
    """
    os.environ.update(loopback_ray_env())  # before Ray is imported
    # One proxy (on the head) for both nodes: without this it sends every connection to the
    # replica on its own node, and the second node's replica idles.  With a proxy per node
    # behind a load balancer (a real cluster) the local preference is what one wants.
    os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = "0"
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from ser_daemon.cluster.app import APP_NAME, settings_from_args
    from ser_daemon.cluster.runner import deploy, start_ray

    t_start = time.monotonic()
    node_args = {"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args=node_args)
    try:
        cluster.add_node(**node_args)
        start_ray(cluster.address, loopback=True, configure_logging=False, log_to_driver=False)
        port = free_port()
        settings = settings_from_args({
            "backend": "litert", "ingress_replicas": 2, "ingress_cpus": 0.25, "model_cpus": 0.25, "lease_s": lease_s,
            "max_streams_per_replica": max(256, n + 8), "streams_per_replica": max(128, n),
            "max_ingress_replicas_per_node": 1,  # one ingress replica on each node
            **extra,
        })
        deploy(settings, "127.0.0.1", port, proxy_location="HeadOnly")
        ready_s = time.monotonic() - t_start
        registry = serve.get_deployment_handle("Registry", app_name=APP_NAME)
        placement = {}
        for actor in ray.util.list_named_actors(all_namespaces=True):
            if "Ingress" in actor["name"] or "Model" in actor["name"]:
                handle = ray.get_actor(actor["name"], namespace=actor["namespace"])
                placement["#".join(actor["name"].split("#")[1:])] = ray.get(handle.__ray_call__.remote(
                    lambda self: ray.get_runtime_context().get_node_id()))[:8]
        me = os.getpid()
        yield {"port": port, "registry": registry, "meter": CpuMeter(lambda: descendants(me)), "ready_s": ready_s,
               "placement": placement}
    finally:
        try:
            serve.shutdown()
        except Exception:  # noqa: BLE001 - tearing down whatever came up
            pass
        ray.shutdown()
        cluster.shutdown()


def kill_replica_of(registry: Any, stream: str, killed: dict[str, Any]) -> Any:
    """A coroutine function: SIGKILL the ingress replica holding ``stream`` (noted in ``killed``)."""
    async def kill() -> None:
        owners = await registry.owners.remote()
        victim = owners.get(stream)
        if victim is None:
            return
        killed["replica"] = victim
        killed["streams_on_it"] = sorted(s for s, o in owners.items() if o == victim)
        killed["at"] = time.monotonic()
        os.kill(int(victim.split("@")[1]), signal.SIGKILL)
    return kill


def measure_cluster(n: int, seconds: float, idle_s: float, kill_at: float | None, lease_s: float) -> dict[str, Any]:
    with two_node_cluster(n, lease_s) as c:
        port, meter = c["port"], c["meter"]
        talkers = _talkers(n, seconds)
        killed: dict[str, Any] = {}
        roles: dict[str, float] = {}

        async def main() -> tuple[float, float, float]:
            c0 = meter.read()
            await asyncio.sleep(idle_s)
            idle = (meter.read() - c0) / idle_s
            c1, w0 = meter.read(), time.monotonic()
            before = meter.by_role()
            await drive(port, talkers, states_inline=True, limit_s=seconds + 90,
                        on_midway=kill_replica_of(c["registry"], "talker0", killed) if kill_at is not None else None,
                        midway_s=kill_at)
            cpu, wall = meter.read() - c1, time.monotonic() - w0
            roles.update({k: round((v - before.get(k, 0.0)) / wall, 4) for k, v in meter.by_role().items()})
            return idle, cpu, wall

        idle, cpu, wall = asyncio.run(main())
        out = summarise(talkers, cpu, idle, wall, seconds)
        out["cores_by_process"] = dict(sorted(roles.items(), key=lambda kv: -kv[1]))
        killed.pop("at", None)
        if killed:
            killed["at_s"] = kill_at
        out.update({"start_to_ready_s": round(c["ready_s"], 2), "killed": killed, "placement": c["placement"],
                    "nodes": 2, "cpus": 2})
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--kill-at", type=float, default=None, help="seconds into the load (default: half-way)")
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--idle-s", type=float, default=5.0)
    ap.add_argument("--lease-s", type=float, default=2.0)
    ap.add_argument("--block-ms", type=float, default=20.0, help="audio per message (both servers)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    global BLOCK_S, BLOCK
    BLOCK_S = args.block_ms / 1000.0
    BLOCK = int(RATE * BLOCK_S)
    if args.smoke:
        args.streams, args.seconds, args.idle_s = 2, 6.0, 1.0
    n = max(1, min(args.streams, MAX_STREAMS))
    kill_at = None if args.no_kill else (args.kill_at if args.kill_at is not None else args.seconds / 2)
    result: dict[str, Any] = {"machine": machine(), "git": git_rev(), "streams": n, "seconds": args.seconds,
                              "block_ms": BLOCK_S * 1000, "hop_ms": HOP_S * 1000, "backend": "litert"}
    result["daemon"] = measure_daemon(n, args.seconds, args.idle_s)
    print("daemon ", json.dumps(result["daemon"]), flush=True)
    result["cluster"] = measure_cluster(n, args.seconds, args.idle_s, kill_at, args.lease_s)
    print("cluster", json.dumps(result["cluster"]), flush=True)
    d, c = result["daemon"], result["cluster"]
    result["overhead"] = {
        "cores_per_stream_ratio": round(c["cores_per_stream"] / d["cores_per_stream"], 2) if d["cores_per_stream"] else None,
        "extra_cores_per_stream": round(c["cores_per_stream"] - d["cores_per_stream"], 5),
        "extra_marginal_cores_per_stream": round(c["marginal_cores_per_stream"] - d["marginal_cores_per_stream"], 5),
        "extra_p50_ms": round(c["latency_ms"].get("median", 0) - d["latency_ms"].get("median", 0), 2),
        "extra_p99_ms": round(c["latency_ms"].get("p99", 0) - d["latency_ms"].get("p99", 0), 2),
    }
    print("overhead", json.dumps(result["overhead"]))
    if not args.smoke:
        save(f"cluster_bench_{n}_{int(args.block_ms)}ms{'_kill' if kill_at is not None else ''}", result)


if __name__ == "__main__":
    main()
