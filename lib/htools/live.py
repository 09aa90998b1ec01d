"""The cluster as its master daemon reports it (hbal -L), in the htools' records.

The same queries Ganeti's Luxi backend makes (Backend/Luxi.hs): nodes' memory, disk and CPUs,
instances' sizes, states and nodes, groups and their policies, the cluster's tags and policy.
As Ganeti does, a node that is offline, drained or not vm_capable is offline to the htools.
"""
from __future__ import annotations

from pathlib import Path

from genet import errors, luxi
from genet.htools.cluster import ClusterData, Group, Instance, IPolicy, ISpec, Node
from genet.htools.loader import HtoolsError

GROUP_FIELDS = ["uuid", "name", "alloc_policy", "ipolicy", "tags", "networks"]
NODE_FIELDS = ["name", "mtotal", "mnode", "mfree", "dtotal", "dfree", "ctotal", "cnos", "offline", "drained",
               "vm_capable", "ndparams", "group.uuid", "tags", "sptotal", "spfree"]
INSTANCE_FIELDS = ["name", "disk_usage", "be/maxmem", "be/vcpus", "status", "pnode", "snodes", "tags",
                   "be/auto_balance", "disk_template", "be/spindle_use", "forthcoming"]
SPEC_KEYS = ("memory-size", "cpu-count", "disk-size", "disk-count", "nic-count", "spindle-use")


def _spec(d: dict) -> ISpec:
    return ISpec(*(int(d[k]) for k in SPEC_KEYS))


def ipolicy(d: dict) -> IPolicy:
    """A policy as genet's config and RAPI write it (Ganeti's keys)."""
    return IPolicy([(_spec(mm["min"]), _spec(mm["max"])) for mm in d["minmax"]], _spec(d["std"]),
                   list(d["disk-templates"]), float(d["vcpu-ratio"]), float(d["spindle-ratio"]))


def _rows(client: luxi.Client, what: str, fields: list[str]) -> list[dict]:
    result = client.query(what, fields)
    return [{f: value for f, (_, value) in zip(fields, row)} for row in result["data"]]


def node_from_row(row: dict) -> Node:
    live = not row["offline"] and row["vm_capable"]
    ndp = row["ndparams"] or {}
    excl = bool(ndp.get("exclusive_storage", False))

    def num(key, default=0):
        value = row[key]
        return default if not live or value is None else value
    spindles = num("sptotal") if excl else int(ndp.get("spindle_count", 1))
    return Node(row["name"], float(num("mtotal")), int(num("mnode")),
                int(num("mfree")), float(num("dtotal")), int(num("dfree")), float(num("ctotal")),
                row["group.uuid"], offline=not live or bool(row["drained"]), spindles=int(spindles),
                tags=list(row["tags"] or []), excl_storage=excl, free_spindles=int(num("spfree")),
                n_cpu=int(num("cnos", 1)), cpu_speed=float(ndp.get("cpu_speed", 1.0)))


def instance_from_row(row: dict) -> Instance:
    snodes = row["snodes"] or []
    return Instance(row["name"], int(row["be/maxmem"]), int(row["disk_usage"] or 0), int(row["be/vcpus"]),
                    row["status"], bool(row["be/auto_balance"]), row["pnode"], snodes[0] if snodes else None,
                    row["disk_template"], list(row["tags"] or []), int(row["be/spindle_use"]), None,
                    bool(row.get("forthcoming")))


def read(client: luxi.Client) -> ClusterData:
    info = client.call("QueryClusterInfo")
    groups = [Group(g["name"], g["uuid"], g["alloc_policy"], list(g["tags"] or []), list(g["networks"] or []),
                    ipolicy(g["ipolicy"])) for g in _rows(client, "group", GROUP_FIELDS)]
    nodes = [node_from_row(r) for r in _rows(client, "node", NODE_FIELDS)]
    for n in nodes:
        n.master = n.name == info["master"]
    insts = [instance_from_row(r) for r in _rows(client, "instance", INSTANCE_FIELDS)]
    return ClusterData(groups, nodes, insts, list(info.get("tags") or []), ipolicy(info["ipolicy"]),
                       cluster_hypervisor(info))


def cluster_hypervisor(info: dict) -> str | None:
    """The cluster's hypervisor, which decides whether --static-kvm-node-memory applies."""
    return info.get("default_hypervisor") or (info.get("enabled_hypervisors") or [None])[0]


def client_for(args) -> luxi.Client:
    return luxi.Client(Path(args.luxi) if args.luxi else None)


def load(args) -> ClusterData:
    if getattr(args, "master", None):
        from genet.htools import rapi_backend
        return rapi_backend.load(args.master)
    try:
        return read(client_for(args))
    except errors.GenericError as err:
        raise HtoolsError(str(err)) from None
