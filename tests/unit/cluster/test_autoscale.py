"""The ingress's autoscaling policy on open streams (autoscale.py): the pure rule, then the same rule as
Serve's controller runs it (its context, its config parsing, its delays), without starting Ray."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ser_daemon.cluster.autoscale import (
    STREAMS_METRIC,
    STREAMS_POLICY,
    desired_replicas,
    latest_total,
    open_streams_policy,
)
from ser_daemon.cluster.settings import ClusterSettings


@pytest.mark.parametrize(("streams", "expected"), [
    (0, 1),  # no streams: the minimum, never zero replicas
    (1, 1),
    (128, 1),  # exactly one replica's target
    (129, 2),  # one stream more: a second replica
    (256, 2),
    (257, 3),
    (16 * 128, 16),
    (16 * 128 + 1, 16),  # past the maximum: the maximum
    (10**6, 16),
])
def test_one_replica_per_target_of_open_streams_within_the_bounds(streams: int, expected: int) -> None:
    assert desired_replicas(streams, 128, 1, 16) == expected


def test_the_minimum_holds_with_few_streams_and_negative_counts_are_none() -> None:
    assert desired_replicas(0, 4, 3, 5) == 3
    assert desired_replicas(9, 4, 3, 5) == 3
    assert desired_replicas(13, 4, 3, 5) == 4
    assert desired_replicas(-5, 4, 1, 5) == 1
    assert desired_replicas(0, 4, 0, 5) == 0  # Serve may allow zero; the rule follows its bounds
    assert desired_replicas(6, 2, 2, 2) == 2  # fixed bounds


@pytest.mark.parametrize(("target", "low", "high"), [(0, 1, 2), (-1, 1, 2), (4, 3, 2)])
def test_bad_targets_and_crossed_bounds_are_refused(target: float, low: int, high: int) -> None:
    with pytest.raises(ValueError):
        desired_replicas(1, target, low, high)


@given(streams=st.integers(0, 100_000), target=st.integers(1, 512), low=st.integers(0, 8), extra=st.integers(0, 64))
def test_enough_replicas_for_the_streams_and_no_more_unless_the_bounds_say_so(
        streams: int, target: int, low: int, extra: int) -> None:
    high = low + extra
    n = desired_replicas(streams, target, low, high)
    assert low <= n <= high
    if n < high:  # not capped: every stream has room
        assert n * target >= streams
    if n > low:  # not lifted by the minimum: one replica fewer would not hold them
        assert (n - 1) * target < streams


class _Point:
    def __init__(self, timestamp: float, value: float) -> None:
        self.timestamp, self.value = timestamp, value


def test_each_replicas_latest_report_counts_not_its_average_nor_its_last_listed() -> None:
    series = {
        "a": [_Point(1.0, 0), _Point(3.0, 7), _Point(2.0, 100)],  # latest by time: 7
        "b": [_Point(5.0, 2)],
        "c": [],  # reported nothing yet
    }
    assert latest_total(series) == 9
    assert latest_total({}) == 0


# -- as Serve's controller runs it -------------------------------------------------------------
ray_config = pytest.importorskip("ray.serve.config", reason="Ray Serve is needed: pip install -e '.[cluster]'")


def _serve_config(settings: ClusterSettings) -> Any:
    """The ingress's autoscaling config as Serve parses it (the policy pickled by value, as deployed)."""
    return ray_config.AutoscalingConfig(**settings.ingress_options()["autoscaling_config"])


def _context(config: Any, streams: dict[str, list[tuple[float, float]]], running: list[str], target: int,
             state: dict | None = None) -> Any:
    from ray.serve._private.common import DeploymentID, ReplicaID, TimeStampedValue

    dep = DeploymentID(name="Ingress", app_name="ser")
    rid = {name: ReplicaID(unique_id=name, deployment_id=dep) for name in {*streams, *running}}
    raw = {STREAMS_METRIC: {rid[n]: [TimeStampedValue(t, v) for t, v in pts] for n, pts in streams.items()}}
    return ray_config.AutoscalingContext(
        deployment_id=dep, deployment_name="Ingress", app_name="ser", current_num_replicas=len(running),
        target_num_replicas=target, running_replicas=[rid[n] for n in running], total_num_requests=0.0,
        total_queued_requests=0.0, aggregated_metrics=None, raw_metrics=raw,
        capacity_adjusted_min_replicas=config.min_replicas, capacity_adjusted_max_replicas=config.max_replicas,
        policy_state=dict(state or {}), last_scale_up_time=None, last_scale_down_time=None,
        current_time=time.time(), config=config)


def test_the_deployed_config_names_this_policy_and_serve_unpickles_it() -> None:
    config = _serve_config(ClusterSettings(model_dir="/m", streams_per_replica=2, max_streams_per_replica=8,
                                           max_ingress_replicas=3))
    assert config.policy.policy_function == STREAMS_POLICY and not config.policy.is_default_policy_function()
    policy = config.policy.get_policy()  # what the controller runs: a copy by value, not this module's object
    assert policy.__name__ == open_streams_policy.__name__
    ctx = _context(config, {"r1": [(1.0, 5.0)]}, ["r1"], target=1)
    assert policy(ctx) == (3, {})  # 5 streams at 2 per replica: 3


def test_streams_of_every_running_replica_count_and_stopped_replicas_do_not() -> None:
    config = _serve_config(ClusterSettings(model_dir="/m", streams_per_replica=4, max_streams_per_replica=8,
                                           max_ingress_replicas=8))
    streams = {"r1": [(1.0, 4.0), (2.0, 3.0)], "r2": [(2.0, 6.0)], "gone": [(2.0, 40.0)]}
    assert open_streams_policy(_context(config, streams, ["r1", "r2", "new"], target=3))[0] == math.ceil(9 / 4)
    assert open_streams_policy(_context(config, {}, ["r1"], target=1))[0] == 1  # nothing reported yet: the minimum


def test_serve_applies_the_upscale_and_downscale_delays_around_the_policy() -> None:
    """Serve wraps every custom policy in its delay logic (private API: this pins what the wiring relies on)."""
    from ray.serve._private.constants import SERVE_AUTOSCALING_DECISION_TIMESTAMP_KEY as WHEN
    from ray.serve.autoscaling_policy import _apply_autoscaling_config

    config = _serve_config(ClusterSettings(model_dir="/m", streams_per_replica=2, max_streams_per_replica=8,
                                           max_ingress_replicas=3))
    assert (config.upscale_delay_s, config.downscale_delay_s) == (5.0, 300.0)
    wrapped = _apply_autoscaling_config(config.policy.get_policy())
    busy = {"r1": [(time.time(), 6.0)]}

    n, state = wrapped(_context(config, busy, ["r1"], target=1))
    assert n == 1 and state[WHEN] is not None  # wants 3, waits for upscale_delay_s
    state[WHEN] -= 4.0
    assert wrapped(_context(config, busy, ["r1"], target=1, state=state))[0] == 1
    state[WHEN] -= 1.5  # 5.5 s of wanting more
    assert wrapped(_context(config, busy, ["r1"], target=1, state=state))[0] == 3

    idle = {r: [(time.time(), 0.0)] for r in ("r1", "r2", "r3")}
    n, state = wrapped(_context(config, idle, ["r1", "r2", "r3"], target=3))
    assert n == 3 and state[WHEN] is not None  # wants 1, waits for downscale_delay_s
    state[WHEN] -= 60.0
    assert wrapped(_context(config, idle, ["r1", "r2", "r3"], target=3, state=state))[0] == 3
    state[WHEN] -= 241.0
    assert wrapped(_context(config, idle, ["r1", "r2", "r3"], target=3, state=state))[0] == 1
