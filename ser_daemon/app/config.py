"""Everything the daemon was asked to do, as one frozen dataclass, and the config file reader.

Every field here has a command-line flag and a TOML key of the same name
(``latency_budget_ms`` is ``--latency-budget-ms``), so a config file is just
the flags written down.  A plain option (its value used as given) is declared only here, with
:func:`option`: the parser, the config file's keys and the template are made from that field.
Parsing and validation live here so the CLI, the
config file and library users all get the same checks and the same messages.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from ..arguments import checked_float, checked_int
from ..bounded import read_toml
from ..core.mood_settings import MoodSettings
from ..core.settings import AnalysisSettings, _check_range
from ..errors import ConfigError
from ..model.backends import backend_choices, or_list
from ..net.endpoints import Endpoint, check_token, is_loopback, parse_origin
from ..outputs.osc_targets import OscTarget
from ..outputs.vrchat_params import VRCHAT_PARAM_SETS

__all__ = [
    "DaemonConfig",
    "DaemonParts",
    "InputSettings",
    "OutputSettings",
    "ServerSettings",
    "VRChatSettings",
    "DAEMON_OWN",
    "load_toml",
    "option",
    "LOG_LEVELS",
    "declared_options",
]

Backend = str  # a name of model.backends (or "auto")
OscFormat = Literal["bundle", "messages"]

LOG_LEVELS = ("debug", "info", "warning", "error")

_FLAG = "ser_daemon.flag"  # the field metadata key that holds an option's flag declaration
_PARTS = "ser_daemon.parts"  # and the one that names the parts an option is handed to


def option(default: Any, group: str, help: str, *, metavar: str | None = None,
           type: Callable[[str], Any] | None = None, choices: tuple[str, ...] | None = None,
           parts: tuple[str, ...] = ()) -> Any:
    """A plain option, declared once: this DaemonConfig field is also its flag, config key and template line.

    ``--name-with-dashes`` goes into the ``--help`` group titled ``group``; a ``False`` default makes a
    switch, an int or float default a checked number (``type`` overrides, e.g. for a None default
    or a range); ``parts`` names the subsystem parts (:attr:`DaemonConfig.parts`: inputs, outputs,
    vrchat, servers) that hand it on, besides those that list it.  The value reaches the field as
    given; options whose value must be turned into something else (addresses, paths, a ``--no-x``
    switch for a True default) keep their own flag in :mod:`~ser_daemon.app.flags`.
    """
    if default is True:
        raise TypeError("a switch that is on by default needs its own --no-... flag in app/flags.py")
    spec: dict[str, Any] = {"help": help}
    if default is False:
        spec["action"] = "store_true"
    else:
        if type is None and isinstance(default, int) and not isinstance(default, bool):
            type = checked_int(0)
        elif type is None and isinstance(default, float):
            type = checked_float()
        spec.update({k: v for k, v in (("metavar", metavar), ("type", type), ("choices", choices)) if v is not None})
    return field(default=default, metadata={_FLAG: (group, spec), _PARTS: parts})


def declared_options(config: type) -> list[tuple[str, str, dict[str, Any]]]:
    """The options ``config``'s fields declare with :func:`option`: (``--help`` group, flag, add_argument keywords)."""
    return [(f.metadata[_FLAG][0], "--" + f.name.replace("_", "-"), dict(f.metadata[_FLAG][1]))
            for f in dataclasses.fields(config) if _FLAG in f.metadata]


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
        mood: send each stream's mood and events to the outputs (``--mood``).
        mood_settings: the mood tracker's horizons and event thresholds (``[mood]``).
        session_log: folder of the session logs (``--session-log``), or None: no log.
        session_retention_days: logs older than this are deleted at start-up.
    """

    inputs: tuple[Path, ...] = ()
    device: int | str | tuple[int | str, ...] | None = None
    fast: bool = option(False, "input",
        "replay --input files as fast as possible (nothing is skipped)")
    loop: bool = option(False, "input",
        "replay --input files forever")
    samplerate: int | None = option(None, "input",
        "device capture rate (default: the device's)", metavar="HZ", type=checked_int(0))
    channels: int | None = option(None, "input",
        "device capture channels (default: up to 2), downmixed", metavar="N", type=checked_int(0))
    block_ms: float = option(20.0, "input",
        "capture block length (default 20)", metavar="MS")
    model: Path | None = None
    backend: Backend = "auto"
    threads: int = option(1, "model",
        "CPU threads for LiteRT (default 1)", metavar="N")
    osc: tuple[OscTarget, ...] = ()
    osc_format: OscFormat = option("bundle", "outputs",
        "one OSC bundle per decision (default) or separate messages", choices=("bundle", "messages"))
    mapping: Path | None = None
    vrchat_prefix: str = option("SER_", "outputs",
        "prefix of VRChat avatar parameter names (default SER_: SER_Happy, SER_Label, ...)", metavar="NAME")
    vrchat_max_hz: float = option(5.0, "outputs",
        "most VRChat/VXP parameter updates per second; sent on change only (default 5)", metavar="HZ")
    vrchat_listen: int = option(9001, "outputs",
        "hear VRChat (/avatar/change, MuteSelf, SER_Enabled) on 127.0.0.1:PORT when no VRChat "
        "answers over OSCQuery within a few seconds (default 9001; 0: do not listen at all)", metavar="PORT")
    vrchat_params: str = option("compact", "outputs",
        "VRChat parameter set: compact (SER_Label int + SER_Intensity float + SER_Voice bool, 17 "
        "synced bits; default), full (also a float per class, confidence, voice), vxp, none; the "
        "mapping's [vrchat] table renames, drops and adds (see README)", choices=("compact", "full", "vxp", "none"))
    vrchat_ignore_mute: bool = option(False, "outputs",
        "keep broadcasting while VRChat reports you muted (MuteSelf); by default the face goes "
        "neutral and nothing about the voice is sent while muted")
    oscquery: bool = True
    host_api: str | None = option(None, "input",
        "take devices from this PortAudio host API (part of its name: wasapi, mme, directsound, "
        "core audio, alsa, jack); default: WASAPI on Windows, Core Audio on macOS, PortAudio's on "
        "Linux", metavar="NAME")
    jsonl: bool = option(False, "general",
        "write every message as one JSON line on stdout (hello, then states and statuses, the "
        "WebSocket schema), for scripts and jq")
    profile: str | None = option(None, "model",
        "use your personal profile (made with 'ser-daemon enroll') for the microphone and file "
        "inputs; a name is kept in the per-user data folder ('ser-daemon profiles' lists them)", metavar="NAME|PATH")
    profile_update: bool | None = None
    ws: Endpoint | None = None
    web: Endpoint | None = None
    ingest: Endpoint | None = None
    ws_queue: int = option(64, "outputs",
        "messages queued per WebSocket client before its oldest are dropped (default 64)", metavar="N")
    max_clients: int = option(64, "outputs",
        "WebSocket connections allowed at once; more are refused with HTTP 503 (default 64)", metavar="N")
    max_message_bytes: int = option(65536, "outputs",
        "largest message a WebSocket client may send; larger closes it with 1009 (default 65536)", metavar="N")
    max_streams: int = option(64, "outputs",
        "ingest streams at once; more are refused with close code 1013 (default 64)", metavar="N")
    ws_token: str | None = None
    ws_allow_origin: tuple[str, ...] = ()
    allow_remote: bool = option(False, "outputs",
        "allow --ws/--web on a non-loopback address (needs --ws-token; emotion from a voice is "
        "personal data)")
    wait_clients: int = option(0, "outputs",
        "start audio only once N WebSocket clients are connected", metavar="N")
    print_states: bool = False
    quiet: bool = option(False, "general",
        "no live status line")
    log_level: str = option("warning", "general",
        "logging detail (default warning)", choices=LOG_LEVELS)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    mood: bool = option(False, "mood (for apps)",
        "track each stream's mood (valence, arousal, talking, silence over the moment, minute and "
        "session) and its events (frustration_rising, disengaging, delighted, recovered): mood and "
        "event messages on the WebSocket, --jsonl, --print and generic OSC; thresholds in the "
        "config file's [mood] section (see README: For apps)")
    mood_settings: MoodSettings = field(default_factory=MoodSettings)
    session_log: Path | None = None
    session_retention_days: float = option(30.0, "mood (for apps)",
        "with --session-log, delete logs older than this at start-up (default 30)", metavar="DAYS",
        type=checked_float(1.0, 36500.0))

    @property
    def tracks_mood(self) -> bool:
        """Whether the mood stage runs: for the outputs (``--mood``) or for the session log."""
        return self.mood or self.session_log is not None

    @property
    def parts(self) -> DaemonParts:
        """The config per subsystem: inputs, analysis, outputs, vrchat and servers, each its own options."""
        return DaemonParts(inputs=_cut(InputSettings, self), analysis=self.analysis,
                           outputs=_cut(OutputSettings, self), vrchat=_cut(VRChatSettings, self),
                           servers=_cut(ServerSettings, self))

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
        if self.backend not in backend_choices():
            raise ConfigError(f"backend must be {or_list(backend_choices())}. Received: {self.backend!r}")
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
        _check_range("session_retention_days", self.session_retention_days, 1.0, 36500.0)
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


# -- the config cut per subsystem ------------------------------------------------------------------
# Each subsystem is handed only its part (``DaemonConfig.parts``).  A part is made from DaemonConfig's
# own field declarations (name, type, default), so an option is still declared once; an option two
# subsystems read is in both parts.


def _part(name: str, part: str, doc: str, options: tuple[str, ...], config: type | None = None,
          **members: Any) -> type:
    """A frozen dataclass of ``options`` and of those declared with ``option(parts=(part, ...))``.

    The fields are declared as DaemonConfig declares them (``options`` first, in that order).
    """
    declared = {f.name: f for f in dataclasses.fields(config or DaemonConfig)}
    options += tuple(o for o, f in declared.items() if part in f.metadata.get(_PARTS, ()) and o not in options)
    unknown = [o for o in options if o not in declared]
    if unknown:
        raise TypeError(f"{name}: not options of DaemonConfig: {unknown}")
    specs = []
    for option in options:
        f = declared[option]
        spec = field(default=f.default) if f.default_factory is dataclasses.MISSING else field(
            default_factory=f.default_factory)
        specs.append((option, f.type, spec))
    return dataclasses.make_dataclass(name, specs, frozen=True,
                                      namespace={"__doc__": doc, "__module__": __name__, **members})


InputSettings = _part(
    "InputSettings", "inputs",
    "What the local inputs need: files to replay, sound devices and how to capture them (``ingest``: with "
    "remote streams and no input named there is no default microphone).",
    ("inputs", "device", "host_api", "samplerate", "channels", "block_ms", "fast", "loop", "ingest"),
)
OutputSettings = _part(
    "OutputSettings", "outputs",
    "What the outputs are built from: OSC targets and their encoding, console lines, mood, session log "
    "(``ingest``: with remote streams the generic OSC scheme names the stream in its addresses).",
    ("osc", "osc_format", "vrchat_prefix", "vrchat_max_hz", "vrchat_params", "print_states", "jsonl", "quiet",
     "mood", "mood_settings", "session_log", "session_retention_days", "ingest"),
    tracks_mood=DaemonConfig.tracks_mood,
)
VRChatSettings = _part(
    "VRChatSettings", "vrchat",
    "What a VRChat session reads (``vrchat.session.VRChatOptions``) and the VRChat parameter options.",
    ("vrchat_prefix", "vrchat_max_hz", "vrchat_listen", "vrchat_params", "vrchat_ignore_mute", "oscquery"),
)
ServerSettings = _part(
    "ServerSettings", "servers",
    "What the daemon's servers need: where they listen and who may connect.",
    ("ws", "web", "ingest", "ws_queue", "max_clients", "max_message_bytes", "max_streams", "ws_token",
     "ws_allow_origin", "allow_remote", "wait_clients"),
)


@dataclass(frozen=True)
class DaemonParts:
    """The config cut per subsystem (:attr:`DaemonConfig.parts`); ``analysis`` is the config's own."""

    inputs: Any  # InputSettings
    analysis: AnalysisSettings
    outputs: Any  # OutputSettings
    vrchat: Any  # VRChatSettings
    servers: Any  # ServerSettings


# Options no subsystem part holds: the daemon itself reads them while it wires the parts together.
DAEMON_OWN = ("model", "backend", "threads", "mapping", "profile", "profile_update", "log_level")


def _cut(cls: type, cfg: DaemonConfig) -> Any:
    return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a flat dict of option names (dashes become underscores).

    Tables are flattened (``[vad] threshold_db`` is ``vad_threshold_db``), so
    both spellings work.

    Raises:
        ConfigError: the file is missing or not valid TOML.
    """
    return flatten_config(read_toml(path, "config file"), source=str(path))


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

