"""``ser-daemon cluster``: the ingest protocol on Ray Serve, on this machine or a running Ray cluster.

Started with no ``--address``, a local Ray instance on loopback is made for the
run and shut down at the end; with ``--address`` the application is deployed to
that cluster and left running there (``serve shutdown`` removes it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any, Sequence

from ..errors import SerError

__all__ = ["main", "build_parser"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ser-daemon cluster",
        description="Serve the --ingest WebSocket protocol from a Ray Serve application "
                    "(pip install 'ser-daemon[cluster]').",
    )
    p.add_argument("--host", default="127.0.0.1", help="address of Serve's HTTP/WebSocket proxy (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="its port (default 8000)")
    p.add_argument("--address", default=None,
                   help="a running Ray cluster (e.g. auto or HEAD:6379); default: start a local one on loopback")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--model", dest="model_dir", default=None, help="model bundle folder, readable on every node")
    p.add_argument("--backend", choices=("auto", "litert", "keras"), default="auto")
    p.add_argument("--ingress-replicas", type=int, default=None,
                   help="fixed number of ingress replicas (default: autoscale on open connections)")
    p.add_argument("--min-ingress-replicas", type=int, default=1)
    p.add_argument("--max-ingress-replicas", type=int, default=16)
    p.add_argument("--streams-per-replica", type=int, default=128,
                   help="autoscaling target: open connections per ingress replica (default 128)")
    p.add_argument("--max-streams-per-replica", type=int, default=256,
                   help="more connections on one replica are refused with 1013 (default 256)")
    p.add_argument("--ingress-cpus", type=float, default=1.0, help="CPUs reserved per ingress replica")
    p.add_argument("--model-replicas", type=int, default=1)
    p.add_argument("--model-cpus", type=float, default=1.0, help="CPUs reserved per model replica")
    p.add_argument("--model-gpus", type=float, default=0.0, help="GPUs per model replica (Keras runs there)")
    p.add_argument("--hop-ms", type=float, default=None, help="milliseconds between decisions (default 250)")
    p.add_argument("--latency-budget-ms", type=float, default=None, help="latency budget (default 150)")
    p.add_argument("--allow-stream-osc", default=None, metavar="HOST[,HOST...]",
                   help="IP addresses (or localhost) a start message's \"osc\": \"HOST:PORT\" may name; the "
                        "ingress replicas then send that stream's states there as OSC (default: none, such a start "
                        "message is refused with 1008)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    return p


_OPTION_KEYS = ("model_dir", "backend", "ingress_replicas", "min_ingress_replicas", "max_ingress_replicas",
                "streams_per_replica", "max_streams_per_replica", "ingress_cpus", "model_replicas", "model_cpus",
                "model_gpus", "hop_ms", "latency_budget_ms", "allow_stream_osc")


def _settings_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: args[k] for k in _OPTION_KEYS if args.get(k) is not None}


def main(argv: Sequence[str]) -> int:
    """Run until SIGINT/SIGTERM; return the exit code."""
    args = vars(build_parser().parse_args(list(argv)))
    logging.basicConfig(level=getattr(logging, args["log_level"].upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .runner import loopback_ray_env

    if args["address"] is None:
        for key, value in loopback_ray_env().items():  # before Ray is imported
            os.environ.setdefault(key, value)
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        from .app import settings_from_args
    except ImportError as exc:
        print(f"ser-daemon cluster: error: needs Ray Serve: pip install 'ser-daemon[cluster]' ({exc})", file=sys.stderr)
        return 2
    from .runner import deploy, start_ray, stop

    try:
        settings = settings_from_args(_settings_args(args))
    except SerError as exc:
        print(f"ser-daemon cluster: error: {exc}", file=sys.stderr)
        return 2
    stop_event = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop_event.set()

    # This subcommand's own stop signals: Serve and Ray must be shut down, not abandoned.  Set
    # before Ray starts (a signal meanwhile stops at the first chance) and again after, because
    # ray.init installs its own SIGTERM handler in the driver.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    start_ray(args["address"], args["num_cpus"])
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        if stop_event.is_set():
            return 0
        deploy(settings, args["host"], args["port"])
        print(f"ser-daemon cluster: ingest on ws://{args['host']}:{args['port']}/", flush=True)
        while not stop_event.wait(0.5):
            pass
    finally:
        if args["address"] is None:
            stop()
        else:
            import ray

            ray.shutdown()  # the application stays on the cluster
    return 0
