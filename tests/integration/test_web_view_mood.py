"""The web view's mood panel (``--mood``) in a real headless browser, fed by a real daemon.

The daemon replays a WAV at real time with the tiny test model (200 Hz tone = calm, then 3 kHz
tone = angry, then silence) and ``--mood`` with short horizons from a config file, so that
``delighted`` and ``frustration_rising`` fire within seconds.  It writes the same messages to
``--jsonl``; the test compares what the page shows (the trace's last reading, the list of the
last events) with those lines, and checks the trace and the event marks in a screenshot.  Needs
``apt-get install chromium``; skipped without it unless SER_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time

import numpy as np
import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd, free_port
from test_web_view import Cdp, _devtools_url, _require_chromium, _stop, _wait_http, decode_png, launch_chromium
from tiny_model import MOOD_ARC_TOML, mood_arc_wav

pytestmark = [pytest.mark.needs_tf, pytest.mark.slow]

_PROBE = """JSON.stringify((() => {
  const v = window.serView || {};
  const panel = document.getElementById('mood-panel');
  if (!panel || !v.mood) return {mood: null};
  const r = document.getElementById('mood-chart').getBoundingClientRect();
  return {
    connected: document.body.dataset.connected || null, final: !!v.final, messages: v.messages || 0,
    hidden: panel.classList.contains('hidden'), mood: v.mood || null,
    items: [...document.querySelectorAll('#mood-events li')].map(li => ({kind: li.dataset.kind, text: li.textContent})),
    noEvents: !document.getElementById('mood-no-events').classList.contains('hidden'),
    valenceText: document.getElementById('mood-valence').textContent,
    rect: {x: r.x, y: r.y, width: r.width, height: r.height},
  };
})())"""


async def _watch(devtools: str, url: str, limit_s: float) -> tuple[list[dict], bytes | None, Cdp]:
    """Sample the page until the replay ended (final state, socket closed); a screenshot of the trace then."""
    from websockets.asyncio.client import connect

    async with connect(devtools, max_size=64 << 20, open_timeout=timeout(10)) as ws:
        cdp = Cdp(ws)
        session = await cdp.open_page(url, 1000, 1400)
        samples: list[dict] = []
        shot = None
        end = time.monotonic() + timeout(limit_s)
        for _ in range(5000):
            if time.monotonic() > end:
                break
            s = json.loads(await cdp.evaluate(session, _PROBE))
            if s["mood"] is None:  # the page (its script) is not there yet
                await asyncio.sleep(0.05)
                continue
            samples.append(s)
            if s["final"] and s["connected"] == "false":
                r = s["rect"]
                clip = {"x": r["x"], "y": r["y"], "width": r["width"], "height": r["height"], "scale": 1}
                res = await cdp.call("Page.captureScreenshot", {"format": "png", "clip": clip}, session, limit_s=15)
                shot = base64.b64decode(res["data"])
                break
            await asyncio.sleep(0.05)
        return samples, shot, cdp


def test_mood_trace_and_events_in_headless_chromium(tiny_bundle, tmp_path) -> None:
    chromium = _require_chromium()
    wav = mood_arc_wav(tmp_path / "calm_angry_quiet.wav")
    config = tmp_path / "mood.toml"
    config.write_text(MOOD_ARC_TOML, encoding="utf-8")
    port = free_port()
    page_url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}
    out_path = tmp_path / "daemon.out"
    browser = daemon = None
    try:
        with out_path.open("w") as out:
            daemon = subprocess.Popen(
                daemon_cmd("--input", str(wav), "--web", f"127.0.0.1:{port}", "--no-ws", "--no-osc", "--quiet",
                           "--jsonl", "--config", str(config), "--wait-clients", "1"),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO, env=env,
            )
        _wait_http(page_url, daemon, limit_s=30)
        browser, chrome_log = launch_chromium(chromium, tmp_path)
        devtools = _devtools_url(chrome_log, browser, limit_s=20)
        samples, shot, cdp = asyncio.run(_watch(devtools, page_url, limit_s=45))
        daemon.wait(timeout=timeout(10))
    finally:
        _stop(browser)
        _stop(daemon)
    text = out_path.read_text(errors="replace")
    lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    moods = [m for m in lines if m["type"] == "mood"]
    events = [m for m in lines if m["type"] == "event"]
    kinds = [e["kind"] for e in events]
    assert "delighted" in kinds and "frustration_rising" in kinds, (kinds, text[-2000:])
    assert kinds.index("delighted") < kinds.index("frustration_rising")
    assert samples and shot is not None, f"the replay did not end on the page: {samples[-1:]}"

    problems = [e for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"]
    problems += [e for e in cdp.events if e.get("method") == "Log.entryAdded"
                 and e["params"]["entry"].get("level") == "error"
                 and "WebSocket" not in e["params"]["entry"].get("text", "")
                 and not e["params"]["entry"].get("url", "").endswith("/favicon.ico")]
    assert not problems, json.dumps(problems)[:3000]

    # The panel stays hidden until the first mood message, then shows the daemon's figures.
    assert samples[0]["mood"]["messages"] == 0 and samples[0]["hidden"]
    assert all(not s["hidden"] for s in samples if s["mood"]["messages"])
    last = samples[-1]
    mood = last["mood"]
    assert mood["messages"] == len(moods) > 5 and mood["trace"] == len(moods)
    assert mood["last"]["time"] == moods[-1]["time"]
    assert mood["last"]["valence"] == moods[-1]["valence"]["minute"] < 0  # ended angry
    assert mood["last"]["arousal"] == moods[-1]["arousal"]["minute"] > 0
    assert last["valenceText"].startswith(f"{moods[-1]['valence']['minute']:+.2f}")

    # Every event, in order, with its evidence; listed newest first, frustration marked as such.
    assert [(e["kind"], e["time"], e["evidence"]) for e in mood["events"]] == \
        [(e["kind"], e["time"], e["evidence"]) for e in events]
    assert [i["kind"] for i in last["items"]] == list(reversed(kinds))[:8]
    frustration = last["items"][list(reversed(kinds)).index("frustration_rising")]
    assert "frustration rising" in frustration["text"] and "valence minute" in frustration["text"]
    assert not last["noEvents"]
    # While nothing had fired, the list said so.
    assert any(s["noEvents"] and not s["hidden"] and not s["items"] for s in samples)

    # The screenshot of the trace: the valence (blue) and arousal (orange) lines, the red
    # frustration mark and the green delighted one.
    (tmp_path / "mood_trace.png").write_bytes(shot)  # kept with the test's files, to look at
    img = decode_png(shot)
    assert img.shape[0] >= 150 and img.shape[1] >= 600
    flat = img.reshape(-1, 3).astype(np.int32)

    def near(rgb: tuple[int, int, int], tol: int = 16) -> int:
        return int((np.abs(flat - np.array(rgb)).max(axis=1) <= tol).sum())

    assert near((0x3B, 0x6F, 0xD8)) > 150, "no valence trace"
    assert near((0xE6, 0xA2, 0x3C)) > 150, "no arousal trace"
    assert near((0xE0, 0x48, 0x3E)) > 100, "no frustration_rising mark"
    assert near((0x1F, 0x9D, 0x55)) > 100, "no delighted mark"
