"""Logical units, one per opcode; importing this package registers them all (every module of it)."""
import importlib
import pkgutil

from genet.cmdlib.base import LogicalUnit, lu_for

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["LogicalUnit", "lu_for"]
