"""CD-ROM and floppy images (cdrom_image_path, cdrom2_image_path, floppy_image_path).

CD-ROMs are read-only block nodes ``cdrom1``/``cdrom2`` on the bus of cdrom_disk_type
(disk_type when empty): IDE CD-ROMs take the last IDE positions (i440fx: ide.1 units 0
and 1, as Ganeti's indexes 2 and 3; q35: AHCI ports 4 and 5), SCSI ones SCSI ids 100
and 101 on the virtio-scsi controller, paravirtual ones virtio-blk on the extras
bridge. A URL is opened with QEMU's curl driver. The floppy is drive A of the
ISA floppy controller (which q35 lacks until it is added).
"""
from __future__ import annotations

import json
from typing import Any

from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import devices
from genet.hypervisor.kvm.validation import is_url

CDROMS = (("cdrom1", "cdrom_image_path"), ("cdrom2", "cdrom2_image_path"))
SCSI_CDROM_ID = 100


def cdrom_type(params: dict[str, Any]) -> str:
    return params["cdrom_disk_type"] or params["disk_type"]


def cdroms(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(node name, image) of each CD-ROM the instance has."""
    return [(name, params[key]) for name, key in CDROMS if params[key]]


def ide_positions(machine: str) -> dict[str, tuple[int, int]]:
    """(bus, unit) of each IDE CD-ROM."""
    if devices.is_q35(machine):
        return {"cdrom1": (4, 0), "cdrom2": (5, 0)}
    return {"cdrom1": (1, 0), "cdrom2": (1, 1)}


def image_nodes(name: str, image: str) -> list[dict]:
    if is_url(image):
        proto = {"driver": image.split("://", 1)[0], "url": image}
    else:
        proto = {"driver": "file", "filename": image}
    return [{**proto, "node-name": f"{name}-file", "read-only": True},
            {"driver": "raw", "file": f"{name}-file", "node-name": name, "read-only": True}]


def cdrom_device(name: str, bus_type: str, machine: str, boot: bool) -> dict[str, str]:
    index = int(name[-1]) - 1
    dev = {"id": f"{name}dev", "drive": name}
    if bus_type == "ide":
        bus, unit = ide_positions(machine)[name]
        dev = {"driver": "ide-cd", **dev, "bus": f"ide.{bus}", "unit": str(unit)}
    elif bus_type == "scsi-hd":
        dev = {"driver": "scsi-cd", **dev, "bus": "scsi0.0", "scsi-id": str(SCSI_CDROM_ID + index), "lun": "0"}
    else:
        dev = {"driver": "virtio-blk-pci", **dev, "bus": devices.EXTRAS_BUS,
               "addr": hex(devices.EXTRAS_ADDRS[name])}
    if boot:
        dev["bootindex"] = "1"
    return dev


def check_ide_disks(params: dict[str, Any], machine: str, disks: int) -> None:
    """IDE disks and IDE CD-ROMs must not want the same position."""
    if params["disk_type"] != "ide" or cdrom_type(params) != "ide":
        return
    taken = {ide_positions(machine)[name] for name, _ in cdroms(params)}
    for n in range(disks):
        position = (n, 0) if devices.is_q35(machine) else divmod(n, 2)
        if position in taken:
            raise HypervisorError(f"disk {n} and a CD-ROM both want IDE bus {position[0]} unit {position[1]}:"
                                  f" with {len(taken)} IDE CD-ROM(s) an instance takes at most {n} IDE disks")


def args(params: dict[str, Any], machine: str) -> list[str]:
    """The CD-ROM and floppy part of the argv."""
    out: list[str] = []
    boot_first = not params["kernel_path"]
    for name, image in cdroms(params):
        for node in image_nodes(name, image):
            out += ["-blockdev", json.dumps(node, separators=(",", ":"))]
        boot = boot_first and name == "cdrom1" and params["boot_order"] == "cdrom"
        out += ["-device", devices.keyval(cdrom_device(name, cdrom_type(params), machine, boot), "driver")]
    if params["floppy_image_path"]:
        if devices.is_q35(machine):
            out += ["-device", "isa-fdc,id=fdc0"]
        if boot_first and params["boot_order"] == "floppy":
            out += ["-global", "isa-fdc.bootindexA=1"]
        node = {"driver": "file", "filename": params["floppy_image_path"], "node-name": "floppy0-file"}
        out += ["-blockdev", json.dumps(node, separators=(",", ":")),
                "-blockdev", json.dumps({"driver": "raw", "file": "floppy0-file", "node-name": "floppy0"},
                                        separators=(",", ":")),
                "-device", "floppy,id=floppydev0,unit=0,drive=floppy0"]
    return out


def needs_extras_bridge(params: dict[str, Any]) -> bool:
    return cdrom_type(params) == "paravirtual" and bool(cdroms(params))
