"""Issue 12, a VM never runs twice, with real QEMU on a 3-node dev cluster: a mirror instance's
primary is cut off (its QEMU keeps running and writing), the instance fails over on the admin's
word (--primary-is-down); when the link comes back, the stray QEMU is paused and killed before
its node takes part in the resync, and every block the guest wrote on the new primary is intact.

The tests share one cluster and one instance and run in file order.
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from devnet import TOOL, dev_cluster, tool, wait_for
from test_instances_mirror import (Dev, booted, guest_md5, guest_write_blocks, hvparams, image_md5,
                                   start_writer)

from genet_dev import testguest

WRITTEN: dict[int, tuple[int, str]] = {}      # seek -> (count, md5) of what the guest wrote last there
STRAY_REGION = 200       # where the guest's background writer writes, 64 blocks (the disk has 512)


class Cluster(Dev):
    def qemu_pid(self, node: str, name: str) -> int | None:
        """The pid of the instance's QEMU on ``node`` if it runs there."""
        try:
            pid = int((self.dir / node / "root/var/run/genet/kvm" / name / "qemu.pid").read_text().split()[0])
            return pid if Path(f"/proc/{pid}/cmdline").read_bytes().find(b"qemu") >= 0 else None
        except (OSError, ValueError, IndexError):
            return None

    def noded_log(self, node: str) -> str:
        return (self.dir / node / "root/var/log/genet/genet-noded.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    testguest.ensure()
    with dev_cluster(tmp_path_factory.mktemp("splitvm") / "cluster", "--hypervisor", "kvm", cls=Cluster) as cluster:
        yield cluster


def stray_killed_before_resync(dev: Cluster, node: str) -> None:
    """``node``'s noded log: since its disk last became the primary side, the stray QEMU was
    paused and killed, and only then did the disk become a secondary (the resync's target)."""
    log = dev.noded_log(node)
    became_primary = log.rfind("disk 0 of vm1: storage daemon started as primary")
    killed = log.find("instance vm1 runs here (running) but the config places it elsewhere: pausing and killing it",
                      became_primary)
    secondary = log.find("disk 0 of vm1: storage daemon started as secondary", became_primary)
    assert 0 <= became_primary < killed < secondary, log[-4000:]


def every_block_intact(dev: Cluster, primary: str, secondary: str) -> None:
    """The mirror is in sync and both copies, and the guest, hold every block it wrote last."""
    wait_for(lambda: dev.gnt("gnt-cluster", "verify-disks", ok=False).returncode == 0, 180,
             "the mirror back in sync")
    for seek, (count, md5) in WRITTEN.items():
        assert image_md5(dev.image(secondary, "vm1"), seek, count) == md5, (secondary, seek)
        assert guest_md5(dev, "vm1", seek, count) == md5, (primary, seek)
    assert dev.qemu_pid(secondary, "vm1") is None and dev.qemu_pid(primary, "vm1") is not None
    verify = dev.gnt("gnt-cluster", "verify", ok=False).stdout
    assert "not its primary node" not in verify, verify


def test_a_mirror_instance_writes_all_the_time(dev):
    """The guest on node2 writes checksummed blocks, then keeps writing in the background: the
    QEMU that will be cut off is a live writer, not an idle one."""
    dev.gnt("gnt-instance", "add", "-t", "mirror", "-n", "node2:node3", "--disk", "0:size=32M",
            "--net", "0:link=gnt-br0", "-B", "memory=256M", "-H", hvparams(), "vm1")
    booted(dev, "node2", "vm1")
    WRITTEN[0] = (4, guest_write_blocks(dev, "vm1", 0, 4))
    start_writer(dev, "vm1", STRAY_REGION, 64)


def test_failover_away_from_a_cut_off_primary_on_the_admins_word(dev):
    """When node2 is cut off, failover refuses without --primary-is-down and changes nothing;
    with it, vm1 starts on node3 while node2's QEMU still runs (cut off, it cannot know)."""
    stray = dev.qemu_pid("node2", "vm1")
    assert stray is not None
    assert tool("partition", "--dir", str(dev.dir), "node2").returncode == 0
    proc = dev.gnt("gnt-instance", "failover", "--ignore-consistency", "vm1", ok=False)
    assert proc.returncode == 1 and "does not answer: it may be cut off" in proc.stderr, proc.stderr
    assert dev.field("vm1", "pnode") == "node2"
    out = dev.gnt("gnt-instance", "failover", "--ignore-consistency", "--primary-is-down", "vm1").stdout
    assert "on the admin's word that it is down" in out, out
    booted(dev, "node3", "vm1")
    assert dev.qemu_pid("node2", "vm1") == stray              # two QEMUs: the stray writes on
    # the new primary overwrites what the stray writes to, and more
    WRITTEN[STRAY_REGION] = (8, guest_write_blocks(dev, "vm1", STRAY_REGION, 8))
    WRITTEN[300] = (4, guest_write_blocks(dev, "vm1", 300, 4))


def test_after_the_heal_the_stray_is_stopped_before_the_resync(dev):
    """When node2's link comes back and the disks are resynced at once, node2 first pauses and
    kills its QEMU (before anything touches its disk), then takes the copy from node3."""
    assert tool("heal", "--dir", str(dev.dir), "node2").returncode == 0
    wait_for(lambda: re.search(r"disk 0: (started|resumed|syncing|in sync)",
                               dev.gnt("gnt-instance", "activate-disks", "vm1", ok=False).stdout), 120,
             "activate-disks to resync onto node2")
    wait_for(lambda: dev.qemu_pid("node2", "vm1") is None, 30, "the stray QEMU on node2 to be gone")
    stray_killed_before_resync(dev, "node2")
    every_block_intact(dev, "node3", "node2")
    masterd = (dev.dir / "node1/root/var/log/genet/genet-masterd.log").read_text()
    assert "node node2 was cut off: stopped vm1, which the config places elsewhere" in masterd


def test_a_heal_in_the_middle_of_the_failover_leaves_one_vm_and_every_block(dev):
    """When node3 (now the primary) is cut off and its link comes back while the failover job runs,
    the QEMU on node3 is stopped before node3's disk becomes a secondary, and only node2 runs vm1."""
    WRITTEN[400] = (4, guest_write_blocks(dev, "vm1", 400, 4))
    start_writer(dev, "vm1", STRAY_REGION, 64)
    assert dev.qemu_pid("node3", "vm1") is not None
    assert tool("partition", "--dir", str(dev.dir), "node3").returncode == 0
    failover = subprocess.Popen([sys.executable, str(TOOL), "exec", "--dir", str(dev.dir), "node1", "--",
                                 "gnt-instance", "failover", "--ignore-consistency", "--primary-is-down", "vm1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    started = threading.Event()

    def read():
        for line in failover.stdout:
            lines.append(line)
            if "failing over instance vm1" in line:
                started.set()
    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(120), "".join(lines)
    assert tool("heal", "--dir", str(dev.dir), "node3").returncode == 0
    assert failover.wait(300) == 0, "".join(lines) + failover.stderr.read()
    reader.join(10)
    booted(dev, "node2", "vm1")
    assert dev.field("vm1", "pnode") == "node2"
    wait_for(lambda: dev.qemu_pid("node3", "vm1") is None, 60, "the stray QEMU on node3 to be gone")
    WRITTEN[STRAY_REGION] = (8, guest_write_blocks(dev, "vm1", STRAY_REGION, 8))
    wait_for(lambda: re.search(r"disk 0: (started|resumed|syncing|in sync)",
                               dev.gnt("gnt-instance", "activate-disks", "vm1", ok=False).stdout), 120,
             "activate-disks to resync onto node3")
    stray_killed_before_resync(dev, "node3")
    every_block_intact(dev, "node2", "node3")
