"""Real QEMU instances on a 3-node dev cluster: boot, console, disk, network, ACPI, user-down.

The tests share one cluster (kvm hypervisor, TCG) and one instance, in file order.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from devnet import wait_for

from genet_dev import testguest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "dev-cluster"
GUEST_IP = "10.199.0.50"


def tool(*args: str, input: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          input=input, timeout=timeout)


class Dev:
    def __init__(self, directory: Path):
        self.dir = directory

    def run(self, node: str, *cmd: str, ok: bool = True, input: str | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess:
        proc = tool("exec", "--dir", str(self.dir), node, "--", *cmd, input=input, timeout=timeout)
        if ok:
            assert proc.returncode == 0, f"{' '.join(cmd)} on {node}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def instance_dir(self, node: str, name: str) -> Path:
        return self.dir / node / "root/var/run/genet/kvm" / name

    def console(self, name: str, commands: str) -> str:
        """Type commands on the instance's serial console (through gnt-instance console over SSH)."""
        return self.run("node1", "gnt-instance", "console", name, input=commands, timeout=60).stdout

    def field(self, name: str, field: str) -> str:
        return self.run("node1", "gnt-instance", "list", "--no-headers", "--units=m", "-o", field, name).stdout.strip()


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    testguest.ensure()
    directory = tmp_path_factory.mktemp("kvm") / "cluster"
    try:
        proc = tool("start", "--nodes", "3", "--hypervisor", "kvm", "--dir", str(directory), timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield Dev(directory)
    finally:
        stop = tool("stop", "--dir", str(directory))
        assert stop.returncode == 0, stop.stderr


def guest_hvparams(ip: str = GUEST_IP) -> str:
    guest = testguest.ensure()
    return (f"kernel_path={guest['kernel']},initrd_path={guest['initrd']},accel=tcg,serial_console=true,"
            "user_shutdown=true,"                      # a guest power-off is USER_down (see its test)
            f"kernel_args=console=ttyS0 quiet genet.ip={ip}/24 genet.gw=10.199.0.1")


def test_add_file_instance_boots_to_the_ready_marker(dev):
    dev.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=64M",
            "--net", "0:link=gnt-br0", "-B", "memory=256M", "-H", guest_hvparams(), "vm1")
    log = dev.instance_dir("node1", "vm1") / "serial.log"
    wait_for(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 60,
             "the guest's ready marker")
    assert dev.field("vm1", "status") == "running"
    assert dev.field("vm1", "oper_ram") == "256"


def test_console_reaches_the_guest_shell(dev):
    out = dev.console("vm1", "echo CONSOLE-$((6*7))\n")
    assert "CONSOLE-42" in out
    show = dev.run("node1", "gnt-instance", "console", "--show-cmd", "vm1").stdout
    assert show.startswith("ssh ") and "socat" in show and "serial.sock" in show


def test_guest_writes_its_disk_and_answers_ping_from_its_node(dev):
    out = dev.console("vm1", "echo GENET-MARKER-77 | dd of=/dev/vda bs=512 seek=100 conv=fsync 2>/dev/null;"
                             " echo WROTE-$((1+1))\n")
    assert "WROTE-2" in out
    disk = next((dev.dir / "node1/root/srv/genet/file-storage/vm1").glob("disk-*"))
    with open(disk, "rb") as f:
        f.seek(51200)
        assert f.read(15) == b"GENET-MARKER-77"
    dev.run("node1", "ping", "-c", "1", "-W", "3", GUEST_IP)


def test_acpi_shutdown_then_startup(dev):
    dev.run("node1", "gnt-instance", "shutdown", "--timeout", "30", "vm1")
    assert dev.field("vm1", "status") == "ADMIN_down"
    assert not (dev.instance_dir("node1", "vm1") / "qmp.sock").exists()
    dev.run("node1", "gnt-instance", "startup", "vm1")
    log = dev.instance_dir("node1", "vm1") / "serial.log"
    wait_for(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 60,
             "the ready marker after startup")
    assert dev.field("vm1", "status") == "running"


def test_guest_that_powers_off_is_user_down(dev):
    dev.run("node1", "gnt-cluster", "modify", "--user-shutdown", "yes")     # Ganeti's: with the hvparam
    dev.console("vm1", "poweroff -f\n")
    wait_for(lambda: dev.field("vm1", "status") == "USER_down", 30, "USER_down")
    dev.run("node1", "gnt-instance", "startup", "vm1")
    assert dev.field("vm1", "status") == "running"


def test_live_migration_takes_the_local_disk_along(dev):
    """When a file-disk instance migrates live, its disk is mirrored to node2 first: the guest keeps
    running (uptime grows), its marker is on the new disk, node1 keeps nothing, it answers ping."""
    before = uptime(dev, "vm1")
    out = dev.run("node1", "gnt-instance", "migrate", "-n", "node2", "vm1").stdout
    assert "mirroring 1 disk(s) to node2" in out and "migration done" in out
    assert dev.field("vm1", "pnode") == "node2" and dev.field("vm1", "status") == "running"
    assert not (dev.instance_dir("node1", "vm1") / "qmp.sock").exists()
    assert not (dev.dir / "node1/root/srv/genet/file-storage/vm1").exists()
    assert uptime(dev, "vm1") > before
    out = dev.console("vm1", "dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -c 15; echo\n")
    assert "GENET-MARKER-77" in out
    disk = next((dev.dir / "node2/root/srv/genet/file-storage/vm1").glob("disk-*"))
    with open(disk, "rb") as f:
        f.seek(51200)
        assert f.read(15) == b"GENET-MARKER-77"
    dev.run("node2", "ping", "-c", "1", "-W", "3", GUEST_IP)


def test_console_of_a_stopped_instance_is_refused(dev):
    dev.run("node1", "gnt-instance", "shutdown", "--timeout", "30", "vm1")
    proc = dev.run("node1", "gnt-instance", "console", "vm1", ok=False)
    assert proc.returncode == 1 and "not running" in proc.stderr


def test_remove_deletes_the_disk(dev):
    dev.run("node1", "gnt-instance", "remove", "vm1")
    assert not (dev.dir / "node2/root/srv/genet/file-storage/vm1").exists()
    assert dev.run("node1", "gnt-instance", "list", "--no-headers", "-o", "name").stdout.split() == []


def uptime(dev: Dev, name: str) -> float:
    """The guest's uptime, read on its console; asked again when a busy machine's guest answered
    after the console closed."""
    for _ in range(5):
        out = dev.console(name, "echo UP$((1))-$(cut -d' ' -f1 /proc/uptime)-END\n")   # the echo of the
        if "UP1-" in out and "-END" in out.split("UP1-", 1)[1]:                          # typed line differs
            return float(out.split("UP1-", 1)[1].split("-END", 1)[0])
    pytest.fail(f"no uptime on {name}'s console: {out!r}")


def test_live_migration_keeps_the_guest_running(dev):
    """When migrated live, the guest runs on node2 with its disk, address and growing uptime."""
    dev.run("node1", "gnt-instance", "add", "-t", "sharedfile", "-n", "node1", "--disk", "0:size=64M",
            "--net", "0:link=gnt-br0", "-B", "memory=256M",
            "-H", guest_hvparams("10.199.0.51") + ",migration_bandwidth=1000", "vm2")
    log = dev.instance_dir("node1", "vm2") / "serial.log"
    wait_for(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 60, "boot")
    dev.console("vm2", "echo SHARED-MARK | dd of=/dev/vda bs=512 seek=200 conv=fsync 2>/dev/null\n")
    before = uptime(dev, "vm2")
    out = dev.run("node1", "gnt-instance", "migrate", "-n", "node2", "vm2").stdout
    assert "migration done: downtime" in out
    assert dev.field("vm2", "pnode") == "node2" and dev.field("vm2", "status") == "running"
    assert not (dev.instance_dir("node1", "vm2") / "qmp.sock").exists()
    assert uptime(dev, "vm2") > before
    assert "SHARED-MARK" in dev.console("vm2", "dd if=/dev/vda bs=512 skip=200 count=1 2>/dev/null | head -c 11;"
                                               " echo\n")
    dev.run("node2", "ping", "-c", "1", "-W", "3", "10.199.0.51")


def test_failover_after_the_primary_node_dies(dev):
    """When node2 dies, failover is refused until the admin says node2 is down (it might be cut off and
    still run vm2); then failover --ignore-consistency restarts vm2 on node3 with its data."""
    assert tool("kill-node", "--dir", str(dev.dir), "node2").returncode == 0
    proc = dev.run("node1", "gnt-instance", "failover", "--ignore-consistency", "-n", "node3", "vm2", ok=False)
    assert proc.returncode == 1 and "mark it offline (gnt-node modify -O yes node2)" in proc.stderr
    assert "--primary-is-down" in proc.stderr and dev.field("vm2", "pnode") == "node2"
    proc = dev.run("node1", "gnt-instance", "failover", "-n", "node3", "--primary-is-down", "vm2", ok=False)
    assert proc.returncode == 1 and "--ignore-consistency" in proc.stderr
    out = dev.run("node1", "gnt-instance", "failover", "--ignore-consistency", "--primary-is-down", "-n", "node3",
                  "vm2").stdout
    assert "on the admin's word that it is down (--primary-is-down)" in out
    assert dev.field("vm2", "pnode") == "node3"
    log = dev.instance_dir("node3", "vm2") / "serial.log"
    wait_for(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 60, "boot")
    assert "SHARED-MARK" in dev.console("vm2", "dd if=/dev/vda bs=512 skip=200 count=1 2>/dev/null | head -c 11;"
                                               " echo\n")


def test_node_evacuate_moves_every_instance(dev):
    dev.run("node1", "gnt-node", "modify", "-O", "yes", "node2")
    dev.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node3", "-B", "memory=128M",
            "-H", guest_hvparams("10.199.0.52") + ",migration_bandwidth=1000", "vm3")
    dev.run("node1", "gnt-node", "evacuate", "-n", "node1", "node3")
    out = dev.run("node1", "gnt-instance", "list", "--no-headers", "-o", "name,pnode,status").stdout
    assert out.split("\n")[:2] == ["vm2 node1 running", "vm3 node1 running"]


def test_hotplug_a_disk_into_the_running_guest(dev):
    dev.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node3", "--disk", "0:size=16M",
            "-B", "memory=128M", "-H", guest_hvparams("10.199.0.53"), "vm4")
    log = dev.instance_dir("node3", "vm4") / "serial.log"
    wait_for(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 60, "boot")
    assert "/dev/vdb" not in dev.console("vm4", "ls /dev/vd*\n")
    out = dev.run("node1", "gnt-instance", "modify", "--disk", "add:size=8M", "vm4").stdout
    assert "disk/1 -> add" in out
    wait_for(lambda: "/dev/vdb" in dev.console("vm4", "ls /dev/vd*\n"), 30, "/dev/vdb in the guest")
    dev.run("node1", "gnt-instance", "modify", "--disk", "1:remove", "vm4")
    wait_for(lambda: "/dev/vdb" not in dev.console("vm4", "ls /dev/vd*\n"), 30, "/dev/vdb gone")


def test_grow_disk_of_the_running_guest_is_seen_at_once(dev):
    """grow-disk while vm4 runs: its QEMU holds the image locked, so QEMU grows it (block_resize)
    and the guest's virtio disk reports the new size without a reboot; a qcow2 disk too."""
    def sectors(device: str) -> int:
        out = dev.console("vm4", f"echo SECTORS-$(cat /sys/block/{device}/size)-END\n")
        found = re.search(r"SECTORS-(\d+)-END", out)
        return int(found.group(1)) if found else -1
    assert sectors("vda") == 16 << 11
    out = dev.run("node1", "gnt-instance", "grow-disk", "vm4", "0", "8M").stdout
    assert "disk 0 of vm4 is now 24 MiB (the running guest sees it at once)" in out
    wait_for(lambda: sectors("vda") == 24 << 11, 30, "the guest to see 24 MiB")
    [image] = (dev.dir / "node3/root/srv/genet/file-storage/vm4").glob("disk-*.raw")
    assert image.stat().st_size == 24 << 20
    dev.run("node1", "gnt-instance", "modify", "--disk", "add:size=4M,format=qcow2", "vm4")
    wait_for(lambda: sectors("vdb") == 4 << 11, 30, "/dev/vdb in the guest")
    dev.run("node1", "gnt-instance", "grow-disk", "--absolute", "vm4", "1", "12M")
    wait_for(lambda: sectors("vdb") == 12 << 11, 30, "the guest to see 12 MiB on vdb")
    assert dev.run("node1", "gnt-instance", "list", "--no-headers", "-o", "disk.sizes", "vm4").stdout.strip() == "24,12"
    dev.run("node1", "gnt-instance", "modify", "--disk", "1:remove", "vm4")
    wait_for(lambda: sectors("vdb") == -1, 30, "/dev/vdb gone")


def test_runtime_memory_balloons_the_running_guest(dev):
    """modify -m sets vm4's virtio-balloon target over QMP; the guest's driver gives the memory
    back (its MemTotal drops) and oper_ram shows the new size; maxmem stays recorded."""
    def mem_total() -> int:
        found = re.search(r"MemTotal:\s+(\d+) kB", dev.console("vm4", "grep MemTotal /proc/meminfo\n"))
        return int(found.group(1)) // 1024 if found else -1
    before = mem_total()
    dev.run("node1", "gnt-instance", "modify", "-B", "minmem=64M", "vm4")
    out = dev.run("node1", "gnt-instance", "modify", "-m", "96M", "vm4").stdout
    assert " - runtime_memory -> 96" in out.splitlines()
    assert dev.field("vm4", "oper_ram") == "96" and dev.field("vm4", "be/maxmem") == "128"
    wait_for(lambda: 0 < mem_total() <= before - 24, 30, "the guest to give back 32 MiB")
    proc = dev.run("node1", "gnt-instance", "modify", "-m", "32M", "vm4", ok=False)
    assert proc.returncode == 1 and "must have memory between 64 and 128 MiB" in proc.stderr


def test_rename_and_reinstall_a_real_instance(dev):
    """When stopped, vm4 is renamed (its disk follows) and reinstalled, and it boots again."""
    dev.run("node1", "gnt-instance", "shutdown", "--timeout", "30", "vm4")
    dev.run("node1", "gnt-instance", "rename", "vm4", "vm5")
    assert (dev.dir / "node3/root/srv/genet/file-storage/vm5").is_dir()
    dev.run("node1", "gnt-instance", "reinstall", "vm5")
    dev.run("node1", "gnt-instance", "startup", "vm5")
    log = dev.instance_dir("node3", "vm5") / "serial.log"
    wait_for(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 60, "boot")
    assert dev.field("vm5", "status") == "running"


def test_routed_nic_answers_ping_from_its_node(dev):
    """When the NIC is routed, the node routes the guest's address to its tap (proxy ARP)."""
    guest = testguest.ensure()
    hv = (f"kernel_path={guest['kernel']},initrd_path={guest['initrd']},accel=tcg,serial_console=true,"
          "kernel_args=console=ttyS0 quiet genet.ip=10.200.0.5/24 genet.gw=10.200.0.1")
    dev.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node1", "-B", "memory=128M",
            "--net", "0:mode=routed,ip=10.200.0.5", "-H", hv, "vm6")
    log = dev.instance_dir("node1", "vm6") / "serial.log"
    wait_for(lambda: log.exists() and testguest.READY_MARKER in log.read_text(errors="replace"), 60, "boot")
    wait_for(lambda: dev.run("node1", "ping", "-c", "1", "-W", "2", "10.200.0.5", ok=False).returncode == 0,
             20, "an answer to ping over the routed NIC")
    dev.run("node1", "gnt-instance", "remove", "vm6")


def test_security_model_pool_runs_each_guest_as_a_uid_of_the_clusters_pool(dev):
    """When the cluster has a uid pool, a guest with security_model=pool runs as one of its uids on
    its node, takes another on the node it migrates to, and gives the first back."""
    def uid_of(node: str, name: str) -> int:
        pid = json.loads((dev.instance_dir(node, name) / "runtime.json").read_text())["pid"]
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))

    def taken(node: str) -> list[str]:
        locks = dev.dir / node / "root/var/run/genet/uid-pool"
        return sorted(p.name for p in locks.iterdir()) if locks.is_dir() else []

    proc = dev.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node1", "--no-nics", "-B", "memory=64M",
                   "-H", "accel=tcg,security_model=pool", "vm7", ok=False)
    assert proc.returncode == 1 and "user-id pool is empty" in proc.stderr
    dev.run("node1", "gnt-cluster", "modify", "--uid-pool", "54321-54322")
    dev.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node1", "--no-nics", "-B", "memory=64M",
            "-H", "accel=tcg,security_model=pool", "vm7")
    first = uid_of("node1", "vm7")
    assert first in (54321, 54322) and taken("node1") == [str(first)]
    dev.run("node1", "gnt-instance", "migrate", "-f", "-n", "node3", "vm7")
    second = uid_of("node3", "vm7")
    # (the dev cluster's nodes share one machine: while the source ran, node3 saw its uid in use)
    assert second == ({54321, 54322} - {first}).pop() and str(second) in taken("node3") and taken("node1") == []
    dev.run("node1", "gnt-instance", "remove", "-f", "--shutdown-timeout=0", "vm7")     # no OS: no ACPI
    assert str(second) not in taken("node3")
