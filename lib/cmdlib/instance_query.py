"""An instance's detailed information, as Ganeti's gnt-instance info and RAPI report it."""
from __future__ import annotations

from genet import config, errors, opcodes, params
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import instance_of
from genet.locking import ALL_SET, Level
from genet.storage import base as storage


def run_state(info: dict | None) -> str:
    """Ganeti's run_state from the hypervisor's report: up, user down (powered itself off) or down."""
    if info is not None and info.get("state") == "running":
        return "up"
    return "user down" if info is not None and info.get("state") == "shutdown" else "down"


class LUInstanceQueryData(LogicalUnit):
    """Ganeti's per-instance details (RAPI /2/instances/NAME/info): the configuration, the
    parameters with the cluster's values filled in and, unless static, what the primary node reports."""
    OPCODE = opcodes.OpInstanceQueryData
    REQ_BGL = False

    def expand_names(self):
        if self.op.use_locking:
            self.needed_locks[Level.INSTANCE] = list(self.op.instances) or ALL_SET
            self.share_locks[Level.INSTANCE] = True

    def check_prereq(self):
        names = self.op.instances or self.cfg.read(lambda d: sorted(d.instances))
        self.wanted = [instance_of(self, name, filled=False) for name in names]

    def exec(self):
        data = self.cfg.snapshot()
        live: dict[str, dict] = {}
        if not self.op.static:
            nodes = {i["primary_node"] for i in self.wanted if not data.nodes[i["primary_node"]]["offline"]}
            hypervisors = sorted({i["hypervisor"] for i in self.wanted})
            results = self.rpc.instances_info.on({n: data.nodes[n]["primary_ip"] for n in nodes},
                                                 hypervisors) if nodes else {}
            for node, res in sorted(results.items()):
                if res.failed:
                    raise errors.OpExecError(f"cannot get the instances of node {node}: {res.fail_msg}")
                live[node] = res.payload
        return {inst.name: self._describe(data, inst, live) for inst in self.wanted}

    def _describe(self, data: dict, inst: dict, live: dict[str, dict]) -> dict:
        cluster, pnode = data.cluster, data.nodes[inst.primary_node]
        sp = config.storage_params(data)
        template = storage.get(inst.disk_template, sp)
        report = live.get(pnode["name"])
        if report is None and not self.op.static:
            self.feedback(f"Warning: primary node {pnode['name']} is offline: static information only"
                          f" for instance {inst['name']}")
        status = [None] * len(inst.disks)
        if report is not None and inst.disks:
            status = self.rpc.blockdev_find(pnode["name"], inst.name, inst.disk_template, inst.disks,
                                            sp).raise_on_error(f"finding the disks of {inst['name']}")
        hv_actual = params.hvparams(data, inst)
        from genet.hypervisor.base import HYPERVISORS, HypervisorError
        try:
            hv_actual = HYPERVISORS.cls(inst.hypervisor).fill_parameters(hv_actual)
        except HypervisorError:          # a value the hypervisor refuses: show what is recorded
            pass
        group = data.nodegroups.get(pnode["group"], {})
        networks = data.get("networks", {})
        return {
            "name": inst.name, "uuid": inst.uuid,
            "config_state": inst.admin_state,
            "run_state": None if report is None else run_state(report.get(inst.name)),
            "pnode": pnode["name"], "pnode_group_uuid": pnode["group"], "pnode_group_name": group.get("name"),
            "snodes": list(inst.get("secondary_nodes", [])),
            "snodes_group_uuids": [data.nodes[n]["group"] for n in inst.get("secondary_nodes", [])],
            "snodes_group_names": [data.nodegroups.get(data.nodes[n]["group"], {}).get("name")
                                   for n in inst.get("secondary_nodes", [])],
            "os": inst.os, "hypervisor": inst.hypervisor, "network_port": inst.get("network_port"),
            "disk_template": inst.disk_template,
            "disks": [{"iv_name": f"disk/{i}", "dev_type": inst.disk_template,
                       "logical_id": template.ganeti_logical_id(inst.name, d, i),
                       "drbd_info": template.ganeti_drbd_info(inst.primary_node, d),
                       "pstatus": status[i].ganeti_status() if status[i] is not None else None,
                       "mirror": status[i].mirror.to_wire() if status[i] is not None and status[i].mirror else None,
                       "sstatus": None, "children": [],
                       "mode": d.get("mode", "rw"), "size": d["size"], "spindles": None,
                       "name": d.get("name"), "uuid": d["uuid"]} for i, d in enumerate(inst.disks)],
            "nics": [[n.get("name"), n["uuid"], n.get("ip"), n["mac"], n["mode"], n["link"], n.get("vlan"),
                      n.get("network"), networks.get(n.get("network")) if n.get("network") else None]
                     for n in inst.nics],
            "hv_instance": dict(inst.hvparams), "hv_actual": hv_actual,
            "be_instance": dict(inst.beparams),
            "be_actual": params.beparams(data, inst),
            "os_instance": dict(inst.get("osparams", {})),
            "os_actual": dict(cluster.get("osparams", {}).get(inst.os, {}), **inst.get("osparams", {})),
            "tags": list(inst.get("tags", [])),
            "serial_no": inst["serial_no"], "ctime": inst["ctime"], "mtime": inst["mtime"],
        }
