"""The ingress autoscales on open streams, whatever path they came by (autoscale.py).

One local Ray instance (2 CPUs, loopback only) runs the application autoscaling its ingress between
1 and 2 replicas at 2 streams per replica, with each replica's own port for multiplexed connections
on 127.0.0.1.  One multiplexed connection on that direct port carries 5 streams: Serve's proxy never
sees it (no ongoing request at all), so only the replicas' own count of open streams can bring the
second replica up.  Every loop is bounded in count and time.  Needs ``pip install -e '.[cluster]'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from typing import Any

import numpy as np
import pytest

from ser_daemon.cluster.runner import loopback_ray_env

os.environ.update(loopback_ray_env())  # before Ray is imported: a loopback-only instance
ray = pytest.importorskip("ray", reason="Ray Serve is needed: pip install -e '.[cluster]'")

from conftest import timeout  # noqa: E402
from test_cluster import local_cluster  # noqa: E402
from test_streams_multiplexed import Reader, ended_of, pcm16, start  # noqa: E402

from ser_daemon.net.mux_wire import SUBPROTOCOL_JSON, encode_audio_frame  # noqa: E402

pytestmark = pytest.mark.slow

TARGET = 2  # streams per ingress replica
STREAMS = 5  # on one connection: ceil(5 / 2) = 3 replicas wanted, 2 allowed
SCALE_UP_S = 60.0  # Serve's metric record (6 s) and push (10 s) periods, its upscale delay (5 s), a replica start
KEEPALIVE_S = 0.5  # each stream sends 100 ms of silence this often: well inside the 10 s idle timeout


@pytest.fixture(scope="module")
def cluster() -> Any:
    yield from local_cluster(min_ingress_replicas=1, max_ingress_replicas=2, streams_per_replica=TARGET,
                             max_streams_per_replica=8, direct_host="127.0.0.1")


def _endpoints(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/endpoints", timeout=timeout(5)) as resp:
        return list(json.loads(resp.read())["endpoints"])


def _ingress_replicas() -> dict[str, int]:
    from ray import serve

    from ser_daemon.cluster.app import APP_NAME

    return dict(serve.status().applications[APP_NAME].deployments["Ingress"].replica_states)


def test_streams_of_one_direct_multiplexed_connection_bring_a_second_replica_up(cluster) -> None:
    from websockets.asyncio.client import connect

    port = cluster["port"]
    deadline = time.monotonic() + timeout(20)
    while not (listed := _endpoints(port)):  # the replica announces its port once started (bounded)
        assert time.monotonic() < deadline, "the ingress replica never announced its direct port"
        time.sleep(0.2)
    assert len(listed) == 1 and _ingress_replicas() == {"RUNNING": 1}
    silence = pcm16(np.zeros(1600, dtype=np.float32))

    async def keep_talking(ws: Any) -> None:
        while True:  # ended by cancel (bounded by the test's own deadlines)
            await ws.send(encode_audio_frame([(tag, silence) for tag in range(1, STREAMS + 1)]))
            await asyncio.sleep(KEEPALIVE_S)

    async def main() -> tuple[Reader, float, list[tuple[float, dict]], list[str]]:
        ws = await connect(listed[0], subprotocols=[SUBPROTOCOL_JSON], max_size=None, open_timeout=timeout(5))
        r = Reader(ws)
        for tag in range(1, STREAMS + 1):
            await ws.send(start(f"auto{tag}", tag))
        await r.wait(lambda: len(r.started) == STREAMS, 20)
        talker = asyncio.ensure_future(keep_talking(ws))
        t0 = time.monotonic()
        timeline: list[tuple[float, dict]] = []
        try:
            while True:  # until Serve runs the second replica (bounded)
                now = await asyncio.to_thread(_ingress_replicas)
                if not timeline or timeline[-1][1] != now:
                    timeline.append((round(time.monotonic() - t0, 1), now))
                if now.get("RUNNING", 0) >= 2:
                    break
                assert time.monotonic() - t0 < timeout(SCALE_UP_S), f"no second replica: {timeline}"
                assert not r.ended and r.close == (None, None), (r.ended, r.close)
                await asyncio.sleep(0.5)
            up_s = time.monotonic() - t0
            deadline = time.monotonic() + timeout(20)
            while len(both := await asyncio.to_thread(_endpoints, port)) < 2:  # it announces its own port
                assert time.monotonic() < deadline, both
                await asyncio.sleep(0.2)
        finally:
            talker.cancel()
        for tag in range(1, STREAMS + 1):
            await ws.send(json.dumps({"type": "stop", "stream": f"auto{tag}"}))
        await r.wait(lambda: len(r.ended) == STREAMS, 20)
        await ws.close()
        await asyncio.wait_for(r.task, timeout(5))
        return r, up_s, timeline, both

    r, up_s, timeline, both = asyncio.run(main())
    print(f"\nsecond ingress replica running {up_s:.1f} s after {STREAMS} direct streams opened: {timeline}")
    assert len(both) == 2 and listed[0] in both
    assert _ingress_replicas().get("RUNNING") == 2  # the maximum holds: 3 were wanted
    for tag in range(1, STREAMS + 1):  # the scale-up left the open streams where they were
        assert ended_of(r, f"auto{tag}") == [(1000, "stopped")]
        assert r.states("stream", f"auto{tag}")[-1]["final"]
