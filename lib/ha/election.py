"""Who is master: the election each master candidate runs, and the lease the master keeps.

States of a candidate (``Elector``):

- follower: every ``elect`` seconds it reads the master key. Held by someone else: nothing to
  do (a masterd still running here was deposed: stopped). Free, and automatic failover is on:
  it campaigns.
- campaigning: a fresh lease, then one transaction that takes the key only if it is still free
  and the epoch unchanged, raising the epoch by one. Lost: the lease is revoked.
- taking over: the winner fences a majority of candidates with the new epoch (they refuse the
  old master's writes from then on), takes the newest config and every job version they hold
  (each acknowledged write is on a majority, and two majorities meet), and only then starts
  masterd. If it cannot, it gives the role back (revokes the lease) and is a follower again.
- master: ``MasterLease`` renews the lease every ``keepalive`` seconds. The lease is known valid
  until the send time of the last renewal the store confirmed plus the TTL; ``margin`` before
  that, without a newer confirmation, the master stops accepting jobs and steps down. The store
  expires the lease no earlier than that, so a new master is elected only after the old one
  stopped: two masters never accept jobs at the same time. A master paused past its lease (and
  so not stopped) is still harmless: the candidates hold the newer epoch and refuse its writes.

Every effect on the node (fencing candidates, starting or stopping masterd) goes through
``Local``; time through a Clock; the key through a Store. The scenario simulator drives this
same code (genet.ha.sim).
"""
from __future__ import annotations

import enum
from typing import Callable, Protocol

from genet.clock import Clock
from genet.ha.store import Store, StoreUnavailable
from genet.ha.timing import Timing

Log = Callable[[str], None]
RETRY = 0.5         # seconds between renewals while they go unanswered


class Role(enum.Enum):
    FOLLOWER = "follower"
    MASTER = "master"


class Local(Protocol):
    """This candidate's side of the world."""

    def auto_failover(self) -> bool:
        """Whether the cluster has automatic master failover on (its config)."""

    def take_over(self, epoch: int) -> str | None:
        """Fence a majority of candidates with ``epoch``, take the newest config and job queue,
        make this node the master in the config. None when done; else why not."""

    def start_master(self, lease: int, epoch: int) -> None:
        """Start masterd (and RAPI, the master IP) holding ``lease``."""

    def stop_master(self, reason: str) -> None:
        """Stop masterd and RAPI and drop the master IP, at once."""


class MasterLease:
    """The master's hold on its role: renewals, and whether it may still accept jobs."""

    def __init__(self, store: Store, clock: Clock, timing: Timing, lease: int, granted: float):
        """``granted``: when the grant of ``lease`` was sent (its TTL runs from no earlier)."""
        self.store, self.clock, self.timing, self.lease = store, clock, timing, lease
        self.valid_until = granted + timing.lease_ttl - timing.margin
        self.lost = False
        self.confirmed = False      # the last renewal was answered

    def renew(self) -> bool:
        """Renew once; False once the lease is lost for good (expired, or not confirmed in time)."""
        if self.lost:
            return False
        sent = self.clock.monotonic()
        try:
            self.confirmed = self.store.keepalive(self.lease)
        except StoreUnavailable:
            self.confirmed = False
        else:
            if self.confirmed:
                self.valid_until = sent + self.timing.lease_ttl - self.timing.margin
            else:
                self.lost = True
        return self.holds()

    def holds(self) -> bool:
        """Whether this master may still accept a job now."""
        if not self.lost and self.clock.monotonic() >= self.valid_until:
            self.lost = True
        return not self.lost


class Elector:
    """One master candidate's part in the election (see the module's docstring)."""

    def __init__(self, node: str, store: Store, local: Local, clock: Clock, timing: Timing, log: Log):
        self.node, self.store, self.local, self.clock, self.timing, self.log = node, store, local, clock, timing, log
        self.role = Role.FOLLOWER
        self.lease: MasterLease | None = None
        self.epoch = 0
        self.known: str | None = None       # the master last read from the store

    def tick(self) -> None:
        """One round: a master renews its lease; a follower looks and may campaign."""
        if self.role is Role.MASTER:
            self._renew()
        else:
            self._look()

    def next_delay(self) -> float:
        """Seconds to the next tick: a master renews every ``keepalive`` seconds, and again as
        soon as it can when a renewal went unanswered; a follower looks every ``elect`` seconds."""
        if self.role is not Role.MASTER:
            return self.timing.elect
        return self.timing.keepalive if self.lease.confirmed else min(self.timing.keepalive, RETRY)

    def holds_lease(self) -> bool:
        return self.role is Role.MASTER and self.lease is not None and self.lease.holds()

    def _renew(self) -> None:
        if not self.lease.renew():
            self.step_down(f"lost the master lease (epoch {self.epoch})")

    def step_down(self, reason: str) -> None:
        self.role = Role.FOLLOWER
        self.local.stop_master(reason)
        self.log(f"{self.node}: steps down: {reason}")
        try:
            self.store.revoke(self.lease.lease)
        except StoreUnavailable:
            pass
        self.lease = None

    def _look(self) -> None:
        try:
            leader = self.store.leader()
        except StoreUnavailable:
            return
        if leader.node != self.known and leader.node is not None:
            self.log(f"{self.node}: sees master {leader.node} (epoch {leader.epoch})")
        self.known = leader.node
        if leader.node is None and self.local.auto_failover():
            self._campaign(leader.epoch)

    def _campaign(self, epoch: int) -> None:
        granted = self.clock.monotonic()
        try:
            lease = self.store.grant(self.timing.lease_ttl)
        except StoreUnavailable:
            return
        try:
            won = self.store.claim(self.node, lease, epoch)
        except StoreUnavailable:
            won = False
        if not won:
            self._revoke(lease)
            return
        self.epoch = epoch + 1
        self.log(f"{self.node}: won the election (epoch {self.epoch})")
        self._become_master(lease, granted)

    def _become_master(self, lease: int, granted: float) -> str | None:
        """Take over (fence, catch up) under ``lease``, then start masterd; None when master."""
        held = MasterLease(self.store, self.clock, self.timing, lease, granted)
        why_not = self.local.take_over(self.epoch)
        if why_not is None and not held.renew():
            why_not = f"lost the lease while taking over (epoch {self.epoch})"
        if why_not is not None:
            self.log(f"{self.node}: gives the role back: {why_not}")
            self._revoke(lease)
            return why_not
        self.role, self.lease, self.known = Role.MASTER, held, self.node
        self.local.start_master(lease, self.epoch)
        self.log(f"{self.node}: is master (epoch {self.epoch})")
        return None

    def hand_over(self) -> str | None:
        """Take the role from the current master at once (manual master-failover); None when
        this node is master, else why not. The old master's lease is revoked, so it steps
        down at its next renewal; the candidates fenced by take_over refuse it before that."""
        if self.role is Role.MASTER:
            return f"{self.node} is already the master"
        granted = self.clock.monotonic()
        try:
            leader = self.store.leader()
            lease = self.store.grant(self.timing.lease_ttl)
            if not self.store.hand_over(self.node, lease, leader.epoch):
                self._revoke(lease)
                return "another node took the master role meanwhile"
        except StoreUnavailable as err:
            return f"the leadership store cannot be reached from {self.node}: {err}"
        if leader.lease is not None:
            self._revoke(leader.lease)
        self.epoch = leader.epoch + 1
        source = f"from {leader.node}" if leader.node else "(nobody held it)"
        self.log(f"{self.node}: takes the master role {source} (epoch {self.epoch})")
        return self._become_master(lease, granted)

    def _revoke(self, lease: int) -> None:
        try:
            self.store.revoke(lease)
        except StoreUnavailable:
            pass
