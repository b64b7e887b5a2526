"""How many ingress replicas the open streams need: Serve's autoscaling policy for the ingress (pure).

Serve's own policy scales on ongoing requests, and an ingest connection through its proxy is one
request for as long as it lasts.  That count is blind to what the ingress actually carries: a
multiplexed connection (``ser-ingest-mux.v1``) holds up to 64 streams as one request, and a
connection on a replica's own port (``direct.py``) is no request at all.  So each ingress replica
reports its open streams (``Ingress.record_autoscaling_stats``: one-stream connections plus every
stream of its multiplexed ones, proxied or direct) and this policy sizes the deployment on their sum:

    desired = ceil(open streams / streams per replica), clipped to [min, max] replicas.

The streams per replica are the autoscaling config's ``target_ongoing_requests`` (set to
``ClusterSettings.streams_per_replica``), so ``serve status`` shows the target that is used.
Each replica's count is its latest report, not an average over Serve's look-back window: open
streams are a level that changes when a talker joins or leaves, not a request rate, and averaging
would only delay a scale-up.  The debouncing stays Serve's: it wraps every custom policy in its
``upscale_delay_s`` / ``downscale_delay_s`` logic (a wish must hold that long before it is acted on)
and the min/max bounds, so the delays keep their meaning: scale up within seconds, down slowly,
because a scale-down drains a replica and its streams reconnect elsewhere.

Serve pickles this module by value into its controller, which may not have ``ser_daemon``: it
imports nothing but the standard library.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:  # Ray is needed only to run the policy, never to import this module
    from ray.serve.config import AutoscalingContext

__all__ = ["STREAMS_METRIC", "STREAMS_POLICY", "desired_replicas", "latest_total", "open_streams_policy"]

STREAMS_METRIC = "ser_open_streams"  # the key of each replica's record_autoscaling_stats()
STREAMS_POLICY = "ser_daemon.cluster.autoscale:open_streams_policy"  # autoscaling_config["policy"]


def desired_replicas(open_streams: float, streams_per_replica: float, min_replicas: int, max_replicas: int) -> int:
    """Replicas for ``open_streams`` at ``streams_per_replica`` each, within ``[min_replicas, max_replicas]``.

    Raises:
        ValueError: ``streams_per_replica`` is not positive, or the bounds are crossed.
    """
    if not streams_per_replica > 0:
        raise ValueError(f"streams_per_replica must be positive. Received: streams_per_replica={streams_per_replica!r}")
    if min_replicas > max_replicas:
        raise ValueError(f"min_replicas ({min_replicas}) exceeds max_replicas ({max_replicas})")
    needed = math.ceil(max(0.0, open_streams) / streams_per_replica)
    return max(min_replicas, min(max_replicas, needed))


def latest_total(series_by_replica: Mapping[Any, Iterable[Any]]) -> float:
    """The sum over replicas of each one's latest reported value (items with ``timestamp`` and ``value``)."""
    total = 0.0
    for series in series_by_replica.values():
        latest = max(series, key=lambda point: point.timestamp, default=None)
        if latest is not None:
            total += latest.value
    return total


def open_streams_policy(ctx: AutoscalingContext) -> tuple[int, dict[str, Any]]:
    """Serve's policy hook (``autoscaling_config["policy"]``): replicas for the streams open now.

    A running replica that has not reported yet (just started) counts as none; a stopping one is no
    longer running, and its streams are counted again where they reconnect.
    """
    assert ctx.config is not None  # Serve passes the deployment's config with every context
    reported = (ctx.raw_metrics or {}).get(STREAMS_METRIC, {})
    running = set(ctx.running_replicas)
    streams = latest_total({r: s for r, s in reported.items() if r in running})
    desired = desired_replicas(streams, ctx.config.get_target_ongoing_requests(), ctx.capacity_adjusted_min_replicas,
                               ctx.capacity_adjusted_max_replicas)
    return desired, {}  # no state of its own: Serve keeps its delay bookkeeping beside it
