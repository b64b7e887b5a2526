"""What every ``ser-*`` command line shares: a parser with one-line errors and checked numbers.

``ser-daemon``, ``ser-daemon cluster``, ``ser-daemon enroll``/``profiles``, ``ser-train`` and
``ser-eval`` build their parsers from here, so a bad number reads the same everywhere and
argparse turns it into exit 2 with one line (never a traceback).
"""

from __future__ import annotations

import argparse
from typing import Callable, NoReturn

__all__ = ["OneLineParser", "checked_int", "checked_float"]


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors: the full usage of ~60 options buries the message."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def _in_range(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or lo <= value) and (hi is None or value <= hi)


def checked_int(
    lo: int | None = None,
    hi: int | None = None,
    *,
    parse_error: str = "expected a whole number, got {text!r}",
    range_error: str = "expected a number >= {lo}, got {value}",
) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers in ``[lo, hi]`` (either end open when None).

    The messages are ``str.format`` templates over ``text`` (what was typed), ``value``,
    ``lo`` and ``hi``.
    """

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(parse_error.format(text=text, lo=lo, hi=hi)) from None
        if not _in_range(value, lo, hi):
            raise argparse.ArgumentTypeError(range_error.format(text=text, value=value, lo=lo, hi=hi))
        return value

    convert.kind = "int"  # type: ignore[attr-defined]  # what a config file must give (app.options)
    return convert


def checked_float(
    lo: float | None = None,
    hi: float | None = None,
    *,
    parse_error: str = "expected a number, got {text!r}",
    range_error: str = "expected a number in [{lo}, {hi}], got {value}",
) -> Callable[[str], float]:
    """An argparse ``type`` for numbers in ``[lo, hi]`` (no range when both are None; NaN is out of any range)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(parse_error.format(text=text, lo=lo, hi=hi)) from None
        if (lo is not None or hi is not None) and not ((lo is None or lo <= value) and (hi is None or value <= hi)):
            raise argparse.ArgumentTypeError(range_error.format(text=text, value=value, lo=lo, hi=hi))
        return value

    convert.kind = "num"  # type: ignore[attr-defined]
    return convert
