"""A deterministic simulator of HA scenarios (pve-ha-manager's Sim is the model).

The election (genet.ha.election), instance recovery (genet.ha.recovery) and the watchdog
(genet.ha.watchdog) run unchanged against a simulated world: nodes with power and links, an
etcd-like store that answers only inside a partition holding a majority of its members (and
renews every lease when its own leader changes, as etcd does), candidates holding replicas of
the config and job queue that refuse writes of an older epoch, QEMU guests with mirrored disks,
out-of-band fence agents that can fail, and clients submitting jobs. Time is a ManualClock moved
in steps of ``STEP`` seconds, so a scenario of minutes runs in milliseconds.

A scenario (genet.ha.scenario parses it) sets up the world and lists timed events; the run's
log is compared with the expected one. Invariants are checked on every step, and a breach is a
``VIOLATION`` line in the log: two nodes accepting jobs at once, an acknowledged job missing from
a master's queue, a job acknowledged by an older epoch after a newer one acknowledged one, a
guest running on two nodes, two configs of one serial that differ.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from genet.clock import ManualClock
from genet.ha import recovery as rec
from genet.ha.election import Elector, MasterLease
from genet.ha.store import Leader, StoreUnavailable
from genet.ha.timing import Timing
from genet.ha.watchdog import Watchdog

STEP = 0.5              # seconds per simulation step
ETCD_ELECTION = 1.0     # seconds the store takes to elect a new leader of its own
RESYNC = 2.0            # seconds a mirror takes to catch up once its two nodes see each other


@dataclasses.dataclass(frozen=True)
class Config:
    """The replicated config, as far as HA is concerned."""
    serial: int
    master: str
    candidates: frozenset = frozenset()
    offline: frozenset = frozenset()
    placement: tuple = ()           # ((instance, primary, secondary), ...) sorted

    def where(self, instance: str) -> tuple[str, str | None]:
        for name, primary, secondary in self.placement:
            if name == instance:
                return primary, secondary
        raise KeyError(instance)

    def moved(self, instance: str, primary: str, secondary: str | None) -> "Config":
        placement = tuple(sorted((n, primary, secondary) if n == instance else (n, p, s)
                                 for n, p, s in self.placement))
        return dataclasses.replace(self, serial=self.serial + 1, placement=placement)


@dataclasses.dataclass
class Instance:
    name: str
    template: str
    memory: int
    ha: bool
    priority: int
    running_on: set = dataclasses.field(default_factory=set)
    in_sync: bool = True            # the secondary's copy has every write
    lost_in_sync: bool | None = None    # in_sync when its primary was last lost
    resync_done: float | None = None    # when the running resync catches up
    broken: bool = False            # its mirror link is down (the nodes may still talk)


@dataclasses.dataclass
class Node:
    name: str
    candidate: bool = True
    vm_capable: bool = True
    memory: int = 4096
    oob: bool = True
    fence_failures: int = 0         # the next power-offs that fail
    watchdog: bool = False
    drained: bool = False
    maintenance: bool = False
    powered: bool = True
    group: int = 0                  # nodes talk when powered and in the same group
    epoch: int = 0                  # the newest master epoch this node was fenced with
    jobs: set = dataclasses.field(default_factory=set)
    config: Config | None = None
    elector: Elector | None = None
    master: "Master | None" = None
    dog: Watchdog | None = None
    next_elect: float = 0.0


class World:
    """Everything the scenario's nodes share, and the invariants."""

    def __init__(self, timing: Timing, log: Callable[[str], None] | None = None):
        self.timing = timing
        self.clock = ManualClock(start=0.0)
        self.lines: list[str] = []
        self._out = log
        self.nodes: dict[str, Node] = {}
        self.instances: dict[str, Instance] = {}
        self.auto_failover = True
        self.store = SimStore(self)
        self.acked: set[int] = set()
        self.acked_epoch = 0            # the newest epoch that acknowledged a job
        self.next_job = 1
        self.configs: dict[int, Config] = {}     # every config ever committed, by serial
        self.breaches: set[str] = set()
        self._placement: list = []

    # --- the log -------------------------------------------------------------

    def log(self, text: str) -> None:
        line = f"[{self.clock.monotonic():6.1f}] {text}"
        self.lines.append(line)
        if self._out:
            self._out(line)

    def violation(self, text: str) -> None:
        """Log a breach once, when it starts (a state checked every step stays wrong a while)."""
        if text not in self.breaches:
            self.breaches.add(text)
            self.log(f"VIOLATION {text}")

    # --- set-up --------------------------------------------------------------

    def add_node(self, node: Node) -> None:
        self.nodes[node.name] = node

    def add_instance(self, inst: Instance, primary: str, secondary: str | None) -> None:
        self.instances[inst.name] = inst
        self._placement.append((inst.name, primary, secondary))

    def begin(self, master: str) -> None:
        """The cluster as `gnt-cluster init` and the adds left it: ``master`` holds the lease."""
        self.store.members = sorted(n.name for n in self.nodes.values() if n.candidate)
        config = Config(serial=1, master=master, candidates=frozenset(self.store.members),
                        placement=tuple(sorted(self._placement)))
        self.configs[1] = config
        for node in self.nodes.values():
            node.config = config if node.candidate else None
            node.epoch = 1
            if node.candidate:
                node.elector = Elector(node.name, self.store.client(node.name), Local(self, node), self.clock,
                                       self.timing, self.log)
            if node.watchdog:
                node.dog = Watchdog(node.name, self.store.client(node.name), Guests(self, node), self.clock,
                                    self.timing, self.log)
        for name, primary, _ in config.placement:
            self.instances[name].running_on.add(primary)
        self.store.epoch = 1
        elector = self.nodes[master].elector
        lease = self.store.grant(self.timing.lease_ttl)
        self.store.master, self.store.master_lease = master, lease
        elector.epoch = 1
        elector._become_master(lease, 0.0)

    # --- the network ---------------------------------------------------------

    def talk(self, a: str, b: str) -> bool:
        na, nb = self.nodes[a], self.nodes[b]
        return na.powered and nb.powered and na.group == nb.group

    def masters(self) -> list[str]:
        """Nodes whose masterd runs and holds its lease (would accept a job now)."""
        return [n.name for n in self.nodes.values() if n.master is not None and n.master.holds()]

    # --- one step ------------------------------------------------------------

    def step(self) -> None:
        now = self.clock.monotonic()
        self.store.settle(now)
        for node in self._up():
            if node.dog is not None:
                node.dog.tick()
        for node in self._up():
            if node.elector is not None and now >= node.next_elect:
                node.elector.tick()
                node.next_elect = now + self.timing.elect
        for node in self._up():
            if node.master is not None:
                node.master.tick(now)
        self._mirrors(now)
        self._check()

    def _up(self) -> list[Node]:
        return [n for n in sorted(self.nodes.values(), key=lambda n: n.name) if n.powered]

    def _mirrors(self, now: float) -> None:
        """Guests write all the time: a copy cut from its primary falls behind; together again
        for RESYNC seconds, it catches up."""
        for inst in self.instances.values():
            holder = self._config_holder()
            primary, secondary = holder.config.where(inst.name)
            if secondary is None or primary not in inst.running_on or secondary in holder.config.offline:
                continue
            if inst.broken or not self.talk(primary, secondary):
                if inst.in_sync:
                    self.log(f"world: {inst.name}'s copy on {secondary} falls behind")
                inst.in_sync, inst.resync_done = False, None
            elif not inst.in_sync:
                if inst.resync_done is None:
                    inst.resync_done = now + RESYNC
                elif inst.resync_done <= now:
                    inst.in_sync, inst.resync_done = True, None
                    self.log(f"world: {inst.name}'s copy on {secondary} is in sync again")

    def _config_holder(self) -> Node:
        return max((n for n in self.nodes.values() if n.config is not None), key=lambda n: n.config.serial)

    def committed(self, config: Config) -> None:
        """A config a majority holds: no other of its serial may differ (the sides of a
        partition never diverge)."""
        known = self.configs.setdefault(config.serial, config)
        if known != config:
            self.violation(f"two configs of serial {config.serial}: {known} and {config}")

    def _check(self) -> None:
        masters = self.masters()
        if len(masters) > 1:
            self.violation(f"{' and '.join(masters)} both accept jobs")
        for inst in self.instances.values():
            running = sorted(n for n in inst.running_on if self.nodes[n].powered)
            if len(running) > 1:
                self.violation(f"{inst.name} runs on {' and '.join(running)}")

    # --- events --------------------------------------------------------------

    def power_off(self, name: str, why: str) -> None:
        node = self.nodes[name]
        if not node.powered:
            return
        node.powered = False
        self._lost_guests(node)
        node.master = None
        if node.elector is not None:
            node.elector = Elector(name, self.store.client(name), Local(self, node), self.clock, self.timing,
                                   self.log)
        self.log(f"world: {name} {why}")

    def _lost_guests(self, node: Node) -> list[str]:
        lost = []
        for inst in self.instances.values():
            if node.name in inst.running_on:
                inst.running_on.discard(node.name)
                inst.lost_in_sync = inst.in_sync
                lost.append(inst.name)
        return sorted(lost)

    def power_on(self, name: str) -> None:
        node = self.nodes[name]
        if node.powered:
            return
        node.powered = True
        node.next_elect = self.clock.monotonic()
        if node.watchdog:
            node.dog = Watchdog(name, self.store.client(name), Guests(self, node), self.clock, self.timing, self.log)
        self.log(f"world: {name} powered on")

    def submit(self) -> None:
        """A client submits one job to the master it can reach (it sits in group 0)."""
        reachable = [n for n in self.masters() if self.nodes[n].group == 0]
        job = self.next_job
        self.next_job += 1
        for name in reachable:
            master = self.nodes[name].master
            if master.accept(job):
                if master.epoch < self.acked_epoch:
                    self.violation(f"{name} of epoch {master.epoch} acknowledged job {job} after a master of"
                                   f" epoch {self.acked_epoch} did")
                self.acked.add(job)
                self.acked_epoch = max(self.acked_epoch, master.epoch)
                return

    def final(self) -> None:
        """The end of a scenario: who is master, what it holds, where every instance runs."""
        masters = self.masters()
        if len(masters) != 1:
            self.log(f"end: {len(masters)} masters ({', '.join(masters) or 'none'})")
        for name in masters:
            node = self.nodes[name]
            missing = sorted(self.acked - node.jobs)
            if missing:
                self.violation(f"master {name} lacks acknowledged jobs {missing}")
            self.log(f"end: master {name} (epoch {node.master.epoch}), config serial {node.config.serial},"
                     f" {len(self.acked)} jobs acknowledged, all in its queue" if not missing else
                     f"end: master {name} (epoch {node.master.epoch})")
        for inst in sorted(self.instances.values(), key=lambda i: i.name):
            running = sorted(n for n in inst.running_on if self.nodes[n].powered)
            self.log(f"end: {inst.name} runs on {', '.join(running) or 'no node'}")


class SimStore:
    """An etcd-like store: linearizable while a majority of members talk to each other."""

    def __init__(self, world: World):
        self.world = world
        self.members: list[str] = []
        self.master: str | None = None
        self.master_lease: int | None = None
        self.epoch = 0
        self.liveness: dict[str, int] = {}       # node -> lease
        self.leases: dict[int, float] = {}       # lease -> expiry (store time)
        self.ttls: dict[int, float] = {}
        self.next_lease = 1
        self.leader: str | None = None
        self.leaderless_since: float | None = 0.0

    def quorum_group(self) -> int | None:
        """The group holding a majority of the members, if any."""
        groups: dict[int, int] = {}
        for name in self.members:
            node = self.world.nodes[name]
            if node.powered:
                groups[node.group] = groups.get(node.group, 0) + 1
        for group, count in groups.items():
            if count * 2 > len(self.members):
                return group
        return None

    def settle(self, now: float) -> None:
        """Elect the store's own leader when needed (renewing every lease, as etcd does), then
        let the leases run out."""
        group = self.quorum_group()
        nodes = self.world.nodes
        if self.leader is not None and (not nodes[self.leader].powered or nodes[self.leader].group != group):
            self.leader, self.leaderless_since = None, now
        if group is None:
            self.leaderless_since = now       # an election starts once a majority is up again
        elif self.leader is None:
            if now - self.leaderless_since >= ETCD_ELECTION:
                self.leader = min(n for n in self.members if nodes[n].powered and nodes[n].group == group)
                for lease, ttl in self.ttls.items():
                    self.leases[lease] = max(self.leases[lease], now + ttl)
        if self.leader is None:
            return
        for lease in [lease for lease, expiry in self.leases.items() if expiry <= now]:
            self._drop(lease)

    def _drop(self, lease: int) -> None:
        self.leases.pop(lease, None)
        self.ttls.pop(lease, None)
        if self.master_lease == lease:
            self.master, self.master_lease = None, None
        for node in [n for n, l in self.liveness.items() if l == lease]:
            del self.liveness[node]

    def client(self, name: str) -> "StoreClient":
        return StoreClient(self, name)

    def grant(self, ttl: float) -> int:
        lease = self.next_lease
        self.next_lease += 1
        self.leases[lease] = self.world.clock.monotonic() + ttl
        self.ttls[lease] = ttl
        return lease


class StoreClient:
    """The Store (and Liveness) protocol as one node sees the simulated store."""

    def __init__(self, store: SimStore, node: str):
        self.store, self.node = store, node

    def _reach(self) -> SimStore:
        store, me = self.store, self.store.world.nodes[self.node]
        if store.leader is None or not me.powered or me.group != store.world.nodes[store.leader].group:
            raise StoreUnavailable(f"{self.node} cannot reach a majority of the store's members")
        return store

    def grant(self, ttl: float) -> int:
        return self._reach().grant(ttl)

    def keepalive(self, lease: int) -> bool:
        store = self._reach()
        if lease not in store.leases:
            return False
        store.leases[lease] = store.world.clock.monotonic() + store.ttls[lease]
        return True

    def revoke(self, lease: int) -> None:
        self._reach()._drop(lease)

    def leader(self) -> Leader:
        store = self._reach()
        return Leader(store.master, store.master_lease, store.epoch)

    def claim(self, node: str, lease: int, epoch: int) -> bool:
        store = self._reach()
        if store.master is not None or store.epoch != epoch or lease not in store.leases:
            return False
        store.master, store.master_lease, store.epoch = node, lease, epoch + 1
        return True

    def hand_over(self, node: str, lease: int, epoch: int) -> bool:
        store = self._reach()
        if store.epoch != epoch or lease not in store.leases:
            return False
        store.master, store.master_lease, store.epoch = node, lease, epoch + 1
        return True

    def announce(self, node: str, lease: int) -> None:
        self._reach().liveness[node] = lease


class Local:
    """A candidate's side of the world (genet.ha.election.Local) in the simulation."""

    def __init__(self, world: World, node: Node):
        self.world, self.node = world, node

    def auto_failover(self) -> bool:
        return self.world.auto_failover

    def take_over(self, epoch: int, lease: int) -> str | None:
        world, me = self.world, self.node
        peers = [n for n in world.nodes.values() if n.candidate and world.talk(me.name, n.name)]
        newer = [n.name for n in peers if n.epoch > epoch]
        if newer:
            return f"{', '.join(newer)} hold a newer epoch"
        for peer in peers:
            peer.epoch = epoch
        counted = [n for n in peers if n.name in me.config.candidates - me.config.offline]
        needed = _majority(me.config)
        if len(counted) < needed:
            return f"only {len(counted)} of the {needed} master candidates needed could be fenced"
        newest = max((p.config for p in peers), key=lambda c: c.serial)
        me.jobs = set().union(*(p.jobs for p in peers))
        config = dataclasses.replace(newest, serial=newest.serial + 1, master=me.name)
        for peer in peers:
            peer.jobs = set(me.jobs)
            peer.config = config
        world.committed(config)
        return None

    def start_master(self, lease: int, granted: float, epoch: int) -> None:
        self.node.master = Master(self.world, self.node, epoch, lease, granted)

    def master_running(self) -> bool:
        return self.node.master is not None


def _majority(config: Config) -> int:
    """Acknowledgements a write needs: a majority of the online candidates."""
    return len(config.candidates - config.offline) // 2 + 1


class Guests:
    def __init__(self, world: World, node: Node):
        self.world, self.node = world, node

    def kill_all(self) -> list[str]:
        return self.world._lost_guests(self.node)


class Master:
    """A running masterd in the simulation: heartbeats, recovery, replicated writes."""

    def __init__(self, world: World, node: Node, epoch: int, lease: int, granted: float):
        self.world, self.node, self.epoch = world, node, epoch
        self.lease = MasterLease(world.store.client(node.name), world.clock, world.timing, lease, granted)
        self.recovery = rec.Recovery(RecoveryEnv(world, self), world.clock, world.timing, world.log)
        self.next_beat = self.next_renewal = world.clock.monotonic()

    def holds(self) -> bool:
        """Whether it would accept a job now: it holds a lease the store still has."""
        return self.lease.holds() and self.lease.lease in self.world.store.leases

    def step_down(self, reason: str) -> None:
        self.lease.release()
        self.node.master = None
        self.world.log(f"{self.node.name}: steps down: {reason}")

    def tick(self, now: float) -> None:
        if now >= self.next_renewal:
            if not self.lease.renew():
                self.step_down(f"lost the master lease (epoch {self.epoch})")
                return
            self.next_renewal = now + self.lease.next_delay()
        if now < self.next_beat or not self.lease.holds():
            return
        self.next_beat = now + self.world.timing.heartbeat
        for name, node in sorted(self.world.nodes.items()):
            if name == self.node.name or name in self.node.config.offline:
                continue
            if not self.world.talk(self.node.name, name):
                continue
            if node.epoch > self.epoch:
                self.step_down(f"{name} refused a heartbeat of epoch {self.epoch}: a newer master"
                                            " took over")
                return
            self.recovery.heard(name)
            self._stop_strays(node)
        self.recovery.tick()

    def _stop_strays(self, node: Node) -> None:
        for inst in self.world.instances.values():
            primary, _ = self.node.config.where(inst.name)
            if node.name in inst.running_on and primary != node.name:
                inst.running_on.discard(node.name)
                self.world.log(f"{self.node.name}: stopped {inst.name} on {node.name}, which the config places"
                               f" on {primary}")

    def replicate(self, apply: Callable[[Node], None]) -> bool:
        """Write to every candidate this master reaches; True once a majority holds it. A
        candidate of a newer epoch refuses, and this master steps down."""
        peers = [n for n in self.world.nodes.values() if n.candidate and self.world.talk(self.node.name, n.name)]
        newer = sorted(n.name for n in peers if n.epoch > self.epoch)
        if newer:
            self.step_down(f"{', '.join(newer)} refused a write of epoch {self.epoch}: a newer"
                                        " master took over")
            return False
        for peer in peers:
            apply(peer)
        counted = [n for n in peers if n.name in self.node.config.candidates - self.node.config.offline]
        return len(counted) >= _majority(self.node.config)

    def accept(self, job: int) -> bool:
        if not self.lease.holds():
            return False
        return self.replicate(lambda peer: peer.jobs.add(job))

    def write_config(self, config: Config) -> str | None:
        old = self.node.config
        if not self.replicate(lambda peer: setattr(peer, "config", config)):
            self.node.config = old
            return "the change was not acknowledged by a majority of the master candidates"
        self.world.committed(config)
        return None


class RecoveryEnv:
    """genet.ha.recovery.Env over the simulated world, from one master's point of view."""

    def __init__(self, world: World, master: Master):
        self.world, self.m = world, master

    def nodes(self) -> dict[str, rec.NodeView]:
        return {name: rec.NodeView(name=name, offline=name in self.m.node.config.offline, vm_capable=node.vm_capable,
                                   oob=node.oob, watchdog=node.watchdog, drained=node.drained,
                                   maintenance=node.maintenance)
                for name, node in self.world.nodes.items()}

    def memory_free(self, node: str) -> int:
        used = sum(i.memory for i in self.world.instances.values() if node in i.running_on)
        return self.world.nodes[node].memory - used

    def instances(self) -> dict[str, rec.InstanceView]:
        views = {}
        for name, inst in self.world.instances.items():
            primary, secondary = self.m.node.config.where(name)
            views[name] = rec.InstanceView(name=name, primary=primary, secondary=secondary, template=inst.template,
                                           memory=inst.memory, ha=inst.ha, priority=inst.priority)
        return views

    def master(self) -> str:
        return self.m.node.name

    def power_off(self, node: str) -> str | None:
        target = self.world.nodes[node]
        if target.fence_failures:
            target.fence_failures -= 1
            return f"out-of-band power-off of {node} failed: the fence agent exited with code 1"
        self.world.power_off(node, "powered off by its out-of-band program")
        return None

    def liveness_expired(self, node: str) -> bool:
        return node not in self.world.store.liveness

    def set_offline(self, node: str) -> str | None:
        config = self.m.node.config
        return self.m.write_config(dataclasses.replace(config, serial=config.serial + 1,
                                                       offline=config.offline | {node}))

    def copy_in_sync(self, instance: str) -> bool:
        inst = self.world.instances[instance]
        return inst.in_sync if inst.running_on else bool(inst.lost_in_sync)

    def allocate(self, instance: str, exclude: set[str]) -> str | None:
        need = self.world.instances[instance].memory
        free = {n: self.memory_free(n) for n in self.world.nodes if n not in exclude}
        free = {n: room for n, room in free.items() if room >= need}
        return max(sorted(free), key=lambda n: free[n]) if free else None

    def failover(self, instance: str, node: str, target: str) -> str | None:
        config = self.m.node.config
        primary, secondary = config.where(instance)
        if primary != node:
            return f"{instance} is no longer on {node} (it is on {primary})"
        if not self.world.talk(self.m.node.name, target):
            return f"{target} cannot be reached"
        new_secondary = node if secondary is not None else None
        why_not = self.m.write_config(config.moved(instance, target, new_secondary))
        if why_not is not None:
            return why_not
        inst = self.world.instances[instance]
        inst.running_on.add(target)
        inst.in_sync, inst.lost_in_sync = False, None
        return None
