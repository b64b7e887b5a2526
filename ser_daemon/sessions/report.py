"""One HTML page with plots from session logs (the future ``ser-daemon report LOG...``).

The page holds, per session, an emotion timeline strip (the shown label over
time, silence left white) and the valence/arousal trace (last-minute horizon,
and the moment's as a thin line) with the events marked; the share of voiced
time per emotion of each session; and, over several sessions, the trend per
day (voiced-time-weighted mean valence and arousal, talking share).  Each plot
is also a PNG beside the page (``timeline.png``, ``trace.png``, ``shares.png``,
``trend.png``), so it can be pasted elsewhere.  Nothing is fetched from the
network: the page references only its own PNGs.

Needs matplotlib (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import html
import logging
import sys
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import OutputError, SerError, import_failure
from .records import SessionLog, read_session_log

__all__ = ["COLORS", "write_report", "main"]

log = logging.getLogger(__name__)

# The web view's colours (ser_daemon/web/app.js), so a label looks the same everywhere.
COLORS = {
    "neutral": "#9aa3ad", "calm": "#3fb6a8", "happy": "#f2c230", "angry": "#e0483e", "sad": "#4a7fd4",
    "fearful": "#9b6bd1", "fear": "#9b6bd1", "disgust": "#6c9b34", "disgusted": "#6c9b34",
    "surprised": "#f08a2c", "surprise": "#f08a2c", "unsure": "#d5d9de",
}
_FALLBACK = ["#8e6cef", "#e86fb1", "#2fa5d6", "#c9a227", "#5aa469", "#d9663b", "#7b8794"]
MAX_DETAIL_SESSIONS = 12  # sessions drawn in full (timeline, trace); the trend takes all of them


def _color(label: str, order: Sequence[str]) -> str:
    if label in COLORS:
        return COLORS[label]
    return _FALLBACK[list(order).index(label) % len(_FALLBACK)] if label in order else "#7b8794"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise OutputError(import_failure(exc, "matplotlib", "the report's plots need matplotlib: "
                                                            "pip install matplotlib")) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(s: SessionLog) -> str:
    return f"{s.stream or 'stream'} {s.started:%Y-%m-%d %H:%M} UTC"


def _runs(s: SessionLog) -> list[tuple[float, float, str]]:
    """(start, length, label) of voiced stretches with one shown label."""
    out: list[tuple[float, float, str]] = []
    t, labels, voice = s.state_t, s.state_label, s.state_voice
    steps = np.append(np.diff(t), np.median(np.diff(t)) if len(t) > 1 else 0.25).clip(0.0, 2.0)
    for k in range(len(t)):
        if not voice[k]:
            continue
        start = float(t[k]) - float(steps[k])
        if out and out[-1][2] == labels[k] and abs(out[-1][0] + out[-1][1] - start) < 1e-6:
            out[-1] = (out[-1][0], out[-1][1] + float(steps[k]), labels[k])
        else:
            out.append((start, float(steps[k]), labels[k]))
    return out


def _plot_timeline(plt: Any, sessions: Sequence[SessionLog], order: Sequence[str], path: Path) -> None:
    fig, axes = plt.subplots(len(sessions), 1, figsize=(11, 0.9 + 0.7 * len(sessions)), squeeze=False)
    seen: set[str] = set()
    for ax, s in zip(axes[:, 0], sessions):
        runs = _runs(s)
        for lab in dict.fromkeys(r[2] for r in runs):
            ax.broken_barh([(a, b) for a, b, x in runs if x == lab], (0, 1), color=_color(lab, order), label=lab)
            seen.add(lab)
        ax.set_xlim(0, max(1.0, float(s.state_t[-1]) if len(s.state_t) else 1.0))
        ax.set_yticks([])
        ax.set_ylabel(_title(s), rotation=0, ha="right", va="center", fontsize=8)
    axes[-1, 0].set_xlabel("session time, s (white: no voice)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=_color(lab, order)) for lab in order if lab in seen]
    fig.legend(handles, [lab for lab in order if lab in seen], loc="upper center", ncol=min(8, len(handles) or 1),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.88 if len(sessions) < 3 else 0.94))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _series(s: SessionLog, key: str, horizon: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.array([float(m["time"]) for m in s.mood])
    v = np.array([np.nan if (m.get(key) or {}).get(horizon) is None else float(m[key][horizon]) for m in s.mood])
    return t, v


def _plot_trace(plt: Any, sessions: Sequence[SessionLog], path: Path) -> None:
    fig, axes = plt.subplots(len(sessions), 1, figsize=(11, 0.6 + 2.2 * len(sessions)), squeeze=False)
    for ax, s in zip(axes[:, 0], sessions):
        for key, color in (("valence", "#2f7d32"), ("arousal", "#c2185b")):
            t, v = _series(s, key, "minute")
            ax.plot(t, v, color=color, lw=2.0, label=f"{key} (last minute)")
            t, v = _series(s, key, "moment")
            ax.plot(t, v, color=color, lw=0.6, alpha=0.6, label=f"{key} (moment)")
        for e in s.events:
            ax.axvline(float(e["time"]), color="#333333", lw=1.0, ls="--")
            ax.annotate(str(e.get("kind", "?")), (float(e["time"]), 0.97), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=7)
        ax.axhline(0.0, color="#999999", lw=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(_title(s), fontsize=9, loc="left")
        ax.set_ylabel("-1 .. 1")
    axes[0, 0].legend(loc="lower left", fontsize=7, ncol=4, frameon=False)
    axes[-1, 0].set_xlabel("session time, s (dashed: events)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_shares(plt: Any, sessions: Sequence[SessionLog], order: Sequence[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.45 * len(sessions)))
    names = [_title(s) for s in sessions]
    left = np.zeros(len(sessions))
    shares = [s.voiced_shares() for s in sessions]
    for lab in order:
        w = np.array([sh.get(lab, 0.0) for sh in shares])
        if w.any():
            ax.barh(names, w, left=left, color=_color(lab, order), label=lab)
            left += w
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of voiced time per shown emotion")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=8, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def trend_per_day(sessions: Sequence[SessionLog]) -> list[dict[str, Any]]:
    """Per calendar day (UTC): sessions, voiced minutes, voiced-time-weighted valence and arousal, talking share."""
    days: dict[date, list[SessionLog]] = defaultdict(list)
    for s in sessions:
        days[s.started.date()].append(s)
    out = []
    for day in sorted(days):
        group = days[day]
        voiced = np.array([s.duration_s * (s.talking_share() or 0.0) for s in group])
        row: dict[str, Any] = {"day": day.isoformat(), "sessions": len(group), "voiced_min": float(voiced.sum() / 60)}
        for key in ("valence", "arousal"):
            vals = [(s.session_mean(key), w) for s, w in zip(group, voiced)]
            known = [(v, w) for v, w in vals if v is not None and w > 0]
            row[key] = (sum(v * w for v, w in known) / sum(w for _, w in known)) if known else None
        total = sum(s.duration_s for s in group)
        row["talking"] = float(voiced.sum() / total) if total > 0 else None
        out.append(row)
    return out


def _plot_trend(plt: Any, rows: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib.dates as mdates

    fig, ax = plt.subplots(figsize=(11, 3.2))
    days = [date.fromisoformat(r["day"]) for r in rows]
    for key, color in (("valence", "#2f7d32"), ("arousal", "#c2185b"), ("talking", "#1f6feb")):
        ys = [np.nan if r[key] is None else r[key] for r in rows]
        ax.plot(days, ys, marker="o", color=color, label=key + (" (share)" if key == "talking" else ""))
    ax.axhline(0.0, color="#999999", lw=0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlim(days[0] - timedelta(days=1), days[-1] + timedelta(days=1))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=2, maxticks=12))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.xaxis.set_minor_locator(mdates.DayLocator())
    ax.set_title("trend per day (UTC): mean over voiced time", fontsize=9, loc="left")
    ax.legend(loc="lower left", fontsize=8, ncol=3, frameon=False)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(x: float | None, spec: str = "+.2f") -> str:
    return "n/a" if x is None else format(x, spec)


def _page(sessions: Sequence[SessionLog], detail: Sequence[SessionLog], rows: Sequence[dict[str, Any]]) -> str:
    e = html.escape
    summary = "".join(
        f"<tr><td>{e(_title(s))}</td><td>{s.duration_s / 60:.1f}</td><td>{_fmt(s.talking_share(), '.0%')}</td>"
        f"<td>{_fmt(s.session_mean('valence'))}</td><td>{_fmt(s.session_mean('arousal'))}</td>"
        f"<td>{len(s.events)}</td></tr>" for s in sessions)
    events = "".join(
        f"<tr><td>{e(_title(s))}</td><td>{float(ev['time']):.1f}</td><td>{e(str(ev.get('kind')))}</td>"
        f"<td><code>{e(', '.join(f'{k}={v}' for k, v in (ev.get('evidence') or {}).items()))}</code></td></tr>"
        for s in sessions for ev in s.events)
    trend = "".join(
        f"<tr><td>{e(r['day'])}</td><td>{r['sessions']}</td><td>{r['voiced_min']:.1f}</td><td>{_fmt(r['valence'])}</td>"
        f"<td>{_fmt(r['arousal'])}</td><td>{_fmt(r['talking'], '.0%')}</td></tr>" for r in rows)
    more = (f"<p>Timeline and trace show the last {len(detail)} of {len(sessions)} sessions.</p>"
            if len(detail) < len(sessions) else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ser-daemon session report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1d2733; background: #ffffff; }}
img {{ max-width: 100%; border: 1px solid #d5d9de; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #d5d9de; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }}
th {{ background: #f3f5f7; }}
</style></head><body>
<h1>Session report</h1>
<p>{len(sessions)} session(s). Valence: unpleasant (-1) to pleasant (+1); arousal: sleepy (-1) to activated (+1);
both read from the voice only while the user talks (silence is not a mood).</p>
<table><tr><th>session</th><th>minutes</th><th>talking</th><th>valence</th><th>arousal</th><th>events</th></tr>
{summary}</table>
{more}
<h2>Emotion timeline</h2><img id="timeline" src="timeline.png" alt="shown emotion over time per session">
<h2>Valence and arousal, with events</h2><img id="trace" src="trace.png" alt="valence and arousal over time">
<h2>Share per emotion</h2><img id="shares" src="shares.png" alt="share of voiced time per emotion">
<h2>Trend per day</h2><img id="trend" src="trend.png" alt="mean valence, arousal and talking share per day">
<table><tr><th>day (UTC)</th><th>sessions</th><th>voiced minutes</th><th>valence</th><th>arousal</th><th>talking</th></tr>
{trend}</table>
<h2>Events</h2>
<table><tr><th>session</th><th>time, s</th><th>event</th><th>evidence</th></tr>
{events or '<tr><td colspan="4">none</td></tr>'}</table>
</body></html>
"""


def write_report(sessions: Sequence[SessionLog], out_dir: str | Path) -> Path:
    """Write ``index.html`` and its PNGs into ``out_dir`` (made if missing); returns the page's path.

    Raises:
        OutputError: no sessions, matplotlib missing, or the folder cannot be written.
    """
    if not sessions:
        raise OutputError("no session logs to report on")
    plt = _pyplot()
    out = Path(out_dir).expanduser()
    sessions = sorted(sessions, key=lambda s: (s.started, s.stream))
    detail = sessions[-MAX_DETAIL_SESSIONS:]
    order: list[str] = []
    for s in sessions:
        for lab in list(s.header.get("labels") or []) + ["unsure"] + list(s.state_label):
            if lab not in order:
                order.append(lab)
    rows = trend_per_day(sessions)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _plot_timeline(plt, detail, order, out / "timeline.png")
        _plot_trace(plt, detail, out / "trace.png")
        _plot_shares(plt, sessions, order, out / "shares.png")
        _plot_trend(plt, rows, out / "trend.png")
        page = out / "index.html"
        page.write_text(_page(sessions, detail, rows), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the report into {out}: {exc.strerror or exc}") from None
    return page


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ser_daemon.sessions.report LOG... --out DIR``: prints the page's path."""
    p = argparse.ArgumentParser(prog="ser-daemon report", description="One HTML page with plots from session logs.")
    p.add_argument("logs", nargs="+", metavar="LOG", help="session log files (JSON lines)")
    p.add_argument("--out", default="ser-session-report", help="folder for index.html and the PNGs")
    args = p.parse_args(argv)
    try:
        page = write_report([read_session_log(x) for x in args.logs], args.out)
    except SerError as exc:
        print(f"ser-daemon report: {exc}", file=sys.stderr)
        return 2
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
