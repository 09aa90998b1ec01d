"""Instance HA on the master: a node that stopped answering is declared dead, fenced, set
offline, and its HA instances are failed over, in that order and never out of it.

- A node is dead once no heartbeat reached it for ``node_dead`` seconds. Only a dead node that
  is the primary of a running HA instance is fenced (as Proxmox does): fencing a node costs its
  other guests, and without HA instances nothing would restart anyway.
- Fenced means confirmed: its out-of-band program powered it off and power-status says off, or
  (a node without one, running the watchdog) its liveness lease expired on the store, which the
  node's watchdog outlives only by killing its guests. A fence that fails is tried again every
  ``fence_retry`` seconds; until one succeeds nothing restarts, and ``alerts`` says why
  (gnt-cluster verify shows them).
- A fenced node is set offline, then each of its HA instances, highest ``ha_priority`` first,
  is failed over: a mirrored one (mirror, drbd) to its secondary, only if the secondary's copy
  was in sync when the node was lost; one on shared storage to the node the allocator picks.
  The target must have answered a recent heartbeat, be online, not drained nor in maintenance,
  and have the memory free (asked anew before each restart). An instance is failed over once: the failover job
  itself refuses an instance no longer on the dead node.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Protocol

from genet.clock import Clock
from genet.ha.timing import Timing

Log = Callable[[str], None]
RECENT = 3      # heartbeat intervals within which a restart target must have answered (a round
                # with a silent node in it lasts its interval plus the call's timeout)


@dataclasses.dataclass(frozen=True)
class NodeView:
    name: str
    offline: bool = False
    drained: bool = False
    maintenance: bool = False
    vm_capable: bool = True
    oob: bool = False               # has an out-of-band program
    watchdog: bool = False          # runs the self-fencing watchdog


@dataclasses.dataclass(frozen=True)
class InstanceView:
    name: str
    primary: str
    secondary: str | None
    template: str
    memory: int
    ha: bool
    priority: int = 0
    admin_up: bool = True

    @property
    def storage(self):
        """Its disk template's class (genet.storage): mirrored ones fail over to the secondary,
        shared ones restart anywhere, the others cannot leave their node."""
        from genet.storage.base import TEMPLATES
        return TEMPLATES.cls(self.template)


class Env(Protocol):
    """The master's side of the world, as recovery sees it."""

    def nodes(self) -> dict[str, NodeView]: ...
    def instances(self) -> dict[str, InstanceView]: ...
    def master(self) -> str: ...

    def memory_free(self, node: str) -> int:
        """MiB ``node`` has free for another guest now."""

    def power_off(self, node: str) -> str | None:
        """Power ``node`` off through its out-of-band program and confirm it is off; None when
        confirmed, else why not."""

    def liveness_expired(self, node: str) -> bool:
        """Whether ``node``'s liveness lease has expired on the store (its watchdog fired)."""

    def set_offline(self, node: str) -> str | None:
        """Mark ``node`` offline in the config; None when done, else why not."""

    def copy_in_sync(self, instance: str) -> bool:
        """Whether the secondary's copy of ``instance`` was in sync when its primary was lost."""

    def allocate(self, instance: str, exclude: set[str]) -> str | None:
        """A node for ``instance`` on shared storage (the allocator's pick), or None."""

    def failover(self, instance: str, node: str, target: str) -> str | None:
        """Fail ``instance`` over from the dead ``node`` to ``target`` and start it; None when
        done, else why not."""


@dataclasses.dataclass
class _Dead:
    since: float                    # when it was last heard
    fenced: bool = False
    next_try: float = 0.0
    offline: bool = False


class Recovery:
    """The master's HA loop: ``heard`` after each heartbeat answer, ``tick`` every round."""

    def __init__(self, env: Env, clock: Clock, timing: Timing, log: Log):
        self.env, self.clock, self.timing, self.log = env, clock, timing, log
        start = clock.monotonic()
        self.last_heard: dict[str, float] = {n: start for n in env.nodes()}
        self.dead: dict[str, _Dead] = {}
        self.alerts: dict[str, str] = {}     # subject -> why it is not recovered
        self.done: set[str] = set()          # instances failed over by this master

    def heard(self, node: str, when: float | None = None) -> None:
        """``node`` answered a heartbeat (at ``when``, default now)."""
        self.last_heard[node] = self.clock.monotonic() if when is None else when
        if node in self.dead and not self.dead[node].fenced:
            self.log(f"recovery: {node} answers again before it was fenced: nothing to recover")
            del self.dead[node]
            self._clear(node)

    def tick(self) -> None:
        now = self.clock.monotonic()
        nodes, instances = self.env.nodes(), self.env.instances()
        master = self.env.master()
        self.last_heard[master] = now
        for name, node in sorted(nodes.items()):
            if name == master:
                continue
            heard = self.last_heard.setdefault(name, now)
            if name not in self.dead and not node.offline and now - heard >= self.timing.node_dead:
                ha = self._ha_instances(name, instances)
                if ha:
                    self.dead[name] = _Dead(since=heard, next_try=now)
                    self.log(f"recovery: {name} is dead (silent for {now - heard:.0f} s), primary of HA"
                             f" instances {', '.join(i.name for i in ha)}")
        for name in sorted(self.dead):
            if self.dead[name].offline and name in nodes and not nodes[name].offline:
                del self.dead[name]             # the admin brought it back online
                self.log(f"recovery: {name} is online again")
                continue
            self._handle(name, nodes, instances, now)

    def _ha_instances(self, node: str, instances: dict[str, InstanceView]) -> list[InstanceView]:
        return sorted((i for i in instances.values() if i.primary == node and i.ha and i.admin_up
                       and i.name not in self.done), key=lambda i: (-i.priority, i.name))

    def _handle(self, name: str, nodes: dict[str, NodeView], instances: dict[str, InstanceView],
                now: float) -> None:
        state = self.dead[name]
        if not state.fenced:
            if now < state.next_try:
                return
            state.next_try = now + self.timing.fence_retry
            stuck = self._unrecoverable(name, nodes, instances, now)
            if stuck is not None:
                self._alert(name, f"{name} is dead but not fenced: none of its HA instances could restart"
                                  f" elsewhere ({stuck})")
                return
            why_not = self._fence(nodes[name])
            if why_not is not None:
                self._alert(name, f"{name} is dead but not fenced, so none of its instances is restarted:"
                                  f" {why_not}")
                return
            state.fenced = True
            self._clear(name)
            self.log(f"recovery: {name} is fenced")
        if not state.offline:
            why_not = self.env.set_offline(name)
            if why_not is not None:
                self._alert(name, f"{name} is fenced but could not be set offline: {why_not}")
                return
            state.offline = True
            self._clear(name)
            self.log(f"recovery: {name} set offline")
        self._recover(name, nodes, instances, now)

    def _unrecoverable(self, dead: str, nodes: dict[str, NodeView], instances: dict[str, InstanceView],
                       now: float) -> str | None:
        """Why no HA instance of ``dead`` could restart elsewhere (None: some could): fencing
        would then only cost its guests, which may still run behind a partition."""
        reasons = []
        for inst in self._ha_instances(dead, instances):
            target, why_not = self._target(inst, nodes, now)
            if target is not None:
                return None
            reasons.append(f"{inst.name}: {why_not}")
        return "; ".join(reasons)

    def _fence(self, node: NodeView) -> str | None:
        if node.oob:
            return self.env.power_off(node.name)
        if node.watchdog:
            if self.env.liveness_expired(node.name):
                return None
            return "its liveness lease has not expired yet (its watchdog has not fired)"
        return "it has no out-of-band program and runs no watchdog"

    def _recover(self, dead: str, nodes: dict[str, NodeView], instances: dict[str, InstanceView],
                 now: float) -> None:
        for inst in self._ha_instances(dead, instances):
            target, why_not = self._target(inst, nodes, now)
            if target is None:
                self._alert(inst.name, f"HA instance {inst.name} of dead node {dead} is not restarted: {why_not}")
                continue
            why_not = self.env.failover(inst.name, dead, target)
            if why_not is not None:
                self._alert(inst.name, f"HA instance {inst.name} failed over to {target} failed: {why_not}")
                continue
            self.done.add(inst.name)
            self._clear(inst.name)
            self.log(f"recovery: {inst.name} restarted on {target}")

    def _target(self, inst: InstanceView, nodes: dict[str, NodeView], now: float) -> tuple[str | None, str]:
        if inst.storage.mirrored:
            target = inst.secondary
            if not self.env.copy_in_sync(inst.name):
                return None, f"the copy on its secondary {target} was not in sync when {inst.primary} was lost"
        elif inst.storage.shared:
            exclude = {n for n, v in nodes.items() if not self._usable(v, now)} | {inst.primary}
            target = self.env.allocate(inst.name, exclude)
            if target is None:
                return None, "the allocator found no node for it"
        else:
            return None, f"its disks ({inst.template}) live on {inst.primary} only"
        node = nodes.get(target)
        if node is None or not self._usable(node, now):
            return None, f"its target {target} is offline, silent, drained or in maintenance"
        free = self.env.memory_free(target)     # asked again for each: the last restart used some
        if free < inst.memory:
            return None, f"{target} has {free} MiB free, it needs {inst.memory} MiB"
        return target, ""

    def _usable(self, node: NodeView, now: float) -> bool:
        """A node an instance may restart on: answered a recent heartbeat round, takes guests."""
        answered = now - self.last_heard.get(node.name, float("-inf")) <= RECENT * self.timing.heartbeat
        return answered and node.vm_capable and not (node.offline or node.drained or node.maintenance)

    def _alert(self, subject: str, text: str) -> None:
        if self.alerts.get(subject) != text:
            self.log(f"recovery: ALERT {text}")
        self.alerts[subject] = text

    def _clear(self, subject: str) -> None:
        self.alerts.pop(subject, None)
