"""Moving instances between nodes: live migration and failover, shared by several LUs.

``MovePlan`` holds what the prerequisites decided (instance, source, target); its
``migrate`` and ``failover`` act and leave exactly one running copy, whatever fails.
"""
from __future__ import annotations

import time

from genet import errors, opcodes, params
from genet.cmdlib import iallocator
from genet.cmdlib.allocator import DEFAULT_SHORTCUT, allocator_or_nodes, check_allocator
from genet.cmdlib.backup import check_compression
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.cluster import online_nodes
from genet.cmdlib.common import free_memory, instance_of, node_address, refuse_forthcoming, storage_params
from genet.cmdlib.disks import assemble_disks
from genet.cmdlib.hooks_env import instance_env
from genet.cmdlib.instance_policy import check_target_node
from genet.cmdlib.power import start_instance, stop_instance
from genet.cmdlib.replace_disks import replace_mirror
from genet.locking import ALL_SET, Level
from genet.objects import Instance
from genet.rpc_defs import MigrationStatus
from genet.storage import base as storage

POLL = 0.5
MIGRATION_TIMEOUT = 3600.0     # a migration that has not converged by then is cancelled


class NotRunning(errors.OpPrereqError):
    """The instance to migrate does not run (so it could be failed over instead)."""

    def __init__(self, msg: str):
        super().__init__(msg, errors.ECode.WRONG_STATE)


def choose_target(lu: LogicalUnit, inst: dict, exclude: set[str], reserved: dict[str, int]) -> str:
    """The online vm-capable node (not in ``exclude``) the allocator chooses for the instance
    (the one asked for with -I, else the cluster's default), counting memory ``reserved`` by
    moves planned before this one; without any allocator, the one with most free memory."""
    data = lu.cfg.snapshot()
    nodes = {n["name"]: n["primary_ip"] for n in data.nodes.values()
             if n["vm_capable"] and not n["offline"] and not n["drained"] and n["name"] not in exclude}
    asked = getattr(lu.op, "iallocator", None)
    name = data.cluster["default_iallocator"] if asked in (None, DEFAULT_SHORTCUT) else asked
    if name:
        return iallocator.place_existing(lu, name, data, inst, sorted(nodes), 1, reserved)[0]
    results = lu.rpc.hv_node_info.on(nodes, inst.hypervisor)
    free = {n: r.payload["memory_free"] - reserved.get(n, 0) for n, r in results.items() if not r.failed}
    fitting = [n for n in sorted(free) if free[n] >= inst.beparams["maxmem"]]
    if not fitting:
        raise errors.OpPrereqError(f"no node can take instance {inst['name']} ({inst['beparams']['maxmem']}"
                                   " MiB)", errors.ECode.NORES)
    return max(fitting, key=lambda n: free[n])


def check_hv_versions(lu: LogicalUnit, inst: dict, source: str, target: str) -> None:
    """Ganeti's check before a migration: the hypervisor (QEMU) versions of both nodes agree;
    with ignore_hvversions a difference is only a warning. A node that reports none is not compared."""
    versions = {}
    for node in (source, target):
        res = lu.rpc.hv_node_info(node, inst.hypervisor)
        versions[node] = None if res.failed else res.payload.get("hv_version")
    if None in versions.values() or versions[source] == versions[target]:
        return
    text = (f"the hypervisor versions of {source} ({'.'.join(map(str, versions[source]))}) and {target}"
            f" ({'.'.join(map(str, versions[target]))}) differ")
    if not getattr(lu.op, "ignore_hvversions", False):
        raise errors.OpPrereqError(f"{text}: migrating {inst['name']} may fail; use --ignore-hvversions to"
                                   " try anyway", errors.ECode.INVAL)
    lu.feedback(f"Warning: {text}; migrating {inst['name']} anyway (--ignore-hvversions)")


class MovePlan:
    """One instance going from its primary to a target node."""

    def __init__(self, lu: LogicalUnit, inst: dict, target: str | None, need_running: bool,
                 reserved: dict[str, int] | None = None, can_copy: bool = False):
        refuse_forthcoming(inst)
        self.lu = lu
        self.inst = inst
        self.source = inst.primary_node
        reserved = {} if reserved is None else reserved
        self.source_offline = lu.node(self.source)["offline"]
        # local disks (file) travel with a live migration: mirrored to the target first;
        # mirrored templates already have a copy on their secondary node, the only target
        template = storage.get(inst.disk_template)
        self.mirrored = template.mirrored
        self.copy_disks = not template.shared and not self.mirrored
        iallocator = getattr(lu.op, "iallocator", None)
        if target and iallocator:
            raise errors.OpPrereqError("give either a target node or an allocator, not both", errors.ECode.INVAL)
        if iallocator and iallocator != DEFAULT_SHORTCUT:
            check_allocator(iallocator)
        if self.mirrored:       # an allocator has no choice to make: the secondary is the target
            secondary = inst.secondary_nodes[0]
            if target and target != secondary:
                raise errors.OpPrereqError(f"instance {inst['name']} has its disks mirrored to {secondary}; it can"
                                           f" only move there, not to {target}", errors.ECode.INVAL)
            target = secondary
        if self.copy_disks and not can_copy:
            raise errors.OpPrereqError(
                f"instance {inst['name']} uses disk template {inst['disk_template']!r}, whose disks stay on"
                f" {self.source}; only a live migration can take them along", errors.ECode.WRONG_STATE)
        self.target = target or choose_target(lu, inst, {self.source}, reserved)
        if self.target == self.source:
            raise errors.OpPrereqError(f"instance {inst['name']} is already on {self.target}",
                                       errors.ECode.INVAL)
        node = lu.node(self.target)
        if node["offline"]:
            raise errors.OpPrereqError(f"target node {self.target} is offline", errors.ECode.WRONG_STATE)
        if not node["vm_capable"]:
            raise errors.OpPrereqError(f"target node {self.target} is not vm capable", errors.ECode.WRONG_STATE)
        check_target_node(lu, lu.cfg.snapshot(), inst, self.target, getattr(lu.op, "ignore_ipolicy", False))
        self.source_unreachable = False
        try:
            self.running = not self.source_offline and self._source_state() == "running"
        except errors.OpPrereqError:
            if need_running:
                raise
            self.running = False      # a dead primary: failover decides with --ignore-consistency
            self.source_unreachable = True
        if need_running and self.source_offline:
            raise errors.OpPrereqError(f"the primary node {self.source} of {inst['name']} is offline; use"
                                       " failover instead of migrate", errors.ECode.WRONG_STATE)
        if need_running and not self.running:
            raise NotRunning(f"instance {inst['name']} is not running, it cannot be migrated")
        if need_running and self.mirrored:
            out_of_sync = self._mirror_trouble()
            if out_of_sync:
                raise errors.OpPrereqError(f"the disks of {inst['name']} are not in sync on {self.target}"
                                           f" ({out_of_sync}); wait for the sync or run gnt-instance"
                                           " activate-disks, then migrate", errors.ECode.WRONG_STATE)
        if need_running:
            check_hv_versions(lu, inst, self.source, self.target)
        if self.copy_disks and not self.running:
            raise errors.OpPrereqError(
                f"instance {inst['name']} is stopped and its {inst['disk_template']} disks are local to"
                f" {self.source}; start it to migrate it live with its disks", errors.ECode.WRONG_STATE)
        if not (self.running or inst.admin_state == "up"):
            return                    # it will not run on the target: no memory needed there
        free = free_memory(lu, self.target, inst.hypervisor) - reserved.get(self.target, 0)
        reserved[self.target] = reserved.get(self.target, 0) + inst.beparams["maxmem"]
        if free < inst.beparams["maxmem"]:
            raise errors.OpPrereqError(f"not enough memory on target node {self.target} for instance"
                                       f" {inst['name']}: needed {inst['beparams']['maxmem']} MiB, free {free}"
                                       " MiB", errors.ECode.NORES)

    def _source_state(self) -> str | None:
        res = self.lu.rpc.instance_info(self.source, self.inst.name, self.inst.hypervisor, timeout=10)
        if res.failed:
            raise errors.OpPrereqError(f"cannot reach the primary node {self.source}: {res.fail_msg}",
                                       errors.ECode.ENVIRON)
        return (res.payload or {}).get("state")

    def _set_primary(self) -> None:
        name, target, source, mirrored = self.inst.name, self.target, self.source, self.mirrored

        def change(data):
            inst = data.instances[name]
            inst["primary_node"] = target
            if mirrored:                  # the old primary keeps the other copy
                inst["secondary_nodes"] = [source]
            inst["serial_no"] += 1
            inst["mtime"] = time.time()
        self.lu.cfg.update(change)

    def migrate(self, live: bool | None = None) -> dict:
        """Live (or paused) migration; on failure the source keeps running and the target is cleaned.
        The target runs the instance before the config names it: the master knows it meanwhile.
        ``live`` None: as the instance's migration_mode hvparam says (Ganeti)."""
        if live is None:
            live = self.live_by_default()
        with self.lu.ctx.moving_to(self.inst.name, self.target):
            return self._migrate(live)

    def live_by_default(self) -> bool:
        """As the instance's migration_mode hvparam says (Ganeti)."""
        from genet.hypervisor.base import HYPERVISORS
        hv = self.inst.hypervisor
        given = dict(self.lu.cfg.snapshot().cluster.get("hvparams", {}).get(hv, {}), **self.inst.hvparams)
        return HYPERVISORS.cls(hv).fill_parameters(given).get("migration_mode", "live") != "non-live"

    def _migrate(self, live: bool) -> dict:
        inst, feedback, hv = self.inst, self.lu.feedback, self.inst.hypervisor
        feedback(f"* migrating instance {inst['name']} from {self.source} to {self.target}"
                 f" ({'live' if live else 'non-live'})")
        info = self.lu.rpc.instance_migration_info(self.source, inst.name, hv) \
            .raise_on_error("migration info")
        target_ip = node_address(self.lu, self.target)
        if self.copy_disks:
            self._create_target_disks()
        try:
            if self.mirrored:
                self._mirror_step(self.source, "prepare", "source")
                self._mirror_step(self.target, "prepare", "target")
            res = self.lu.rpc.instance_accept_incoming(self.target, inst, storage_params(self.lu), target_ip, info,
                                                       self.copy_disks)
            ports = res.raise_on_error(f"preparing {self.target} for the incoming instance")
        except errors.GenericError:
            self._undo_target()
            raise
        try:
            if self.copy_disks:
                feedback(f"* mirroring {len(inst['disks'])} disk(s) to {self.target}")
            self.lu.rpc.instance_migrate(self.source, inst.name, hv, target_ip, ports.port, live, ports.nbd_port) \
                .raise_on_error("starting the migration")
            status = self._wait()
            held = self.lu.clock.monotonic()
            if self.mirrored:
                self._switch_target_disks()
        except errors.GenericError:
            # the target goes first: a held target never ran, so the source may run on
            self.lu.rpc.instance_finish_incoming(self.target, inst.name, hv, False)
            self.lu.rpc.instance_abort_migration(self.source, inst.name, hv, self.mirrored)
            self._undo_target()
            raise
        res = self.lu.rpc.instance_finish_incoming(self.target, inst.name, hv, True)
        figures = _figures(status, int(1000 * (self.lu.clock.monotonic() - held)) if self.mirrored else 0)
        if res.failed:
            raise errors.OpExecError(f"the memory of {inst['name']} reached {self.target} but it could not be"
                                     f" resumed there ({res.fail_msg}); run gnt-instance migrate --cleanup")
        self._set_primary()
        res = self.lu.rpc.instance_stop(self.source, inst.name, hv, 0, True)
        if res.failed:
            feedback(f"Warning: the source copy on {self.source} was not stopped: {res.fail_msg}")
        elif self.mirrored:
            for node, step, role in ((self.source, "switch", "source"), (self.target, "finish", "target")):
                res = self._mirror_rpc(node, step, role)
                if res.failed:
                    feedback(f"Warning: the disks' {step} on {node} failed: {res.fail_msg}; run"
                             f" gnt-instance activate-disks {inst['name']}")
        elif self.copy_disks:
            for index, disk in enumerate(inst.disks):
                gone = self.lu.rpc.blockdev_remove(self.source, inst.name, inst.disk_template, disk, index,
                                                   storage_params(self.lu))
                if gone.failed:
                    feedback(f"Warning: disk {index} stays on {self.source}: {gone.fail_msg}")
        feedback(f"* migration done: {_describe(figures)}")
        return {"source": self.source, "target": self.target, **figures}

    def _create_target_disks(self) -> None:
        inst = self.inst
        for index, disk in enumerate(inst.disks):
            res = self.lu.rpc.blockdev_create(self.target, inst.name, inst.disk_template, disk, index,
                                              storage_params(self.lu))
            if res.failed:
                self._undo_target()
                raise errors.OpExecError(f"could not create disk {index} on {self.target}: {res.fail_msg}")

    def _undo_target(self) -> None:
        """After a failed migration: the target's new disks go, mirrored ones keep their roles."""
        inst = self.inst
        if self.mirrored:
            for node in (self.target, self.source):
                self._mirror_rpc(node, "abort", "source")
        if not self.copy_disks:
            return
        for index, disk in enumerate(inst.disks):
            self.lu.rpc.blockdev_remove(self.target, inst.name, inst.disk_template, disk, index,
                                        storage_params(self.lu))

    def _mirror_rpc(self, node: str, step: str, role: str):
        """One step of the mirrored disks' migration (storage.base.MirroredTemplate) on a node."""
        return self.lu.rpc.blockdev_migration(node, self.inst.name, self.inst.disk_template, self.inst.disks,
                                              storage_params(self.lu), step, role)

    def _mirror_step(self, node: str, step: str, role: str) -> list:
        return self._mirror_rpc(node, step, role).raise_on_error(f"{step} of the mirrored disks on {node} ({role})")

    def _switch_target_disks(self) -> None:
        """The memory arrived and the guest is held paused on the target. The source's mirror
        must have stayed in sync until its guest stopped, else the target's copy may lack a
        write the guest saw completed; then the target takes the primary role."""
        trouble = self._mirror_trouble()
        if trouble:
            raise errors.OpExecError(f"the mirror to {self.target} broke during the migration ({trouble});"
                                     f" {self.inst['name']} goes on running on {self.source}")
        states = self._mirror_step(self.target, "switch", "target")
        self.lu.feedback(f"* {self.target} took over the disks: {', '.join(states)}")

    def _wait(self) -> MigrationStatus:
        last = -1
        clock = self.lu.clock
        deadline = clock.monotonic() + MIGRATION_TIMEOUT
        pause = 0.05              # quick migrations end quickly; long ones are polled every POLL
        while True:
            if clock.monotonic() > deadline:
                raise errors.OpExecError(f"migration of {self.inst['name']} did not converge within"
                                         f" {MIGRATION_TIMEOUT:.0f} s; raise migration_bandwidth or"
                                         " migration_downtime, or use --migration-mode=non-live")
            status = self.lu.rpc.instance_migration_status(self.source, self.inst.name, self.inst.hypervisor) \
                .raise_on_error("migration status")
            state = status.status
            if state == "completed":
                return status
            if state in ("failed", "cancelled", "none"):
                raise errors.OpExecError(f"migration of {self.inst['name']} {state}: {status.error}")
            total, remaining = status.ram_total, status.ram_remaining
            if total:
                percent = int(100 * (total - remaining) / total)
                if percent != last:
                    self.lu.feedback(f"* memory transfer progress: {percent}% ({remaining >> 20} MiB remaining)")
                    last = percent
            clock.sleep(pause)
            # mirrored disks: the guest is held paused from completion to the switch of roles
            pause = min(POLL / 5 if self.mirrored else POLL, pause * 2)

    def failover(self, ignore_consistency: bool, shutdown_timeout: int) -> dict:
        """Stop on the source (if it can be reached), start on the target."""
        inst, feedback = self.inst, self.lu.feedback
        feedback(f"* failing over instance {inst['name']} from {self.source} to {self.target}")
        reachable = not self.lu.node(self.source)["offline"]
        if reachable:
            try:
                if self.source_unreachable:       # found so by the prerequisites: not waited for again
                    raise errors.OpExecError(f"could not stop instance {inst['name']} on {self.source}: the node"
                                             " does not answer")
                stop_instance(self.lu, inst, shutdown_timeout)
            except errors.OpExecError as err:
                if not ignore_consistency:
                    raise errors.OpExecError(f"{err}; the primary node may be down: use --ignore-consistency"
                                             " if you are sure the instance no longer runs there") from None
                feedback(f"Warning: {err}; continuing (--ignore-consistency)")
                reachable = False
        was_up = inst.admin_state == "up"
        if self.mirrored and reachable:
            trouble = self._mirror_trouble()
            if trouble:
                if not ignore_consistency:
                    raise errors.OpExecError(f"the disks of {inst['name']} are not in sync on {self.target}"
                                             f" ({trouble}); use --ignore-consistency to fail over anyway")
                feedback(f"Warning: failing over with disks not in sync ({trouble}) (--ignore-consistency)")
            # the old primary becomes the secondary: its primary side (and its mirror) goes
            self.lu.rpc.blockdev_shutdown(self.source, inst.name, inst.disk_template, inst.disks,
                                          storage_params(self.lu))
        moved = inst.replace(primary_node=self.target,
                     secondary_nodes=[self.source] if self.mirrored else inst.get("secondary_nodes", []))
        unreachable = frozenset() if reachable else frozenset({self.source})
        if self.mirrored:     # before the config names the new primary: a refusal changes nothing
            assemble_disks(self.lu, moved, force=ignore_consistency, unreachable=unreachable)
        self._set_primary()
        if unreachable:       # it may still run there (cut off, not dead): the master stops it there
            self.lu.ctx.strays_possible_on(self.source)     # once the node answers and the job is done
        if was_up:
            start_instance(self.lu, moved, unreachable=unreachable)
        return {"source": self.source, "target": self.target}

    def _mirror_trouble(self) -> str:
        """Why the target's copy may lack writes ("" when every disk is in sync), from the source."""
        res = self.lu.rpc.blockdev_find(self.source, self.inst.name, self.inst.disk_template, self.inst.disks,
                                        storage_params(self.lu))
        if res.failed:
            return res.fail_msg
        states = [found.mirror.state if found is not None and found.mirror is not None else None
                  for found in res.payload]
        return "" if all(state == "in sync" for state in states) else \
            f"disk states {', '.join(map(str, states))}"


def _figures(qemu: MigrationStatus, switch_ms: int) -> dict:
    """What a migration cost, in parts that add up.

    QEMU measures its own part: ``downtime`` is how long the guest was stopped for the last
    copy of its memory, ``total-time`` the whole transfer.  A mirrored instance is then held
    paused on the target while its disks switch roles (``switch_ms``), which QEMU does not
    see; genet adds that to both figures, so the downtime never exceeds the total."""
    downtime, total = qemu.downtime_ms, qemu.total_time_ms
    return {"downtime_ms": downtime + switch_ms, "total_time_ms": total + switch_ms,
            "qemu_downtime_ms": downtime, "qemu_total_time_ms": total, "disk_switch_ms": switch_ms}


def _describe(figures: dict) -> str:
    text = f"downtime {figures['downtime_ms']} ms, total {figures['total_time_ms']} ms"
    if figures["disk_switch_ms"]:
        text += (f" (QEMU's migration: downtime {figures['qemu_downtime_ms']} ms of"
                 f" {figures['qemu_total_time_ms']} ms; then the guest waited paused"
                 f" {figures['disk_switch_ms']} ms while its disks switched roles)")
    return text


class _InstanceMoving(LogicalUnit):
    """Runs one instance on another node (migrate, failover): locks it and every node, since
    the target may be any of them (an iallocator's choice, or a cleanup's search)."""
    REQ_BGL = False
    HTYPE = "INSTANCE"

    def hooks_env(self):
        """Ganeti's: the instance's variables and where it goes (a cleanup: it stays)."""
        inst = self.inst
        target = self.plan.target if self.plan is not None else inst.primary_node
        secondaries = inst.get("secondary_nodes", [])
        env = {**instance_env(self, inst), "OLD_PRIMARY": inst.primary_node, "NEW_PRIMARY": target,
               "OLD_SECONDARY": secondaries[0] if secondaries else "",
               "NEW_SECONDARY": inst.primary_node if secondaries else ""}
        return {**env, **self.moving_env()}

    def moving_env(self) -> dict:
        return {}

    def hooks_nodes(self):
        inst = self.inst
        target = self.plan.target if self.plan is not None else inst.primary_node
        nodes = [self.master_node(), inst.primary_node, *inst.get("secondary_nodes", []), target]
        return nodes, nodes

    def expand_names(self):
        self.needed_locks[Level.INSTANCE] = [self.op.instance_name]
        self.lock_all_nodes()


class LUInstanceMigrate(_InstanceMoving):
    OPCODE = opcodes.OpInstanceMigrate
    HPATH = "instance-migrate"

    def moving_env(self):
        return {"MIGRATE_LIVE": self.live(), "MIGRATE_CLEANUP": self.op.cleanup,
                "ALLOW_RUNTIME_CHANGES": self.op.allow_runtime_changes}

    def live(self) -> bool:
        """Whether the migration is live: as asked, else as the instance's migration_mode says."""
        if self.op.mode is None and self.op.live is None and not self.op.non_live:
            return self.plan is None or self.plan.live_by_default()
        return self.op.mode != "non-live" and self.op.live is not False and not self.op.non_live

    def check_prereq(self):
        inst = self.inst = instance_of(self, self.op.instance_name)
        if self.op.cleanup:
            self.plan = None
            return
        if inst.beparams.get("always_failover"):      # Ganeti's backend parameter
            self.feedback("Instance configured to always failover; fallback to failover")
            self.plan = MovePlan(self, inst, self.op.target_node, need_running=False)
            self.failover = True
            return
        try:
            self.plan = MovePlan(self, inst, self.op.target_node, need_running=True, can_copy=True)
            self.failover = False
        except NotRunning:
            if not self.op.allow_failover:
                raise
            self.plan = MovePlan(self, inst, self.op.target_node, need_running=False)
            self.failover = True

    def exec(self):
        if self.plan is None:
            return cleanup_migration(self, self.inst)
        if self.failover:
            return self.plan.failover(False, 120)
        return self.plan.migrate(self.live())


def cleanup_migration(lu: LogicalUnit, inst: dict) -> dict:
    """After a failed migration: find where the instance runs, keep that copy, kill the other."""
    data = lu.cfg.snapshot()
    online = online_nodes(data)
    results = lu.rpc.instance_info.on(online, inst.name, inst.hypervisor)
    def runs(info: dict | None) -> bool:    # a paused source (postmigrate) or target (inmigrate) does not
        return bool(info) and info.get("runstate", info.get("state")) == "running"
    running = sorted(n for n, r in results.items() if not r.failed and runs(r.payload))
    present = sorted(n for n, r in results.items() if not r.failed and r.payload)
    if not running:
        raise errors.OpExecError(f"instance {inst['name']} runs nowhere; start it with gnt-instance startup")
    keep = inst.primary_node if inst.primary_node in running else running[0]
    for node in present:
        if node != keep:
            lu.feedback(f"* removing the stale copy of {inst['name']} on {node}")
            lu.rpc.with_addresses(online).instance_stop(node, inst.name, inst.hypervisor, 0, True)
    if keep != inst.primary_node:
        def change(data):
            target = data.instances[inst.name]
            target.update(primary_node=keep, serial_no=target["serial_no"] + 1, mtime=time.time())
        lu.cfg.update(change)
    lu.feedback(f"* instance {inst['name']} runs on {keep}")
    return {"node": keep}


class LUInstanceFailover(_InstanceMoving):
    OPCODE = opcodes.OpInstanceFailover
    HPATH = "instance-failover"

    def moving_env(self):
        return {"IGNORE_CONSISTENCY": self.op.ignore_consistency, "SHUTDOWN_TIMEOUT": self.op.shutdown_timeout,
                "FAILOVER_CLEANUP": self.op.cleanup}

    def hooks_nodes(self):
        """Ganeti's: not the old primary before (it may be dead), but after."""
        inst = self.inst
        target = self.plan.target if self.plan is not None else inst.primary_node
        pre = [self.master_node(), *inst.get("secondary_nodes", []), target]
        return pre, [*pre, inst.primary_node]

    def check_prereq(self):
        inst = self.inst = instance_of(self, self.op.instance_name)
        if self.op.cleanup:       # Ganeti's recovery after a failed failover
            self.plan = None
            return
        self.plan = MovePlan(self, inst, self.op.target_node, need_running=False)
        refuse_unreachable_primary(self, [self.plan])

    def exec(self):
        if self.plan is None:
            return cleanup_failover(self, self.inst)
        return self.plan.failover(self.op.ignore_consistency, self.op.shutdown_timeout)


def cleanup_failover(lu: LogicalUnit, inst: dict) -> dict:
    """After a failed failover: an instance running somewhere is kept there (as after a failed
    migration); one running nowhere is fine if marked down, and is left for startup if marked up."""
    try:
        return cleanup_migration(lu, inst)
    except errors.OpExecError:
        if inst.admin_state == "up":
            raise
    lu.feedback(f"* instance {inst['name']} runs nowhere, as its admin state {inst.admin_state} says")
    return {"node": inst.primary_node}


def refuse_unreachable_primary(lu: LogicalUnit, plans: list[MovePlan]) -> None:
    """A primary node that does not answer may be cut off, not dead, and still run the VMs: failing
    over would run them twice. It must be marked offline first (an explicit decision that it is
    down), or the admin says so with --primary-is-down (logged)."""
    for plan in plans:
        if not plan.source_unreachable:
            continue
        if not lu.op.primary_is_down:
            raise errors.OpPrereqError(
                f"the primary node {plan.source} of {plan.inst['name']} does not answer: it may be cut off and"
                f" still run {plan.inst['name']}. Once it is down, mark it offline (gnt-node modify -O yes"
                f" {plan.source}), or pass --primary-is-down", errors.ECode.ENVIRON)
        lu.feedback(f"Warning: failing over {plan.inst['name']} from {plan.source}, which does not answer,"
                    " on the admin's word that it is down (--primary-is-down)")


class _NodeEmptying(LogicalUnit):
    """Moves every instance whose primary is the node; one instance at a time."""
    REQ_BGL = False

    def expand_names(self):
        self.node(self.op.node_name)
        self.needed_locks[Level.INSTANCE] = ALL_SET
        self.lock_all_nodes()

    def primaries(self) -> list[Instance]:
        return self.cfg.read(lambda d: sorted((params.filled(d, i) for i in d.instances.values()
                                               if i["primary_node"] == self.op.node_name),
                                              key=lambda i: i["name"]))


class LUNodeMigrate(_NodeEmptying):
    OPCODE = opcodes.OpNodeMigrate
    HPATH = "node-migrate"
    HTYPE = "NODE"

    def hooks_env(self):
        return {"NODE_NAME": self.op.node_name}

    def hooks_nodes(self):
        return [self.master_node()], [self.master_node()]

    def check_prereq(self):
        reserved: dict[str, int] = {}
        self.plans = [MovePlan(self, inst, self.op.target_node, need_running=True, reserved=reserved,
                               can_copy=True)
                      for inst in self.primaries() if inst.admin_state == "up"]

    def exec(self):
        live = None if self.op.mode is None else self.op.mode != "non-live"
        return [plan.migrate(live) for plan in self.plans]


class LUNodeEvacuate(_NodeEmptying):
    OPCODE = opcodes.OpNodeEvacuate

    def check_prereq(self):
        if self.op.remote_node == self.op.node_name:
            raise errors.OpPrereqError("the new node must differ from the node being evacuated",
                                       errors.ECode.INVAL)
        if self.op.primary_only and self.op.secondary_only:
            raise errors.OpPrereqError("--primary-only and --secondary-only exclude each other",
                                       errors.ECode.INVAL)
        allocator_or_nodes(self, self.op.iallocator, self.op.remote_node)
        reserved: dict[str, int] = {}
        self.plans = []
        for inst in [] if self.op.secondary_only else self.primaries():
            try:
                self.plans.append(MovePlan(self, inst, self.op.remote_node, need_running=False, reserved=reserved,
                                           can_copy=True))
            except errors.OpPrereqError as err:
                # Ganeti's soft errors: an instance that has nowhere to go stays, the others move
                if not (self.op.ignore_soft_errors and err.ecode == errors.ECode.NORES):
                    raise
                self.feedback(f"Warning: instance {inst.name} stays on {self.op.node_name}: {err.args[0]}")
        remote = self.op.remote_node
        if not self.op.primary_only and remote is not None:
            for inst in self.secondaries():
                if remote == inst.primary_node:
                    raise errors.OpPrereqError(f"{remote} is the primary node of {inst['name']}; it cannot also"
                                               " hold its secondary copy", errors.ECode.INVAL)

    def secondaries(self) -> list[Instance]:
        """Mirrored instances whose secondary copy is on the node."""
        return self.cfg.read(lambda d: sorted((params.filled(d, i) for i in d.instances.values()
                                               if self.op.node_name in i.get("secondary_nodes", [])),
                                              key=lambda i: i["name"]))

    def exec(self):
        """Running instances migrate live, the others (or all, from a dead node) fail over; then
        every secondary copy still on the node (also those the moves left there) goes elsewhere."""
        done = [plan.migrate() if plan.running else plan.failover(plan.source_offline, 120)
                for plan in self.plans]
        if not self.op.primary_only:
            for inst in self.secondaries():
                self.feedback(f"* moving the secondary copy of {inst['name']} off {self.op.node_name}")
                new = replace_mirror(self, inst, "replace_new_secondary", self.op.remote_node, [])
                done.append({"instance": inst.name, "secondary": new[0][1] if new else None})
        return done


class LUNodeFailover(_NodeEmptying):
    """Every primary instance of the node restarts elsewhere (shared disks), or on its
    secondary node (mirrored disks)."""
    OPCODE = opcodes.OpNodeFailover

    def check_prereq(self):
        reserved: dict[str, int] = {}
        self.plans = [MovePlan(self, inst, self.op.target_node, need_running=False, reserved=reserved)
                      for inst in self.primaries()]
        refuse_unreachable_primary(self, self.plans)

    def exec(self):
        return [plan.failover(self.op.ignore_consistency or plan.source_offline, 120) for plan in self.plans]


class LUInstanceMove(LogicalUnit):
    """Copies the disks over a TLS stream (checked by SHA-256), then starts the instance there."""
    OPCODE = opcodes.OpInstanceMove
    REQ_BGL = False
    HPATH = "instance-move"
    HTYPE = "INSTANCE"

    def hooks_env(self):
        return {"TARGET_NODE": self.op.target_node, "SHUTDOWN_TIMEOUT": self.op.shutdown_timeout,
                **instance_env(self, self.inst)}

    def hooks_nodes(self):
        nodes = [self.master_node(), self.inst.primary_node, self.op.target_node]
        return nodes, nodes

    def expand_names(self):
        self.needed_locks[Level.INSTANCE] = [self.op.instance_name]
        self.needed_locks[Level.NODE] = sorted({self.op.target_node,
                                                instance_of(self, self.op.instance_name)["primary_node"]})

    def check_prereq(self):
        inst = self.inst = instance_of(self, self.op.instance_name)
        refuse_forthcoming(inst)
        check_compression(self)
        if not storage.TEMPLATES.cls(inst.disk_template).moves_by_copy:
            movable = [t.name for t in storage.TEMPLATES.classes() if t.moves_by_copy]
            raise errors.OpPrereqError(f"instance {inst['name']} uses disk template {inst['disk_template']!r};"
                                       f" move copies {', '.join(movable)} disks only (shared and mirrored disks"
                                       " fail over)", errors.ECode.WRONG_STATE)
        target = self.node(self.op.target_node)
        if target["name"] == inst.primary_node:
            raise errors.OpPrereqError(f"instance {inst['name']} is already on {target['name']}", errors.ECode.INVAL)
        if target["offline"] or not target["vm_capable"]:
            raise errors.OpPrereqError(f"node {target['name']} is offline or not vm capable",
                                       errors.ECode.WRONG_STATE)
        if self.node(inst.primary_node)["offline"]:
            raise errors.OpPrereqError(f"the primary node {inst['primary_node']} is offline: its disks cannot be"
                                       " copied", errors.ECode.WRONG_STATE)
        check_target_node(self, self.cfg.snapshot(), inst, target["name"], self.op.ignore_ipolicy)
        if inst.admin_state == "up":
            free = free_memory(self, target["name"], inst.hypervisor)
            if free < inst.beparams["maxmem"]:
                raise errors.OpPrereqError(f"not enough memory on node {target['name']} for {inst['name']}:"
                                           f" needed {inst['beparams']['maxmem']} MiB, free {free} MiB",
                                           errors.ECode.NORES)

    def exec(self):
        inst, source, target = self.inst, self.inst.primary_node, self.op.target_node
        sp, target_ip = storage_params(self), node_address(self, target)
        self.feedback(f"* shutting down {inst['name']} on {source}")
        try:
            stop_instance(self, inst, self.op.shutdown_timeout)
        except errors.OpExecError as err:
            if not self.op.ignore_consistency:
                raise
            self.feedback(f"Warning: could not shut down {inst['name']} on {source}, copying its disks anyway"
                          f" (--ignore-consistency): {err}")
        done = 0
        try:
            for index, disk in enumerate(inst.disks):
                self.rpc.blockdev_create(target, inst.name, inst.disk_template, disk, index, sp) \
                    .raise_on_error(f"creating disk {index} on {target}")
                done = index + 1
                port = self.rpc.blockdev_receive(target, inst.name, inst.disk_template, disk, index, sp, target_ip,
                                                 self.op.compress).raise_on_error("preparing the copy")
                self.feedback(f"* copying disk {index} ({disk['size']} MiB) to {target}")
                sent = self.rpc.blockdev_send(source, inst.name, inst.disk_template, disk, index, sp, target_ip, port,
                                              self.op.compress).raise_on_error(f"sending disk {index}")
                got = self.rpc.blockdev_received(target, port, 600) \
                    .raise_on_error(f"receiving disk {index}")
                if got != sent:
                    raise errors.OpExecError(f"disk {index} arrived damaged on {target}: sent {sent}, got {got}")
        except errors.GenericError:
            for index, disk in enumerate(inst.disks[:done]):
                self.rpc.blockdev_remove(target, inst.name, inst.disk_template, disk, index, sp)
            if inst.admin_state == "up":
                start_instance(self, inst)          # back where it was
            raise

        def change(data):
            moved = data.instances[inst.name]
            moved.update(primary_node=target, serial_no=moved["serial_no"] + 1, mtime=time.time())
        self.cfg.update(change)
        for index, disk in enumerate(inst.disks):
            self.rpc.blockdev_remove(source, inst.name, inst.disk_template, disk, index, sp)
        if inst.admin_state == "up":
            self.feedback(f"* starting {inst['name']} on {target}")
            start_instance(self, inst.replace(primary_node=target))
        return {"source": source, "target": target}
