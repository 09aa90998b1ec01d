"""Which allocator places instances: the one asked for (-I), else the cluster's default
(gnt-cluster modify -I), as Ganeti's CheckIAllocatorOrNode and GetDefaultIAllocator decide.

genet runs no external allocator yet (issue 15): it answers to Ganeti's standard allocator's
name only, with its built-in choice of the node with most free memory.
"""
from __future__ import annotations

from genet import errors

ALLOCATORS = ("hail",)
DEFAULT_SHORTCUT = "."          # Ganeti's -I .: the cluster's default allocator


def check_allocator(name: str | None) -> None:
    if name is not None and name not in ALLOCATORS:
        raise errors.OpPrereqError(f"iallocator {name!r} is not available: genet runs no external allocator and"
                                   f" answers to {', '.join(ALLOCATORS)} only, with its built-in choice of the node"
                                   " with most free memory", errors.ECode.INVAL)


def default_allocator(cfg) -> str:
    return cfg.read(lambda data: data.cluster["default_iallocator"])


def allocator_or_nodes(lu, iallocator: str | None, nodes) -> str | None:
    """The allocator that chooses the nodes, None when nodes are given: Ganeti's rule (not both;
    neither, or ``.``, means the cluster's default, which must then be set)."""
    if nodes and iallocator is not None:
        raise errors.OpPrereqError("Do not specify both, iallocator and node", errors.ECode.INVAL)
    if nodes:
        return None
    if iallocator is None or iallocator == DEFAULT_SHORTCUT:
        iallocator = default_allocator(lu.cfg)
        if not iallocator:
            raise errors.OpPrereqError("No iallocator or node given and no cluster-wide default iallocator found;"
                                       " please specify either an iallocator or a node, or set a cluster-wide"
                                       " default iallocator", errors.ECode.INVAL)
    check_allocator(iallocator)
    return iallocator


def allocator(lu, iallocator: str | None) -> str:
    """The allocator of an operation that always uses one (group evacuate, change-group)."""
    if iallocator is None or iallocator == DEFAULT_SHORTCUT:
        iallocator = default_allocator(lu.cfg)
        if not iallocator:
            raise errors.OpPrereqError("No iallocator was specified, neither in the opcode nor as a cluster-wide"
                                       " default", errors.ECode.INVAL)
    check_allocator(iallocator)
    return iallocator
