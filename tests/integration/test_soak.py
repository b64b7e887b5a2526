"""Soak: hours of audio replayed as fast as possible with clients attached.

Asserts that resident memory, threads and open files stay flat and that no
decision is lost or duplicated.  SER_SOAK_SECONDS sets the wall time
(default 40 s, which covers well over an hour of audio on a 2-core machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import timeout
from helpers import REPO, UdpReceiver, daemon_cmd, free_port, ws_connect
from tiny_model import tone, write_wav

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]


def proc_stats(pid: int) -> tuple[int, int, int]:
    """(resident KiB, threads, open file descriptors) of a live process."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    rss_kib = int(fields["VmRSS"].split()[0])
    return rss_kib, int(fields["Threads"]), len(os.listdir(f"/proc/{pid}/fd"))


def test_soak_hours_of_audio(tiny_bundle, tmp_path) -> None:
    wall_s = float(os.environ.get("SER_SOAK_SECONDS", "40"))
    x = np.concatenate([tone(3000, 3.0), np.zeros(16000, np.float32), tone(200, 3.0), np.zeros(8000, np.float32)])
    wav = write_wav(tmp_path / "soak.wav", x)
    ws_port = free_port()
    rx = UdpReceiver()
    proc = subprocess.Popen(
        daemon_cmd("--input", str(wav), "--loop", "--fast", "--osc", f"127.0.0.1:{rx.port}",
                   "--ws", f"127.0.0.1:{ws_port}", "--wait-clients", "1", "--ws-queue", "4096", "--quiet"),
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    samples: list[tuple[float, int, int, int]] = []
    seqs: list[int] = []
    last: dict = {}
    dropped_by_queue = [0]
    stop_rx = threading.Event()

    def drain_osc() -> None:
        while not stop_rx.is_set():
            rx.collect(time.monotonic() + 0.2)
            rx.packets.clear()  # count nothing: this receiver only keeps the OSC side busy

    osc_thread = threading.Thread(target=drain_osc, daemon=True)
    osc_thread.start()

    async def client() -> None:
        from websockets.exceptions import ConnectionClosed

        ws = await ws_connect(ws_port, max_size=None)  # the daemon is still starting
        t0 = time.monotonic()
        next_sample = t0 + 2.0
        async with ws:
            try:
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
                    if m["type"] == "state":
                        seqs.append(m["seq"])
                        dropped_by_queue[0] = m["client_dropped"]
                        last.update(m)
                        if m.get("final"):
                            return
                    now = time.monotonic()
                    if now >= next_sample:
                        samples.append((now - t0, *proc_stats(proc.pid)))
                        next_sample = now + 2.0
                        if now - t0 > wall_s:
                            proc.send_signal(signal.SIGTERM)
            except ConnectionClosed:
                return

    try:
        asyncio.run(client())
        proc.wait(timeout=timeout(10))
    finally:
        proc.kill()
        stop_rx.set()
        osc_thread.join(timeout=2)
        rx.close()
    err = proc.stderr.read()
    assert proc.returncode == 0, err[-2000:]
    audio_h = last["end_sample"] / 16000 / 3600
    # No decision lost or duplicated: every sequence number once, in order.
    assert dropped_by_queue[0] == 0
    assert seqs == list(range(len(seqs)))
    assert last["final"] and last["overruns"] == 0 and last["dropped_windows"] == 0
    # Flat resources: compare the second quarter of the run with the end.
    assert len(samples) >= 8
    warm = samples[len(samples) // 4]
    end = samples[-1]
    rss_growth_mb = (end[1] - warm[1]) / 1024
    print(f"\nsoak: {audio_h:.2f} h of audio in {end[0]:.0f} s, {len(seqs)} decisions; "
          f"RSS {warm[1] / 1024:.1f} -> {end[1] / 1024:.1f} MB, threads {warm[2]} -> {end[2]}, fds {warm[3]} -> {end[3]}")
    assert audio_h >= 0.5 * wall_s / 40  # at least half an hour of audio per 40 s of wall time
    assert rss_growth_mb < 8, samples
    assert end[2] == warm[2] and end[3] == warm[3], samples
