"""The kvm backend: QEMU driven over QMP (exports only; backend.py has the map of the parts).

The export is lazy so that the pure parts (validation, cmdline) import without
qemu.qmp installed: the fake backend and unit tests use the hvparam table.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genet.hypervisor.kvm.backend import KvmHypervisor

__all__ = ["KvmHypervisor"]


def __getattr__(name: str) -> Any:
    if name == "KvmHypervisor":
        from genet.hypervisor.kvm.backend import KvmHypervisor
        return KvmHypervisor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
