"""The stream-id registry deployment: one replica deciding which ids are in use cluster-wide.

A thin Ray Serve wrapper around :class:`StreamLeases`.  If this replica dies,
Serve starts a new, empty one; the ingress replicas re-claim their live streams
at their next renewal (every ``lease_s / 4``), so duplicates can slip through
only in that window.  The renewals also carry each replica's direct endpoint
(``direct.py``), which lapses with the replica's leases.
"""

from __future__ import annotations

import time

from ray import serve

from .leases import StreamLeases

__all__ = ["Registry"]


@serve.deployment(name="Registry", num_replicas=1, ray_actor_options={"num_cpus": 0})
class Registry:
    def __init__(self, lease_s: float) -> None:
        self.lease_s = lease_s
        self.leases = StreamLeases(lease_s)
        self._endpoints: dict[str, tuple[str, float]] = {}  # owner -> (its direct URL, lapses at)

    def claim(self, stream: str, owner: str) -> bool:
        return self.leases.claim(stream, owner)

    def release(self, stream: str, owner: str) -> None:
        self.leases.release(stream, owner)

    def renew(self, owner: str, streams: list[str], endpoint: str | None = None) -> list[str]:
        """Keep ``owner``'s streams, and its direct endpoint (``direct.py``) when it has one."""
        if endpoint is not None:
            self._endpoints[owner] = (endpoint, time.monotonic() + self.lease_s)
        return self.leases.renew(owner, streams)

    def endpoints(self) -> list[str]:
        """The direct endpoints of the ingress replicas alive within the lease (sorted)."""
        now = time.monotonic()
        for owner in [o for o, (_, t) in self._endpoints.items() if t <= now]:
            del self._endpoints[owner]
        return sorted(url for url, _ in self._endpoints.values())

    def owners(self) -> dict[str, str]:
        return self.leases.owners()
