"""The hv/ and be/ fields of instances: one per parameter the hypervisor backends and the
backend-parameter schema declare. The hv/ fields are read from the registry when a query runs
(a backend that registers later, or gains a parameter, has its fields at the next query)."""
from __future__ import annotations

from genet.query.common import UNAVAIL, Table, kind_of_ptype, kind_of_python_type, param_fields

# Ganeti's titles for the fields that have one (the others are titled by their name)
_HV_TITLES = {"acpi": "ACPI", "boot_order": "Boot_order", "cdrom_image_path": "CDROM_image_path",
              "cpu_type": "cpu_type", "disk_type": "Disk_type", "initrd_path": "Initrd_path",
              "kernel_path": "Kernel_path", "nic_type": "NIC_type", "pae": "PAE", "pci_pass": "pci_pass",
              "vnc_bind_address": "VNC_bind_address"}
_BE_TITLES = {"auto_balance": "Auto_balance", "minmem": "ConfigMinMem", "vcpus": "ConfigVCPUs",
              "maxmem": "ConfigMaxMem"}


def hv_kinds() -> dict[str, str]:
    """Every hvparam of every registered hypervisor, with its kind."""
    from genet.hypervisor.base import HYPERVISORS
    kinds: dict[str, str] = {}
    for hv in HYPERVISORS.classes():
        for name, param in hv.PARAMETERS.items():
            kinds.setdefault(name, kind_of_python_type(param.kind))
    return kinds


def be_kinds(aliases: set[str]) -> dict[str, str]:
    """Every backend parameter the opcodes take, but those that are aliases of another (memory)."""
    from genet.opcodes.instance import BEPARAMS
    return {name: kind_of_ptype(ptype) for name, ptype in BEPARAMS.fields.items() if f"be/{name}" not in aliases}


def hv_fields() -> Table:
    """hv/<name> for every hvparam of every registered hypervisor."""
    def getter(name: str):
        return lambda inst, ctx: ctx.hvparams(inst).get(name, UNAVAIL)
    return param_fields("hv", "hypervisor", hv_kinds(), _HV_TITLES, getter)


def be_fields(aliases: set[str]) -> Table:
    """be/<name> for every backend parameter; ``aliases`` are field names another field stands for."""
    def getter(name: str):
        return lambda inst, ctx: ctx.beparams(inst).get(name, UNAVAIL)
    return param_fields("be", "backend", be_kinds(aliases), _BE_TITLES, getter)
