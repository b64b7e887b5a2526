"""What the cluster application is told, and the numbers derived from it (pure, no Ray).

Kept apart from the deployments so the derivations (batch size and wait from the
latency budget, autoscaling targets) are unit-tested without starting Ray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..core.mood_settings import MoodSettings, mood_settings_from_options
from ..core.pipeline import MAX_BATCH
from ..core.settings import AnalysisSettings
from ..errors import ConfigError
from ..model.backends import backend_choices, or_list
from ..net.ingest_protocol import OscAllowlist
from .autoscale import STREAMS_POLICY

__all__ = ["ClusterSettings", "batch_wait_s", "ingress_wait_s", "mood_from_args", "INGEST_MESSAGE_BYTES"]

# The single daemon's ingest limit (daemon.INGEST_MESSAGE_BYTES): an audio message larger than
# this is refused with 1009 there (by websockets) and here (by the ingress replica).
INGEST_MESSAGE_BYTES = 256 * 1024

# Share of the latency budget a window may wait for others to fill its batch.  The rest pays for
# the front end, two Ray hops (ingress -> model -> ingress, ~1-3 ms each on one node) and the
# model itself; a wait of 5 % (7.5 ms at the default 150 ms) gathers ~4 windows per ingress
# replica at 128 streams x 4 decisions/s, and every window of all replicas that arrives meanwhile.
BATCH_WAIT_SHARE = 0.05
MAX_BATCH_WAIT_S = 0.020
# Share of the budget an ingress replica gathers due windows before one model call.  Talkers
# that joined at different moments fall due on different 20 ms ticks; a call per tick cost the
# two replicas more CPU than the model itself (256 talkers over 8 connections on 2 cores: 1.73
# cores and p99 1.6 s at the 7.5 ms model wait, 1.27 cores and p99 111 ms at 40 ms;
# benchmarks/RESULTS.md, "Talkers that join at their own moment").
INGRESS_WAIT_SHARE = 0.25
MAX_INGRESS_WAIT_S = 0.040


def batch_wait_s(latency_budget_ms: float) -> float:
    """How long the model deployment holds a batch open, seconds (``@serve.batch``'s wait)."""
    return min(MAX_BATCH_WAIT_S, BATCH_WAIT_SHARE * latency_budget_ms / 1000.0)


def ingress_wait_s(latency_budget_ms: float) -> float:
    """How long an ingress replica gathers due windows before it calls the model, seconds."""
    return min(MAX_INGRESS_WAIT_S, INGRESS_WAIT_SHARE * latency_budget_ms / 1000.0)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be positive. Received: {name}={value!r}")


@dataclass(frozen=True)
class ClusterSettings:
    """The application's knobs.

    Attributes:
        model_dir: the model bundle's folder, as seen by every node (resolved by the driver).
        backend: ``auto`` (Keras on a GPU when the model replica has one, else LiteRT), ``litert``, ``keras``.
        analysis: hop, budget, gate and smoothing, as for the single daemon.
        ingress_replicas: a fixed number of ingress replicas; ``None`` autoscales between
            ``min_ingress_replicas`` and ``max_ingress_replicas``.
        streams_per_replica: autoscaling target: open streams per ingress replica (one-stream
            connections and every stream of the multiplexed ones, proxied or direct: autoscale.py).
        max_streams_per_replica: more streams than this on one replica (multiplexed ones included) are refused with 1013.
        ingress_cpus: CPUs reserved per ingress replica (front end and smoothing of its streams).
        model_replicas: model deployment replicas.
        model_cpus: CPUs reserved per model replica.
        model_gpus: GPUs per model replica (0: CPU; 1 with ``backend`` auto runs Keras on it).
        model_threads: LiteRT threads per model replica.
        max_ingress_replicas_per_node: spread the ingress over nodes (None: Serve places them).
        lease_s: a stream id stays claimed this long after its replica stops renewing it (a dead
            replica's streams can be reopened elsewhere after this).
        allow_stream_osc: hosts (IP addresses or ``localhost``) a start message's ``osc`` target
            may name; empty: every ``osc`` field is refused (1008).  A comma-separated string is
            accepted (``serve run ... allow_stream_osc=127.0.0.1``).
        mood: the mood stage per stream, as the daemon's ``--mood``: after each state its
            stream's ``mood`` (at most one a second of stream time, and the final state's) and
            ``event`` messages go back on the ingest connection, and to the stream's OSC target
            (generic scheme) when it has one.  ``None``: off.
        direct_host: each ingress replica also serves the multiplexed protocol on its own
            WebSocket port on this address, bypassing Serve's proxy (``direct.py``; clients find
            the ports with ``GET /endpoints``).  ``None``: off.
        direct_port: that port (0: any free port; a fixed one allows one ingress replica per node).
    """

    model_dir: str
    backend: str = "auto"
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    ingress_replicas: int | None = None
    min_ingress_replicas: int = 1
    max_ingress_replicas: int = 16
    streams_per_replica: int = 128
    max_streams_per_replica: int = 256
    ingress_cpus: float = 1.0
    model_replicas: int = 1
    model_cpus: float = 1.0
    model_gpus: float = 0.0
    model_threads: int = 1
    max_ingress_replicas_per_node: int | None = None
    lease_s: float = 3.0
    allow_stream_osc: tuple[str, ...] = ()
    mood: MoodSettings | None = None
    direct_host: str | None = None
    direct_port: int = 0

    def __post_init__(self) -> None:
        # Validated and written in one canonical form (raises ConfigError for a name or junk).
        object.__setattr__(self, "allow_stream_osc", tuple(sorted(OscAllowlist(self.allow_stream_osc).hosts)))
        if self.backend not in backend_choices():
            raise ConfigError(f"backend must be {or_list(backend_choices())}. Received: backend={self.backend!r}")
        for name in ("streams_per_replica", "max_streams_per_replica", "model_replicas", "min_ingress_replicas",
                     "max_ingress_replicas", "model_threads", "lease_s"):
            _positive(name, getattr(self, name))
        if self.ingress_replicas is not None:
            _positive("ingress_replicas", self.ingress_replicas)
        if self.max_streams_per_replica < self.streams_per_replica:
            raise ConfigError("max_streams_per_replica must be at least streams_per_replica")
        if self.min_ingress_replicas > self.max_ingress_replicas:
            raise ConfigError("min_ingress_replicas must not exceed max_ingress_replicas")
        if not 0 <= self.direct_port <= 65535:
            raise ConfigError(f"direct_port must be in 0..65535. Received: direct_port={self.direct_port!r}")

    @property
    def max_batch_size(self) -> int:
        """Windows per model call (the daemon's bound: LiteRT keeps one interpreter per power of two)."""
        return MAX_BATCH

    @property
    def batch_wait_s(self) -> float:
        return batch_wait_s(self.analysis.latency_budget_ms)

    @property
    def ingress_wait_s(self) -> float:
        """How long an ingress replica holds due windows for one model call (its ``WindowBatcher``)."""
        return ingress_wait_s(self.analysis.latency_budget_ms)

    def ingress_options(self) -> dict[str, Any]:
        """``Deployment.options`` for the ingress; autoscaled on open streams (autoscale.py) unless fixed."""
        opts: dict[str, Any] = {
            # Serve queues connections above this at the proxy; the replica itself refuses above
            # max_streams_per_replica with 1013, so leave room for the refusals to get through.
            "max_ongoing_requests": self.max_streams_per_replica + 16,
            "ray_actor_options": {"num_cpus": self.ingress_cpus},
        }
        if self.max_ingress_replicas_per_node is not None:
            opts["max_replicas_per_node"] = self.max_ingress_replicas_per_node
        if self.ingress_replicas is not None:
            opts["num_replicas"] = self.ingress_replicas
        else:
            opts["autoscaling_config"] = {
                "min_replicas": self.min_ingress_replicas,
                "max_replicas": self.max_ingress_replicas,
                # Read by the policy as open streams per replica (each replica reports its streams).
                "target_ongoing_requests": self.streams_per_replica,
                "policy": {"policy_function": STREAMS_POLICY},
                # Streams last minutes: scale up within seconds, down slowly (a scale-down drains a
                # replica, whose streams then reconnect elsewhere).  Serve applies both around the policy.
                "upscale_delay_s": 5.0,
                "downscale_delay_s": 300.0,
            }
        return opts

    def model_options(self) -> dict[str, Any]:
        actor: dict[str, Any] = {"num_cpus": self.model_cpus}
        if self.model_gpus:
            actor["num_gpus"] = self.model_gpus
        return {
            "num_replicas": self.model_replicas,
            # Enough in flight for a full batch being computed while the next one fills.
            "max_ongoing_requests": 4 * self.max_batch_size,
            "ray_actor_options": actor,
        }


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "none", "")


def mood_from_args(enabled: Any, options: Mapping[str, Any]) -> MoodSettings | None:
    """The mood settings from ``mood`` (on/off, or typed settings) and ``mood_*`` keys; None when off."""
    if isinstance(enabled, MoodSettings):
        return mood_settings_from_options(options, enabled) if options else enabled
    if isinstance(enabled, str):
        word = enabled.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ConfigError(f"mood must be true or false. Received: mood={enabled!r}")
        enabled = word in _TRUE
    if enabled is None:
        enabled = bool(options)  # a mood setting asks for the stage
    if not isinstance(enabled, bool):
        raise ConfigError(f"mood must be true or false. Received: mood={enabled!r}")
    if not enabled:
        return None
    typed: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, str):  # serve run passes strings: numbers, or a JSON point
            try:
                value = json.loads(value)
            except ValueError:
                raise ConfigError(f"{key} must be a number. Received: {key}={value!r}") from None
        typed[key] = value
    return mood_settings_from_options(typed)
