"""Starting and stopping Ray and the application: shared by ``ser-daemon cluster``, the tests and the benchmark.

A local Ray instance started here stays on loopback: Ray otherwise advertises
the machine's outward address, and its usage statistics are switched off.
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["loopback_ray_env", "loopback_replicas", "start_ray", "deploy", "stop", "descendants", "abandon"]

log = logging.getLogger(__name__)


def loopback_ray_env() -> dict[str, str]:
    """Environment that keeps a local Ray on 127.0.0.1 and quiet (set before ``import ray``)."""
    return {
        "RAY_USAGE_STATS_ENABLED": "0",  # no usage report leaves the machine
        # Ray's switch for "single-machine mode": the node address is the loopback one
        # (named for Windows and macOS, where it is the default; honoured on Linux too).
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_DEDUP_LOGS": "0",
    }


def loopback_replicas() -> None:
    """Worker set-up hook of a local instance: Serve replicas' inter-deployment gRPC port on loopback.

    Ray Serve 2.x binds that port to ``[::]:0`` (every interface) with no option to narrow
    it; everything else of a loopback instance listens on 127.0.0.1.  Rewrites the one
    call; a Ray without it is left alone.
    """
    try:
        from ray.serve._private import replica
    except ImportError:
        return
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "_ser_loopback", False):
        return

    def add_port(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            address = "127.0.0.1:" + address.rsplit(":", 1)[1]
        return original(server, address)

    add_port._ser_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port


def _loopback_runtime_env() -> dict[str, Any]:
    return {"worker_process_setup_hook": "ser_daemon.cluster.runner.loopback_replicas", "env_vars": loopback_ray_env()}


def start_ray(address: str | None = None, num_cpus: int | None = None, loopback: bool | None = None,
              **kwargs: Any) -> None:
    """Connect to the cluster at ``address``, or start a local one on loopback with ``num_cpus``.

    Args:
        loopback: apply the loopback-only worker set-up (default: for a local instance only;
            pass True for a cluster of loopback nodes, as the benchmark makes).
    """
    if loopback is None:
        loopback = address is None
    if loopback:
        for key, value in loopback_ray_env().items():
            os.environ.setdefault(key, value)
        kwargs.setdefault("runtime_env", _loopback_runtime_env())
    import ray

    if address is None:
        # "local": always a new instance of our own.  Without it Ray joins whatever cluster
        # /tmp/ray/ray_current_cluster names (another program's, or another test run's) and then
        # refuses num_cpus.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 configure_logging=False, log_to_driver=False, **kwargs)
    else:
        ray.init(address=address, **kwargs)


def deploy(settings: Any, host: str = "127.0.0.1", port: int = 8000, proxy_location: str = "EveryNode") -> Any:
    """Start Serve's HTTP proxy on ``host:port`` and run the application; return the ingress handle.

    ``proxy_location``: ``EveryNode`` (a real cluster: one proxy per node, behind a load
    balancer) or ``HeadOnly`` (several nodes on one machine, which cannot share one port).
    """
    from ray import serve

    from .app import APP_NAME, build_app

    serve.start(http_options={"host": host, "port": port}, proxy_location=proxy_location)
    return serve.run(build_app(settings), name=APP_NAME, route_prefix="/")


def stop() -> None:
    """Shut Serve and (this process's) Ray down; harmless when they are not running."""
    import ray
    from ray import serve

    if ray.is_initialized():
        try:
            serve.shutdown()
        except Exception:  # noqa: BLE001 - Ray down already: nothing left to stop
            log.warning("serve.shutdown failed", exc_info=True)
    # Also when ray.init was interrupted half-way: shutdown() kills the processes it had started.
    ray.shutdown()


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc: parent links; empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for d in entries:
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out: set[int] = set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def abandon() -> None:
    """A stop during start-up: kill the processes a half-started local Ray has made below this one.

    ``ray.init`` and ``serve.run`` block in native calls that a signal does not interrupt (a
    Ctrl-C waited 13 s for them), and nothing is served yet, so the start is not waited for:
    its processes are killed and the caller exits at once.
    """
    import signal

    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
