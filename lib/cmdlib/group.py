"""Node group logical units: add, remove, rename, modify, assign nodes.

A group is an entry of ``data.nodegroups`` (keyed by UUID); each node names its
group's UUID in ``node["group"]``. Groups keep only what they set themselves
(``ndparams``, ``diskparams``, ``ipolicy``); the query fills in the cluster's values.
Every LU here changes the configuration under the exclusive cluster lock.
"""
from __future__ import annotations

import json
import time
import uuid as uuidlib

from genet import errors, network_pool, opcodes, params
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import changed_ipolicy, checked_ipolicy
from genet.cmdlib.instance_policy import warn_of_new_violations

DEFAULT_ALLOC_POLICY = "preferred"


def group_by_name(data: dict, name: str) -> dict:
    """The group called ``name``; OpPrereqError (unknown_entity) if there is none."""
    for group in data.nodegroups.values():
        if group["name"] == name:
            return group
    raise errors.OpPrereqError(f"node group {name!r} does not exist", errors.ECode.NOENT)


def instance_nodes(inst: dict) -> list[str]:
    return [inst.get("primary_node")] + list(inst.get("secondary_nodes", []))


def instances_in_group(data: dict, group_uuid: str) -> list[dict]:
    """Instances with at least one node in the group, sorted by name."""
    members = {n["name"] for n in data.nodes.values() if n["group"] == group_uuid}
    return sorted((i for i in data.instances.values() if members & set(instance_nodes(i))),
                  key=lambda i: i["name"])


def add_object(lu: LogicalUnit, section: str, obj: dict, message: str) -> str:
    """Store a new group or network in its config section under its uuid; the uuid (the job's result)."""
    lu.cfg.update(lambda d: d[section].__setitem__(obj["uuid"], obj))
    lu.feedback(message)
    return obj["uuid"]


def touch(obj: dict) -> None:
    """A config object changed (group, node, network): its serial number counts up, its mtime is now."""
    obj["serial_no"] = obj.get("serial_no", 0) + 1
    obj["mtime"] = time.time()


class LUGroupAdd(LogicalUnit):
    """A new, empty group; nodes join it with assign-nodes or gnt-node add -g."""
    OPCODE = opcodes.OpGroupAdd
    HPATH, HTYPE = "group-add", "GROUP"

    def hooks_env(self):
        return {"GROUP_NAME": self.op.group_name}

    def hooks_nodes(self):
        return self.on_master()

    def check_prereq(self):
        name = self.op.group_name
        if self.cfg.read(lambda d: any(g["name"] == name for g in d.nodegroups.values())):
            raise errors.OpPrereqError(f"node group {name!r} already exists", errors.ECode.EXISTS)
        self.ipolicy = self.cfg.read(lambda d: group_ipolicy(d, {}, self.op.ipolicy or {}))

    def exec(self):
        op = self.op
        ts = time.time()
        group = {
            "name": op.group_name, "uuid": str(uuidlib.uuid4()),
            "alloc_policy": op.alloc_policy or DEFAULT_ALLOC_POLICY,
            "ndparams": params.changed({}, op.ndparams or {}),
            "diskparams": params.changed_per_name({}, op.diskparams or {}),
            "ipolicy": self.ipolicy, "hv_state": op.hv_state or {}, "disk_state": op.disk_state or {},
            "networks": {}, "tags": [], "ctime": ts, "mtime": ts, "serial_no": 1,
        }
        return add_object(self, "nodegroups", group, f"Node group {op.group_name} added")


class LUGroupRemove(LogicalUnit):
    OPCODE = opcodes.OpGroupRemove
    HPATH, HTYPE = "group-remove", "GROUP"

    def hooks_env(self):
        return {"GROUP_NAME": self.op.group_name}

    def hooks_nodes(self):
        return self.on_master()

    def check_prereq(self):
        def check(data):
            group = group_by_name(data, self.op.group_name)
            if len(data.nodegroups) == 1:
                raise errors.OpPrereqError(f"node group {group['name']!r} is the last node group; a cluster"
                                           " keeps at least one", errors.ECode.WRONG_STATE)
            nodes = sorted(n["name"] for n in data.nodes.values() if n["group"] == group["uuid"])
            if nodes:
                raise errors.OpPrereqError(
                    f"node group {group['name']!r} still has {len(nodes)} node(s): {', '.join(nodes)};"
                    " move them to another group first (gnt-group assign-nodes)", errors.ECode.WRONG_STATE)
            return group["uuid"]
        self.group_uuid = self.cfg.read(check)

    def exec(self):
        self.cfg.update(lambda d: d.nodegroups.pop(self.group_uuid))
        self.feedback(f"Node group {self.op.group_name} removed")
        return True


class LUGroupRename(LogicalUnit):
    OPCODE = opcodes.OpGroupRename
    HPATH, HTYPE = "group-rename", "GROUP"

    def hooks_env(self):
        return {"OLD_NAME": self.op.group_name, "NEW_NAME": self.op.new_name}

    def hooks_nodes(self):
        nodes = [self.master_node(), *self.cfg.read(lambda d: sorted(
            n for n, node in d.nodes.items() if node["group"] == self.group_uuid))]
        return nodes, nodes

    def check_prereq(self):
        def check(data):
            group = group_by_name(data, self.op.group_name)
            if any(g["name"] == self.op.new_name for g in data.nodegroups.values()):
                raise errors.OpPrereqError(f"cannot rename node group {group['name']!r}: a node group"
                                           f" {self.op.new_name!r} already exists", errors.ECode.EXISTS)
            return group["uuid"]
        self.group_uuid = self.cfg.read(check)

    def exec(self):
        def change(data):
            group = data.nodegroups[self.group_uuid]
            group["name"] = self.op.new_name
            touch(group)
        self.cfg.update(change)
        return self.op.new_name


def group_ipolicy(data, group: dict, changes: dict) -> dict:
    """The group's own policy after ``changes``, refused unless the policy it then has holds together.
    The cluster's standard specs need not lie within a group's own bounds (Ganeti checks them only
    on the cluster); standard specs the group sets itself must."""
    own = changed_ipolicy(group.get("ipolicy", {}), params.ipolicy(data, group), changes)
    policy = params.ipolicy(data, {"ipolicy": own})
    checked_ipolicy(policy if "std" in own else {key: value for key, value in policy.items() if key != "std"})
    return own


class LUGroupSetParams(LogicalUnit):
    OPCODE = opcodes.OpGroupSetParams
    HPATH, HTYPE = "group-modify", "GROUP"

    def hooks_env(self):
        return {"GROUP_NAME": self.op.group_name, "NEW_ALLOC_POLICY": self.op.alloc_policy}

    def hooks_nodes(self):
        return self.on_master()

    def check_prereq(self):
        op = self.op
        self.group_uuid = self.cfg.read(lambda d: group_by_name(d, op.group_name)["uuid"])
        settings = ("alloc_policy", "ndparams", "diskparams", "ipolicy", "hv_state", "disk_state")
        if all(getattr(op, key) is None for key in settings):
            raise errors.OpPrereqError(f"no changes requested: give at least one of {', '.join(settings)}",
                                       errors.ECode.INVAL)
        if op.ipolicy is not None:
            data = self.cfg.snapshot()
            group = data.nodegroups[self.group_uuid]
            self.ipolicy = group_ipolicy(data, group, op.ipolicy)
            warn_of_new_violations(self, data, data.replace(
                nodegroups={**data.nodegroups, self.group_uuid: group.replace(ipolicy=self.ipolicy)}))

    def exec(self):
        op = self.op
        changes: list[list[str]] = []

        def change(data):
            group = data.nodegroups[self.group_uuid]
            if op.alloc_policy is not None:
                group["alloc_policy"] = op.alloc_policy
                changes.append(["alloc_policy", op.alloc_policy])
            for key, merge in (("ndparams", params.changed), ("diskparams", params.changed_per_name),
                               ("ipolicy", lambda _own, _changes: self.ipolicy),
                               ("hv_state", params.changed_per_name), ("disk_state", params.changed_per_name)):
                value = getattr(op, key)
                if value is not None:
                    group[key] = merge(group.get(key, {}), value)
                    changes.append([key, json.dumps(group[key], sort_keys=True)])
            touch(group)
        self.cfg.update(change)
        return changes


class LUGroupAssignNodes(LogicalUnit):
    """Move nodes between groups; refuses to split an instance's nodes or cut it off its network."""
    OPCODE = opcodes.OpGroupAssignNodes

    def check_prereq(self):
        self.group_uuid, self.moving, already, problems = self.cfg.read(self._plan)
        if problems and not self.op.force:
            raise errors.OpPrereqError("; ".join(problems) + "; use --force to move the nodes anyway",
                                       errors.ECode.WRONG_STATE)
        for name in already:
            self.feedback(f"Node {name} is already in node group {self.op.group_name}")
        for problem in problems:
            self.feedback(f"Warning: {problem}")

    def _plan(self, data: dict) -> tuple[str, list[str], list[str], list[str]]:
        """The target group, the nodes that move, those already there, and what the move breaks."""
        target = group_by_name(data, self.op.group_name)
        unknown = [n for n in self.op.nodes if n not in data.nodes]
        if unknown:
            raise errors.OpPrereqError(f"node(s) not in the cluster: {', '.join(unknown)}", errors.ECode.NOENT)
        moving = sorted({n for n in self.op.nodes if data.nodes[n]["group"] != target["uuid"]})
        already = sorted(set(self.op.nodes) - set(moving))
        after = {n["name"]: (target["uuid"] if n["name"] in moving else n["group"]) for n in data.nodes.values()}
        problems = []
        for inst in sorted(data.instances.values(), key=lambda i: i["name"]):
            nodes = [n for n in instance_nodes(inst) if n in data.nodes]
            if not set(nodes) & set(moving):
                continue
            before_groups = {data.nodes[n]["group"] for n in nodes}
            after_groups = {after[n] for n in nodes}
            if len(after_groups) > 1 and len(before_groups) == 1:
                problems.append(f"instance {inst['name']} would have its nodes in different node groups")
            if inst.get("primary_node") in moving:
                for idx, nic in enumerate(inst.get("nics", [])):
                    net = network_pool.find_network(data, nic.get("network"))
                    if net is not None and net["uuid"] not in target.get("networks", {}):
                        problems.append(f"NIC {idx} of instance {inst['name']} uses network {net['name']},"
                                        f" which is not connected to node group {target['name']}")
        return target["uuid"], moving, already, problems

    def exec(self):
        def change(data):
            touched = {self.group_uuid}
            for name in self.moving:
                node = data.nodes[name]
                touched.add(node["group"])
                node["group"] = self.group_uuid
                touch(node)
            for uuid in touched:
                touch(data.nodegroups[uuid])
        if self.moving:
            self.cfg.update(change)
            self.feedback(f"Moved node(s) {', '.join(self.moving)} to node group {self.op.group_name}")
        return self.moving

