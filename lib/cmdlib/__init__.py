"""Logical units, one per opcode; importing this package registers them all."""
from genet.cmdlib.base import LogicalUnit, lu_for
from genet.cmdlib import backup, cluster, group, instance, migration, network, node, oslist, tags, test  # noqa: F401  (registration)

__all__ = ["LogicalUnit", "lu_for"]
