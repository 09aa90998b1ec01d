"""Live migration (file disks travel along), move (a stopped instance's disks copied over TLS),
failover refusals and node migrate/evacuate, run in-process (conftest.Cluster)."""
from __future__ import annotations

import pytest

from genet import errors
from genet.opcodes import (OpInstanceCreate, OpInstanceFailover, OpInstanceMigrate, OpInstanceMove,
                           OpNodeEvacuate, OpNodeMigrate, OpNodeSetParams)


def create(cluster, name="web1", node="node2", template="file", start=True, memory=128):
    cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, pnode=node, os_type="noop",
                                 disks=[{"size": 8}] if template != "diskless" else [], start=start,
                                 beparams={"memory": memory}))


def test_migrate_takes_a_running_file_instance_and_its_disks_to_the_target(cluster):
    create(cluster)
    cluster.run(OpInstanceMigrate(instance_name="web1", target_node="node3"))
    assert cluster.instance("web1")["primary_node"] == "node3"
    assert cluster.running() == {"node1": [], "node2": [], "node3": ["web1"]}
    assert cluster.nodes["node2"].files("web1") == [] and len(cluster.nodes["node3"].files("web1")) == 1
    assert any("mirroring 1 disk(s) to node3" in line for line in cluster.log)


def test_migrate_without_a_target_picks_the_node_with_most_free_memory(cluster):
    create(cluster, name="big", node="node3", template="diskless", memory=1024)
    create(cluster)
    cluster.run(OpInstanceMigrate(instance_name="web1"))
    assert cluster.instance("web1")["primary_node"] == "node1"


@pytest.mark.parametrize("op, message, ecode", [
    (OpInstanceMigrate(instance_name="web1", target_node="node2"), "already on node2", "wrong_input"),
    (OpInstanceMigrate(instance_name="web1", target_node="node9"), "node 'node9' is not in the cluster",
     "unknown_entity"),
    (OpInstanceFailover(instance_name="web1", target_node="node3"), "only a live migration can take them along",
     "wrong_state"),
])
def test_moves_that_cannot_work_are_refused(cluster, op, message, ecode):
    create(cluster)
    cluster.refused(op, message, ecode)


def test_a_stopped_file_instance_is_not_migrated_and_says_why(cluster):
    create(cluster, start=False)
    cluster.refused(OpInstanceMigrate(instance_name="web1", target_node="node3"), "is not running", "wrong_state")


def test_migrate_to_a_full_or_offline_target_is_refused(cluster):
    create(cluster)
    for node in ("node1", "node3"):
        create(cluster, name=f"hog-{node}", node=node, template="diskless", memory=4000)
    cluster.refused(OpInstanceMigrate(instance_name="web1"), "Can't compute nodes using iallocator 'hail':"
                    " Request failed: .*failure reasons: FailMem: 2", "insufficient_resources")
    cluster.refused(OpInstanceMigrate(instance_name="web1", target_node="node1"),
                    "not enough memory on target node node1 for instance web1: needed 128 MiB, free 96 MiB",
                    "insufficient_resources")
    cluster.run(OpNodeSetParams(node_name="node3", offline=True, force=True))
    cluster.refused(OpInstanceMigrate(instance_name="web1", target_node="node3"), "target node node3 is offline",
                    "wrong_state")


def test_a_failed_migration_leaves_the_instance_running_on_its_source(cluster):
    """When the target cannot take the guest, the job fails, the source keeps running it and the
    target keeps nothing (no disk copy, no process); the config is unchanged."""
    create(cluster)
    before = cluster.config_text()
    cluster.nodes["node3"].hv.fail_next("accept_incoming", "no room for the guest")
    with pytest.raises(errors.OpExecError, match="no room for the guest"):
        cluster.run(OpInstanceMigrate(instance_name="web1", target_node="node3"))
    assert cluster.running() == {"node1": [], "node2": ["web1"], "node3": []}
    assert cluster.nodes["node3"].files("web1") == [] and cluster.config_text() == before


def test_move_copies_a_stopped_instance_to_another_node(cluster):
    create(cluster, start=False)
    cluster.run(OpInstanceMove(instance_name="web1", target_node="node3"))
    assert cluster.instance("web1")["primary_node"] == "node3"
    assert cluster.nodes["node2"].files("web1") == [] and len(cluster.nodes["node3"].files("web1")) == 1
    assert cluster.running()["node3"] == []


def test_move_of_a_running_instance_stops_it_there_and_starts_it_on_the_target(cluster):
    create(cluster)
    cluster.run(OpInstanceMove(instance_name="web1", target_node="node1", shutdown_timeout=5))
    assert cluster.running() == {"node1": ["web1"], "node2": [], "node3": []}


def test_node_migrate_takes_every_running_instance_away(cluster):
    create(cluster, name="a1", template="diskless")
    create(cluster, name="a2")
    cluster.run(OpNodeMigrate(node_name="node2"))
    assert cluster.running()["node2"] == [] and sorted(cluster.running()["node1"] + cluster.running()["node3"]) == \
        ["a1", "a2"]


def test_evacuating_a_node_of_primaries_moves_them_all(cluster):
    create(cluster, name="a1", template="diskless")
    create(cluster, name="a2")
    cluster.run(OpNodeEvacuate(node_name="node2", primary_only=True))
    assert {cluster.instance(n)["primary_node"] for n in ("a1", "a2")} <= {"node1", "node3"}
    assert cluster.nodes["node2"].files("a2") == []


def test_evacuating_a_node_to_itself_or_with_both_only_options_is_refused(cluster):
    create(cluster)
    cluster.refused(OpNodeEvacuate(node_name="node2", remote_node="node2"),
                    "the new node must differ from the node being evacuated", "wrong_input")
    cluster.refused(OpNodeEvacuate(node_name="node2", primary_only=True, secondary_only=True),
                    "--primary-only and --secondary-only exclude each other", "wrong_input")


def test_evacuate_with_ignore_soft_errors_leaves_what_has_nowhere_to_go(cluster):
    create(cluster, name="big", template="diskless", memory=3000)
    create(cluster, name="small", template="diskless")
    for node in ("node1", "node3"):
        create(cluster, name=f"fill-{node}", node=node, template="diskless", memory=2000)
    cluster.refused(OpNodeEvacuate(node_name="node2", primary_only=True), "Can't compute nodes using iallocator"
                    " 'hail': Request failed: .*FailMem: 2", "insufficient_resources")
    cluster.run(OpNodeEvacuate(node_name="node2", primary_only=True, ignore_soft_errors=True))
    assert cluster.instance("big")["primary_node"] == "node2"
    assert cluster.instance("small")["primary_node"] in ("node1", "node3")
    assert any("Warning: instance big stays on node2" in line for line in cluster.log)
