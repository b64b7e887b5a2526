"""``ser-daemon cluster`` as a real subprocess: serves ingest clients, stops on SIGTERM, leaves no Ray behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from ser_daemon.cluster.runner import loopback_ray_env

pytest.importorskip("ray", reason="Ray Serve is needed: pip install -e '.[cluster]'")

from conftest import timeout  # noqa: E402
from helpers import REPO, daemon_cmd, free_port, wait_until  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from cluster_bench import descendants as _descendants  # noqa: E402  (the benchmark's process walk)

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_cluster_subcommand_serves_and_stops_cleanly() -> None:
    port = free_port()
    proc = subprocess.Popen(
        daemon_cmd("cluster", "--port", str(port), "--num-cpus", "2", "--ingress-replicas", "1",
                   "--ingress-cpus", "0.25", "--model-cpus", "0.25", "--backend", "litert",
                   "--model", str(REPO / "models" / "default")),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env={**os.environ, **loopback_ray_env()},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    ray_pids: set[int] = set()
    try:
        assert wait_until(lambda: any("ingest on" in ln for ln in lines) or proc.poll() is not None, 90), lines
        assert proc.poll() is None, lines
        ray_pids = _descendants(proc.pid)
        assert ray_pids, "no Ray processes below the subcommand"

        async def talk() -> tuple[dict, int | None]:
            from websockets.asyncio.client import connect
            from websockets.exceptions import ConnectionClosed

            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send(json.dumps({"type": "start", "stream": "cli", "sample_rate": 16000}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
                await ws.send(b"\x00\x00" * 1600)
                await ws.send(json.dumps({"type": "stop"}))
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), timeout(10))
                except ConnectionClosed:
                    return reply, ws.close_code

        async def refused_osc() -> tuple[int | None, str]:
            from websockets.asyncio.client import connect
            from websockets.exceptions import ConnectionClosed

            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send(json.dumps({"type": "start", "stream": "cli2", "sample_rate": 16000,
                                          "osc": "127.0.0.1:9"}))
                try:
                    await asyncio.wait_for(ws.recv(), timeout(10))
                except ConnectionClosed:
                    pass
                return ws.close_code, ws.close_reason

        reply, code = asyncio.run(talk())
        assert reply == {"type": "started", "stream": "cli"} and code == 1000
        # No --allow-stream-osc: a start message naming an OSC target is refused, nothing is sent.
        assert asyncio.run(refused_osc()) == (1008, "OSC output to 127.0.0.1 is not allowed by this server")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=timeout(60)) == 0
        # Serve and the local Ray instance went down with it: nothing it started lives on.
        assert wait_until(lambda: not any(_alive(p) for p in ray_pids), 30), \
            [open(f"/proc/{p}/cmdline").read() for p in ray_pids if _alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in ray_pids:  # only what this test's subprocess started, by id
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("args, cause", [
    (["--port", "99999"], "a port is 1-65535, got 99999"),
    (["--model", "/nonexistent"], "model not found: /nonexistent"),
    (["--num-cpus", "0", "--ingress-replicas", "1"], "Ray needs at least 1 CPU"),
    (["--num-cpus", "1", "--ingress-replicas", "1"], "less than the replicas reserve"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--mood-setting", "cooldwn_s=1"], "[mood] has no setting 'cooldwn_s'; did you mean cooldown_s?"),
    (["--mood-setting", "cooldown_s"], "expected KEY=VALUE"),
])
def test_cluster_arguments_are_checked_before_ray_starts(args: list[str], cause: str) -> None:
    """Issue 32: these started Ray (10-19 s), then exited 1 with a traceback or never became ready."""
    r = subprocess.run(daemon_cmd("cluster", *args), capture_output=True, text=True, cwd=REPO,
                       timeout=timeout(60), env={**os.environ, **loopback_ray_env()})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) <= 2 and cause in lines[0], r.stderr  # the error, and at most a pointer to --help
    assert "Traceback" not in r.stderr and "Started a local Ray instance" not in r.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_stop_signal_while_ray_starts_is_answered_at_once(sig: int, code: int) -> None:
    """Issue 32: Ctrl-C during start-up waited 13 s for Ray and exited 0; now at once, 130, nothing left."""
    proc = subprocess.Popen(
        daemon_cmd("cluster", "--port", str(free_port()), "--num-cpus", "2", "--ingress-replicas", "1",
                   "--ingress-cpus", "0.25", "--model-cpus", "0.25", "--backend", "litert"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, **loopback_ray_env()},
    )
    ray_pids: set[int] = set()
    try:
        assert wait_until(lambda: bool(ray_pids.update(_descendants(proc.pid)) or ray_pids) or proc.poll() is not None,
                          60)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=timeout(5))
        assert proc.returncode == code, err
        assert "Traceback" not in err
        assert wait_until(lambda: not any(_alive(p) for p in ray_pids), 10), "Ray processes outlived the stop"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in ray_pids:  # only what this test's subprocess started, by id
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
