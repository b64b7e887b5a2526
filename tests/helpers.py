"""Test helpers for real sockets and real subprocesses (loopback only, bounded in time)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from conftest import timeout

REPO = Path(__file__).resolve().parent.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UdpReceiver:
    """A real OSC receiver: a UDP socket on 127.0.0.1 collecting datagrams."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.packets: list[tuple[float, bytes]] = []

    def collect(self, until: float, stop_after_idle: float | None = None) -> list[tuple[float, bytes]]:
        """Receive until the monotonic time ``until`` (or idle for ``stop_after_idle`` s)."""
        last = time.monotonic()
        while time.monotonic() < until:
            self.sock.settimeout(0.05)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if stop_after_idle is not None and self.packets and time.monotonic() - last > stop_after_idle:
                    break
                continue
            last = time.monotonic()
            self.packets.append((last, data))
        return self.packets

    def close(self) -> None:
        self.sock.close()


def udp_port_bound(port: int) -> bool:
    """Whether some process has bound UDP ``port`` (read from /proc/net/udp*, without touching it)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(row.split()[1].endswith(suffix) for row in rows):
            return True
    return False


class OscDump:
    """liblo's ``oscdump`` on a UDP port: started, awaited until it listens, its lines collected."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self._reader = threading.Thread(target=self._read, name="oscdump-reader", daemon=True)
        self._reader.start()
        if not wait_until(lambda: udp_port_bound(port) or self.proc.poll() is not None, 10.0):
            raise AssertionError(f"oscdump did not bind UDP port {port}")
        if self.proc.poll() is not None:
            raise AssertionError(f"oscdump exited: {self.proc.stderr.read() if self.proc.stderr else ''}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, count: int, needle: str, limit_s: float = 10.0) -> list[str]:
        """Wait until ``count`` lines contain ``needle`` (oscdump prints as it receives); return all lines."""
        wait_until(lambda: sum(needle in ln for ln in self.lines) >= count, limit_s)
        return list(self.lines)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=timeout(5))
        self._reader.join(timeout(5))


def wait_until(condition: Any, limit_s: float, poll_s: float = 0.02) -> bool:
    """Poll ``condition()`` until it is true or ``limit_s`` (scaled) has passed; return its last value."""
    deadline = time.monotonic() + timeout(limit_s)
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(poll_s)
    return True


def add_fast_file(engine: Any, name: str, samples: Any, rate: int) -> None:
    """Give ``engine`` a file input replayed as fast as its loop pumps it, in 20 ms blocks (``--fast``)."""
    from ser_daemon.audio.sources import FileSource
    from ser_daemon.core.ringbuffer import AudioRing

    ring = AudioRing(int(rate * 4), samples.shape[1])
    engine.add(name, FileSource(samples, rate, ring, rate // 50, name=name), ring, rate, fast=True)


def in_thread(target: Any) -> threading.Thread:
    """Run ``target`` in a daemon thread of its own (every caller joins it with a deadline)."""
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t


def stop_handlers_in(pid: int) -> bool:
    """Whether the daemon's own stop-signal handlers are in: SIGTERM is caught (SigCgt bit 14).

    ser-daemon installs them on its first line (``ser_daemon.app.startup``); before that Python
    itself is starting and handles signals its own way (README, "Operations").
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (15 - 1)))  # SIGTERM is 15 on Linux
    except OSError:
        pass
    return False


def wait_for_stop_handlers(proc: subprocess.Popen, limit_s: float = 20.0) -> None:
    """Poll (every millisecond, at most ``limit_s`` scaled) until the daemon's handlers are in."""
    deadline = time.monotonic() + timeout(limit_s)
    while not stop_handlers_in(proc.pid):
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the daemon ended (exit {proc.returncode}) before its handlers were in: {err!r}")
        assert time.monotonic() < deadline, "the daemon's stop handlers never went in"
        time.sleep(0.001)


def on_a_terminal(args: list[str], env: dict[str, str], *, stdout_too: bool = False, limit_s: float = 60.0) -> str:
    """Run the CLI with stderr (and stdout) on a pseudo-terminal; return what the terminal showed."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(daemon_cmd(*args), stdin=subprocess.DEVNULL,
                            stdout=slave if stdout_too else subprocess.DEVNULL, stderr=slave, cwd=REPO, env=env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout(limit_s)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=timeout(10))
    finally:
        proc.kill()
        os.close(master)
    return out.decode("utf-8", "replace")


def daemon_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ser_daemon", *args]


def start_daemon(args: list[str], env_extra: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.Popen(
        daemon_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, **kw
    )


async def ws_connect(target: int | str, path: str = "", limit_s: float = 20.0, *,
                     proc: subprocess.Popen | None = None, **kw: Any) -> Any:
    """A WebSocket client connected to ``ws://127.0.0.1:PORT/PATH`` (or a whole ``ws://`` URL) once it listens.

    A server still starting refuses the connection: retry every 100 ms for at most ``limit_s``
    (scaled), then fail with an AssertionError naming the address; with ``proc`` (the server's
    process), fail at once when it has exited.  ``kw`` goes to ``websockets``' ``connect``
    (``open_timeout``, ``max_size``, ...).
    """
    from websockets.asyncio.client import connect

    url = target if isinstance(target, str) else f"ws://127.0.0.1:{target}{path}"
    deadline = time.monotonic() + timeout(limit_s)
    while True:
        try:
            return await connect(url, **kw)
        except OSError as exc:  # refused, or the opening handshake timed out (TimeoutError is an OSError)
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the server exited (code {proc.poll()}) before accepting {url}") from exc
            if time.monotonic() > deadline:
                raise AssertionError(f"no WebSocket server at {url} within {timeout(limit_s):g} s") from exc
            await asyncio.sleep(0.1)


async def ws_collect(port: int, until_final: bool = True, limit_s: float = 30.0, connect_s: float = 20.0) -> list[dict]:
    """Connect a real WebSocket client and read JSON messages until the final state."""
    from websockets.exceptions import ConnectionClosed

    ws = await ws_connect(port, limit_s=connect_s, open_timeout=2)
    out: list[dict] = []
    end = time.monotonic() + timeout(limit_s)
    try:
        while time.monotonic() < end:
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - time.monotonic()))
            except asyncio.TimeoutError:
                break
            msg = json.loads(text)
            msg["_recv_time"] = time.monotonic()
            out.append(msg)
            if until_final and msg.get("final"):
                break
    except ConnectionClosed:
        pass  # the daemon closed the connection after its last message: the caller checks what came
    finally:
        await ws.close()
    return out
