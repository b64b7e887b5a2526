"""ser-daemon on Ray Serve: the ``--ingest`` protocol for many machines (``pip install 'ser-daemon[cluster]'``).

``ser-daemon cluster`` starts it (a local Ray instance, or ``--address`` of a running
cluster); ``serve run ser_daemon.cluster:app`` runs the default application with
Ray's own tooling, ``serve run ser_daemon.cluster:build_app key=value ...`` a
configured one.  Ray is imported only when this package is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app", "build_app"]


def __getattr__(name: str) -> Any:
    # Built on first access, not at import: the default application needs the default model.
    if name == "app":
        from .app import build_app

        return build_app({})
    if name == "build_app":
        from .app import build_app

        return build_app
    raise AttributeError(name)
