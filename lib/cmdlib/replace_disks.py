"""Replacing the copies of mirrored disks: on the primary, on the secondary, or moving the
secondary to another node."""
from __future__ import annotations

import time

from genet import errors, opcodes
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import InstanceLU, check_node_online, instance_of, is_running, storage_params
from genet.cmdlib.instance_policy import check_target_node
from genet.cmdlib.disks import (assemble_disks, create_disk_on, disk_status, each_disk, give_logical_ids, remove_disks,
                                shutdown_disks, wait_for_sync)
from genet.locking import Level
from genet.storage import base as storage


def replace_mirror(lu: LogicalUnit, inst: dict, mode: str, remote_node: str | None, wanted: list[int]) -> list:
    """replace-disks for the mirror and drbd templates: every disk to a new secondary (-n/-I), or
    fresh copies of the disks in ``wanted`` (default all) on the secondary (-s) or the primary
    (-p), filled from the other side; -a finds the faulty disks and their side."""
    wanted = sorted(set(wanted)) or list(range(len(inst.disks)))
    if mode == "replace_auto":
        mode, wanted = _faulty_side(lu, inst, wanted)
        if not wanted:
            lu.feedback(f"* no disk of {inst['name']} is faulty: nothing to replace (a mirror that is only"
                        " out of sync is mirrored again by gnt-cluster verify-disks)")
            return []
    if mode == "replace_on_primary":
        return _replace_primary_copy(lu, inst, wanted)
    if mode == "replace_on_secondary":
        return _replace_secondary_copy(lu, inst, wanted)
    if len(wanted) < len(inst.disks):
        lu.feedback("* every disk moves to the new secondary (--disks chooses disks for -p, -s and -a only)")
    return _move_secondary(lu, inst, remote_node)


def _faulty(lu: LogicalUnit, inst: dict, node: str, wanted: list[int]) -> list[int]:
    """The disks among ``wanted`` whose copy on ``node`` is missing or lost its local storage."""
    found = disk_status(lu, inst, node)
    return [i for i in wanted
            if found[i] is None
            or found[i].mirror is not None and found[i].mirror.disk_state in ("Diskless", "Failed")]


def _faulty_side(lu: LogicalUnit, inst: dict, wanted: list[int]) -> tuple[str, list[int]]:
    """-a: the faulty disks and the mode that replaces them; faults on both sides are refused, as
    in Ganeti (which side's data would fill the other?)."""
    primary, secondary = inst.primary_node, inst.secondary_nodes[0]
    on_primary = _faulty(lu, inst, primary, wanted)
    on_secondary = [] if lu.node(secondary)["offline"] else _faulty(lu, inst, secondary, wanted)
    if on_primary and on_secondary:
        raise errors.OpPrereqError(f"the disks of {inst['name']} are faulty on both nodes (disk(s)"
                                   f" {','.join(map(str, on_primary))} on {primary},"
                                   f" {','.join(map(str, on_secondary))} on {secondary}): -a cannot choose a side;"
                                   " replace them with -p --disks or -s --disks", errors.ECode.WRONG_STATE)
    if on_primary:
        return "replace_on_primary", on_primary
    return "replace_on_secondary", on_secondary


def _move_secondary(lu: LogicalUnit, inst: dict, remote_node: str | None) -> list:
    """-n/-I: every disk gets a copy on the new node, filled from the primary; then the old
    secondary's copies go."""
    sp = storage_params(lu)
    old = inst.secondary_nodes[0]
    new = remote_node
    if new is None:      # Ganeti's relocate request: the allocator picks the new secondary
        from genet.cmdlib import iallocator
        from genet.cmdlib.allocator import allocator
        new = iallocator.relocate(lu, allocator(lu, lu.op.iallocator), lu.cfg.snapshot(), inst, old)
    disks = [dict(d) for d in inst.disks]
    moved = inst.replace(secondary_nodes=[new], disks=disks)
    give_logical_ids(lu, moved)
    for index, disk in enumerate(disks):
        create_disk_on(lu, new, inst.name, inst.disk_template, disk, index)
    lu.rpc.blockdev_assemble(new, inst.name, inst.disk_template, disks, "secondary",
                             sp).raise_on_error(f"assembling the disks on {new}")
    lu.feedback(f"* mirroring from {inst['primary_node']} to {new}")
    lu.rpc.blockdev_resync(inst.primary_node, inst.name, inst.disk_template, disks, sp,
                           True).raise_on_error("mirroring to the new secondary")
    wait_for_sync(lu, moved)

    def change(data):
        target = data.instances[inst.name]
        target.update(secondary_nodes=[new], disks=disks, serial_no=target["serial_no"] + 1, mtime=time.time())
    lu.cfg.update(change)
    if lu.node(old)["offline"]:
        lu.feedback(f"Warning: {old} is offline; remove its copy of {inst['name']} by hand when it is back")
    else:
        for failure in remove_disks(lu, inst, old):
            lu.feedback(f"Warning: the old copy on {old} stays: {failure}")
    return [[index, new] for index in range(len(disks))]


def _replace_secondary_copy(lu: LogicalUnit, inst: dict, wanted: list[int]) -> list:
    """-s: the secondary's copies of these disks made anew (the old ones removed first: they may
    be what failed) and filled from the primary's, one disk at a time."""
    sp = storage_params(lu)
    primary, secondary = inst.primary_node, inst.secondary_nodes[0]
    check_node_online(lu, secondary)
    for index, one in each_disk(inst, wanted):
        for failure in remove_disks(lu, one, secondary, first=index):
            lu.feedback(f"Warning: the old copy on {secondary}: {failure}")
        disk = one["disks"][0]
        create_disk_on(lu, secondary, inst.name, inst.disk_template, disk, index)
        lu.rpc.blockdev_assemble(secondary, inst.name, inst.disk_template, [disk], "secondary", sp, False,
                                 index).raise_on_error(f"assembling disk {index} on {secondary}")
        lu.feedback(f"* mirroring disk {index} from {primary} to {secondary}")
        lu.rpc.blockdev_resync(primary, inst.name, inst.disk_template, [disk], sp, True,
                               index).raise_on_error(f"mirroring disk {index} to {secondary}")
        wait_for_sync(lu, one, first=index)
    return [[index, secondary] for index in wanted]


def _replace_primary_copy(lu: LogicalUnit, inst: dict, wanted: list[int]) -> list:
    """replace-disks -p: fresh copies of these disks on the primary node, filled from the
    secondary's. The guest uses the primary's copy, so the instance must be stopped, and the
    copies must reach sync first (all assembled) so that the secondary's holds every write."""
    primary, secondary = inst.primary_node, inst.secondary_nodes[0]
    if is_running(lu, inst):
        raise errors.OpPrereqError(f"the primary's copy of {inst['name']} is the one its guest uses: stop the"
                                   " instance first, or fail over to the secondary and replace that copy (-s)",
                                   errors.ECode.WRONG_STATE)
    check_node_online(lu, secondary)
    try:           # assembled, the copies sync up (mirror: the primary's is copied anew)
        assemble_disks(lu, inst)
        wait_for_sync(lu, inst)
    except errors.GenericError as err:
        shutdown_disks(lu, inst, strict=False)
        raise errors.OpExecError(f"the disks of {inst['name']} did not reach sync ({err}): the copy on"
                                 f" {secondary} may lack writes, so it cannot replace the primary's") from None
    shutdown_disks(lu, inst)
    # the roles swapped for the copy: the secondary's side is the source
    swapped = inst.replace(primary_node=secondary, secondary_nodes=[primary])
    for index, one in each_disk(inst, wanted):
        failures = remove_disks(lu, one, primary, first=index)
        if failures:
            raise errors.OpExecError(f"could not remove the old copy on {primary}: {'; '.join(failures)}")
        create_disk_on(lu, primary, inst.name, inst.disk_template, one["disks"][0], index)
        lu.feedback(f"* copying disk {index} from {secondary} to {primary}")
        one_swapped = swapped.replace(disks=one.disks)
        assemble_disks(lu, one_swapped, first=index)
        wait_for_sync(lu, one_swapped, first=index)
        shutdown_disks(lu, one_swapped, first=index)
    return [[index, primary] for index in wanted]


class LUInstanceReplaceDisks(InstanceLU):
    """Rebuilds one side of a mirrored instance's disks, or moves the mirror to a new secondary.

    An instance whose template keeps no mirror is refused before any node is asked.
    """
    OPCODE = opcodes.OpInstanceReplaceDisks
    HPATH = "mirrors-replace"

    def hooks_env(self):
        secondaries = self.inst.get("secondary_nodes", [])
        return {"MODE": self.op.mode, "NEW_SECONDARY": self.op.remote_node,
                "OLD_SECONDARY": secondaries[0] if secondaries else None, **super().hooks_env()}

    def hooks_nodes(self):
        nodes = [self.master_node(), self.inst.primary_node]
        if self.op.remote_node:
            nodes.append(self.op.remote_node)
        return nodes, nodes

    def expand_names(self):
        op = self.op
        if op.mode == "replace_new_secondary":
            if (op.remote_node is None) == (op.iallocator is None):
                raise errors.OpPrereqError("to change the secondary node give either the new node (remote_node)"
                                           " or an iallocator", errors.ECode.INVAL)
        elif op.remote_node is not None or op.iallocator is not None:
            raise errors.OpPrereqError("remote_node and iallocator are only used to change the secondary node"
                                       " (mode replace_new_secondary)", errors.ECode.INVAL)
        instance_of(self, op.instance_name)
        if op.remote_node:
            self.node(op.remote_node)
        super().expand_names()
        if op.iallocator:
            self.lock_all_nodes(shared=False)

    def declare_locks(self, level):
        if level != Level.NODE or self.op.iallocator:       # with an iallocator: all nodes already
            return
        super().declare_locks(level)
        if self.op.remote_node:
            self.needed_locks[Level.NODE] = sorted({*self.needed_locks[Level.NODE], self.op.remote_node})

    def check_prereq(self):
        inst = self.inst = instance_of(self, self.op.instance_name)
        template = inst.disk_template
        if not storage.get(template).mirrored:
            raise errors.OpPrereqError(f"Instance's disk layout '{template}' is not mirrored, replace-disks needs a"
                                       " mirrored template (drbd or mirror)", errors.ECode.INVAL)
        check_node_online(self, inst.primary_node)
        bad = [i for i in self.op.disks if i >= len(inst.disks)]
        if bad:
            raise errors.OpPrereqError(f"instance {inst['name']} has no disk {bad[0]}", errors.ECode.INVAL)
        remote = self.op.remote_node
        if remote is not None:
            node = check_node_online(self, remote)
            if remote == inst.primary_node or remote in inst.get("secondary_nodes", []):
                raise errors.OpPrereqError(f"node {remote} already holds the disks of {inst['name']}",
                                           errors.ECode.INVAL)
            if not node["vm_capable"]:
                raise errors.OpPrereqError(f"node {remote} is not vm capable", errors.ECode.WRONG_STATE)
            check_target_node(self, self.cfg.snapshot(), inst, remote, self.op.ignore_ipolicy)

    def exec(self):
        return replace_mirror(self, self.inst, self.op.mode, self.op.remote_node, self.op.disks)
