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
- master: masterd runs with the lease. If it stops (it stepped down, or crashed), the
  candidate gives the role back (revokes the lease) and is a follower again.

Inside masterd, ``MasterLease`` renews the lease every ``keepalive`` seconds (every ``RETRY``
seconds while renewals go unanswered). The lease is known valid until the send time of the last
renewal the store confirmed plus the TTL; ``margin`` before that, without a newer confirmation,
masterd stops accepting jobs and steps down. The store expires the lease no earlier than that,
so a new master is elected only after the old one stopped: two masters never accept jobs at the
same time. A master paused past its lease (and so not stopped) is still harmless: the
candidates hold the newer epoch and refuse its writes.

Every effect on the node (fencing candidates, starting masterd) goes through ``Local``; time
through a Clock; the key through a Store. The scenario simulator drives this same code
(genet.ha.sim).
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

    def take_over(self, epoch: int, lease: int) -> str | None:
        """Fence a majority of candidates with ``epoch``, take the newest config and job queue,
        make this node the master in the config, keeping ``lease`` alive meanwhile. None when
        done; else why not."""

    def start_master(self, lease: int, granted: float, epoch: int) -> None:
        """Start masterd (and RAPI, the master IP) holding ``lease``, granted at ``granted``."""

    def master_running(self) -> bool:
        """Whether the masterd started here still runs."""


class MasterLease:
    """The master's hold on its role, kept by masterd: renewals, and whether it may still
    accept jobs."""

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

    def next_delay(self) -> float:
        """Seconds to the next renewal: sooner while they go unanswered."""
        return self.timing.keepalive if self.confirmed else min(self.timing.keepalive, RETRY)

    def release(self) -> None:
        """Give the role back at once (a master that steps down), if the store can be reached."""
        self.lost = True
        _revoke(self.store, self.lease)


def _revoke(store: Store, lease: int) -> None:
    try:
        store.revoke(lease)
    except StoreUnavailable:
        pass


class Elector:
    """One master candidate's part in the election (see the module's docstring)."""

    def __init__(self, node: str, store: Store, local: Local, clock: Clock, timing: Timing, log: Log):
        self.node, self.store, self.local, self.clock, self.timing, self.log = node, store, local, clock, timing, log
        self.role = Role.FOLLOWER
        self.lease: int | None = None
        self.epoch = 0
        self.known: str | None = None       # the master last read from the store

    def tick(self) -> None:
        """One round: a master checks its masterd still runs; a follower looks, may campaign."""
        if self.role is Role.MASTER:
            if not self.local.master_running():
                self.log(f"{self.node}: masterd stopped: the master role is free again")
                _revoke(self.store, self.lease)
                self.role, self.lease = Role.FOLLOWER, None
        else:
            self._look()

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
            _revoke(self.store, lease)
            return
        self.epoch = epoch + 1
        self.log(f"{self.node}: won the election (epoch {self.epoch})")
        self._become_master(lease, granted)

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
                _revoke(self.store, lease)
                return "another node took the master role meanwhile"
        except StoreUnavailable as err:
            return f"the leadership store cannot be reached from {self.node}: {err}"
        if leader.lease is not None:
            _revoke(self.store, leader.lease)
        self.epoch = leader.epoch + 1
        source = f"from {leader.node}" if leader.node else "(nobody held it)"
        self.log(f"{self.node}: takes the master role {source} (epoch {self.epoch})")
        return self._become_master(lease, granted)

    def _become_master(self, lease: int, granted: float) -> str | None:
        """Take over (fence, catch up) under ``lease``, then start masterd; None when master."""
        why_not = self.local.take_over(self.epoch, lease)
        if why_not is not None:
            self.log(f"{self.node}: gives the role back: {why_not}")
            _revoke(self.store, lease)
            return why_not
        self.role, self.lease, self.known = Role.MASTER, lease, self.node
        self.local.start_master(lease, granted, self.epoch)
        self.log(f"{self.node}: is master (epoch {self.epoch})")
        return None
