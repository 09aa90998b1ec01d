"""Node group fields and the group query (everything comes from the config)."""
from __future__ import annotations

from typing import Any, Callable

from genet.query.common import Field, Table, attr, build_rows, common_fields
from genet.query.node import filled_ndparams, ndp_fields

_ISPEC_MIN = {"memory-size": 128, "cpu-count": 1, "disk-count": 1, "disk-size": 1024, "nic-count": 1,
              "spindle-use": 1}
DEFAULT_IPOLICY = {
    "minmax": [{"min": dict(_ISPEC_MIN),
                "max": {"memory-size": 32768, "cpu-count": 8, "disk-count": 16, "disk-size": 1024 * 1024,
                        "nic-count": 8, "spindle-use": 12}}],
    "std": dict(_ISPEC_MIN), "disk-templates": ["diskless", "file", "sharedfile"],
    "vcpu-ratio": 4.0, "spindle-ratio": 32.0,
}


class GroupContext:
    def __init__(self, data: dict):
        self.data = data


def _group_nodes(g: dict, c: GroupContext) -> list[str]:
    return sorted(n["name"] for n in c.data.nodes.values() if n["group"] == g["uuid"])


def _group_instances(g: dict, c: GroupContext) -> list[str]:
    members = set(_group_nodes(g, c))
    return sorted(i.name for i in c.data.instances.values() if i.get("primary_node") in members)


def _custom(key: str) -> Callable:
    return lambda g, c: g.get(key, {})


def _filled_diskparams(g: dict, c: GroupContext) -> dict:
    cluster, own = c.data.cluster.get("diskparams", {}), g.get("diskparams", {})
    return {t: {**cluster.get(t, {}), **own.get(t, {})} for t in sorted(set(cluster) | set(own))}


def _ndparams(g: dict, c: GroupContext) -> dict:
    return filled_ndparams(c.data, g, {})


GROUP_FIELDS: Table = {
    "name": Field("Group", "text", "Group name", attr("name")),
    "node_cnt": Field("Nodes", "number", "Number of nodes", lambda g, c: len(_group_nodes(g, c))),
    "node_list": Field("NodeList", "other", "List of nodes", _group_nodes),
    "pinst_cnt": Field("Instances", "number", "Number of primary instances",
                       lambda g, c: len(_group_instances(g, c))),
    "pinst_list": Field("InstanceList", "other", "List of primary instances", _group_instances),
    "alloc_policy": Field("AllocPolicy", "text", "Allocation policy for group",
                          lambda g, c: g.get("alloc_policy", "preferred")),
    "ndparams": Field("NDParams", "other", "Node parameters", _ndparams),
    "custom_ndparams": Field("CustomNDParams", "other", "Custom node parameters", _custom("ndparams")),
    "diskparams": Field("DiskParameters", "other", "Disk parameters (merged)", _filled_diskparams),
    "custom_diskparams": Field("CustomDiskParameters", "other", "Custom disk parameters", _custom("diskparams")),
    "ipolicy": Field("InstancePolicy", "other", "Instance policy limitations (merged)",
                     lambda g, c: {**DEFAULT_IPOLICY, **c.data.cluster.get("ipolicy", {}), **g.get("ipolicy", {})}),
    "custom_ipolicy": Field("CustomInstancePolicy", "other", "Custom instance policy limitations",
                            _custom("ipolicy")),
    "networks": Field("Networks", "other", "Networks connected to the group",
                      lambda g, c: sorted(c.data.networks[u]["name"] for u in g.get("networks", {})
                                          if u in c.data.networks)),
    **common_fields("Group"),
}


def group_fields() -> Table:
    """Every group field: GROUP_FIELDS and the ndp/ family (the group's merged node parameters)."""
    return {**GROUP_FIELDS, **ndp_fields(_ndparams)}


def query_groups(data: dict, fields: list[str], qfilter_list: Any) -> dict:
    groups = sorted(data.nodegroups.values(), key=lambda g: g["name"])
    return build_rows("group", group_fields(), groups, GroupContext(data), fields, qfilter_list)


