"""The kvm backend with a real guest: boot, ACPI stop, guest power-off, live migration, hotplug.

The guest is genet's tiny test guest (genet_dev.testguest: Debian cloud kernel + busybox
initrd) under TCG; it prints GENET-GUEST-READY on ttyS0 and then runs a shell there,
which the tests drive through the serial socket. Two "nodes" are two state roots on
this machine (separate run and log directories), migrating over 127.0.0.1.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from genet.hypervisor.base import HvState, HypervisorError



@pytest.fixture(scope="module")
def guest():
    from genet_dev import testguest
    return testguest.ensure()


def node(tmp_path: Path, name: str, **kwargs):
    """A KvmHypervisor whose state lives under its own root, like one node of a dev cluster."""
    from genet.hypervisor.kvm import KvmHypervisor
    root = tmp_path / name
    return KvmHypervisor(run_dir=root / "var/run/genet/kvm", log_dir=root / "var/log/genet/kvm", **kwargs)


@pytest.fixture
def nodes(tmp_path, monkeypatch):
    """Hypervisors made by the test; every instance left is killed afterwards."""
    monkeypatch.setenv("GENET_ROOT", str(tmp_path / "node1"))
    made = []

    def make(name: str = "node1", **kwargs):
        hv = node(tmp_path, name, **kwargs)
        made.append(hv)
        return hv
    yield make
    for hv in made:
        for name in hv.list_instances():
            hv.stop(name, force=True)


def guest_inst(guest: dict, name: str = "guest1", memory: int = 256, extra_args: str = "", **hvparams) -> dict:
    return {"name": name, "uuid": str(uuid.uuid4()), "hypervisor": "kvm",
            "hvparams": {"accel": "tcg", "kernel_path": guest["kernel"], "initrd_path": guest["initrd"],
                         "root_path": "", "kernel_args": f"{guest['kernel_args_base']} {extra_args}".strip(),
                         **hvparams},
            "beparams": {"maxmem": memory, "minmem": memory, "vcpus": 1}, "nics": [], "disks": []}


class SerialConsole:
    """The guest's ttyS0 through the serial socket: wait for text, run shell commands."""

    def __init__(self, path: str):
        from genet.qmp import unix_connect
        self.sock = unix_connect(Path(path))
        self.buf = ""

    def close(self) -> None:
        self.sock.close()

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while not (m := re.search(pattern, self.buf, re.S)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} on the console within {timeout} s; got:\n{self.buf[-2000:]}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError(f"console closed while waiting for {pattern!r}:\n{self.buf[-2000:]}")
            self.buf += data.decode(errors="replace")
        self.buf = self.buf[m.end():]
        return m

    def run(self, command: str, timeout: float = 20.0) -> str:
        """Output of a shell command (the echoed command line is told apart by the quotes)."""
        tag = uuid.uuid4().hex[:8]
        self.sock.sendall(f"echo B{tag}''B; {command}; echo E{tag}''E\n".encode())
        return self.wait_for(rf"B{tag}B\r?\n(.*?)E{tag}E", timeout).group(1).replace("\r", "")

    def uptime(self) -> float:
        return float(self.run("cat /proc/uptime").split()[0])


def boot(hv, inst: dict, timeout: float = 60.0) -> tuple[SerialConsole, float]:
    """Start and wait for the ready marker; returns the console and seconds to the marker."""
    from genet_dev.testguest import READY_MARKER
    started = time.monotonic()
    hv.start(inst)
    console = SerialConsole(hv.console(inst["name"])["path"])
    console.wait_for(rf"{READY_MARKER} uptime=[\d.]+", timeout)
    return console, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_state(hv, name: str, state: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while (info := hv.info(name)) is None or info["state"] != state:
        assert time.monotonic() < deadline, f"{name} not {state} after {timeout} s: {info}"
        time.sleep(0.1)
    return info


def test_guest_boots_to_the_ready_marker_on_the_serial_console(nodes, guest):
    """When started with the test kernel, the guest prints the ready marker and runs a shell."""
    hv = nodes()
    console, seconds = boot(hv, guest_inst(guest))
    print(f"\nboot to {guest['ready_marker']}: {seconds:.2f} s")
    assert console.run("echo hello $((6*7))").strip() == "hello 42"
    info = hv.info("guest1")
    assert (info["state"], info["memory"], info["vcpus"]) == (HvState.RUNNING.value, 256, 1)
    assert info["uptime"] > 0


def test_acpi_stop_ends_qemu_and_removes_the_runtime_files(nodes, guest, tmp_path):
    """When stopped with a timeout, the guest powers off through ACPI well before it; no file remains."""
    hv = nodes()
    boot(hv, guest_inst(guest))
    pid = hv.info("guest1")["pid"]
    run_dir = tmp_path / "node1/var/run/genet/kvm/guest1"
    assert (run_dir / "runtime.json").exists() and (run_dir / "qmp.sock").exists()
    started = time.monotonic()
    hv.stop("guest1", timeout=60)
    took = time.monotonic() - started
    print(f"\nACPI stop: {took:.2f} s")
    assert took < 30
    assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    assert not run_dir.exists()
    assert hv.info("guest1") is None and hv.list_instances() == []


def test_guest_that_powers_off_is_reported_shutdown(nodes, guest):
    """When the guest powers itself off with user_shutdown, QEMU stays (-no-shutdown) and info says SHUTDOWN."""
    hv = nodes()
    console, _ = boot(hv, guest_inst(guest, user_shutdown=True))
    console.sock.sendall(b"poweroff -f\n")
    info = wait_state(hv, "guest1", HvState.SHUTDOWN.value)
    assert info["runstate"] == "shutdown" and info["pid"] > 0
    hv.stop("guest1", timeout=10)               # the guest is off: no waiting for ACPI
    assert hv.info("guest1") is None


def test_soft_reboot_restarts_the_guest_and_hard_reboot_resets_it(nodes, guest):
    """When rebooted soft, a new QEMU boots the guest again; hard, the same QEMU resets it."""
    hv = nodes()
    console, _ = boot(hv, guest_inst(guest))
    pid = hv.info("guest1")["pid"]
    hv.reboot("guest1", hard=True)
    console.wait_for("GENET-GUEST-READY", 60)
    assert hv.info("guest1")["pid"] == pid
    console.close()
    hv.reboot("guest1", hard=False)
    assert hv.info("guest1")["pid"] != pid
    console = SerialConsole(hv.console("guest1")["path"])
    console.wait_for("GENET-GUEST-READY", 60)


def test_live_migration_keeps_the_guest_running_and_its_uptime(nodes, guest):
    """When migrated live between two nodes, the target runs the same guest (uptime continues),
    the source waits in postmigrate, and the status reports the downtime."""
    source, target = nodes("node1"), nodes("node2")
    console, _ = boot(source, guest_inst(guest))
    before = console.uptime()
    inst = source.info("guest1")
    port = free_port()
    spec = guest_inst(guest)
    target.accept_incoming(spec, "127.0.0.1", port, info=source.migration_info("guest1"))
    started = time.monotonic()
    source.migrate("guest1", "127.0.0.1", port, live=True, bandwidth=1000, downtime_ms=100)
    while (status := source.migration_status("guest1"))["status"] == "active":
        assert time.monotonic() - started < 60, status
        time.sleep(0.05)
    assert status["status"] == "completed", status
    target.finish_incoming("guest1", True)
    print(f"\nmigration of an idle 256 MiB guest: {status['total_time_ms']} ms total, "
          f"{status['downtime_ms']} ms downtime, {status['ram_total'] >> 20} MiB RAM")
    assert 0 <= status["downtime_ms"] < 5000
    assert source.info("guest1")["runstate"] == "postmigrate"
    assert target.info("guest1")["runstate"] == "running"
    assert target.info("guest1")["machine"] == inst["machine"]
    console.close()
    console = SerialConsole(target.console("guest1")["path"])
    after = console.uptime()
    assert before < after < before + 60, (before, after)
    source.stop("guest1", force=True)
    assert source.list_instances() == [] and target.list_instances() == ["guest1"]


def test_aborted_migration_leaves_the_source_running(nodes, guest):
    """When a slow migration is aborted, the source keeps running and the target is removed."""
    source, target = nodes("node1"), nodes("node2")
    console, _ = boot(source, guest_inst(guest))
    port = free_port()
    target.accept_incoming(guest_inst(guest), "127.0.0.1", port, info=source.migration_info("guest1"))
    source.migrate("guest1", "127.0.0.1", port, bandwidth=1)
    time.sleep(0.5)
    assert source.migration_status("guest1")["status"] == "active"
    source.abort_migration("guest1")
    assert source.migration_status("guest1")["status"] == "cancelled"
    target.finish_incoming("guest1", False)
    assert target.list_instances() == []
    assert source.info("guest1")["runstate"] == "running"
    assert console.run("echo still here").strip() == "still here"


def test_hotplugged_disk_appears_in_the_guest_and_goes_again(nodes, guest, tmp_path):
    """When a raw disk is hotplugged, the guest sees /dev/vdb; unplugged, it is gone."""
    hv = nodes()
    inst = guest_inst(guest)
    inst["disks"] = [{"path": guest["disk_raw"], "format": "raw", "mode": "ro", "size": 64, "uuid": "d0"}]
    console, _ = boot(hv, inst)
    assert console.run("ls /dev/vd*").split() == ["/dev/vda"]
    assert "GENET-TEST-DISK" in console.run("head -c 15 /dev/vda")
    extra = tmp_path / "extra.raw"
    extra.write_bytes(b"HOTPLUGGED-DISK\n")
    os.truncate(extra, 4 << 20)
    hv.hotplug_disk("guest1", {"path": str(extra), "format": "raw", "mode": "rw", "size": 4, "uuid": "d1"}, 1)
    deadline = time.monotonic() + 20
    while console.run("ls /dev/vd*").split() != ["/dev/vda", "/dev/vdb"]:
        assert time.monotonic() < deadline, "no /dev/vdb after hotplug"
        time.sleep(0.3)
    assert "HOTPLUGGED-DISK" in console.run("head -c 15 /dev/vdb")
    with pytest.raises(HypervisorError, match="out of range"):
        hv.unplug_disk("guest1", 5)
    hv.unplug_disk("guest1", 1)
    assert console.run("ls /dev/vd*").split() == ["/dev/vda"]
    hv.hotplug_disk("guest1", {"path": str(extra), "format": "raw", "mode": "rw", "size": 4, "uuid": "d1"}, 1)
    deadline = time.monotonic() + 20
    while "/dev/vdb" not in console.run("ls /dev/vd*"):
        assert time.monotonic() < deadline, "no /dev/vdb after the second hotplug"
        time.sleep(0.3)


@pytest.fixture
def bridge():
    name = f"gnt-tb{os.getpid() % 10000}"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    yield name
    subprocess.run(["ip", "link", "del", name])


def test_bridged_nics_get_taps_in_the_bridge_and_hotplug(nodes, guest, bridge):
    """When a NIC is bridged, its tap joins the bridge; a hotplugged NIC shows up as eth1;
    stop removes every tap."""
    hv = nodes()
    inst = guest_inst(guest)
    inst["nics"] = [{"mac": "aa:00:00:00:00:01", "mode": "bridged", "link": bridge, "ip": None, "vlan": ""}]
    console, _ = boot(hv, inst)
    taps = [p.name for p in Path(f"/sys/class/net/{bridge}/brif").iterdir()]
    assert len(taps) == 1 and taps[0].startswith("gnt-t")
    assert "aa:00:00:00:00:01" in console.run("cat /sys/class/net/eth0/address")
    hv.hotplug_nic("guest1", {"mac": "aa:00:00:00:00:02", "mode": "bridged", "link": bridge}, 1)
    deadline = time.monotonic() + 20
    while "aa:00:00:00:00:02" not in console.run("cat /sys/class/net/*/address"):
        assert time.monotonic() < deadline, "no second NIC in the guest"
        time.sleep(0.3)
    assert len(list(Path(f"/sys/class/net/{bridge}/brif").iterdir())) == 2
    hv.unplug_nic("guest1", 1)
    assert [p.name for p in Path(f"/sys/class/net/{bridge}/brif").iterdir()] == taps
    hv.stop("guest1", timeout=30)
    assert list(Path(f"/sys/class/net/{bridge}/brif").iterdir()) == []
    assert not Path("/sys/class/net", taps[0]).exists()


def test_routed_nic_gets_a_host_route_via_its_tap(nodes):
    """When a NIC is routed, its IP is routed to the tap (with proxy ARP); stop removes both."""
    hv = nodes()
    ip = "203.0.113.77"
    inst = {"name": "routed1", "hvparams": {"accel": "tcg"}, "beparams": {"maxmem": 64, "vcpus": 1},
            "disks": [], "nics": [{"mac": "aa:00:00:00:00:77", "mode": "routed", "link": "", "ip": ip}]}
    hv.start(inst)
    route = subprocess.run(["ip", "-4", "route", "show", f"{ip}/32"], capture_output=True, text=True).stdout
    tap = route.split("dev ")[1].split()[0]
    assert tap.startswith("gnt-t")
    assert Path(f"/proc/sys/net/ipv4/conf/{tap}/proxy_arp").read_text().strip() == "1"
    hv.stop("routed1", force=True)
    assert not Path("/sys/class/net", tap).exists()
    assert subprocess.run(["ip", "-4", "route", "show", f"{ip}/32"], capture_output=True, text=True).stdout == ""
