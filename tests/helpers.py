"""Test helpers for real sockets and real subprocesses (loopback only, bounded in time)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
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


def daemon_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ser_daemon", *args]


def start_daemon(args: list[str], env_extra: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.Popen(
        daemon_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, **kw
    )


async def ws_collect(port: int, until_final: bool = True, limit_s: float = 30.0, connect_s: float = 20.0) -> list[dict]:
    """Connect a real WebSocket client and read JSON messages until the final state."""
    from websockets.asyncio.client import connect

    deadline = time.monotonic() + timeout(connect_s)
    while True:
        try:
            ws = await connect(f"ws://127.0.0.1:{port}", open_timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
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
    except Exception:
        pass
    finally:
        await ws.close()
    return out
