"""Settings of the analysis pipeline and the daemon, as frozen dataclasses.

Every field here has a command-line flag and a TOML key of the same name
(``latency_budget_ms`` is ``--latency-budget-ms``), so a config file is just
the flags written down.  Parsing and validation live here so the CLI, the
config file and library users all get the same checks and the same messages.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from .bounded import MAX_CONFIG_BYTES, TooDeep, loads_toml, read_text_bounded
from .errors import ConfigError

__all__ = [
    "OscTarget",
    "parse_osc_target",
    "VadSettings",
    "SmoothingSettings",
    "AnalysisSettings",
    "Endpoint",
    "DaemonConfig",
    "parse_endpoint",
    "parse_origin",
    "check_token",
    "load_toml",
]

Backend = Literal["auto", "litert", "keras"]
OscFormat = Literal["bundle", "messages"]


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{name} must be a number in [{lo}, {hi}]. Received: {value!r}")


@dataclass(frozen=True)
class VadSettings:
    """Voice activity gate.

    A 10 ms frame counts as speech when it is ``vad_threshold_db`` above the
    tracked noise floor, louder than ``vad_min_level_dbfs`` and less spectrally
    flat than ``vad_max_flatness`` (steady hiss and fans are flat; voices are not).
    The gate is open while at least ``vad_min_speech_ms`` of speech frames fell
    within the last ``vad_hangover_ms``.
    """

    vad_threshold_db: float = 9.0
    vad_min_level_dbfs: float = -55.0
    vad_max_flatness: float = 0.55
    vad_hangover_ms: float = 500.0
    vad_min_speech_ms: float = 40.0
    vad_floor_rise_db_per_s: float = 3.0

    def __post_init__(self) -> None:
        _check_range("vad_threshold_db", self.vad_threshold_db, 0.0, 60.0)
        _check_range("vad_min_level_dbfs", self.vad_min_level_dbfs, -120.0, 0.0)
        _check_range("vad_max_flatness", self.vad_max_flatness, 0.0, 1.0)
        _check_range("vad_hangover_ms", self.vad_hangover_ms, 10.0, 10000.0)
        _check_range("vad_min_speech_ms", self.vad_min_speech_ms, 10.0, 10000.0)
        _check_range("vad_floor_rise_db_per_s", self.vad_floor_rise_db_per_s, 0.01, 100.0)
        if self.vad_min_speech_ms > self.vad_hangover_ms:
            raise ConfigError(
                f"vad_min_speech_ms ({self.vad_min_speech_ms}) cannot exceed vad_hangover_ms ({self.vad_hangover_ms})"
            )


@dataclass(frozen=True)
class SmoothingSettings:
    """Turns noisy per-window probabilities into a face that does not flicker.

    ``ema_ms`` is the time constant of the exponential moving average while a
    voice is heard.  A new label must beat the current one by ``hysteresis``
    (probability) and the current one must have been shown ``min_dwell_ms``.
    When the voice stops, the state is held ``hold_ms`` and then decays toward
    neutral with time constant ``decay_ms``.  Below ``min_confidence`` the
    label keeps the best guess but the state is marked uncertain ("unsure").

    Emotion usually changes between utterances, not inside one.  A voice that
    returns after at least ``utterance_gap_ms`` of closed gate starts a new
    utterance: its windows no longer hold the previous one's audio (see
    :class:`AnalysisSettings`), and the average restarts, weighing what was
    shown before like ``utterance_prior`` windows of the new utterance (window
    ``k`` of the utterance moves the average by ``1 / (utterance_prior + k)``
    until the EMA's own step is larger).  ``utterance_gap_ms = 0`` turns this off.
    """

    # Chosen with ser-eval's timeline on validation speakers only (EMOVO f1, m1; the reported
    # speakers were never used): see models/default/MODEL_CARD.md.  A hold that outlasts the
    # pauses between sentences keeps the face from dropping to neutral at every breath.
    ema_ms: float = 800.0
    hysteresis: float = 0.10
    min_dwell_ms: float = 750.0
    hold_ms: float = 2000.0
    decay_ms: float = 2000.0
    min_confidence: float = 0.15
    utterance_gap_ms: float = 0.0
    utterance_prior: float = 1.0

    def __post_init__(self) -> None:
        _check_range("ema_ms", self.ema_ms, 0.0, 60000.0)
        _check_range("utterance_gap_ms", self.utterance_gap_ms, 0.0, 60000.0)
        _check_range("utterance_prior", self.utterance_prior, 0.0, 1000.0)
        _check_range("hysteresis", self.hysteresis, 0.0, 1.0)
        _check_range("min_dwell_ms", self.min_dwell_ms, 0.0, 60000.0)
        _check_range("hold_ms", self.hold_ms, 0.0, 60000.0)
        _check_range("decay_ms", self.decay_ms, 1.0, 600000.0)
        _check_range("min_confidence", self.min_confidence, 0.0, 1.0)


@dataclass(frozen=True)
class AnalysisSettings:
    """How audio becomes decisions: hop, window, budget, gate and smoothing.

    Attributes:
        hop_ms: milliseconds between decisions.
        window_ms: audio per decision; None uses the model's own window
            (a different length than the model was trained on is refused).
        latency_budget_ms: a decision whose newest audio is older than this
            when it is computed is marked late; windows that a newer one has
            already superseded are skipped and counted instead of queued.
        drop_stale: skip superseded windows (real time); off for offline replay,
            where every hop is evaluated.
        mask_previous_utterance: while a new utterance (see
            :class:`SmoothingSettings`) is younger than a window, the part of the
            window before its onset is filled with the pause's own background
            instead of the previous utterance, as training windows at an onset
            are padded with quiet.
    """

    hop_ms: float = 250.0
    window_ms: float | None = None
    latency_budget_ms: float = 150.0
    drop_stale: bool = True
    mask_previous_utterance: bool = True
    vad: VadSettings = field(default_factory=VadSettings)
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)

    def __post_init__(self) -> None:
        _check_range("hop_ms", self.hop_ms, 10.0, 10000.0)
        if self.window_ms is not None:
            _check_range("window_ms", self.window_ms, 100.0, 30000.0)
        _check_range("latency_budget_ms", self.latency_budget_ms, 1.0, 60000.0)


@dataclass(frozen=True)
class Endpoint:
    """A host and port, as given by the user (``HOST:PORT`` or ``PORT``)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_HOST_RE = re.compile(r"^[A-Za-z0-9._\-:]+$")


def parse_endpoint(text: str, default_host: str = "127.0.0.1", what: str = "endpoint") -> Endpoint:
    """Parse ``HOST:PORT``, ``[v6]:PORT`` or ``PORT``.

    Raises:
        ConfigError: the text is not of that form or the port is out of range.
    """
    if not isinstance(text, (str, int)) or isinstance(text, bool):
        raise ConfigError(f"{what} must be HOST:PORT or PORT. Received: {text!r}")
    s = str(text).strip()
    host, sep, port_s = s.rpartition(":")
    if not sep:
        host, port_s = default_host, s
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not _HOST_RE.fullmatch(host):
        raise ConfigError(f"{what}: bad host in {s!r}; expected HOST:PORT, e.g. 127.0.0.1:9000")
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"{what}: bad port in {s!r}; expected HOST:PORT, e.g. 127.0.0.1:9000") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port must be in 0..65535. Received: {port}")
    return Endpoint(host, port)


def parse_origin(text: str) -> str:
    """Check a browser origin as browsers send it: ``scheme://host[:port]``, nothing more.

    Raises:
        ConfigError: anything else (a path, a bare host name, spaces, a bad port).
    """
    import urllib.parse

    s = str(text)
    bad = ConfigError(
        f"--ws-allow-origin: {s!r} is not an origin; expected SCHEME://HOST[:PORT], e.g. http://localhost:3000"
    )
    if s != s.strip() or not s.isprintable() or " " in s:
        raise bad
    try:
        u = urllib.parse.urlsplit(s)
        port = u.port
    except ValueError:
        raise bad from None
    if not re.fullmatch(r"[a-z][a-z0-9+.\-]*", u.scheme) or not u.hostname or u.username or u.password:
        raise bad
    if u.path or u.query or u.fragment or s.endswith(":") or port == 0:
        raise bad
    return s


@dataclass(frozen=True)
class OscTarget:
    """Where to send OSC and in which profile (generic, vrchat, vmc, vxp)."""

    endpoint: Endpoint
    profile: str = "generic"

    def __str__(self) -> str:
        return f"{self.profile}@{self.endpoint}"


OSC_PROFILES = ("generic", "vrchat", "vmc", "vxp")
VRCHAT_PARAM_SETS = ("compact", "full", "vxp", "none")
OSC_DEFAULT_PORTS = {"generic": 9000, "vrchat": 9000, "vmc": 39539, "vxp": 9000}


def _profile_typo(word: str) -> str | None:
    """The OSC profile ``word`` was probably meant to be (``vrcaht`` -> ``vrchat``), or None."""
    import difflib

    if not word or word in OSC_PROFILES or word.replace(".", "").isdigit() or "." in word:
        return None  # a profile, a port, or a dotted host name: no typo of a profile
    close = difflib.get_close_matches(word.lower(), OSC_PROFILES, n=1, cutoff=0.6)
    return close[0] if close else None


def parse_osc_target(text: str, default_profile: str = "generic") -> OscTarget:
    """Parse ``HOST:PORT``, ``PROFILE``, ``PROFILE:PORT`` (to 127.0.0.1) or ``PROFILE@HOST:PORT``.

    A first part that reads like a mistyped profile (``vrcaht``, ``vrcaht:9000``) is refused
    with the profile it was probably meant to be, rather than taken for a host name and
    sent to nowhere.

    Raises:
        ConfigError: unknown profile or bad address.
    """
    s = str(text).strip()
    profile, sep, rest = s.partition("@")
    if not sep:
        head, colon, port = s.partition(":")
        if s in OSC_PROFILES:
            profile, rest = s, ""
        elif colon and head in OSC_PROFILES:  # PROFILE:PORT, e.g. vrchat:9000 (never a host called "vrchat")
            profile, rest = head, f"127.0.0.1:{port}"
        elif _profile_typo(head if colon else s):
            profile, rest = head if colon else s, ""
        else:
            profile, rest = default_profile, s
    if profile not in OSC_PROFILES:
        hint = _profile_typo(profile)
        raise ConfigError(f"--osc: unknown profile {profile!r}" + (f"; did you mean {hint}?" if hint else
                          f" in {s!r}; choose one of {', '.join(OSC_PROFILES)}"))
    if not rest:
        rest = f"127.0.0.1:{OSC_DEFAULT_PORTS[profile]}"
    endpoint = parse_endpoint(rest, what="--osc")
    if endpoint.port == 0:
        raise ConfigError(f"--osc: port 0 is not a place to send to; give the receiver's port. Received: {s!r}")
    return OscTarget(endpoint, profile)


@dataclass(frozen=True)
class DaemonConfig:
    """Everything ``ser-daemon`` was asked to do.

    Attributes:
        inputs: WAV files to replay (empty when a device is used or for the demo).
        device: sound device index or name substring (a tuple for several devices), or None.
        fast: replay files as fast as possible instead of at real time.
        loop: replay files forever.
        samplerate: device capture rate in Hertz, or None for the device default.
        channels: device capture channels, or None for the device's own count (max 2).
        block_ms: capture block length.
        model: model bundle path, or None for the shipped default.
        backend: inference runtime.
        threads: CPU threads for LiteRT.
        osc: OSC targets with their profiles.
        osc_format: bundles, or single messages for receivers without bundle support.
        mapping: expression mapping file (None: the shipped default).
        vrchat_prefix: prefix of the VRChat avatar parameter names.
        vrchat_max_hz: most VRChat/VXP parameter updates per second.
        vrchat_listen: UDP port on 127.0.0.1 where VRChat's /avatar/change is heard (0: off).
        vrchat_params: the VRChat parameter set: compact (Label + Intensity + Voice, 17 synced
            bits), full, vxp or none; the mapping's [vrchat] table edits it.
        vrchat_ignore_mute: keep broadcasting while VRChat reports MuteSelf.
        oscquery: advertise the VRChat listener over mDNS/OSCQuery on a free port (127.0.0.1
            only) and send to the VRChat client found that way; ``vrchat_listen`` is then
            only the fallback when no VRChat answers.
        host_api: PortAudio host API to take devices from (name substring), or None
            for the platform's default (WASAPI on Windows, Core Audio on macOS).
        jsonl: write every message (hello, states, statuses) as one JSON line on stdout.
        profile: the user's personal profile (a name or a path), used for the local
            inputs (microphones and files, not ingest streams), or None.
        profile_update: save the live speaker baseline back into the profile at exit: True
            always, False never, None (the default) only when the inputs are microphones,
            never for files (usually someone else's voice); see :attr:`updates_profile`.
        ws: WebSocket listen address, or None for none.
        web: listen address of the live web view (page + WebSocket at /ws), or None.
        ingest: listen address where remote clients stream 16-bit PCM over WebSocket, or None.
        ws_queue: messages queued per WebSocket client before the oldest is dropped.
        max_clients: WebSocket connections allowed at once (per daemon).
        max_message_bytes: largest message a WebSocket client may send.
        max_streams: ingest streams allowed at once; more are refused with close code 1013.
        ws_token: secret clients must present; required for non-loopback addresses.
        ws_allow_origin: browser origins (besides the web view's own) allowed to connect.
        allow_remote: permit non-loopback listen addresses (then a token is required).
        wait_clients: start audio only once this many WebSocket clients are connected.
        print_states: print one line per decision on stdout.
        quiet: no live status line.
        log_level: logging level name.
        analysis: the pipeline settings.
    """

    inputs: tuple[Path, ...] = ()
    device: int | str | tuple[int | str, ...] | None = None
    fast: bool = False
    loop: bool = False
    samplerate: int | None = None
    channels: int | None = None
    block_ms: float = 20.0
    model: Path | None = None
    backend: Backend = "auto"
    threads: int = 1
    osc: tuple[OscTarget, ...] = ()
    osc_format: OscFormat = "bundle"
    mapping: Path | None = None
    vrchat_prefix: str = "SER_"
    vrchat_max_hz: float = 5.0
    vrchat_listen: int = 9001
    vrchat_params: str = "compact"
    vrchat_ignore_mute: bool = False
    oscquery: bool = True
    host_api: str | None = None
    jsonl: bool = False
    profile: str | None = None
    profile_update: bool | None = None
    ws: Endpoint | None = None
    web: Endpoint | None = None
    ingest: Endpoint | None = None
    ws_queue: int = 64
    max_clients: int = 64
    max_message_bytes: int = 65536
    max_streams: int = 64
    ws_token: str | None = None
    ws_allow_origin: tuple[str, ...] = ()
    allow_remote: bool = False
    wait_clients: int = 0
    print_states: bool = False
    quiet: bool = False
    log_level: str = "warning"
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)

    @property
    def updates_profile(self) -> bool:
        """Whether the voice baseline learned while running goes back into the profile at exit.

        Asked for (``profile_update``) or not, otherwise only for microphones:
        a file (``--input``, the demo recording) is usually someone else's voice,
        and would move the user's baseline toward it.
        """
        if self.profile_update is not None:
            return self.profile_update
        return self.device not in (None, ()) and not self.inputs

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "litert", "keras"):
            raise ConfigError(f"backend must be auto, litert or keras. Received: {self.backend!r}")
        if self.osc_format not in ("bundle", "messages"):
            raise ConfigError(f"osc_format must be bundle or messages. Received: {self.osc_format!r}")
        if self.inputs and self.device not in (None, ()):
            raise ConfigError("give either --input files or --device, not both")
        _check_range("block_ms", self.block_ms, 2.0, 500.0)
        if not 1 <= self.threads <= 64:
            raise ConfigError(f"threads must be in 1..64. Received: {self.threads}")
        if self.vrchat_params not in VRCHAT_PARAM_SETS:
            raise ConfigError(
                f"vrchat_params must be one of {', '.join(VRCHAT_PARAM_SETS)}. Received: {self.vrchat_params!r}"
            )
        if self.jsonl and self.print_states:
            raise ConfigError("--jsonl and --print both write to stdout; choose one")
        if not 0 <= self.vrchat_listen <= 65535:
            raise ConfigError(f"vrchat_listen must be a port in 0..65535. Received: {self.vrchat_listen}")
        if not 1 <= self.ws_queue <= 100000:
            raise ConfigError(f"ws_queue must be in 1..100000. Received: {self.ws_queue}")
        if not 0 <= self.wait_clients <= 10000:
            raise ConfigError(f"wait_clients must be in 0..10000. Received: {self.wait_clients}")
        if self.samplerate is not None and not 4000 <= self.samplerate <= 384000:
            raise ConfigError(f"samplerate must be in 4000..384000 Hz. Received: {self.samplerate}")
        if self.channels is not None and not 1 <= self.channels <= 64:
            raise ConfigError(f"channels must be in 1..64. Received: {self.channels}")
        if not 1 <= self.max_clients <= 100000:
            raise ConfigError(f"max_clients must be in 1..100000. Received: {self.max_clients}")
        if not 128 <= self.max_message_bytes <= 64 * 1024 * 1024:
            raise ConfigError(f"max_message_bytes must be in 128..67108864. Received: {self.max_message_bytes}")
        if not 1 <= self.max_streams <= 100000:
            raise ConfigError(f"max_streams must be in 1..100000. Received: {self.max_streams}")
        if not (isinstance(self.vrchat_max_hz, (int, float)) and math.isfinite(self.vrchat_max_hz)
                and 0.1 <= self.vrchat_max_hz <= 1000.0):
            raise ConfigError(f"vrchat_max_hz must be a rate in [0.1, 1000] per second. Received: {self.vrchat_max_hz!r}")
        for origin in self.ws_allow_origin:
            parse_origin(origin)
        if self.ws_token is not None:
            check_token(self.ws_token)
        for ep in (self.ws, self.web, self.ingest):
            if ep is None or is_loopback(ep.host):
                continue
            if not self.allow_remote:
                raise ConfigError(
                    f"refusing to listen on {ep.host}: emotion read from a voice is personal data. "
                    "Use a loopback address, or pass --allow-remote (with --ws-token) to listen on other interfaces"
                )
            if self.ws_token is None:
                raise ConfigError(
                    f"listening on {ep.host} needs a token: pass --ws-token or set SER_WS_TOKEN (16+ characters)"
                )


def check_token(token: str) -> str:
    """A WebSocket token: 16+ printable characters, no spaces (a token of spaces is no secret).

    Raises:
        ConfigError: too short, or holds whitespace or control characters.
    """
    hint = "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
    if not isinstance(token, str) or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(f"ws_token must not contain spaces or control characters {hint}")
    if len(token) < 16:
        raise ConfigError(f"ws_token must be at least 16 characters {hint}")
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine: ``localhost`` or a loopback IP address.

    The address is parsed, never judged by its prefix: ``127.example.invalid`` is a name that
    any DNS server may point anywhere.
    """
    if not isinstance(host, str):
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a flat dict of option names (dashes become underscores).

    Tables are flattened (``[vad] threshold_db`` is ``vad_threshold_db``), so
    both spellings work.

    Raises:
        ConfigError: the file is missing or not valid TOML.
    """
    return flatten_config(read_toml(path, "config file"), source=str(path))


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a one-line ConfigError naming ``what``.

    The file must be a regular file of at most ``MAX_CONFIG_BYTES`` (checked before reading);
    a UTF-8 byte-order mark is accepted; nesting too deep for the parser is an error, not a crash.
    """
    import tomllib

    p = Path(path).expanduser()
    text = read_text_bounded(p, what, MAX_CONFIG_BYTES)
    try:
        return loads_toml(text)
    except (tomllib.TOMLDecodeError, TooDeep) as exc:
        raise ConfigError(f"{what} {p} is not valid TOML: {exc}") from None


def flatten_config(data: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Flatten nested tables into ``table_key`` names with underscores."""
    out: dict[str, Any] = {}

    def option_name(name: str) -> str:
        # Smoothing options have bare names ([smoothing] min_dwell_ms is min_dwell_ms); VAD
        # options carry their prefix ([vad] threshold_db is vad_threshold_db, and so is
        # [vad] vad_threshold_db).
        if name.startswith("smoothing_"):
            name = name[len("smoothing_") :]
        if name.startswith("vad_vad_"):
            name = name[len("vad_") :]
        return name

    def visit(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            name = (prefix + "_" if prefix else "") + str(key).replace("-", "_")
            if isinstance(value, Mapping):
                visit(name, value)
                continue
            name = option_name(name)
            if name in out:
                raise ConfigError(f"{source}: {name} is given twice")
            out[name] = value

    visit("", data)
    return out

