"""``ser-daemon sessions``: list the session logs of ``--session-log``, or delete them.

::

    ser-daemon sessions                     the logs in the per-user data folder, oldest first
    ser-daemon sessions --dir DIR           the logs in DIR (the folder given to --session-log)
    ser-daemon sessions --delete NAME       delete one log (its file name, as listed)
    ser-daemon sessions --delete-all        delete every log of the folder

Only files named like a session log are listed or deleted (see
:mod:`ser_daemon.sessions.store`); anything else in the folder is left alone.  A
name that is not a log of the folder ends with one line and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from ..arguments import OneLineParser
from ..errors import SerError
from .store import LOG_NAME, list_logs, sessions_dir

__all__ = ["main"]


def _parser() -> OneLineParser:
    p = OneLineParser(prog="ser-daemon sessions", description="List or delete the session logs of --session-log.")
    p.add_argument("--dir", metavar="DIR", help="the logs' folder (default: the per-user data folder's sessions/)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--delete", action="append", metavar="NAME", help="delete this log (its file name); repeatable")
    g.add_argument("--delete-all", action="store_true", help="delete every session log in the folder")
    return p


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ser-daemon sessions``; ``argv`` without the word ``sessions``."""
    args = _parser().parse_args(argv)
    folder = Path(args.dir).expanduser() if args.dir else sessions_dir()
    try:
        logs = list_logs(folder)
        if args.delete_all or args.delete:
            by_name = {f.path.name: f for f in logs}
            names = list(by_name) if args.delete_all else args.delete
            for name in names:
                if not LOG_NAME.match(name) or name not in by_name:
                    raise SerError(f"no session log named {name!r} in {folder} ('ser-daemon sessions' lists them)")
            for name in names:
                try:
                    by_name[name].path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise SerError(f"cannot delete {by_name[name].path}: {exc.strerror or exc}") from None
            print(f"deleted {len(names)} session log{'s' if len(names) != 1 else ''} from {folder}")
            return 0
    except SerError as exc:
        print(f"ser-daemon sessions: error: {exc}", file=sys.stderr)
        return 2
    if not logs:
        print(f"no session logs in {folder}")
        return 0
    print(f"session logs in {folder}:")
    for f in logs:
        print(f"  {f.path.name:<40s} {f.stream:<16s} {f.started:%Y-%m-%d %H:%M:%S} UTC  {_size(f.size):>10s}")
    return 0
