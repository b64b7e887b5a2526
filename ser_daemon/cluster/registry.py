"""The stream-id registry deployment: one replica deciding which ids are in use cluster-wide.

A thin Ray Serve wrapper around :class:`StreamLeases`.  If this replica dies,
Serve starts a new, empty one; the ingress replicas re-claim their live streams
at their next renewal (every ``lease_s / 4``), so duplicates can slip through
only in that window.
"""

from __future__ import annotations

from ray import serve

from .leases import StreamLeases

__all__ = ["Registry"]


@serve.deployment(name="Registry", num_replicas=1, ray_actor_options={"num_cpus": 0})
class Registry:
    def __init__(self, lease_s: float) -> None:
        self.leases = StreamLeases(lease_s)

    def claim(self, stream: str, owner: str) -> bool:
        return self.leases.claim(stream, owner)

    def release(self, stream: str, owner: str) -> None:
        self.leases.release(stream, owner)

    def renew(self, owner: str, streams: list[str]) -> list[str]:
        return self.leases.renew(owner, streams)

    def owners(self) -> dict[str, str]:
        return self.leases.owners()
