"""Instance fields (Ganeti's names, titles and kinds), their aliases, the instance status and
the instance query. The disk and NIC fields come from genet.query.devices, the hv/ and be/
fields from genet.query.instance_params."""
from __future__ import annotations

from typing import Any, Callable

from genet import params
from genet.query.common import (NODATA, OFFLINE, UNAVAIL, Field, Table, attr, build_rows, common_fields,
                                filter_fields, with_aliases)
from genet.query.devices import instance_device_fields
from genet.query.instance_params import be_fields, hv_fields

# Ganeti's aliases: a short or older name -> the field it stands for
ALIASES = (("vcpus", "be/vcpus"), ("be/memory", "be/maxmem"), ("sda_size", "disk.size/0"),
           ("sdb_size", "disk.size/1"), ("ip", "nic.ip/0"), ("mac", "nic.mac/0"), ("bridge", "nic.bridge/0"),
           ("nic_mode", "nic.mode/0"), ("nic_link", "nic.link/0"), ("nic_network", "nic.network/0"))

STATUSES = ("running", "ADMIN_down", "USER_down", "ERROR_down", "ERROR_up", "ERROR_nodedown",
            "ERROR_nodeoffline")


class InstanceContext:
    """What instance getters read: the config, the primary nodes' reports (node -> {instance: info},
    None when the node did not answer) and each instance's merged parameters, computed once."""

    def __init__(self, data: dict, reports: dict[str, dict | None]):
        self.data, self.reports = data, reports
        self._hv: dict[tuple, dict] = {}
        self._be: dict[str, dict] = {}

    def hvparams(self, inst: dict) -> dict:
        """Filled once per distinct (hypervisor, own hvparams): most instances share them."""
        own = inst.get("hvparams", {})
        try:
            key = (inst["hypervisor"], tuple(sorted(own.items())))
            hash(key)
        except TypeError:           # a list value: fill this one on its own
            return params.filled_hvparams(self.data, inst)
        if key not in self._hv:
            self._hv[key] = params.filled_hvparams(self.data, inst)
        return self._hv[key]

    def beparams(self, inst: dict) -> dict:
        if inst["name"] not in self._be:
            self._be[inst["name"]] = params.beparams(self.data, inst)
        return self._be[inst["name"]]

    def live(self, inst: dict) -> dict | None | Any:
        """What the primary node says of the instance (None: not running there), or OFFLINE/NODATA."""
        node = self.data.nodes.get(inst["primary_node"])
        if node is None or node["offline"]:
            return OFFLINE
        report = self.reports.get(inst["primary_node"])
        return NODATA if report is None else report.get(inst["name"])


def instance_status(inst: dict, node: dict, live: dict | None, reachable: bool, user_down: bool = False) -> str:
    """Ganeti's instance status from the admin state and what the primary node reports; a guest
    that powered itself off is USER_down where ``user_down`` allows it (allows_user_down), else
    ERROR_down (which the watcher restarts)."""
    if node is None or node["offline"]:
        return "ERROR_nodeoffline"
    if not reachable:
        return "ERROR_nodedown"
    up = inst["admin_state"] == "up"
    if live is not None and live.get("state") == "running":
        return "running" if up else "ERROR_up"
    if live is not None and live.get("state") == "shutdown" and up and user_down:
        return "USER_down"
    if up:
        return "ERROR_down"
    return "ADMIN_offline" if inst["admin_state"] == "offline" else "ADMIN_down"


def allows_user_down(cluster: dict, inst: dict, hvparams: dict) -> bool:
    """Ganeti's rule: the cluster's user shutdown is enabled and, for KVM, the instance's
    user_shutdown hypervisor parameter too."""
    return bool(cluster.get("enabled_user_shutdown")) and (inst["hypervisor"] != "kvm"
                                                          or bool(hvparams.get("user_shutdown")))


def _status(inst: dict, ctx: InstanceContext) -> str:
    info = ctx.live(inst)
    return instance_status(inst, ctx.data.nodes.get(inst["primary_node"]), None if info is NODATA else info,
                           info is not NODATA, allows_user_down(ctx.data.cluster, inst, ctx.hvparams(inst)))


def _oper_state(inst: dict, ctx: InstanceContext) -> Any:
    info = ctx.live(inst)
    return info if info in (OFFLINE, NODATA) else bool(info) and info.get("state") == "running"


def _live(key: str) -> Callable[[dict, InstanceContext], Any]:
    """A value the running instance reports; unavailable when it does not run."""
    def get(inst, ctx):
        info = ctx.live(inst)
        if info in (OFFLINE, NODATA):
            return info
        value = (info or {}).get(key)
        return UNAVAIL if value is None else value
    return get


def _node_group(node_name: str | None, ctx: InstanceContext, key: str) -> Any:
    node = ctx.data.nodes.get(node_name)
    if node is None:
        return None
    return node["group"] if key == "uuid" else ctx.data.nodegroups.get(node["group"], {}).get("name")


def _pnode_group(key: str) -> Callable:
    def get(inst, ctx):
        found = _node_group(inst["primary_node"], ctx, key)
        return UNAVAIL if found is None else found
    return get


def _snodes_groups(key: str) -> Callable:
    return lambda inst, ctx: [_node_group(n, ctx, key) for n in inst.get("secondary_nodes", [])]


def _osparams(inst: dict, ctx: InstanceContext) -> dict:
    return {**ctx.data.cluster.get("osparams", {}).get(inst.get("os", ""), {}), **inst.get("osparams", {})}


INSTANCE_FIELDS: Table = {
    "name": Field("Instance", "text", "Instance name", attr("name")),
    "os": Field("OS", "text", "Operating system", attr("os")),
    "hypervisor": Field("Hypervisor", "text", "Hypervisor name", attr("hypervisor")),
    "disk_template": Field("Disk_template", "text", "Instance disk template", attr("disk_template")),
    "network_port": Field("Network_port", "other", "Instance network port if available (e.g. for VNC console)",
                          attr("network_port")),
    "pnode": Field("Primary_node", "text", "Primary node", attr("primary_node")),
    "pnode.group": Field("PrimaryNodeGroup", "text", "Primary node's group", _pnode_group("name")),
    "pnode.group.uuid": Field("PrimaryNodeGroupUUID", "text", "Primary node's group UUID", _pnode_group("uuid")),
    "snodes": Field("Secondary_Nodes", "other", "Secondary nodes; usually this will just be one node",
                    lambda i, c: list(i.get("secondary_nodes", []))),
    "snodes.group": Field("SecondaryNodesGroups", "other", "Node groups of secondary nodes",
                          _snodes_groups("name")),
    "snodes.group.uuid": Field("SecondaryNodesGroupsUUID", "other", "Node group UUIDs of secondary nodes",
                               _snodes_groups("uuid")),
    "admin_state": Field("InstanceState", "text", "Desired state of instance", attr("admin_state")),
    "admin_up": Field("Autostart", "bool", "Desired state of instance", lambda i, c: i["admin_state"] == "up"),
    "admin_state_source": Field("InstanceStateSource", "text", "Who last changed the desired state of the instance",
                                lambda i, c: i.get("admin_state_source") or "admin"),
    "forthcoming": Field("Forthcoming", "bool", "Whether the Instance is forthcoming",
                         lambda i, c: bool(i.get("forthcoming"))),
    "disks_active": Field("DisksActive", "bool", "Desired state of instance disks",
                          lambda i, c: i.get("disks_active", i["admin_state"] == "up")),
    "hvparams": Field("HypervisorParameters", "other", "Hypervisor parameters (merged)",
                      lambda i, c: c.hvparams(i)),
    "beparams": Field("BackendParameters", "other", "Backend parameters (merged)", lambda i, c: c.beparams(i)),
    "osparams": Field("OpSysParameters", "other", "Operating system parameters (merged)", _osparams),
    "custom_hvparams": Field("CustomHypervisorParameters", "other", "Custom hypervisor parameters",
                             lambda i, c: i.get("hvparams", {})),
    "custom_beparams": Field("CustomBackendParameters", "other", "Custom backend parameters",
                             lambda i, c: i.get("beparams", {})),
    "custom_osparams": Field("CustomOpSysParameters", "other", "Custom operating system parameters",
                             lambda i, c: i.get("osparams", {})),
    "custom_nicparams": Field("CustomNicParameters", "other", "Custom network interface parameters",
                              lambda i, c: [{"mode": n["mode"], "link": n["link"], "vlan": n.get("vlan") or ""}
                                            for n in i.get("nics", [])]),
    "disk_usage": Field("DiskUsage", "unit", "Total disk space used by instance on each of its nodes; this is"
                        " not the disk size visible to the instance, but the usage on the node",
                        lambda i, c: sum(d["size"] for d in i.get("disks", []))),
    "status": Field("Status", "text", f"Instance status ({', '.join(STATUSES)})", _status, live=True),
    "oper_state": Field("Running", "bool", "Actual state of instance", _oper_state, live=True),
    "oper_ram": Field("Memory", "unit", "Actual memory usage as seen by hypervisor", _live("memory"), live=True),
    "oper_vcpus": Field("VCPUs", "number", "Actual number of VCPUs as seen by hypervisor", _live("vcpus"),
                        live=True),
    "oper_uptime": Field("Uptime", "number", "Seconds since the instance's process started", _live("uptime"),
                         live=True),
    "console": Field("Console", "other", "Instance console information", _live("console"), live=True),
    **common_fields("Instance", forthcoming=True),
    **be_fields({alias for alias, _ in ALIASES}),
}


def instance_fields() -> Table:
    """Every instance field: INSTANCE_FIELDS (each documented by name in gnt-instance(8)), and the
    families documented by pattern: per-disk and per-NIC fields, hv/ and Ganeti's aliases."""
    return with_aliases({**INSTANCE_FIELDS, **instance_device_fields(), **hv_fields()}, ALIASES)


def query_instances(data: dict, fields: list[str], qfilter_list: Any,
                    live: Callable[[dict[str, str], list[str]], dict[str, dict | None]]) -> dict:
    """Rows for instances; ``live`` asks the primary nodes what runs ({node: {instance: info}} or None),
    only when a live field is shown or filtered on."""
    table = instance_fields()
    instances = sorted(data.instances.values(), key=lambda i: i.name)
    wanted = set(fields) | filter_fields(qfilter_list)
    reports: dict[str, dict | None] = {}
    if any(table[f].live for f in wanted if f in table):
        nodes = {i.primary_node for i in instances}
        online = {n: data.nodes[n]["primary_ip"] for n in nodes if n in data.nodes and not data.nodes[n]["offline"]}
        reports = live(online, sorted({i.hypervisor for i in instances})) if online else {}
    return build_rows("instance", table, instances, InstanceContext(data, reports), fields, qfilter_list)
