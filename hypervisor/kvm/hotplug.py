"""Adding and removing disks and NICs of a running QEMU.

Objects are added backend first (blockdev-add / netdev_add, then device_add)
and removed in the opposite order; a failed step undoes the steps before it.
Unplugging needs the guest's cooperation (ACPI eject): device_del only asks,
so the device is watched under /machine/peripheral until it is gone.
"""
from __future__ import annotations

import time

from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import devices
from genet.hypervisor.kvm.monitor import Monitor, MonitorError

UNPLUG_TIMEOUT = 30.0


def check_supported(kind: str, params: dict, machine: str) -> None:
    """Refuse what this QEMU cannot plug: IDE disks, PCI devices on q35, and anything once QEMU gave
    up root or chrooted (it opens the tap or the disk by its path itself)."""
    confined = [f"{k}={params[k]}" for k in ("security_model", "use_chroot")
                if params[k] not in ("none", False)]
    if confined:
        what = "a NIC (/dev/net/tun)" if kind == "nic" else "a disk (its path)"
        raise HypervisorError(f"cannot hotplug {what}: QEMU runs with {' and '.join(confined)} and can no"
                              " longer open it; change the instance offline")
    disk_type = params["disk_type"]
    if kind == "disk" and disk_type == "ide":
        raise HypervisorError("IDE disks cannot be hotplugged (use disk_type=paravirtual or scsi-hd)")
    pci = kind == "nic" or disk_type == "paravirtual"
    if pci and devices.is_q35(machine):
        raise HypervisorError(f"PCI hotplug on machine {machine} needs PCIe root ports, which genet "
                              "does not create: use an i440fx (pc) machine")


def _undo(mon: Monitor, calls: list[tuple[str, dict]]) -> None:
    for cmd, args in reversed(calls):
        try:
            mon.execute(cmd, args)
        except HypervisorError:
            pass


def add_disk(mon: Monitor, entry: devices.Entry, params: dict, machine: str) -> None:
    undo: list[tuple[str, dict]] = []
    try:
        for node in devices.blockdev_nodes(entry, params):
            mon.execute("blockdev-add", node)
            undo.append(("blockdev-del", {"node-name": node["node-name"]}))
        mon.execute("device_add", devices.disk_device(entry, params["disk_type"], machine,
                                                      params["disk_cache"], boot=False))
    except HypervisorError:
        _undo(mon, undo)
        raise


def remove_disk(mon: Monitor, entry: devices.Entry, timeout: float = UNPLUG_TIMEOUT) -> None:
    n = entry["n"]
    _remove_device(mon, f"diskdev{n}", timeout)
    for node in (f"disk{n}", f"disk{n}-file"):
        _blockdev_del(mon, node)


def _blockdev_del(mon: Monitor, node: str, timeout: float = 5.0) -> None:
    """Delete a block node; the removed device may hold it a moment longer (QEMU finalizes
    unplugged devices after an RCU grace period), so "in use" is retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            mon.execute("blockdev-del", {"node-name": node})
            return
        except MonitorError as err:
            text = str(err).lower()
            if "not found" in text or "failed to find" in text:
                return
            if "in use" not in text or time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


def add_nic(mon: Monitor, entry: devices.Entry, params: dict) -> None:
    net = devices.netdev(entry, params)
    mon.execute("netdev_add", net)
    try:
        mon.execute("device_add", devices.nic_device(entry, params, boot=False))
    except HypervisorError:
        _undo(mon, [("netdev_del", {"id": net["id"]})])
        raise


def remove_nic(mon: Monitor, entry: devices.Entry, timeout: float = UNPLUG_TIMEOUT) -> None:
    _remove_device(mon, f"nicdev{entry['n']}", timeout)
    try:
        mon.execute("netdev_del", {"id": f"nic{entry['n']}"})
    except MonitorError as err:
        if "not found" not in str(err).lower():
            raise


def present(mon: Monitor, dev_id: str) -> bool:
    return any(p["name"] == dev_id for p in mon.execute("qom-list", {"path": "/machine/peripheral"}))


def _remove_device(mon: Monitor, dev_id: str, timeout: float) -> None:
    if not present(mon, dev_id):
        return
    try:
        mon.execute("device_del", {"id": dev_id})
    except MonitorError as err:
        if "not found" not in str(err).lower() and "already in the process of unplug" not in str(err):
            raise
    deadline = time.monotonic() + timeout
    while present(mon, dev_id):
        if time.monotonic() >= deadline:
            raise HypervisorError(f"device {dev_id} still present {timeout:.0f} s after device_del "
                                  "(the guest did not release it)")
        time.sleep(0.1)
