"""The backend parameters of instance HA (issue 16), ``ha`` and ``ha_priority``, run in-process:
they behave as every backend parameter does (cluster default, per instance, shown, queried,
validated; the command lines: test_cli_beparams.py), because they are declared in the one table the others come from."""
from __future__ import annotations

import pytest

from genet import errors, query
from genet.opcodes import (OpClusterQuery, OpClusterSetParams, OpInstanceCreate, OpInstanceQueryData,
                           OpInstanceSetParams)


def create(cluster, name: str, **beparams) -> None:
    cluster.run(OpInstanceCreate(instance_name=name, disk_template="diskless", pnode="node2", disks=[],
                                 os_type="noop", beparams=beparams, start=False))


def applied(cluster, name: str) -> dict:
    return cluster.run(OpInstanceQueryData(instances=[name], static=True))[name]["be_actual"]


def listed(cluster, fields: list[str]) -> dict[str, list]:
    data = cluster.data()
    rows = query.query_instances(data, ["name", *fields], None, None)["data"]
    return {row[0][1]: [value for _, value in row[1:]] for row in rows}


def test_a_new_cluster_defaults_to_no_ha_and_priority_zero(cluster):
    """When nothing sets them, an instance is not HA, with priority 0, and gnt-cluster info says so."""
    create(cluster, "web1")
    assert (applied(cluster, "web1")["ha"], applied(cluster, "web1")["ha_priority"]) == (False, 0)
    defaults = cluster.run(OpClusterQuery())["beparams"]["default"]
    assert (defaults["ha"], defaults["ha_priority"]) == (False, 0)


def test_the_cluster_default_applies_until_an_instance_sets_its_own(cluster):
    """When the cluster says ha=true, every instance without its own value is HA; one that sets
    ha=false and a priority keeps them, and "default" inherits again."""
    create(cluster, "web1")
    create(cluster, "db1", ha=False, ha_priority=10)
    cluster.run(OpClusterSetParams(beparams={"ha": True}))
    assert listed(cluster, ["be/ha", "be/ha_priority"]) == {"web1": [True, 0], "db1": [False, 10]}
    cluster.run(OpInstanceSetParams(instance_name="db1", beparams={"ha": "default", "ha_priority": 20}))
    assert listed(cluster, ["be/ha", "be/ha_priority"])["db1"] == [True, 20]
    assert cluster.instance("db1")["beparams"] == {"ha_priority": 20}


@pytest.mark.parametrize("beparams, message", [
    ({"ha": "maybe"}, "beparams ha: expected a boolean"),
    ({"ha_priority": "high"}, "beparams ha_priority: expected an integer"),
    ({"ha_priority": True}, "beparams ha_priority: expected an integer, got bool"),
])
def test_a_bad_value_is_refused_naming_the_parameter(beparams, message):
    """When a value is not of the parameter's type, the opcode is refused and says which one."""
    with pytest.raises(errors.OpPrereqError, match=message):
        OpInstanceCreate(instance_name="web1", disk_template="diskless", os_type="noop", beparams=beparams)
    with pytest.raises(errors.OpPrereqError, match=message):
        OpClusterSetParams(beparams=beparams)


def test_they_are_query_fields_of_their_kind():
    """When gnt-instance list -o asks for them, they are known fields: a flag and a number."""
    fields = query.fields_of("instance")
    assert (fields["be/ha"].kind, fields["be/ha_priority"].kind) == ("bool", "number")
