"""Ganeti's kvm hvparams on a real QEMU (TCG): few guests, each started with many parameters at
once, checked through QMP (query-vnc, query-spice, query-block, query-cpus-fast,
query-migrate-capabilities, qom-get), /proc and the guest's own view on its serial console.

The command line of every parameter, and the refusals of values that cannot work, are in
test/unit/test_kvm_*.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from genet.hypervisor.base import HvState, HypervisorError
from genet.hypervisor.kvm import prereq
from genet.hypervisor.kvm.monitor import Monitor
from test_kvm import SerialConsole, boot, bridge, free_port, guest, guest_inst, nodes, wait_state  # noqa: F401


def qmp(hv, name: str, cmd: str, args: dict | None = None):
    return Monitor(hv._files(name).qmp, name).execute(cmd, args)


def allowed_cpus(tid: int) -> str:
    status = Path(f"/proc/{tid}/status").read_text()
    return next(line.split()[1] for line in status.splitlines() if line.startswith("Cpus_allowed_list"))


def status_field(pid: int, field: str) -> str:
    return next(line.split(":", 1)[1].split()[0] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith(field + ":"))


@pytest.fixture
def files(tmp_path):
    """Images, a password file and a disk for the guest."""
    for name, size in (("cd1.iso", 1 << 20), ("cd2.iso", 1 << 20), ("floppy.img", 1440 << 10),
                       ("disk.raw", 8 << 20)):
        with open(tmp_path / name, "wb") as f:
            f.truncate(size)
    (tmp_path / "vnc-password").write_text("s3cret\n")
    return tmp_path


def test_one_guest_with_console_media_cpu_disk_nic_and_security_hvparams(nodes, guest, files, bridge):
    """When a guest starts with VNC (TLS, password, keymap), two IDE CD-ROMs, a floppy, sound,
    USB, a CPU topology and per-vCPU pinning, RAM from a directory, io_uring with discard, a
    multi-queue NIC, QEMU running as nobody in a chroot and user_shutdown, QMP and /proc show
    each of them; NIC hotplug is refused (QEMU gave up root), a hard reboot under reboot_behavior=exit
    starts a new QEMU, and the guest's power-off leaves it USER_down (SHUTDOWN)."""
    hv = nodes()
    host = sorted(os.sched_getaffinity(0))
    mask = f"{host[-1]}:{host[0]}"                    # vCPU 0 on the last CPU, vCPU 1 on the first
    inst = guest_inst(guest, vnc_bind_address="127.0.0.1", vnc_tls=True, keymap="fr",
                      vnc_password_file=str(files / "vnc-password"),
                      cdrom_image_path=str(files / "cd1.iso"), cdrom2_image_path=str(files / "cd2.iso"),
                      cdrom_disk_type="ide", floppy_image_path=str(files / "floppy.img"),
                      soundhw="hda", usb_devices="keyboard", cpu_sockets=1, cpu_cores=2, cpu_mask=mask,
                      mem_path="/dev/shm", use_localtime=True, disk_aio="io_uring", disk_discard="unmap",
                      virtio_net_queues=2, vnet_hdr=False, security_model="user", security_domain="nobody", use_chroot=True,
                      user_shutdown=True, reboot_behavior="exit", acpi=True)
    inst["beparams"]["vcpus"] = 2
    inst["disks"] = [{"path": str(files / "disk.raw"), "format": "raw", "mode": "rw", "size": 8, "uuid": "d0"}]
    inst["nics"] = [{"mac": "aa:00:00:00:00:31", "mode": "bridged", "link": bridge, "ip": None, "vlan": ""}]
    os.chmod(files, 0o755)
    console, _ = boot(hv, inst)
    pid = hv.info("guest1")["pid"]

    vnc = qmp(hv, "guest1", "query-vnc")
    assert (vnc["enabled"], vnc["host"], vnc["auth"]) == (True, "127.0.0.1", "vencrypt+tls+vnc")   # TLS, password
    assert hv.console("guest1")["vnc"] == {"host": "127.0.0.1", "port": int(vnc["service"])}

    blocks = {b["qdev"]: b for b in qmp(hv, "guest1", "query-block")}
    assert blocks["cdrom1dev"]["inserted"]["file"] == str(files / "cd1.iso") and blocks["cdrom1dev"]["inserted"]["ro"]
    assert blocks["cdrom2dev"]["inserted"]["file"] == str(files / "cd2.iso") and blocks["cdrom2dev"]["removable"]
    assert any(b["inserted"]["file"] == str(files / "floppy.img") for b in blocks.values())

    vcpus = qmp(hv, "guest1", "query-cpus-fast")
    assert [(c["props"]["socket-id"], c["props"]["core-id"]) for c in vcpus] == [(0, 0), (0, 1)]
    assert [allowed_cpus(c["thread-id"]) for c in vcpus] == [str(host[-1]), str(host[0])]
    assert console.run("grep '^cpu cores' /proc/cpuinfo").split()[-1] == "2"      # the guest sees the topology

    assert qmp(hv, "guest1", "query-memdev")[0]["prealloc"] is True
    peripherals = {p["name"] for p in qmp(hv, "guest1", "qom-list", {"path": "/machine/peripheral"})}
    assert {"sound0", "video0", "usbmouse", "cdrom1dev", "floppydev0", "nicdev0"} <= peripherals
    assert qmp(hv, "guest1", "qom-get", {"path": "/machine/peripheral/nicdev0", "property": "mq"}) is True
    assert "rx-1" in console.run("ls /sys/class/net/eth0/queues").split()               # and both queues
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    proto = json.loads(next(a for a in cmdline if a.startswith(b'{"driver":"file","filename":"' + bytes(files))
                            and b"disk.raw" in a))
    assert (proto["aio"], proto["discard"]) == ("io_uring", "unmap")
    assert [b"-k", b"fr"] == cmdline[cmdline.index(b"-k"):cmdline.index(b"-k") + 2]
    assert b"base=localtime" in cmdline and b"-no-reboot" in cmdline

    tap = next(Path(f"/sys/class/net/{bridge}/brif").iterdir()).name
    link = subprocess.run(["ip", "-d", "link", "show", tap], capture_output=True, text=True).stdout
    assert "multi_queue" in link and "vnet_hdr off" in link
    assert status_field(pid, "Uid") == str(65534)
    assert os.readlink(f"/proc/{pid}/root") == str(hv._files("guest1").chroot)

    with pytest.raises(HypervisorError, match=r"cannot hotplug a NIC.*security_model=user and use_chroot=True"):
        hv.hotplug_nic("guest1", {"mac": "aa:00:00:00:00:32", "mode": "bridged", "link": bridge}, 1)

    hv.reboot("guest1", hard=True)        # reboot_behavior=exit: a new QEMU, not a reset taken for power-off
    assert hv.info("guest1")["pid"] != pid and hv.info("guest1")["state"] == HvState.RUNNING.value
    console.close()
    console = SerialConsole(hv.console("guest1")["path"])
    console.wait_for("GENET-GUEST-READY", 60)
    console.sock.sendall(b"poweroff -f\n")
    info = wait_state(hv, "guest1", HvState.SHUTDOWN.value)
    assert info["runstate"] == "shutdown"
    hv.stop("guest1", timeout=10)
    assert hv.list_instances() == []


def test_spice_guest_migrates_with_its_capabilities_and_powers_off_as_error_down(nodes, guest, tmp_path, bridge):
    """When a SPICE guest with migration_caps migrates, SPICE listens with its password,
    both QEMUs have the capabilities on for the migration and the target has them off again
    afterwards; a NIC hotplugged there is multi-queue (virtio_net_queues), the guest agent's
    socket is there (use_guest_agent); without
    user_shutdown, the guest's power-off ends QEMU (CRASHED: ERROR_down)."""
    (tmp_path / "spice-password").write_text("pa55\n")
    source, target = nodes("node1"), nodes("node2")
    params = {"spice_bind": "lo", "spice_ip_version": 4, "spice_password_file": str(tmp_path / "spice-password"),
              "spice_streaming_video": "filter", "migration_caps": "xbzrle:auto-converge", "vga": "std",
              "virtio_net_queues": 3, "use_guest_agent": True}
    console, _ = boot(source, guest_inst(guest, **params))
    spice = qmp(source, "guest1", "query-spice")
    assert (spice["enabled"], spice["host"], spice["auth"]) == (True, "127.0.0.1", "spice")
    assert source.info("guest1") and source.console("guest1")["spice"] == {"host": "127.0.0.1", "port": spice["port"]}
    assert spice["port"] in prereq.SPICE_PORTS

    def caps(hv) -> dict:
        return {c["capability"]: c["state"] for c in qmp(hv, "guest1", "query-migrate-capabilities")}
    port = free_port()
    target.accept_incoming(guest_inst(guest, **params), "127.0.0.1", port, info=source.migration_info("guest1"))
    assert caps(target)["xbzrle"] and caps(target)["auto-converge"]
    source.migrate("guest1", "127.0.0.1", port, live=True, bandwidth=1000, downtime_ms=100)
    assert caps(source)["xbzrle"] and caps(source)["auto-converge"]
    deadline = time.monotonic() + 60
    while (status := source.migration_status("guest1"))["status"] == "active":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["status"] == "completed", status
    target.finish_incoming("guest1", True)
    assert not caps(target)["xbzrle"] and qmp(target, "guest1", "query-spice")["enabled"]
    source.stop("guest1", force=True)
    target.hotplug_nic("guest1", {"mac": "aa:00:00:00:00:33", "mode": "bridged", "link": bridge}, 0)
    assert qmp(target, "guest1", "qom-get", {"path": "/machine/peripheral/nicdev0", "property": "vectors"}) == 8
    tap = next(Path(f"/sys/class/net/{bridge}/brif").iterdir()).name
    link = subprocess.run(["ip", "-d", "link", "show", tap], capture_output=True, text=True).stdout
    assert "multi_queue" in link and "vnet_hdr on" in link
    chardevs = {c["label"]: c["filename"] for c in qmp(target, "guest1", "query-chardev")}
    assert chardevs["qga0"].endswith("unix:qga.sock,server=on") and target._files("guest1").guest_agent.exists()

    console.close()
    console = SerialConsole(target.console("guest1")["path"])
    console.sock.sendall(b"poweroff -f\n")
    assert wait_state(target, "guest1", HvState.CRASHED.value)["runstate"] == "gone"


def test_hvparams_this_node_cannot_serve_are_refused_before_anything_starts(nodes, guest, tmp_path):
    """When an hvparam needs what this node lacks (a missing image, an unknown migration capability,
    vhost_net without /dev/vhost-net), the start fails naming it and leaves nothing behind."""
    hv = nodes()
    cases = [({"cdrom_image_path": str(tmp_path / "missing.iso")}, r"'cdrom_image_path'.*no such file"),
             ({"migration_caps": "no-such-cap"}, r"'migration_caps'.*no migration capability no-such-cap")]
    if not prereq.VHOST_NET.exists():
        cases.append(({"vhost_net": True}, r"'vhost_net'=True cannot be used on this node"))
    for hvparams, message in cases:
        with pytest.raises(HypervisorError, match=message):
            hv.start(guest_inst(guest, **hvparams))
        assert hv.list_instances() == [] and not hv._files("guest1").dir.exists()
