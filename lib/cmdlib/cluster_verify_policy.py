"""What gnt-cluster verify checks of placement, as Ganeti's verify does: instances that break
their group's instance policy (EINSTANCEPOLICY, a warning) and N+1 memory redundancy
(ENODEN1, an error; skipped with --no-nplus1-mem): could each node start, from its free
memory, the instances whose secondary it is should any one of their primary nodes fail."""
from __future__ import annotations

from typing import Callable

from genet import ipolicy, params
from genet.cmdlib.instance_policy import group_policy

Report = Callable[[str, str, str, str], None]      # (code, kind, name, message)


def in_group(data, node: str, group: str | None) -> bool:
    return group is None or data.nodes[node]["group"] == group


def verify_policies(data, group: str | None, warning: Report) -> None:
    """Each instance (of ``group``: its primary there) against its primary node's group's policy."""
    for name, inst in sorted(data.instances.items()):
        primary = inst.primary_node
        if primary not in data.nodes or not in_group(data, primary, group):
            continue
        found = ipolicy.instance_violations(group_policy(data, data.nodes[primary]["group"]), inst,
                                            params.beparams(data, inst))
        if found:
            warning("EINSTANCEPOLICY", "instance", name, ipolicy.comma_join(found))


def failover_memory(data) -> dict[str, dict[str, int]]:
    """Per secondary node, per primary node: the memory (minmem) its auto-balanced instances
    need should that primary fail (Ganeti counts stopped instances too: they may be started)."""
    needed: dict[str, dict[str, int]] = {}
    for inst in data.instances.values():
        be = params.beparams(data, inst)
        for secondary in inst.get("secondary_nodes", []):
            per_primary = needed.setdefault(secondary, {})
            per_primary.setdefault(inst.primary_node, 0)
            if be["auto_balance"]:
                per_primary[inst.primary_node] += int(be["minmem"])
    return needed


def verify_n_plus_one(rpc, data, reachable: dict[str, str], group: str | None, feedback, error: Report) -> None:
    """Ganeti's _VerifyNPlusOneMemory over the free memory the cluster's default hypervisor
    reports on each reachable, online node of the group."""
    feedback("* Verifying N+1 Memory redundancy")
    needed = failover_memory(data)
    nodes = {n: a for n, a in reachable.items() if n in needed and in_group(data, n, group)
             and not data.nodes[n]["offline"]}
    if not nodes:
        return
    hypervisor = data.cluster["enabled_hypervisors"][0]
    results = rpc.hv_node_info.on(nodes, hypervisor)
    for node in sorted(nodes):
        res = results[node]
        if res.failed:
            error("ENODEHV", "node", node, "rpc call to node failed (hvinfo)")
            continue
        free = int(res.payload["memory_free"])
        for primary, memory in sorted(needed[node].items()):
            if free < memory:
                error("ENODEN1", "node", node, "not enough memory to accomodate instance failovers should node"
                      f" {primary} fail ({memory}MiB needed, {free}MiB available)")
