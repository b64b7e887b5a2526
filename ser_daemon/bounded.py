"""Bounded input: files read with a size limit, structured text parsed with a depth limit.

Every file ser-daemon reads (config, mapping, model metadata and weights, WAV inputs, token
files, personal profiles) goes through :func:`check_regular_file` or :func:`read_bounded`, so
that ``--config /dev/zero`` or a FIFO is refused at once ("not a regular file") instead of being
read without end, and a sparse multi-gigabyte file is refused by its size before one byte of it
is read.  The checks are made on the opened descriptor (``fstat``), so a path swapped for a
FIFO between a check and the open cannot block us.

Parsers recurse on nested structures: a TOML array or JSON message nested a few thousand levels
deep would end in a RecursionError.  :func:`loads_json` and :func:`loads_toml` turn that into an
ordinary ``ValueError`` the callers already report (exit 2, or close code 1007 on a socket).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import ConfigError, SerError

__all__ = [
    "KiB",
    "MiB",
    "MAX_CONFIG_BYTES",
    "MAX_MODEL_JSON_BYTES",
    "MAX_MODEL_FILE_BYTES",
    "MAX_WAV_BYTES",
    "MAX_TOKEN_FILE_BYTES",
    "MAX_PROFILE_BYTES",
    "check_regular_file",
    "read_bounded",
    "read_text_bounded",
    "loads_json",
    "loads_toml",
    "TooDeep",
]

KiB = 1024
MiB = 1024 * KiB
MAX_CONFIG_BYTES = 1 * MiB  # config and mapping TOML files: a few KiB in practice
MAX_MODEL_JSON_BYTES = 4 * MiB  # ser_model.json with its training summary: ~10 KiB in practice
MAX_MODEL_FILE_BYTES = 1024 * MiB  # .tflite / .keras weights: ~1 MiB for the shipped model
MAX_WAV_BYTES = 1024 * MiB  # 6 h of 16 kHz mono 16-bit is 0.7 GiB
MAX_TOKEN_FILE_BYTES = 4 * KiB
MAX_PROFILE_BYTES = 16 * MiB  # personal profiles: statistics and head weights, never audio


class TooDeep(ValueError):
    """A nested structure is deeper than the parser can follow."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "something else"


def _check_stat(st: os.stat_result, p: Path, what: str, max_bytes: int, error: type[SerError]) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {p} is not a regular file: it is {_kind(st.st_mode)}")
    if st.st_size > max_bytes:
        raise error(f"{what} {p} is too large: {st.st_size} bytes, at most {max_bytes} are read")


def check_regular_file(
    path: str | os.PathLike[str], what: str, max_bytes: int, error: type[SerError] = ConfigError
) -> os.stat_result:
    """Refuse anything but a regular file of at most ``max_bytes`` (without opening it).

    For files handed to a library that opens them itself (LiteRT, Keras); read the ones we
    parse with :func:`read_bounded`.

    Raises:
        error: not found, not a regular file (directory, FIFO, device, socket), or too large.
    """
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise error(f"{what} not found: {p}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    _check_stat(st, p, what, max_bytes, error)
    return st


def read_bounded(
    path: str | os.PathLike[str], what: str, max_bytes: int, error: type[SerError] = ConfigError
) -> bytes:
    """Read a whole regular file of at most ``max_bytes``; never block, never read past the limit.

    Raises:
        error: not found, not a regular file, too large (also if it grew while being read).
    """
    p = Path(path).expanduser()
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise error(f"{what} not found: {p}") from None
    except IsADirectoryError:
        raise error(f"{what} {p} is not a regular file: it is a directory") from None
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    try:
        _check_stat(os.fstat(fd), p, what, max_bytes, error)
        chunks = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise error(f"{what} {p} is too large: more than {max_bytes} bytes")
    return data


def read_text_bounded(
    path: str | os.PathLike[str], what: str, max_bytes: int, error: type[SerError] = ConfigError
) -> str:
    """:func:`read_bounded` as UTF-8 text; a leading byte-order mark is dropped (Windows editors write one)."""
    data = read_bounded(path, what, max_bytes, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {Path(path).expanduser()} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def loads_json(text: str | bytes) -> Any:
    """``json.loads`` whose too-deep nesting is a ValueError (:class:`TooDeep`), not a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep("nested too deeply") from None


MAX_TOML_DEPTH = 32  # tables within tables; a config or mapping file needs 4


def _toml_key_depth(text: str) -> int:
    """The most parts of a table header or dotted key in ``text``, by a line scan before parsing.

    ``tomllib`` reads ``a.a.a...`` iteratively into a dict thousands of levels deep, which
    anything recursive afterwards (flattening, printing) cannot walk.  Dots in quoted keys
    count too: the bound errs on the safe side.
    """
    deepest = 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            key = line.strip("[").split("]", 1)[0]
        elif "=" in line:
            key = line.split("=", 1)[0]
        else:
            continue
        deepest = max(deepest, key.count(".") + 1)
    return deepest


def _depth(value: Any) -> int:
    """Nesting depth of parsed tables and lists, without recursion."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        if isinstance(node, dict):
            todo.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            todo.extend((v, d + 1) for v in node)
    return deepest


def loads_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` with nesting bounded: too deep is a ValueError (:class:`TooDeep`), never a RecursionError.

    Table headers and dotted keys are bounded before parsing; inline tables and arrays (which
    ``tomllib`` parses recursively) after, without recursion.
    """
    import tomllib

    if _toml_key_depth(text) > MAX_TOML_DEPTH:
        raise TooDeep(f"keys nested deeper than {MAX_TOML_DEPTH} tables")
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise TooDeep("nested too deeply") from None
    if _depth(data) > MAX_TOML_DEPTH:
        raise TooDeep(f"nested deeper than {MAX_TOML_DEPTH} levels")
    return data


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
