"""The self-fencing watchdog of a node without a BMC (as Proxmox's): the node holds a liveness
lease on the store and renews it while it reaches the store's majority; if it could not renew
it for the self-fence timeout less the safety margin, it kills its own guests, before the store
lets the lease expire. The master takes a node whose liveness lease expired as fenced
(genet.ha.recovery), so no guest ever runs on both sides of a partition."""
from __future__ import annotations

from typing import Callable, Protocol

from genet.clock import Clock
from genet.ha.store import StoreUnavailable
from genet.ha.timing import Timing

Log = Callable[[str], None]


class Liveness(Protocol):
    def grant(self, ttl: float) -> int: ...
    def keepalive(self, lease: int) -> bool: ...
    def announce(self, node: str, lease: int) -> None:
        """Put this node's liveness key under ``lease``."""


class Guests(Protocol):
    def kill_all(self) -> list[str]:
        """Kill every guest on this node at once; their names."""


class Watchdog:
    def __init__(self, node: str, store: Liveness, guests: Guests, clock: Clock, timing: Timing, log: Log):
        self.node, self.store, self.guests, self.clock, self.timing, self.log = node, store, guests, clock, timing, log
        self.lease: int | None = None
        self.valid_until = clock.monotonic() + timing.self_fence - timing.margin
        self.fired = False

    def tick(self) -> None:
        sent = self.clock.monotonic()
        try:
            if self.lease is None or not self.store.keepalive(self.lease):
                self.lease = self.store.grant(self.timing.self_fence)
                self.store.announce(self.node, self.lease)
            self.valid_until = sent + self.timing.self_fence - self.timing.margin
            if self.fired:
                self.log(f"{self.node}: watchdog: the store is reachable again")
                self.fired = False
            return
        except StoreUnavailable:
            pass
        if not self.fired and self.clock.monotonic() >= self.valid_until:
            killed = self.guests.kill_all()
            self.fired = True
            self.log(f"{self.node}: watchdog: cut off from the store for {self.timing.self_fence - self.timing.margin:.1f} s:"
                     f" killed its guests ({', '.join(killed) or 'none'})")
