"""Running an IAllocator from a logical unit: the request built as Ganeti's masterd builds it
(doc/iallocator.rst), answered by genet's built-in hail in-process or by an external allocator
program from the search path (Ganeti's own hail, or a site's script), and the answer checked.

One request builder serves every caller: instance creation, multi-allocation, relocation
(replace-disks -I, failover/migrate -I of shared storage), node evacuation, group change and
gnt-debug iallocator.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
from pathlib import Path

from genet import errors, params

BUILTIN = "hail"
VERSION = 2
# where allocators are looked for: genet's own folder, then Ganeti's default search path
SEARCH_PATH = ("/usr/lib/genet/iallocators", "/usr/local/lib/ganeti/iallocators", "/usr/lib/ganeti/iallocators",
               "/usr/share/ganeti/iallocators", "/usr/local/share/ganeti/iallocators")
TIMEOUT = 300.0
# the built-in hail checks global N+1 redundancy only in groups of at least this many nodes
CAPACITY_MIN_NODES = 2
# genet's templates as a Ganeti allocator knows them: genet's mirror keeps a copy on a secondary
# node as drbd does, so Ganeti's hail (and any allocator written for Ganeti) can place it
GANETI_TEMPLATES = {"mirror": "drbd"}


def ganeti_template(name: str) -> str:
    return GANETI_TEMPLATES.get(name, name)


def _policy(policy: dict) -> dict:
    """An instance policy whose allowed templates are named as Ganeti names them."""
    names = [ganeti_template(t) for t in policy.get("disk-templates", [])]
    return {**policy, "disk-templates": sorted(set(names), key=names.index)}


def search_path() -> tuple[str, ...]:
    """The folders searched; GENET_IALLOCATOR_PATH (colon-separated) comes first when set."""
    extra = tuple(p for p in os.environ.get("GENET_IALLOCATOR_PATH", "").split(":") if p)
    return extra + SEARCH_PATH


def find_program(name: str) -> Path | None:
    """The allocator program ``name`` (a path, or a name in the search path), if executable."""
    candidates = [Path(name)] if os.path.isabs(name) else [Path(folder) / name for folder in search_path()]
    return next((p for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)


def check(name: str) -> None:
    """Refuse an allocator that is neither genet's built-in nor a program in the search path."""
    if name != BUILTIN and find_program(name) is None:
        raise errors.OpPrereqError(f"iallocator '{name}' is not available: it is not genet's built-in {BUILTIN}"
                                   f" and no executable of that name is in {', '.join(search_path())}",
                                   errors.ECode.INVAL)


# --- the request ------------------------------------------------------------------------------

def required_nodes(template: str) -> int:
    """Two nodes for a template that keeps a second copy, else one (unknown templates: one)."""
    from genet.storage.base import TEMPLATES
    try:
        return 2 if TEMPLATES.cls(template).mirrored else 1
    except LookupError:
        return 1


def new_instance(name: str, template: str, disks: list[dict], nics: list[dict], memory: int, vcpus: int,
                 spindle_use: int, os_name: str, hypervisor: str, tags=()) -> dict:
    """A new instance as an allocate or multi-allocate request describes it."""
    return {"name": name, "disk_template": ganeti_template(template), "tags": list(tags), "os": os_name, "vcpus": vcpus,
            "memory": memory, "spindle_use": spindle_use, "hypervisor": hypervisor,
            "disks": [{"size": int(d.get("size", 0)), "mode": d.get("mode", "rw")} for d in disks],
            "disk_space_total": sum(int(d.get("size", 0)) for d in disks),
            "nics": [{"mac": n.get("mac"), "ip": n.get("ip"), "mode": n.get("mode"), "link": n.get("link"),
                      "network": n.get("network")} for n in nics],
            "required_nodes": required_nodes(template)}


def message(lu, data, request: dict) -> dict:
    """The whole input message: the cluster as the allocator sees it, and ``request``."""
    cluster = data.cluster
    live = _live(lu, data)
    return {
        "version": VERSION, "cluster_name": cluster["cluster_name"], "cluster_tags": list(cluster.get("tags", [])),
        "enabled_hypervisors": list(cluster["enabled_hypervisors"]), "ipolicy": _policy(params.ipolicy(data)),
        "nodegroups": {u: {"name": g["name"], "alloc_policy": g["alloc_policy"], "networks": list(g["networks"]),
                           "ipolicy": _policy(params.ipolicy(data, g)), "tags": list(g["tags"])}
                       for u, g in data.nodegroups.items()},
        "nodes": {n["name"]: _node(data, n, live.get(n["name"])) for n in data.nodes.values()},
        "instances": {i["name"]: _instance(data, i) for i in data.instances.values()},
        "request": request,
    }


def _live(lu, data) -> dict[str, tuple[dict, dict, dict] | None]:
    """For each online node: its resources, its hypervisor's memory view and its guests."""
    asked = {n["name"]: n["primary_ip"] for n in data.nodes.values() if not n["offline"] and n["vm_capable"]}
    if not asked:
        return {}
    hypervisor = data.cluster["enabled_hypervisors"][0]
    resources = lu.rpc.node_info.on(asked)
    memory = lu.rpc.hv_node_info.on(asked, hypervisor)
    guests = lu.rpc.instances_info.on(asked, list(data.cluster["enabled_hypervisors"]))
    out = {}
    for name in asked:
        res, mem = resources[name], memory[name]
        if res.failed or mem.failed:
            out[name] = None
            continue
        running = guests[name].payload if not guests[name].failed else {}
        out[name] = (res.payload, mem.payload, running or {})
    return out


def _node(data, node: dict, live) -> dict:
    group = data.nodegroups.get(node["group"], {})
    nd = params.ndparams(data, group, node.get("ndparams", {}))
    entry = {"primary_ip": node["primary_ip"], "secondary_ip": node["secondary_ip"], "tags": list(node["tags"]),
             "master_candidate": node["master_candidate"], "drained": node["drained"],
             "offline": node["offline"] or live is None, "master_capable": node["master_capable"],
             "vm_capable": node["vm_capable"], "group": node["group"],
             "ndparams": {"exclusive_storage": bool(nd.get("exclusive_storage", False)),
                          "spindle_count": int(nd.get("spindle_count", 1)),
                          "oob_program": nd.get("oob_program")}}
    if live is None:
        return entry
    res, mem, running = live
    free, primary, primary_up = int(mem["memory_free"]), 0, 0
    for inst in data.instances.values():      # Ganeti's: stopped primaries keep their memory reserved
        if inst["primary_node"] != node["name"]:
            continue
        maxmem = int(params.beparams(data, inst)["maxmem"])
        used = int((running.get(inst["name"]) or {}).get("memory", 0))
        free -= max(0, maxmem - used)
        primary += maxmem
        primary_up += maxmem if inst["admin_state"] == "up" else 0
    total = int(mem["memory_total"])
    entry.update(total_memory=total, free_memory=max(0, free),
                 reserved_memory=max(0, total - int(mem["memory_free"]) - int(mem.get("memory_hv", 0))),
                 total_disk=int(res["dtotal"]), free_disk=int(res["dfree"]), total_cpus=int(res["ctotal"]),
                 reserved_cpus=int(res.get("cnos", 1)), total_spindles=int(nd.get("spindle_count", 1)),
                 free_spindles=int(nd.get("spindle_count", 1)), i_pri_memory=primary, i_pri_up_memory=primary_up)
    return entry


def _instance(data, inst: dict) -> dict:
    be = params.beparams(data, inst)
    disks = inst["disks"]
    return {"disks": [{"size": int(d["size"]), "mode": d.get("mode", "rw")} for d in disks],
            "disk_space_total": sum(int(d["size"]) for d in disks),
            "nics": [{"mac": n.get("mac"), "ip": n.get("ip"), "mode": (n.get("nicparams") or {}).get("mode"),
                      "link": (n.get("nicparams") or {}).get("link", n.get("link")), "network": n.get("network")}
                     for n in inst["nics"]],
            "disk_template": ganeti_template(inst["disk_template"]), "os": inst["os"], "tags": list(inst["tags"]),
            "hypervisor": inst["hypervisor"], "admin_state": inst["admin_state"],
            "memory": int(be["maxmem"]), "vcpus": int(be["vcpus"]), "spindle_use": int(be.get("spindle_use", 1)),
            "nodes": [inst["primary_node"], *inst["secondary_nodes"]]}


# --- running it -------------------------------------------------------------------------------

def arguments(data, extra: tuple[str, ...] = ()) -> list[str]:
    """The allocator's command-line options: the cluster's default_iallocator_params as
    ``--KEY=VALUE`` (as Ganeti passes them), then ``extra``."""
    own = data.cluster.get("default_iallocator_params") or {}
    return [f"--{key}" if value in (None, "", True) else f"--{key}={value}" for key, value in sorted(own.items())
            ] + list(extra)


def run(name: str, msg: dict, args: list[str] = ()) -> dict:
    """The allocator's answer ({"success", "info", "result"}) to ``msg``; ``args`` are its options."""
    if name == BUILTIN:
        return _builtin(msg, list(args))
    program = find_program(name)
    if program is None:
        check(name)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="genet-ialloc-") as request:
        json.dump(msg, request)
        request.flush()
        try:
            done = subprocess.run([str(program), *args, request.name], capture_output=True, text=True,
                                  timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise errors.OpExecError(f"iallocator '{name}' did not answer within {TIMEOUT:.0f} seconds") from None
    if done.returncode != 0:
        raise errors.OpExecError(f"iallocator '{name}' failed (exit {done.returncode}):"
                                 f" {(done.stderr or done.stdout).strip()}")
    try:
        answer = json.loads(done.stdout)
        if not isinstance(answer, dict) or not {"success", "info", "result"} <= set(answer):
            raise ValueError("missing success, info or result")
    except ValueError as err:
        raise errors.OpExecError(f"iallocator '{name}' gave an invalid answer ({err}): {done.stdout[:200]!r}") \
            from None
    return answer


def _builtin(msg: dict, args: list[str]) -> dict:
    """genet's hail, in-process (the same code as the hail program, with the same options)."""
    from genet.htools import hail, ialloc, loader
    try:
        options = hail.defaults(args)
    except SystemExit:
        raise errors.OpPrereqError(f"hail does not take the options {' '.join(args)} (see hail(1))",
                                   errors.ECode.INVAL) from None
    try:
        data, request = ialloc.parse(json.dumps(msg))
    except ialloc.RequestError as err:
        raise errors.OpExecError(f"iallocator request not understood: {err}") from None
    st = loader.build_state(data, options, verbose=0)
    opts = dataclasses.replace(hail.algorithm_options(options), capacity_min_nodes=CAPACITY_MIN_NODES)
    success, info, result = hail.answer(st, request, opts)
    return {"success": success, "info": info, "result": result}


def allocate(lu, name: str, data, request: dict) -> list:
    """Run ``name`` on an allocate-like request; its result, or Ganeti's refusal naming the
    allocator and its reasons."""
    answer = run(name, message(lu, data, request), arguments(data))
    if not answer["success"]:
        raise _refused(name, answer)
    return answer["result"]


def _refused(name: str, answer: dict) -> errors.OpPrereqError:
    return errors.OpPrereqError(f"Can't compute nodes using iallocator '{name}': {answer['info']}",
                                errors.ECode.NORES)


def place_existing(lu, name: str, data, inst, candidates: list[str], count: int = 1,
                   reserved: dict[str, int] | None = None) -> list[str]:
    """Where the allocator would put ``inst`` (an existing instance, asked for as a new one)
    among ``candidates``: ``count`` nodes, primary first. ``reserved`` memory (planned moves)
    is taken off the nodes' free memory first. The instance is still counted where it is, so
    the global N+1 check (which would count it twice) is left out."""
    be = params.beparams(data, inst)
    request = {"type": "allocate", **new_instance(
        inst["name"], inst["disk_template"], inst["disks"], [], int(be["maxmem"]), int(be["vcpus"]),
        int(be.get("spindle_use", 1)), inst["os"], inst["hypervisor"], inst["tags"]),
        "required_nodes": count, "restrict-to-nodes": sorted(candidates)}
    msg = message(lu, data, request)
    for node, memory in (reserved or {}).items():
        if "free_memory" in msg["nodes"].get(node, {}):
            msg["nodes"][node]["free_memory"] = max(0, msg["nodes"][node]["free_memory"] - memory)
    answer = run(name, msg, arguments(data, ("--no-capacity-checks",)))
    if not answer["success"]:
        raise _refused(name, answer)
    return list(answer["result"])


def relocate(lu, name: str, data, inst, old: str) -> str:
    """Ganeti's relocate request: a new node for ``inst`` instead of ``old`` (its secondary, for
    mirrored disks; its primary, for shared ones)."""
    request = {"type": "relocate", "name": inst["name"], "required_nodes": 1,
               "disk_space_total": sum(int(d["size"]) for d in inst["disks"]), "relocate_from": [old]}
    answer = run(name, message(lu, data, request), arguments(data))
    if not answer["success"]:
        raise _refused(name, answer)
    return answer["result"][0]
