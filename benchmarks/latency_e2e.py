"""End-to-end latency of the running daemon, per backend, measured from outside.

The daemon replays speech at real time (the file source stamps each 20 ms block with the
host's monotonic clock as it "arrives", exactly where a capture callback would); this script
receives the OSC bundles on a UDP socket and the WebSocket messages on a client, both on
127.0.0.1, and computes for every decision: receipt time - arrival time of the newest audio
block the decision includes (CLOCK_MONOTONIC is shared by all processes on Linux).

Also: per-stage compute from the daemon's --stats-json, CPU share of one core, resident memory,
and start-up time (command to first broadcast decision, minus the window itself).

Usage: python benchmarks/latency_e2e.py [--seconds 150] [--hop-ms 50] [--backends litert,keras]
With --hop-ms 50 a 150 s run gives 3000 decisions per backend (20 a second: five times the
default rate, so the CPU share here is an upper bound for the default 4 decisions a second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _util import REPO, default_model, git_rev, machine, proc_cpu_seconds, proc_rss_mb, save, stats_ms, write_demo_wav


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_backend(backend: str, wav: Path, hop_ms: float, model: Path, tmp: Path) -> dict:
    from pythonosc.osc_bundle import OscBundle

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.2)
    ws_port = free_port()
    stats_path = tmp / f"stats-{backend}.json"
    cmd = [sys.executable, "-m", "ser_daemon", "--input", str(wav), "--model", str(model), "--backend", backend,
           "--hop-ms", str(hop_ms), "--osc", f"127.0.0.1:{udp.getsockname()[1]}", "--ws", f"127.0.0.1:{ws_port}",
           "--wait-clients", "1", "--ws-queue", "10000", "--quiet", "--stats-json", str(stats_path)]
    t_launch = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    osc_recv: dict[int, float] = {}
    stop = threading.Event()

    def osc_loop() -> None:
        while not stop.is_set():
            try:
                data = udp.recv(65536)
            except socket.timeout:
                continue
            t = time.monotonic()
            if OscBundle.dgram_is_bundle(data):
                for m in OscBundle(data):
                    if m.address == "/ser/seq":
                        osc_recv[m.params[0]] = t

    th = threading.Thread(target=osc_loop, daemon=True)
    th.start()
    ws_msgs: list[tuple[float, dict]] = []
    cpu_marks: dict[str, float] = {}

    async def client() -> None:
        from websockets.asyncio.client import connect

        while True:
            try:
                ws = await connect(f"ws://127.0.0.1:{ws_port}", max_size=None)
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(proc.stderr.read())
                await asyncio.sleep(0.02)
        async with ws:
            async for text in ws:
                t = time.monotonic()
                m = json.loads(text)
                if m["type"] != "state":
                    continue
                if not ws_msgs:
                    cpu_marks["first"] = proc_cpu_seconds(proc.pid)
                    cpu_marks["t_first"] = t
                ws_msgs.append((t, m))
                if m["final"]:
                    break
                cpu_marks["last"] = proc_cpu_seconds(proc.pid)
                cpu_marks["t_last"] = t
                cpu_marks["rss_mb"] = proc_rss_mb(proc.pid)

    asyncio.run(client())
    proc.wait(timeout=30)
    stop.set()
    th.join(timeout=2)
    udp.close()
    states = [(t, m) for t, m in ws_msgs if not m["final"]]
    window_s = 2.0
    ws_lat = [(t - m["audio_time"]) * 1000 for t, m in states]
    osc_lat = [(osc_recv[m["seq"]] - m["audio_time"]) * 1000 for t, m in states if m["seq"] in osc_recv]
    daemon_stats = json.loads(stats_path.read_text())
    wall = cpu_marks["t_last"] - cpu_marks["t_first"]
    return {
        "backend": backend,
        "decisions": len(states),
        "osc_received": len(osc_lat),
        "e2e_osc_ms": stats_ms(osc_lat),
        "e2e_ws_ms": stats_ms(ws_lat),
        "stages_ms": daemon_stats["stages"],
        "dropped_windows": states[-1][1]["dropped_windows"],
        "late": sum(m["late"] for _, m in states),
        "cpu_share_of_one_core": round((cpu_marks["last"] - cpu_marks["first"]) / wall, 4),
        "rss_mb": round(cpu_marks["rss_mb"], 1),
        "startup_s_to_first_decision_minus_window": round(states[0][0] - t_launch - window_s, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--hop-ms", type=float, default=50.0)
    ap.add_argument("--backends", default="litert,keras")
    ap.add_argument("--model", help="model bundle (default: the shipped one)")
    args = ap.parse_args()
    model = Path(args.model) if args.model else default_model()
    out = {"machine": machine(), "git": git_rev(), "model_dir": str(model), "seconds": args.seconds,
           "hop_ms": args.hop_ms, "block_ms": 20, "runs": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        wav = write_demo_wav(tmp / "speech.wav", args.seconds)
        for backend in args.backends.split(","):
            r = run_backend(backend, wav, args.hop_ms, model, tmp)
            out["runs"].append(r)
            print(json.dumps({k: r[k] for k in r if k != "stages_ms"}, indent=1))
            print("stages:", {k: (v.get("median_ms"), v.get("p99_ms")) for k, v in r["stages_ms"].items()})
    save("latency_e2e", out)


if __name__ == "__main__":
    main()
