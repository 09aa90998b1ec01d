"""Query2: field definitions and row building for nodes, jobs and the cluster.

A query names fields and an optional filter (genet.qfilter's list form) and gets
Ganeti's shape back: ``{"fields": [definitions], "data": [[[status, value]...]]}``.
"""
from __future__ import annotations

from typing import Any, Callable

from genet import config, errors, qfilter
from genet.jobs import JOB_FIELDS

RS_NORMAL, RS_UNKNOWN, RS_NODATA, RS_UNAVAIL, RS_OFFLINE = 0, 1, 2, 3, 4

# name: (title, kind, doc, getter(node, data) or None for live fields)
NODE_FIELDS: dict[str, tuple[str, str, str, Callable | None]] = {
    "name": ("Node", "text", "Node name", lambda n, d: n["name"]),
    "uuid": ("UUID", "text", "Node UUID", lambda n, d: n["uuid"]),
    "pip": ("PrimaryIP", "text", "Primary IP address", lambda n, d: n["primary_ip"]),
    "sip": ("SecondaryIP", "text", "Secondary IP address", lambda n, d: n["secondary_ip"]),
    "master": ("IsMaster", "bool", "Whether node is master", lambda n, d: n["name"] == d["cluster"]["master_node"]),
    "master_candidate": ("MasterC", "bool", "Whether node is a master candidate", lambda n, d: n["master_candidate"]),
    "master_capable": ("MasterCapable", "bool", "Whether node can become a master candidate",
                       lambda n, d: n["master_capable"]),
    "vm_capable": ("VMCapable", "bool", "Whether node can host instances", lambda n, d: n["vm_capable"]),
    "offline": ("Offline", "bool", "Whether node is marked offline", lambda n, d: n["offline"]),
    "drained": ("Drained", "bool", "Whether node is drained", lambda n, d: n["drained"]),
    "role": ("Role", "text", "Node role: M(aster), C(andidate), R(egular), D(rained), O(ffline)",
             lambda n, d: config.node_role(d, n)[0].upper()),
    "group": ("Group", "text", "Node group", lambda n, d: d["nodegroups"][n["group"]]["name"]),
    "group.uuid": ("GroupUUID", "text", "UUID of node group", lambda n, d: n["group"]),
    "pinst_cnt": ("Pinst", "number", "Number of instances with this node as primary",
                  lambda n, d: sum(1 for i in d["instances"].values() if i.get("primary_node") == n["name"])),
    "sinst_cnt": ("Sinst", "number", "Number of instances with this node as secondary",
                  lambda n, d: sum(1 for i in d["instances"].values() if n["name"] in i.get("secondary_nodes", []))),
    "tags": ("Tags", "other", "Tags", lambda n, d: n["tags"]),
    "serial_no": ("SerialNo", "number", "Node object serial number", lambda n, d: n["serial_no"]),
    "ctime": ("CTime", "timestamp", "Creation timestamp", lambda n, d: n["ctime"]),
    "mtime": ("MTime", "timestamp", "Modification timestamp", lambda n, d: n["mtime"]),
    "mtotal": ("MTotal", "unit", "Total amount of memory of physical machine", None),
    "mfree": ("MFree", "unit", "Memory available for instance allocations", None),
    "dtotal": ("DTotal", "unit", "Total disk space in the state directory", None),
    "dfree": ("DFree", "unit", "Available disk space in the state directory", None),
    "ctotal": ("CTotal", "number", "Total number of logical processors", None),
}

CLUSTER_FIELDS = {
    "name": ("Name", "text", "Cluster name", lambda c, d: c["cluster_name"]),
    "master_node": ("Master", "text", "Master node name", lambda c, d: c["master_node"]),
    "candidate_pool_size": ("CandidatePoolSize", "number", "Master candidate pool size",
                            lambda c, d: c["candidate_pool_size"]),
    "serial_no": ("SerialNo", "number", "Config serial number", lambda c, d: d["serial_no"]),
    "tags": ("Tags", "other", "Tags", lambda c, d: c["tags"]),
    "uuid": ("UUID", "text", "Cluster UUID", lambda c, d: c["uuid"]),
}

def instance_status(inst: dict, node: dict, live: dict | None, reachable: bool) -> str:
    """Ganeti's instance status from the admin state and what the primary node reports."""
    if node is None or node["offline"]:
        return "ERROR_nodeoffline"
    if not reachable:
        return "ERROR_nodedown"
    up = inst["admin_state"] == "up"
    if live is not None and live.get("state") == "running":
        return "running" if up else "ERROR_up"
    if live is not None and live.get("state") == "shutdown" and up:
        return "USER_down"
    return "ERROR_down" if up else "ADMIN_down"


def _live(name: str):
    return lambda i, d, live: (live or {}).get(name)


# name: (title, kind, doc, getter(instance, data, live info or None), needs live data)
INSTANCE_FIELDS: dict[str, tuple[str, str, str, Callable, bool]] = {
    "name": ("Instance", "text", "Instance name", lambda i, d, l: i["name"], False),
    "uuid": ("UUID", "text", "Instance UUID", lambda i, d, l: i["uuid"], False),
    "os": ("OS", "text", "Operating system", lambda i, d, l: i["os"], False),
    "pnode": ("Primary_node", "text", "Primary node", lambda i, d, l: i["primary_node"], False),
    "snodes": ("Secondary_Nodes", "other", "Secondary nodes", lambda i, d, l: i["secondary_nodes"], False),
    "admin_state": ("InstanceState", "text", "Desired state of the instance (up or down)",
                    lambda i, d, l: i["admin_state"], False),
    "admin_up": ("Autostart", "bool", "Whether the instance should be running",
                 lambda i, d, l: i["admin_state"] == "up", False),
    "disk_template": ("Disk_template", "text", "Disk template", lambda i, d, l: i["disk_template"], False),
    "hypervisor": ("Hypervisor", "text", "Hypervisor", lambda i, d, l: i["hypervisor"], False),
    "beparams": ("BackendParameters", "other", "Backend parameters", lambda i, d, l: i["beparams"], False),
    "hvparams": ("HypervisorParameters", "other", "Hypervisor parameters", lambda i, d, l: i["hvparams"], False),
    "be/maxmem": ("ConfigMaxMem", "unit", "Maximum memory (MiB)", lambda i, d, l: i["beparams"]["maxmem"], False),
    "be/minmem": ("ConfigMinMem", "unit", "Minimum memory (MiB)", lambda i, d, l: i["beparams"]["minmem"], False),
    "be/vcpus": ("ConfigVCPUs", "number", "Virtual CPUs", lambda i, d, l: i["beparams"]["vcpus"], False),
    "disk.count": ("Disks", "number", "Number of disks", lambda i, d, l: len(i["disks"]), False),
    "disk.sizes": ("Disk_sizes", "other", "Disk sizes (MiB)", lambda i, d, l: [x["size"] for x in i["disks"]], False),
    "disk_usage": ("DiskUsage", "unit", "Total disk space used (MiB)",
                   lambda i, d, l: sum(x["size"] for x in i["disks"]), False),
    "nic.count": ("NICs", "number", "Number of NICs", lambda i, d, l: len(i["nics"]), False),
    "nic.macs": ("NIC_MACs", "other", "MAC addresses", lambda i, d, l: [n["mac"] for n in i["nics"]], False),
    "nic.ips": ("NIC_IPs", "other", "IP addresses", lambda i, d, l: [n["ip"] for n in i["nics"]], False),
    "nic.modes": ("NIC_modes", "other", "NIC modes", lambda i, d, l: [n["mode"] for n in i["nics"]], False),
    "nic.links": ("NIC_links", "other", "NIC links", lambda i, d, l: [n["link"] for n in i["nics"]], False),
    "tags": ("Tags", "other", "Tags", lambda i, d, l: i["tags"], False),
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

RESOURCES = {"node": NODE_FIELDS, "job": JOB_FIELDS, "cluster": CLUSTER_FIELDS, "instance": INSTANCE_FIELDS}


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
    nodes = sorted(data["nodes"].values(), key=lambda n: n["name"])
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
    cluster = data["cluster"]
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
    instances = sorted(data["instances"].values(), key=lambda i: i["name"])
    reports: dict[str, dict | None] = {}
    if any(INSTANCE_FIELDS.get(f, (0, 0, 0, 0, False))[4] for f in wanted):
        nodes = {i["primary_node"] for i in instances}
        online = {n: data["nodes"][n]["primary_ip"] for n in nodes
                  if n in data["nodes"] and not data["nodes"][n]["offline"]}
        hypervisors = sorted({i["hypervisor"] for i in instances})
        reports = live(online, hypervisors) if online else {}
    rows = []
    for inst in instances:
        node = data["nodes"].get(inst["primary_node"])
        report = reports.get(inst["primary_node"])
        info = None if report is None else report.get(inst["name"])
        values: dict[str, tuple[int, Any]] = {}
        for name in wanted:
            spec = INSTANCE_FIELDS.get(name)
            if spec is None:
                values[name] = (RS_UNKNOWN, None)
            elif not spec[4]:
                values[name] = (RS_NORMAL, spec[3](inst, data, None))
            elif node is None or node["offline"]:
                values[name] = (RS_OFFLINE, None) if name != "status" else (RS_NORMAL, "ERROR_nodeoffline")
            elif report is None:
                values[name] = (RS_NODATA, None) if name != "status" else (RS_NORMAL, "ERROR_nodedown")
            elif name == "status":
                values[name] = (RS_NORMAL, instance_status(inst, node, info, True))
            elif name == "oper_state":
                values[name] = (RS_NORMAL, bool(info) and info.get("state") == "running")
            else:
                values[name] = (RS_NORMAL, spec[3](inst, data, info))
        if predicate({k: v for k, (_, v) in values.items()}):
            rows.append([list(values[f]) for f in fields])
    return {"fields": field_definitions("instance", fields), "data": rows}
