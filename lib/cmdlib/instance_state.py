"""The parts of gnt-instance modify that change no device: the admin state (offline, online),
the running guest's memory, the recorded primary node, the OS and its parameters. Each is
checked when built and applied by ``apply``, which returns Ganeti's list of changes."""
from __future__ import annotations

import time

from genet import errors, params
from genet.cmdlib.common import check_node_online, check_os, free_memory, is_running
from genet.osinterface import split_name

REDACTED = "<redacted>"       # how Ganeti shows a private parameter's value
NEW_PRIMARY_TEMPLATES = ("file", "sharedfile")     # disks an admin can move by hand


def _record(lu, name: str, **changes) -> None:
    def change(data):
        target = data.instances[name]
        target.update(changes)
        target["serial_no"] += 1
        target["mtime"] = time.time()
    lu.cfg.update(change)


class StateChange:
    """--offline/--online, -m/--runtime-memory and --new-primary (Ganeti's rules for each)."""

    def __init__(self, lu, inst):
        self.lu, self.inst, self.op = lu, inst, lu.op
        self.running = None
        if self.op.offline is not None:
            self._check_offline()
        if self.op.pnode:
            self._check_new_primary()

    def _runs(self) -> bool:
        if self.running is None:
            self.running = is_running(self.lu, self.inst)
        return self.running

    def _check_offline(self) -> None:
        inst, state = self.inst, self.inst.admin_state
        if not self.op.offline:
            if state != "offline":
                raise errors.OpPrereqError(f"Instance '{inst.name}' is marked to be {state}, not offline:"
                                           " --online applies to offline instances only", errors.ECode.WRONG_STATE)
            return
        if state == "up":
            raise errors.OpPrereqError(f"Instance '{inst.name}' is marked to be up, cannot change instance state"
                                       " to offline (shut it down first)", errors.ECode.WRONG_STATE)
        if self._runs():
            raise errors.OpPrereqError(f"Instance '{inst.name}' is running on {inst.primary_node}, cannot change"
                                       " instance state to offline", errors.ECode.WRONG_STATE)

    def _check_new_primary(self) -> None:
        inst, new = self.inst, self.op.pnode
        if inst.disk_template not in NEW_PRIMARY_TEMPLATES:
            raise errors.OpPrereqError(f"--new-primary is for {' and '.join(NEW_PRIMARY_TEMPLATES)} instances,"
                                       f" whose disks can be moved by hand; a {inst.disk_template} instance moves"
                                       " with migrate, failover or move", errors.ECode.INVAL)
        if new == inst.primary_node:
            raise errors.OpPrereqError(f"{new} is already the primary node of {inst.name}", errors.ECode.INVAL)
        if not check_node_online(self.lu, new)["vm_capable"]:
            raise errors.OpPrereqError(f"node {new} is not vm capable", errors.ECode.WRONG_STATE)
        if inst.admin_state == "up":
            raise errors.OpPrereqError(f"Instance '{inst.name}' is marked to be up, cannot change its primary"
                                       " node (shut it down first)", errors.ECode.WRONG_STATE)
        if not self.op.force and self._runs():
            raise errors.OpPrereqError(f"instance {inst.name} still runs on {inst.primary_node}, cannot change"
                                       " its primary node", errors.ECode.WRONG_STATE)

    def check_memory(self, beparams: dict) -> None:
        """Ganeti's runtime memory: a running instance, within minmem..maxmem (unless --force),
        and the node's free memory for any growth."""
        mem, inst = self.op.runtime_mem, self.inst
        if not mem:
            return
        if self.op.offline or self.op.pnode:
            raise errors.OpPrereqError("-m/--runtime-memory changes a running instance: not together with"
                                       " --offline or --new-primary", errors.ECode.INVAL)
        info = self.lu.rpc.instance_info(inst.primary_node, inst.name, inst.hypervisor) \
            .raise_on_error(f"asking {inst.primary_node} about {inst.name}")
        if not info or info.get("state") != "running":
            raise errors.OpPrereqError(f"Instance {inst.name} is not running", errors.ECode.WRONG_STATE)
        if not self.op.force and not beparams["minmem"] <= mem <= beparams["maxmem"]:
            raise errors.OpPrereqError(f"Instance {inst.name} must have memory between {beparams['minmem']} and"
                                       f" {beparams['maxmem']} MiB unless --force is given", errors.ECode.INVAL)
        grow = mem - int(info["memory"])
        if grow > 0:
            free = free_memory(self.lu, inst.primary_node, inst.hypervisor)
            if free < grow:
                raise errors.OpPrereqError(f"not enough memory on node {inst.primary_node} for ballooning"
                                           f" {inst.name}: needed {grow} MiB, free {free} MiB", errors.ECode.NORES)

    def apply(self) -> list[list]:
        op, inst, changes = self.op, self.inst, []
        if op.offline is not None:
            state = "offline" if op.offline else "down"
            _record(self.lu, inst.name, admin_state=state)
            changes.append(["admin_state", state])
        if op.pnode:
            _record(self.lu, inst.name, primary_node=op.pnode)
            changes.append(["primary_node", op.pnode])
        if op.runtime_mem:
            self.lu.rpc.instance_balloon_memory(inst.primary_node, inst.name, inst.hypervisor, op.runtime_mem) \
                .raise_on_error("Cannot modify instance runtime memory")
            changes.append(["runtime_memory", op.runtime_mem])
        return changes


class OsChange:
    """-o/--os-type (recorded, no reinstall), -O and --os-parameters-private, checked on the
    primary node with the parameters the scripts would get."""

    def __init__(self, lu, own):
        self.lu, self.own, op = lu, own, lu.op
        self.name = op.os_name or own.os
        self.osparams = params.changed(own.get("osparams", {}), op.osparams or {})
        self.private = params.changed(own.get("osparams_private", {}), op.osparams_private or {})
        if not (op.os_name or op.osparams is not None or op.osparams_private is not None) or op.force:
            return
        checked = split_name(self.name)[0] if op.force_variant else self.name
        check_os(lu, own.primary_node, checked, {**self.osparams, **self.private})

    def apply(self) -> list[list]:
        op, changes = self.lu.op, []
        if op.os_name:
            changes.append(["os", op.os_name])
        changes += [[f"os/{key}", value] for key, value in sorted((op.osparams or {}).items())]
        changes += [[f"os_private/{key}", REDACTED] for key in sorted(op.osparams_private or {})]
        if changes:
            _record(self.lu, self.own.name, os=self.name, osparams=self.osparams, osparams_private=self.private)
        return changes
