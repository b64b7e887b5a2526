"""Fuzzing the config parser, address parsers, mapping files and the WebSocket input.

Interesting inputs found while fuzzing are kept as explicit @example cases.
"""

from __future__ import annotations

import asyncio
import json
import tomllib

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ser_daemon.app.options import _OPTIONS, _from_toml, config_from_options
from ser_daemon.app.config import DaemonConfig, flatten_config
from ser_daemon.net.endpoints import parse_endpoint
from ser_daemon.outputs.osc_targets import parse_osc_target
from ser_daemon.bounded import read_toml
from ser_daemon.errors import SerError
from ser_daemon.outputs.mapping import mapping_from_dict

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
                      st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)
option_names = st.sampled_from(sorted(_OPTIONS)) | st.text(max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(option_names, json_value, max_size=6))
@example({"hop_ms": float("nan")})
@example({"osc": ["vrchat@[::1]:9000", "vmc"], "osc_profile": "vxp"})
@example({"ws": "0.0.0.0:1", "allow_remote": True})
@example({"device": 3, "input": "x.wav"})
@example({"vad_min_speech_ms": 900.0, "vad_hangover_ms": 100.0})
@example({"ws_token": "short"})
@example({"samplerate": 10**12})
@example({})
@example({"hop_ms": 100, "vad": {"threshold_db": 6.0}, "osc": "vrchat@127.0.0.1:9001"})
@example({"ws": "0.0.0.0:1", "allow_remote": True, "ws_token": "0123456789abcdef"})
def test_config_options_never_crash(values: dict) -> None:
    """Any config file content gives a valid config or a SerError (one line, exit 2), nothing else."""
    try:
        opts = _from_toml(flatten_config(values), "fuzz.toml")
        opts.setdefault("input", ["demo.wav"])
        cfg = config_from_options(opts)
    except SerError as exc:
        assert "\n" not in str(exc)
        assert values not in VALID_CONFIGS, f"a valid config was refused: {exc}"
        return
    assert isinstance(cfg, DaemonConfig)
    if isinstance(values.get("hop_ms"), (int, float)) and not isinstance(values["hop_ms"], bool):
        assert cfg.analysis.hop_ms == float(values["hop_ms"])


VALID_CONFIGS = [
    {},
    {"hop_ms": 100, "vad": {"threshold_db": 6.0}, "osc": "vrchat@127.0.0.1:9001"},
    {"ws": "0.0.0.0:1", "allow_remote": True, "ws_token": "0123456789abcdef"},
]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
@example("[::1]:9000")
@example("vrchat@")
@example("host:65536")
@example(":9000")
@example("a@b@c:1")
@example("9000")
@example("127.0.0.1:9001")
@example("[::1]:9002")
def test_addresses_parse_or_refuse_clearly(text: str) -> None:
    for parse in (parse_endpoint, parse_osc_target):
        try:
            ep = parse(text)
        except SerError:
            assert text not in VALID_ADDRESSES, f"{parse.__name__} refused a valid address {text!r}"
            continue
        port = ep.port if hasattr(ep, "port") else ep.endpoint.port
        assert 0 <= port <= 65535
        if text in VALID_ADDRESSES:
            assert port == VALID_ADDRESSES[text]


VALID_ADDRESSES = {"9000": 9000, "127.0.0.1:9001": 9001, "[::1]:9002": 9002}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
@example("a = [1, 'x'\n")
@example("[vad]\nthreshold_db = 3\n[vad]\n")
@example("hop_ms = 100\n[vad]\nthreshold_db = 3\n")
@example("\r")
@example("\ufeffa = 1")
def test_toml_text_never_crashes(tmp_path_factory, text: str) -> None:
    """Valid TOML reads as tomllib reads it; anything else is one ConfigError line."""
    p = tmp_path_factory.mktemp("toml") / "c.toml"
    p.write_bytes(text.encode("utf-8"))  # as written: no newline translation either way
    try:
        expected = tomllib.loads(text.removeprefix("\ufeff"))  # a UTF-8 byte-order mark is accepted
    except tomllib.TOMLDecodeError:
        expected = None
    try:
        got = read_toml(p, "config file")
    except SerError as exc:
        assert expected is None, f"valid TOML refused: {exc}"
        assert "\n" not in str(exc)
        return
    assert got == expected


LABELS = ("neutral", "happy", "angry")
row = st.dictionaries(st.sampled_from(["happy", "angry", "neutral", "Joy", "browDownLeft", "x y"]),
                      st.one_of(st.floats(allow_nan=True), st.integers(-2, 2), st.text(max_size=3)), max_size=3)
table = st.dictionaries(st.sampled_from(list(LABELS) + ["sad"]), row, max_size=4)
VALID_MAPPING = {"vrm": {"neutral": {"neutral": 1.0}, "happy": {"happy": 1.0}, "angry": {"angry": 0.5}},
                 "vrm0": {c: {} for c in LABELS}, "arkit": {c: {"browDownLeft": 0.0} for c in LABELS},
                 "options": {"gain": 1.0}}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={"vrm": table, "vrm0": table, "arkit": table,
                                          "options": st.dictionaries(st.text(max_size=16), json_leaf, max_size=3)}),
       st.lists(st.floats(0, 1), min_size=3, max_size=3))
@example(VALID_MAPPING, [0.2, 0.5, 0.3])
def test_mapping_files_validate_or_refuse(data: dict, probs: list[float]) -> None:
    try:
        m = mapping_from_dict(data, LABELS)
    except SerError:
        assert data != VALID_MAPPING, "a valid mapping was refused"
        return
    for ts in ("vrm", "vrm0", "arkit"):
        assert all(0.0 <= w <= 1.0 for w in m.weights(probs, ts).values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=100), st.binary(max_size=100), json_value.map(json.dumps)), min_size=1, max_size=4))
@example(["{}", '{"type":"hello"}'])
@example([b"\xff\xfe"])
@example(["\x00" * 50])
def test_websocket_input_never_hurts_the_server(messages: list) -> None:
    """Whatever a client sends, the server stays up and other clients keep getting states."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from ser_daemon.net.endpoints import Endpoint
    from ser_daemon.core.state import EmotionState
    from ser_daemon.outputs.websocket import WsBroadcaster

    async def main() -> None:
        ws = WsBroadcaster({"type": "hello"})
        port = await ws.start(Endpoint("127.0.0.1", 0))
        try:
            bystander = await connect(f"ws://127.0.0.1:{port}")
            await bystander.recv()
            fuzzer = await connect(f"ws://127.0.0.1:{port}")
            await fuzzer.recv()
            for m in messages:
                try:
                    await fuzzer.send(m)
                except ConnectionClosed:
                    break
            await asyncio.sleep(0.02)
            ws.broadcast(EmotionState("s", 0, ("a", "b"), "a", 0.5, (0.5, 0.5), (0.5, 0.5), True, 0, 0.0, 0.0))
            got = json.loads(await asyncio.wait_for(bystander.recv(), 5))
            assert got["type"] == "state"
            await bystander.close()
            await fuzzer.close()
        finally:
            await ws.close()

    asyncio.run(asyncio.wait_for(main(), 20))
