"""The QEMU argv of one instance, from its filled hvparams, machine type, device layout and
what prereq.check resolved on the node (display.py, media.py and cpus.py build their parts).

Pure: no I/O beyond the stat() that picks a disk's cache mode, so the argv can be
tested and compared by hand. Sockets are relative to the instance directory
(QEMU runs there) to stay clear of the unix socket path limit.
"""
from __future__ import annotations

import json
import shlex
import uuid as uuidlib
from typing import Any

from genet.hypervisor.kvm import cpus, devices, display, media, prereq
from genet.hypervisor.kvm.prereq import Resolved
from genet.hypervisor.kvm.runtime import Files


def kernel_append(params: dict[str, Any]) -> str:
    parts = []
    if params["root_path"]:
        parts.append(f"root={params['root_path']}")
    if params["kernel_args"]:
        parts.append(params["kernel_args"])
    if params["serial_console"] and "console=" not in params["kernel_args"]:
        parts.append(f"console=ttyS0,{params['serial_speed']}")
    return " ".join(parts)


def machine_option(machine: str, params: dict[str, Any]) -> str:
    props = [machine]
    if not params["acpi"]:
        props.append("acpi=off")
    props += display.sound_args(params)[1]
    return ",".join(props)


def security_args(user: str, params: dict[str, Any], files: Files, run_with: bool) -> list[str]:
    """Who QEMU becomes once set up: ``user`` (security_model user or pool, see prereq.Resolved),
    use_chroot confines it to an empty directory (-runas/-chroot, or -run-with from QEMU 9)."""
    chroot = str(files.chroot) if params["use_chroot"] else ""
    if run_with and (user or chroot):
        opts = ([f"user={user}"] if user else []) + ([f"chroot={chroot}"] if chroot else [])
        return ["-run-with", ",".join(opts)]
    return (["-runas", user] if user else []) + (["-chroot", chroot] if chroot else [])


def guest_agent_args(files: Files) -> list[str]:
    """A virtio-serial port named as qemu-guest-agent expects, on the unix socket qga.sock."""
    serial = {"driver": "virtio-serial-pci", "id": "qgaserial", "bus": devices.EXTRAS_BUS,
              "addr": hex(devices.EXTRAS_ADDRS["guest-agent"])}
    return ["-chardev", f"socket,id=qga0,path={files.guest_agent.name},server=on,wait=off",
            "-device", devices.keyval(serial, "driver"),
            "-device", "virtserialport,bus=qgaserial.0,chardev=qga0,name=org.qemu.guest_agent.0"]


def build(inst: dict, params: dict[str, Any], machine: str, accel: str, layout: devices.Layout,
          files: Files, paused: bool = False, incoming: str | None = None,
          resolved: Resolved | None = None, run_with: bool = False) -> list[str]:
    """The argv; ``resolved`` is what prereq.check found on the node (None: the addresses
    as the hvparams give them, as in unit tests)."""
    if resolved is None:
        resolved = Resolved(vnc_host=params["vnc_bind_address"],
                            spice=(params["spice_bind"], prereq.SPICE_PORTS.start) if params["spice_bind"] else None,
                            run_as=params["security_domain"] if params["security_model"] == "user" else "")
    name = inst["name"]
    be = inst.get("beparams", {})
    argv = [params["kvm_path"], "-name", f"{name},debug-threads=on"]
    try:
        argv += ["-uuid", str(uuidlib.UUID(str(inst.get("uuid"))))]
    except ValueError:
        pass
    argv += ["-machine", machine_option(machine, params), "-accel", accel]
    if params["cpu_type"]:
        argv += ["-cpu", params["cpu_type"]]
    argv += ["-m", str(int(be.get("maxmem", 128))), "-smp", cpus.smp_option(int(be.get("vcpus", 1)), params)]
    if params["mem_path"]:
        argv += ["-mem-path", params["mem_path"], "-mem-prealloc"]
    argv += ["-nodefaults", "-no-user-config", "-display", "none",
             "-rtc", "base=localtime" if params["use_localtime"] else "base=utc"]
    if params["user_shutdown"]:
        argv.append("-no-shutdown")       # a guest power-off leaves QEMU in runstate shutdown
    if params["reboot_behavior"] == "exit":
        argv.append("-no-reboot")
    argv += ["-pidfile", str(files.pidfile), "-D", str(files.log),
             "-chardev", f"socket,id=qmp,path={files.qmp.name},server=on,wait=off",
             "-mon", "chardev=qmp,mode=control"]
    if params["serial_console"]:
        argv += ["-chardev", f"socket,id=serial0,path={files.serial.name},server=on,wait=off,"
                             f"logfile={files.serial_log.name},logappend=on",
                 "-serial", "chardev:serial0"]
    if media.needs_extras_bridge(params) or display.needs_extras_bridge(params) or params["use_guest_agent"]:
        argv += ["-device", f"pci-bridge,id={devices.EXTRAS_BUS},chassis_nr=1,addr={hex(devices.EXTRAS_SLOT)}"]
    if params["use_guest_agent"]:
        argv += guest_agent_args(files)
    argv += display.args(params, inst, resolved.vnc_host, resolved.spice)
    if params["kernel_path"]:
        argv += ["-kernel", params["kernel_path"]]
        if params["initrd_path"]:
            argv += ["-initrd", params["initrd_path"]]
        argv += ["-append", kernel_append(params)]
    argv += disk_args(params, machine, layout)
    argv += media.args(params, machine)
    argv += nic_args(params, layout)
    argv += ["-device", f"virtio-balloon-pci,id=balloon0,addr={hex(devices.BALLOON_SLOT)}"]
    argv += security_args(resolved.run_as, params, files, run_with)
    if paused:
        argv.append("-S")
    if incoming:
        argv += ["-incoming", incoming]
    argv += shlex.split(params["kvm_extra"])
    return argv


def disk_args(params: dict[str, Any], machine: str, layout: devices.Layout) -> list[str]:
    args: list[str] = []
    media.check_ide_disks(params, machine, len(layout["disks"]))
    if params["disk_type"] == "scsi-hd" or (media.cdroms(params) and media.cdrom_type(params) == "scsi-hd"):
        args += ["-device", devices.keyval(devices.scsi_controller(), "driver")]
    for i, entry in enumerate(layout["disks"]):
        for node in devices.blockdev_nodes(entry, params):
            args += ["-blockdev", json.dumps(node, separators=(",", ":"))]
        boot = i == 0 and params["boot_order"] == "disk"
        dev = devices.disk_device(entry, params["disk_type"], machine, params["disk_cache"], boot)
        args += ["-device", devices.keyval(dev, "driver")]
    return args


def nic_args(params: dict[str, Any], layout: devices.Layout) -> list[str]:
    args: list[str] = []
    for i, entry in enumerate(layout["nics"]):
        boot = i == 0 and params["boot_order"] == "network"
        args += ["-netdev", devices.keyval(devices.netdev(entry, params), "type"),
                 "-device", devices.keyval(devices.nic_device(entry, params, boot), "driver")]
    return args
