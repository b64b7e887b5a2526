"""Reading OSC from untrusted senders with bounds (pure: bytes in, messages out, an injected clock).

Whatever arrives on the VRChat listen port comes from *any* local process, not
only VRChat, so it is parsed here rather than by python-osc: python-osc's
bundle parser loops forever on a negative element size (``#bundle`` + a time
tag + ``-8``), recurses once per nested bundle and logs every element it does
not recognise.  This parser

- refuses datagrams over :attr:`OscLimits.max_bytes` before reading them;
- walks bundles with an explicit stack (no recursion), refusing more than
  :attr:`OscLimits.max_depth` levels and more than
  :attr:`OscLimits.max_messages` messages;
- refuses an element size that is not positive, not a multiple of 4 or
  past the end of its bundle, so every step moves forward;
- gives up once a datagram has taken :attr:`OscLimits.budget_s`.

Every refusal is an :class:`OscRejected` naming the cause; :class:`DropLog`
turns a stream of them into at most one log line per interval.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..log_once import LogOnce

__all__ = ["OscLimits", "OscRejected", "OscMessageIn", "parse_osc", "DropLog"]

BUNDLE_PREFIX = b"#bundle\x00"
_BUNDLE_HEADER_BYTES = len(BUNDLE_PREFIX) + 8  # the prefix and a 64-bit time tag
_I32 = struct.Struct(">i")
_F32 = struct.Struct(">f")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
# Argument types with a fixed size in bytes (value decoded by the function beside it).
_FIXED: dict[str, tuple[int, Callable[[bytes, int], Any]]] = {
    "i": (4, lambda d, p: _I32.unpack_from(d, p)[0]),
    "f": (4, lambda d, p: _F32.unpack_from(d, p)[0]),
    "h": (8, lambda d, p: _I64.unpack_from(d, p)[0]),
    "d": (8, lambda d, p: _F64.unpack_from(d, p)[0]),
    "t": (8, lambda d, p: _I64.unpack_from(d, p)[0]),
    "c": (4, lambda d, p: chr(_I32.unpack_from(d, p)[0] & 0x7F)),
    "r": (4, lambda d, p: _I32.unpack_from(d, p)[0]),
    "m": (4, lambda d, p: bytes(d[p:p + 4])),
}
_CONSTANT = {"T": True, "F": False, "N": None, "I": float("inf")}


@dataclass(frozen=True)
class OscLimits:
    """What one datagram may cost.

    The defaults are far above what VRChat sends (one message of well under
    200 bytes per datagram) and far below what could stall the event loop.
    """

    max_bytes: int = 16384
    """Longest datagram read at all, in bytes."""
    max_depth: int = 8
    """Deepest nesting of bundles inside bundles."""
    max_messages: int = 256
    """Most messages (and bundles) in one datagram."""
    budget_s: float = 0.02
    """Time after which the parse of one datagram is abandoned, in seconds.  A backstop: the limits
    above already bound the work to well under a millisecond, but the processing thread may hold
    the GIL for its 5 ms switch interval in the middle of a parse, so the budget is above that."""


class OscRejected(ValueError):
    """A datagram that is not OSC, is malformed, or is over a limit; the message names the cause."""


@dataclass(frozen=True)
class OscMessageIn:
    """One OSC message: its address and its arguments in order (array brackets flattened)."""

    address: str
    params: tuple[Any, ...]


def _string(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    """An OSC string at ``pos``: its text and the position after its padding."""
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise OscRejected(f"{what} has no terminating NUL")
    try:
        text = data[pos:nul].decode("ascii")
    except UnicodeDecodeError as exc:
        raise OscRejected(f"{what} is not ASCII") from exc
    after = pos + ((nul - pos) // 4 + 1) * 4
    if after > end:
        raise OscRejected(f"{what} padding runs past the end")
    return text, after


def _message(data: bytes, start: int, end: int) -> OscMessageIn:
    address, pos = _string(data, start, end, "address")
    if pos == end:  # no type tag string: an old-style message without arguments
        return OscMessageIn(address, ())
    if data[pos:pos + 1] != b",":
        raise OscRejected("type tags do not start with ','")
    tags, pos = _string(data, pos, end, "type tags")
    params: list[Any] = []
    for tag in tags[1:]:
        if tag in _CONSTANT:
            params.append(_CONSTANT[tag])
        elif tag in "[]":
            continue
        elif tag in _FIXED:
            size, read = _FIXED[tag]
            if pos + size > end:
                raise OscRejected(f"argument {tag!r} runs past the end")
            params.append(read(data, pos))
            pos += size
        elif tag in "sS":
            text, pos = _string(data, pos, end, "string argument")
            params.append(text)
        elif tag == "b":
            if pos + 4 > end:
                raise OscRejected("blob size runs past the end")
            size = _I32.unpack_from(data, pos)[0]
            padded = (size + 3) // 4 * 4
            if size < 0 or pos + 4 + padded > end:
                raise OscRejected(f"blob size {size} does not fit the message")
            params.append(bytes(data[pos + 4:pos + 4 + size]))
            pos += 4 + padded
        else:
            raise OscRejected(f"unknown argument type {tag!r}")
    return OscMessageIn(address, tuple(params))


def parse_osc(data: bytes, limits: OscLimits = OscLimits(),
              clock: Callable[[], float] = time.perf_counter) -> list[OscMessageIn]:
    """The messages of one datagram (a message or a bundle), in the order they appear.

    Time tags are ignored: VRChat's messages are immediate, and the daemon acts
    on what it hears at once.

    Raises:
        OscRejected: not OSC, malformed, or over one of ``limits``.
    """
    if len(data) > limits.max_bytes:
        raise OscRejected(f"{len(data)} bytes, over the limit of {limits.max_bytes}")
    deadline = clock() + limits.budget_s
    out: list[OscMessageIn] = []
    # Elements still to read, as (start, end, depth); the last is read next, so each bundle's
    # elements are pushed in reverse to come out in order.
    todo: list[tuple[int, int, int]] = [(0, len(data), 0)]
    elements = 0
    while todo:
        start, end, depth = todo.pop()
        elements += 1
        if elements > limits.max_messages:
            raise OscRejected(f"more than {limits.max_messages} elements")
        if clock() > deadline:
            raise OscRejected(f"parsing took longer than {limits.budget_s * 1000:.0f} ms")
        if data.startswith(BUNDLE_PREFIX, start, end):
            if depth >= limits.max_depth:
                raise OscRejected(f"bundles nested deeper than {limits.max_depth}")
            pos = start + _BUNDLE_HEADER_BYTES
            if pos > end:
                raise OscRejected("bundle shorter than its header")
            inner: list[tuple[int, int, int]] = []
            while pos < end:
                if pos + 4 > end:
                    raise OscRejected("bundle element size runs past the end")
                size = _I32.unpack_from(data, pos)[0]
                if size <= 0 or size % 4 or pos + 4 + size > end:
                    raise OscRejected(f"bundle element size {size} does not fit the bundle")
                inner.append((pos + 4, pos + 4 + size, depth + 1))
                pos += 4 + size
                if len(inner) > limits.max_messages:
                    raise OscRejected(f"more than {limits.max_messages} elements")
            todo.extend(reversed(inner))
        elif data[start:start + 1] == b"/":
            out.append(_message(data, start, end))
        else:
            raise OscRejected("neither an OSC message nor a bundle")
    return out


class DropLog:
    """Counts refused datagrams and logs them at most once per ``interval_s``.

    A flood of bad packets then costs one line per interval, not one per packet
    (python-osc's own warnings grew the log by megabytes a second).

    Args:
        logger: where the summary goes.
        what: names the source in the line, e.g. "the VRChat listen port".
        interval_s: least time between two lines, in seconds.
        clock: monotonic clock, in seconds (injectable for tests).
    """

    def __init__(self, logger: logging.Logger, what: str, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.what = what
        self.interval_s = interval_s
        self.total = 0
        self._once = LogOnce(interval_s, max_keys=1, clock=clock)

    def note(self, reason: str, sender: Any = None) -> None:
        """Count one refused datagram; log a summary if the interval has passed."""
        self.total += 1
        line = self._once.take("drop")
        if line is None:
            return
        held, since = line
        self.logger.warning("dropped %d datagram(s) on %s that were not usable OSC (last from %s: %s)%s",
                            held + 1, self.what, sender if sender is not None else "?", reason,
                            "" if since is None else f" in the last {since:.0f} s")
