"""``python -m ser_daemon``: the same as the ``ser-daemon`` command."""

import os
import sys

# As early as the package allows: a stop signal while the CLI is still importing exits with
# that signal's documented code, never a traceback (README: exit codes).  Until the handlers
# are in, Python's own Ctrl-C handler raises KeyboardInterrupt: also 130.
try:
    from .platform import install_startup_handlers

    install_startup_handlers()
    from .cli import main
except KeyboardInterrupt:
    os._exit(130)
except BaseException as exc:  # StartupInterrupt (SIGTERM, SIGHUP) carries its exit code
    code = getattr(exc, "exit_code", None)
    if code is None:
        raise
    os._exit(code)

sys.exit(main())
