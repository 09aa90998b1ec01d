"""gnt-cluster modify --prealloc-wipe-disks, run in-process (conftest.Cluster): every new disk,
and the part a grown disk adds, is written with zeros on its node before anything reads it.
A fresh file disk is sparse; written with zeros its blocks are all allocated, which tells a
wiped disk from one that was not."""
from __future__ import annotations

from genet.opcodes import (OpClusterSetParams, OpInstanceCreate, OpInstanceGrowDisk, OpInstanceRecreateDisks,
                           OpInstanceSetParams)

MIB = 1 << 20


def disk_files(cluster, node="node2"):
    folder = cluster.nodes[node].root / "srv/genet/file-storage/web1"
    return [folder / name for name in cluster.nodes[node].files("web1")]


def allocated_mib(path) -> int:
    return path.stat().st_blocks * 512 // MIB


def create(cluster, **extra):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2", os_type="noop",
                                 disks=[{"size": 8}], beparams={"memory": 128}, start=False, **extra))


def wiped(cluster) -> list[str]:
    return [line for line in cluster.log if "wiping" in line]


def test_without_the_setting_new_disks_are_left_sparse(cluster):
    create(cluster)
    assert allocated_mib(disk_files(cluster)[0]) == 0 and wiped(cluster) == []


def test_a_new_instances_disks_are_zeroed_before_its_os_is_installed(cluster):
    cluster.run(OpClusterSetParams(prealloc_wipe_disks=True))
    create(cluster)
    [disk] = disk_files(cluster)
    assert allocated_mib(disk) == 8 and disk.read_bytes() == bytes(8 * MIB)
    assert wiped(cluster) == ["* wiping disk 0 of web1 on node2"]


def test_a_disk_added_recreated_or_grown_is_zeroed_where_it_is_new(cluster):
    """When a disk is added it is zeroed whole; a grown disk only in the part it gained (the old
    part keeps its data); a recreated one whole again."""
    create(cluster)
    cluster.run(OpClusterSetParams(prealloc_wipe_disks=True))
    cluster.log.clear()
    cluster.run(OpInstanceSetParams(instance_name="web1", disks=[["add", -1, {"size": 4}]]))
    added = next(p for p in disk_files(cluster) if p.stat().st_size == 4 * MIB)
    assert allocated_mib(added) == 4
    first = next(p for p in disk_files(cluster) if p != added)
    with open(first, "r+b") as f:
        f.write(b"data")
    cluster.run(OpInstanceGrowDisk(instance_name="web1", disk=0, amount=8))
    assert allocated_mib(first) == 8 and first.read_bytes()[:4] == b"data"      # 4 KiB of data + 8 MiB zeroed
    assert wiped(cluster) == ["* wiping disk 1 of web1 on node2", "* wiping disk 0 of web1 on node2"]
    added.unlink()
    cluster.run(OpInstanceRecreateDisks(instance_name="web1", disks=[[1, {}]]))
    [again] = [p for p in disk_files(cluster) if p.stat().st_size == 4 * MIB]
    assert allocated_mib(again) == 4


def test_a_qcow2_image_is_not_written_over(cluster):
    cluster.run(OpClusterSetParams(prealloc_wipe_disks=True))
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2", os_type="noop",
                                 disks=[{"size": 8, "format": "qcow2"}], beparams={"memory": 128}, start=False))
    assert "* not wiping disk 0 of web1: a new qcow2 image reads zeros" in cluster.log


def test_a_mirrored_disk_is_zeroed_on_both_its_nodes(cluster, mirrored):
    cluster.run(OpClusterSetParams(prealloc_wipe_disks=True))
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template=mirrored.name, pnode="node2", snode="node3",
                                 os_type="noop", disks=[{"size": 8}], beparams={"memory": 128}, start=False))
    assert wiped(cluster) == ["* wiping disk 0 of web1 on node2", "* wiping disk 0 of web1 on node3"]
    assert [allocated_mib(p) for node in ("node2", "node3") for p in disk_files(cluster, node)] == [8, 8]
