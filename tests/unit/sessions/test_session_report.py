"""Session logs (the record format, read back) and the HTML report, rendered in headless Chromium.

The logs come from the scripted arc of test_mood (a fake classifier of known outputs) fed through the
tracker, the event detector and the record encoders, as the daemon would write them.  The report is
written by the module's own CLI entry point, loaded from disk by Chromium (file://, no server) and
checked on its screenshot: the page shows plots, not a blank or broken page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import timeout
from ser_daemon.errors import ConfigError
from ser_daemon.core.mood import MoodTracker
from ser_daemon.core.mood_events import MoodEventDetector
from ser_daemon.outputs.mood_messages import event_json, mood_json
from ser_daemon.sessions.records import read_session_log, session_header, state_record
from ser_daemon.core.state import EmotionState
from test_mood import ARC, HAPPY, LABELS, NEUTRAL, PINNED, script

RATE = 16000


def write_log(path: Path, phases, started: datetime, stream: str = "mic") -> Path:
    tracker, detector = MoodTracker(LABELS, PINNED, stream=stream), MoodEventDetector(PINNED)
    lines = [session_header(stream=stream, labels=LABELS, started_utc=started, sample_rate=RATE, model="test")]
    for seq, (t, p) in enumerate(script(phases)):
        voiced = p is not None
        probs = tuple(float(x) for x in (p if voiced else NEUTRAL))
        st = EmotionState(stream=stream, seq=seq, labels=LABELS, label=LABELS[int(np.argmax(probs))],
                          confidence=max(probs), raw=probs if voiced else (), smoothed=probs, voice_active=voiced,
                          end_sample=int(round(t * RATE)), audio_time=t, emitted_time=t)
        lines.append(state_record(st, RATE))
        reading = tracker.update_state(st, RATE)
        if seq % 4 == 0:  # one mood record a second is plenty for a log
            lines.append(mood_json(reading))
        lines.extend(event_json(e) for e in detector.update(reading))
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


DAY = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)


def test_a_log_reads_back_with_states_mood_and_events(tmp_path: Path) -> None:
    log = read_session_log(write_log(tmp_path / "a.jsonl", ARC, DAY))
    assert log.stream == "mic" and log.started == DAY and log.header["labels"] == list(LABELS)
    assert len(log.state_t) == 600 * 4 and log.duration_s == pytest.approx(600.0 - 0.25)
    assert [e["kind"] for e in log.events] == ["frustration_rising", "delighted", "recovered", "disengaging"]
    assert log.talking_share() == pytest.approx(480 / 600, abs=0.01)
    shares = log.voiced_shares()
    assert shares["happy"] == pytest.approx(180 / 480, abs=0.01) and sum(shares.values()) == pytest.approx(1.0)
    assert log.session_mean("valence") is not None
    # No record holds audio: every state record has exactly the documented fields.
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert {tuple(sorted(x)) for x in lines if x["type"] == "state"} == {
        ("confidence", "label", "t", "type", "uncertain", "voice")}


def test_the_reader_is_strict_about_the_header_and_tolerant_of_a_cut_last_line(tmp_path: Path) -> None:
    good = write_log(tmp_path / "a.jsonl", [(20, HAPPY)], DAY)
    text = good.read_text()
    cut = tmp_path / "cut.jsonl"
    cut.write_text(text + '{"type": "state", "t": 99', encoding="utf-8")  # the writer stopped mid-line
    assert len(read_session_log(cut).state_t) == len(read_session_log(good).state_t)
    newer = tmp_path / "newer.jsonl"
    newer.write_text(text + '{"type": "something_new", "x": 1}\n', encoding="utf-8")
    assert len(read_session_log(newer).state_t) == 80
    cases = {
        "first line is not": '{"type": "state", "t": 1}\n',
        "version 2": text.replace('"version": 1', '"version": 2', 1),
        r"bad.jsonl:3: not JSON": "\n".join(text.splitlines()[:2] + ["{oops", *text.splitlines()[2:]]) + "\n",
        "record without its time": text + '{"type": "event", "kind": "x"}\n',
        "empty": "",
    }
    for message, body in cases.items():
        bad = tmp_path / "bad.jsonl"
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            read_session_log(bad)
    with pytest.raises(ConfigError, match="no such file"):
        read_session_log(tmp_path / "missing.jsonl")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    msg = "chromium is not installed (apt-get install --no-install-recommends chromium)"
    if os.environ.get("SER_REQUIRE_BROWSER") == "1":
        pytest.fail(msg + " and SER_REQUIRE_BROWSER=1")
    pytest.skip(msg)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from ser_daemon.sessions.report import main

    logs = [write_log(tmp_path / "day1.jsonl", ARC, DAY),
            write_log(tmp_path / "day1b.jsonl", [(60, NEUTRAL), (60, HAPPY), (30, None)], DAY + timedelta(hours=3)),
            write_log(tmp_path / "day2.jsonl", [(90, HAPPY), (90, None)], DAY + timedelta(days=1), stream="s2")]
    out = tmp_path / "report"
    assert main([str(p) for p in logs] + ["--out", str(out)]) == 0
    page = out / "index.html"
    text = page.read_text(encoding="utf-8")
    for name in ("timeline", "trace", "shares", "trend"):
        png = out / f"{name}.png"
        assert png.stat().st_size > 5000, name
        assert f'src="{name}.png"' in text
        img = imread(png)
        assert img.shape[0] > 100 and img.shape[1] > 500
    assert "frustration_rising" in text and "2026-12-02" in text and "http" not in text.replace("https://", "")

    chromium = _chromium()
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,2400",
         "--virtual-time-budget=5000", f"--screenshot={shot}", page.as_uri()],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout(60),
        check=True,
    )
    rgb = (imread(shot)[:, :, :3] * 255).round().astype(np.int32)
    flat = rgb.reshape(-1, 3)
    codes = flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]
    _, counts = np.unique(codes, return_counts=True)
    assert len(counts) > 200, "the screenshot has few colours: no plots drawn"
    assert counts.max() < 0.9 * len(flat), "the screenshot is mostly one colour"

    def near(hex_color: str, tol: int = 10) -> int:
        target = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(flat - target).max(axis=1) <= tol).sum())

    # The timeline strip's angry red and happy yellow, and the trace's valence green, are on screen.
    assert near("#e0483e") > 500 and near("#f2c230") > 500, "no emotion timeline in the screenshot"
    assert near("#2f7d32") > 200, "no valence trace in the screenshot"
