"""Ingest memory: is what 1,000+ remote streams take given back when they end?

Starts the real daemon with ``--ingest`` and a state WebSocket, then opens ``--streams``
ingest streams in rounds of ``--concurrent`` at once: each sends its start message and
``--audio-s`` seconds of 48 kHz 16-bit PCM at real time, all of a round stay open together (the peak),
then all of them close at the same moment.  A state client reads every message throughout
and counts each stream's final state.  The daemon's resident memory (VmRSS from
/proc/PID/status) is sampled before the first stream, at each round's peak and after each
round's streams have all ended (polled for up to 3 s: the daemon
hands freed pages back to the OS at most once a second).

Per-stream cost = (peak - before) / concurrent streams.  Reported: before, highest peak,
after the last round, after/before ratio, and whether the state client saw every final state.

Usage: python benchmarks/ingest_memory.py [--streams 1000] [--concurrent 250] [--audio-s 0.5]
       python benchmarks/ingest_memory.py --smoke      (a few seconds; run by the tests)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import REPO, git_rev, machine  # noqa: E402
from _util import proc_rss_mb as rss_mb  # noqa: E402

RATE = 48000
BLOCK_S = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(ingest_port: int, ws_port: int, max_streams: int, env: dict[str, str] | None = None,
                 extra: tuple[str, ...] = ()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ser_daemon", "--ingest", f"127.0.0.1:{ingest_port}",
           "--ws", f"127.0.0.1:{ws_port}", "--no-osc", "--quiet",
           "--max-clients", str(max_streams + 8), "--max-streams", str(max_streams), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **(env or {})})


class StateClient:
    """A well-behaved state client: reads every message as it comes, counts finals per stream."""

    def __init__(self) -> None:
        self.messages = 0
        self.finals: dict[str, int] = {}
        self.seqs: dict[str, list[int]] = {}
        self.dropped_reported = 0
        self._task: asyncio.Task | None = None
        self.ws: Any = None

    async def start(self, port: int, deadline: float) -> None:
        from websockets.asyncio.client import connect

        while True:
            try:
                self.ws = await connect(f"ws://127.0.0.1:{port}", max_size=None, max_queue=None)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                m = json.loads(raw)
                self.messages += 1
                if m.get("type") != "state":
                    continue
                self.seqs.setdefault(m["stream"], []).append(m["seq"])
                self.dropped_reported = max(self.dropped_reported, m.get("client_dropped", 0))
                if m.get("final"):
                    self.finals[m["stream"]] = self.finals.get(m["stream"], 0) + 1
        except ConnectionClosed:
            pass

    def missing(self) -> int:
        """Messages a stream's sequence numbers say were never received."""
        gaps = 0
        for seqs in self.seqs.values():
            gaps += (max(seqs) - min(seqs) + 1) - len(set(seqs))
        return gaps

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            await self._task


async def _one_stream(port: int, name: str, audio: bytes, opened: asyncio.Event, release: asyncio.Event,
                      ready: list[int]) -> None:
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}", open_timeout=30, close_timeout=5) as ws:
        await ws.send(json.dumps({"type": "start", "stream": name, "sample_rate": RATE, "channels": 1}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert reply.get("type") == "started", reply
        block = int(RATE * BLOCK_S) * 2
        t0 = time.monotonic()
        for k, i in enumerate(range(0, len(audio), block)):
            await ws.send(audio[i : i + block])
            # Paced like a real client (one 20 ms block per 20 ms), on an absolute schedule.
            await asyncio.sleep(max(0.0, t0 + (k + 1) * BLOCK_S - time.monotonic()))
        ready[0] += 1
        if ready[0] >= ready[1]:
            opened.set()
        await release.wait()
        # Leave without a stop message: the socket just goes away, as a crashed client would.


async def measure(streams: int, concurrent: int, audio_s: float, timeout_s: float = 120.0,
                  env: dict[str, str] | None = None) -> dict[str, Any]:
    import numpy as np

    ingest_port, ws_port = free_port(), free_port()
    proc = start_daemon(ingest_port, ws_port, concurrent, env=env)
    deadline = time.monotonic() + timeout_s
    client = StateClient()
    result: dict[str, Any] = {"streams": 0, "concurrent": concurrent, "audio_s": audio_s, "rounds": []}
    try:
        await client.start(ws_port, deadline)
        # The hello arrives once the daemon is up; let it settle (model warm-up runs before the loop).
        while client.messages < 1:
            assert time.monotonic() < deadline, "no hello"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        rng = np.random.default_rng(0)
        audio = (rng.standard_normal(int(RATE * audio_s)) * 3000).astype("<i2").tobytes()
        before = rss_mb(proc.pid)
        result["before_mb"] = round(before, 1)
        done = 0
        k = 0
        while done < streams:
            n = min(concurrent, streams - done)
            opened, release = asyncio.Event(), asyncio.Event()
            ready = [0, n]
            names = [f"r{k}s{i}" for i in range(n)]
            tasks = [asyncio.create_task(_one_stream(ingest_port, nm, audio, opened, release, ready)) for nm in names]
            t_open = time.monotonic()
            waiter = asyncio.create_task(opened.wait())
            await asyncio.wait({waiter, *tasks}, timeout=max(1.0, deadline - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            assert opened.is_set(), f"round {k}: only {ready[0]} of {n} streams opened"
            open_s = time.monotonic() - t_open
            await asyncio.sleep(0.3)  # the processing thread has picked them all up
            peak = rss_mb(proc.pid)
            release.set()  # all of them vanish at once
            await asyncio.gather(*tasks)
            while sum(1 for nm in names if client.finals.get(nm)) < n:
                assert time.monotonic() < deadline, f"round {k}: finals {sum(1 for nm in names if client.finals.get(nm))}/{n}"
                await asyncio.sleep(0.05)
            # The daemon gives freed pages back at most once a second: poll up to 3 s for it.
            t_end = time.monotonic()
            after = rss_mb(proc.pid)
            while after > before * 1.2 and time.monotonic() - t_end < 3.0:
                await asyncio.sleep(0.1)
                after = rss_mb(proc.pid)
            result["rounds"].append({"streams": n, "open_s": round(open_s, 2), "peak_mb": round(peak, 1),
                                     "after_mb": round(after, 1), "settle_s": round(time.monotonic() - t_end, 2)})
            done += n
            k += 1
        result["streams"] = done
        result["peak_mb"] = max(r["peak_mb"] for r in result["rounds"])
        result["after_mb"] = result["rounds"][-1]["after_mb"]
        result["after_over_before"] = round(result["after_mb"] / before, 3)
        result["per_stream_kb"] = round((result["peak_mb"] - before) * 1024 / concurrent, 1)
        result["finals_received"] = sum(1 for v in client.finals.values() if v)
        result["double_finals"] = sum(1 for v in client.finals.values() if v > 1)
        result["state_messages"] = client.messages
        result["messages_missing"] = client.missing()
        result["client_dropped_reported"] = client.dropped_reported
        await client.close()
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        result["exit_code"] = proc.returncode
        result["stderr_tail"] = err[-2000:]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--concurrent", type=int, default=250)
    ap.add_argument("--audio-s", type=float, default=0.5)
    ap.add_argument("--smoke", action="store_true", help="40 streams, 20 at once")
    ap.add_argument("--out", help="write the JSON result here")
    args = ap.parse_args(argv)
    if args.smoke:
        args.streams, args.concurrent = 40, 20
    res = asyncio.run(measure(args.streams, args.concurrent, args.audio_s))
    res["machine"], res["git"] = machine(), git_rev()
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
