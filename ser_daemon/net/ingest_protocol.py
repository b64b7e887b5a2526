"""The ``--ingest`` protocol without a socket: messages in, events or a refusal out.

One implementation of the rules for both servers that speak it: the single
daemon's websockets server (``ingest.py``) and the Ray Serve ingress replica
(``cluster/ingress.py``).  Each transport reads a message, hands it to
:meth:`IngestSession.receive` and acts on what comes back; a
:class:`ProtocolError` carries the close code and reason to send, so both
servers refuse the same things with the same codes.

Close codes: 1007 (invalid data: not JSON, fields out of range, a frame that is
not whole PCM frames), 1008 (policy: audio before start, duplicate stream id, no
start message in time, an OSC target the operator did not allow), 1013 (try
again later: no room for another stream).

The start message may name an OSC target, ``"osc": "HOST:PORT"``, to which the
server sends the stream's states (generic scheme).  A server sends UDP to a
host only when its operator listed that host (:class:`OscAllowlist`, IP
addresses or ``localhost``; nothing is resolved); every other target is refused
with 1008.  The single daemon's ``--ingest`` has no allowlist, so it refuses any
``osc`` field with that same code and reason; the cluster takes one
(``ser-daemon cluster --allow-stream-osc``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Union

import numpy as np

from ..bounded import loads_json
from ..core.audio_format import AudioFormat
from ..core.resample import downmix
from ..errors import ConfigError
from .endpoints import Endpoint, parse_endpoint
from .wire import MessageError, WireMessage

__all__ = [
    "CLOSE_NORMAL",
    "CLOSE_INVALID_DATA",
    "CLOSE_POLICY",
    "CLOSE_TRY_AGAIN_LATER",
    "START_TIMEOUT_S",
    "IDLE_TIMEOUT_S",
    "IDLE_TIMEOUT_REASON",
    "ProtocolError",
    "StartRequest",
    "StartedMessage",
    "StopMessage",
    "OscAllowlist",
    "osc_refusal",
    "Started",
    "Audio",
    "Stop",
    "IngestSession",
    "parse_start",
    "decode_pcm",
    "close_reason",
]

# RFC 6455 close codes (the numbers, so this module needs no WebSocket library).
CLOSE_NORMAL = 1000
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN_LATER = 1013

START_TIMEOUT_S = 10.0  # a connection that sends no start message in this time is closed (1008)
START_TIMEOUT_REASON = "no start message within 10 s"
# A started stream that sends nothing (no audio, no stop) for this long is closed (1008): it would
# hold one of --max-streams for ever.  Clients send silence while the speaker is quiet.
IDLE_TIMEOUT_S = 10.0
IDLE_TIMEOUT_REASON = "no audio within 10 s"
STOP_REASON = "stopped"
_MAX_REASON_CHARS = 120  # a close frame's reason must fit 123 bytes

_STREAM_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class ProtocolError(ValueError):
    """A client broke the ingest protocol (or cannot be served); ``code`` is the close code to use."""

    def __init__(self, message: str, code: int = CLOSE_INVALID_DATA) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StartRequest(WireMessage):
    """A valid start message (the client's first; :meth:`from_json` is :func:`parse_start`).

    Attributes:
        stream: the stream id (1-64 letters, digits, ``_`` or ``-``).
        sample_rate: rate of the PCM to come, Hertz.
        channels: interleaved channels per frame.
        osc: where the client asked the states to be sent as OSC too (checked against the
            server's :class:`OscAllowlist` before the stream is admitted), or None.
    """

    TYPE: ClassVar[str] = "start"
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"osc"})
    COMPACT: ClassVar[bool] = False

    stream: str
    sample_rate: int
    channels: int
    osc: Endpoint | None = None

    def to_dict(self) -> dict[str, Any]:
        """The start message a client sends (``osc`` as ``"HOST:PORT"``, left out while None)."""
        out = super().to_dict()
        if self.osc is not None:
            out["osc"] = str(self.osc)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StartRequest:
        """A start message's fields, checked (the protocol's rules, its close codes).

        Raises:
            ProtocolError: not a start message, or fields out of range (1007).
        """
        if not isinstance(data, Mapping) or data.get("type") != "start":
            raise ProtocolError('the first message must be {"type": "start", ...}')
        stream = data.get("stream")
        rate = data.get("sample_rate")
        channels = data.get("channels", 1)
        if not isinstance(stream, str) or not _STREAM_RE.fullmatch(stream):
            raise ProtocolError("stream must be 1-64 letters, digits, '_' or '-'")
        if isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 192000:
            raise ProtocolError("sample_rate must be an integer in 8000..192000")
        if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= 8:
            raise ProtocolError("channels must be an integer in 1..8")
        osc = _parse_osc_field(data["osc"]) if "osc" in data else None
        return cls(stream, rate, channels, osc)

    @classmethod
    def from_json(cls, text: str | bytes) -> StartRequest:
        """Validate the opening control message (pure; fuzzed in the tests).

        Raises:
            ProtocolError: not JSON, not a start message, or fields out of range.
        """
        if isinstance(text, bytes):
            raise ProtocolError("send the start message before any audio", CLOSE_POLICY)
        try:
            msg = loads_json(text)
        except ValueError:
            raise ProtocolError("control messages must be JSON") from None
        return cls.from_dict(msg)

    @property
    def format(self) -> AudioFormat:
        """The PCM to come: little-endian int16 frames of :attr:`channels` at :attr:`sample_rate`."""
        return AudioFormat(self.sample_rate, self.channels, "int16")


def _canonical_host(host: str) -> str | None:
    """An IP address in its one written form, ``localhost`` as is; None for anything else (a name)."""
    if host == "localhost":
        return host
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return None


class OscAllowlist:
    """The hosts a server may send a stream's OSC to, as its operator listed them (pure).

    Only IP addresses and ``localhost``: a start message naming a host by any other
    name is refused, so the server never resolves a name a client chose.  Empty
    (the default) refuses every ``osc`` field.

    Raises:
        ConfigError: an entry that is not an IP address or ``localhost``.
    """

    def __init__(self, hosts: "str | tuple[str, ...] | list[str] | None" = ()) -> None:
        items = hosts.split(",") if isinstance(hosts, str) else list(hosts or ())
        canon: set[str] = set()
        for item in items:
            text = str(item).strip()
            if not text:
                continue
            host = _canonical_host(text[1:-1] if text.startswith("[") and text.endswith("]") else text)
            if host is None:
                raise ConfigError(f"--allow-stream-osc takes IP addresses or localhost, comma-separated. "
                                  f"Received: {text!r}")
            canon.add(host)
        self.hosts = frozenset(canon)

    def allows(self, target: Endpoint) -> bool:
        host = _canonical_host(target.host)
        return host is not None and host in self.hosts

    def sockaddr(self, target: Endpoint) -> tuple[str, int]:
        """Where to send: the target's address, ``localhost`` as 127.0.0.1 (no resolver at run time)."""
        host = _canonical_host(target.host)
        return ("127.0.0.1" if host in (None, "localhost") else str(host)), target.port


def osc_refusal(target: Endpoint) -> ProtocolError:
    """The refusal of an OSC target the operator did not allow (1008; one text for both servers)."""
    return ProtocolError(f"OSC output to {target.host} is not allowed by this server", CLOSE_POLICY)


def _parse_osc_field(value: Any) -> Endpoint:
    """The start message's ``osc`` value: ``"HOST:PORT"`` with a host and a port in 1..65535 (1007 otherwise)."""
    if not isinstance(value, str) or ":" not in value or len(value) > 300:
        raise ProtocolError('osc must be "HOST:PORT", e.g. "127.0.0.1:9000"')
    try:
        endpoint = parse_endpoint(value, what="osc")
    except ConfigError:
        raise ProtocolError('osc must be "HOST:PORT", e.g. "127.0.0.1:9000"') from None
    if endpoint.port == 0:
        raise ProtocolError("osc: port must be in 1..65535")
    return endpoint


def parse_start(text: str | bytes) -> StartRequest:
    """Validate the opening control message (:meth:`StartRequest.from_json`).

    Raises:
        ProtocolError: not JSON, not a start message, or fields out of range.
    """
    return StartRequest.from_json(text)


@dataclass(frozen=True)
class StartedMessage(WireMessage):
    """The server's reply to an admitted start: ``{"type": "started", "stream": ...}``."""

    TYPE: ClassVar[str] = "started"
    COMPACT: ClassVar[bool] = False  # json.dumps's spacing, as the reply was always written

    stream: str


@dataclass(frozen=True)
class StopMessage(WireMessage):
    """The client's last control message, ``{"type": "stop"}``: the server closes with 1000."""

    TYPE: ClassVar[str] = "stop"
    COMPACT: ClassVar[bool] = False


def decode_pcm(data: bytes, channels: int) -> np.ndarray:
    """Little-endian int16 frames to mono float32 in [-1, 1) (downmixed: the analysis is mono).

    Raises:
        ProtocolError: ``data`` is not a whole number of frames (1007).
    """
    frame_bytes = 2 * channels
    if len(data) % frame_bytes:
        raise ProtocolError(f"audio messages must hold whole frames of {frame_bytes} bytes")
    pcm = np.frombuffer(data, dtype="<i2").reshape(-1, channels)
    return downmix(pcm.astype(np.float32)) * np.float32(1.0 / 32768.0)


def close_reason(exc: ProtocolError) -> str:
    """The close frame's reason text for a refusal (bounded to fit the frame)."""
    return str(exc)[:_MAX_REASON_CHARS]


@dataclass(frozen=True)
class Started:
    """The start message was valid and the stream admitted: send ``reply`` (text) back."""

    request: StartRequest
    reply: str


@dataclass(frozen=True)
class Audio:
    """PCM arrived: ``mono`` float32 samples at the stream's rate."""

    mono: np.ndarray


@dataclass(frozen=True)
class Stop:
    """The client asked to stop: close with :data:`CLOSE_NORMAL` and ``reason``."""

    reason: str = STOP_REASON


Event = Union[Started, Audio, Stop]


class IngestSession:
    """One ingest connection's protocol state (sans-I/O).

    Args:
        is_taken: whether a stream id is in use already (refused with 1008).
        room_for_stream: whether one more stream may start now (refused with 1013 otherwise).
        full_reason: the refusal text when there is no room.
        osc_allowlist: hosts a start message's ``osc`` target may name (default: none, refused
            with 1008 before the id is checked).
    """

    def __init__(
        self,
        is_taken: Callable[[str], bool],
        room_for_stream: Callable[[], bool],
        full_reason: str = "too many streams",
        osc_allowlist: OscAllowlist | None = None,
    ) -> None:
        self.is_taken = is_taken
        self.room_for_stream = room_for_stream
        self.full_reason = full_reason
        self.osc_allowlist = osc_allowlist or OscAllowlist()
        self.request: StartRequest | None = None

    @property
    def started(self) -> bool:
        return self.request is not None

    def receive(self, message: str | bytes) -> Event:
        """The event for one received message, in protocol order.

        Raises:
            ProtocolError: the message breaks the protocol, or the stream cannot be admitted.
        """
        if self.request is None:
            start = parse_start(message)
            if start.osc is not None and not self.osc_allowlist.allows(start.osc):
                raise osc_refusal(start.osc)
            if self.is_taken(start.stream):
                raise ProtocolError(f"stream id {start.stream!r} is in use", CLOSE_POLICY)
            if not self.room_for_stream():
                raise ProtocolError(self.full_reason, CLOSE_TRY_AGAIN_LATER)
            self.request = start
            return Started(start, StartedMessage(start.stream).to_json())
        return self.stream_event(message)

    def stream_event(self, message: str | bytes) -> Audio | Stop:
        """The event for a message after the start: audio, or the stop.

        The loop that reads a started stream calls this, so its events are
        typed as the two that can come.

        Raises:
            ProtocolError: the message breaks the protocol.
            RuntimeError: the stream has not started (a caller's bug).
        """
        if self.request is None:
            raise RuntimeError("stream_event before the stream's start message")
        if isinstance(message, bytes):
            return Audio(decode_pcm(message, self.request.channels))
        try:
            ctrl: Any = loads_json(message)
        except ValueError:
            raise ProtocolError("control messages must be JSON") from None
        try:
            StopMessage.from_dict(ctrl)
        except MessageError:
            raise ProtocolError('the only control message after start is {"type": "stop"}') from None
        return Stop()
