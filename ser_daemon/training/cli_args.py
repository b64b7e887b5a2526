"""Argument types that ser-train and ser-eval share (argparse turns their errors into exit 2)."""

from __future__ import annotations

import argparse

__all__ = ["csv_list", "label_map"]


def csv_list(text: str) -> list[str]:
    """``a,b,,c`` -> ``["a", "b", "c"]``."""
    return [t.strip() for t in text.split(",") if t.strip()]


def label_map(text: str) -> dict[str, str]:
    """``from=to,...`` -> ``{"from": "to"}``, lower-cased."""
    out = {}
    for item in csv_list(text):
        a, sep, b = item.partition("=")
        if not sep or not a.strip() or not b.strip():
            raise argparse.ArgumentTypeError(f"label map items look like from=to (e.g. calm=neutral). Received: {item!r}")
        out[a.strip().lower()] = b.strip().lower()
    return out
