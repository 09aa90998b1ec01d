"""The timeouts of high availability, in one place: the election, the master's lease, when a
node counts as dead, how long a node without a BMC waits before it fences itself.

They are cluster parameters (``gnt-cluster modify --ha-timeouts``); these are the defaults, and
why each has its value:

- ``lease_ttl`` 4 s: a dead master is replaced after at most one lease plus one election check
  and the take-over. etcd renews every lease for a full TTL when its own leader changes (the
  old master node may have been etcd's leader too), so the worst case is two leases: 8 s, which
  leaves the take-over (fencing the candidates, the newest config and queue, masterd's start)
  room inside the 15 s the issue promises.
- ``keepalive`` 1 s: four renewals per lease, and an unanswered one is retried every 0.5 s, so
  a master steps down only after 3 s without a single answer.
- ``margin`` 1 s: a master steps down this long before its lease could have expired on the
  store (the lease runs from when the store received the renewal, which is after it was sent);
  covers clock rate differences and the time to stop accepting jobs.
- ``elect`` 1 s: how often a candidate looks whether the role is free.
- ``node_dead`` 10 s: a node that missed heartbeats (every 2 s) this long is declared dead.
- ``fence_retry`` 5 s: a failed fence is tried again after this long.
- ``self_fence`` 20 s: a node's liveness lease; a node that could not renew it for
  ``self_fence - margin`` kills its guests (the watchdog), so once the store let it expire the
  master may take the node as fenced.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Timing:
    lease_ttl: float = 4.0
    keepalive: float = 1.0
    margin: float = 1.0
    elect: float = 1.0
    heartbeat: float = 2.0
    node_dead: float = 10.0
    fence_retry: float = 5.0
    self_fence: float = 20.0

    def __post_init__(self):
        if self.margin + self.keepalive >= self.lease_ttl:
            raise ValueError(f"the master lease ({self.lease_ttl} s) must outlast a renewal interval"
                             f" ({self.keepalive} s) plus the safety margin ({self.margin} s)")
        if self.margin >= self.self_fence:
            raise ValueError(f"the self-fence timeout ({self.self_fence} s) must exceed the safety"
                             f" margin ({self.margin} s)")

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))
