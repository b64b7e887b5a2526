"""How long until the daemon's OSCQuery browser finds a VRChat client announced on 127.0.0.1.

A python-oscquery service named like VRChat (``VRChat-Client-...``) is announced on loopback,
then ``ser_daemon.vrchat.oscquery.VRChatBrowser`` is started and the time to its first callback is
measured; repeated ``--runs`` times, each with fresh zeroconf instances.  Also the other way
round: from ``advertise()`` returning to a plain zeroconf browser resolving the daemon's
``_osc._udp`` service, as VRChat would.  Loopback only.

    python benchmarks/oscquery_discovery.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import statistics
import threading
import time
from pathlib import Path

import zeroconf

from ser_daemon.vrchat.oscquery import VRChatBrowser, advertise


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_vrchat_once(limit_s: float = 10.0) -> float:
    prefix = f"VRChat-Client-B{secrets.token_hex(3)}"
    peer = advertise(_udp_port(), name=prefix + "X")
    found = threading.Event()
    try:
        t0 = time.perf_counter()
        browser = VRChatBrowser(lambda svc: found.set(), prefix=prefix)
        ok = found.wait(limit_s)
        dt = time.perf_counter() - t0
        browser.close()
    finally:
        peer.close()
    if not ok:
        raise RuntimeError("not found")
    return dt


def found_by_vrchat_once(limit_s: float = 10.0) -> float:
    name = f"ser-daemon-bench{secrets.token_hex(3)}"
    zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"])
    found = threading.Event()

    class L(zeroconf.ServiceListener):
        def add_service(self, z, type_, n):
            if n.startswith(name) and z.get_service_info(type_, n, timeout=1000):
                found.set()

        update_service = add_service

        def remove_service(self, z, type_, n):
            pass

    browser = zeroconf.ServiceBrowser(zc, "_osc._udp.local.", L())
    try:
        t0 = time.perf_counter()
        ad = advertise(_udp_port(), name=name)
        ok = found.wait(limit_s)
        dt = time.perf_counter() - t0
        ad.close()
    finally:
        browser.cancel()
        zc.close()
    if not ok:
        raise RuntimeError("not found")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    res = {}
    for what, fn in (("daemon_finds_vrchat_s", find_vrchat_once), ("vrchat_finds_daemon_s", found_by_vrchat_once)):
        xs = [fn() for _ in range(args.runs)]
        res[what] = {"median": round(statistics.median(xs), 4), "max": round(max(xs), 4), "n": len(xs)}
    print(json.dumps(res, indent=2))
    out = Path(__file__).parent / "results" / "oscquery_discovery.json"
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
