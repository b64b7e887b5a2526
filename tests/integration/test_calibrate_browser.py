"""The web view's Calibrate button in headless Chromium, against a daemon replaying speech (--input --loop).

The test clicks through the page as a user would (Calibrate, a profile name,
Start, Record/Stop, Skip, Finish), reads what the page shows (prompt, refusal,
progress, the profile in use) and checks the profile file the daemon wrote.
Needs chromium, espeak-ng and sox; skipped without chromium unless
SER_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from conftest import timeout
from helpers import REPO  # noqa: F401  (tests run from the repository)
from test_calibrate_web import speech_loop_wav, start_daemon, stop_daemon
from test_web_view import Cdp, _devtools_url, _require_chromium, _stop, _wait_http, decode_png, launch_chromium

pytestmark = [pytest.mark.slow]

_PROBE = """JSON.stringify((() => { try {
  const v = window.serView || {};
  const c = v.calibrate || {};
  const t = id => (document.getElementById(id) || {}).textContent || '';
  const hidden = id => getComputedStyle(document.getElementById(id)).display === 'none';
  return {
    connected: document.body.dataset.connected, profile: v.profile ?? null, state: c.state, label: c.label,
    accepted: c.accepted, attempt: c.attempt, events: c.events || [], levels: c.levels || 0,
    kind: c.kind, message: t('cal-message'), step: t('cal-step'), cue: t('cal-cue'), sentence: t('cal-sentence'),
    record: t('cal-record'), profileName: t('profile-name'), panelHidden: hidden('calibrate'),
    runHidden: hidden('cal-run'), formHidden: hidden('cal-form'), calOpenDisabled: document.getElementById('cal-open').disabled,
    levelWidth: document.getElementById('cal-level').style.width,
    progressWidth: document.getElementById('cal-progress').style.width,
  };
} catch (e) { return {loading: String(e)}; } })())"""


async def _drive(devtools: str, url: str, shot: Path, limit_s: float) -> tuple[list[dict], Cdp]:
    from websockets.asyncio.client import connect

    async with connect(devtools, max_size=64 << 20, open_timeout=timeout(10)) as ws:
        cdp = Cdp(ws)
        session = await cdp.open_page(url, 1000, 900)
        seen: list[dict] = []
        end = time.monotonic() + timeout(limit_s)

        async def probe() -> dict:
            s = json.loads(await cdp.evaluate(session, _PROBE))
            seen.append(s)
            return s

        async def until(pred: Callable[[dict], bool], what: str, limit: float = 20.0) -> dict:
            stop = min(end, time.monotonic() + timeout(limit))
            for _ in range(10_000):
                s = await probe()
                if "loading" not in s and pred(s):
                    return s
                if time.monotonic() > stop:
                    break
                await asyncio.sleep(0.05)
            raise AssertionError(f"the page never showed {what}: {seen[-1] if seen else None}")

        async def click(element: str) -> None:
            await cdp.evaluate(session, f"document.getElementById({element!r}).click()")

        first = await until(lambda s: s["connected"] == "true" and not s["calOpenDisabled"], "a live connection", 30)
        assert first["panelHidden"] and first["profile"] is None
        await click("cal-open")
        await until(lambda s: not s["panelHidden"] and s["runHidden"], "the calibrate panel")
        await cdp.evaluate(session, "document.getElementById('cal-profile').value = 'web-me'")
        await click("cal-start")
        step = await until(lambda s: s["state"] == "ready" and s["label"] == "neutral", "the first prompt")
        assert step["formHidden"] and not step["runHidden"] and step["step"].startswith("step 1 of 10")
        assert "everyday voice" in step["cue"] and step["sentence"].endswith(".")
        # Record and stop at once: refused with the reason, the same step again.
        await click("cal-record")
        await until(lambda s: s["state"] == "recording" and s["record"] == "Stop", "recording")
        await click("cal-record")
        refused = await until(lambda s: s["kind"] == "refused", "a refusal")
        assert "too short" in refused["message"]
        await until(lambda s: "(try 2)" in s["step"], "the step asked again")
        # A real take (it stops by itself after the sentence), two skips, a delighted take, Finish.
        await click("cal-record")
        await until(lambda s: s["levels"] > 5 and s["levelWidth"] not in ("", "0%", "0.0%"), "the level meter")
        await until(lambda s: s["accepted"] == 1 and s["state"] == "ready", "an accepted take", 20)
        await click("cal-skip")
        await until(lambda s: s["step"].startswith("step 3 of 10"), "step 3")
        await click("cal-skip")
        happy = await until(lambda s: s["label"] == "happy", "the happy step")
        assert "delighted" in happy["cue"] and float(happy["progressWidth"].rstrip("%")) == 30.0
        await click("cal-record")
        await until(lambda s: s["state"] == "recording", "the happy take recording")
        png = await cdp.call("Page.captureScreenshot", {"format": "png"}, session, limit_s=15)
        shot.write_bytes(base64.b64decode(png["data"]))
        await until(lambda s: s["accepted"] == 2 and s["state"] == "ready", "the second take", 20)
        await click("cal-finish")
        await until(lambda s: s["profile"] == "web-me" and s["kind"] == "active", "the profile in use", 30)
        return seen, cdp


def test_calibrate_in_headless_chromium(tmp_path) -> None:
    chromium = _require_chromium()
    wav = speech_loop_wav(tmp_path)
    data = tmp_path / "data"
    daemon, port = start_daemon(wav, data, tmp_path / "daemon.log", "--no-ws")
    url = f"http://127.0.0.1:{port}/"
    browser = None
    try:
        html = _wait_http(url, daemon, limit_s=30).decode()
        assert 'id="cal-open"' in html and "style=" not in html
        browser, chrome_log = launch_chromium(chromium, tmp_path)
        devtools = _devtools_url(chrome_log, browser, limit_s=20)
        shot = tmp_path / "calibrate.png"
        seen, cdp = asyncio.run(_drive(devtools, url, shot, limit_s=120))
    finally:
        _stop(browser)
        code = stop_daemon(daemon)
    log = (tmp_path / "daemon.log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    last = seen[-1]
    assert last["profileName"] == "profile: web-me" and "saved and in use" in last["message"]
    assert not last["formHidden"] and last["runHidden"]
    events = last["events"]
    for kind in ("started", "step", "recording", "refused", "accepted", "skipped", "done", "fitting", "saved", "active"):
        assert kind in events, (kind, events)
    # No script errors and no Content-Security-Policy violations.
    problems: list[Any] = [e for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"]
    problems += [e for e in cdp.events if e.get("method") == "Log.entryAdded"
                 and e["params"]["entry"].get("level") == "error"
                 and "WebSocket" not in e["params"]["entry"].get("text", "")
                 and not e["params"]["entry"].get("url", "").endswith("/favicon.ico")]
    assert not problems, json.dumps(problems)[:3000]
    img = decode_png(shot.read_bytes())  # the panel in the recording state: not a blank page
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    profile = json.loads((data / "ser-daemon" / "profiles" / "web-me.json").read_text())
    assert sorted(profile["takes"]) == ["happy", "neutral"] and profile["head"] is not None
    assert "stream sentence now uses profile web-me" in log
