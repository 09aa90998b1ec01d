"""The QEMU argv of one instance, from its filled hvparams, machine type and device layout.

Pure: no I/O beyond the stat() that picks a disk's cache mode, so the argv can be
tested and compared by hand. Sockets are relative to the instance directory
(QEMU runs there) to stay clear of the unix socket path limit.
"""
from __future__ import annotations

import ipaddress
import json
import shlex
import uuid as uuidlib
from typing import Any

from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import devices
from genet.hypervisor.kvm.runtime import Files

VNC_BASE_PORT = 5900


def kernel_append(params: dict[str, Any]) -> str:
    parts = []
    if params["root_path"]:
        parts.append(f"root={params['root_path']}")
    if params["kernel_args"]:
        parts.append(params["kernel_args"])
    if params["serial_console"] and "console=" not in params["kernel_args"]:
        parts.append(f"console=ttyS0,{params['serial_speed']}")
    return " ".join(parts)


def vnc_option(params: dict[str, Any], inst: dict) -> str:
    """``-vnc`` value: the instance's network_port when the master allocated one, else the
    first free display (QEMU searches up to :99; the port is read back via query-vnc)."""
    addr = params["vnc_bind_address"]
    host = f"[{addr}]" if ipaddress.ip_address(addr).version == 6 else addr
    port = inst.get("network_port")
    if port:
        if int(port) < VNC_BASE_PORT:
            raise HypervisorError(f"instance {inst['name']}: VNC port {port} is below {VNC_BASE_PORT}")
        return f"{host}:{int(port) - VNC_BASE_PORT}"
    return f"{host}:0,to=99"


def build(inst: dict, params: dict[str, Any], machine: str, accel: str, layout: devices.Layout,
          files: Files, paused: bool = False, incoming: str | None = None) -> list[str]:
    name = inst["name"]
    be = inst.get("beparams", {})
    argv = [params["kvm_path"], "-name", f"{name},debug-threads=on"]
    try:
        argv += ["-uuid", str(uuidlib.UUID(str(inst.get("uuid"))))]
    except ValueError:
        pass
    argv += ["-machine", machine, "-accel", accel]
    if params["cpu_type"]:
        argv += ["-cpu", params["cpu_type"]]
    argv += ["-m", str(int(be.get("maxmem", 128))), "-smp", str(int(be.get("vcpus", 1))),
             "-nodefaults", "-no-user-config", "-display", "none", "-no-shutdown", "-rtc", "base=utc",
             "-pidfile", str(files.pidfile), "-D", str(files.log),
             "-chardev", f"socket,id=qmp,path={files.qmp.name},server=on,wait=off",
             "-mon", "chardev=qmp,mode=control"]
    if params["serial_console"]:
        argv += ["-chardev", f"socket,id=serial0,path={files.serial.name},server=on,wait=off,"
                             f"logfile={files.serial_log.name},logappend=on",
                 "-serial", "chardev:serial0"]
    if params["vnc_bind_address"]:
        argv += ["-device", f"VGA,id=video0,addr={hex(devices.VGA_SLOT)}", "-vnc", vnc_option(params, inst)]
    if params["kernel_path"]:
        argv += ["-kernel", params["kernel_path"]]
        if params["initrd_path"]:
            argv += ["-initrd", params["initrd_path"]]
        argv += ["-append", kernel_append(params)]
    argv += disk_args(params, machine, layout)
    argv += nic_args(params, layout)
    if paused:
        argv.append("-S")
    if incoming:
        argv += ["-incoming", incoming]
    argv += shlex.split(params["kvm_extra"])
    return argv


def disk_args(params: dict[str, Any], machine: str, layout: devices.Layout) -> list[str]:
    args: list[str] = []
    if params["disk_type"] == "scsi-hd":
        args += ["-device", devices.keyval(devices.scsi_controller(), "driver")]
    for i, entry in enumerate(layout["disks"]):
        for node in devices.blockdev_nodes(entry, params["disk_cache"]):
            args += ["-blockdev", json.dumps(node, separators=(",", ":"))]
        boot = i == 0 and params["boot_order"] == "disk"
        dev = devices.disk_device(entry, params["disk_type"], machine, params["disk_cache"], boot)
        args += ["-device", devices.keyval(dev, "driver")]
    return args


def nic_args(params: dict[str, Any], layout: devices.Layout) -> list[str]:
    args: list[str] = []
    for i, entry in enumerate(layout["nics"]):
        boot = i == 0 and params["boot_order"] == "network"
        args += ["-netdev", devices.keyval(devices.netdev(entry), "type"),
                 "-device", devices.keyval(devices.nic_device(entry, params["nic_type"], boot), "driver")]
    return args
