"""The storage of nodes: their storage units (list, modify, repair), logical volumes and DRBD
minors, and each disk template's state on every node (gnt-storage), as Ganeti's node LUs.

Units are listed, changed and repaired by the nodes (genet.storage.units, over the node RPC);
which instance a volume or minor belongs to comes from the config.
"""
from __future__ import annotations

from genet import config, drbd_pool, errors, opcodes
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import check_node_online, storage_params
from genet.cmdlib.disks import disk_status
from genet.locking import Level
from genet.query.common import nice_key
from genet.rpc_defs import LDS_FAULTY
from genet.storage import base as templates
from genet.storage import units

VOLUME_FIELDS = ("node", "phys", "vg", "name", "size", "instance")
DIAGNOSE_FIELDS = ("name", "node_status", "nodegroup_status", "parameters")


def check_fields(selected: list[str], known: tuple[str, ...]) -> None:
    unknown = [f for f in selected if f not in known]
    if unknown:
        raise errors.OpPrereqError(f"Unknown output fields selected: {','.join(unknown)}", errors.ECode.INVAL)


class NodesQueryLU(LogicalUnit):
    """Asks the nodes ``op.nodes`` names (every node when none), each lock shared; offline nodes
    are skipped and a node that fails is warned about, as in Ganeti."""
    REQ_BGL = False

    def expand_names(self):
        if self.op.nodes:
            self.needed_locks[Level.NODE] = [self.node(name)["name"] for name in self.op.nodes]
            self.share_locks[Level.NODE] = True
        else:
            self.lock_all_nodes()

    def asked(self) -> dict[str, str]:
        """The online nodes asked, with their addresses (each checked to exist)."""
        names = self.op.nodes or self.cfg.read(lambda d: list(d.nodes))
        nodes = [self.node(name) for name in names]
        return {n["name"]: n["primary_ip"] for n in nodes if not n["offline"]}

    def answers(self, results: dict, what: str) -> list[tuple[str, object]]:
        """(node, payload) of the nodes that answered, in Ganeti's natural order."""
        out = []
        for node in sorted(results, key=nice_key):
            if results[node].failed:
                self.feedback(f"Warning: Can't get {what} from node {node}: {results[node].fail_msg}")
                continue
            out.append((node, results[node].payload))
        return out


class LUNodeQueryStorage(NodesQueryLU):
    OPCODE = opcodes.OpNodeQueryStorage

    def check_prereq(self):
        check_fields(self.op.output_fields, units.VALID_FIELDS)
        cluster = self.cfg.read(lambda d: d.cluster)
        if self.op.storage_type:
            units.check_enabled(cluster, self.op.storage_type)
            self.storage_type = self.op.storage_type
        else:
            self.storage_type = units.default_type(cluster)
            if self.storage_type not in units.names():
                raise errors.OpPrereqError(
                    f"Storage reporting for storage type '{self.storage_type}' is not supported. Please use the"
                    f" --storage-type option to specify one of the supported storage types"
                    f" ({', '.join(units.names())}) or set the default disk template to one that supports storage"
                    " reporting.", errors.ECode.INVAL)
        self.nodes = self.asked()

    def exec(self):
        asked = ["name"] + [f for f in self.op.output_fields if f in units.FIELDS and f != "name"]
        results = self.rpc.storage_list.on(self.nodes, self.storage_type, storage_params(self), self.op.name, asked)
        rows = []
        for node, payload in self.answers(results, "storage data"):
            for unit in sorted(payload, key=lambda row: nice_key(row[0])):
                values = dict(zip(asked, unit), node=node, type=self.storage_type)
                rows.append([values[f] for f in self.op.output_fields])
        return rows


class StorageUnitLU(LogicalUnit):
    """Acts on one storage unit of one node, which it locks."""
    REQ_BGL = False

    def expand_names(self):
        self.needed_locks[Level.NODE] = [self.node(self.op.node_name)["name"]]

    def check_unit(self, allowed: frozenset[str], asked: set[str], verb: str) -> None:
        """The node is known and online, the type enabled and ``asked`` among what it ``allowed``."""
        if not allowed:
            raise errors.OpPrereqError(f"Storage units of type '{self.op.storage_type}' can not be {verb}",
                                       errors.ECode.INVAL)
        refused = sorted(asked - allowed)
        if refused:
            raise errors.OpPrereqError(f"The following fields can not be modified for storage units of type"
                                       f" '{self.op.storage_type}': {refused!r}", errors.ECode.INVAL)
        units.check_enabled(self.cfg.read(lambda d: d.cluster), self.op.storage_type)
        check_node_online(self, self.op.node_name)


class LUNodeModifyStorage(StorageUnitLU):
    OPCODE = opcodes.OpNodeModifyStorage

    def check_prereq(self):
        self.check_unit(units.UNIT_TYPES.cls(self.op.storage_type).MODIFIABLE, set(self.op.changes), "modified")
        if not isinstance(self.op.changes.get("allocatable", False), bool):
            raise errors.OpPrereqError("allocatable must be a boolean", errors.ECode.INVAL)

    def exec(self):
        self.rpc.storage_modify(
            self.op.node_name, self.op.storage_type, storage_params(self), self.op.name, self.op.changes,
        ).raise_on_error(f"Failed to modify storage unit '{self.op.name}' on {self.op.node_name}")
        return None


class LURepairNodeStorage(StorageUnitLU):
    OPCODE = opcodes.OpRepairNodeStorage

    def check_prereq(self):
        operations = units.UNIT_TYPES.cls(self.op.storage_type).OPERATIONS & {units.FIX_CONSISTENCY}
        self.check_unit(operations, set(), "repaired")
        for inst, node in self._mirror_peers():
            self._check_peer(inst, node)

    def _mirror_peers(self) -> list[tuple[dict, str]]:
        """The running instances with disks on this node and a copy on another: (instance, that node)."""
        def read(data):
            return [(inst, node) for inst in data.instances.values() if inst.admin_state == "up"
                    and self.op.node_name in inst.all_nodes for node in inst.all_nodes if node != self.op.node_name]
        return self.cfg.read(read)

    def _check_peer(self, inst: dict, node: str) -> None:
        """Ganeti's check: the copies on the other node must be sound, as this node's may go."""
        try:
            found = disk_status(self, inst, node)
            faulty = [str(i) for i, st in enumerate(found) if st is None or st.ldisk_status == LDS_FAULTY]
            why = f"disk(s) {','.join(faulty)}"
        except errors.GenericError as err:
            faulty, why = ["?"], str(err)
        if faulty:
            message = f"Instance '{inst['name']}' has faulty disks on node '{node}' ({why})"
            if not self.op.ignore_consistency:
                raise errors.OpPrereqError(message, errors.ECode.WRONG_STATE)
            self.feedback(f"Warning: {message}")

    def exec(self):
        self.feedback(f"Repairing storage unit '{self.op.name}' on {self.op.node_name} ...")
        self.rpc.storage_execute(
            self.op.node_name, self.op.storage_type, storage_params(self), self.op.name, units.FIX_CONSISTENCY,
        ).raise_on_error(f"Failed to repair storage unit '{self.op.name}' on {self.op.node_name}")
        return None


class LUNodeQueryvols(NodesQueryLU):
    OPCODE = opcodes.OpNodeQueryvols

    def check_prereq(self):
        check_fields(self.op.output_fields, VOLUME_FIELDS)
        self.nodes = self.asked()

    def exec(self):
        params = storage_params(self)
        results = self.rpc.node_volumes.on(self.nodes, params)
        owners = self.cfg.read(lambda data: volume_owners(data, params))
        rows = []
        for node, payload in self.answers(results, "volume data"):
            for vol in sorted(payload, key=lambda v: v["dev"]):
                values = {"node": node, "phys": vol["dev"], "vg": vol["vg"], "name": vol["name"],
                          "size": vol["size"], "instance": owners.get((node, f"{vol['vg']}/{vol['name']}"), "-")}
                rows.append([str(values[f]) for f in self.op.output_fields])
        return rows


def volume_owners(data, params: dict) -> dict[tuple[str, str], str]:
    """(node, "VG/LV") -> the instance whose disk it holds, from each template's logical_volumes()."""
    owners = {}
    for inst in data.instances.values():
        template = templates.get(inst.disk_template, params)
        for disk in inst.disks:
            for node, volume in template.logical_volumes(inst.primary_node, disk):
                owners[(node, volume)] = inst.name
    return owners


class LUNodeQueryDrbd(LogicalUnit):
    """Ganeti answers list-drbd from the config (confd): so does this, from the DRBD pool's view."""
    OPCODE = opcodes.OpNodeQueryDrbd
    REQ_BGL = False

    def check_prereq(self):
        self.node(self.op.node_name)

    def exec(self):
        node = self.op.node_name

        def read(data):
            rows = []
            for inst, index, lid in drbd_pool.drbd_disks(data):
                if "minors" not in lid or node not in lid["nodes"]:
                    continue
                here = lid["nodes"].index(node)
                role = "primary" if data.instances[inst].primary_node == node else "secondary"
                rows.append([node, lid["minors"][here], inst, index, role, lid["nodes"][1 - here]])
            return sorted(rows)
        return self.cfg.read(read)


class LUExtStorageDiagnose(LogicalUnit):
    """Ganeti's ExtStorage providers are genet's disk templates: each one's state on every node."""
    OPCODE = opcodes.OpExtStorageDiagnose
    REQ_BGL = False

    def expand_names(self):
        self.lock_all_nodes()

    def check_prereq(self):
        check_fields(self.op.output_fields, DIAGNOSE_FIELDS)

    def exec(self):
        data = self.cfg.snapshot()
        online = {n["name"]: n["primary_ip"] for n in data.nodes.values() if not n["offline"]}
        results = self.rpc.storage_diagnose.on(online, config.storage_params(data))
        reports: dict[str, dict[str, list]] = {}
        for node, res in results.items():
            if res.failed:
                self.feedback(f"Warning: node {node} did not report its storage: {res.fail_msg}")
                continue
            for name, where, usable, why in res.payload:
                reports.setdefault(name, {})[node] = [where, usable, why]
        groups = {g["name"]: [n["name"] for n in data.nodes.values() if n["group"] == uuid and not n["offline"]]
                  for uuid, g in data.nodegroups.items()}
        rows = []
        for name in templates.names():
            if self.op.names and name not in self.op.names:
                continue
            settings = templates.TEMPLATES.cls(name).SETTINGS
            parameters = [[key, f"cluster setting, default {default!r}"] for key, default in sorted(settings.items())]
            found = reports.get(name, {})
            node_status = {node: [[*found[node], parameters]] if node in found else [] for node in sorted(online)}
            group_status = {group: bool(members) and all(found.get(n, [None, False])[1] for n in members)
                            for group, members in groups.items()}
            values = {"name": name, "node_status": node_status, "nodegroup_status": group_status,
                      "parameters": parameters}
            rows.append([values[f] for f in self.op.output_fields])
        return rows
