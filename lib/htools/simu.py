"""--simulate: an empty cluster described on the command line (Ganeti's Simu backend).

Each description 'alloc_policy,num_nodes,disk,ram,cpu[,spindles[,exclusive_storage]]' is one
node group ("group-01", ...) of identical, empty nodes ("node-01-001", ...), the first
node of the first group the master, under Ganeti's default instance policy.
"""
from __future__ import annotations

import re

from genet.htools import loader
from genet.htools.cluster import ALLOC_POLICIES, ClusterData, Group, Node, default_ipolicy
from genet.htools.options import parse_unit

POLICY_ABBREVIATIONS = {"p": "preferred", "a": "last_resort", "u": "unallocable"}


def _int(what: str, text: str) -> int:
    if not re.fullmatch(r"\s*-?\d+\s*", text):
        raise ValueError(f"{what}: cannot parse string '{text}'")
    return int(text)


def _bool(text: str) -> bool:
    if text.strip() not in ("True", "False"):
        raise ValueError(f"exclusive storage: cannot parse string '{text}'")
    return text.strip() == "True"


def _group(index: int, desc: str) -> tuple[Group, list[Node]]:
    parts = desc.split(",")
    if len(parts) == 5:
        parts.append("1")
    if len(parts) == 6:
        parts.append("False")
    if len(parts) != 7:
        raise ValueError("Invalid cluster specification, expected 6 comma-separated sections (allocation policy,"
                         " node count, disk size, memory size, number of CPUs, spindles) but got"
                         f" {len(desc.split(','))}: '{desc}'")
    policy = parts[0] if parts[0] in ALLOC_POLICIES else POLICY_ABBREVIATIONS.get(parts[0])
    if policy is None:
        raise ValueError(f'Invalid string value for type AllocPolicy: "{parts[0]}"; '
                         f"Cannot parse AllocPolicy abbreviation '{parts[0]}'")
    count = _int("node count", parts[1])
    sizes = []
    for what, value in (("disk size", parts[2]), ("memory size", parts[3])):
        try:
            sizes.append(parse_unit(value))
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from None
    disk, mem = sizes
    cpu, spindles, excl = _int("cpu count", parts[4]), _int("spindles", parts[5]), _bool(parts[6])
    group = Group(f"group-{index:02d}", f"fake-uuid-{index:02d}", policy, [], [], default_ipolicy())
    nodes = [Node(f"node-{index:02d}-{k:03d}", float(mem), 0, mem, float(disk), disk, float(cpu), group.uuid,
                  master=index == 1 and k == 1, spindles=spindles, excl_storage=excl, free_spindles=0, n_cpu=1)
             for k in range(1, count + 1)]
    return group, nodes


def cluster(descriptions: list[str]) -> ClusterData:
    """The simulated cluster; the descriptions last given first, as Ganeti's option parser keeps them."""
    groups, nodes = [], []
    try:
        for index, desc in enumerate(reversed(descriptions), 1):
            g, ns = _group(index, desc)
            groups.append(g)
            nodes += ns
    except ValueError as err:
        loader.fail(f"failed to load data, aborting: {err}")
    return ClusterData(groups, nodes, [], [], default_ipolicy(), first_node_index=1)
