"""``python -m ser_daemon``: the same as the ``ser-daemon`` command."""

import os
import sys

from .platform import StartupInterrupt, install_startup_handlers

# As early as the package allows: a stop signal while the CLI is still importing exits with
# that signal's documented code, never a traceback (README: exit codes).
install_startup_handlers()
try:
    from .cli import main
except StartupInterrupt as exc:
    os._exit(exc.exit_code)
except KeyboardInterrupt:
    os._exit(130)

sys.exit(main())
