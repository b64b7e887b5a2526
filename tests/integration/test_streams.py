"""Several streams in one daemon: multiple inputs and the WebSocket ingest endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle import OscBundle

from conftest import timeout
from helpers import REPO, UdpReceiver, daemon_cmd, free_port, ws_connect
from ser_daemon.net.ingest import ProtocolError, parse_start
from tiny_model import tone, write_wav



@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=20),
                 st.dictionaries(st.sampled_from(["type", "stream", "sample_rate", "channels", "x"]),
                                 st.one_of(st.none(), st.booleans(), st.integers(-10, 200000), st.text(max_size=70)),
                                 max_size=5).map(json.dumps)))
@example('{"type": "start", "stream": "a", "sample_rate": 16000}')
@example('{"type": "start", "stream": "../etc", "sample_rate": 16000}')
@example('{"type": "start", "stream": "a", "sample_rate": true}')
@example('{"type": "start", "stream": "a", "sample_rate": 16000, "channels": 0}')
@example('{"type": "start", "stream": "b-2", "sample_rate": 48000, "channels": 2}')
def test_start_message_parses_or_is_refused(msg) -> None:
    try:
        req = parse_start(msg)
    except ProtocolError as exc:
        assert exc.code in (1007, 1008)
        assert msg not in VALID_STARTS, f"a valid start message was refused: {exc}"
        return
    assert 8000 <= req.sample_rate <= 192000 and 1 <= req.channels <= 8 and req.stream.isascii()
    if msg in VALID_STARTS:
        assert (req.stream, req.sample_rate, req.channels) == VALID_STARTS[msg]


FIELD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10, 300000), st.floats(allow_nan=True),
                         st.text(max_size=70), st.sampled_from(["nl\n", "a\n", "\na", "ok", "x" * 64, "x" * 65]),
                         st.lists(st.integers(), max_size=2))


def _field_ok(field: str, value: object) -> bool:
    """The protocol's rule for one field of the start message (README, "Many speakers")."""
    if field == "stream":
        return isinstance(value, str) and 1 <= len(value) <= 64 and all(
            c.isascii() and (c.isalnum() or c in "_-") for c in value)
    lo, hi = {"sample_rate": (8000, 192000), "channels": (1, 8)}[field]
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["stream", "sample_rate", "channels"]), FIELD_VALUES)
@example("sample_rate", 5)
@example("sample_rate", 16000.0)
@example("stream", "nl\n")
@example("channels", True)
def test_one_field_of_a_valid_start_message_mutated(field: str, value: object) -> None:
    """Issue 32: the fuzz above never built a valid message with one bad field (a bad rate), nor 'nl\\n'."""
    msg = {"type": "start", "stream": "alice", "sample_rate": 48000, "channels": 2}
    msg[field] = value
    try:
        req = parse_start(json.dumps(msg))
    except ProtocolError as exc:
        assert exc.code == 1007 and not _field_ok(field, value), (field, value, exc)
        return
    assert _field_ok(field, value), (field, value)
    assert getattr(req, field) == value


VALID_STARTS = {
    '{"type": "start", "stream": "a", "sample_rate": 16000}': ("a", 16000, 1),
    '{"type": "start", "stream": "b-2", "sample_rate": 48000, "channels": 2}': ("b-2", 48000, 2),
}


async def _ingest_client(port: int, stream: str, audio: np.ndarray, rate: int, channels: int) -> dict:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedOK

    async with connect(f"ws://127.0.0.1:{port}") as ws:
        await ws.send(json.dumps({"type": "start", "stream": stream, "sample_rate": rate, "channels": channels}))
        reply = json.loads(await ws.recv())
        block = rate // 50  # 20 ms
        pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
        t0 = time.monotonic()
        for k, i in enumerate(range(0, len(pcm), block)):
            await ws.send(pcm[i : i + block].tobytes())
            delay = t0 + (k + 1) * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await ws.send(json.dumps({"type": "stop"}))
        with pytest.raises(ConnectionClosedOK) as closed:  # the server ends the stream with a normal close
            await asyncio.wait_for(ws.recv(), timeout(10))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    return reply


@pytest.mark.needs_tf
@pytest.mark.slow
def test_two_remote_streams_over_ingest(tiny_bundle) -> None:
    ingest, ws_port = free_port(), free_port()
    rx = UdpReceiver()
    proc = subprocess.Popen(
        daemon_cmd("--ingest", f"127.0.0.1:{ingest}", "--ws", f"127.0.0.1:{ws_port}", "--ws-queue", "1000",
                   "--osc", f"127.0.0.1:{rx.port}", "--quiet"),
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO,
    )
    alice = np.repeat(tone(3000, 3.0 * 3, rate=48000)[: 48000 * 3, None], 2, axis=1)  # 48 kHz stereo, angry
    bob = tone(200, 3.0)[:, None]  # 16 kHz mono, calm

    async def main() -> tuple[list[dict], list[dict]]:
        watcher = await ws_connect(ws_port)
        msgs: list[dict] = []

        async def watch() -> None:
            finals = 0
            while finals < 2:
                m = json.loads(await asyncio.wait_for(watcher.recv(), timeout(20)))
                msgs.append(m)
                finals += bool(m.get("final"))

        w = asyncio.create_task(watch())
        replies = await asyncio.gather(
            _ingest_client(ingest, "alice", alice, 48000, 2), _ingest_client(ingest, "bob", bob, 16000, 1))
        await asyncio.wait_for(w, timeout(10))
        await watcher.close()
        return msgs, list(replies)

    try:
        msgs, replies = asyncio.run(main())
        rx.collect(time.monotonic() + 0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout(5))
    finally:
        proc.kill()
        rx.close()
    assert replies == [{"type": "started", "stream": "alice"}, {"type": "started", "stream": "bob"}]
    states = [m for m in msgs if m["type"] == "state"]
    for name, label in (("alice", "angry"), ("bob", "calm")):
        mine = [s for s in states if s["stream"] == name]
        assert [s["seq"] for s in mine] == list(range(len(mine)))
        assert label in [s["label"] for s in mine] and mine[-1]["final"]
        assert all(s["dropped_windows"] == 0 and s["overruns"] == 0 for s in mine)
    # Several streams: generic OSC carries the stream in the address.
    addrs = {list(OscBundle(d))[0].address for _, d in rx.packets if OscBundle.dgram_is_bundle(d)}
    assert addrs == {"/ser/alice/state", "/ser/bob/state"}


@pytest.mark.needs_tf
@pytest.mark.slow
def test_ingest_protocol_errors_close_with_clear_codes(tiny_bundle) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    ingest = free_port()
    proc = subprocess.Popen(
        daemon_cmd("--ingest", f"127.0.0.1:{ingest}", "--no-ws", "--no-osc", "--quiet"),
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO,
    )

    async def close_code(*messages) -> int:
        async with connect(f"ws://127.0.0.1:{ingest}") as ws:
            for m in messages:
                await ws.send(m)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), timeout(5))
            except ConnectionClosed:
                return ws.close_code

    async def main() -> dict[str, int]:
        deadline = time.monotonic() + timeout(20)
        while True:
            try:
                (await connect(f"ws://127.0.0.1:{ingest}")).transport.abort()
                break
            except OSError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        start = json.dumps({"type": "start", "stream": "x", "sample_rate": 16000})
        holder = await connect(f"ws://127.0.0.1:{ingest}")
        await holder.send(start)
        await holder.recv()
        codes = {
            "not_json": await close_code("hello"),
            "audio_first": await close_code(b"\x00\x00"),
            "bad_rate": await close_code(json.dumps({"type": "start", "stream": "y", "sample_rate": 5})),
            "duplicate": await close_code(start),
            "odd_bytes": await close_code(json.dumps({"type": "start", "stream": "z", "sample_rate": 16000}), b"\x00"),
            # "$" matched before a final newline: this one started (issue 32)
            "newline_id": await close_code(json.dumps({"type": "start", "stream": "nl\n", "sample_rate": 16000})),
        }
        await holder.close()
        return codes

    try:
        codes = asyncio.run(main())
        assert proc.poll() is None  # none of it hurt the daemon
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout(5))
    finally:
        proc.kill()
    assert codes == {"not_json": 1007, "audio_first": 1008, "bad_rate": 1007, "duplicate": 1008, "odd_bytes": 1007,
                     "newline_id": 1007}


@pytest.mark.needs_tf
@pytest.mark.slow
def test_several_inputs_are_several_streams(tiny_bundle, tmp_path) -> None:
    a = write_wav(tmp_path / "a.wav", tone(3000, 2.0))
    b = write_wav(tmp_path / "b.wav", tone(200, 2.0))
    rx = UdpReceiver()
    r = subprocess.run(
        daemon_cmd("--input", str(a), "--input", str(b), "--osc", f"127.0.0.1:{rx.port}", "--no-ws", "--quiet",
                   "--print"),
        capture_output=True, text=True, timeout=timeout(30), cwd=REPO,
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)},
    )
    rx.collect(time.monotonic() + 0.5, stop_after_idle=0.2)
    rx.close()
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("[a]") == 6 and r.stdout.count("[b]") == 6
    addrs = [list(OscBundle(d))[0] for _, d in rx.packets]
    assert {m.address for m in addrs} == {"/ser/a/state", "/ser/b/state"}
    assert "angry" in [m.params[0] for m in addrs if m.address == "/ser/a/state"]
    assert "calm" in [m.params[0] for m in addrs if m.address == "/ser/b/state"]


@pytest.mark.needs_tf
@pytest.mark.slow
def test_stereo_ingest_end_to_end_counts_frames_not_samples(tiny_bundle) -> None:
    """Issue 32: a frame size that ignored the channel count passed every ingest integration test.

    3 s of 16 kHz stereo (the voice on the left only) must give the decisions of 3 s, not of 6 s,
    and a message of 3 int16 samples (one and a half stereo frames) must close with 1007.
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    ingest, ws_port = free_port(), free_port()
    proc = subprocess.Popen(
        daemon_cmd("--ingest", f"127.0.0.1:{ingest}", "--ws", f"127.0.0.1:{ws_port}", "--ws-queue", "1000",
                   "--no-osc", "--quiet"),
        env={**os.environ, "SER_MODEL_DIR": str(tiny_bundle)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO,
    )
    left = tone(3000, 3.0)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)

    async def main() -> tuple[list[dict], int | None, str]:
        watcher = await ws_connect(ws_port)
        msgs: list[dict] = []

        async def watch() -> None:
            while not any(m.get("final") for m in msgs):
                msgs.append(json.loads(await asyncio.wait_for(watcher.recv(), timeout(20))))

        w = asyncio.create_task(watch())
        await _ingest_client(ingest, "duo", stereo, 16000, 2)
        await asyncio.wait_for(w, timeout(10))
        await watcher.close()
        async with connect(f"ws://127.0.0.1:{ingest}") as ws:
            await ws.send(json.dumps({"type": "start", "stream": "half", "sample_rate": 16000, "channels": 2}))
            await ws.recv()
            await ws.send(b"\x00\x00" * 3)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout(5))
        return msgs, closed.value.rcvd.code, closed.value.rcvd.reason

    try:
        msgs, code, reason = asyncio.run(main())
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout(5))
    finally:
        proc.kill()
    states = [m for m in msgs if m["type"] == "state" and m["stream"] == "duo"]
    # The tiny model: 1 s window, a decision every 250 ms: (3 - 1) / 0.25 + 1 = 9, and the final one.
    assert len(states) == 9 + 1, [s["seq"] for s in states]
    assert "angry" in [s["label"] for s in states] and states[-1]["final"]
    assert code == 1007 and "whole frames of 4 bytes" in reason
