"""Stop signals from ser-daemon's first line until its event loop takes over, and after it.

Start-up is mostly imports (numpy, LiteRT, the model) and takes a few hundred milliseconds.
A stop signal in that time must end the process at once with its documented exit code (130
for SIGINT, 0 for SIGTERM and SIGHUP: README, "Operations").  The handler here does exactly
that, in the handler itself, with ``os._exit``.  It does not raise an exception the way
Python's own Ctrl-C handler does, because an exception raised wherever the main thread
happens to be does not reliably reach our ``except``; measured on this code base:

- in a weakref callback or a ``__del__`` (importlib drops a module lock through one after
  every import) Python prints "Exception ignored in ..." and carries on: the signal is lost
  and the daemon starts anyway (the "10 s hang" of issue 13);
- in a pybind11 extension's initialisation (LiteRT's interpreter wrapper) it comes back as
  ``ImportError("initialization failed")``, which an optional-import guard reports as a
  missing package, exit 2 (about half of the signals that land in that import);
- any library's bare ``except:`` or ``except BaseException`` may eat it.

Leaving at once is also right: until the loop runs, no output has been opened to anyone
(the WebSocket server starts, and states go out, only after the loop's own handlers are in),
so there is no final state owed and nothing to clean up.  ``app.stop_requests.install_stop_handlers``
replaces these handlers with the clean stop (final neutral state on every output) and puts
them back once that stop is done, so a late signal while the process exits also ends it at
once instead of being lost or killing it the OS way.

This module imports nothing but ``os``, ``signal`` and ``sys``, so ``python -m ser_daemon``
and the ``ser-daemon`` command (``ser_daemon.__main__``) install the handlers within a
millisecond of their first line.  Before that line Python handles signals itself (README).
"""

from __future__ import annotations

import os
import signal
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs milliseconds before the handlers are in
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

__all__ = [
    "EXIT_INTERRUPTED",
    "SIGBREAK",
    "stop_signals",
    "exit_code_for",
    "signal_name",
    "exit_at_once",
    "install_startup_handlers",
    "restore_signals",
]

EXIT_INTERRUPTED = 130  # 128 + SIGINT: what shells report for Ctrl-C
SIGBREAK = int(getattr(signal, "SIGBREAK", 21))  # Windows' Ctrl-Break; its number there, for simulation elsewhere


def stop_signals(windows: bool | None = None, get_signal: Callable[[int], Any] = signal.getsignal) -> list[int]:
    """The signals that ask the daemon to stop on this platform (or on Windows/POSIX if given).

    A signal our parent set to be ignored stays ignored: ``nohup`` ignores SIGHUP, and a
    shell starts background jobs with SIGINT ignored; overriding that would break both.
    """
    windows = sys.platform == "win32" if windows is None else windows
    sigs = (signal.SIGINT, SIGBREAK, signal.SIGTERM) if windows else (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    out = []
    for sig in sigs:
        try:
            if get_signal(sig) == signal.SIG_IGN:
                continue
        except (OSError, ValueError):
            pass
        out.append(int(sig))
    return out


def exit_code_for(signum: int, windows: bool | None = None) -> int:
    """130 for an interactive interrupt (Ctrl-C, Ctrl-Break), 0 for a request to stop."""
    windows = sys.platform == "win32" if windows is None else windows
    return EXIT_INTERRUPTED if signum == signal.SIGINT or (windows and signum == SIGBREAK) else 0


def signal_name(signum: int, windows: bool | None = None) -> str:
    """"SIGTERM", "SIGBREAK" (Windows), ...: for log lines."""
    windows = sys.platform == "win32" if windows is None else windows
    if windows and signum == SIGBREAK:
        return "SIGBREAK"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_at_once(signum: int, frame: object = None) -> None:
    """The handler: end the process now with the signal's exit code (see the module docstring).

    Nothing is flushed: what ser-daemon prints is flushed line by line already, and a flush
    could block on a pipe nobody reads, or re-enter a write the signal interrupted.
    """
    os._exit(exit_code_for(signum))


def install_startup_handlers(
    signals: Iterable[int] | None = None, set_signal: Callable[[int, Any], Any] = signal.signal
) -> dict[int, Any]:
    """From now on every stop signal (or those given) ends the process at once; return what it replaced.

    Signals ignored by our parent stay ignored.  Outside the main thread ``signal.signal``
    refuses (ValueError) and nothing changes: a library caller keeps its own handlers.
    """
    previous: dict[int, Any] = {}
    for sig in stop_signals() if signals is None else signals:
        try:
            previous[sig] = set_signal(sig, exit_at_once)
        except (OSError, ValueError, RuntimeError):
            pass
    return previous


def restore_signals(previous: dict[int, Any], set_signal: Callable[[int, Any], Any] = signal.signal) -> None:
    """Put back handlers saved by :func:`install_startup_handlers` (library callers of ``cli.main``)."""
    for sig, handler in previous.items():
        try:
            set_signal(sig, handler if handler is not None else signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError, TypeError):
            pass
