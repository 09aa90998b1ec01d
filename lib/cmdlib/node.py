"""Node logical units: add, remove, modify roles."""
from __future__ import annotations

import time

from genet import config, errors, netutils, opcodes, params, paths, ssl_utils
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.cluster_ha import refuse_store_member_change
from genet.cmdlib.node_maintenance import MaintenancePlan
from genet.locking import ALL_SET, Level
from genet.noded import PROTOCOL_VERSION


class LUNodeAdd(LogicalUnit):
    """Join a prepared node: it runs noded with the cluster certificate already."""
    OPCODE = opcodes.OpNodeAdd
    HPATH = "node-add"
    HTYPE = "NODE"

    def hooks_env(self):
        op = self.op
        return {"OP_TARGET": op.node_name, "NODE_NAME": op.node_name, "NODE_PIP": self.address,
                "NODE_SIP": op.secondary_ip, "MASTER_CAPABLE": op.master_capable, "VM_CAPABLE": op.vm_capable}

    def hooks_nodes(self):
        others = self.cfg.read(lambda d: sorted(n for n in d.nodes if n != self.op.node_name))
        return others, others

    def hooks_post_nodes(self, nodes):
        return [*nodes, self.op.node_name]

    def check_prereq(self):
        name = self.op.node_name
        existing = self.cfg.read(lambda d: d.nodes.get(name))
        if existing is not None and not self.op.readd:
            raise errors.OpPrereqError(f"node {name!r} is already in the cluster", errors.ECode.EXISTS)
        if existing is None and self.op.readd:
            raise errors.OpPrereqError(f"node {name!r} is not in the cluster, cannot re-add", errors.ECode.NOENT)
        if existing is not None and name == self.cfg.read(lambda d: d.cluster["master_node"]):
            raise errors.OpPrereqError("the master node cannot be re-added", errors.ECode.INVAL)
        self.group = None
        if self.op.group:
            groups = self.cfg.read(lambda d: {g["name"]: uuid for uuid, g in d.nodegroups.items()})
            if self.op.group not in groups:
                raise errors.OpPrereqError(f"node group {self.op.group!r} does not exist", errors.ECode.NOENT)
            self.group = groups[self.op.group]
        self.address = self.op.primary_ip or netutils.resolve(name)
        taken = self.cfg.read(lambda d: {n["primary_ip"]: n["name"] for n in d.nodes.values()})
        if taken.get(self.address, name) != name:
            raise errors.OpPrereqError(f"address {self.address} is already used by node {taken[self.address]!r}",
                                       errors.ECode.NOTUNIQUE)
        res = self.rpc.with_addresses({name: self.address}).node_info(name)
        if res.failed:
            raise errors.OpPrereqError(f"cannot contact node {name!r} at {self.address}: {res.fail_msg};"
                                       " is it prepared (noded running with the cluster certificate)?",
                                       errors.ECode.ENVIRON)
        info = res.payload
        if info["protocol"] != PROTOCOL_VERSION:
            raise errors.OpPrereqError(f"node {name!r} speaks protocol {info['protocol']}, "
                                       f"the master {PROTOCOL_VERSION}", errors.ECode.ENVIRON)
        if info["name"] != name:
            raise errors.OpPrereqError(f"node at {self.address} calls itself {info['name']!r}, not {name!r}",
                                       errors.ECode.ENVIRON)
        if info["cert"]["fingerprint"] != ssl_utils.cert_info(paths.cluster_cert())["fingerprint"]:
            raise errors.OpPrereqError(f"node {name!r} does not hold the cluster certificate", errors.ECode.ENVIRON)

    def exec(self):
        name = self.op.node_name

        def change(data):
            old = data.nodes.pop(name, None)
            node = config.add_node(data, name, self.address, self.op.secondary_ip,
                                   master_capable=self.op.master_capable is not False,
                                   vm_capable=self.op.vm_capable is not False, group=self.group)
            if old is not None:
                node.update(uuid=old["uuid"], ctime=old["ctime"], tags=old["tags"])
            node.update(ndparams=params.changed({}, self.op.ndparams or {}),
                        hv_state=self.op.hv_state or {}, disk_state=self.op.disk_state or {})
            return config.maintain_candidates(data)
        promoted = self.cfg.update(change)
        if name not in self.ctx.glm.names(Level.NODE):
            self.ctx.glm.add(Level.NODE, [name])
        for candidate in promoted:
            self.feedback(f"Promoted node {candidate} to master candidate")
            self.ctx.sync_new_candidate(candidate)
        self.feedback(f"Node {name} added ({self.address})")
        return {"name": name, "primary_ip": self.address, "promoted": promoted}


class LUNodeRemove(LogicalUnit):
    OPCODE = opcodes.OpNodeRemove
    HPATH = "node-remove"
    HTYPE = "NODE"

    def hooks_env(self):
        return {"OP_TARGET": self.op.node_name, "NODE_NAME": self.op.node_name}

    def hooks_nodes(self):
        others = self.cfg.read(lambda d: sorted(n for n in d.nodes if n != self.op.node_name))
        return others, others

    def check_prereq(self):
        node = self.node(self.op.node_name)
        if node["name"] == self.cfg.read(lambda d: d.cluster["master_node"]):
            raise errors.OpPrereqError("the master node cannot be removed; fail the master over first",
                                       errors.ECode.INVAL)
        users = self.cfg.read(lambda d: sorted(
            i["name"] for i in d.instances.values()
            if node["name"] in [i.get("primary_node")] + i.get("secondary_nodes", [])))
        if users:
            raise errors.OpPrereqError(f"node {node['name']!r} still holds instance(s) {', '.join(users)}",
                                       errors.ECode.WRONG_STATE)
        refuse_store_member_change(self.cfg.snapshot(), node, "remove")
        self.removed = node

    def exec(self):
        name = self.removed["name"]

        def change(data):
            del data.nodes[name]
            return config.maintain_candidates(data)
        promoted = self.cfg.update(change)
        self.ctx.glm.remove(Level.NODE, [name])
        for candidate in promoted:
            self.feedback(f"Promoted node {candidate} to master candidate")
            self.ctx.sync_new_candidate(candidate)
        if not self.removed["offline"]:
            res = self.rpc.with_addresses({name: self.removed["primary_ip"]}).leave_cluster(name)
            if res.failed:
                self.feedback(f"Warning: node {name} did not clean up: {res.fail_msg}")
        return True


# what gnt-node modify may change (each an OpNodeSetParams parameter)
SETTABLE = ("master_candidate", "offline", "drained", "master_capable", "vm_capable", "secondary_ip", "powered",
            "ndparams", "hv_state", "disk_state", "maintenance")


class LUNodeSetParams(LogicalUnit):
    OPCODE = opcodes.OpNodeSetParams
    HPATH = "node-modify"
    HTYPE = "NODE"

    def hooks_env(self):
        op = self.op
        return {"OP_TARGET": op.node_name, "MASTER_CANDIDATE": op.master_candidate, "OFFLINE": op.offline,
                "DRAINED": op.drained, "MASTER_CAPABLE": op.master_capable, "VM_CAPABLE": op.vm_capable,
                "MAINTENANCE": op.maintenance}

    def hooks_nodes(self):
        """The master and the node, unless the node is being set offline: that is done to
        nodes that do not answer (a dead node, instance HA), and its hooks would only wait."""
        nodes = [self.master_node()] + ([] if self.op.offline else [self.op.node_name])
        return nodes, nodes

    def expand_names(self):
        self.needed_locks[Level.NODE] = [self.op.node_name]
        if self.op.maintenance:     # its moves may take any instance to any node, without stopping the cluster
            self.REQ_BGL = False
            self.needed_locks[Level.INSTANCE] = ALL_SET
            self.lock_all_nodes()

    def check_prereq(self):
        op = self.op
        node = self.node(op.node_name)
        self.maintenance = None
        self.check_maintenance(node)
        flags = [f for f in ("master_candidate", "offline", "drained") if getattr(op, f) is True]
        if len(flags) > 1:
            raise errors.OpPrereqError(f"only one of master_candidate, offline and drained can be true,"
                                       f" got {', '.join(flags)}", errors.ECode.INVAL)
        if all(getattr(op, f) is None for f in SETTABLE):
            raise errors.OpPrereqError("no changes requested", errors.ECode.INVAL)
        data = self.cfg.draft()     # draft_check applies the change to it
        group = data.nodegroups.get(node["group"], {})
        own = params.changed(node.get("ndparams", {}), op.ndparams or {})
        if op.powered is not None and not params.ndparams(data, group, own)["oob_program"]:
            raise errors.OpPrereqError(f"node {node['name']!r} has no out-of-band program (node parameter"
                                       " oob_program): its power state is not genet's to record", errors.ECode.INVAL)
        is_master = node["name"] == data.cluster["master_node"]
        if is_master and (op.master_candidate is False or op.offline or op.drained or op.master_capable is False):
            raise errors.OpPrereqError(f"the master node {node['name']!r} cannot be demoted, drained or"
                                       " set offline; fail the master over first", errors.ECode.INVAL)
        if op.master_candidate is False or op.master_capable is False:
            refuse_store_member_change(data, node, "demote")
        if op.master_candidate and (node["offline"] and op.offline is not False
                                    or node["drained"] and op.drained is not False
                                    or not node["master_capable"] and not op.master_capable):
            raise errors.OpPrereqError(f"node {node['name']!r} is offline, drained or not master capable;"
                                       " it cannot become a candidate", errors.ECode.WRONG_STATE)
        self.draft_check(data)
        if op.maintenance:
            self.maintenance = MaintenancePlan(self, node["name"], op.maintenance_secondaries == "move")

    def check_maintenance(self, node: dict) -> None:
        """--maintenance drains and undrains by itself, so it comes alone among the role flags; a
        node in maintenance stays drained until its maintenance ends."""
        op = self.op
        if op.maintenance_secondaries == "move" and not op.maintenance:
            raise errors.OpPrereqError("--maintenance-secondaries move goes with --maintenance yes",
                                       errors.ECode.INVAL)
        flags = [f for f in ("master_candidate", "offline", "drained") if getattr(op, f) is not None]
        if op.maintenance is not None and flags:
            raise errors.OpPrereqError(f"--maintenance sets the drained flag itself; give {', '.join(flags)}"
                                       " in another modify", errors.ECode.INVAL)
        if node["maintenance"] and op.drained is False:
            raise errors.OpPrereqError(f"node {node['name']!r} is in maintenance; end it with --maintenance no",
                                       errors.ECode.WRONG_STATE)
        if op.maintenance and node["name"] == self.master_node():
            raise errors.OpPrereqError(f"the master node {node['name']!r} cannot be put in maintenance; fail the"
                                       " master over first (gnt-cluster master-failover on another node)",
                                       errors.ECode.INVAL)
        if op.maintenance and node["offline"]:
            raise errors.OpPrereqError(f"node {node['name']!r} is offline: bring it online before maintenance",
                                       errors.ECode.WRONG_STATE)

    def _apply(self, data: dict) -> None:
        node = data.nodes[self.op.node_name]
        for flag in ("offline", "drained", "master_capable", "vm_capable", "secondary_ip", "powered"):
            value = getattr(self.op, flag)
            if value is not None:
                node[flag] = value
        if self.op.maintenance is not None:    # recorded as in maintenance once it is empty (exec)
            node["drained"] = self.op.maintenance
            node["maintenance"] = node["maintenance"] and self.op.maintenance
        for key, merge in (("ndparams", params.changed), ("hv_state", params.changed_per_name),
                           ("disk_state", params.changed_per_name)):
            if getattr(self.op, key):
                node[key] = merge(node[key], getattr(self.op, key))
        if self.op.master_candidate is not None:
            node["master_candidate"] = self.op.master_candidate
        if node["offline"] or node["drained"] or not node["master_capable"]:
            node["master_candidate"] = False
        node["mtime"] = time.time()
        node["serial_no"] += 1

    def draft_check(self, data: dict) -> None:
        """Refuse a demotion that leaves fewer candidates than wanted, unless promoting others."""
        before = len(config.candidates(data))
        self._apply(data)
        eligible = sum(1 for n in data.nodes.values()
                       if n["master_capable"] and not n["offline"] and not n["drained"])
        wanted = min(data.cluster["candidate_pool_size"], eligible)
        after = len(config.candidates(data))
        if after < before and after < wanted and not (self.op.auto_promote or self.op.force):
            raise errors.OpPrereqError(
                f"not enough master candidates (desired {wanted}, new value will be {after});"
                " use --auto-promote to promote other nodes", errors.ECode.WRONG_STATE)

    def exec(self):
        def change(data):
            self._apply(data)
            if not (self.op.auto_promote or self.op.offline is False or self.op.drained is False
                    or self.op.maintenance is False):
                return []
            # a node explicitly demoted stays demoted; others fill the pool
            keep_out = frozenset([self.op.node_name]) if self.op.master_candidate is False else frozenset()
            return config.maintain_candidates(data, keep_out)
        promoted = self.cfg.update(change)
        if self.op.offline:
            self.feedback(f"Node {self.op.node_name} marked offline: it no longer counts for the majority")
        result = []
        for flag in SETTABLE:
            value = getattr(self.op, flag)
            if isinstance(value, dict):
                result += [[f"{flag}/{key}", str(item)] for key, item in sorted(value.items())]
            elif value is not None:
                result.append([flag, str(value)])
        if self.op.offline is False:
            self.ctx.excluded.discard(self.op.node_name)
        if self.op.master_candidate:
            promoted.append(self.op.node_name)
        for candidate in promoted:
            self.ctx.sync_new_candidate(candidate)
        if self.maintenance is not None:
            self.enter_maintenance()
        return result

    def enter_maintenance(self) -> None:
        """The drained node is emptied, then recorded as in maintenance; a move that fails leaves
        it drained (nothing new lands there), the moves before it done."""
        name = self.op.node_name
        self.feedback(f"Node {name} drained; moving its instances away")
        try:
            self.maintenance.run()
        except errors.OpExecError as err:
            raise errors.OpExecError(f"maintenance of node {name} stopped: {err.args[0]}; the node stays drained,"
                                     " run gnt-node modify --maintenance yes again once the cause is fixed") from None

        def change(data):
            node = data.nodes[name]
            node.update(maintenance=True, mtime=time.time(), serial_no=node["serial_no"] + 1)
        self.cfg.update(change)
        self.feedback(f"Node {name} is in maintenance")
