"""``ser-daemon enroll --profile NAME --device N``: the guided session at a microphone, in a terminal.

A thin adapter around :class:`ser_daemon.profiles.guided.GuidedSession`: the
microphone is the daemon's own :class:`~ser_daemon.audio.sources.DeviceSource`
(found with ``resolve_device``, the same ``--device``/``--host-api`` rules);
the user's keys are whole lines on stdin (Enter = record or stop, ``s`` =
skip, ``q`` = finish now; end of input finishes too), so a script or a test
drives it by writing lines.  Prompts, refusals and a live level meter with a
progress bar go to stderr: one rewritten line on a terminal, plain lines
otherwise.  The summary line goes to stdout, as in enrollment from files.
Nothing is written unless at least one take was accepted.
"""

from __future__ import annotations

import argparse
import logging
import queue
import sys
import threading
import time
from pathlib import Path
from typing import IO, Callable

import numpy as np

from ..errors import ProfileError
from .guided import Event, GuidedSession, MonoTap, event_line, meter_line, plan_steps

__all__ = ["run_guided", "record_session", "Display", "MAX_SESSION_S"]

log = logging.getLogger(__name__)

MAX_SESSION_S = 1800.0  # a guided session left alone this long finishes by itself
POLL_S = 0.05
RING_SECONDS = 4.0


class Display:
    """Shows events on a text stream: a rewritten meter line on a TTY, plain lines otherwise."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        try:
            self.tty = out.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._meter_len = 0

    def _clear_meter(self) -> None:
        if self._meter_len:
            self.out.write("\r" + " " * self._meter_len + "\r")
            self._meter_len = 0

    def line(self, text: str) -> None:
        if self.tty:
            self._clear_meter()
        self.out.write(text + "\n")
        self.out.flush()

    def show(self, events: list[Event], session: GuidedSession) -> None:
        for e in events:
            text = event_line(e)
            if text is not None:
                self.line(text)
        if self.tty and events and session.state != "done":
            meter = meter_line(session.progress(), session.step)
            # Carriage return and spaces, no ANSI codes: the classic Windows console prints those.
            self.out.write("\r" + meter + " " * max(0, self._meter_len - len(meter)))
            self._meter_len = len(meter)
            self.out.flush()


def _read_lines(stream: IO[str], into: "queue.SimpleQueue[str | None]") -> None:
    """Stdin reader thread: one item per line, None at end of input."""
    try:
        for line in stream:
            into.put(line.strip().lower())
    except (OSError, ValueError):
        pass
    into.put(None)


def _command(session: GuidedSession, line: str | None, display: Display) -> list[Event]:
    if line is None or line in ("q", "quit", "finish"):
        return session.finish()
    if line in ("s", "skip"):
        return session.skip()
    if line == "":
        return session.stop() if session.state == "recording" else session.record()
    display.line(f"  ({line!r}? Enter = record or stop, s = skip, q = finish now)")
    return []


def record_session(session: GuidedSession, read: Callable[[], np.ndarray], wake: threading.Event,
                   commands: "queue.SimpleQueue[str | None]", display: Display,
                   clock: Callable[[], float] = time.monotonic, max_session_s: float = MAX_SESSION_S) -> None:
    """Run the session until it is done: audio from ``read`` (mono, model rate), commands from ``commands``."""
    display.show(session.start(), session)
    end = clock() + max_session_s
    while session.state != "done":
        if clock() > end:
            display.line(f"no answer for {max_session_s:.0f} s: finishing")
            display.show(session.finish(), session)
            break
        wake.wait(POLL_S)
        wake.clear()
        display.show(session.feed(read()), session)
        while session.state != "done":
            try:
                line = commands.get_nowait()
            except queue.Empty:
                break
            display.show(_command(session, line, display), session)


def run_guided(args: argparse.Namespace, path: Path) -> int:
    """The guided session for ``ser-daemon enroll --device``; writes ``path`` or raises (nothing written).

    Raises:
        ProfileError, AudioInputError, ModelError: one line for the user, exit code 2.
    """
    from ..audio.sources import DeviceSource, resolve_device
    from ..model.inference import load_classifier
    from .enroll import check_take, fit_profile, summary_line
    from .store import bundle_for, save_profile

    bundle = bundle_for(args.model)
    emotions = None
    if args.emotions is not None:
        emotions = [] if args.emotions.strip().lower() in ("", "none") else args.emotions.split(",")
    steps = plan_steps(bundle.labels, emotions)
    device = resolve_device(args.device, args.host_api)
    classifier = load_classifier(bundle, args.backend)  # before anyone speaks: a broken model fails now
    session = GuidedSession(steps, bundle.features, lambda audio: check_take(audio, bundle))
    display = Display(sys.stderr)
    wake = threading.Event()
    src = DeviceSource(device, RING_SECONDS, wake.set, samplerate=args.samplerate,
                       on_status=lambda status, detail: display.line(f"  microphone: {status} ({detail})"))
    tap = MonoTap(src.rate, bundle.features.sample_rate)
    commands: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    threading.Thread(target=_read_lines, args=(sys.stdin, commands), name="enroll-stdin", daemon=True).start()
    display.line(f"guided enrollment into {path} from input device {device.index} ({device.name}), "
                 f"{len(steps)} steps; a profile holds statistics only, never audio")
    src.start()
    try:
        record_session(session, lambda: tap(src.ring.read().samples), wake, commands, display)
    except KeyboardInterrupt:
        display.line("interrupted: nothing written")
        return 130
    finally:
        src.stop()
    if not session.takes:
        raise ProfileError("no take was accepted (no voice in any take, or every step skipped): nothing written")
    t0 = time.perf_counter()
    profile = fit_profile(bundle, classifier, session.takes, head=not args.baseline_only)
    fit_s = time.perf_counter() - t0
    save_profile(path, profile)
    print(summary_line(path, profile, len(session.takes), fit_s, bundle.name))
    return 0
