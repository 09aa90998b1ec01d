"""The leadership store: what the election needs from etcd, and nothing more.

The master's role is one key held under a lease; the master epoch (the fencing token every
replicated write carries, see genet.config.master_epoch) is a second key, raised by one in the
same transaction that takes the role, so it grows by exactly one per election or hand-over and
stays comparable with the epochs of manual master-failovers made before etcd ran.

Two implementations: genet.ha.etcd (a real etcd, through etcd3gw) and genet.ha.sim (a
simulated one inside the scenario simulator)."""
from __future__ import annotations

import dataclasses
from typing import Protocol

MASTER_KEY = "/genet/master"     # value: the master node's name; held under the master's lease
EPOCH_KEY = "/genet/epoch"       # value: the master epoch as a decimal integer


class StoreUnavailable(Exception):
    """The store could not answer: this member is cut off from its majority, or down."""


@dataclasses.dataclass(frozen=True)
class Leader:
    """Who holds the master role, under which lease, in which epoch (None: nobody)."""
    node: str | None
    lease: int | None
    epoch: int


class Store(Protocol):
    def grant(self, ttl: float) -> int:
        """A new lease of ``ttl`` seconds; its id."""

    def keepalive(self, lease: int) -> bool:
        """Renew ``lease``; False when it has already expired (or was revoked)."""

    def revoke(self, lease: int) -> None:
        """End ``lease`` now: the keys it holds vanish."""

    def leader(self) -> Leader:
        """The master key and the epoch, read together (linearizable)."""

    def claim(self, node: str, lease: int, epoch: int) -> bool:
        """Take the master role for ``node`` under ``lease`` with epoch ``epoch`` + 1, only if
        nobody holds it and the epoch is still ``epoch``: one transaction. True if taken."""

    def hand_over(self, node: str, lease: int, epoch: int) -> bool:
        """Take the master role from whoever holds it (a manual master-failover), only if the
        epoch is still ``epoch``; the new epoch is ``epoch`` + 1. True if taken."""
