"""gnt-node's storage commands and gnt-storage as a user runs them on a loopback cluster of two
nodes with the fake LVM (a 1 GiB xenvg each; node2's gets a second physical volume, /dev/sdb1,
of 512 MiB) and the fake DRBD 9; file storage is real. The tests share the cluster and run in
file order."""
from __future__ import annotations

import os

import pytest
from loopback import FAKE_LVM_BIN, LoopbackCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LoopbackCluster(tmp_path_factory.mktemp("storage"), nodes=2, drbd="9")
    try:
        c.start()
        c.run("node2", str(FAKE_LVM_BIN / "lvm"), "fake", "pvcreate", "xenvg", "/dev/sdb1", "512")
        yield c
    finally:
        c.stop()


def gnt(c, *argv, check=True):
    return c.run("node1", *argv, check=check)


def lines(c, *argv) -> list[str]:
    return gnt(c, *argv).stdout.splitlines()


def test_list_storage_shows_the_volume_groups_by_default(cluster):
    assert lines(cluster, "gnt-node", "list-storage") == [
        "Node  Type   Name  Size Used Free Allocatable",
        "node1 lvm-vg xenvg 1.0G   0M 1.0G Y",
        "node2 lvm-vg xenvg 1.5G   0M 1.5G Y"]


def test_list_storage_of_file_reports_the_real_directory_for_scripts(cluster):
    gnt(cluster, "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=8M", "-B", "memory=64M",
        "--no-start", "files1")
    rows = [line.split("|") for line in lines(cluster, "gnt-node", "list-storage", "-t", "file", "--separator=|",
                                              "--no-headers", "-o", "node,name,used,size,free,allocatable")]
    stat = os.statvfs(cluster.root("node2"))
    assert rows[1][:4] == ["node2", str(cluster.root("node2") / "srv/genet/file-storage"), "8",
                           str(stat.f_blocks * stat.f_frsize >> 20)]
    assert [r[0] for r in rows] == ["node1", "node2"] and rows[0][2] == "0" and rows[1][5] == "Y"


def test_volumes_name_each_disks_instance_and_the_orphans(cluster):
    gnt(cluster, "gnt-instance", "add", "-t", "plain", "-n", "node1", "--disk", "0:size=16M", "-B", "memory=64M",
        "--no-start", "plain1")
    uuid = gnt(cluster, "gnt-instance", "list", "--no-headers", "-o", "disk.uuids", "plain1").stdout.strip()
    cluster.run("node1", str(FAKE_LVM_BIN / "lvcreate"), "-L", "4m", "-n", "spare", "xenvg")
    assert lines(cluster, "gnt-node", "volumes", "--separator=|", "node1") == [
        "Node|PhysDev|VG|Name|Size|Instance",
        f"node1|/dev/fake-pv-xenvg|xenvg|{uuid}.disk|16|plain1",
        "node1|/dev/fake-pv-xenvg|xenvg|spare|4|-"]


def test_list_drbd_maps_the_minors_to_the_instances(cluster):
    gnt(cluster, "gnt-instance", "add", "-t", "drbd", "-n", "node1:node2", "--disk", "0:size=16M", "--disk",
        "1:size=16M", "-B", "memory=64M", "--no-start", "mirror1")
    rows = [line.split() for line in lines(cluster, "gnt-node", "list-drbd", "--no-headers", "node2")]
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in rows] == [("node2", "mirror1", "0", "secondary", "node1"),
                                                             ("node2", "mirror1", "1", "secondary", "node1")]
    assert len({r[1] for r in rows}) == 2
    volumes = lines(cluster, "gnt-node", "volumes", "--no-headers", "-o", "name,instance", "node2")
    assert sum(line.endswith(" mirror1") for line in volumes) == 4        # data and meta of both disks
    wrong = gnt(cluster, "gnt-node", "list-drbd", "node1", "node2", check=False)
    assert (wrong.returncode, wrong.stderr.strip()) == (1, "Please give one (and only one) node.")


def test_a_physical_volume_made_unallocatable_is_no_longer_used_for_new_volumes(cluster):
    gnt(cluster, "gnt-node", "modify-storage", "--allocatable", "no", "node2", "lvm-pv", "/dev/sdb1")
    assert lines(cluster, "gnt-node", "list-storage", "-t", "lvm-pv", "--no-headers", "-o", "name,allocatable",
                 "node2") == ["/dev/fake-pv-xenvg Y", "/dev/sdb1          N"]
    nothing = gnt(cluster, "gnt-node", "modify-storage", "node2", "lvm-pv", "/dev/sdb1", check=False)
    assert (nothing.returncode, nothing.stderr.strip()) == (0, "No changes to perform, exiting.")
    refused = gnt(cluster, "gnt-node", "modify-storage", "--allocatable", "no", "node2", "lvm-vg", "xenvg",
                  check=False)
    assert refused.returncode == 1 and "Storage units of type 'lvm-vg' can not be modified" in refused.stderr
    gnt(cluster, "gnt-node", "modify-storage", "--allocatable", "yes", "node2", "lvm-pv", "/dev/sdb1")


def test_repair_storage_drops_a_lost_physical_volume(cluster):
    """A volume that spans /dev/sdb1 is lost with it; the instances' volumes on the first PV stay."""
    cluster.run("node2", str(FAKE_LVM_BIN / "lvcreate"), "-L", "1000m", "-n", "spans", "xenvg")
    cluster.run("node2", str(FAKE_LVM_BIN / "lvm"), "fake", "pvlose", "/dev/sdb1")
    gnt(cluster, "gnt-node", "repair-storage", "node2", "lvm-vg", "xenvg")
    assert lines(cluster, "gnt-node", "list-storage", "-t", "lvm-pv", "--no-headers", "-o", "name", "node2") == \
        ["/dev/fake-pv-xenvg"]
    names = lines(cluster, "gnt-node", "volumes", "--no-headers", "-o", "name", "node2")
    assert "spans" not in names and len(names) == 4
    refused = gnt(cluster, "gnt-node", "repair-storage", "node2", "file", "x", check=False)
    assert refused.returncode == 1 and "Storage units of type 'file' can not be repaired" in refused.stderr


def test_an_unknown_field_fails_naming_it(cluster):
    proc = gnt(cluster, "gnt-node", "list-storage", "-o", "name,colour", check=False)
    assert proc.returncode == 1 and "Unknown output fields selected: colour" in proc.stderr


def test_storage_diagnose_and_info_report_every_template(cluster):
    out = gnt(cluster, "gnt-storage", "diagnose").stdout
    plain = out[out.index("Provider: plain"):].split("\n\n")[0].splitlines()
    assert plain == ["Provider: plain", "---",
                     "  Node: node1, status: valid (path: xenvg) [parameters: volume_group_name]",
                     "  Node: node2, status: valid (path: xenvg) [parameters: volume_group_name]",
                     "  --", "  For nodegroup: default --> valid"]
    assert "Provider: drbd" in out and "Provider: diskless" in out
    info = gnt(cluster, "gnt-storage", "info", "plain", "rbd").stdout
    assert info.splitlines() == ["plain:", "  - Valid for nodegroups:", "      default", "  - Supported parameters:",
                                 "      volume_group_name: cluster setting, default 'xenvg'", "",
                                 "rbd: Not Found", ""]
