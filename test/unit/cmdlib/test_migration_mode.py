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
