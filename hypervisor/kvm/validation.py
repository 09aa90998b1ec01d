"""The kvm hvparams: one table of names, types, defaults and checks (genet.hypervisor.params).

Names follow Ganeti's hv_kvm where Ganeti has the parameter, so hvparams written
for Ganeti mean the same here.
"""
from __future__ import annotations

import ipaddress
import shlex
from typing import Any, Callable

from genet.hypervisor.params import Param

DISK_TYPES = ("paravirtual", "ide", "scsi-hd")
NIC_TYPES = ("paravirtual", "e1000", "rtl8139")
BOOT_ORDERS = ("disk", "network")     # Ganeti's cdrom/floppy need images genet has no parameter for
DISK_CACHES = ("default", "none", "writethrough", "writeback")
ACCELS = ("auto", "kvm", "tcg")


def _choice(*allowed: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def _abs_path_or_empty(v: str) -> str | None:
    return None if v == "" or v.startswith("/") else "must be an absolute path (or empty)"


def _positive(v: int) -> str | None:
    return None if v > 0 else "must be a positive number"


def _address_or_empty(v: str) -> str | None:
    if v == "":
        return None
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return "must be an IP address (or empty)"
    return None


def _shlex(v: str) -> str | None:
    try:
        shlex.split(v)
    except ValueError as err:
        return f"cannot be split like a shell line ({err})"
    return None


PARAMS: dict[str, Param] = {
    "kvm_path": Param(str, "/usr/bin/qemu-system-x86_64", "QEMU binary", _abs_path_or_empty),
    "kernel_path": Param(str, "", "kernel for direct boot; empty boots the BIOS", _abs_path_or_empty),
    "initrd_path": Param(str, "", "initrd for direct boot", _abs_path_or_empty),
    "kernel_args": Param(str, "ro", "kernel command line (after root=)"),
    "root_path": Param(str, "/dev/vda1", "root= for direct boot; empty leaves it out"),
    "serial_console": Param(bool, True, "serial port on a unix socket (and console= on ttyS0)"),
    "serial_speed": Param(int, 38400, "baud rate given to console=ttyS0", _positive),
    "vnc_bind_address": Param(str, "", "VNC listens here when set", _address_or_empty),
    "machine_version": Param(str, "", "QEMU machine type; empty is the binary's default"),
    "boot_order": Param(str, "disk", "first boot device", _choice(*BOOT_ORDERS)),
    "disk_type": Param(str, "paravirtual", "disk bus: virtio-blk, IDE or SCSI", _choice(*DISK_TYPES)),
    "disk_cache": Param(str, "default", "host cache mode of disks", _choice(*DISK_CACHES)),
    "nic_type": Param(str, "paravirtual", "NIC model", _choice(*NIC_TYPES)),
    "cpu_type": Param(str, "", "-cpu model; empty is QEMU's default"),
    "accel": Param(str, "auto", "kvm, tcg, or auto (see capabilities.choose_accel)", _choice(*ACCELS)),
    "migration_downtime": Param(int, 30, "allowed downtime at the end of a migration (ms)", _positive),
    "migration_bandwidth": Param(int, 32, "migration bandwidth limit (MiB/s)", _positive),
    "kvm_extra": Param(str, "", "extra QEMU arguments, split like a shell line", _shlex),
}
