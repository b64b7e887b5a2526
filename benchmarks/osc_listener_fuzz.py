"""The VRChat listen port under 100k random and mutated datagrams (issue 32), from outside the daemon.

Starts the daemon on the looped demo recording with ``--print``, sending VRChat parameters to a
receiver here and listening for VRChat on a free port (``--no-oscquery``: the same listener and
parser as the advertised port). Sends the datagrams in paced batches through a real UDP socket on
127.0.0.1, then a valid ``MuteSelf`` (the face must go neutral: the daemon still hears VRChat),
then SIGTERM (the last printed line must be the final state). Records what the daemon counted in
``--stats-json`` (datagrams received, dropped, the longest one took to handle), how many OSC
states it sent meanwhile, and the parser's own time per datagram in this process.

Usage: python benchmarks/osc_listener_fuzz.py [--count 100000] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _util import REPO, git_rev, machine, save, stats_ms

from ser_daemon.net.osc_in import OscRejected, parse_osc

NEGATIVE_ELEMENT = b"#bundle\0" + b"\0" * 8 + struct.pack(">i", -8) + b"x" * 8  # issue 32's packet


def osc(address: str, tags: str = "", payload: bytes = b"") -> bytes:
    """A message from its parts (address, type tags after the comma, encoded arguments)."""
    def pad(b: bytes) -> bytes:
        return b + b"\0" * (4 - len(b) % 4)
    return pad(address.encode()) + pad(b"," + tags.encode()) + payload


def mute(on: bool) -> bytes:
    return osc("/avatar/parameters/MuteSelf", "T" if on else "F")


def nested(depth: int, inner: bytes) -> bytes:
    """``inner`` wrapped in ``depth`` bundles."""
    for _ in range(depth):
        inner = b"#bundle\0" + b"\0" * 8 + struct.pack(">i", len(inner)) + inner
    return inner


VALID = [
    mute(True), mute(False), osc("/avatar/change", "s", b"avtr_1\0\0"), osc("/avatar/parameters/SER_Enabled", "F"),
    osc("/avatar/parameters/Other", "fi", struct.pack(">fi", 0.5, 3)), nested(3, osc("/avatar/change", "s", b"avtr_2\0\0")),
]


def fuzz_datagrams(count: int, seed: int) -> list[bytes]:
    """``count`` datagrams: the issue's two, random bytes, bundle headers with random element sizes,
    and valid VRChat messages with bytes flipped, cut out or put in."""
    rng = random.Random(seed)
    out = [NEGATIVE_ELEMENT, nested(3000, mute(True)), nested(500, mute(True))]
    while len(out) < count:
        kind = rng.random()
        if kind < 0.3:
            out.append(rng.randbytes(rng.randrange(0, 200)))
        elif kind < 0.5:
            body = rng.randbytes(rng.randrange(0, 40))
            out.append(b"#bundle\0" + rng.randbytes(8) + struct.pack(">i", rng.randrange(-2**31, 2**31)) + body)
        else:
            d = bytearray(rng.choice(VALID))
            for _ in range(rng.randrange(1, 5)):
                op, i = rng.random(), rng.randrange(len(d) + 1)
                if op < 0.5 and d:
                    d[min(i, len(d) - 1)] = rng.randrange(256)
                elif op < 0.75:
                    del d[i:i + rng.randrange(1, 8)]
                else:
                    d[i:i] = rng.randbytes(rng.randrange(1, 8))
            out.append(bytes(d))
    return out[:count]


def parse_times(datagrams: list[bytes]) -> dict[str, Any]:
    """The parser alone, in this process: time per datagram (ms) and how many it refused."""
    times, refused = [], 0
    for d in datagrams:
        t0 = time.perf_counter()
        try:
            parse_osc(d)
        except OscRejected:
            refused += 1
        times.append((time.perf_counter() - t0) * 1000)
    return {"ms": stats_ms(times), "refused": refused}


def measure(count: int, seed: int = 32, env: dict[str, str] | None = None, timeout_s: float = 120.0,
            batch: int = 50, rest_label: int | None = None) -> dict[str, Any]:
    """Run the daemon, send ``count`` fuzzed datagrams to its listen port, then MuteSelf and SIGTERM.

    ``rest_label``: what ``SER_Label`` shows while muted (the neutral class's number); by default
    read from the model the daemon loads.
    """
    import os

    if rest_label is None:
        from ser_daemon.model.bundle import default_model_dir, load_bundle

        model = (env or {}).get("SER_MODEL_DIR") or os.environ.get("SER_MODEL_DIR") or default_model_dir()
        rest_label = 1 + list(load_bundle(model).labels).index("neutral")

    datagrams = fuzz_datagrams(count, seed)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.05)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        listen = probe.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="osc-fuzz-"))
    stats_path = tmp / "stats.json"
    cmd = [sys.executable, "-m", "ser_daemon", "--input", str(REPO / "ser_daemon/data/demo.wav"), "--loop",
           "--print", "--osc", f"vrchat@127.0.0.1:{rx.getsockname()[1]}", "--vrchat-listen", str(listen),
           "--no-oscquery", "--no-ws", "--quiet", "--stats-json", str(stats_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **(env or {})})
    labels: list[int] = []
    stop_rx = threading.Event()

    def receive() -> None:
        while not stop_rx.is_set():
            try:
                d = rx.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if d.startswith(b"/avatar/parameters/SER_Label\0"):
                labels.append(struct.unpack(">i", d[-4:])[0])

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    out: dict[str, Any] = {"sent": count}
    lines: list[str] = []
    try:
        first = proc.stdout.readline()  # the first printed state: the daemon is up and listening
        lines.append(first)
        out_reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        out_reader.start()
        t0 = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(0, count, batch):
                for d in datagrams[i:i + batch]:
                    s.sendto(d, ("127.0.0.1", listen))
                time.sleep(0.003)  # paced so the receive buffer is not what drops them
            out["send_s"] = round(time.monotonic() - t0, 2)
            states_before = len(labels)
            time.sleep(0.5)
            s.sendto(mute(True), ("127.0.0.1", listen))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (len(labels) > states_before and labels[-1] == rest_label):
                time.sleep(0.02)
            out["mute_heard_after_fuzz"] = bool(len(labels) > states_before and labels[-1] == rest_label)
            out["osc_states_during_fuzz"] = states_before
        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout_s)
        out["stop_ms"] = round((time.monotonic() - t1) * 1000, 1)
        out_reader.join(5)
        err = proc.stderr.read()
    finally:
        proc.kill()
        stop_rx.set()
        rx.close()
    out["exit_code"] = proc.returncode
    printed = [ln.strip() for ln in lines if ln.strip()]
    out["final_state_printed"] = bool(printed) and printed[-1].endswith(" final")
    out["last_line"] = printed[-1] if printed else ""
    out["stderr_bytes"] = len(err)
    out["stderr_tail"] = err[-2000:]
    out["traceback"] = "Traceback" in err
    try:
        out["daemon"] = json.loads(stats_path.read_text())["vrchat_listener"]
    except (OSError, KeyError, ValueError) as exc:
        out["daemon"] = {"error": str(exc)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=32)
    ap.add_argument("--smoke", action="store_true", help="2,000 datagrams, result not saved")
    args = ap.parse_args()
    count = 2000 if args.smoke else args.count
    res = {"machine": machine(), "git": git_rev(), "count": count, "seed": args.seed}
    res["parser_in_process"] = parse_times(fuzz_datagrams(count, args.seed))
    res["daemon_run"] = measure(count, args.seed)
    print(json.dumps({k: v for k, v in res["daemon_run"].items() if k != "stderr_tail"}, indent=2))
    print("parser in process:", json.dumps(res["parser_in_process"]))
    if not args.smoke:
        save("osc_listener_fuzz", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
