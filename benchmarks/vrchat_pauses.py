"""What a VRChat avatar sees through pauses: ``SER_Label`` over time from a real replay.

Runs the real CLI (``python -m ser_daemon --input WAV --osc vrchat@127.0.0.1:PORT``, real time,
OSCQuery and the VRChat listener off) into a UDP socket on 127.0.0.1 and prints, per
received value, the seconds since the first packet and ``SER_Label`` / ``SER_Intensity``; then
how often ``SER_Label`` fell to 0 after having shown a class.

``--code DIR`` runs another checkout (e.g. the unmodified main) with the same receiver, so
before and after are measured the same way:

    python benchmarks/vrchat_pauses.py                          # this checkout, the demo recording
    python benchmarks/vrchat_pauses.py --code /work/main        # another checkout
    python benchmarks/vrchat_pauses.py --wav speech.wav --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from pythonosc.osc_packet import OscPacket

REPO = Path(__file__).resolve().parent.parent


def run(code: Path, wav: Path, extra: list[str], limit_s: float) -> list[tuple[float, str, object]]:
    """Replay ``wav`` through the CLI of checkout ``code``; return (seconds, parameter, value) as received."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "ser_daemon", "--input", str(wav), "--osc", f"vrchat@127.0.0.1:{port}",
           "--no-oscquery", "--vrchat-listen", "0", "--no-ws", "--quiet", *extra]
    proc = subprocess.Popen(cmd, env=env, cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out: list[tuple[float, str, object]] = []
    t0 = None
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if proc.poll() is not None:
                    break
                continue
            now = time.monotonic()
            t0 = now if t0 is None else t0
            for m in OscPacket(data).messages:
                name = m.message.address.rsplit("/", 1)[-1]
                out.append((round(now - t0, 2), name, m.message.params[0] if m.message.params else None))
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)
        sock.close()
    if proc.returncode not in (0, None):
        raise SystemExit(f"ser-daemon exited {proc.returncode}: {proc.stderr.read()[-800:] if proc.stderr else ''}")
    return out


def drops(values: list[tuple[float, str, object]], param: str = "SER_Label") -> list[float]:
    """Times at which ``param`` went from a class (non-zero) to 0, the final packet excluded."""
    seq = [(t, v) for t, n, v in values if n == param]
    return [t for (t, v), (_, prev) in zip(seq[1:-1], seq[:-2]) if v == 0 and prev != 0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=REPO, help="checkout to run (default: this one)")
    ap.add_argument("--wav", type=Path, default=REPO / "ser_daemon" / "data" / "demo.wav")
    ap.add_argument("--json", type=Path, help="also write the timeline here")
    ap.add_argument("--limit-s", type=float, default=180.0)
    ap.add_argument("extra", nargs="*", help="more ser-daemon options (after --)")
    a = ap.parse_args()
    values = run(a.code.resolve(), a.wav.resolve(), a.extra, a.limit_s)
    for t, name, v in values:
        if name in ("SER_Label", "SER_Voice"):
            print(f"{t:7.2f}s  {name:<10s} {v}")
    d = drops(values)
    labels = [v for _, n, v in values if n == "SER_Label"]
    print(f"SER_Label values sent: {len(labels)}; fell to 0 after a class {len(d)} times"
          + (f" (at {', '.join(f'{t:.1f}' for t in d)} s)" if d else ""))
    if a.json:
        a.json.write_text(json.dumps({"code": str(a.code), "wav": str(a.wav), "drops_s": d,
                                      "values": values}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
