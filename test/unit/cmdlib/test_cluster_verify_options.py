"""Ganeti's options of gnt-cluster verify and verify-disks, run in-process (conftest.Cluster):
--node-group restricts both to one group's nodes and instances, --no-strict waits for no lock."""
from __future__ import annotations

import threading

from genet.locking import Level
from genet.opcodes import OpClusterVerify, OpClusterVerifyDisks, OpGroupAdd, OpGroupAssignNodes, OpInstanceCreate


def create(cluster, name, node, template="file"):
    cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, pnode=node, os_type="noop",
                                 disks=[{"size": 8}], start=True, beparams={"memory": 128}))


def codes(result) -> list[tuple[str, str]]:
    return sorted((entry[0], entry[2]) for entry in result["errors"])


def test_verify_with_a_node_group_checks_only_that_groups_nodes_and_instances(cluster):
    """When verify is limited to a group, problems of nodes and instances elsewhere are not reported."""
    cluster.run(OpGroupAdd(group_name="rack2"))
    cluster.run(OpGroupAssignNodes(group_name="rack2", nodes=["node3"]))
    create(cluster, "web1", "node2")
    create(cluster, "db1", "node3")
    cluster.nodes["node2"].hv.crash("web1")
    cluster.nodes["node3"].hv.crash("db1")
    assert codes(cluster.run(OpClusterVerify(group_name="rack2"))) == [("EINSTANCEDOWN", "db1")]
    assert codes(cluster.run(OpClusterVerify())) == [("EINSTANCEDOWN", "db1"), ("EINSTANCEDOWN", "web1")]
    assert "* Verifying 1 online node(s)" in cluster.log


def test_verify_refuses_an_unknown_node_group(cluster):
    cluster.refused(OpClusterVerify(group_name="nowhere"), "node group 'nowhere' does not exist", "unknown_entity")


def test_verify_ssh_clutter_says_genet_keeps_no_ssh_keys(cluster):
    cluster.run(OpClusterVerify(verify_clutter=True, skip_checks=["nplusone_mem", "hvparam_assessment"]))
    assert any("genet keeps no SSH keys" in line for line in cluster.log)


def test_verify_disks_in_another_group_or_on_busy_nodes_is_skipped(cluster, mirrored):
    """When verify-disks is limited to a group, other groups' instances are left out; without
    --strict it does not wait for a node another job holds, and skips its instances."""
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template=mirrored.name, pnode="node1", snode="node2",
                                 os_type="noop", disks=[{"size": 8}], start=False, beparams={"memory": 128}))
    cluster.run(OpGroupAdd(group_name="rack2"))
    assert cluster.run(OpClusterVerifyDisks(group_name="rack2")) == []
    assert [row[0] for row in cluster.run(OpClusterVerifyDisks())] == ["web1"]
    holder = object()
    cluster.ctx.glm.acquire(holder, Level.NODE, ["node2"], shared=False)
    try:
        done = {}
        worker = threading.Thread(target=lambda: done.setdefault("rows", cluster.run(
            OpClusterVerifyDisks(is_strict=False))))
        worker.start()
        worker.join(20)
        assert done == {"rows": []}
    finally:
        cluster.ctx.glm.release(holder)
    assert "instance web1: skipped, its nodes are busy with another job" in cluster.log
