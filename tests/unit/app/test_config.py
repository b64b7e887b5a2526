"""Settings: every range boundary, the address parsers, config files and their precedence (fast, in memory).

Each row of the boundary tables is a value just inside and just outside a documented range, so a
range that drifts by one (or a ``<=`` that becomes ``<``) fails here.
"""

from __future__ import annotations

import re

import pytest

from ser_daemon import cli
from ser_daemon.core.settings import AnalysisSettings, SmoothingSettings, VadSettings
from ser_daemon.app.config import DaemonConfig, flatten_config, load_toml
from ser_daemon.net.endpoints import Endpoint, is_loopback, parse_endpoint
from ser_daemon.outputs.osc_targets import OscTarget, parse_osc_target
from ser_daemon.bounded import read_toml
from ser_daemon.errors import ConfigError

TOKEN = "s3cret-token-of-16+"

# (settings class, field, lowest accepted, highest accepted, a refused value below, a refused value above)
RANGES = [
    (VadSettings, "vad_threshold_db", 0.0, 60.0, -0.01, 60.01),
    (VadSettings, "vad_min_level_dbfs", -120.0, 0.0, -120.01, 0.01),
    (VadSettings, "vad_max_flatness", 0.0, 1.0, -0.01, 1.01),
    (VadSettings, "vad_hangover_ms", 10.0, 10000.0, 9.99, 10000.01),
    (VadSettings, "vad_min_speech_ms", 10.0, 10000.0, 9.99, 10000.01),
    (VadSettings, "vad_floor_rise_db_per_s", 0.01, 100.0, 0.0099, 100.01),
    (SmoothingSettings, "ema_ms", 0.0, 60000.0, -0.01, 60000.01),
    (SmoothingSettings, "hysteresis", 0.0, 1.0, -0.01, 1.01),
    (SmoothingSettings, "min_dwell_ms", 0.0, 60000.0, -0.01, 60000.01),
    (SmoothingSettings, "hold_ms", 0.0, 60000.0, -0.01, 60000.01),
    (SmoothingSettings, "decay_ms", 1.0, 600000.0, 0.99, 600000.01),
    (SmoothingSettings, "min_confidence", 0.0, 1.0, -0.01, 1.01),
    (SmoothingSettings, "utterance_gap_ms", 0.0, 60000.0, -0.01, 60000.01),
    (SmoothingSettings, "utterance_prior", 0.0, 1000.0, -0.01, 1000.01),
    (AnalysisSettings, "hop_ms", 10.0, 10000.0, 9.99, 10000.01),
    (AnalysisSettings, "window_ms", 100.0, 30000.0, 99.99, 30000.01),
    (AnalysisSettings, "latency_budget_ms", 1.0, 60000.0, 0.99, 60000.01),
    (DaemonConfig, "block_ms", 2.0, 500.0, 1.99, 500.01),
    (DaemonConfig, "threads", 1, 64, 0, 65),
    (DaemonConfig, "vrchat_listen", 0, 65535, -1, 65536),
    (DaemonConfig, "ws_queue", 1, 100000, 0, 100001),
    (DaemonConfig, "wait_clients", 0, 10000, -1, 10001),
    (DaemonConfig, "samplerate", 4000, 384000, 3999, 384001),
    (DaemonConfig, "channels", 1, 64, 0, 65),
    (DaemonConfig, "max_clients", 1, 100000, 0, 100001),
    (DaemonConfig, "max_message_bytes", 128, 64 * 1024 * 1024, 127, 64 * 1024 * 1024 + 1),
    (DaemonConfig, "max_streams", 1, 100000, 0, 100001),
    (DaemonConfig, "vrchat_max_hz", 0.1, 1000.0, 0.09, 1000.01),
    (DaemonConfig, "session_retention_days", 1.0, 36500.0, 0.99, 36500.01),
]


@pytest.mark.parametrize("cls,name,lo,hi,below,above", RANGES, ids=[r[1] for r in RANGES])
def test_range_boundaries(cls, name, lo, hi, below, above) -> None:
    extra = {"vad_hangover_ms": 10000.0} if name == "vad_min_speech_ms" else {}
    if name == "vad_hangover_ms":
        extra = {"vad_min_speech_ms": 10.0}
    assert getattr(cls(**{name: lo, **extra}), name) == lo
    assert getattr(cls(**{name: hi, **extra}), name) == hi
    for bad in (below, above, float("nan"), "1"):
        if isinstance(bad, str) and isinstance(lo, int):
            continue
        with pytest.raises(ConfigError if isinstance(lo, float) else (ConfigError, TypeError),
                           match=f"^{name} must be" if not isinstance(bad, str) else None):
            cls(**{name: bad, **extra})


def test_min_speech_may_not_exceed_hangover() -> None:
    VadSettings(vad_min_speech_ms=200.0, vad_hangover_ms=200.0)
    with pytest.raises(ConfigError, match=r"vad_min_speech_ms \(201.0\) cannot exceed vad_hangover_ms \(200.0\)"):
        VadSettings(vad_min_speech_ms=201.0, vad_hangover_ms=200.0)


def test_daemon_config_choices_and_combinations() -> None:
    with pytest.raises(ConfigError, match="backend must be"):
        DaemonConfig(backend="onnx")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="osc_format must be"):
        DaemonConfig(osc_format="json")  # type: ignore[arg-type]
    for backend in ("auto", "litert", "keras"):
        DaemonConfig(backend=backend)  # type: ignore[arg-type]
    DaemonConfig(osc_format="messages")
    with pytest.raises(ConfigError, match="either --input files or --device"):
        DaemonConfig(inputs=("a.wav",), device=1)  # type: ignore[arg-type]
    DaemonConfig(inputs=("a.wav",), device=())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least 16 characters"):
        DaemonConfig(ws_token="x" * 15)
    assert DaemonConfig(ws_token="x" * 16).ws_token == "x" * 16


@pytest.mark.parametrize("field", ["ws", "web", "ingest"])
def test_remote_listening_needs_permission_and_a_token(field: str) -> None:
    remote = Endpoint("0.0.0.0", 1)
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0"):
        DaemonConfig(**{field: remote})
    with pytest.raises(ConfigError, match="needs a token"):
        DaemonConfig(**{field: remote}, allow_remote=True)
    DaemonConfig(**{field: remote}, allow_remote=True, ws_token=TOKEN)
    DaemonConfig(**{field: Endpoint("127.0.0.2", 1)})


def test_loopback_names() -> None:
    assert [is_loopback(h) for h in ("localhost", "::1", "127.0.0.1", "127.9.9.9", "0.0.0.0", "::", "128.0.0.1")] == [
        True, True, True, True, False, False, False,
    ]


@pytest.mark.parametrize("text,host,port", [
    ("9000", "127.0.0.1", 9000), ("0", "127.0.0.1", 0), ("65535", "127.0.0.1", 65535),
    ("host.local:1", "host.local", 1), ("[::1]:9000", "::1", 9000), (" 10.0.0.2:80 ", "10.0.0.2", 80),
    (7, "127.0.0.1", 7),
])
def test_endpoints_parse(text, host: str, port: int) -> None:
    assert parse_endpoint(text) == Endpoint(host, port)


@pytest.mark.parametrize("text,match", [
    ("65536", "port must be in 0..65535"), ("-1", "bad port|port must be"), ("h:x", "bad port"),
    (":9000", "bad host"), ("a b:1", "bad host"), (True, "must be HOST:PORT"), (None, "must be HOST:PORT"),
])
def test_bad_endpoints_are_refused(text, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_endpoint(text, what="--ws")


def test_endpoint_text() -> None:
    assert str(Endpoint("::1", 9000)) == "[::1]:9000" and str(Endpoint("h", 1)) == "h:1"
    assert parse_endpoint("1", default_host="::1") == Endpoint("::1", 1)
    assert str(OscTarget(Endpoint("h", 1), "vmc")) == "vmc@h:1"
    with pytest.raises(ConfigError, match="^--x: bad host"):
        parse_endpoint(":1", what="--x")


@pytest.mark.parametrize("text,profile,host,port", [
    ("vrchat", "vrchat", "127.0.0.1", 9000), ("vmc", "vmc", "127.0.0.1", 39539), ("vxp", "vxp", "127.0.0.1", 9000),
    ("generic", "generic", "127.0.0.1", 9000), ("9001", "generic", "127.0.0.1", 9001),
    ("vmc@10.0.0.5:39540", "vmc", "10.0.0.5", 39540), ("vrchat@", "vrchat", "127.0.0.1", 9000),
])
def test_osc_targets_parse(text: str, profile: str, host: str, port: int) -> None:
    assert parse_osc_target(text) == OscTarget(Endpoint(host, port), profile)


def test_osc_target_default_profile_and_errors() -> None:
    assert parse_osc_target("9001", default_profile="vrchat").profile == "vrchat"
    with pytest.raises(ConfigError, match="unknown profile 'osc'"):
        parse_osc_target("osc@1.2.3.4:1")


def test_config_files_flatten_tables(tmp_path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('hop-ms = 100\n[vad]\nthreshold_db = 6\nvad_hangover_ms = 300\n[smoothing]\nema_ms = 0\n'
                 '[osc]\nformat = "messages"\n', encoding="utf-8")
    assert load_toml(f) == {"hop_ms": 100, "vad_threshold_db": 6, "vad_hangover_ms": 300, "ema_ms": 0,
                            "osc_format": "messages"}
    with pytest.raises(ConfigError, match="c.toml: vad_threshold_db is given twice"):
        flatten_config({"vad_threshold_db": 1, "vad": {"threshold_db": 2}}, source="c.toml")


def test_config_file_errors_are_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match="^config file not found: "):
        read_toml(tmp_path / "none.toml", "config file")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        read_toml(bad, "config file")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="^config file .*bin.toml is not UTF-8 text"):
        read_toml(binary, "config file")
    with pytest.raises(ConfigError, match="^mapping file|^cannot read mapping file"):
        read_toml(tmp_path, "mapping file")  # a folder


# -- precedence: command line > config file > default ---------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[DaemonConfig]:
    """Run cli.main up to the validated config; the daemon itself is not started."""
    got: list[DaemonConfig] = []
    monkeypatch.setattr(cli, "_run", lambda config, stats_json: got.append(config) or 0)
    monkeypatch.delenv("SER_WS_TOKEN", raising=False)
    return got


def test_precedence_table(tmp_path, captured: list[DaemonConfig]) -> None:
    f = tmp_path / "c.toml"
    f.write_text("hop_ms = 100\nema_ms = 50\nws_queue = 7\nthreads = 3\n", encoding="utf-8")
    assert cli.main(["--input", "x.wav", "--config", str(f), "--hop-ms", "200", "--threads", "2"]) == 0
    cfg = captured[-1]
    defaults = DaemonConfig()
    table = {
        # option: (got, expected, where it comes from)
        "hop_ms": (cfg.analysis.hop_ms, 200.0),  # flag over file
        "threads": (cfg.threads, 2),  # flag over file
        "ema_ms": (cfg.analysis.smoothing.ema_ms, 50.0),  # file over default
        "ws_queue": (cfg.ws_queue, 7),  # file over default
        "block_ms": (cfg.block_ms, defaults.block_ms),  # default
        "latency_budget_ms": (cfg.analysis.latency_budget_ms, defaults.analysis.latency_budget_ms),
    }
    assert {k: v[0] for k, v in table.items()} == {k: v[1] for k, v in table.items()}
    # The flag wins wherever it stands on the command line.
    assert cli.main(["--input", "x.wav", "--hop-ms", "300", "--config", str(f)]) == 0
    assert captured[-1].analysis.hop_ms == 300.0


def test_token_from_the_documented_environment_variable(captured, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SER_WS_TOKEN", TOKEN)
    assert cli.main(["--input", "x.wav"]) == 0
    assert captured[-1].ws_token == TOKEN
    assert cli.main(["--input", "x.wav", "--ws-token", "flag-token-0123456789"]) == 0
    assert captured[-1].ws_token == "flag-token-0123456789"  # the flag wins over the environment
    monkeypatch.setenv("SER_WS_TOKEN", "")
    assert cli.main(["--input", "x.wav"]) == 0
    assert captured[-1].ws_token is None


def test_bad_config_file_value_exits_2(tmp_path, captured, capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "c.toml"
    f.write_text("hop_ms = 5\n", encoding="utf-8")
    assert cli.main(["--input", "x.wav", "--config", str(f)]) == 2
    assert capsys.readouterr().err == "ser-daemon: error: hop_ms must be a number in [10.0, 10000.0]. Received: 5.0\n"
    assert captured == []


def test_load_toml_names_the_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="^config file not found: "):
        load_toml(tmp_path / "none.toml")
    f = tmp_path / "d.toml"
    f.write_text("vad_threshold_db = 1\n[vad]\nthreshold_db = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{f}: vad_threshold_db is given twice") + "$"):
        load_toml(f)



def test_more_messages_exactly() -> None:
    with pytest.raises(ConfigError) as err:
        DaemonConfig(inputs=("a.wav",), device=1)  # type: ignore[arg-type]
    assert str(err.value) == "give either --input files or --device, not both"
    with pytest.raises(ConfigError) as err:
        DaemonConfig(ws=Endpoint("0.0.0.0", 1))
    assert str(err.value).endswith(
        "Use a loopback address, or pass --allow-remote (with --ws-token) to listen on other interfaces")
    with pytest.raises(ConfigError) as err:
        DaemonConfig(vrchat_max_hz=0.0)
    assert str(err.value) == "vrchat_max_hz must be a rate in [0.1, 1000] per second. Received: 0.0"
    with pytest.raises(ConfigError) as err:
        DaemonConfig(max_streams=0)
    assert str(err.value) == "max_streams must be in 1..100000. Received: 0"
    with pytest.raises(ConfigError, match="^config: x_a is given twice$"):
        flatten_config({"x": {"a": 1}, "x_a": 2})
    with pytest.raises(ConfigError, match="^endpoint: bad host"):
        parse_endpoint(":1")


@pytest.mark.parametrize("token,ok", [
    ("a" * 16, True), ("a" * 15, False), ("abcdefgh ijklmnop", False), ("\x01" * 16, False), ("ab\tcdefghijklmnop", False),
])
def test_tokens(token: str, ok: bool) -> None:
    from ser_daemon.net.endpoints import check_token

    hint = "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
    if ok:
        assert check_token(token) == token
        return
    with pytest.raises(ConfigError) as err:
        check_token(token)
    assert str(err.value).startswith("ws_token must") and str(err.value).endswith(hint)


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://example.org", "app+x.y-z://host", "HTTP://Host:1"])
def test_origins_accepted(origin: str) -> None:
    from ser_daemon.net.endpoints import parse_origin

    assert parse_origin(origin) == origin
    assert DaemonConfig(ws_allow_origin=(origin,)).ws_allow_origin == (origin,)


@pytest.mark.parametrize("origin", [
    " http://a", "http://a b", "http://a\x01", "http//a", "1http://a", "://a", "http://user@a", "http://:pw@a",
    "http://user:pw@a", "http://a/", "http://a/x", "http://a?q", "http://a#f", "http://a:", "http://a:0",
    "http://a:99999", "http://", "localhost:3000",
])
def test_origins_refused(origin: str) -> None:
    from ser_daemon.net.endpoints import parse_origin

    with pytest.raises(ConfigError) as err:
        parse_origin(origin)
    assert str(err.value) == (f"--ws-allow-origin: {origin!r} is not an origin; expected SCHEME://HOST[:PORT], "
                              "e.g. http://localhost:3000")


def test_osc_target_messages() -> None:
    with pytest.raises(ConfigError, match="^--osc: bad host"):
        parse_osc_target("vmc@a@b:1")  # the profile is before the first @
    with pytest.raises(ConfigError) as err:
        parse_osc_target("osc@1.2.3.4:1")
    assert str(err.value) == "--osc: unknown profile 'osc' in 'osc@1.2.3.4:1'; choose one of generic, vrchat, vmc, vxp"
    with pytest.raises(ConfigError) as err:
        parse_osc_target("127.0.0.1:0")
    assert str(err.value) == "--osc: port 0 is not a place to send to; give the receiver's port. Received: '127.0.0.1:0'"
    assert parse_osc_target("127.0.0.1:1").endpoint.port == 1
    with pytest.raises(ConfigError, match="^--osc: bad host"):
        parse_osc_target(":9000")
    with pytest.raises(ConfigError, match="bad host"):
        parse_endpoint("[::1:9000")  # an unclosed bracket is not an IPv6 literal


def test_vrchat_parameter_sets_and_one_stdout_writer() -> None:
    for name in ("compact", "full", "vxp", "none"):
        assert DaemonConfig(vrchat_params=name).vrchat_params == name
    with pytest.raises(ConfigError) as err:
        DaemonConfig(vrchat_params="all")
    assert str(err.value) == "vrchat_params must be one of compact, full, vxp, none. Received: 'all'"
    assert DaemonConfig(jsonl=True).jsonl and DaemonConfig(print_states=True).print_states
    with pytest.raises(ConfigError) as err:
        DaemonConfig(jsonl=True, print_states=True)
    assert str(err.value) == "--jsonl and --print both write to stdout; choose one"


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("LocalHost", True), ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True),
    ("[::1]", True), ("127.example.invalid", False), ("127.0.0.1.nip.io", False), ("0.0.0.0", False),
    ("::", False), ("192.168.1.2", False), ("", False), ("X127.0.0.1", False), ("::1X", False),
    (None, False), (2130706433, False), (b"127.0.0.1", False),
])
def test_loopback_is_parsed_not_judged_by_its_prefix(host: str, loopback: bool) -> None:
    """Only the brackets of ``[::1]`` are taken off; a lookalike or a value that is not text is not this machine."""
    from ser_daemon.net.endpoints import is_loopback

    assert is_loopback(host) is loopback
