"""The plain (LVM) template end to end: a loopback cluster whose nodes each have a fake LVM
(test/fakes/lvm, 1 GiB volume group xenvg) and the fake hypervisor."""
from __future__ import annotations

import json

import pytest
from loopback import LoopbackCluster


@pytest.fixture
def lvm_cluster(tmp_path):
    c = LoopbackCluster(tmp_path, nodes=2, lvm=True)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def volumes(cluster, node: str) -> dict[str, dict]:
    return json.loads(cluster.lvm_state(node).read_text())["vgs"]["xenvg"]["lvs"]


def field(cluster, name: str, fields: str) -> str:
    return cluster.run("node1", "gnt-instance", "list", "--no-headers", "--separator=|", "-o", fields,
                       name).stdout.strip()


def test_plain_instance_lives_in_logical_volumes_of_its_node(lvm_cluster):
    c = lvm_cluster
    c.run("node1", "gnt-instance", "add", "-t", "plain", "-n", "node2", "--disk", "0:size=64M",
          "--disk", "1:size=10M", "-B", "memory=64M", "db1")
    assert field(c, "db1", "disk_template,pnode,status,disk.sizes") == "plain|node2|running|64,10"
    assert len(volumes(c, "node2")) == 2 and volumes(c, "node1") == {}
    info = c.run("node1", "gnt-instance", "activate-disks", "db1").stdout
    assert info.count(str(c.base / "node2/dev/xenvg/")) == 2

    c.run("node1", "gnt-instance", "grow-disk", "db1", "1", "20M")
    assert field(c, "db1", "disk.sizes") == "64,30"

    c.run("node1", "gnt-instance", "migrate", "db1")             # the volumes travel with it
    assert field(c, "db1", "pnode") == "node1"
    assert len(volumes(c, "node1")) == 2 and volumes(c, "node2") == {}

    c.run("node1", "gnt-instance", "remove", "db1")
    assert volumes(c, "node1") == {} and volumes(c, "node2") == {}


def test_plain_disk_larger_than_the_group_is_refused_and_leaves_nothing(lvm_cluster):
    c = lvm_cluster
    proc = c.run("node1", "gnt-instance", "add", "-t", "plain", "-n", "node2", "--disk", "0:size=100M",
                 "--disk", "1:size=2G", "-B", "memory=64M", "big", check=False)
    assert proc.returncode == 1 and "volume group xenvg has" in proc.stderr and "needs 2048 MiB" in proc.stderr
    assert c.run("node1", "gnt-instance", "list", "--no-headers", "-o", "name").stdout == ""
    assert volumes(c, "node2") == {}
