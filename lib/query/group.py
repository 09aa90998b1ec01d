"""Node group fields and the group query (everything comes from the config)."""
from __future__ import annotations

from typing import Any, Callable

from genet.query.common import Field, Table, attr, build_rows, common_fields
from genet import params
from genet.query.node import ndp_fields

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


def _ndparams(g: dict, c: GroupContext) -> dict:
    return params.ndparams(c.data, g, {})


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
    "diskparams": Field("DiskParameters", "other", "Disk parameters (merged)",
                        lambda g, c: params.diskparams(c.data, g)),
    "custom_diskparams": Field("CustomDiskParameters", "other", "Custom disk parameters", _custom("diskparams")),
    "ipolicy": Field("InstancePolicy", "other", "Instance policy limitations (merged)",
                     lambda g, c: params.ipolicy(c.data, g)),
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


