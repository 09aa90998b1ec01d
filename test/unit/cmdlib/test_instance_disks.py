"""Disks of file instances: grow, activate and deactivate, recreate, add and remove with
modify, run in-process (conftest.Cluster)."""
from __future__ import annotations

import pytest

from genet import errors
from genet.opcodes import (OpInstanceActivateDisks, OpInstanceCreate, OpInstanceDeactivateDisks,
                           OpInstanceGrowDisk, OpInstanceRecreateDisks, OpInstanceSetParams)


@pytest.fixture
def web1(cluster):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2", os_type="noop",
                                 disks=[{"size": 8}], beparams={"memory": 128}, start=False))
    return cluster


def disk_file(cluster, index=0):
    node = cluster.nodes["node2"]
    return node.root / "srv/genet/file-storage/web1" / node.files("web1")[index]


def test_grow_disk_grows_the_file_and_records_the_size(web1):
    web1.run(OpInstanceGrowDisk(instance_name="web1", disk=0, amount=8))
    assert web1.instance("web1")["disks"][0]["size"] == 16
    assert disk_file(web1).stat().st_size == 16 << 20
    web1.run(OpInstanceGrowDisk(instance_name="web1", disk=0, amount=32, absolute=True))
    assert disk_file(web1).stat().st_size == 32 << 20


@pytest.mark.parametrize("op, message", [
    (OpInstanceGrowDisk(instance_name="web1", disk=3, amount=8), r"instance web1 has no disk 3 \(it has 1\)"),
    (OpInstanceGrowDisk(instance_name="web1", disk=0, amount=4, absolute=True), "would not grow it"),
])
def test_grow_disk_refuses_what_would_not_grow_a_disk(web1, op, message):
    web1.refused(op, message, "wrong_input")


def test_grow_disk_of_a_running_guest_tells_the_guest(web1):
    from genet.opcodes import OpInstanceStartup
    web1.run(OpInstanceStartup(instance_name="web1"))
    web1.run(OpInstanceGrowDisk(instance_name="web1", disk=0, amount=8))
    assert disk_file(web1).stat().st_size == 16 << 20 and web1.instance("web1")["disks"][0]["size"] == 16
    assert any("the running guest sees it at once" in line for line in web1.log)


def test_activate_disks_reports_where_each_disk_is(web1):
    found = web1.run(OpInstanceActivateDisks(instance_name="web1"))
    assert found == [["node2", "disk/0", str(disk_file(web1))]]
    assert web1.run(OpInstanceDeactivateDisks(instance_name="web1")) is True


def test_deactivating_the_disks_of_a_running_instance_needs_force(web1):
    from genet.opcodes import OpInstanceStartup
    web1.run(OpInstanceStartup(instance_name="web1"))
    web1.refused(OpInstanceDeactivateDisks(instance_name="web1"), "is running; stop it first", "wrong_state")


def test_recreate_disks_makes_a_lost_disk_again(web1):
    disk_file(web1).unlink()
    web1.run(OpInstanceRecreateDisks(instance_name="web1"))
    assert disk_file(web1).stat().st_size == 8 << 20


def test_modify_adds_and_removes_a_disk(web1):
    web1.run(OpInstanceSetParams(instance_name="web1", disks=[["add", -1, {"size": 4}]]))
    assert [d["size"] for d in web1.instance("web1")["disks"]] == [8, 4]
    assert len(web1.nodes["node2"].files("web1")) == 2
    web1.run(OpInstanceSetParams(instance_name="web1", disks=[["remove", 1, {}]]))
    assert [d["size"] for d in web1.instance("web1")["disks"]] == [8]
    assert len(web1.nodes["node2"].files("web1")) == 1


def test_a_disk_hot_plug_that_fails_removes_the_new_disk_again(web1):
    from genet.opcodes import OpInstanceStartup
    web1.run(OpInstanceStartup(instance_name="web1"))
    web1.nodes["node2"].hv.fail_next("hotplug_disk", "no free slot")
    with pytest.raises(errors.OpExecError, match="no free slot"):
        web1.run(OpInstanceSetParams(instance_name="web1", disks=[["add", -1, {"size": 4}]]))
    assert [d["size"] for d in web1.instance("web1")["disks"]] == [8]
    assert len(web1.nodes["node2"].files("web1")) == 1


@pytest.mark.parametrize("op, message", [
    (OpInstanceRecreateDisks(instance_name="web1", disks=[5]), r"instance web1 has no disk 5 \(it has 1\)"),
    (OpInstanceRecreateDisks(instance_name="web1", nodes=["node1", "node2"]),
     "instance web1 has 1 node\\(s\\), 2 given"),
    (OpInstanceRecreateDisks(instance_name="web1", disks=[0, 0]), "disk\\(s\\) 0 given more than once"),
])
def test_recreate_disks_refuses_what_does_not_fit_the_instance(web1, op, message):
    web1.refused(op, message, "wrong_input")


def test_recreate_disks_of_a_running_instance_is_refused_and_a_stopped_one_moves(web1):
    from genet.opcodes import OpInstanceStartup
    web1.run(OpInstanceStartup(instance_name="web1"))
    web1.refused(OpInstanceRecreateDisks(instance_name="web1"), "is running; stop it before recreating",
                 "wrong_state")
    from genet.opcodes import OpInstanceShutdown
    web1.run(OpInstanceShutdown(instance_name="web1", timeout=5))
    web1.run(OpInstanceRecreateDisks(instance_name="web1", nodes=["node3"]))
    assert web1.instance("web1")["primary_node"] == "node3" and len(web1.nodes["node3"].files("web1")) == 1
