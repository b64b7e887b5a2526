"""Autoscaling and scale-down of the cluster's ingress, on one local Ray instance (2 CPUs, loopback).

1. Autoscaling: the ingress autoscales on open connections (target ``--target`` per replica,
   1 to 3 replicas); ``--streams`` connections open and stream silence at real time; reported:
   when Serve started the new replicas and when they ran, and where the open streams stayed.
2. Scale-down: the application is redeployed with 1 fixed ingress replica; reported: which
   streams ended, with what close code and when, and which kept going.

Usage: python benchmarks/cluster_scaling.py [--streams 6] [--target 2]     (about 1.5 min)
Needs: pip install -e '.[cluster]'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import git_rev, machine, save  # noqa: E402

from ser_daemon.cluster.runner import loopback_ray_env  # noqa: E402  (imports no Ray)

BLOCK = b"\x00\x00" * 320  # 20 ms of 16 kHz silence
WATCH_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _feed(ws: Any, name: str, t0: list[float], ends: dict[str, Any]) -> None:
    """Real-time silence until the connection ends; record how and when."""
    try:
        while True:
            await ws.send(BLOCK)
            await asyncio.sleep(0.02)
    except Exception:  # noqa: BLE001 - the end is what is measured
        ends[name] = {"code": ws.close_code, "after_s": round(time.monotonic() - t0[0], 1)}


async def measure(streams: int, target: int) -> dict[str, Any]:
    from ray import serve
    from websockets.asyncio.client import connect

    from ser_daemon.cluster.app import APP_NAME, build_app, settings_from_args
    from ser_daemon.cluster.runner import deploy

    base = {"backend": "litert", "ingress_cpus": 0.25, "model_cpus": 0.25}
    port = free_port()
    deploy(settings_from_args({**base, "min_ingress_replicas": 1, "max_ingress_replicas": 3,
                               "streams_per_replica": target, "max_streams_per_replica": max(8, streams)}),
           "127.0.0.1", port)
    registry = serve.get_deployment_handle("Registry", app_name=APP_NAME)

    def replicas() -> dict[str, int]:
        return dict(serve.status().applications[APP_NAME].deployments["Ingress"].replica_states)

    out: dict[str, Any] = {"streams": streams, "target": target, "replicas_before": replicas()}
    conns = []
    for i in range(streams):
        ws = await connect(f"ws://127.0.0.1:{port}/")
        await ws.send(json.dumps({"type": "start", "stream": f"s{i}", "sample_rate": 16000}))
        await ws.recv()
        conns.append(ws)
    t0 = [time.monotonic()]
    ends: dict[str, Any] = {}
    tasks = [asyncio.ensure_future(_feed(ws, f"s{i}", t0, ends)) for i, ws in enumerate(conns)]
    timeline = []
    last: dict[str, int] = {}
    while time.monotonic() - t0[0] < WATCH_S:
        now = replicas()
        if now != last:
            timeline.append({"t_s": round(time.monotonic() - t0[0], 1), "replicas": now})
            last = now
        if now.get("RUNNING", 0) >= 3:
            break
        await asyncio.sleep(0.5)
    out["autoscaling"] = timeline
    owners = await registry.owners.remote()
    out["owners_after_autoscaling"] = owners

    # Scale-down: one fixed replica.  serve.run blocks until the new version is up: in a thread.
    t0[0] = time.monotonic()
    loop = asyncio.get_running_loop()
    redeploy = loop.run_in_executor(None, lambda: serve.run(
        build_app(settings_from_args({**base, "ingress_replicas": 1, "streams_per_replica": target,
                                     "max_streams_per_replica": max(8, streams)})),
        name=APP_NAME, route_prefix="/"))
    await asyncio.wait(tasks, timeout=WATCH_S)
    await redeploy
    out["redeploy_s"] = round(time.monotonic() - t0[0], 1)
    out["ended"] = ends
    out["kept"] = sorted(f"s{i}" for i in range(streams) if f"s{i}" not in ends)
    for t in tasks:
        t.cancel()
    for ws in conns:
        await ws.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=6)
    ap.add_argument("--target", type=int, default=2)
    args = ap.parse_args()
    os.environ.update(loopback_ray_env())  # before Ray is imported
    from ser_daemon.cluster.runner import start_ray, stop

    start_ray(num_cpus=2)
    try:
        result = asyncio.run(measure(max(1, min(args.streams, 32)), max(1, args.target)))
    finally:
        stop()
    result.update({"machine": machine(), "git": git_rev()})
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    save("cluster_scaling", result)


if __name__ == "__main__":
    main()
