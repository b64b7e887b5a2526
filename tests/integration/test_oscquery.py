"""OSCQuery against a real OSCQuery peer on 127.0.0.1: python-oscquery's own service plays VRChat.

mDNS here is bound to 127.0.0.1 only (the daemon's and the test's), nothing multicasts on another
interface.  Each test names its fake VRChat with its own prefix (SER_VRCHAT_SERVICE_PREFIX), so
two test runs on one machine do not find each other's.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from conftest import timeout
from helpers import REPO, UdpReceiver, daemon_cmd, free_port
from tiny_model import tone, write_wav

zeroconf = pytest.importorskip("zeroconf")
from ser_daemon.vrchat.oscquery import advertise  # noqa: E402

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]

NEUTRAL, ANGRY = 1, 4  # SER_Label of the tiny model's classes (1 + index in tiny_model.LABELS)


def _find_daemon(limit_s: float) -> tuple[str, int, int]:
    """Browse mDNS on loopback like VRChat does: the daemon's OSC port and OSCQuery HTTP port."""
    zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"])
    found: dict[str, int] = {}

    class L(zeroconf.ServiceListener):
        def add_service(self, z, type_, name):
            if name.startswith("ser-daemon-"):
                info = z.get_service_info(type_, name, timeout=1000)
                if info is not None:
                    found[type_ + name.split(".", 1)[0]] = info.port

        update_service = add_service

        def remove_service(self, z, type_, name):
            pass

    browser = zeroconf.ServiceBrowser(zc, ["_osc._udp.local.", "_oscjson._tcp.local."], L())
    try:
        deadline = time.monotonic() + timeout(limit_s)
        while time.monotonic() < deadline:
            names = {k.split("local.", 1)[1] for k in found}
            for n in names:
                osc, http = found.get(f"_osc._udp.local.{n}"), found.get(f"_oscjson._tcp.local.{n}")
                if osc and http:
                    return n, osc, http
            time.sleep(0.05)
    finally:
        browser.cancel()
        zc.close()
    raise AssertionError(f"the daemon was not found over mDNS within {limit_s} s: {found}")


def _send(port: int, address: str, *args: tuple[object, str]) -> None:
    b = OscMessageBuilder(address)
    for v, t in args:
        b.add_arg(v, t)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b.build().dgram, ("127.0.0.1", port))


def _labels(rx: UdpReceiver) -> list[int]:
    return [OscMessage(d).params[0] for _, d in rx.packets if OscMessage(d).address == "/avatar/parameters/SER_Label"]


def _collect_until(rx: UdpReceiver, cond, limit_s: float) -> bool:
    deadline = time.monotonic() + timeout(limit_s)
    while time.monotonic() < deadline:
        rx.collect(time.monotonic() + 0.1)
        if cond():
            return True
    return False


def test_found_by_and_finding_vrchat_beside_other_osc_apps(tiny_bundle, tmp_path) -> None:
    prefix = f"VRChat-Client-T{secrets.token_hex(3)}"
    vrchat_rx = UdpReceiver()  # the fake VRChat's OSC input
    peer = advertise(vrchat_rx.port, name=prefix + "A1B2C3")  # python-oscquery's service, on 127.0.0.1
    app_a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # another OSC app, there before the daemon
    app_a.bind(("127.0.0.1", 0))
    fallback = free_port(kind=socket.SOCK_DGRAM)
    wav = write_wav(tmp_path / "angry.wav", tone(3000, 14.0))
    proc = subprocess.Popen(
        daemon_cmd("--input", str(wav), "--osc", "vrchat", "--vrchat-listen", str(fallback), "--no-ws", "--quiet",
                   "--log-level", "info"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle), "SER_VRCHAT_SERVICE_PREFIX": prefix},
    )
    app_b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # 1. The daemon found "VRChat" over OSCQuery and sends to the port it advertised (not 9000).
        assert _collect_until(vrchat_rx, lambda: ANGRY in _labels(vrchat_rx), 20), _labels(vrchat_rx)
        # 2. VRChat finds the daemon: an OSC port and an OSCQuery HTTP server that lists /avatar.
        name, osc_port, http_port = _find_daemon(10)
        assert osc_port != fallback
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/?HOST_INFO", timeout=5) as r:
            host_info = json.loads(r.read())
        assert host_info["OSC_PORT"] == osc_port and host_info["OSC_IP"] == "127.0.0.1"
        for address in ("/avatar/change", "/avatar/parameters/MuteSelf", "/avatar/parameters/SER_Enabled"):
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}{address}", timeout=5) as r:
                assert json.loads(r.read())["FULL_PATH"] == address
        # Only the tree is served: the daemon's working folder is not (HEAD was SimpleHTTPRequestHandler's).
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{http_port}/README.md", method="HEAD"),
                                   timeout=5)
        assert refused.value.code == 405
        # 3. What VRChat sends to that port is heard: MuteSelf silences the face.
        _send(osc_port, "/avatar/parameters/MuteSelf", (True, "T"))
        n = len(_labels(vrchat_rx))
        assert _collect_until(vrchat_rx, lambda: len(_labels(vrchat_rx)) > n and _labels(vrchat_rx)[-1] == NEUTRAL, 5)
        # 4. Another OSC app started now can have the classic port: the daemon never takes it, not even
        #    after its fallback delay (3 s) ran out, because VRChat answered over OSCQuery.
        vrchat_rx.collect(time.monotonic() + 3.5)
        app_b.bind(("127.0.0.1", fallback))  # would raise "address in use" if the daemon held it
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout(10))
    finally:
        proc.kill()
        peer.close()
        for s in (app_a, app_b):
            s.close()
        vrchat_rx.close()
    assert proc.returncode == 0, err
    assert "in use" not in err and "OSCQuery: found" in err


def test_no_oscquery_peer_falls_back_to_the_classic_port(tiny_bundle, tmp_path) -> None:
    rx = UdpReceiver()
    fallback = free_port(kind=socket.SOCK_DGRAM)
    wav = write_wav(tmp_path / "angry.wav", tone(3000, 12.0))
    proc = subprocess.Popen(
        daemon_cmd("--input", str(wav), "--osc", f"vrchat@127.0.0.1:{rx.port}", "--vrchat-listen", str(fallback),
                   "--no-ws", "--quiet"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle),
             "SER_VRCHAT_SERVICE_PREFIX": f"VRChat-Client-Nobody{secrets.token_hex(3)}"},
    )
    try:
        assert _collect_until(rx, lambda: ANGRY in _labels(rx), 20)

        def taken() -> bool:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", fallback))
                except OSError:
                    return True
                return False

        assert _collect_until(rx, taken, 10), "the daemon did not fall back to the classic port"
        _send(fallback, "/avatar/parameters/MuteSelf", (True, "T"))
        n = len(_labels(rx))
        assert _collect_until(rx, lambda: len(_labels(rx)) > n and _labels(rx)[-1] == NEUTRAL, 5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout(10))
    finally:
        proc.kill()
        rx.close()
    assert proc.returncode == 0, err
