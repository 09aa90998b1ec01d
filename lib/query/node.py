"""Node fields (Ganeti's names, titles and kinds), the ndp/ family nodes and groups share, and
the node query: live fields are asked of the nodes only when shown or filtered on."""
from __future__ import annotations

from typing import Any, Callable

from genet import config, params
from genet.query.common import (NODATA, OFFLINE, UNAVAIL, Field, Table, attr, build_rows, common_fields,
                                filter_fields, kind_of_ptype, param_fields)

# Ganeti's titles for the ndp/ fields that have one (the others are titled by their name)
_NDP_TITLES = {"exclusive_storage": "ExclusiveStorage", "oob_program": "OutOfBandProgram",
               "ovs": "OpenvSwitch", "ovs_link": "OpenvSwitchLink", "ovs_name": "OpenvSwitchName",
               "spindle_count": "SpindleCount"}


class NodeContext:
    """What node getters read: the config, the nodes' answers (name -> info, None if no answer)
    and the merged node parameters, computed once per node when a field needs them."""

    def __init__(self, data: dict, live: dict[str, dict | None]):
        self.data, self.live = data, live
        self._ndparams: dict[str, dict] = {}

    def ndparams(self, node: dict) -> dict:
        if node["name"] not in self._ndparams:
            group = self.data.nodegroups.get(node["group"], {})
            self._ndparams[node["name"]] = params.ndparams(self.data, group, node.get("ndparams", {}))
        return self._ndparams[node["name"]]


def ndp_fields(ndparams_of: Callable[[Any, Any], dict]) -> Table:
    """ndp/<name> for every node parameter genet knows (its types are the opcodes')."""
    from genet.opcodes.group import NDPARAMS

    def getter(name: str):
        return lambda obj, ctx: ndparams_of(obj, ctx).get(name, UNAVAIL)
    kinds = {name: kind_of_ptype(ptype) for name, ptype in NDPARAMS.fields.items()}
    return param_fields("ndp", "node", kinds, _NDP_TITLES, getter)


def _primaries(node: dict, d: dict) -> list[str]:
    return sorted(i.name for i in d.instances.values() if i.get("primary_node") == node["name"])


def _secondaries(node: dict, d: dict) -> list[str]:
    return sorted(i.name for i in d.instances.values() if node["name"] in i.get("secondary_nodes", []))


def _powered(node: dict, ctx: NodeContext) -> Any:
    """Known only where an out-of-band program can tell (Ganeti: unavailable without one)."""
    if not ctx.ndparams(node).get("oob_program"):
        return UNAVAIL
    return node.get("powered", True)


def _live(key: str) -> Callable[[dict, NodeContext], Any]:
    """A value the node reports (node_info); no data when it answered without it (as Ganeti's
    luxid: spindles, reported only with exclusive storage, which genet does not have)."""
    def get(node, ctx):
        if node["offline"]:
            return OFFLINE
        if not node.get("vm_capable", True):
            return UNAVAIL
        info = ctx.live.get(node["name"])
        if info is None:
            return NODATA
        value = info.get(key)
        return NODATA if value is None else value
    return get


# name: (title, kind, doc); values from node_info, by the field's name
_LIVE = {
    "bootid": ("BootID", "text", "Random UUID renewed for each system reboot, can be used for detecting"
                                 " reboots by tracking changes"),
    "cnodes": ("CNodes", "number", "Number of NUMA domains on node (if exported by hypervisor)"),
    "cnos": ("CNOs", "number", "Number of logical processors used by the node OS (dom0 for Xen)"),
    "csockets": ("CSockets", "number", "Number of physical CPU sockets (if exported by hypervisor)"),
    "ctotal": ("CTotal", "number", "Number of logical processors"),
    "dfree": ("DFree", "unit", "Available storage space on storage unit"),
    "dtotal": ("DTotal", "unit", "Total storage space on storage unit for instance disk allocation"),
    "spfree": ("SpFree", "number", "Available spindles in volume group (exclusive storage only)"),
    "sptotal": ("SpTotal", "number", "Total spindles in volume group (exclusive storage only)"),
    "mfree": ("MFree", "unit", "Memory available for instance allocations"),
    "mnode": ("MNode", "unit", "Amount of memory used by node (dom0 for Xen)"),
    "mtotal": ("MTotal", "unit", "Total amount of memory of physical machine"),
}

_ROLES = "Node role; \"M\" for master, \"C\" for master candidate, \"R\" for regular, \"D\" for drained," \
         " \"O\" for offline"

NODE_FIELDS: Table = {
    "name": Field("Node", "text", "Node name", attr("name")),
    "pip": Field("PrimaryIP", "text", "Primary IP address", attr("primary_ip")),
    "sip": Field("SecondaryIP", "text", "Secondary IP address", attr("secondary_ip")),
    "master": Field("IsMaster", "bool", "Whether node is master",
                    lambda n, c: n["name"] == c.data.cluster["master_node"]),
    "master_candidate": Field("MasterC", "bool", "Whether node is a master candidate", attr("master_candidate")),
    "master_capable": Field("MasterCapable", "bool", "Whether node can become a master candidate",
                            attr("master_capable")),
    "vm_capable": Field("VMCapable", "bool", "Whether node can host instances", attr("vm_capable")),
    "offline": Field("Offline", "bool", "Whether node is marked offline", attr("offline")),
    "drained": Field("Drained", "bool", "Whether node is drained", attr("drained")),
    "maintenance": Field("Maintenance", "bool", "Whether node is in maintenance (drained, its primary"
                         " instances moved away)", attr("maintenance")),
    "role": Field("Role", "text", _ROLES, lambda n, c: config.node_role(c.data, n)[0].upper()),
    "group": Field("Group", "text", "Node group",
                   lambda n, c: c.data.nodegroups[n["group"]]["name"] if n["group"] in c.data.nodegroups
                   else NODATA),
    "group.uuid": Field("GroupUUID", "text", "UUID of node group", attr("group")),
    "powered": Field("Powered", "bool", "Whether node is thought to be powered on", _powered),
    "ndparams": Field("NodeParameters", "other", "Merged node parameters", lambda n, c: c.ndparams(n)),
    "custom_ndparams": Field("CustomNodeParameters", "other", "Custom node parameters",
                             lambda n, c: n.get("ndparams", {})),
    "hv_state": Field("HypervisorState", "other", "Hypervisor state", lambda n, c: n.get("hv_state", {})),
    "disk_state": Field("DiskState", "other", "Disk state", lambda n, c: n.get("disk_state", {})),
    "pinst_cnt": Field("Pinst", "number", "Number of instances with this node as primary",
                       lambda n, c: len(_primaries(n, c.data))),
    "sinst_cnt": Field("Sinst", "number", "Number of instances with this node as secondary",
                       lambda n, c: len(_secondaries(n, c.data))),
    "pinst_list": Field("PriInstances", "other", "List of instances with this node as primary",
                        lambda n, c: _primaries(n, c.data)),
    "sinst_list": Field("SecInstances", "other", "List of instances with this node as secondary",
                        lambda n, c: _secondaries(n, c.data)),
    **{name: Field(title, kind, doc, _live(name), live=True)
       for name, (title, kind, doc) in _LIVE.items()},
    **common_fields("Node"),
}


def node_fields() -> Table:
    """Every node field: NODE_FIELDS and the ndp/ family."""
    return {**NODE_FIELDS, **ndp_fields(lambda node, ctx: ctx.ndparams(node))}


def query_nodes(data: dict, fields: list[str], qfilter_list: Any,
                live: Callable[[list[dict]], dict[str, dict | None]] | None) -> dict:
    """Rows for nodes; ``live`` fetches node_info for the online nodes when a live field is wanted."""
    table = node_fields()
    nodes = sorted(data.nodes.values(), key=lambda n: n["name"])
    wanted = set(fields) | filter_fields(qfilter_list)
    answers: dict[str, dict | None] = {}
    if live is not None and any(table[f].live for f in wanted if f in table):
        answers = live([n for n in nodes if not n["offline"]])
    return build_rows("node", table, nodes, NodeContext(data, answers), fields, qfilter_list)
