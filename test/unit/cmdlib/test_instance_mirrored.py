"""Instances with mirrored disks (fake_mirror's template): failover, live migration,
replace-disks, conversion, verify-disks and node failover/evacuation, run in-process."""
from __future__ import annotations

import pytest

from genet import errors
from genet.opcodes import (OpClusterVerifyDisks, OpInstanceCreate, OpInstanceFailover, OpInstanceGrowDisk,
                           OpInstanceMigrate, OpInstanceQueryData, OpInstanceRename, OpInstanceReplaceDisks,
                           OpInstanceSetParams, OpInstanceStartup,
                           OpInstanceShutdown, OpNodeEvacuate, OpNodeFailover, OpNodeSetParams)


@pytest.fixture
def web1(cluster, mirrored):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="fakemirror", pnode="node2:node3",
                                 os_type="noop", disks=[{"size": 8}], beparams={"memory": 128}))
    return cluster


def image(cluster, node: str) -> bytes:
    files = cluster.nodes[node].files("web1")
    assert len(files) == 1, f"{node} holds {files}"
    return (cluster.nodes[node].root / "srv/genet/file-storage/web1" / files[0]).read_bytes()


def sides(cluster) -> tuple[str, list[str]]:
    inst = cluster.instance("web1")
    return inst["primary_node"], inst["secondary_nodes"]


def test_create_puts_a_copy_on_each_node_and_runs_on_the_primary(web1):
    assert sides(web1) == ("node2", ["node3"])
    assert image(web1, "node2") == image(web1, "node3")
    assert web1.running()["node2"] == ["web1"]
    info = web1.run(OpInstanceQueryData(instances=["web1"]))["web1"]
    assert info["disks"][0]["mirror"]["state"] == "in sync" and info["snodes"] == ["node3"]


def test_failover_swaps_the_nodes_and_runs_it_on_the_former_secondary(web1):
    web1.run(OpInstanceFailover(instance_name="web1", shutdown_timeout=5))
    assert sides(web1) == ("node3", ["node2"])
    assert web1.running() == {"node1": [], "node2": [], "node3": ["web1"]}


def test_failover_from_an_unreachable_primary_needs_it_declared_down(web1):
    web1.nodes["node2"].reachable = False
    web1.refused(OpInstanceFailover(instance_name="web1"), "the primary node node2 of web1 does not answer: it"
                 " may be cut off and still run web1", "environment_error")
    web1.run(OpInstanceFailover(instance_name="web1", ignore_consistency=True, primary_is_down=True))
    assert sides(web1) == ("node3", ["node2"]) and web1.running()["node3"] == ["web1"]


def test_migrate_moves_the_running_guest_to_the_secondary_without_copying(web1):
    web1.run(OpInstanceMigrate(instance_name="web1"))
    assert sides(web1) == ("node3", ["node2"])
    assert web1.running() == {"node1": [], "node2": [], "node3": ["web1"]}


def test_migrate_elsewhere_than_the_secondary_is_refused(web1):
    web1.refused(OpInstanceMigrate(instance_name="web1", target_node="node1"),
                 "has its disks mirrored to node3; it can only move there, not to node1", "wrong_input")


def test_replace_disks_moves_the_secondary_to_a_new_node(web1):
    web1.run(OpInstanceReplaceDisks(instance_name="web1", mode="replace_new_secondary", remote_node="node1"))
    assert sides(web1) == ("node2", ["node1"])
    assert image(web1, "node1") == image(web1, "node2") and web1.nodes["node3"].files("web1") == []


def test_replace_disks_on_the_secondary_makes_its_copy_again(web1):
    secondary = web1.nodes["node3"]
    (secondary.root / "srv/genet/file-storage/web1" / secondary.files("web1")[0]).write_bytes(b"")
    web1.run(OpInstanceReplaceDisks(instance_name="web1", mode="replace_on_secondary"))
    assert image(web1, "node3") == image(web1, "node2") and len(image(web1, "node3")) == 8 << 20


def test_replace_disks_to_the_primary_itself_is_refused(web1):
    web1.refused(OpInstanceReplaceDisks(instance_name="web1", mode="replace_new_secondary", remote_node="node2"),
                 "node2", "wrong_input")


def test_conversion_to_file_and_back_keeps_the_data(web1):
    web1.run(OpInstanceShutdown(instance_name="web1", timeout=5))
    before = image(web1, "node2")
    web1.run(OpInstanceSetParams(instance_name="web1", disk_template="file"))
    assert sides(web1) == ("node2", []) and web1.nodes["node3"].files("web1") == []
    web1.run(OpInstanceSetParams(instance_name="web1", disk_template="fakemirror", remote_node="node1"))
    assert sides(web1) == ("node2", ["node1"]) and image(web1, "node1") == before


def test_conversion_of_a_running_instance_is_refused(web1):
    web1.refused(OpInstanceSetParams(instance_name="web1", disk_template="file"), "must be stopped", "wrong_state")


def test_verify_disks_mirrors_a_degraded_disk_again(web1):
    with web1.nodes["node3"].acting():          # the secondary's side went down (its node rebooted)
        from fake_mirror import FakeMirror
        FakeMirror().shutdown("web1", web1.instance("web1")["disks"][0], 0)
    assert web1.run(OpClusterVerifyDisks()) == [["web1", 0, "degraded", "in sync"]]


def test_grow_disk_grows_both_copies(web1):
    web1.run(OpInstanceGrowDisk(instance_name="web1", disk=0, amount=8))
    assert len(image(web1, "node2")) == len(image(web1, "node3")) == 16 << 20


def test_node_failover_and_evacuation_of_secondaries(web1):
    web1.run(OpNodeFailover(node_name="node2"))
    assert sides(web1) == ("node3", ["node2"])
    web1.run(OpNodeEvacuate(node_name="node2", secondary_only=True, remote_node="node1"))
    assert sides(web1) == ("node3", ["node1"])


def test_an_offline_secondary_leaves_the_disks_degraded_but_the_instance_runs(web1):
    web1.run(OpInstanceShutdown(instance_name="web1", timeout=5))
    web1.run(OpNodeSetParams(node_name="node3", offline=True, force=True))
    from genet.opcodes import OpInstanceStartup
    web1.run(OpInstanceStartup(instance_name="web1"))
    assert web1.running()["node2"] == ["web1"]
    assert any("secondary node node3 is offline" in line for line in web1.log)
    with pytest.raises(errors.OpPrereqError, match="node3"):
        web1.run(OpInstanceMigrate(instance_name="web1"))


def test_rename_renames_the_copy_on_each_node_and_failover_still_finds_it(web1):
    """(Found by qa/: the secondary's copy kept the old name, so a later failover found no disk.)"""
    web1.run(OpInstanceShutdown(instance_name="web1", timeout=5))
    web1.run(OpInstanceRename(instance_name="web1", new_name="web2"))
    for node in ("node2", "node3"):
        assert web1.nodes[node].files("web1") == [] and len(web1.nodes[node].files("web2")) == 1
    web1.run(OpInstanceStartup(instance_name="web2"))
    web1.run(OpInstanceFailover(instance_name="web2", shutdown_timeout=5))
    assert web1.instance("web2")["primary_node"] == "node3" and web1.running()["node3"] == ["web2"]


def test_rename_that_fails_on_the_secondary_gives_the_primary_its_old_name_back(web1):
    web1.run(OpInstanceShutdown(instance_name="web1", timeout=5))
    web1.nodes["node3"].reachable = False
    with pytest.raises(errors.OpExecError, match="renaming the disks on node3"):
        web1.run(OpInstanceRename(instance_name="web1", new_name="web2"))
    web1.nodes["node3"].reachable = True
    assert web1.instance("web1") is not None and web1.instance("web2") is None
    assert len(web1.nodes["node2"].files("web1")) == 1 and web1.nodes["node2"].files("web2") == []
