"""How a stop request (signal, console event) reaches the daemon on each platform.

POSIX delivers SIGINT (Ctrl-C), SIGTERM (service managers, ``kill``) and SIGHUP (terminal or
SSH session closed); asyncio's ``loop.add_signal_handler`` turns them into calls on the event
loop.  Windows has no ``add_signal_handler`` (it raises NotImplementedError): Ctrl-C and
Ctrl-Break arrive through the C runtime as SIGINT and SIGBREAK, which ``signal.signal`` can
catch, and closing the console window, logging off or shutting down arrive only through a
console control handler (``SetConsoleCtrlHandler``), on a thread of their own, with about
five seconds before Windows ends the process.  Every one of them asks for the same clean stop:
a final neutral state on every output, then exit.

The OS calls are reached through small injectable seams (``add_signal_handler``,
``set_signal``, ``console``) so the Windows paths are tested on Linux by simulation.

Exit codes (README, "Operations"): an interactive interrupt (Ctrl-C, Ctrl-Break) ends with
130 as shells expect; a request to stop (SIGTERM, SIGHUP, console closed, log-off, shutdown)
ends with 0 once the daemon stopped cleanly.

Per-user folders and the preferred audio host API, decided per operating system too,
are in ``ser_daemon/os_defaults.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Coroutine

from ..outputs.base import post_to_loop
from .startup import EXIT_INTERRUPTED, SIGBREAK, exit_code_for, signal_name, stop_signals  # noqa: F401 (SIGBREAK: re-exported)

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_BROKEN_PIPE",
    "StopRequest",
    "stop_signals",
    "exit_code_for",
    "install_stop_handlers",
    "ConsoleEvents",
    "unless_stopped",
    "StopControl",
]

log = logging.getLogger(__name__)

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what `yes | head` reports under `set -o pipefail`

# Windows console control events (wincon.h).
CTRL_C_EVENT = 0
CTRL_BREAK_EVENT = 1
CTRL_CLOSE_EVENT = 2
CTRL_LOGOFF_EVENT = 5
CTRL_SHUTDOWN_EVENT = 6
_CONSOLE_EVENT_NAMES = {
    CTRL_CLOSE_EVENT: "console closed",
    CTRL_LOGOFF_EVENT: "log-off",
    CTRL_SHUTDOWN_EVENT: "shutdown",
}
CONSOLE_GRACE_S = 4.0  # Windows ends the process ~5 s after CTRL_CLOSE_EVENT; stop well within it


@dataclass(frozen=True)
class StopRequest:
    """Why the daemon was asked to stop, and the exit code that goes with it.

    Attributes:
        reason: human-readable cause ("SIGINT", "console closed", ...), for the log.
        exit_code: the process exit code once the clean stop is done.
    """

    reason: str
    exit_code: int


class ConsoleEvents:
    """Windows console control handler: console closed, log-off and shutdown ask for a stop.

    Ctrl-C and Ctrl-Break are left to the C runtime (it raises SIGINT/SIGBREAK, handled by
    ``signal.signal``).  For the other events the handler runs on a thread Windows creates; it
    asks for the stop and then waits (at most ``grace_s``) for the daemon to finish, because
    Windows ends the process as soon as the handler returns.

    Args:
        request_stop: called (from the handler's thread) with the :class:`StopRequest`.
        done: set by the daemon once its clean stop is finished.
        kernel32: the ``ctypes.windll.kernel32`` object (injected in tests).
        grace_s: how long the handler waits for ``done``.
    """

    def __init__(
        self,
        request_stop: Callable[[StopRequest], None],
        done: threading.Event,
        kernel32: Any = None,
        grace_s: float = CONSOLE_GRACE_S,
    ) -> None:
        self.request_stop = request_stop
        self.done = done
        self.grace_s = grace_s
        self._kernel32 = kernel32
        self._c_handler: Any = None

    def handle(self, event: int) -> bool:
        """The handler's logic (called by Windows; True: handled, do not pass on)."""
        name = _CONSOLE_EVENT_NAMES.get(event)
        if name is None:
            return False  # Ctrl-C / Ctrl-Break: the C runtime turns them into signals
        self.request_stop(StopRequest(name, 0))
        self.done.wait(self.grace_s)
        return True

    def install(self) -> bool:
        """Register with Windows; False if no console API is there."""
        k32 = self._kernel32
        if k32 is None:
            try:
                import ctypes

                k32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            except (ImportError, AttributeError, OSError):
                return False
        import ctypes

        proto = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)(ctypes.c_int, ctypes.c_uint)
        self._c_handler = proto(lambda event: 1 if self.handle(int(event)) else 0)  # keep a reference
        ok = bool(k32.SetConsoleCtrlHandler(self._c_handler, True))
        if ok:
            self._kernel32 = k32
        return ok

    def uninstall(self) -> None:
        if self._c_handler is not None and self._kernel32 is not None:
            try:
                self._kernel32.SetConsoleCtrlHandler(self._c_handler, False)
            except OSError:
                pass
        self._c_handler = None


def install_stop_handlers(
    loop: Any,
    on_stop: Callable[[StopRequest], None],
    done: threading.Event,
    *,
    windows: bool | None = None,
    add_signal_handler: Callable[..., Any] | None = None,
    set_signal: Callable[[int, Any], Any] | None = None,
    get_signal: Callable[[int], Any] | None = None,
    kernel32: Any = None,
) -> Callable[[], None]:
    """Route every OS stop request to ``on_stop`` on the event loop; return an uninstaller.

    POSIX: ``loop.add_signal_handler`` for SIGINT, SIGTERM and SIGHUP.  Where that is not
    implemented (Windows' event loops) ``signal.signal`` handlers hand the signal to the loop
    with ``call_soon_threadsafe``, and on Windows a console control handler covers closing
    the window, log-off and shutdown.  Outside the main thread nothing can be installed (library
    use): the caller stops the daemon itself.  The uninstaller gives every signal back to the
    handler it had before (``ser-daemon``: its start-up handlers, which end the process at once).

    Args:
        loop: the running event loop.
        on_stop: called in the loop's thread with the request.
        done: set by the caller when the clean stop has finished (the console handler waits on it).
        windows: pretend to be (or not be) Windows; default: the real platform.
        add_signal_handler, set_signal, get_signal, kernel32: OS seams, injected by the tests.
    """
    windows = sys.platform == "win32" if windows is None else windows
    add = add_signal_handler if add_signal_handler is not None else loop.add_signal_handler
    setsig = set_signal if set_signal is not None else signal.signal
    undo: list[Callable[[], None]] = []

    def request(signum: int) -> None:
        on_stop(StopRequest(signal_name(signum, windows), exit_code_for(signum, windows)))

    def from_signal_handler(signum: int, frame: object) -> None:
        try:
            loop.call_soon_threadsafe(request, signum)
        except RuntimeError:
            pass  # the loop is closing: the stop is under way already

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    getsig = get_signal or signal.getsignal
    for sig in stop_signals(windows, get_signal=getsig):
        try:
            before = getsig(sig)
            add(sig, request, sig)
            undo.append(lambda s=sig, p=before: _hand_back(loop, s, p, setsig))
            continue
        except NotImplementedError:
            pass  # Windows: fall back to signal.signal
        except (RuntimeError, ValueError, OSError):
            continue
        try:
            previous = setsig(sig, from_signal_handler)
            undo.append(lambda s=sig, p=previous: _quiet(setsig, s, p))
        except (OSError, ValueError, RuntimeError):
            pass
    if windows:
        console = ConsoleEvents(lambda req: _quiet(loop.call_soon_threadsafe, on_stop, req), done, kernel32=kernel32)
        if console.install():
            undo.append(console.uninstall)

    def uninstall() -> None:
        for u in reversed(undo):
            u()

    return uninstall


def _hand_back(loop: Any, sig: int, previous: Any, set_signal: Callable[[int, Any], Any]) -> None:
    """Take a signal back from the loop and give it to the handler it had before.

    asyncio's ``remove_signal_handler`` (also run by ``loop.close()``) leaves SIGTERM and SIGHUP
    at SIG_DFL, so a signal while the process exits would kill it the OS way, and a library
    caller would lose its handler.  The previous one is set right after (microseconds later).
    """
    _quiet(loop.remove_signal_handler, sig)
    _quiet(set_signal, sig, previous if previous is not None else signal.SIG_DFL)


def _quiet(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except (OSError, ValueError, RuntimeError, TypeError):
        pass


async def unless_stopped(step: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Await a start-up step, but drop it as soon as ``stop`` is set: every stop ends within 1 s.

    Returns whether the step was given up while still running (its thread, if any, may linger).

    Raises:
        Exception: the step's own error, if it failed.
    """
    task, stopper = asyncio.ensure_future(step), asyncio.ensure_future(stop.wait())
    left_behind = False
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            left_behind = True
    if not task.cancelled():
        task.result()  # its error, if it failed
    return left_behind


class StopControl:
    """One daemon's stop: asked for from any thread, done once; a second request forces the exit.

    Holds the exit code: the first reason to stop that carries one wins (an interrupt's 130, a
    closed stdout's 141), except a failure of the processing thread, which is always 1.
    """

    def __init__(self) -> None:
        self.exit_code = 0
        self.requests = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None
        self.done = threading.Event()  # set when the clean stop is done (a console handler waits on it)

    def bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        """The running loop the stop is delivered to; returns the event a stop sets."""
        self.loop, self.event = loop, asyncio.Event()
        return self.event

    def stop(self) -> None:
        """Ask for the stop (thread-safe; harmless once the loop has closed)."""
        if self.loop is not None and self.event is not None:
            post_to_loop(self.loop, self.event.set)  # a closed loop: the daemon ended on its own meanwhile

    def stop_with(self, code: int) -> None:
        """Stop, ending with ``code`` unless an earlier reason gave one."""
        if self.exit_code == 0:
            self.exit_code = code
        self.stop()

    def stdout_closed(self, exc: BaseException, reader_gone: bool) -> None:
        """The ``--print``/``--jsonl`` reader went away (``| head``: the documented 141), or stdout failed (exit 1)."""
        if reader_gone:
            log.info("stdout closed (%s): stopping", type(exc).__name__)
        else:
            log.error("cannot write to stdout (%s): stopping", getattr(exc, "strerror", None) or exc)
        self.stop_with(EXIT_BROKEN_PIPE if reader_gone else 1)

    def request(self, request: StopRequest) -> None:
        """A signal or console event asks us to stop (event loop thread); a second one forces it."""
        self.requests += 1
        if self.requests > 1:
            log.warning("%s again: exiting now", request.reason)
            os._exit(request.exit_code or 1)
        log.info("%s: stopping", request.reason)
        if self.exit_code == 0:
            self.exit_code = request.exit_code
        assert self.event is not None
        self.event.set()
