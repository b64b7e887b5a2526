"""Stop requests on every platform: real POSIX signals here, Windows' paths by simulation.

Windows has no ``loop.add_signal_handler`` (NotImplementedError), delivers Ctrl-C/Ctrl-Break
as SIGINT/SIGBREAK through ``signal.signal`` and closing the console through a console
control handler.  The seams of ``ser_daemon.app.stop_requests`` let those paths run here; the signals
that can be real (SIGINT through ``signal.signal``, SIGHUP, SIGTERM) are real.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from ser_daemon.app import stop_requests as plat
from ser_daemon.app.stop_requests import StopRequest, install_stop_handlers


def _not_implemented(*args: object) -> None:
    raise NotImplementedError  # what Windows' event loops do


class FakeKernel32:
    """Stands in for ctypes.windll.kernel32: records the console control handler."""

    def __init__(self) -> None:
        self.handler = None
        self.removed = False

    def SetConsoleCtrlHandler(self, handler, add):  # noqa: N802 - the Windows name
        if add:
            self.handler = handler
        else:
            self.removed = True
        return 1


async def _wait_for(cond, seconds: float = 2.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.01)


def test_posix_sighup_and_sigterm_are_clean_stop_requests() -> None:
    got: list[StopRequest] = []

    async def main() -> None:
        undo = install_stop_handlers(asyncio.get_running_loop(), got.append, threading.Event(), windows=False)
        try:
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                os.kill(os.getpid(), sig)  # real signals, to this process
                await _wait_for(lambda n=len(got): len(got) > n)
        finally:
            undo()

    asyncio.run(main())
    assert [(r.reason, r.exit_code) for r in got] == [("SIGHUP", 0), ("SIGTERM", 0), ("SIGINT", 130)]


def test_uninstall_gives_each_signal_back_to_its_previous_handler() -> None:
    """asyncio's remove_signal_handler leaves SIG_DFL: SIGTERM while exiting would kill the
    process, and a library caller would lose its handler.  The uninstaller puts back what was there."""
    def mine(signum, frame):  # noqa: ANN001 - a signal handler
        pass

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGTERM, mine)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)

        async def main() -> None:
            undo = install_stop_handlers(asyncio.get_running_loop(), lambda r: None, threading.Event(), windows=False)
            assert signal.getsignal(signal.SIGTERM) is not mine  # the loop has it now
            undo()

        asyncio.run(main())
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def test_windows_without_add_signal_handler_uses_signal_signal_with_real_sigint() -> None:
    got: list[StopRequest] = []
    installed: dict[int, object] = {}
    k32 = FakeKernel32()

    def set_signal(sig, handler):
        installed[sig] = handler
        if sig == signal.SIGINT:  # the one Windows signal that exists here too: install it for real
            return signal.signal(sig, handler)
        return signal.SIG_DFL

    async def main() -> None:
        undo = install_stop_handlers(
            asyncio.get_running_loop(), got.append, threading.Event(), windows=True,
            add_signal_handler=_not_implemented, set_signal=set_signal, get_signal=lambda s: signal.SIG_DFL,
            kernel32=k32,
        )
        try:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, through the signal.signal path
            await _wait_for(lambda: len(got) == 1)
            installed[plat.SIGBREAK](plat.SIGBREAK, None)  # Ctrl-Break as the C runtime delivers it
            await _wait_for(lambda: len(got) == 2)
        finally:
            undo()

    previous = signal.getsignal(signal.SIGINT)
    try:
        asyncio.run(main())
    finally:
        signal.signal(signal.SIGINT, previous)
    assert set(installed) == {signal.SIGINT, plat.SIGBREAK, signal.SIGTERM}
    assert [(r.reason, r.exit_code) for r in got] == [("SIGINT", 130), ("SIGBREAK", 130)]
    assert k32.handler is not None and k32.removed  # console handler registered, and removed on uninstall


def test_windows_console_close_asks_for_a_stop_and_waits_for_it() -> None:
    """Windows ends the process when the handler returns: it must wait for the clean stop."""
    got: list[StopRequest] = []
    done = threading.Event()
    k32 = FakeKernel32()
    result: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def on_stop(req: StopRequest) -> None:
            got.append(req)
            loop.call_later(0.2, done.set)  # the daemon's shutdown takes a moment

        install_stop_handlers(loop, on_stop, done, windows=True, add_signal_handler=_not_implemented,
                              set_signal=lambda s, h: signal.SIG_DFL, get_signal=lambda s: signal.SIG_DFL,
                              kernel32=k32)
        # Windows calls the handler on a thread of its own.
        t0 = time.monotonic()
        th = threading.Thread(target=lambda: result.append(k32.handler(plat.CTRL_CLOSE_EVENT)))
        th.start()
        await _wait_for(lambda: bool(result), 3.0)
        result.append(time.monotonic() - t0)
        # Ctrl-C through the console handler is left to the C runtime (it raises SIGINT).
        assert k32.handler(plat.CTRL_C_EVENT) == 0

    asyncio.run(main())
    assert result[0] == 1 and result[1] >= 0.15  # handled, after the stop was done
    assert [(r.reason, r.exit_code) for r in got] == [("console closed", 0)]


def test_console_handler_gives_up_waiting_before_windows_does() -> None:
    events = plat.ConsoleEvents(lambda req: None, threading.Event(), grace_s=0.05)
    t0 = time.monotonic()
    assert events.handle(plat.CTRL_SHUTDOWN_EVENT) is True
    assert time.monotonic() - t0 < 1.0


def test_ignored_signals_stay_ignored() -> None:
    """nohup ignores SIGHUP; a shell's background job ignores SIGINT: we must not undo that."""
    ignored = {signal.SIGHUP}
    sigs = plat.stop_signals(windows=False, get_signal=lambda s: signal.SIG_IGN if s in ignored else signal.SIG_DFL)
    assert signal.SIGHUP not in sigs and signal.SIGINT in sigs and signal.SIGTERM in sigs


def test_not_the_main_thread_installs_nothing() -> None:
    calls: list[int] = []
    out: list[object] = []

    def run() -> None:
        out.append(install_stop_handlers(object(), lambda r: None, threading.Event(), windows=False,
                                         add_signal_handler=lambda *a: calls.append(1)))

    th = threading.Thread(target=run)
    th.start()
    th.join()
    assert calls == [] and callable(out[0])


@pytest.mark.parametrize("signum,windows,code", [
    (signal.SIGINT, False, 130), (signal.SIGTERM, False, 0), (signal.SIGHUP, False, 0),
    (plat.SIGBREAK, True, 130), (signal.SIGTERM, True, 0),
])
def test_exit_codes(signum: int, windows: bool, code: int) -> None:
    assert plat.exit_code_for(signum, windows) == code


def test_memory_trimmer_waits_for_the_wave_of_ends_to_be_over() -> None:
    from ser_daemon.app.memory import Trimmer, trim

    now = [0.0]
    calls: list[float] = []
    t = Trimmer(quiet_s=0.3, min_interval_s=1.0, clock=lambda: now[0], trim_fn=lambda: calls.append(now[0]) or True)
    assert not t.maybe_trim()  # nothing ended
    t.streams_ended()
    now[0] = 0.2
    assert not t.maybe_trim()  # still ending
    now[0] = 0.35
    assert t.maybe_trim() and calls == [0.35]
    t.streams_ended()
    now[0] = 0.9
    assert not t.maybe_trim()  # quiet, but trimmed less than a second ago
    now[0] = 1.4
    assert t.maybe_trim() and not t.maybe_trim() and t.trims == 2
    assert trim() in (True, False)  # the real call works (glibc) or is a no-op elsewhere
