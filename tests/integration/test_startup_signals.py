"""Stop signals during start-up: why the handler leaves at once instead of raising, proven for real.

An exception raised from a signal handler lands wherever the main thread is; during start-up
that is an import, and there it can be lost (importlib's weakref callbacks print "Exception
ignored") or disguised (pybind11 turns it into ImportError("initialization failed")).  These
tests put real signals inside the real LiteRT import and check the process always ends with
the signal's code and nothing on stderr; and that guarded optional imports never report an
interrupt as a missing package.
"""

from __future__ import annotations

import importlib.abc
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import timeout
from helpers import REPO
from ser_daemon.app import startup
from ser_daemon.errors import BackendUnavailable, import_failure


@pytest.mark.slow  # starts a process
def test_the_entry_module_installs_handlers_before_anything_heavy_is_imported() -> None:
    """The window in which Python (not we) handles a signal ends at ser-daemon's first line."""
    code = ("import sys, signal; import ser_daemon.__main__ as m; m.install_startup_handlers(); "
            "print(signal.getsignal(signal.SIGTERM).__name__, "
            "sorted({'numpy', 'logging', 'typing', 'ser_daemon.cli', 'ser_daemon.app.stop_requests'} & set(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=timeout(30))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(None, 1) == ["exit_at_once", "[]\n"]


def test_install_keeps_ignored_signals_ignored_and_restores() -> None:
    calls: list[tuple[int, object]] = []

    def set_signal(sig: int, handler: object) -> object:
        calls.append((sig, handler))
        return signal.SIG_DFL

    previous = startup.install_startup_handlers([signal.SIGTERM, signal.SIGHUP], set_signal=set_signal)
    assert calls == [(signal.SIGTERM, startup.exit_at_once), (signal.SIGHUP, startup.exit_at_once)]
    calls.clear()
    startup.restore_signals(previous, set_signal=set_signal)
    assert calls == [(signal.SIGTERM, signal.SIG_DFL), (signal.SIGHUP, signal.SIG_DFL)]
    ignored = startup.stop_signals(windows=False, get_signal=lambda s: signal.SIG_IGN if s == signal.SIGHUP else None)
    assert signal.SIGHUP not in ignored  # nohup stays in charge of SIGHUP


def test_not_the_main_thread_changes_nothing() -> None:
    import threading

    out: list[dict] = []
    th = threading.Thread(target=lambda: out.append(startup.install_startup_handlers()))
    th.start()
    th.join(timeout(5))
    assert out == [{}]


# -- optional imports: an interrupt is never a missing package ---------------------------------

def _disguised_interrupt() -> ImportError:
    """What pybind11 makes of an exception raised while its module initialises."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as kbi:
            raise ImportError("initialization failed") from kbi
    except ImportError as exc:
        return exc


def test_import_failure_raises_the_interrupt_behind_an_import_error() -> None:
    with pytest.raises(KeyboardInterrupt):
        import_failure(_disguised_interrupt(), "ai-edge-litert", "needs ai-edge-litert: pip install ai-edge-litert")


def test_import_failure_tells_missing_from_broken() -> None:
    hint = "the LiteRT backend needs ai-edge-litert: pip install ai-edge-litert"
    assert import_failure(ModuleNotFoundError("No module named 'ai_edge_litert'"), "ai-edge-litert", hint) == hint
    msg = import_failure(ImportError("libLiteRt.so: cannot open shared object file"), "ai-edge-litert", hint)
    assert msg.startswith("ai-edge-litert is installed but cannot be loaded") and "libLiteRt.so" in msg


class _Failing(importlib.abc.MetaPathFinder):
    """Makes ``ai_edge_litert.interpreter`` fail to import the way we want."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name == "ai_edge_litert.interpreter":
            raise self.exc
        return None


@pytest.mark.parametrize("exc,expected", [
    (_disguised_interrupt(), KeyboardInterrupt),
    (ModuleNotFoundError("No module named 'ai_edge_litert'"), BackendUnavailable),
])
def test_litert_guard_passes_interrupts_through(monkeypatch, tmp_path, exc, expected) -> None:
    from ser_daemon.model.inference import LiteRTClassifier

    monkeypatch.delitem(sys.modules, "ai_edge_litert.interpreter", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_Failing(exc), *sys.meta_path])
    with pytest.raises(expected):
        LiteRTClassifier(tmp_path / "model.tflite", ("a", "b"), (4, 4))


# -- real signals inside the real LiteRT import ------------------------------------------------

_IN_THE_IMPORT = textwrap.dedent("""
    import signal, sys, time
    import numpy  # the daemon has it loaded by then: what is left is LiteRT's own import
    from ser_daemon.app.startup import install_startup_handlers
    install_startup_handlers([signal.SIGALRM])  # SIGALRM: the one signal a timer can send this precisely
    signal.setitimer(signal.ITIMER_REAL, float(sys.argv[1]))
    from ai_edge_litert.interpreter import Interpreter
    time.sleep(1.0)  # the import was faster than the timer: the signal comes here
    print("the signal was lost")
    sys.exit(3)
""")


@pytest.mark.slow
def test_a_signal_anywhere_in_the_litert_import_ends_the_process_cleanly() -> None:
    """With a raising handler about half of these came back as ImportError("initialization
    failed") (pybind11) and a few were lost in importlib's weakref callbacks; now every one
    ends the process at once, with the signal's code (0 for a non-interrupt) and no output."""
    spread_s = 0.008  # LiteRT's import takes ~4 ms here once numpy is loaded
    results = []
    for i in range(16):
        r = subprocess.run([sys.executable, "-c", _IN_THE_IMPORT, str(0.0002 + spread_s * i / 16)],
                           capture_output=True, text=True, cwd=REPO, timeout=timeout(30))
        results.append((r.returncode, r.stdout + r.stderr))
    assert results == [(0, "")] * 16, [x for x in results if x != (0, "")][:3]


@pytest.mark.slow
def test_the_daemon_gives_the_signals_back_after_its_clean_stop(tmp_path) -> None:
    """After the loop's clean stop the start-up handler is in force again (asyncio would leave
    SIG_DFL): a signal while the process exits ends it with its code, never kills it."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.argv = ["ser-daemon", "--input", {str(REPO / 'ser_daemon/data/demo.wav')!r}, "--fast", "--no-osc",
                    "--no-ws", "--quiet"]
        from ser_daemon.__main__ import main
        code = main()
        assert signal.getsignal(signal.SIGTERM).__name__ == "exit_at_once", signal.getsignal(signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # late Ctrl-C while exiting: 130 at once
        print("not reached")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=timeout(60),
                       env={**os.environ})
    assert (r.returncode, r.stdout, r.stderr) == (130, "", "")


# -- start-up steps that take seconds (OSCQuery's mDNS announcement) can be given up --------------

def test_a_step_in_its_own_thread_is_given_up_without_holding_the_exit() -> None:
    """asyncio.to_thread would make asyncio.run wait for the abandoned call; this must not."""
    import asyncio
    import threading
    import time

    from ser_daemon.vrchat.link import _in_own_thread

    release = threading.Event()
    closed: list[str] = []

    def slow() -> str:
        release.wait(timeout(10))
        return "announcement"

    async def main() -> None:
        task = asyncio.ensure_future(_in_own_thread(slow, if_abandoned=closed.append))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    t0 = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - t0 < 1.0  # the thread is still inside slow()
    release.set()  # it finishes later; nobody awaits it and the loop is gone: closed anyway
    deadline = time.monotonic() + timeout(5)
    while not closed:
        assert time.monotonic() < deadline, "the abandoned result was never closed"
        time.sleep(0.01)
    assert closed == ["announcement"]
