"""The live web view in a real headless browser (Debian's chromium over its DevTools protocol).

The daemon replays a WAV at real time (200 Hz tone = calm, 3 kHz tone = angry, then silence) to
the page it serves; the test loads the page in chromium, samples the page's DOM while the
stream plays, takes a screenshot and checks what a user would see: connected, the model's labels,
the label going calm -> angry, the SVG face changing with it, voice on then off.  Needs
``apt-get install chromium``; skipped without it unless SER_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd, free_port
from tiny_model import LABELS, tone, write_wav

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]

# What the page exposes, read in one Runtime.evaluate per sample.
_PROBE = """JSON.stringify((() => {
  const v = window.serView || {};
  const q = (id, a) => { const e = document.getElementById(id); return e ? e.getAttribute(a) : null; };
  const b = document.body ? document.body.dataset : {};
  return {
    connected: b.connected || null, label: b.label || null,
    voice: b.voice || null, status: (document.getElementById('status') || {}).textContent || '',
    shownLabel: (document.getElementById('label') || {}).textContent || '',
    legend: [...document.querySelectorAll('#legend [data-label]')].map(e => e.dataset.label),
    legendText: (document.getElementById('legend') || {}).textContent || '',
    messages: v.messages || 0, confidence: v.confidence, final: !!v.final, hellos: v.hellos || 0,
    viewLabel: v.label ?? null, viewVoice: v.voice ?? null, latency: v.latency_ms ?? null,
    latencyText: (document.getElementById('latency') || {}).textContent || '',
    browDown: v.weights && v.weights.arkit ? v.weights.arkit.browDownLeft : null,
    mouth: q('mouth', 'd'), browL: q('brow-left', 'd'), browR: q('brow-right', 'd'),
    eyeL: q('eye-left', 'ry'), eyeR: q('eye-right', 'ry'),
    moodHidden: (document.getElementById('mood-panel') || {classList: {contains: () => false}}).classList.contains('hidden'),
  };
})())"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _require_chromium() -> str:
    path = _chromium()
    if path is None:
        msg = "chromium is not installed (apt-get install --no-install-recommends chromium)"
        if os.environ.get("SER_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " and SER_REQUIRE_BROWSER=1")
        pytest.skip(msg)
    return path


class Cdp:
    """A minimal DevTools protocol client over one browser WebSocket (flattened sessions)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    async def call(self, method: str, params: dict | None = None, session: str | None = None,
                   limit_s: float = 10.0) -> dict:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        end = time.monotonic() + timeout(limit_s)
        for _ in range(100_000):
            left = end - time.monotonic()
            if left <= 0:
                break
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=left))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply and len(self.events) < 10_000:
                self.events.append(reply)
        raise TimeoutError(f"no answer to {method} within {limit_s} s")

    async def open_page(self, url: str, width: int, height: int) -> str:
        """A new tab of ``width`` x ``height`` CSS pixels navigating to ``url``; its session id."""
        target = (await self.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.call("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            await self.call(f"{domain}.enable", {}, session)
        await self.call("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        await self.call("Page.navigate", {"url": url}, session)
        return session

    async def evaluate(self, session: str, expression: str) -> Any:
        res = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page exception: {res['exceptionDetails']}")
        return res["result"].get("value")


def launch_chromium(chromium: str, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """Headless Chromium with DevTools on 127.0.0.1 (a free port it reports in its log); returns it and the log."""
    chrome_log = tmp_path / "chromium.log"
    with chrome_log.open("w") as log_out:
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--mute-audio", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=log_out, stdin=subprocess.DEVNULL,
        )
    return browser, chrome_log


def _devtools_url(log: Path, proc: subprocess.Popen, limit_s: float) -> str:
    end = time.monotonic() + timeout(limit_s)
    while time.monotonic() < end:
        m = re.search(r"DevTools listening on (ws://127\.0\.0\.1:\d+/\S+)", log.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"chromium gave no DevTools URL:\n{log.read_text(errors='replace')[-3000:]}")


def _wait_http(url: str, proc: subprocess.Popen, limit_s: float) -> bytes:
    end = time.monotonic() + timeout(limit_s)
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.read()
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"the daemon did not serve {url} (exit code {proc.poll()})")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def decode_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what chromium writes) to an (h, w, c) array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 2:
            cur = (line + prev) & 0xFF
        elif ftype == 1:  # Sub: a running sum per channel
            cur = (np.cumsum(line.reshape(width, bpp), axis=0) & 0xFF).reshape(stride)
        else:  # Average / Paeth depend on the reconstructed left neighbour: pixel by pixel
            cur_l = [0] * stride
            ln, pv = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur_l[i - bpp] if i >= bpp else 0
                b = pv[i]
                if ftype == 3:
                    cur_l[i] = (ln[i] + ((a + b) >> 1)) & 0xFF
                else:
                    c = pv[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur_l[i] = (ln[i] + pred) & 0xFF
            cur = np.array(cur_l, dtype=np.int32)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)[:, :, :3]


def _brow_inner_y(d: str) -> float:
    """The inner end's y of a brow path "M ox oy Q cx cy ix iy"."""
    return float(re.findall(r"-?\d+(?:\.\d+)?", d)[-1])


def _mouth_corner_y(d: str) -> float:
    """The left corner's y of the mouth path "M lx ly Q ..."."""
    return float(re.findall(r"-?\d+(?:\.\d+)?", d)[1])


async def _watch_page(devtools: str, url: str, shot_path: Path, restart: Callable[[], None],
                      limit_s: float) -> tuple[list[dict], list[dict], Cdp]:
    """Sample the page until the replay ends, then call ``restart`` and sample until it reconnects."""
    from websockets.asyncio.client import connect

    async with connect(devtools, max_size=64 << 20, open_timeout=timeout(10)) as ws:
        cdp = Cdp(ws)
        session = await cdp.open_page(url, 1000, 820)

        samples: list[dict] = []
        after: list[dict] = []
        end = time.monotonic() + timeout(limit_s)
        for _ in range(5000):
            if time.monotonic() > end:
                break
            s = json.loads(await cdp.evaluate(session, _PROBE))
            s["t"] = time.monotonic()
            if after or (samples and samples[-1]["final"] and samples[-1]["connected"] == "false"):
                after.append(s)
                # A fresh daemon on the same port: the page found it again and gets its states.
                if s["hellos"] >= 2 and s["connected"] == "true" and s["messages"] > samples[-1]["messages"]:
                    break
            else:
                samples.append(s)
                if (not shot_path.exists() and s["label"] == "angry" and s["voice"] == "true"
                        and (s["browDown"] or 0) > 0.75):
                    shot = await cdp.call("Page.captureScreenshot", {"format": "png"}, session, limit_s=15)
                    shot_path.write_bytes(base64.b64decode(shot["data"]))
                # The replay has ended and the page noticed: its socket closed after the final state.
                if s["final"] and s["connected"] == "false":
                    restart()
            await asyncio.sleep(0.05)
        return samples, after, cdp


def test_web_view_in_headless_chromium(tiny_bundle, tmp_path) -> None:
    chromium = _require_chromium()
    t_start = time.monotonic()
    wav = write_wav(tmp_path / "calm_angry_silence.wav",
                    np.concatenate([tone(200, 2.0), tone(3000, 3.0), np.zeros(24000, dtype=np.float32)]))
    short = write_wav(tmp_path / "angry_again.wav", tone(3000, 1.5))
    port = free_port()
    page_url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}
    daemons: list[subprocess.Popen] = []

    def start(path: Path, log_name: str) -> subprocess.Popen:
        with (tmp_path / log_name).open("w") as out:
            proc = subprocess.Popen(
                daemon_cmd("--input", str(path), "--web", f"127.0.0.1:{port}", "--no-ws", "--no-osc", "--quiet",
                           "--wait-clients", "1"),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO, env=env,
            )
        daemons.append(proc)
        return proc

    def restart() -> None:
        daemons[0].wait(timeout=timeout(10))  # it exits after its final state
        start(short, "daemon2.out")

    browser = None
    try:
        daemon = start(wav, "daemon.out")
        html = _wait_http(page_url, daemon, limit_s=30).decode()
        assert '<script src="app.js"></script>' in html and "<style" not in html and "style=" not in html

        browser, chrome_log = launch_chromium(chromium, tmp_path)
        devtools = _devtools_url(chrome_log, browser, limit_s=20)
        shot_path = tmp_path / "web_view.png"
        samples, after, cdp = asyncio.run(_watch_page(devtools, page_url, shot_path, restart, limit_s=45))
    finally:
        _stop(browser)
        for proc in daemons:
            _stop(proc)
    log_text = (tmp_path / "daemon.out").read_text(errors="replace")
    assert samples, "no samples read from the page"
    last = samples[-1]

    # No script errors, no Content-Security-Policy violations (inline styles or scripts).
    problems = [e for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"]
    problems += [e for e in cdp.events if e.get("method") == "Log.entryAdded"
                 and e["params"]["entry"].get("level") == "error"
                 and "WebSocket" not in e["params"]["entry"].get("text", "")
                 and not e["params"]["entry"].get("url", "").endswith("/favicon.ico")]
    problems += [e for e in cdp.events if e.get("method") == "Runtime.consoleAPICalled"
                 and e["params"].get("type") == "error"]
    assert not problems, json.dumps(problems)[:3000]

    # Connected, and shows the labels the hello announced.
    live = [s for s in samples if s["connected"] == "true"]
    assert live, f"the page never connected: {last}\n{log_text[-2000:]}"
    assert live[-1]["legend"] == list(LABELS)
    assert all(lab in live[-1]["legendText"] for lab in LABELS)
    assert any(s["status"].startswith("live") for s in live)
    assert all(s["moodHidden"] for s in live), "the mood panel showed without --mood"

    # The label shown goes calm -> angry, on <body> and in the big label alike.
    labels = [s["label"] for s in samples if s["messages"]]
    assert "calm" in labels and "angry" in labels, labels
    first_angry = labels.index("angry")
    assert "calm" in labels[:first_angry], labels
    assert any(s["shownLabel"] == "angry" for s in samples)

    # The face differs between the calm and the angry phase: mouth shape and lowered inner brows.
    calm = [s for s in samples if s["label"] == "calm" and s["voice"] == "true"][-1]
    angry = [s for s in samples if s["label"] == "angry" and s["voice"] == "true" and (s["browDown"] or 0) > 0.5][-1]
    assert calm["mouth"] != angry["mouth"], (calm["mouth"], angry["mouth"])
    assert calm["browL"] != angry["browL"] and calm["browR"] != angry["browR"]
    assert _brow_inner_y(angry["browL"]) > _brow_inner_y(calm["browL"]) + 3  # browDown: a frowning V
    assert _brow_inner_y(angry["browR"]) > _brow_inner_y(calm["browR"]) + 3
    assert _mouth_corner_y(calm["mouth"]) < _mouth_corner_y(angry["mouth"])  # calm smiles, angry presses

    # Voice activity: on while the tones play, off in the silence at the end.
    voices = [s["voice"] for s in samples if s["messages"] and s["connected"] == "true"]
    assert "true" in voices and "false" in voices[voices.index("true"):], voices
    assert any(isinstance(s["latency"], (int, float)) and s["latencyText"].endswith(" ms") for s in samples)

    # When the replay ends the daemon goes away; the page says so, retries with backoff and finds
    # the next daemon on the same port (a fresh hello, new states, live again).
    assert last["final"] and last["connected"] == "false", last
    assert "retrying" in last["status"], last["status"]
    assert after and after[-1]["hellos"] >= 2 and after[-1]["connected"] == "true", (after or [None])[-1]
    assert after[-1]["messages"] > last["messages"] and after[-1]["legend"] == list(LABELS)

    # The screenshot shows something: many colours, the face's skin and the angry red.
    assert shot_path.exists(), "no screenshot was taken in the angry phase"
    img = decode_png(shot_path.read_bytes())
    assert img.shape[0] >= 400 and img.shape[1] >= 600
    flat = img.reshape(-1, 3).astype(np.int32)
    colours, counts = np.unique(flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2], return_counts=True)
    assert len(colours) > 50, f"only {len(colours)} colours: blank page?"
    assert counts.max() < 0.9 * len(flat), "the screenshot is mostly one colour"

    def near(rgb: tuple[int, int, int], tol: int = 12) -> int:
        return int((np.abs(flat - np.array(rgb)).max(axis=1) <= tol).sum())

    assert near((0xF6, 0xD3, 0xB3)) > 2000, "no face (skin colour) in the screenshot"
    assert near((0xE0, 0x48, 0x3E)) > 500, "no angry red (label swatch, bars, chart) in the screenshot"
    assert time.monotonic() - t_start < timeout(60)
