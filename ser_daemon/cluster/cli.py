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

from ..arguments import OneLineParser, checked_int
from ..errors import ConfigError, SerError
from ..model.backends import AUTO, backend_choices

__all__ = ["main", "build_parser"]

log = logging.getLogger(__name__)

_port = checked_int(1, 65535, parse_error="expected a port number, got {text!r}", range_error="a port is 1-65535, got {value}")
_cpus = checked_int(1, range_error="Ray needs at least 1 CPU, got {value}")






def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="ser-daemon cluster",
        description="Serve the --ingest WebSocket protocol from a Ray Serve application "
                    "(pip install 'ser-daemon[cluster]').",
    )
    p.add_argument("--host", default="127.0.0.1", help="address of Serve's HTTP/WebSocket proxy (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="its port (default 8000)")
    p.add_argument("--address", default=None,
                   help="a running Ray cluster (e.g. auto or HEAD:6379); default: start a local one on loopback")
    p.add_argument("--num-cpus", type=_cpus, default=None, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--model", dest="model_dir", default=None, help="model bundle folder, readable on every node")
    p.add_argument("--backend", choices=backend_choices(), default=AUTO)
    p.add_argument("--ingress-replicas", type=int, default=None,
                   help="fixed number of ingress replicas (default: autoscale on open streams)")
    p.add_argument("--min-ingress-replicas", type=int, default=1)
    p.add_argument("--max-ingress-replicas", type=int, default=16)
    p.add_argument("--streams-per-replica", type=int, default=128,
                   help="autoscaling target: open streams per ingress replica, multiplexed and direct ones "
                        "included (default 128)")
    p.add_argument("--max-streams-per-replica", type=int, default=256,
                   help="more streams on one replica (multiplexed ones included) are refused with 1013 (default 256)")
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
    p.add_argument("--direct-host", default=None, metavar="ADDRESS",
                   help="each ingress replica also serves the multiplexed protocol (ser-ingest-mux.v1) on its own "
                        "WebSocket port on this address, past Serve's proxy; clients find the ports with GET "
                        "/endpoints (default: off)")
    p.add_argument("--direct-port", type=int, default=None,
                   help="that port (default 0: any free port; a fixed one allows one ingress replica per node)")
    p.add_argument("--mood", action="store_true",
                   help="track each stream's mood, as the daemon's --mood: its mood and event messages follow the "
                        "states on the ingest connection (README: For apps)")
    p.add_argument("--mood-setting", action="append", default=[], metavar="KEY=VALUE", type=_mood_setting,
                   help="a [mood] setting (e.g. cooldown_s=120; a circumplex point as circumplex_angry=[-0.6,0.6]); "
                        "implies --mood; repeat for more")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    return p


def _mood_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. cooldown_s=120. Received: {text!r}")
    return key.strip().replace("-", "_"), value.strip()


_OPTION_KEYS = ("model_dir", "backend", "ingress_replicas", "min_ingress_replicas", "max_ingress_replicas",
                "streams_per_replica", "max_streams_per_replica", "ingress_cpus", "model_replicas", "model_cpus",
                "model_gpus", "hop_ms", "latency_budget_ms", "allow_stream_osc", "direct_host", "direct_port")


def _settings_args(args: dict[str, Any]) -> dict[str, Any]:
    out = {k: args[k] for k in _OPTION_KEYS if args.get(k) is not None}
    if args.get("mood"):
        out["mood"] = True
    for key, value in args.get("mood_setting") or ():
        out[f"mood_{key}"] = value
    return out


def _check_cpus(settings: Any, num_cpus: int | None) -> None:
    """A local Ray with fewer CPUs than the replicas reserve never gets them ready: say so before starting it."""
    if num_cpus is None:
        return
    ingress = settings.ingress_replicas or settings.min_ingress_replicas
    need = ingress * settings.ingress_cpus + settings.model_replicas * settings.model_cpus
    if need > num_cpus:
        raise ConfigError(
            f"--num-cpus {num_cpus} is less than the replicas reserve: {ingress} ingress x {settings.ingress_cpus:g} + "
            f"{settings.model_replicas} model x {settings.model_cpus:g} = {need:g} CPUs; give more, or lower "
            "--ingress-cpus / --model-cpus"
        )


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
    from .runner import abandon, deploy, start_ray, stop

    try:
        settings = settings_from_args(_settings_args(args))
        if args["address"] is None:
            _check_cpus(settings, args["num_cpus"])
    except SerError as exc:
        print(f"ser-daemon cluster: error: {exc}", file=sys.stderr)
        return 2
    stop_event = threading.Event()
    stopped_by: list[int] = []
    starting = threading.Event()
    starting.set()

    def on_signal(signum: int, _frame: Any) -> None:
        stopped_by.append(signum)
        stop_event.set()

    # This subcommand's own stop signals: Serve and Ray must be shut down, not abandoned.  Set
    # before Ray starts and again after each step, because ray.init installs its own SIGTERM
    # handlers in the driver.  ray.init and serve.run block the main thread in native waits
    # where no Python handler runs (a Ctrl-C waited 13 s), so the signal's byte on the wakeup
    # fd is read by a thread of ours, which abandons the half-done start at once.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def abandon_start(signum: int) -> None:
        log.info("stopped during start-up: abandoning the half-started Ray")
        if args["address"] is None:
            abandon()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_code([signum]))  # Ray's atexit hook (and serve.shutdown) would wait for the start

    def watch_start() -> None:
        while True:
            data = os.read(read_fd, 16)
            if not data or not starting.is_set():
                os.close(read_fd)
                return
            if data[0] in (signal.SIGINT, signal.SIGTERM):
                abandon_start(data[0])

    threading.Thread(target=watch_start, name="cluster-start-signals", daemon=True).start()
    try:
        try:
            start_ray(args["address"], args["num_cpus"])
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, on_signal)
            if not stop_event.is_set():
                deploy(settings, args["host"], args["port"])
        except SystemExit as exc:  # ray.init's own SIGTERM handler, in the moment before ours is back
            if exc.code != signal.SIGTERM:
                raise
            abandon_start(signal.SIGTERM)
        except Exception as exc:  # noqa: BLE001 - Ray or Serve refused (port taken, cluster address...)
            first = str(exc).splitlines()[0] if str(exc) else ""
            print(f"ser-daemon cluster: error: could not start: {type(exc).__name__}: {first}", file=sys.stderr)
            log.debug("start-up failed", exc_info=True)
            return 1
        finally:
            starting.clear()
            signal.set_wakeup_fd(previous_fd)
            os.close(write_fd)  # the watcher reads EOF and ends
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        if not stop_event.is_set():
            print(f"ser-daemon cluster: ingest on ws://{args['host']}:{args['port']}/", flush=True)
        while not stop_event.wait(0.5):
            pass
    finally:
        if args["address"] is None:
            stop()
        else:
            import ray

            ray.shutdown()  # the application stays on the cluster
    return _exit_code(stopped_by)


def _exit_code(stopped_by: list[int]) -> int:
    """130 for Ctrl-C (SIGINT), as the daemon; 0 for SIGTERM or no signal."""
    return 130 if stopped_by[:1] == [signal.SIGINT] else 0
