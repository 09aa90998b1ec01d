"""The migration_mode hvparam decides how an instance migrates when the request does not
(Ganeti: op.mode None takes the instance's HV_MIGRATION_MODE)."""
from __future__ import annotations

import pytest

from genet.opcodes import OpInstanceCreate, OpInstanceMigrate, OpNodeMigrate


def create(cluster, name: str, **hvparams) -> None:
    cluster.run(OpInstanceCreate(instance_name=name, disk_template="diskless", pnode="node2", os_type="noop",
                                 start=True, beparams={"memory": 64}, hvparams=hvparams))


def modes(cluster) -> list[str]:
    return [line.rsplit("(", 1)[1].rstrip(")") for line in cluster.log if "* migrating instance" in line]


@pytest.mark.parametrize("hvparams, asked, expected", [
    ({}, {}, "live"),
    ({"migration_mode": "non-live"}, {}, "non-live"),
    ({"migration_mode": "non-live"}, {"mode": "live"}, "live"),
    ({}, {"mode": "non-live"}, "non-live"),
    ({"migration_mode": "non-live"}, {"live": True}, "live"),
])
def test_instance_migrate_takes_migration_mode_unless_asked(cluster, hvparams, asked, expected):
    create(cluster, "web1", **hvparams)
    cluster.run(OpInstanceMigrate(instance_name="web1", target_node="node3", **asked))
    assert modes(cluster) == [expected]


def test_node_migrate_takes_each_instance_s_migration_mode(cluster):
    create(cluster, "a1", migration_mode="non-live")
    create(cluster, "a2")
    cluster.run(OpNodeMigrate(node_name="node2"))
    assert sorted(modes(cluster)) == ["live", "non-live"]


def test_an_instance_set_to_always_fail_over_is_failed_over_when_asked_to_migrate(cluster):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="diskless", pnode="node2", os_type="noop",
                                 start=True, beparams={"memory": 64, "always_failover": True}))
    cluster.run(OpInstanceMigrate(instance_name="web1", target_node="node3"))
    assert "Instance configured to always failover; fallback to failover" in cluster.log
    assert modes(cluster) == []
    assert cluster.instance("web1")["primary_node"] == "node3" and cluster.running()["node3"] == ["web1"]


def test_an_allocator_genet_does_not_have_is_refused_by_migrate_and_node_migrate(cluster):
    create(cluster, "web1")
    cluster.refused(OpInstanceMigrate(instance_name="web1", iallocator="dumb"), "iallocator 'dumb' is not available")
    cluster.refused(OpNodeMigrate(node_name="node2", iallocator="dumb"), "iallocator 'dumb' is not available")
    cluster.run(OpNodeMigrate(node_name="node2", iallocator="hail"))
    assert cluster.instance("web1")["primary_node"] != "node2"
