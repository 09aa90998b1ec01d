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

    out = c.run("node1", "gnt-instance", "grow-disk", "db1", "1", "20M").stdout
    assert field(c, "db1", "disk.sizes") == "64,30" and "(the running guest sees it at once)" in out
    vg = json.loads(c.lvm_state("node2").read_text())["vgs"]["xenvg"]
    # lvextend (30 MiB in 4 MiB extents), then the running guest was told the disk's size
    assert sorted(lv["extents"] * vg["extent_size"] for lv in vg["lvs"].values()) == [32, 64]
    from genet.hypervisor.fake import FakeHypervisor
    guest = FakeHypervisor(state_dir=c.root("node2") / "var/lib/genet/fake-hv").devices("db1")
    assert [d["size"] for d in guest["disks"]] == [64, 30]

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


def make_volume(cluster, node: str, name: str, size_mib: int, marker: bytes) -> None:
    """An LV made outside genet (as an administrator would), with a marker at its start."""
    from loopback import FAKE_LVM_BIN
    cluster.run(node, str(FAKE_LVM_BIN / "lvcreate"), "-L", f"{size_mib}m", "-n", name, "xenvg")
    with open(cluster.base / node / "dev/xenvg" / name, "r+b") as f:
        f.write(marker)


def test_existing_volumes_are_adopted_with_their_data_and_size(lvm_cluster):
    c = lvm_cluster
    make_volume(c, "node2", "legacy-root", 24, b"legacy-root-data")
    make_volume(c, "node2", "legacy-swap", 8, b"legacy-swap-data")
    out = c.run("node1", "gnt-instance", "add", "-t", "plain", "-n", "node2", "--disk", "0:adopt=legacy-root",
                "--disk", "1:adopt=xenvg/legacy-swap", "-B", "memory=64M", "old1").stdout
    assert "adopting legacy-root as disk 0" in out and "OS create script" not in out
    assert field(c, "old1", "disk_template,pnode,status,disk.sizes") == "plain|node2|running|24,8"
    uuids = field(c, "old1", "disk.uuids").split(",")
    # renamed after the disks, as Ganeti does; the data is untouched (no OS was installed on it)
    assert set(volumes(c, "node2")) == {f"{u}.disk" for u in uuids}
    assert (c.base / "node2/dev/xenvg" / f"{uuids[0]}.disk").read_bytes().startswith(b"legacy-root-data")
    assert (c.base / "node2/dev/xenvg" / f"{uuids[1]}.disk").read_bytes().startswith(b"legacy-swap-data")
    c.run("node1", "gnt-instance", "remove", "old1")
    assert volumes(c, "node2") == {}


def test_adoption_refusals_leave_the_volumes_as_they_were(lvm_cluster):
    c = lvm_cluster
    make_volume(c, "node2", "keep1", 8, b"keep1")

    def refused(*argv: str) -> str:
        proc = c.run("node1", "gnt-instance", "add", "-n", "node2", "-B", "memory=64M", *argv, "bad", check=False)
        assert proc.returncode == 1, proc.stdout
        return proc.stderr
    assert "either its size or a volume to adopt" in refused("-t", "plain", "--disk", "0:adopt=keep1,size=8M")
    assert "either all disks are adopted or none is" in refused("-t", "plain", "--disk", "0:adopt=keep1",
                                                                "--disk", "1:size=8M")
    assert "not supported for the 'file' disk template" in refused("-t", "file", "--disk", "0:adopt=keep1")
    assert "give its size (size=) or a logical volume to adopt" in refused("-t", "plain", "--disk", "0:mode=rw")
    # the second volume is missing: the first, already renamed, gets its name back
    err = refused("-t", "plain", "--disk", "0:adopt=keep1", "--disk", "1:adopt=nosuchlv")
    assert "could not adopt nosuchlv as disk 1 of bad" in err and "no such logical volume" in err
    assert set(volumes(c, "node2")) == {"keep1"}
    assert (c.base / "node2/dev/xenvg/keep1").read_bytes().startswith(b"keep1")
    assert c.run("node1", "gnt-instance", "list", "--no-headers", "-o", "name").stdout == ""



def test_verify_warns_of_a_volume_no_disk_holds_until_it_is_reserved(lvm_cluster):
    """When node2's volume group holds a volume made outside genet beside a plain instance's,
    verify warns of it alone (and passes); once --reserved-lvs matches it, verify is quiet."""
    c = lvm_cluster
    make_volume(c, "node2", "backup1", 8, b"old-data")
    c.run("node1", "gnt-instance", "add", "-t", "plain", "-n", "node2", "--disk", "0:size=8M", "--no-start",
          "-o", "noop", "web1")
    out = c.run("node1", "gnt-cluster", "verify").stdout
    assert [line.split(" - ", 1)[1] for line in out.splitlines() if "WARNING" in line] == [
        "WARNING: node node2: volume xenvg/backup1 is unknown"]
    c.run("node1", "gnt-cluster", "modify", "--reserved-lvs", "xenvg/backup[0-9]+")
    assert "WARNING" not in c.run("node1", "gnt-cluster", "verify").stdout
