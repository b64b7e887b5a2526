"""The web page's Calibrate: the guided enrollment, run by the daemon on the audio it already captures.

The live page (``--web``) sends control messages over its WebSocket::

    {"type": "calibrate", "action": "start", "profile": "me", "replace": false, "emotions": ["happy"]}
    {"type": "calibrate", "action": "record" | "stop" | "skip" | "finish" | "cancel"}

and gets ``{"type": "calibrate", "event": ...}`` messages back (the prompts,
a level meter, refusals, progress; then "saved" and "active"; see the JSON
schema).  The takes are cut from the first local input (microphone or
``--input`` file), tapped in the processing thread before analysis; the same
:class:`~ser_daemon.profiles.guided.GuidedSession` as ``ser-daemon enroll
--device`` judges them.  On finish the profile is fitted (with a classifier
of its own: the processing thread's is not shared across threads), saved by
name in the per-user data folder, and handed to the daemon, which switches
that stream to it.

Only one calibration runs at a time, owned by the page that started it (its
messages go to that page alone; when it disconnects the session is dropped).
Only pages of the web view on a loopback connection may calibrate: recording
someone's voice and writing files is not for remote clients, whatever the
token.  Malformed control messages close the connection (1007), like any
other garbage; a sensible request that cannot be honoured gets an "error"
event with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from ..errors import SerError
from ..model.bundle import ModelBundle
from ..net.endpoints import is_loopback
from ..outputs.messages import PROTOCOL_VERSION
from .store import VoiceProfile

if TYPE_CHECKING:  # imported when a calibration starts: enroll brings scipy.signal (about 50 MB resident)
    from .guided import Event, GuidedSession, MonoTap

__all__ = ["ACTIONS", "CalibrateRequest", "parse_request", "event_json", "active_json", "Calibration"]

log = logging.getLogger(__name__)

ACTIONS = ("start", "record", "stop", "skip", "finish", "cancel")
_KEYS = {"type", "action", "profile", "replace", "emotions"}
MAX_NAME_CHARS = 64
MAX_EMOTIONS = 16
MAX_EMOTION_CHARS = 32


@dataclass(frozen=True)
class CalibrateRequest:
    """One validated control message from the page.

    Attributes:
        action: one of :data:`ACTIONS`.
        profile: the profile's name (``start`` only).
        replace: overwrite a profile of that name (``start`` only).
        emotions: labels to record after the neutral sentences; None for all.
    """

    action: str
    profile: str | None = None
    replace: bool = False
    emotions: tuple[str, ...] | None = None


def parse_request(message: Mapping[str, Any]) -> CalibrateRequest:
    """Check a ``{"type": "calibrate", ...}`` message's shape (pure).

    Raises:
        ValueError: unknown keys, an unknown action, wrong types or oversized
            fields: the connection is closed with 1007.
    """
    if not isinstance(message, Mapping) or message.get("type") != "calibrate":
        raise ValueError("not a calibrate message")
    extra = set(message) - _KEYS
    if extra:
        raise ValueError(f"unknown keys {sorted(extra)[:4]}")
    action = message.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise ValueError("action must be one of " + ", ".join(ACTIONS))
    profile = message.get("profile")
    if profile is not None and (not isinstance(profile, str) or len(profile) > MAX_NAME_CHARS):
        raise ValueError(f"profile must be a string of at most {MAX_NAME_CHARS} characters")
    replace = message.get("replace", False)
    if not isinstance(replace, bool):
        raise ValueError("replace must be true or false")
    emotions = message.get("emotions")
    if emotions is not None:
        if (not isinstance(emotions, list) or len(emotions) > MAX_EMOTIONS
                or not all(isinstance(e, str) and len(e) <= MAX_EMOTION_CHARS for e in emotions)):
            raise ValueError(f"emotions must be a list of at most {MAX_EMOTIONS} short strings")
        emotions = tuple(emotions)
    if action != "start" and (profile is not None or emotions is not None or "replace" in message):
        raise ValueError("profile, replace and emotions go with action start only")
    if action == "start" and profile is None:
        raise ValueError("start needs a profile name")
    return CalibrateRequest(action, profile, replace, emotions)


def _num(x: float, digits: int = 2) -> float | None:
    return round(float(x), digits) if math.isfinite(x) else None


def event_json(e: Event) -> dict[str, Any]:
    """A session event as the page's message (pure)."""
    p = e.progress
    msg: dict[str, Any] = {"type": "calibrate", "protocol": PROTOCOL_VERSION, "event": e.kind, "state": p.state,
                           "step": p.step, "steps": p.steps, "accepted": p.accepted, "attempt": p.attempt,
                           "text": e.text}
    if e.step is not None:
        msg.update(label=e.step.label, sentence=e.step.sentence, cue=e.step.cue)
    if e.kind in ("level", "recording"):
        msg.update(level_db=_num(p.level_db, 1), take_s=_num(p.take_s), voice_s=_num(p.voice_s))
    return msg


def active_json(name: str, stream: str) -> dict[str, Any]:
    """Told to every client once a stream runs with a profile made by calibration."""
    return _plain("active", f"profile {name} is in use for {stream}", profile=name, stream=stream)


def _plain(event: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "calibrate", "protocol": PROTOCOL_VERSION, "event": event, "text": text, **extra}


class Calibration:
    """One daemon's Calibrate: at most one session, on one local stream.

    Threads: :meth:`handle` and :meth:`client_gone` run in the event loop;
    :meth:`feed` in the processing thread; the lock keeps the session whole.
    Events go into one outbox under that lock and leave it in the event loop,
    so the page gets them in the order the session made them (a level event
    made just before a Skip must not arrive after the next step's prompt).

    Args:
        bundle: the model's bundle (labels, features, checks).
        stream: the local stream takes are cut from; None when the daemon has
            none (ingest only): every start is then refused.
        in_rate: that stream's input rate.
        loop: the event loop that owns the WebSocket clients.
        send: queue a message for one client (event loop thread).
        use_profile: hand a saved profile to the daemon (event loop thread):
            ``(profile, path, name, stream)``.
        load_classifier: a fresh classifier for fitting (called once, in a worker thread).
    """

    def __init__(self, bundle: ModelBundle, stream: str | None, in_rate: int, loop: asyncio.AbstractEventLoop,
                 send: Callable[[Any, dict[str, Any]], None],
                 use_profile: Callable[[VoiceProfile, Path, str, str], None],
                 load_classifier: Callable[[], Any]) -> None:
        self.bundle = bundle
        self.stream = stream
        self.in_rate = in_rate
        self.loop = loop
        self.send = send
        self.use_profile = use_profile
        self._load_classifier = load_classifier
        self._classifier: Any = None
        self._lock = threading.Lock()
        self._session: GuidedSession | None = None
        self._tap: MonoTap | None = None
        self._owner: Any = None
        self._name = ""
        self._path: Path | None = None
        self._fitting = False
        self._outbox: list[Event] = []
        self.saved = 0

    # -- event loop thread ---------------------------------------------------------
    async def handle(self, client: Any, message: Mapping[str, Any]) -> None:
        """A control message from a client (ValueError for a malformed one: the server closes it)."""
        req = parse_request(message)
        if not getattr(client, "web", False) or not is_loopback(str(getattr(client, "host", ""))):
            self.send(client, _plain("error", "calibration is only offered to the web view on this machine"))
            return
        if not getattr(client, "page_key", False):  # it writes the user's files: more than the state stream needs
            self.send(client, _plain("error", "calibration needs the key of the web page (open the page) or the token"))
            return
        with self._lock:
            busy = self._session is not None or self._fitting
            mine = client is self._owner
        if req.action == "start":
            if busy:
                why = "a calibration is running already" + ("" if mine else " in another window")
                self.send(client, _plain("error", why))
                return
            self._start(client, req)
            return
        if not mine or not busy:
            self.send(client, _plain("error", "no calibration is running: start one first"))
            return
        if req.action == "cancel":
            with self._lock:
                self._session = None
                self._owner = None
                self._outbox.clear()
            self.send(client, _plain("cancelled", "calibration cancelled: nothing written"))
            return
        with self._lock:
            session = self._session
            if session is None:
                return
            self._outbox += {"record": session.record, "stop": session.stop, "skip": session.skip,
                             "finish": session.finish}[req.action]()
        self._flush()

    def _start(self, client: Any, req: CalibrateRequest) -> None:
        from .enroll import check_take
        from .guided import GuidedSession, MonoTap, plan_steps
        from .store import check_writable, is_profile_name, profile_path

        try:
            if self.stream is None:
                raise SerError("this daemon has no local input (microphone or --input file) to calibrate from")
            name = req.profile or ""
            if not is_profile_name(name):
                raise SerError(f"{name!r} is not a profile name: use letters, digits, '.', '_' and '-'")
            path = profile_path(name)
            check_writable(path, req.replace)
            steps = plan_steps(self.bundle.labels, req.emotions)
        except SerError as exc:
            self.send(client, _plain("error", str(exc)))
            return
        bundle = self.bundle
        session = GuidedSession(steps, bundle.features, lambda audio: check_take(audio, bundle))
        log.info("calibration into profile %s started (%d steps, stream %s)", name, len(steps), self.stream)
        self.send(client, _plain("started", f"calibrating profile {name} from {self.stream}", profile=name,
                                 stream=self.stream, steps=len(steps)))
        with self._lock:
            self._session, self._owner, self._name, self._path = session, client, name, path
            self._tap = MonoTap(self.in_rate, bundle.features.sample_rate)
            self._outbox = session.start()
        self._flush()

    def client_gone(self, client: Any) -> None:
        """The owner's page went away: drop its session (nothing written)."""
        with self._lock:
            if client is self._owner and not self._fitting:
                self._session = None
                self._owner = None
                self._outbox.clear()
                log.info("calibration dropped: its page disconnected")

    def _flush(self) -> None:
        """Send what the outbox holds to the owner (event loop thread); on "done", fit and save."""
        with self._lock:
            events, self._outbox = self._outbox, []
            owner = self._owner
        for e in events:
            if owner is not None:
                self.send(owner, event_json(e))
            if e.kind == "done":
                asyncio.ensure_future(self._complete())

    async def _complete(self) -> None:
        with self._lock:
            session, owner, name, path = self._session, self._owner, self._name, self._path
            self._session = None
            self._fitting = session is not None
        if session is None or path is None:
            return
        try:
            if not session.takes:
                raise SerError("no take was accepted (no voice in any take, or every step skipped): nothing written")
            self.send(owner, _plain("fitting", f"fitting profile {name} from {len(session.takes)} takes"))
            profile, summary = await asyncio.to_thread(self._fit_and_save, session, path)
        except SerError as exc:
            self.send(owner, _plain("error", str(exc)))
            return
        finally:
            with self._lock:
                self._fitting = False
                if not self._session:
                    self._owner = None
        self.saved += 1
        log.info("%s", summary)
        self.send(owner, _plain("saved", summary, profile=name, path=str(path), labels=sorted(profile.takes),
                                head=profile.head is not None))
        assert self.stream is not None
        self.use_profile(profile, path, name, self.stream)

    def _fit_and_save(self, session: GuidedSession, path: Path) -> tuple[VoiceProfile, str]:
        """Worker thread: fit with a classifier of our own, write atomically."""
        from .enroll import fit_profile, summary_line
        from .store import save_profile

        if self._classifier is None:
            self._classifier = self._load_classifier()
        t0 = time.perf_counter()
        profile = fit_profile(self.bundle, self._classifier, session.takes)
        fit_s = time.perf_counter() - t0
        save_profile(path, profile)
        return profile, summary_line(path, profile, len(session.takes), fit_s, self.bundle.name)

    # -- processing thread -------------------------------------------------------------
    def feed(self, stream: str, frames: np.ndarray) -> None:
        """Audio of ``stream`` as read from its ring ((n, channels) at the input rate)."""
        if stream != self.stream or self._session is None or not len(frames):
            return
        with self._lock:
            session, tap = self._session, self._tap
            if session is None or tap is None:
                return
            events = session.feed(tap(frames))
            self._outbox += events
        if events:
            try:
                self.loop.call_soon_threadsafe(self._flush)
            except RuntimeError:
                pass  # the loop closed during shutdown
