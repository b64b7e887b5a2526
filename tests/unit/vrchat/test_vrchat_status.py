"""Saying what is up with VRChat: the words (pure) and a real daemon against a fake VRChat on 127.0.0.1.

The fake VRChat announces itself as VRChat does (mDNS ``_osc._udp`` and ``_oscjson._tcp``, bound to
127.0.0.1 only, under a prefix of the test's own) and serves an OSCQuery tree over real HTTP whose
avatar parameters the test changes; the daemon's web view is read over a real WebSocket.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from conftest import timeout
from helpers import REPO, UdpReceiver, daemon_cmd, free_port, ws_connect
from tiny_model import tone, write_wav

from ser_daemon.outputs.console import STATUS_MAX_COLUMNS, status_text
from ser_daemon.vrchat.oscquery import tree_paths
from ser_daemon.vrchat.status import VRChatFacts, params_present


# ---------------------------------------------------------------- words (pure)
def _state(**kw: Any):
    from test_messages import make_state

    return make_state(**kw)


def test_the_words_for_each_fact() -> None:
    assert VRChatFacts().problems() == ["VRChat not found (is it running, with OSC enabled?)"]
    assert VRChatFacts().short() == "VRChat: not found"
    found = VRChatFacts(found="VRChat-Client-ABC123")
    assert found.problems() == [] and found.short() == "VRChat: found" and found.to_json()["via"] == "oscquery"
    assert VRChatFacts(heard=True).to_json()["found"] is True
    muted = VRChatFacts(found="x", muted=True)
    assert muted.short() == "VRChat: MUTED" and muted.problems() == ["MUTED in VRChat: the face stays neutral"]
    off = VRChatFacts(found="x", enabled=False, enabled_param="Face/On")
    assert off.short() == "VRChat: Face/On off" and "Face/On is off" in off.problems()[0]
    bare = VRChatFacts(found="x", avatar_has_params=False)
    assert bare.problems() == ["the current avatar has no SER_ parameters"]
    assert bare.short() == "VRChat: no SER_ params on avatar"
    assert VRChatFacts(found="x", avatar_has_params=None).problems() == []  # unknown is not "none"


def test_the_avatar_tree_is_read_for_our_names() -> None:
    tree = {"FULL_PATH": "/avatar", "CONTENTS": {
        "change": {"FULL_PATH": "/avatar/change"},
        "parameters": {"FULL_PATH": "/avatar/parameters", "CONTENTS": {
            "VelocityZ": {"FULL_PATH": "/avatar/parameters/VelocityZ", "TYPE": "f"},
            "Face": {"FULL_PATH": "/avatar/parameters/Face", "CONTENTS": {
                "Emotion": {"FULL_PATH": "/avatar/parameters/Face/Emotion", "TYPE": "i"}}}}}}}
    paths = tree_paths(tree)
    assert "/avatar/parameters/Face/Emotion" in paths and "/avatar/parameters/VelocityZ" in paths
    assert params_present(paths, ["Face/Emotion"]) and not params_present(paths, ["SER_Label", "SER_Intensity"])
    deep: dict = {"FULL_PATH": "/x"}
    for _ in range(5000):  # a hostile tree: bounded, no RecursionError
        deep = {"CONTENTS": {"a": deep}}
    assert tree_paths(deep) == set()
    assert tree_paths(["not", "a", "node"]) == set()


@pytest.mark.parametrize("stream", ["mic", "a-very-long-stream-name-from-an-ingest-client"])
def test_status_line_fits_80_columns_and_keeps_the_vrchat_note(stream: str) -> None:
    st = _state(stream=stream, dropped_windows=123456, overruns=987654, emitted_time=100.5)
    text = status_text(st, 12345, VRChatFacts(found="x", avatar_has_params=False).short())
    assert len(text) < STATUS_MAX_COLUMNS, text
    assert "happy" in text and "voice on" in text and "latency" in text and "VRChat: no SER_ params on avatar" in text
    assert "unsure" in status_text(_state(uncertain=True), 0, "", 79)
    assert len(status_text(st, 0, "VRChat: MUTED", 40)) <= 40


# ---------------------------------------------------------------- a fake VRChat
class FakeVRChat:
    """VRChat's two mDNS services on 127.0.0.1 and its OSCQuery HTTP tree, whose avatar can change."""

    def __init__(self, name: str, osc_port: int) -> None:
        import zeroconf

        self.params: dict[str, str] = {"VelocityZ": "f", "MuteSelf": "T"}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = json.dumps(fake.tree(self.path.split("?", 1)[0])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"])
        addr = [socket.inet_aton("127.0.0.1")]
        self.infos = [
            zeroconf.ServiceInfo("_osc._udp.local.", f"{name}._osc._udp.local.", addresses=addr, port=osc_port,
                                 server=f"{name}.osc.local."),
            zeroconf.ServiceInfo("_oscjson._tcp.local.", f"{name}._oscjson._tcp.local.", addresses=addr,
                                 port=self.http.server_address[1], server=f"{name}.oscjson.local."),
        ]
        for info in self.infos:
            self.zc.register_service(info)

    def tree(self, path: str) -> dict:
        params = {k: {"FULL_PATH": f"/avatar/parameters/{k}", "TYPE": t, "ACCESS": 3} for k, t in self.params.items()}
        node = {"FULL_PATH": "/avatar", "ACCESS": 0, "CONTENTS": {
            "change": {"FULL_PATH": "/avatar/change", "TYPE": "s", "ACCESS": 3},
            "parameters": {"FULL_PATH": "/avatar/parameters", "ACCESS": 0, "CONTENTS": params}}}
        return node if path.rstrip("/") in ("/avatar", "") else {"FULL_PATH": path}

    def close(self) -> None:
        for info in self.infos:
            self.zc.unregister_service(info)
        self.zc.close()
        self.http.shutdown()
        self.http.server_close()


def _send(port: int, address: str, value: object, tag: str) -> None:
    b = OscMessageBuilder(address)
    b.add_arg(value, tag)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b.build().dgram, ("127.0.0.1", port))


class WebClient:
    """A real WebSocket client of the daemon's web view, in a thread; keeps every vrchat fact it hears."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.facts: list[dict] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()

    async def _run(self) -> None:
        try:
            ws = await ws_connect(self.port, "/ws", limit_s=30, open_timeout=2)
        except AssertionError:
            return  # no web view came up: the test finds no messages and says so
        async with ws:
            while not self.done.is_set():
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except asyncio.TimeoutError:
                    continue
                except Exception:
                    return
                if msg.get("type") == "hello" and "vrchat" in msg:
                    self.facts.append(msg["vrchat"])
                elif msg.get("type") == "vrchat":
                    self.facts.append(msg)

    def wait_for(self, cond, limit_s: float) -> dict:
        deadline = time.monotonic() + timeout(limit_s)
        while time.monotonic() < deadline:
            for f in reversed(self.facts):
                if cond(f):
                    return f
            time.sleep(0.05)
        raise AssertionError(f"no such VRChat fact within {limit_s} s: {self.facts[-3:]}")

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout(5))


def _daemon_listen_port(prefix_free_name: str, limit_s: float) -> int:
    """The daemon's OSC listener, found over mDNS the way VRChat finds it."""
    import zeroconf

    zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"])
    found: list[int] = []

    class L(zeroconf.ServiceListener):
        def add_service(self, z, type_, name):
            if name.startswith(prefix_free_name):
                info = z.get_service_info(type_, name, timeout=1000)
                if info is not None:
                    found.append(info.port)

        update_service = add_service

        def remove_service(self, z, type_, name):
            pass

    browser = zeroconf.ServiceBrowser(zc, "_osc._udp.local.", L())
    try:
        deadline = time.monotonic() + timeout(limit_s)
        while not found and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        browser.cancel()
        zc.close()
    assert found, "the daemon's OSC listener was not announced"
    return found[-1]


@pytest.mark.needs_tf
@pytest.mark.slow
def test_vrchat_found_muted_off_and_an_avatar_without_our_parameters(tiny_bundle, tmp_path) -> None:
    pytest.importorskip("zeroconf")
    prefix = f"VRChat-Client-S{secrets.token_hex(3)}"
    vrchat_rx = UdpReceiver()
    fake = FakeVRChat(prefix + "A1B2C3", vrchat_rx.port)
    web = free_port()
    wav = write_wav(tmp_path / "angry.wav", tone(3000, 30.0))
    proc = subprocess.Popen(
        daemon_cmd("--input", str(wav), "--osc", "vrchat", "--vrchat-listen", str(free_port(socket.SOCK_DGRAM)),
                   "--no-ws", "--web", str(web)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle), "SER_VRCHAT_SERVICE_PREFIX": prefix},
    )
    client = WebClient(web)
    try:
        # Found over OSCQuery; its tree lists no SER_ parameter: said in the web view.
        bare = client.wait_for(lambda f: f["avatar_has_params"] is False, 30)
        assert bare["found"] and bare["via"] == "oscquery"
        assert "the current avatar has no SER_ parameters" in bare["problems"]
        # The user uploads the parameters and changes avatar: checked again on /avatar/change.
        listen = _daemon_listen_port("ser-daemon-", 10)
        fake.params.update({"SER_Label": "i", "SER_Intensity": "f"})
        _send(listen, "/avatar/change", "avtr_with_params", "s")
        good = client.wait_for(lambda f: f["avatar_has_params"] is True, 10)
        assert good["avatar"] == "avtr_with_params" and good["problems"] == []
        _send(listen, "/avatar/parameters/MuteSelf", True, "T")
        muted = client.wait_for(lambda f: f["muted"], 10)
        assert muted["text"] == "VRChat: MUTED"
        _send(listen, "/avatar/parameters/MuteSelf", False, "F")
        _send(listen, "/avatar/parameters/SER_Enabled", False, "F")
        off = client.wait_for(lambda f: not f["enabled"] and not f["muted"], 10)
        assert any("SER_Enabled is off" in p for p in off["problems"])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout(15))
    finally:
        proc.kill()
        client.close()
        fake.close()
        vrchat_rx.close()
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert "OSC: VRChat avatar parameters to 127.0.0.1:9000" in lines, err
    assert any(ln.startswith(f"VRChat: found {prefix}A1B2C3 over OSCQuery; avatar parameters go to "
                             f"127.0.0.1:{vrchat_rx.port}") for ln in lines), err
    assert "has none of the parameters" in err  # the warning says the same in the log


@pytest.mark.needs_tf
@pytest.mark.slow
def test_no_vrchat_says_so_and_where_it_falls_back(tiny_bundle, tmp_path) -> None:
    rx = UdpReceiver()
    fallback = free_port(socket.SOCK_DGRAM)
    wav = write_wav(tmp_path / "angry.wav", tone(3000, 6.0))
    r = subprocess.run(
        daemon_cmd("--input", str(wav), "--osc", f"vrchat:{rx.port}", "--vrchat-listen", str(fallback), "--no-ws"),
        capture_output=True, text=True, cwd=REPO, timeout=timeout(60),
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle),
             "SER_VRCHAT_SERVICE_PREFIX": f"VRChat-Client-Nobody{secrets.token_hex(3)}"},
    )
    rx.collect(time.monotonic() + 0.5, stop_after_idle=0.2)
    rx.close()
    assert r.returncode == 0, r.stderr
    assert f"OSC: VRChat avatar parameters to 127.0.0.1:{rx.port}" in r.stderr.splitlines()
    assert (f"VRChat: no VRChat answered over OSCQuery within 3 s; avatar parameters go to "
            f"127.0.0.1:{rx.port}, listening on 127.0.0.1:{fallback}") in r.stderr.splitlines()
    assert rx.packets, "--osc vrchat:PORT sent nothing (read as a host called 'vrchat')"
