"""Changing an instance: parameters, disks and NICs (hot-plugged into a running guest)."""
from __future__ import annotations

import uuid as uuidlib

from genet import errors, opcodes, params
from genet.cmdlib.common import (InstanceLU, check_beparams, check_hvparams, instance_of, is_running,
                                 refuse_forthcoming)
from genet.cmdlib.instance_create import check_file_options
from genet.cmdlib.instance_state import OsChange, StateChange
from genet.cmdlib.hooks_env import instance_env
from genet.cmdlib.instance_policy import check_allocation, check_target_node, check_template_allowed
from genet.cmdlib.disks import (assemble_disks, create_disk_on, give_logical_ids, remove_all_disks, shutdown_disks,
                                wait_for_sync, wipe_disks)
from genet.cmdlib.nics import make_nics, release_nic_ips, reserve_nic_ips
from genet.ipolicy import InstanceSpec
from genet.locking import Level
from genet.storage import base as storage


class LUInstanceSetParams(InstanceLU):
    """Ganeti's modify; disk and NIC changes reach a running guest by hot-plugging."""
    OPCODE = opcodes.OpInstanceSetParams
    HPATH = "instance-modify"

    def hooks_env(self):
        """Ganeti's: the memory, CPUs and NICs as they will be, the new template and runtime memory."""
        env = instance_env(self, self.inst, beparams=self.changed_beparams, nics=self.nics_after)
        if self.op.disk_template:
            env["NEW_DISK_TEMPLATE"] = self.op.disk_template
        if self.op.runtime_mem:
            env["RUNTIME_MEMORY"] = self.op.runtime_mem
        return env

    def declare_locks(self, level):
        super().declare_locks(level)
        for node in (self.op.remote_node, self.op.pnode):
            if level == Level.NODE and node:
                self.node(node)
                self.needed_locks[Level.NODE] = sorted({*self.needed_locks[Level.NODE], node})

    def check_prereq(self):
        op = self.op
        if op.pnode and op.force:        # the old primary may be gone for good: it is not asked
            self.inst = instance_of(self, op.instance_name)
            refuse_forthcoming(self.inst)
        else:
            super().check_prereq()
        inst = self.inst
        if not (op.beparams or op.hvparams or op.disks or op.nics or op.disk_template or op.offline is not None
                or op.runtime_mem or op.pnode or op.os_name or op.osparams is not None
                or op.osparams_private is not None or op.ext_params or op.file_driver or op.file_storage_dir):
            raise errors.OpPrereqError("no changes requested", errors.ECode.INVAL)
        if op.ext_params:
            raise errors.OpPrereqError("genet has no ExtStorage disk template: there are no ExtStorage"
                                       " parameters (-e/--ext-params) to change", errors.ECode.INVAL)
        check_file_options(op.file_storage_dir, op.file_driver, op.disk_template)
        self.state = StateChange(self, inst)
        if op.disk_template:
            from genet.cmdlib.convert import check_conversion
            check_conversion(self, inst, op.disk_template, op.remote_node)
        elif op.remote_node:
            raise errors.OpPrereqError("-n (remote_node) is only used with -t (a disk template conversion)",
                                       errors.ECode.INVAL)
        self.mirrored = storage.get(inst.disk_template).mirrored
        if op.disks and self.mirrored:
            self._check_mirrored_changes()
        # recorded: the instance's own parameters with the changes ("default" drops one); checked:
        # what then applies
        own = instance_of(self, inst.name, filled=False)
        self.beparams = params.changed(own.beparams, params.normalised_beparams(op.beparams))
        self.hvparams = params.changed(own.hvparams, op.hvparams)
        changed = own.replace(beparams=self.beparams, hvparams=self.hvparams)
        self.changed_beparams = self.cfg.read(lambda d: params.beparams(d, changed))
        self.state.check_memory(check_beparams(self.changed_beparams))
        self.os = OsChange(self, own)
        check_hvparams(inst.hypervisor, self.cfg.read(lambda d: params.hvparams(d, changed)))
        if (op.disks or op.nics) and not op.hotplug and is_running(self, inst):
            raise errors.OpPrereqError(f"instance {inst['name']} is running and --no-hotplug was given:"
                                       " stop it before changing disks or NICs", errors.ECode.WRONG_STATE)
        self.running = bool(op.disks or op.nics) and is_running(self, inst)
        if op.disks and not storage.TEMPLATES.cls(inst.disk_template).needs_disks:
            raise errors.OpPrereqError(f"instance {inst['name']} is {inst['disk_template']}", errors.ECode.WRONG_STATE)
        self._check_changes("disk", op.disks, len(inst.disks))
        self._check_changes("nic", op.nics, len(inst.nics))
        self.new_nics = make_nics(self.cfg.snapshot(), [p for a, _, p in op.nics if a == "add"], inst.primary_node)
        self.nics_after = [dict(nic) for nic in inst.nics]      # for the hooks, as they will be
        added = iter(self.new_nics)
        for action, index, _ in op.nics:
            if action == "add":
                self.nics_after.append(next(added))
            else:
                self.nics_after.pop(index)
        self._check_policy()

    def _check_policy(self) -> None:
        """Ganeti's: the instance as it will be meets its group's policy, with its maxmem and with
        its minmem; a conversion's new template must be allowed there, and its new secondary
        node, in another group, meet that group's policy."""
        op, inst = self.op, self.inst
        data = self.cfg.snapshot()
        primary = op.pnode or inst.primary_node
        if op.disk_template:
            if op.remote_node and storage.TEMPLATES.cls(op.disk_template).mirrored:
                check_target_node(self, data, inst, op.remote_node, op.ignore_ipolicy)
            check_template_allowed(data, primary, op.disk_template)
        sizes = [disk["size"] for disk in inst.disks]
        for action, index, spec in op.disks:
            if action == "add":
                sizes.append(spec["size"])
            else:
                sizes.pop(index)
        template = op.disk_template or inst.disk_template
        be = self.changed_beparams
        specs = [InstanceSpec(memory=be[memory], cpus=be["vcpus"], disk_sizes=tuple(sizes),
                              nic_count=len(self.nics_after), spindle_use=be["spindle_use"],
                              disk_templates=(template,) * len(sizes)) for memory in ("maxmem", "minmem")]
        check_allocation(self, data, primary, specs, op.ignore_ipolicy)

    def _check_mirrored_changes(self) -> None:
        """A mirrored disk is added or removed on both nodes, as a raw image."""
        inst = self.inst
        for node in inst.secondary_nodes:
            if self.node(node)["offline"]:
                raise errors.OpPrereqError(f"the secondary node {node} of {inst['name']} is offline: disks cannot"
                                           " be added or removed there", errors.ECode.WRONG_STATE)
        for action, _, spec in self.op.disks:
            if action == "add" and spec.get("format", "raw") != "raw":
                raise errors.OpPrereqError(f"{inst['disk_template']} disks are raw images, not"
                                           f" {spec['format']}", errors.ECode.INVAL)

    @staticmethod
    def _check_changes(kind: str, mods: list, count: int) -> None:
        """Replay the changes on the count, so every removal refers to a device that will exist."""
        limit = {"disk": 16, "nic": 8}[kind]
        for action, index, _ in mods:
            if action == "add":
                count += 1
                if count > limit:
                    raise errors.OpPrereqError(f"an instance can have at most {limit} {kind}s", errors.ECode.INVAL)
            elif count == 0 or not -1 <= index < count:
                raise errors.OpPrereqError(f"there is no {kind} {index} to remove", errors.ECode.INVAL)
            else:
                count -= 1

    def exec(self):
        inst = self.inst
        changes = self.state.apply() + self.os.apply()
        name = inst.name
        if self.op.beparams or self.op.hvparams:
            def set_params(data):
                target = data.instances[name]
                target["beparams"], target["hvparams"] = self.beparams, self.hvparams
            self.cfg.update(set_params)
            changes += [[f"be/{k}", v] for k, v in sorted(self.op.beparams.items())]
            changes += [[f"hv/{k}", v] for k, v in sorted(self.op.hvparams.items())]
        nics = iter(self.new_nics)
        for kind, mods in (("disk", self.op.disks), ("nic", self.op.nics)):
            for action, index, spec in mods:
                current = self.cfg.read(lambda d: [dict(x) for x in d.instances[name][f"{kind}s"]])
                if action == "add":
                    index = len(current)
                    device = self._new_disk(spec) if kind == "disk" else next(nics)
                    self._add(kind, index, device, current)
                else:
                    index = len(current) - 1 if index == -1 else index
                    self._remove(kind, index, current[index])
                changes.append([f"{kind}/{index}", action])
        if self.op.disk_template:
            from genet.cmdlib.convert import convert
            changes += convert(self, self.inst, self.op.disk_template, self.op.remote_node)
        return changes

    @staticmethod
    def _new_disk(spec: dict) -> dict:
        return {"uuid": str(uuidlib.uuid4()), "size": spec["size"], "mode": spec.get("mode", "rw"),
                "format": spec.get("format", "raw"), "name": spec.get("name")}

    def _add(self, kind: str, index: int, device: dict, current: list[dict]) -> None:
        inst, node = self.inst, self.inst.primary_node
        plugged = device
        if kind == "disk":
            plugged = self._create_disk(index, device, current)
        if self.running:
            try:
                self.rpc.instance_hotplug(node, inst.name, inst.hypervisor, kind, "add", index,
                                          plugged).raise_on_error(f"hot-plugging {kind} {index}")
            except errors.OpExecError:
                if kind == "disk":
                    remove_all_disks(self, inst.replace(disks=[device]), first=index)
                raise
            self.feedback(f"* {kind} {index} hot-plugged into the running guest")
        def add(data):
            if kind == "nic":
                reserve_nic_ips(data, [device])
            data.instances[inst.name][f"{kind}s"].append(device)
        self.cfg.update(add)

    def _create_disk(self, index: int, device: dict, current: list[dict]) -> dict:
        """The new disk on the primary; a mirrored one also on the secondary, assembled and
        synced (Ganeti waits for the sync too). Returns how the guest opens it."""
        inst = self.inst
        if not self.mirrored:
            access = create_disk_on(self, inst.primary_node, inst.name, inst.disk_template, device, index)
            try:
                wipe_disks(self, inst, [inst.primary_node], [(index, device, 0)])
            except errors.GenericError:
                remove_all_disks(self, inst.replace(disks=[device]), first=index)
                raise
            return access
        give_logical_ids(self, inst.replace(disks=[*current, device]))     # sets device["logical_id"]
        new = inst.replace(disks=[device])
        try:
            for node in [*inst.secondary_nodes, inst.primary_node]:
                create_disk_on(self, node, inst.name, inst.disk_template, device, index)
            wipe_disks(self, inst, inst.all_nodes, [(index, device, 0)])
            # neither side has data yet: the first promotion is forced, as at creation
            [access] = assemble_disks(self, new, force=True, first=index)
        except errors.GenericError:
            remove_all_disks(self, new, first=index)
            raise
        try:
            if self.op.wait_for_sync:
                wait_for_sync(self, new, first=index)
        except errors.GenericError as err:
            self.feedback(f"Warning: disk {index} of {inst['name']} is not in sync yet: {err}")
        if not self.running:
            shutdown_disks(self, new, strict=False, first=index)      # its next start assembles it
        return access

    def _remove(self, kind: str, index: int, device: dict) -> None:
        inst, node = self.inst, self.inst.primary_node
        if self.running:
            self.rpc.instance_hotplug(node, inst.name, inst.hypervisor, kind, "remove", index,
                                      None).raise_on_error(f"unplugging {kind} {index}")
        def remove(data):
            removed = data.instances[inst.name][f"{kind}s"].pop(index)
            if kind == "nic":
                release_nic_ips(data, [removed])
        self.cfg.update(remove)
        if kind == "disk":
            failures = remove_all_disks(self, inst.replace(disks=[device]), first=index)
            if failures:
                raise errors.OpExecError(f"removing disk {index} of {inst['name']} failed: {'; '.join(failures)}")
