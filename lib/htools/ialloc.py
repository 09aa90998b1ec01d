"""Ganeti's IAllocator protocol (doc/iallocator.rst, Backend/IAlloc.hs): the request an
allocator reads, as cluster records and a request, and the answer it writes.

Fields are read in Ganeti's order and refused with Ganeti's messages, so an allocator fed a bad
request says what Ganeti's hail says.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from genet.htools.cluster import ALLOC_POLICIES, TEMPLATES, ClusterData, Group, Instance, Node, default_ipolicy
from genet.htools.live import ipolicy as parse_ipolicy
from genet.htools.text import hs_show

ADMIN_STATES = {"up": "running", "down": "ADMIN_down", "offline": "ADMIN_offline"}
EVAC_MODES = ("primary-only", "secondary-only", "all")
NIC_MODES = ("bridged", "routed", "openvswitch")
REQUEST_TYPES = ("allocate", "relocate", "change-group", "node-evacuate", "multi-allocate", "allocate-secondary")


class RequestError(Exception):
    """A request hail cannot read (the program exits non-zero with the message)."""


_TYPES = {"String": str, "Int": int, "Double": (int, float), "Bool": bool, "JSObject": dict, "list": list}


def _is(value, kind: str) -> bool:
    if kind in ("Int", "Double") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


class Obj:
    """A JSON object read as Ganeti's tryFromObj/maybeFromObj read one, with a context for errors."""

    def __init__(self, data, context: str):
        self.data, self.context = data, context

    def get(self, key: str, kind: str):
        if key not in self.data:
            raise RequestError(f"{self.context}: key '{key}' not found, object contains only {hs_show(list(self.data))}")
        return self._typed(key, self.data[key], kind)

    def maybe(self, key: str, kind: str, default=None):
        value = self.data.get(key)
        return default if value is None else self._typed(key, value, kind)

    def _typed(self, key: str, value, kind: str):
        if not _is(value, kind):
            raise RequestError(f"{self.context}: key '{key}': Unable to read {kind}")
        return value


@dataclass
class Request:
    """What is asked: the type and its arguments (instance records for new instances)."""
    kind: str
    instances: list = field(default_factory=list)      # new Instance records, or names of existing ones
    required_nodes: list = field(default_factory=list)
    group: str | None = None
    restrict_to: list | None = None
    relocate_from: list = field(default_factory=list)
    target_groups: list = field(default_factory=list)
    evac_mode: str | None = None


def _base_instance(name: str, d: dict) -> Instance:
    """Ganeti's parseBaseInstance: what an existing and a new instance both carry."""
    o = Obj(d, f"invalid data for instance '{name}'")
    disk_total = o.get("disk_space_total", "Int")
    disks = []
    for disk in o.get("disks", "list"):
        if not isinstance(disk, dict):
            raise RequestError(f"{o.context}: key 'disks': Unable to read JSObject")
        dk = Obj(disk, o.context)
        disks.append((dk.get("size", "Int"), dk.maybe("spindles", "Int")))
    mem, vcpus = o.get("memory", "Int"), o.get("vcpus", "Int")
    tags = o.get("tags", "list")
    template = o.get("disk_template", "String")
    if template not in TEMPLATES:
        raise RequestError(f'{o.context}: key \'disk_template\': Invalid string value for type DiskTemplate: "{template}"')
    spindle_use = o.get("spindle_use", "Int")
    nics = []
    for nic in o.get("nics", "list"):
        nk = Obj(nic, f"invalid data for instance '{name}'")
        mode = nk.maybe("mode", "String")
        if mode is not None and mode not in NIC_MODES:
            raise RequestError(f"invalid NIC mode in instance {name}")
        nics.append(nk.maybe("network", "String"))
    state = o.maybe("admin_state", "String", "up")
    if state not in ADMIN_STATES:
        raise RequestError(f'{o.context}: key \'admin_state\': Invalid string value for type AdminState: "{state}"')
    spindles = None if any(sp is None for _, sp in disks) else sum(sp for _, sp in disks)
    return Instance(name, mem, disk_total, vcpus, ADMIN_STATES[state], True, "", None, template, list(tags),
                    spindle_use, spindles, bool(o.maybe("forthcoming", "Bool", False)), disks=disks, nics=nics)


def _group(uuid: str, d: dict) -> Group:
    o = Obj(d, f"invalid data for group '{uuid}'")
    name, policy = o.get("name", "String"), o.get("alloc_policy", "String")
    if policy not in ALLOC_POLICIES:
        raise RequestError(f'{o.context}: key \'alloc_policy\': Invalid string value for type AllocPolicy: "{policy}"')
    networks, pol, tags = o.get("networks", "list"), o.get("ipolicy", "JSObject"), o.get("tags", "list")
    try:
        policy_obj = parse_ipolicy(pol)
    except (KeyError, TypeError, ValueError):
        raise RequestError(f"{o.context}: key 'ipolicy': Unable to read IPolicy") from None
    return Group(name, uuid, policy, list(tags), list(networks), policy_obj)


def _node(name: str, d: dict, groups: dict) -> Node:
    o = Obj(d, f"invalid data for node '{name}'")
    offline, drained, group = o.get("offline", "Bool"), o.get("drained", "Bool"), o.get("group", "String")
    vm_capable = o.maybe("vm_capable", "Bool", True)
    if group not in groups:
        raise RequestError(f"Unknown group '{group}' for node {name}")
    ndparams = Obj(o.get("ndparams", "JSObject"), o.context)
    tags = o.maybe("tags", "list", [])
    excl = ndparams.get("exclusive_storage", "Bool")
    live = not offline and vm_capable

    def lv(key, kind, default):
        return o.get(key, kind) if live else default
    sptotal = lv("total_spindles", "Int", 0) if excl else ndparams.get("spindle_count", "Int")
    return Node(name, float(lv("total_memory", "Double", 0.0)), lv("reserved_memory", "Int", 0),
                lv("free_memory", "Int", 0), float(lv("total_disk", "Double", 0.0)), lv("free_disk", "Int", 0),
                float(lv("total_cpus", "Double", 0.0)), group, offline=not live or drained, spindles=sptotal,
                tags=list(tags), excl_storage=excl, free_spindles=lv("free_spindles", "Int", 0),
                n_cpu=lv("reserved_cpus", "Int", 0))


def _existing(name: str, d: dict, nodes: set) -> Instance:
    inst = _base_instance(name, d)
    placed = Obj(d, f"invalid data for instance '{name}'").get("nodes", "list")
    if not placed:
        raise RequestError(f"empty node list for instance {name}")
    for node in placed[:2]:
        if node not in nodes:
            raise RequestError(f"Unknown node '{node}' for instance {name}")
    inst.pnode, inst.snode = placed[0], (placed[1] if len(placed) > 1 else None)
    return inst


def parse(text: str) -> tuple[ClusterData, Request]:
    """The cluster and the request of an IAllocator input message (Ganeti's parseData)."""
    try:
        decoded = json.loads(text)
    except ValueError:
        raise RequestError("Parsing input IAllocator message: Invalid JSON: a JSON text a serialized object or"
                           " array at the top level.") from None
    if not isinstance(decoded, dict):
        raise RequestError("Parsing input IAllocator message: Unable to read JSObject")
    top = Obj(decoded, "invalid iallocator message")
    req = Obj(top.get("request", "JSObject"), "invalid request dict")
    groups = {u: _group(u, g) for u, g in top.get("nodegroups", "JSObject").items()}
    nodes = [_node(n, d, groups) for n, d in top.get("nodes", "JSObject").items()]
    names = {n.name for n in nodes}
    insts = [_existing(i, d, names) for i, d in top.get("instances", "JSObject").items()]
    tags = top.get("cluster_tags", "list")
    hypervisors = top.get("enabled_hypervisors", "list")
    data = ClusterData(list(groups.values()), nodes, insts, list(tags), default_ipolicy(),
                       hypervisors[0] if hypervisors else None)
    return data, _request(req, data)


def _request(req: Obj, data: ClusterData) -> Request:
    kind = req.get("type", "String")

    def found(name, names):
        """Ganeti's Container.findByName: exactly one thing of that name."""
        if name not in names:
            raise RequestError(f"Wrong number of elems found with name {name}")
        return name

    def known(name):      # Ganeti's lookupInstance
        if name not in {i.name for i in data.instances}:
            raise RequestError(f"Unknown instance '{name}'")
        return name
    instances = {i.name for i in data.instances}
    groups = {g.uuid for g in data.groups} | {g.name for g in data.groups}
    if kind == "allocate":
        name = req.get("name", "String")
        group, restrict = req.maybe("group_name", "String"), req.maybe("restrict-to-nodes", "list")
        count = req.get("required_nodes", "Int")
        return Request(kind, [_base_instance(name, req.data)], [count], group, restrict)
    if kind == "relocate":
        name = known(req.get("name", "String"))
        count = req.get("required_nodes", "Int")
        nodes = {n.name for n in data.nodes}
        return Request(kind, [name], [count],
                       relocate_from=[found(n, nodes) for n in req.get("relocate_from", "list")])
    if kind == "change-group":
        names = [found(n, instances) for n in req.get("instances", "list")]
        return Request(kind, names, target_groups=[found(g, groups) for g in req.get("target_groups", "list")])
    if kind == "node-evacuate":
        names = [found(n, instances) for n in req.get("instances", "list")]
        mode = req.get("evac_mode", "String")
        if mode not in EVAC_MODES:
            raise RequestError(f'invalid request dict: key \'evac_mode\': Invalid string value for type EvacMode: "{mode}"')
        return Request(kind, names, evac_mode=mode)
    if kind == "multi-allocate":
        out = Request(kind, group=req.maybe("group_name", "String"))
        for item in req.get("instances", "list"):
            r = Obj(item, "invalid request dict")
            name = r.get("name", "String")
            out.required_nodes.append(r.get("required_nodes", "Int"))
            out.instances.append(_base_instance(name, item))
        return out
    if kind == "allocate-secondary":
        return Request(kind, [known(req.get("name", "String"))])
    raise RequestError(f"Invalid request type '{kind}'")


def response(success: bool, info: str, result) -> str:
    """Ganeti's formatResponse: success, info and result, compact."""
    return json.dumps({"success": success, "info": info, "result": result}, separators=(",", ":"))


def _spec_dict(spec) -> dict:
    return {"memory-size": spec.memory_size, "cpu-count": spec.cpu_count, "disk-size": spec.disk_size,
            "disk-count": spec.disk_count, "nic-count": spec.nic_count, "spindle-use": spec.spindle_use}


def policy_dict(pol) -> dict:
    """An instance policy in Ganeti's keys."""
    return {"minmax": [{"min": _spec_dict(lo), "max": _spec_dict(hi)} for lo, hi in pol.minmax],
            "std": _spec_dict(pol.std), "disk-templates": list(pol.disk_templates),
            "vcpu-ratio": pol.vcpu_ratio, "spindle-ratio": pol.spindle_ratio}


def instance_dict(i: Instance, with_nodes: bool = True) -> dict:
    """An instance as the request describes it (``nodes`` only for existing ones)."""
    state = {v: k for k, v in ADMIN_STATES.items()}.get(i.status, "up")
    out = {"disks": [{"size": size, "mode": "rw", **({} if sp is None else {"spindles": sp})}
                     for size, sp in i.disk_list],
           "disk_space_total": i.dsk, "memory": i.mem, "vcpus": i.vcpus, "tags": list(i.tags),
           "disk_template": i.template, "spindle_use": i.spindle_use,
           "nics": [{"network": net} if net else {} for net in i.nics], "admin_state": state}
    if i.forthcoming:
        out["forthcoming"] = True
    if with_nodes:
        out["nodes"] = [i.pnode] + ([i.snode] if i.snode else [])
    return out


def message(data: ClusterData, request: dict, cluster_name: str = "cluster", extra: dict | None = None) -> dict:
    """The IAllocator input message for ``data`` and ``request`` (the inverse of parse);
    ``extra`` adds fields per node or instance name (addresses, roles) that hail does not read."""
    extra = extra or {}
    nodes = {}
    for n in data.nodes:
        entry = {"group": n.group, "offline": n.offline, "drained": False, "vm_capable": True, "tags": list(n.tags),
                 "ndparams": {"exclusive_storage": n.excl_storage, "spindle_count": n.spindles},
                 "total_memory": n.t_mem, "reserved_memory": n.n_mem, "free_memory": n.f_mem,
                 "total_disk": n.t_dsk, "free_disk": n.f_dsk, "total_cpus": n.t_cpu, "reserved_cpus": n.n_cpu,
                 "total_spindles": n.spindles, "free_spindles": n.free_spindles}
        nodes[n.name] = {**entry, **extra.get(n.name, {})}
    return {"version": 2, "cluster_name": cluster_name, "cluster_tags": list(data.tags),
            "enabled_hypervisors": [data.hypervisor] if data.hypervisor else [],
            "ipolicy": policy_dict(data.ipolicy),
            "nodegroups": {g.uuid: {"name": g.name, "alloc_policy": g.alloc_policy, "networks": list(g.networks),
                                    "ipolicy": policy_dict(g.ipolicy), "tags": list(g.tags)} for g in data.groups},
            "nodes": nodes,
            "instances": {i.name: {**instance_dict(i), **extra.get(i.name, {})} for i in data.instances},
            "request": request}
