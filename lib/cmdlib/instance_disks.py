"""The disk logical units: grow, activate, deactivate, recreate, and the cluster's verify-disks."""
from __future__ import annotations

import time

from genet import errors, ipolicy, opcodes
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import InstanceLU, check_node_online, instance_of, is_running, storage_params
from genet.cmdlib.disks import (assemble_disks, disk_status, give_logical_ids, shutdown_disks, wait_for_sync,
                                wipe_disks)
from genet.cmdlib.instance_policy import group_policy, refuse_or_warn
from genet.locking import ALL_SET, Level
from genet.storage import base as storage


class LUInstanceGrowDisk(InstanceLU):
    OPCODE = opcodes.OpInstanceGrowDisk
    HPATH = "disk-grow"

    def hooks_env(self):
        return {"DISK": self.op.disk, "AMOUNT": self.op.amount, "ABSOLUTE": self.op.absolute, **super().hooks_env()}

    def check_prereq(self):
        super().check_prereq()
        disks = self.inst.disks
        if self.op.disk >= len(disks):
            raise errors.OpPrereqError(f"instance {self.inst['name']} has no disk {self.op.disk}"
                                       f" (it has {len(disks)})", errors.ECode.INVAL)
        for node in self.inst.get("secondary_nodes", []):
            check_node_online(self, node)           # both copies grow, or none
        old = disks[self.op.disk]["size"]
        self.new_size = self.op.amount if self.op.absolute else old + self.op.amount
        if self.new_size <= old:
            raise errors.OpPrereqError(f"disk {self.op.disk} of {self.inst['name']} has {old} MiB; the new size"
                                       f" {self.new_size} MiB would not grow it", errors.ECode.INVAL)
        self._check_policy()

    def _check_policy(self) -> None:
        """Ganeti's: the grown disk (with the others, their count and template) meets the policy
        of the primary node's group; --ignore-ipolicy makes a violation a warning."""
        inst = self.inst
        data = self.cfg.snapshot()
        sizes = tuple(self.new_size if index == self.op.disk else disk["size"] for index, disk in enumerate(inst.disks))
        policy = group_policy(data, data.nodes[inst.primary_node]["group"])
        found = ipolicy.violations(policy, ipolicy.InstanceSpec(disk_sizes=sizes,
                                                                disk_templates=(inst.disk_template,) * len(sizes)))
        if found:
            refuse_or_warn(self, f"Growing disk {self.op.disk} violates policy: {ipolicy.comma_join(found)}",
                           self.op.ignore_ipolicy)

    def exec(self):
        inst, index = self.inst, self.op.disk
        template = storage.get(inst.disk_template)
        live = bool(template.running_grow) and is_running(self, inst)
        # the secondary first: a mirror can only copy to a target at least as large
        grown = []
        for node in [*inst.get("secondary_nodes", []), inst.primary_node]:
            if live and template.running_grow == "hypervisor" and node == inst.primary_node:
                continue                       # the guest's QEMU holds the image: it grows it below
            res = self.rpc.blockdev_grow(node, inst.name, inst.disk_template, inst.disks[index], index,
                                         self.new_size, storage_params(self))
            res.raise_on_error(f"growing disk {index} on {node}")
            grown.append(node)
        # (an image QEMU grows is a file whose new part reads zeros already)
        grown_disk = {**inst.disks[index], "size": self.new_size}
        wipe_disks(self, inst, grown, [(index, grown_disk, inst.disks[index]["size"])])
        if template.mirrored and self.op.wait_for_sync and \
                any(found is not None and found.mirror is not None and found.mirror.role == "primary"
                    for found in disk_status(self, inst)):
            wait_for_sync(self, inst)          # the copy to the grown secondary starts over
        seen = "" if template.running_grow else " (a running guest sees it after its next boot)"
        if live:
            try:
                res = self.rpc.instance_resize_disk(inst.primary_node, inst.name, inst.hypervisor, index,
                                                    self.new_size)
                res.raise_on_error(f"growing disk {index} of the running guest")
                seen = " (the running guest sees it at once)"
            except errors.OpExecError as err:
                if template.running_grow == "hypervisor":
                    raise                      # nothing grew
                self.feedback(f"Warning: {err}")
                seen = " (the running guest sees it after its next boot)"

        def change(data):
            target = data.instances[inst.name]
            target["disks"][index]["size"] = self.new_size
            target["serial_no"] += 1
            target["mtime"] = time.time()
        self.cfg.update(change)
        self.feedback(f"* disk {index} of {inst['name']} is now {self.new_size} MiB{seen}")
        return self.new_size


class LUInstanceActivateDisks(InstanceLU):
    OPCODE = opcodes.OpInstanceActivateDisks

    def exec(self):
        inst = self.inst
        if storage.get(inst.disk_template).mirrored:
            access = assemble_disks(self, inst)
            done = self.rpc.blockdev_resync(inst.primary_node, inst.name, inst.disk_template, inst.disks,
                                            storage_params(self)).raise_on_error("mirroring to the secondary")
            for index, what in enumerate(done):
                self.feedback(f"* disk {index}: {what}")
            if self.op.wait_for_sync:
                wait_for_sync(self, inst)
            return [[inst.primary_node, f"disk/{i}", a.get("nbd_socket") or a["path"]]
                    for i, a in enumerate(access)]
        access = self.rpc.blockdev_access(inst.primary_node, inst.name, inst.disk_template, inst.disks,
                                          storage_params(self)).raise_on_error("activating the disks")
        return [[inst.primary_node, f"disk/{i}", a["path"]] for i, a in enumerate(access)]


class LUInstanceDeactivateDisks(InstanceLU):
    """File-backed disks need no assembly; mirrored ones stop their storage daemons on both nodes."""
    OPCODE = opcodes.OpInstanceDeactivateDisks

    def check_prereq(self):
        super().check_prereq()
        if not self.op.force and is_running(self, self.inst):
            raise errors.OpPrereqError(f"instance {self.inst['name']} is running; stop it first or use --force",
                                       errors.ECode.WRONG_STATE)

    def exec(self):
        if storage.get(self.inst.disk_template).mirrored:
            shutdown_disks(self, self.inst, strict=False)
        return True


class LUInstanceRecreateDisks(InstanceLU):
    """Creates missing disks of a stopped instance again, empty, on its nodes or new ones.

    A disk that still exists is never touched: naming one that exists on every node is
    refused, as in Ganeti (recreate-disks is for disks that were lost); a mirrored disk is
    recreated on the nodes that lost it and filled from the copy that remains. Moving to new
    nodes recreates every disk (mirrored ones with new logical_ids), empty.
    """
    OPCODE = opcodes.OpInstanceRecreateDisks
    HPATH = "instance-recreate-disks"

    def expand_names(self):
        op = self.op
        if op.nodes and op.iallocator:
            raise errors.OpPrereqError("give either new nodes or an iallocator, not both", errors.ECode.INVAL)
        indices = [index for index, _ in op.disks]
        duplicates = sorted({i for i in indices if indices.count(i) > 1})
        if duplicates:
            raise errors.OpPrereqError(f"disk(s) {', '.join(map(str, duplicates))} given more than once",
                                       errors.ECode.INVAL)
        instance_of(self, op.instance_name)
        for name in op.nodes:
            self.node(name)
        super().expand_names()
        if op.iallocator:
            self.lock_all_nodes()

    def declare_locks(self, level):
        if level == Level.NODE and not self.op.iallocator:
            inst = instance_of(self, self.op.instance_name)
            self.needed_locks[Level.NODE] = sorted({inst.primary_node, *inst.get("secondary_nodes", []),
                                                    *self.op.nodes})

    def check_prereq(self):
        op = self.op
        inst = self.inst = instance_of(self, op.instance_name)
        if not inst.disks:
            raise errors.OpPrereqError(f"instance {inst['name']} has no disks", errors.ECode.INVAL)
        nodes_now = [inst.primary_node, *inst.get("secondary_nodes", [])]
        if op.nodes and len(op.nodes) != len(nodes_now):
            raise errors.OpPrereqError(f"instance {inst['name']} has {len(nodes_now)} node(s), {len(op.nodes)}"
                                       " given", errors.ECode.INVAL)
        count = len(inst.disks)
        bad = sorted(i for i, _ in op.disks if i >= count)
        if bad:
            raise errors.OpPrereqError(f"instance {inst['name']} has no disk {bad[0]} (it has {count})",
                                       errors.ECode.INVAL)
        self.changes = dict(op.disks) if op.disks else {i: {} for i in range(count)}
        mirrored = storage.get(inst.disk_template).mirrored
        if op.iallocator and mirrored:
            raise errors.OpPrereqError(f"instance {inst['name']} is mirrored: give its new nodes with -n"
                                       " PRIMARY:SECONDARY, the allocator picks one", errors.ECode.INVAL)
        old = self.node(inst.primary_node)
        if not ((op.nodes or op.iallocator) and old["offline"]):
            check_node_online(self, inst.primary_node)
            if is_running(self, inst):
                raise errors.OpPrereqError(f"instance {inst['name']} is running; stop it before recreating its"
                                           " disks", errors.ECode.WRONG_STATE)
        if op.iallocator:
            from genet.cmdlib.migration import choose_target
            self.targets = [choose_target(self, inst, set(), {})]
        else:
            self.targets = list(op.nodes) or nodes_now
        moving = self.targets != nodes_now
        if moving and sorted(self.changes) != list(range(count)):
            raise errors.OpPrereqError("cannot recreate only some disks and change the nodes at the same time",
                                       errors.ECode.INVAL)
        if len(set(self.targets)) != len(self.targets):
            raise errors.OpPrereqError(f"the nodes of {inst['name']} must differ ({', '.join(self.targets)})",
                                       errors.ECode.INVAL)
        for target in self.targets:
            if not check_node_online(self, target)["vm_capable"]:
                raise errors.OpPrereqError(f"node {target} is not vm capable", errors.ECode.WRONG_STATE)
        disks = [dict(d, **self.changes.get(i, {})) for i, d in enumerate(inst.disks)]
        self.moved = inst.replace(primary_node=self.targets[0], secondary_nodes=self.targets[1:], disks=disks)
        if moving and mirrored:
            for disk in disks:
                disk.pop("logical_id", None)
            give_logical_ids(self, self.moved)
        missing = {}
        for target in self.targets:
            found = self.rpc.blockdev_find(target, inst.name, inst.disk_template, disks,
                                           storage_params(self)).raise_on_error("looking for the disks")
            missing[target] = [i for i in sorted(self.changes) if found[i] is None]
        everywhere = [i for i in sorted(self.changes) if not any(i in m for m in missing.values())]
        if everywhere:
            where = " and ".join(self.targets)
            raise errors.OpPrereqError(f"disk {everywhere[0]} of {inst['name']} exists on {where}: recreate-disks"
                                       " only creates missing disks; name the missing ones with --disk",
                                       errors.ECode.EXISTS)
        if mirrored and not moving:
            lost = [i for i in missing[self.targets[0]] if not all(i in m for m in missing.values())]
            if lost:
                raise errors.OpPrereqError(
                    f"disk {lost[0]} of {inst['name']} is missing on its primary node {self.targets[0]} but its"
                    f" copy on {', '.join(self.targets[1:])} exists: fail over to it (gnt-instance failover), then"
                    " recreate the disk on the old primary, now the secondary", errors.ECode.WRONG_STATE)
        self.missing = missing

    def exec(self):
        inst, moved, sp = self.inst, self.moved, storage_params(self)
        created: list[tuple[str, int]] = []
        try:
            for target in self.targets:
                for index in self.missing[target]:
                    disk = moved.disks[index]
                    self.feedback(f"* recreating disk {index} ({disk['size']} MiB) on {target}")
                    self.rpc.blockdev_create(target, inst.name, inst.disk_template, disk, index, sp) \
                        .raise_on_error(f"creating disk {index}")
                    created.append((target, index))
                wipe_disks(self, moved, [target], [(index, moved.disks[index], 0) for index in self.missing[target]])
            if storage.get(inst.disk_template).mirrored:
                # the primary's side is either new (no data anywhere: its first promotion is
                # forced) or the one that kept the data; the new sides are filled from it
                assemble_disks(self, moved, force=True)
                wait_for_sync(self, moved)
                shutdown_disks(self, moved)
        except errors.GenericError:
            shutdown_disks(self, moved, strict=False)
            for target, index in created:
                self.rpc.blockdev_remove(target, inst.name, inst.disk_template, moved.disks[index], index, sp)
            raise

        def change(data):
            target_inst = data.instances[inst.name]
            target_inst.update(disks=moved.disks, primary_node=moved.primary_node,
                               secondary_nodes=moved.secondary_nodes, serial_no=target_inst["serial_no"] + 1,
                               mtime=time.time())
        self.cfg.update(change)
        return None


class LUClusterVerifyDisks(LogicalUnit):
    """Every mirrored instance's disks as its primary sees them; a degraded one is mirrored again
    (its secondary assembled, the copy resumed or restarted) when its secondary is online.
    Returns [instance, disk index, state before, state after] per disk."""
    OPCODE = opcodes.OpClusterVerifyDisks
    REQ_BGL = False

    def expand_names(self):
        if self.op.is_strict:       # --no-strict: no lock waited for; busy nodes are skipped in exec
            self.needed_locks[Level.INSTANCE] = ALL_SET
            self.lock_all_nodes()

    def check_prereq(self):
        groups = self.cfg.read(lambda d: {g["name"]: uuid for uuid, g in d.nodegroups.items()})
        if self.op.group_name is not None and self.op.group_name not in groups:
            raise errors.OpPrereqError(f"node group {self.op.group_name!r} does not exist", errors.ECode.NOENT)
        self.group = groups.get(self.op.group_name)

    def _busy_nodes(self) -> set[str]:
        """The nodes another job holds exclusively (what --no-strict skips)."""
        owners = self.ctx.glm.list_owners()
        return {key.split("/", 1)[1] for key, lock in owners.items()
                if key.startswith("node/") and lock["mode"] == "exclusive"}

    def exec(self):
        data = self.cfg.snapshot()
        busy = set() if self.op.is_strict else self._busy_nodes()
        rows = []
        for inst in sorted(data.instances.values(), key=lambda i: i["name"]):
            if not inst.get("secondary_nodes") or not storage.get(inst.disk_template).mirrored:
                continue
            if self.group is not None and data.nodes[inst.primary_node]["group"] != self.group:
                continue
            if busy & {inst.primary_node, *inst.secondary_nodes}:
                self.feedback(f"instance {inst['name']}: skipped, its nodes are busy with another job")
                continue
            if data.nodes[inst.primary_node]["offline"]:
                self.feedback(f"instance {inst['name']}: primary node {inst['primary_node']} is offline")
                rows += [[inst.name, i, "unknown", "unknown"] for i in range(len(inst.disks))]
                continue
            before = self._states(inst)
            after = before
            if any(state != "in sync" for state in before) and inst.admin_state == "up":
                self.feedback(f"* activating the disks of {inst['name']}")
                try:
                    assemble_disks(self, inst)
                    self.rpc.blockdev_resync(inst.primary_node, inst.name, inst.disk_template, inst.disks,
                                             storage_params(self)).raise_on_error("mirroring to the secondary")
                    after = self._states(inst)
                except errors.GenericError as err:
                    self.feedback(f"Warning: instance {inst['name']}: {err}")
            for index, (was, now) in enumerate(zip(before, after)):
                if now != "in sync":
                    self.feedback(f"instance {inst['name']}: disk {index} is {now}")
                rows.append([inst.name, index, was, now])
        return rows

    def _states(self, inst: dict) -> list[str]:
        try:
            found = disk_status(self, inst)
        except errors.GenericError:
            return ["unknown"] * len(inst.disks)
        return [storage.sync_label(entry.mirror if entry else None) for entry in found]
