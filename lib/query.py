"""Query2: field definitions and row building for nodes, jobs and the cluster.

A query names fields and an optional filter (genet.qfilter's list form) and gets
Ganeti's shape back: ``{"fields": [definitions], "data": [[[status, value]...]]}``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from genet import config, errors, qfilter
from genet.jobs import JOB_FIELDS

RS_NORMAL, RS_UNKNOWN, RS_NODATA, RS_UNAVAIL, RS_OFFLINE = 0, 1, 2, 3, 4


def _key(key: str) -> Callable:
    """The getter of a field that is one key of the object (node, cluster) as the config holds it."""
    return lambda obj, d: obj[key]


# name: (title, kind, doc, getter(node, data) or None for live fields)
NODE_FIELDS: dict[str, tuple[str, str, str, Callable | None]] = {
    "name": ("Node", "text", "Node name", _key("name")),
    "uuid": ("UUID", "text", "Node UUID", _key("uuid")),
    "pip": ("PrimaryIP", "text", "Primary IP address", _key("primary_ip")),
    "sip": ("SecondaryIP", "text", "Secondary IP address", _key("secondary_ip")),
    "master": ("IsMaster", "bool", "Whether node is master", lambda n, d: n["name"] == d.cluster["master_node"]),
    "master_candidate": ("MasterC", "bool", "Whether node is a master candidate", _key("master_candidate")),
    "master_capable": ("MasterCapable", "bool", "Whether node can become a master candidate",
                       _key("master_capable")),
    "vm_capable": ("VMCapable", "bool", "Whether node can host instances", _key("vm_capable")),
    "offline": ("Offline", "bool", "Whether node is marked offline", _key("offline")),
    "drained": ("Drained", "bool", "Whether node is drained", _key("drained")),
    "role": ("Role", "text", "Node role: M(aster), C(andidate), R(egular), D(rained), O(ffline)",
             lambda n, d: config.node_role(d, n)[0].upper()),
    "group": ("Group", "text", "Node group", lambda n, d: d.nodegroups[n["group"]]["name"]),
    "group.uuid": ("GroupUUID", "text", "UUID of node group", _key("group")),
    "pinst_cnt": ("Pinst", "number", "Number of instances with this node as primary",
                  lambda n, d: sum(1 for i in d.instances.values() if i.get("primary_node") == n["name"])),
    "sinst_cnt": ("Sinst", "number", "Number of instances with this node as secondary",
                  lambda n, d: sum(1 for i in d.instances.values() if n["name"] in i.get("secondary_nodes", []))),
    "tags": ("Tags", "other", "Tags", _key("tags")),
    "serial_no": ("SerialNo", "number", "Node object serial number", _key("serial_no")),
    "ctime": ("CTime", "timestamp", "Creation timestamp", _key("ctime")),
    "mtime": ("MTime", "timestamp", "Modification timestamp", _key("mtime")),
    "mtotal": ("MTotal", "unit", "Total amount of memory of physical machine", None),
    "mfree": ("MFree", "unit", "Memory available for instance allocations", None),
    "dtotal": ("DTotal", "unit", "Total disk space in the state directory", None),
    "dfree": ("DFree", "unit", "Available disk space in the state directory", None),
    "ctotal": ("CTotal", "number", "Total number of logical processors", None),
    "cnos": ("CNOs", "number", "Logical processors reserved for the node's own OS", None),
    "cnodes": ("CNodes", "number", "Number of NUMA domains", None),
    "csockets": ("CSockets", "number", "Number of physical CPU sockets", None),
    "mnode": ("MNode", "unit", "Memory used by the node itself and its caches", None),
    "pinst_list": ("PriInstances", "other", "Instances with this node as primary",
                   lambda n, d: sorted(i.name for i in d.instances.values() if i.get("primary_node") == n["name"])),
    "sinst_list": ("SecInstances", "other", "Instances with this node as secondary",
                   lambda n, d: sorted(i.name for i in d.instances.values()
                                       if n["name"] in i.get("secondary_nodes", []))),
    "ndparams": ("NodeParameters", "other", "Node parameters", lambda n, d: n.get("ndparams", {})),
    "hv_state": ("HypervisorState", "other", "Static hypervisor state for the allocator",
                 lambda n, d: n.get("hv_state", {})),
    "sptotal": ("SpindlesTotal", "number", "Total spindles (0: no exclusive storage)", lambda n, d: 0),
    "spfree": ("SpindlesFree", "number", "Free spindles (0: no exclusive storage)", lambda n, d: 0),
}

CLUSTER_FIELDS = {
    "name": ("Name", "text", "Cluster name", _key("cluster_name")),
    "master_node": ("Master", "text", "Master node name", _key("master_node")),
    "candidate_pool_size": ("CandidatePoolSize", "number", "Master candidate pool size",
                            _key("candidate_pool_size")),
    "serial_no": ("SerialNo", "number", "Config serial number", lambda c, d: d.serial_no),
    "tags": ("Tags", "other", "Tags", _key("tags")),
    "uuid": ("UUID", "text", "Cluster UUID", _key("uuid")),
}

def instance_status(inst: dict, node: dict, live: dict | None, reachable: bool) -> str:
    """Ganeti's instance status from the admin state and what the primary node reports."""
    if node is None or node["offline"]:
        return "ERROR_nodeoffline"
    if not reachable:
        return "ERROR_nodedown"
    up = inst.admin_state == "up"
    if live is not None and live.get("state") == "running":
        return "running" if up else "ERROR_up"
    if live is not None and live.get("state") == "shutdown" and up:
        return "USER_down"
    return "ERROR_down" if up else "ADMIN_down"


def _live(name: str):
    return lambda i, d, live: (live or {}).get(name)


# name: (title, kind, doc, getter(instance, data, live info or None), needs live data)
INSTANCE_FIELDS: dict[str, tuple[str, str, str, Callable, bool]] = {
    "name": ("Instance", "text", "Instance name", lambda i, d, l: i.name, False),
    "uuid": ("UUID", "text", "Instance UUID", lambda i, d, l: i.uuid, False),
    "os": ("OS", "text", "Operating system", lambda i, d, l: i.os, False),
    "pnode": ("Primary_node", "text", "Primary node", lambda i, d, l: i.primary_node, False),
    "snodes": ("Secondary_Nodes", "other", "Secondary nodes", lambda i, d, l: i.secondary_nodes, False),
    "admin_state": ("InstanceState", "text", "Desired state of the instance (up or down)",
                    lambda i, d, l: i.admin_state, False),
    "admin_up": ("Autostart", "bool", "Whether the instance should be running",
                 lambda i, d, l: i.admin_state == "up", False),
    "disk_template": ("Disk_template", "text", "Disk template", lambda i, d, l: i.disk_template, False),
    "hypervisor": ("Hypervisor", "text", "Hypervisor", lambda i, d, l: i.hypervisor, False),
    "beparams": ("BackendParameters", "other", "Backend parameters", lambda i, d, l: i.beparams, False),
    "hvparams": ("HypervisorParameters", "other", "Hypervisor parameters", lambda i, d, l: i.hvparams, False),
    "be/maxmem": ("ConfigMaxMem", "unit", "Maximum memory (MiB)", lambda i, d, l: i.beparams["maxmem"], False),
    "be/minmem": ("ConfigMinMem", "unit", "Minimum memory (MiB)", lambda i, d, l: i.beparams["minmem"], False),
    "be/vcpus": ("ConfigVCPUs", "number", "Virtual CPUs", lambda i, d, l: i.beparams["vcpus"], False),
    "disk.count": ("Disks", "number", "Number of disks", lambda i, d, l: len(i.disks), False),
    "disk.sizes": ("Disk_sizes", "other", "Disk sizes (MiB)", lambda i, d, l: [x["size"] for x in i.disks], False),
    "disk_usage": ("DiskUsage", "unit", "Total disk space used (MiB)",
                   lambda i, d, l: sum(x["size"] for x in i.disks), False),
    "nic.count": ("NICs", "number", "Number of NICs", lambda i, d, l: len(i.nics), False),
    "nic.macs": ("NIC_MACs", "other", "MAC addresses", lambda i, d, l: [n["mac"] for n in i.nics], False),
    "nic.ips": ("NIC_IPs", "other", "IP addresses", lambda i, d, l: [n["ip"] for n in i.nics], False),
    "nic.modes": ("NIC_modes", "other", "NIC modes", lambda i, d, l: [n["mode"] for n in i.nics], False),
    "nic.links": ("NIC_links", "other", "NIC links", lambda i, d, l: [n["link"] for n in i.nics], False),
    "nic.uuids": ("NIC_UUIDs", "other", "NIC UUIDs", lambda i, d, l: [n["uuid"] for n in i.nics], False),
    "nic.names": ("NIC_Names", "other", "NIC names", lambda i, d, l: [n.get("name") for n in i.nics], False),
    "nic.bridges": ("NIC_bridges", "other", "Bridges of bridged NICs (null for others)",
                    lambda i, d, l: [n["link"] if n["mode"] == "bridged" else None for n in i.nics], False),
    "nic.networks": ("NIC_networks", "other", "UUIDs of the networks the NICs are on",
                     lambda i, d, l: [n.get("network") for n in i.nics], False),
    "nic.networks.names": ("NIC_networks_names", "other", "Names of the networks the NICs are on",
                           lambda i, d, l: [d.get("networks", {}).get(n.get("network") or "", {}).get("name")
                                            for n in i.nics], False),
    "custom_nicparams": ("CustomNicParameters", "other", "NIC parameters set on the instance",
                         lambda i, d, l: [{"mode": n["mode"], "link": n["link"], "vlan": n.get("vlan") or ""}
                                          for n in i.nics], False),
    "disk.uuids": ("Disk_UUIDs", "other", "Disk UUIDs", lambda i, d, l: [x["uuid"] for x in i.disks], False),
    "disk.names": ("Disk_names", "other", "Disk names", lambda i, d, l: [x.get("name") for x in i.disks], False),
    "disk.spindles": ("Disk_spindles", "other", "Disk spindles (null: no exclusive storage)",
                      lambda i, d, l: [None for _ in i.disks], False),
    "network_port": ("Network_port", "number", "Console network port (VNC), if any",
                     lambda i, d, l: i.get("network_port"), False),
    "custom_hvparams": ("CustomHypervisorParameters", "other", "Hypervisor parameters set on the instance",
                        lambda i, d, l: i.hvparams, False),
    "custom_beparams": ("CustomBackendParameters", "other", "Backend parameters set on the instance",
                        lambda i, d, l: i.beparams, False),
    "tags": ("Tags", "other", "Tags", lambda i, d, l: i.tags, False),
    "serial_no": ("SerialNo", "number", "Instance object serial number", lambda i, d, l: i["serial_no"], False),
    "ctime": ("CTime", "timestamp", "Creation timestamp", lambda i, d, l: i["ctime"], False),
    "mtime": ("MTime", "timestamp", "Modification timestamp", lambda i, d, l: i["mtime"], False),
    "status": ("Status", "text", "Instance status (running, ADMIN_down, USER_down, ERROR_down, ERROR_up,"
               " ERROR_nodedown, ERROR_nodeoffline)", None, True),
    "oper_state": ("Running", "bool", "Whether the instance runs", None, True),
    "oper_ram": ("Memory", "unit", "Memory of the running instance (MiB)", _live("memory"), True),
    "oper_vcpus": ("VCPUs", "number", "Virtual CPUs of the running instance", _live("vcpus"), True),
    "oper_uptime": ("Uptime", "number", "Seconds since the instance's process started", _live("uptime"), True),
}

# --- node groups and networks ------------------------------------------------

DEFAULT_NDPARAMS = {"oob_program": "", "spindle_count": 1, "exclusive_storage": False, "ovs": False,
                    "ovs_name": "switch1", "ovs_link": "", "ssh_port": 22, "cpu_speed": 1.0}
_ISPEC_MIN = {"memory-size": 128, "cpu-count": 1, "disk-count": 1, "disk-size": 1024, "nic-count": 1,
              "spindle-use": 1}
DEFAULT_IPOLICY = {
    "minmax": [{"min": dict(_ISPEC_MIN),
                "max": {"memory-size": 32768, "cpu-count": 8, "disk-count": 16, "disk-size": 1024 * 1024,
                        "nic-count": 8, "spindle-use": 12}}],
    "std": dict(_ISPEC_MIN), "disk-templates": ["diskless", "file", "sharedfile"],
    "vcpu-ratio": 4.0, "spindle-ratio": 32.0,
}


def _group_nodes(g: dict, d: dict) -> list[str]:
    return sorted(n["name"] for n in d.nodes.values() if n["group"] == g["uuid"])


def _group_instances(g: dict, d: dict) -> list[str]:
    members = set(_group_nodes(g, d))
    return sorted(i.name for i in d.instances.values() if i.get("primary_node") in members)


def _custom(key: str) -> Callable:
    return lambda g, d: g.get(key, {})


def _filled_diskparams(g: dict, d: dict) -> dict:
    cluster, own = d.cluster.get("diskparams", {}), g.get("diskparams", {})
    return {t: {**cluster.get(t, {}), **own.get(t, {})} for t in sorted(set(cluster) | set(own))}


# name: (title, kind, doc, getter(group, data))
GROUP_FIELDS: dict[str, tuple[str, str, str, Callable]] = {
    "name": ("Group", "text", "Group name", lambda g, d: g["name"]),
    "uuid": ("UUID", "text", "Group UUID", lambda g, d: g["uuid"]),
    "node_cnt": ("Nodes", "number", "Number of nodes", lambda g, d: len(_group_nodes(g, d))),
    "node_list": ("NodeList", "other", "List of nodes", _group_nodes),
    "pinst_cnt": ("Instances", "number", "Number of primary instances", lambda g, d: len(_group_instances(g, d))),
    "pinst_list": ("InstanceList", "other", "List of primary instances", _group_instances),
    "alloc_policy": ("AllocPolicy", "text", "Allocation policy for group",
                     lambda g, d: g.get("alloc_policy", "preferred")),
    "ndparams": ("NDParams", "other", "Node parameters (merged with the cluster's)",
                 lambda g, d: {**DEFAULT_NDPARAMS, **d.cluster.get("ndparams", {}), **g.get("ndparams", {})}),
    "custom_ndparams": ("CustomNDParams", "other", "Custom node parameters", _custom("ndparams")),
    "diskparams": ("DiskParameters", "other", "Disk parameters (merged)", _filled_diskparams),
    "custom_diskparams": ("CustomDiskParameters", "other", "Custom disk parameters", _custom("diskparams")),
    "ipolicy": ("InstancePolicy", "other", "Instance policy limitations (merged)",
                lambda g, d: {**DEFAULT_IPOLICY, **d.cluster.get("ipolicy", {}), **g.get("ipolicy", {})}),
    "custom_ipolicy": ("CustomInstancePolicy", "other", "Custom instance policy limitations",
                       _custom("ipolicy")),
    "networks": ("Networks", "other", "Networks connected to the group",
                 lambda g, d: sorted(d.networks[u]["name"] for u in g.get("networks", {}) if u in d.networks)),
    "tags": ("Tags", "other", "Tags", lambda g, d: g.get("tags", [])),
    "serial_no": ("SerialNo", "number", "Group object serial number", lambda g, d: g.get("serial_no", 1)),
    "ctime": ("CTime", "timestamp", "Creation timestamp", lambda g, d: g.get("ctime")),
    "mtime": ("MTime", "timestamp", "Modification timestamp", lambda g, d: g.get("mtime")),
}


def _pool(net: dict):
    """The network's address pool, built once per stored state of its bit maps."""
    return _cached_pool(net["network"], net.get("reservations"), net.get("ext_reservations"))


@functools.lru_cache(maxsize=64)
def _cached_pool(network: str, reservations: str | None, ext_reservations: str | None):
    from genet.network_pool import AddressPool
    return AddressPool(network, reservations, ext_reservations)


def _network_groups(n: dict, d: dict) -> list[list[str]]:
    """Ganeti's group_list: [group name, NIC mode, NIC link, VLAN] per connected group."""
    return [[g["name"], p["mode"], p["link"], p.get("vlan", "")]
            for g in sorted(d.nodegroups.values(), key=lambda g: g["name"])
            for u, p in g.get("networks", {}).items() if u == n["uuid"]]


def _network_instances(n: dict, d: dict) -> list[str]:
    from genet.network_pool import nic_users
    return sorted({name for name, _ in nic_users(d, n)})


# name: (title, kind, doc, getter(network, data))
NETWORK_FIELDS: dict[str, tuple[str, str, str, Callable]] = {
    "name": ("Network", "text", "Name", lambda n, d: n["name"]),
    "uuid": ("UUID", "text", "Network UUID", lambda n, d: n["uuid"]),
    "network": ("Subnet", "text", "IPv4 subnet", lambda n, d: n["network"]),
    "gateway": ("Gateway", "other", "IPv4 gateway", lambda n, d: n.get("gateway")),
    "network6": ("IPv6Subnet", "other", "IPv6 subnet", lambda n, d: n.get("network6")),
    "gateway6": ("IPv6Gateway", "other", "IPv6 gateway", lambda n, d: n.get("gateway6")),
    "mac_prefix": ("MacPrefix", "other", "MAC address prefix", lambda n, d: n.get("mac_prefix")),
    "free_count": ("FreeCount", "number", "Number of available addresses", lambda n, d: _pool(n).free_count),
    "reserved_count": ("ReservedCount", "number", "Number of reserved addresses",
                       lambda n, d: _pool(n).reserved_count),
    "map": ("Map", "text", "Actual mapping", lambda n, d: _pool(n).map()),
    "external_reservations": ("ExternalReservations", "text", "External reservations",
                              lambda n, d: ", ".join(_pool(n).external_reservations())),
    "group_list": ("GroupList", "other", "List of nodegroups (group name, NIC mode, NIC link, VLAN)",
                   _network_groups),
    "group_cnt": ("NodeGroups", "number", "Number of nodegroups", lambda n, d: len(_network_groups(n, d))),
    "inst_list": ("InstanceList", "other", "List of instances", _network_instances),
    "inst_cnt": ("Instances", "number", "Number of instances", lambda n, d: len(_network_instances(n, d))),
    "tags": ("Tags", "other", "Tags", lambda n, d: n.get("tags", [])),
    "serial_no": ("SerialNo", "number", "Network object serial number", lambda n, d: n.get("serial_no", 1)),
    "ctime": ("CTime", "timestamp", "Creation timestamp", lambda n, d: n.get("ctime")),
    "mtime": ("MTime", "timestamp", "Modification timestamp", lambda n, d: n.get("mtime")),
}

# --- exports (gnt-backup): one row per export and node ---------------------------

EXPORT_FIELDS = {
    "node": ("Node", "text", "Node name", None),
    "export": ("Export", "text", "Export name", None),
}

RESOURCES = {"node": NODE_FIELDS, "job": JOB_FIELDS, "cluster": CLUSTER_FIELDS, "instance": INSTANCE_FIELDS,
             "group": GROUP_FIELDS, "network": NETWORK_FIELDS, "export": EXPORT_FIELDS}


def field_definitions(what: str, names: list[str] | None) -> list[dict]:
    fields = _fields_of(what)
    if not names:
        names = sorted(fields)
    return [_definition(fields, name) for name in names]


def _fields_of(what: str) -> dict:
    try:
        return RESOURCES[what]
    except KeyError:
        raise errors.OpPrereqError(f"unknown query resource {what!r} (known: {', '.join(sorted(RESOURCES))})",
                                   errors.ECode.INVAL) from None


def _definition(fields: dict, name: str) -> dict:
    spec = fields.get(name)
    if spec is None:
        return {"name": name, "title": name, "kind": "unknown", "doc": f"Unknown field '{name}'"}
    return {"name": name, "title": spec[0], "kind": spec[1], "doc": spec[2]}


def check_fields(what: str, names: list[str]) -> None:
    fields = _fields_of(what)
    unknown = [n for n in names if n not in fields]
    if unknown:
        raise errors.ParameterError(f"unknown {what} field(s): {', '.join(unknown)}")


def _compile(what: str, qfilter_list: Any) -> Callable[[dict], bool]:
    fields = _fields_of(what)
    try:
        unknown = sorted(filter_fields(qfilter_list) - set(fields))
    except TypeError:
        unknown = []
    if unknown:
        raise errors.ParameterError(f"unknown {what} field(s) in filter: {', '.join(unknown)}")
    try:
        return qfilter.compile_filter(qfilter_list, set(fields))
    except qfilter.FilterError as err:
        raise errors.OpPrereqError(f"invalid filter: {err}", errors.ECode.INVAL) from None


def filter_fields(qfilter_list: Any) -> set[str]:
    """Field names a filter refers to."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, list) and node:
            op = node[0]
            if op in ("&", "|", "!"):
                for child in node[1:]:
                    walk(child)
            elif len(node) >= 2 and isinstance(node[1], str):
                found.add(node[1])
    walk(qfilter_list)
    return found


def query_nodes(data: dict, fields: list[str], qfilter_list: Any,
                live: Callable[[list[dict]], dict[str, dict | None]] | None) -> dict:
    """Rows for nodes; ``live`` fetches node_info for the nodes when live fields are asked."""
    predicate = _compile("node", qfilter_list)
    wanted = set(fields) | filter_fields(qfilter_list)
    nodes = sorted(data.nodes.values(), key=lambda n: n["name"])
    live_data: dict[str, dict | None] = {}
    if live is not None and any(NODE_FIELDS.get(f, (0, 0, 0, 1))[3] is None for f in wanted):
        live_data = live([n for n in nodes if not n["offline"]])
    rows = []
    for node in nodes:
        values: dict[str, tuple[int, Any]] = {}
        for name in wanted:
            spec = NODE_FIELDS.get(name)
            if spec is None:
                values[name] = (RS_UNKNOWN, None)
            elif spec[3] is not None:
                values[name] = (RS_NORMAL, spec[3](node, data))
            elif node["offline"]:
                values[name] = (RS_OFFLINE, None)
            else:
                info = live_data.get(node["name"])
                values[name] = (RS_NODATA, None) if info is None else (RS_NORMAL, info.get(name))
        if predicate({k: v for k, (_, v) in values.items()}):
            rows.append([list(values[f]) for f in fields])
    return {"fields": field_definitions("node", fields), "data": rows}


def query_cluster(data: dict, fields: list[str]) -> dict:
    cluster = data.cluster
    row = [[RS_NORMAL, CLUSTER_FIELDS[f][3](cluster, data)] if f in CLUSTER_FIELDS else [RS_UNKNOWN, None]
           for f in fields]
    return {"fields": field_definitions("cluster", fields), "data": [row]}


def query_jobs(rows: list[list | None], ids: list[int], fields: list[str], qfilter_list: Any) -> dict:
    """Rows for jobs from JobQueue.query (which read every field in ``fields`` + filter fields)."""
    predicate = _compile("job", qfilter_list)
    extra = sorted(filter_fields(qfilter_list) - set(fields))
    out = []
    for row in rows:
        if row is None:
            continue
        values = dict(zip(fields + extra, row))
        if predicate(values):
            out.append([[RS_NORMAL, values[f]] if f in JOB_FIELDS else [RS_UNKNOWN, None] for f in fields])
    return {"fields": field_definitions("job", fields), "data": out}


def query_instances(data: dict, fields: list[str], qfilter_list: Any,
                    live: Callable[[dict[str, str], list[str]], dict[str, dict | None]]) -> dict:
    """Rows for instances; ``live`` asks the nodes what runs ({node: {instance: info}} or None)."""
    predicate = _compile("instance", qfilter_list)
    wanted = set(fields) | filter_fields(qfilter_list)
    instances = sorted(data.instances.values(), key=lambda i: i.name)
    reports: dict[str, dict | None] = {}
    if any(INSTANCE_FIELDS.get(f, (0, 0, 0, 0, False))[4] for f in wanted):
        nodes = {i.primary_node for i in instances}
        online = {n: data.nodes[n]["primary_ip"] for n in nodes
                  if n in data.nodes and not data.nodes[n]["offline"]}
        hypervisors = sorted({i.hypervisor for i in instances})
        reports = live(online, hypervisors) if online else {}
    specs = [(name, INSTANCE_FIELDS.get(name)) for name in wanted]     # looked up once, not per instance
    static = [(name, spec[3]) for name, spec in specs if spec is not None and not spec[4]]
    dynamic = [(name, spec[3]) for name, spec in specs if spec is not None and spec[4]]
    unknown = {name: (RS_UNKNOWN, None) for name, spec in specs if spec is None}
    rows = []
    for inst in instances:
        node = data.nodes.get(inst.primary_node)
        report = reports.get(inst.primary_node)
        info = None if report is None else report.get(inst.name)
        values: dict[str, tuple[int, Any]] = dict(unknown)
        for name, getter in static:
            values[name] = (RS_NORMAL, getter(inst, data, None))
        for name, getter in dynamic:
            if node is None or node["offline"]:
                values[name] = (RS_OFFLINE, None) if name != "status" else (RS_NORMAL, "ERROR_nodeoffline")
            elif report is None:
                values[name] = (RS_NODATA, None) if name != "status" else (RS_NORMAL, "ERROR_nodedown")
            elif name == "status":
                values[name] = (RS_NORMAL, instance_status(inst, node, info, True))
            elif name == "oper_state":
                values[name] = (RS_NORMAL, bool(info) and info.get("state") == "running")
            else:
                values[name] = (RS_NORMAL, getter(inst, data, info))
        if qfilter_list is None or predicate({k: v for k, (_, v) in values.items()}):
            rows.append([list(values[f]) for f in fields])
    return {"fields": field_definitions("instance", fields), "data": rows}


def _query_config_objects(what: str, table: dict, objects: list[dict], data: dict, fields: list[str],
                          qfilter_list: Any) -> dict:
    """Rows for objects whose fields all come from the config (groups, networks)."""
    predicate = _compile(what, qfilter_list)
    wanted = set(fields) | filter_fields(qfilter_list)
    rows = []
    for obj in sorted(objects, key=lambda o: o["name"]):
        values = {name: (RS_NORMAL, table[name][3](obj, data)) if name in table else (RS_UNKNOWN, None)
                  for name in wanted}
        if predicate({k: v for k, (_, v) in values.items()}):
            rows.append([list(values[f]) for f in fields])
    return {"fields": field_definitions(what, fields), "data": rows}


def query_groups(data: dict, fields: list[str], qfilter_list: Any) -> dict:
    return _query_config_objects("group", GROUP_FIELDS, list(data.nodegroups.values()), data, fields,
                                 qfilter_list)


def query_networks(data: dict, fields: list[str], qfilter_list: Any) -> dict:
    return _query_config_objects("network", NETWORK_FIELDS, list(data.get("networks", {}).values()), data,
                                 fields, qfilter_list)


def query_exports(data: dict, fields: list[str], qfilter_list: Any,
                  live: Callable[[dict[str, str]], dict[str, list | None]]) -> dict:
    """Rows (node, export); ``live`` asks the online nodes for their export lists ({node: names or None}).

    A node that is offline or does not answer gives one row whose export is RS_OFFLINE or RS_NODATA.
    """
    predicate = _compile("export", qfilter_list)
    nodes = sorted(data.nodes.values(), key=lambda n: n["name"])
    online = {n["name"]: n["primary_ip"] for n in nodes if not n["offline"]}
    reports = live(online) if online else {}
    rows = []
    for node in nodes:
        name = node["name"]
        names = reports.get(name)
        if node["offline"] or names is None:
            entries = [(RS_OFFLINE if node["offline"] else RS_NODATA, None)]
        else:
            entries = [(RS_NORMAL, export) for export in names]
        for entry in entries:
            values = {"node": (RS_NORMAL, name), "export": entry}
            if predicate({k: v for k, (_, v) in values.items()}):
                rows.append([list(values[f]) if f in values else [RS_UNKNOWN, None] for f in fields])
    return {"fields": field_definitions("export", fields), "data": rows}
