"""``python -m ser_daemon`` and the ``ser-daemon`` command (its entry point is :func:`main`).

The stop-signal handlers go in before anything heavier is imported (the CLI, numpy, LiteRT,
the model): a signal at any moment of start-up ends the process at once with its documented
exit code, never a traceback or a wrong message (``ser_daemon.app.startup`` says why and how).
"""

import os
import sys

try:
    from .app.startup import install_startup_handlers
except KeyboardInterrupt:  # Ctrl-C in the millisecond before ours can be in: Python's handler raised it
    os._exit(130)


def main() -> int:
    """Install the start-up signal handlers, limit BLAS to one thread, then run the CLI."""
    try:
        install_startup_handlers()
    except KeyboardInterrupt:
        os._exit(130)
    from .app.math_threads import limit_math_threads

    limit_math_threads()  # before the CLI imports numpy: the BLAS pool reads it once, at load
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
