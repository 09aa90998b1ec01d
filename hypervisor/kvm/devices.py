"""Where each disk and NIC sits in the guest, and the QEMU objects that put it there.

Every device gets a number ``n`` (ids ``disk{n}``/``diskdev{n}``, ``nic{n}``/``nicdev{n}``)
and a fixed PCI slot. Fixed slots matter twice: a hotplugged device must sit at the
same address on a migration target that starts it cold, and the guest must see the
same disk order after migration. The layout (a list of entries per kind, in the
master's order) lives in the runtime file; hotplug and unplug keep it in step.

Spec builders return plain dicts: QAPI-typed for blockdev-add (the same JSON goes on
the command line), string-valued for device_add/netdev_add (rendered as key=value).
"""
from __future__ import annotations

import os
import stat
from typing import Any

from genet.hypervisor.base import HypervisorError

VGA_SLOT = 0x02
NIC_SLOTS = range(0x03, 0x0b)       # 8 NICs
DISK_SLOTS = range(0x0b, 0x1b)      # 16 disks (virtio-blk); IDE and SCSI disks use no slot
SCSI_SLOT = 0x1b                    # the virtio-scsi controller when disk_type=scsi-hd
EXTRAS_SLOT = 0x1c                  # a PCI bridge for the devices below, present when one is
EXTRAS_BUS = "extras"
BALLOON_SLOT = 0x1e                 # virtio-balloon: gnt-instance modify --runtime-memory
EXTRAS_ADDRS = {"cdrom1": 0x01, "cdrom2": 0x02, "sound": 0x03, "spice-agent": 0x04, "guest-agent": 0x05}
# (q35 has its own devices at 0x1d (USB) and 0x1f; i440fx at 0x01)
IDE_MAX = 4
NBD_RECONNECT_DELAY = 10            # seconds a guest request waits for its storage daemon to come back

NIC_MODELS = {"paravirtual": "virtio-net-pci", "e1000": "e1000", "rtl8139": "rtl8139"}

Entry = dict[str, Any]              # {"n", "slot", "disk"|"nic", ("tap")}
Layout = dict[str, list[Entry]]     # {"disks": [...], "nics": [...]}


def is_q35(machine: str) -> bool:
    return "q35" in machine


def _free(used: set[int], pool: range | list[int], what: str) -> int:
    for candidate in pool:
        if candidate not in used:
            return candidate
    raise HypervisorError(f"no free {what} (at most {len(pool)})")


def new_entry(kind: str, item: dict, entries: list[Entry], disk_type: str = "paravirtual") -> Entry:
    """An entry for a new disk or NIC next to ``entries``: lowest free number and slot."""
    n = _free({e["n"] for e in entries}, range(64), f"{kind} number")
    if kind == "disk":
        if disk_type == "ide" and n >= IDE_MAX:
            raise HypervisorError(f"disk_type=ide takes at most {IDE_MAX} disks")
        slot = _free({e["slot"] for e in entries}, DISK_SLOTS, "disk PCI slot") \
            if disk_type == "paravirtual" else None
    else:
        slot = _free({e["slot"] for e in entries}, NIC_SLOTS, "NIC PCI slot")
    return {"n": n, "slot": slot, kind: item}


def plan(inst: dict, disk_type: str, previous: Layout | None = None) -> Layout:
    """The layout for starting ``inst``: by position, or as in ``previous`` (a migration
    source's layout) for every disk (by uuid) and NIC (by MAC) found there."""
    layout: Layout = {"disks": [], "nics": []}
    keys = {"disks": ("disk", "uuid"), "nics": ("nic", "mac")}
    for group, (kind, key) in keys.items():
        old = {(e[kind].get(key) or f"#{i}"): e for i, e in enumerate((previous or {}).get(group, []))}
        for i, item in enumerate(inst.get(group, [])):
            match = old.get(item.get(key) or f"#{i}")
            if match is not None:
                layout[group].append({"n": match["n"], "slot": match["slot"], kind: item})
            else:
                layout[group].append(new_entry(kind, item, layout[group], disk_type))
    return layout


def _cache_flags(path: str, mode: str) -> tuple[bool, bool]:
    """(O_DIRECT, guest write cache on) for a disk_cache value; default = none on block
    devices, writeback on files (O_DIRECT fails on tmpfs and similar)."""
    if mode == "default":
        try:
            mode = "none" if stat.S_ISBLK(os.stat(path).st_mode) else "writeback"
        except OSError:
            mode = "writeback"
    return mode == "none", mode != "writethrough"


def blockdev_nodes(entry: Entry, params: dict[str, Any]) -> list[dict]:
    """blockdev-add arguments: the protocol node, then the format node the device uses
    (disk_cache, disk_aio and disk_discard from the filled hvparams ``params``).

    A disk served by a storage daemon (the mirror template) is an NBD client of its
    unix socket; it reconnects, so the daemon may move the export (resync) under it.
    """
    disk, n = entry["disk"], entry["n"]
    ro = disk.get("mode", "rw") == "ro"
    discard = {"discard": params["disk_discard"]}
    if disk.get("nbd_socket"):
        return [
            {"driver": "nbd", "server": {"type": "unix", "path": disk["nbd_socket"]}, "export": disk["export"],
             "node-name": f"disk{n}-file", "read-only": ro, "reconnect-delay": NBD_RECONNECT_DELAY, **discard},
            {"driver": "raw", "file": f"disk{n}-file", "node-name": f"disk{n}", "read-only": ro, **discard},
        ]
    path = disk["path"]
    direct, _ = _cache_flags(path, params["disk_cache"])
    try:
        block = stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        block = False
    fmt = disk.get("format", "raw")
    if fmt not in ("raw", "qcow2"):
        raise HypervisorError(f"disk {n}: unsupported format {fmt!r} (raw, qcow2)")
    cache_opts = {"direct": direct, "no-flush": False}
    return [
        {"driver": "host_device" if block else "file", "filename": path, "node-name": f"disk{n}-file",
         "read-only": ro, "cache": cache_opts, "aio": params["disk_aio"], **discard},
        {"driver": fmt, "file": f"disk{n}-file", "node-name": f"disk{n}", "read-only": ro,
         "cache": cache_opts, **discard},
    ]


def disk_device(entry: Entry, disk_type: str, machine: str, cache: str, boot: bool) -> dict[str, str]:
    """device_add arguments for one disk."""
    n, disk = entry["n"], entry["disk"]
    dev = {"id": f"diskdev{n}", "drive": f"disk{n}"}
    if disk_type == "paravirtual":
        dev = {"driver": "virtio-blk-pci", **dev, "addr": hex(entry["slot"])}
        if disk.get("uuid"):
            dev["serial"] = str(disk["uuid"]).replace("-", "")[:20]
    elif disk_type == "ide":
        bus, unit = (n, 0) if is_q35(machine) else divmod(n, 2)
        dev = {"driver": "ide-hd", **dev, "bus": f"ide.{bus}", "unit": str(unit)}
    else:
        dev = {"driver": "scsi-hd", **dev, "bus": "scsi0.0", "scsi-id": str(n), "lun": "0"}
    if not _cache_flags(disk.get("path", ""), cache)[1]:
        dev["write-cache"] = "off"
    if boot:
        dev["bootindex"] = "1"
    return dev


def scsi_controller() -> dict[str, str]:
    return {"driver": "virtio-scsi-pci", "id": "scsi0", "addr": hex(SCSI_SLOT)}


def multi_queue(params: dict[str, Any]) -> bool:
    """Whether the NICs' taps need several queues (virtio_net_queues, paravirtual NICs only)."""
    return params["nic_type"] == "paravirtual" and params["virtio_net_queues"] > 1


def netdev(entry: Entry, params: dict[str, Any]) -> dict[str, Any]:
    """netdev_add arguments (QAPI-typed) for one NIC's tap (created beforehand by netdev.py);
    vhost_net, vnet_hdr and virtio_net_queues apply to paravirtual NICs only, as in Ganeti."""
    spec: dict[str, Any] = {"type": "tap", "id": f"nic{entry['n']}", "ifname": entry["tap"], "script": "no",
                            "downscript": "no"}
    if params["nic_type"] == "paravirtual" and params["vhost_net"]:
        spec["vhost"] = True
    if params["nic_type"] == "paravirtual" and not params["vnet_hdr"]:
        spec["vnet_hdr"] = False
    if multi_queue(params):
        spec["queues"] = params["virtio_net_queues"]
    return spec


def nic_device(entry: Entry, params: dict[str, Any], boot: bool) -> dict[str, str]:
    n = entry["n"]
    dev = {"driver": NIC_MODELS[params["nic_type"]], "id": f"nicdev{n}", "netdev": f"nic{n}",
           "mac": entry["nic"]["mac"], "addr": hex(entry["slot"])}
    if multi_queue(params):
        dev["mq"] = "on"
        dev["vectors"] = str(2 * params["virtio_net_queues"] + 2)   # one per queue each way, config, control
    if boot:
        dev["bootindex"] = "1"
    return dev


def keyval(spec: dict[str, Any], first: str) -> str:
    """Render a spec as QEMU's ``value,key=value`` option string (commas doubled)."""
    def esc(v: Any) -> str:
        return ("on" if v else "off") if isinstance(v, bool) else str(v).replace(",", ",,")
    rest = ",".join(f"{k}={esc(v)}" for k, v in spec.items() if k != first)
    return f"{esc(spec[first])},{rest}" if rest else esc(spec[first])
