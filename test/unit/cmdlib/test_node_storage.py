"""Nodes' storage units, volumes and DRBD minors, and the templates' state (gnt-storage), run
in-process (conftest.Cluster): file storage for real, LVM through the fake in test/fakes/lvm
(one fake for the whole process, so every node sees the same volume group)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from genet import errors
from genet.opcodes import (OpExtStorageDiagnose, OpInstanceCreate, OpNodeModifyStorage, OpNodeQueryDrbd,
                           OpNodeQueryStorage, OpNodeQueryvols, OpNodeSetParams, OpRepairNodeStorage)

FAKE_BIN = Path(__file__).resolve().parents[2] / "fakes" / "lvm-bin"
ALL = ["node", "type", "name", "size", "used", "free", "allocatable"]


class FakeLvm:
    def __init__(self, root: Path, monkeypatch):
        self.env = {"GENET_FAKE_LVM_STATE": str(root / "lvm.json"), "GENET_FAKE_LVM_DEV": str(root / "dev")}
        for key, value in {**self.env, "GENET_LVM_BINDIR": str(FAKE_BIN), "GENET_LVM_DEV_DIR": str(root / "dev")}.items():
            monkeypatch.setenv(key, value)
        self.run("lvm", "fake", "vgcreate", "xenvg", "1024")
        self.run("lvm", "fake", "pvcreate", "xenvg", "/dev/sdb1", "512")

    def run(self, *argv: str) -> str:
        proc = subprocess.run([str(FAKE_BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                              env={**os.environ, **self.env})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def pvs(self) -> dict:
        return json.loads(Path(self.env["GENET_FAKE_LVM_STATE"]).read_text())["vgs"]["xenvg"]["pvs"]

    def lvs(self) -> list[str]:
        return sorted(json.loads(Path(self.env["GENET_FAKE_LVM_STATE"]).read_text())["vgs"]["xenvg"]["lvs"])


@pytest.fixture
def lvm(tmp_path, monkeypatch):
    return FakeLvm(tmp_path / "lvm", monkeypatch)


def storage_calls(cluster) -> list[tuple[str, str]]:
    return [c for c in cluster.transport.calls if c[1].startswith(("storage", "node_volumes"))]


def test_list_storage_of_file_reports_each_nodes_directory_with_its_files(cluster):
    """When a file instance has an 8 MiB disk on node2, node2's file storage directory is 8 MiB used
    and every node reports its directory, with the filesystem's size and free space, in node order."""
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2", os_type="noop",
                                 disks=[{"size": 8}], start=False))
    rows = cluster.run(OpNodeQueryStorage(storage_type="file", output_fields=ALL))
    assert [r[:3] for r in rows] == [[n, "file", str(cluster.nodes[n].root / "srv/genet/file-storage")]
                                     for n in ("node1", "node2", "node3")]
    stat = os.statvfs(cluster.nodes["node2"].root)
    by_node = {r[0]: r for r in rows}
    assert by_node["node2"][3] == stat.f_blocks * stat.f_frsize >> 20
    assert by_node["node2"][4] == 8 and by_node["node1"][4] == 0
    assert all(r[6] is True for r in rows)


def test_list_storage_gives_the_fields_asked_in_their_order_for_the_nodes_named(cluster):
    rows = cluster.run(OpNodeQueryStorage(storage_type="file", nodes=["node3"], output_fields=["used", "node"]))
    assert rows == [[0, "node3"]]


def test_list_storage_without_a_type_lists_the_volume_groups_of_the_default_template(cluster, lvm):
    """With no enabled_disk_templates configured, Ganeti's default ones come first: drbd, so lvm-vg."""
    rows = cluster.run(OpNodeQueryStorage(nodes=["node1"], output_fields=ALL))
    assert rows == [["node1", "lvm-vg", "xenvg", 1536, 0, 1536, True]]


def test_list_storage_warns_about_a_node_that_cannot_answer_and_lists_the_others(cluster, lvm, monkeypatch):
    cluster.nodes["node3"].reachable = False
    rows = cluster.run(OpNodeQueryStorage(storage_type="lvm-pv", output_fields=["node", "name", "free"]))
    assert rows == [["node1", "/dev/fake-pv-xenvg", 1024], ["node1", "/dev/sdb1", 512],
                    ["node2", "/dev/fake-pv-xenvg", 1024], ["node2", "/dev/sdb1", 512]]
    assert any("Can't get storage data from node node3" in line for line in cluster.log)


def test_list_storage_skips_offline_nodes(cluster):
    cluster.run(OpNodeSetParams(node_name="node3", offline=True, force=True))
    rows = cluster.run(OpNodeQueryStorage(storage_type="file", output_fields=["node"]))
    assert rows == [["node1"], ["node2"]]


@pytest.mark.parametrize("op, message", [
    (OpNodeQueryStorage(storage_type="file", output_fields=["name", "colour"]), "Unknown output fields selected: colour"),
    (OpNodeQueryStorage(storage_type="file", nodes=["node9"], output_fields=["name"]), "node 'node9' is not in"),
    (OpNodeQueryvols(output_fields=["phys", "owner"]), "Unknown output fields selected: owner"),
])
def test_queries_refuse_unknown_fields_and_nodes_before_asking_any_node(cluster, op, message):
    cluster.refused(op, message)
    assert storage_calls(cluster) == []


def test_a_storage_type_no_enabled_template_uses_is_refused(cluster):
    cluster.ctx.cfg.update(lambda data: data.cluster.__setitem__("enabled_disk_templates", ["file"]))
    cluster.refused(OpNodeQueryStorage(storage_type="lvm-pv", output_fields=["name"]),
                    "No disk template of storage type 'lvm-vg' is enabled in this cluster. Enabled disk"
                    " templates are: file")
    assert cluster.run(OpNodeQueryStorage(output_fields=["type"], nodes=["node1"])) == [["file"]]


def test_modify_storage_makes_a_physical_volume_unallocatable_and_back(cluster, lvm):
    op = OpNodeModifyStorage(node_name="node2", storage_type="lvm-pv", name="/dev/sdb1",
                             changes={"allocatable": False})
    assert cluster.run(op) is None
    assert lvm.pvs()["/dev/sdb1"]["allocatable"] is False
    rows = cluster.run(OpNodeQueryStorage(storage_type="lvm-pv", nodes=["node2"], output_fields=["name", "allocatable"]))
    assert rows == [["/dev/fake-pv-xenvg", True], ["/dev/sdb1", False]]
    op.changes = {"allocatable": True}
    cluster.run(op)
    assert lvm.pvs()["/dev/sdb1"]["allocatable"] is True


def test_modify_storage_of_a_missing_unit_fails_naming_it(cluster, lvm):
    with pytest.raises(errors.OpExecError, match="Failed to modify storage unit '/dev/sdz' on node2.*"
                                                  "Failed to find physical volume"):
        cluster.run(OpNodeModifyStorage(node_name="node2", storage_type="lvm-pv", name="/dev/sdz",
                                        changes={"allocatable": False}))


@pytest.mark.parametrize("op, message", [
    (OpNodeModifyStorage(node_name="node2", storage_type="file", name="x", changes={"allocatable": False}),
     "Storage units of type 'file' can not be modified"),
    (OpNodeModifyStorage(node_name="node2", storage_type="lvm-pv", name="x", changes={"size": 4}),
     r"The following fields can not be modified for storage units of type 'lvm-pv': \['size'\]"),
    (OpRepairNodeStorage(node_name="node2", storage_type="lvm-pv", name="x"),
     "Storage units of type 'lvm-pv' can not be repaired"),
    (OpRepairNodeStorage(node_name="node9", storage_type="lvm-vg", name="xenvg"), "node 'node9' is not in"),
])
def test_modify_and_repair_refuse_what_the_type_cannot_do_before_asking_the_node(cluster, op, message):
    cluster.refused(op, message, "wrong_input" if "node9" not in message else None)
    assert storage_calls(cluster) == []


def test_repair_storage_drops_the_lost_physical_volume_and_the_volumes_on_it(cluster, lvm):
    """When a PV of the group died, vgreduce --removemissing (then --force, which takes the volumes
    that lived on it) makes the group consistent again."""
    lvm.run("lvcreate", "-L", "8m", "-n", "stays", "xenvg")        # on the first PV
    lvm.run("lvcreate", "-L", "1100m", "-n", "spans", "xenvg")     # the rest of it, and /dev/sdb1
    lvm.run("lvm", "fake", "pvlose", "/dev/sdb1")
    cluster.run(OpRepairNodeStorage(node_name="node1", storage_type="lvm-vg", name="xenvg"))
    assert list(lvm.pvs()) == ["/dev/fake-pv-xenvg"]
    assert lvm.lvs() == ["stays"]
    assert "Repairing storage unit 'xenvg' on node1 ..." in cluster.log


def test_repair_storage_refuses_while_a_running_instance_is_faulty_on_its_other_node(cluster, mirrored):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template=mirrored.name, pnode="node1", snode="node2",
                                 os_type="noop", disks=[{"size": 8}]))
    for path in (cluster.nodes["node2"].root / "srv/genet/file-storage/web1").iterdir():
        path.unlink()
    cluster.refused(OpRepairNodeStorage(node_name="node1", storage_type="lvm-vg", name="xenvg"),
                    "Instance 'web1' has faulty disks on node 'node2'", "wrong_state")


def test_repair_storage_with_ignore_consistency_warns_and_repairs(cluster, mirrored, lvm):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template=mirrored.name, pnode="node1", snode="node2",
                                 os_type="noop", disks=[{"size": 8}]))
    for path in (cluster.nodes["node2"].root / "srv/genet/file-storage/web1").iterdir():
        path.unlink()
    cluster.run(OpRepairNodeStorage(node_name="node1", storage_type="lvm-vg", name="xenvg", ignore_consistency=True))
    assert any(line.startswith("Warning: Instance 'web1' has faulty disks on node 'node2'") for line in cluster.log)
    assert ("node1", "storage_execute") in cluster.transport.calls


def test_volumes_name_the_instance_each_volume_belongs_to(cluster, lvm):
    cluster.run(OpInstanceCreate(instance_name="db1", disk_template="plain", pnode="node1", os_type="noop",
                                 disks=[{"size": 8}], start=False))
    lvm.run("lvcreate", "-L", "4m", "-n", "orphan", "xenvg")
    rows = cluster.run(OpNodeQueryvols(nodes=["node1"], output_fields=["node", "phys", "vg", "name", "size",
                                                                       "instance"]))
    disk = cluster.instance("db1")["disks"][0]
    assert sorted(rows) == sorted([["node1", "/dev/fake-pv-xenvg", "xenvg", f"{disk['uuid']}.disk", "8", "db1"],
                                   ["node1", "/dev/fake-pv-xenvg", "xenvg", "orphan", "4", "-"]])


def test_volumes_of_a_disk_spanning_two_physical_volumes_show_it_on_both(cluster, lvm):
    lvm.run("lvcreate", "-L", "1100m", "-n", "big", "xenvg")
    rows = cluster.run(OpNodeQueryvols(nodes=["node2"], output_fields=["phys", "name", "size"]))
    assert rows == [["/dev/fake-pv-xenvg", "big", "1100"], ["/dev/sdb1", "big", "1100"]]


def test_list_drbd_maps_each_minor_to_its_instance_disk_role_and_peer(cluster):
    lid = {"nodes": ["node1", "node2"], "addresses": ["127.0.0.11", "127.0.0.12"], "port": 11000,
           "minors": [3, 0], "secret": "s"}

    def place(data):
        from genet.objects import Instance
        data.instances["db1"] = Instance.from_wire({
            "name": "db1", "uuid": "u1", "primary_node": "node2", "secondary_nodes": ["node1"],
            "disk_template": "drbd", "disks": [{"uuid": "d0", "size": 8, "logical_id": lid},
                                               {"uuid": "d1", "size": 8, "logical_id": {**lid, "minors": [4, 1]}}]})
    cluster.ctx.cfg.update(place)
    assert cluster.run(OpNodeQueryDrbd(node_name="node1")) == [["node1", 3, "db1", 0, "secondary", "node2"],
                                                               ["node1", 4, "db1", 1, "secondary", "node2"]]
    assert cluster.run(OpNodeQueryDrbd(node_name="node2"))[0] == ["node2", 0, "db1", 0, "primary", "node1"]
    assert cluster.run(OpNodeQueryDrbd(node_name="node3")) == []


def test_storage_diagnose_reports_each_template_on_every_node_and_group(cluster, lvm):
    rows = cluster.run(OpExtStorageDiagnose(output_fields=["name", "node_status", "nodegroup_status", "parameters"]))
    by_name = {r[0]: r for r in rows}
    assert "file" in by_name and "plain" in by_name and "diskless" in by_name
    _, node_status, group_status, parameters = by_name["plain"]
    assert node_status["node1"] == [["xenvg", True, "", [["volume_group_name", "cluster setting, default 'xenvg'"]]]]
    assert group_status == {"default": True}
    _, node_status, group_status, _ = by_name["drbd"]
    assert node_status["node2"][0][1] is False and "DRBD kernel module is not loaded" in node_status["node2"][0][2]
    assert group_status == {"default": False}


def test_storage_diagnose_names_only_the_backends_asked(cluster):
    assert cluster.run(OpExtStorageDiagnose(output_fields=["name"], names=["file", "diskless"])) == \
        [["diskless"], ["file"]]
