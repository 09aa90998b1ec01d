"""Which allocator places instances: the one asked for (-I), else the cluster's default
(gnt-cluster modify -I), as Ganeti's CheckIAllocatorOrNode and GetDefaultIAllocator decide.
``hail`` is genet's built-in; any other name is a program in the iallocator search path
(genet.cmdlib.iallocator runs either).
"""
from __future__ import annotations

from genet import errors
from genet.cmdlib import iallocator

DEFAULT_SHORTCUT = "."          # Ganeti's -I .: the cluster's default allocator


def check_allocator(name: str | None) -> None:
    if name is not None:
        iallocator.check(name)


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
