"""``python -m ser_daemon`` runs the daemon's command line."""

import sys

from .cli import main

sys.exit(main())
