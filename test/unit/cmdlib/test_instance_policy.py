"""Instance policies enforced as Ganeti does, in-process (conftest.Cluster): add, modify and
grow-disk meet the policy of the primary node's group; migrate, failover, move and
replace-disks to a node of another group meet that group's; --ignore-ipolicy warns instead;
gnt-cluster verify reports violations (EINSTANCEPOLICY) and N+1 memory failures (ENODEN1)."""
from __future__ import annotations

import pytest

from genet.opcodes import (OpClusterQuery, OpClusterSetParams, OpClusterVerify, OpGroupAdd, OpGroupAssignNodes,
                           OpGroupSetParams, OpInstanceCreate, OpInstanceFailover, OpInstanceGrowDisk,
                           OpInstanceMigrate, OpInstanceMove, OpInstanceReplaceDisks, OpInstanceSetParams)



def create(cluster, name="web1", node="node2", template="file", memory=128, start=True, **more):
    more.setdefault("disks", [{"size": 8}] if template != "diskless" else [])
    cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, pnode=node, os_type="noop", start=start,
                                 beparams={} if memory is None else {"memory": memory}, **more))


def bound(group="default", **ipolicy):
    """A group's own policy: min and max memory, or disk templates."""
    return OpGroupSetParams(group_name=group, ipolicy=ipolicy)


def group_uuid(cluster, name="default") -> str:
    return next(uuid for uuid, group in cluster.data().nodegroups.items() if group.name == name)


def memory_between(low, high) -> dict:
    return {"minmax": [{"min": {"memory-size": low}, "max": {"memory-size": high}}]}


def rack2(cluster, **ipolicy) -> str:
    """node3 alone in group rack2, with its own policy."""
    cluster.run(OpGroupAdd(group_name="rack2", ipolicy=ipolicy or None))
    cluster.run(OpGroupAssignNodes(group_name="rack2", nodes=["node3"]))
    return group_uuid(cluster, "rack2")


# --- add -----------------------------------------------------------------------------------

def test_add_is_refused_naming_the_group_and_each_broken_bound(cluster):
    """When the new instance breaks its group's bounds, nothing is created and Ganeti's message
    names the group and every bound."""
    cluster.run(bound(**memory_between(256, 1024)))
    uuid = group_uuid(cluster)
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2", os_type="noop",
                                     disks=[{"size": 8}], beparams={"memory": 128}),
                    f"Instance allocation to group {uuid} \\(default\\) violates policy: memory-size value 128 is"
                    " not in range \\[256, 1024\\]", "wrong_input")
    assert cluster.instance("web1") is None


def test_add_of_a_template_the_policy_does_not_allow_is_refused(cluster):
    cluster.run(bound(**{"disk-templates": ["diskless", "sharedfile"]}))
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2", os_type="noop",
                                     disks=[{"size": 8}]),
                    "violates policy: Disk template file is not allowed \\(allowed templates: diskless, sharedfile\\)",
                    "wrong_input")
    create(cluster, template="diskless")


def test_add_with_ignore_ipolicy_creates_the_instance_and_warns(cluster):
    cluster.run(bound(**memory_between(256, 1024)))
    create(cluster, ignore_ipolicy=True)
    assert cluster.instance("web1")["admin_state"] == "up"
    assert any(line.startswith("WARNING: Instance allocation to group") and "memory-size value 128" in line
               for line in cluster.log)


def test_the_default_policy_allows_every_enabled_template_and_refuses_ganetis_small_instances(cluster, mirrored):
    """With Ganeti's default bounds (not the test clusters' wide ones), a 64 MiB instance with an
    8 MiB disk and no NIC is refused as Ganeti refuses it; every enabled template is allowed."""
    cluster.run(OpClusterSetParams(ipolicy={"minmax": "default"}))
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="sharedfile", pnode="node2", os_type="noop",
                                     disks=[{"size": 8}], beparams={"memory": 64}),
                    "violates policy: memory-size value 64 is not in range \\[128, 32768\\], nic-count value 0 is"
                    " not in range \\[1, 8\\], disk-size/0 value 8 is not in range \\[1024, 1048576\\]",
                    "wrong_input")
    policy = cluster.run(OpClusterQuery())["ipolicy"]
    assert policy["disk-templates"] == cluster.run(OpClusterQuery())["enabled_disk_templates"]
    assert {"file", "sharedfile", "diskless", "fakemirror"} <= set(policy["disk-templates"])
    for template in ("diskless", "fakemirror"):
        create(cluster, name=template, node="node1:node2" if template == "fakemirror" else "node1", template=template,
               start=False, disks=[{"size": 1024}] if template != "diskless" else [], nics=[{}], memory=None)


# --- modify and grow-disk ------------------------------------------------------------------

def test_modify_checks_the_instance_as_it_will_be_with_maxmem_and_minmem(cluster):
    create(cluster)
    cluster.run(bound(**memory_between(128, 1024)))
    cluster.refused(OpInstanceSetParams(instance_name="web1", beparams={"maxmem": 2048}),
                    "violates policy: memory-size value 2048 is not in range \\[128, 1024\\]", "wrong_input")
    cluster.refused(OpInstanceSetParams(instance_name="web1", beparams={"minmem": 64}),
                    "violates policy: memory-size value 64 is not in range \\[128, 1024\\]", "wrong_input")
    cluster.run(OpInstanceSetParams(instance_name="web1", beparams={"maxmem": 1024}))
    assert cluster.instance("web1")["beparams"]["maxmem"] == 1024


def test_modify_counts_the_disks_and_nics_it_adds_and_removes(cluster):
    create(cluster, nics=[{}])
    cluster.run(bound(minmax=[{"min": {"disk-count": 1, "nic-count": 1}, "max": {"disk-count": 1, "nic-count": 1}}]))
    cluster.refused(OpInstanceSetParams(instance_name="web1", disks=[("add", -1, {"size": 8})], hotplug=True),
                    "disk-count value 2 is not in range \\[1, 1\\]", "wrong_input")
    cluster.refused(OpInstanceSetParams(instance_name="web1", nics=[("remove", 0, {})]),
                    "nic-count value 0 is not in range \\[1, 1\\]", "wrong_input")


def test_modify_with_ignore_ipolicy_applies_the_change_and_warns(cluster):
    create(cluster)
    cluster.run(bound(**memory_between(128, 1024)))
    cluster.run(OpInstanceSetParams(instance_name="web1", beparams={"maxmem": 2048}, ignore_ipolicy=True))
    assert cluster.instance("web1")["beparams"]["maxmem"] == 2048
    assert any("WARNING: Instance allocation to group" in line for line in cluster.log)


def test_a_conversion_to_a_template_the_group_does_not_allow_is_refused_even_with_ignore_ipolicy(cluster, mirrored):
    create(cluster, start=False)
    cluster.run(bound(**{"disk-templates": ["file"]}))
    for ignore in (False, True):
        cluster.refused(OpInstanceSetParams(instance_name="web1", disk_template="fakemirror", remote_node="node1",
                                            ignore_ipolicy=ignore),
                        "Disk template 'fakemirror' in not allowed \\(allowed templates: file\\)", "wrong_state")


def test_a_conversion_with_a_new_secondary_in_another_group_meets_that_groups_policy(cluster, mirrored):
    create(cluster, start=False)
    uuid = rack2(cluster, **memory_between(1, 64))
    cluster.refused(OpInstanceSetParams(instance_name="web1", disk_template="fakemirror", remote_node="node3"),
                    f"Instance does not meet target node group's \\({uuid}\\) instance policy: memory-size value"
                    " 128 is not in range \\[1, 64\\]", "wrong_input")


def test_grow_disk_beyond_the_policy_is_refused_or_with_ignore_ipolicy_warned(cluster):
    create(cluster, start=False)
    cluster.run(bound(minmax=[{"min": {"disk-size": 1}, "max": {"disk-size": 16}}]))
    cluster.refused(OpInstanceGrowDisk(instance_name="web1", disk=0, amount=24),
                    "Growing disk 0 violates policy: disk-size/0 value 32 is not in range \\[1, 16\\]",
                    "wrong_input")
    cluster.run(OpInstanceGrowDisk(instance_name="web1", disk=0, amount=24, ignore_ipolicy=True))
    assert cluster.instance("web1")["disks"][0]["size"] == 32
    assert "WARNING: Growing disk 0 violates policy: disk-size/0 value 32 is not in range [1, 16]" in cluster.log


# --- moves to another group ----------------------------------------------------------------

def test_migrate_and_move_to_another_group_meet_its_policy(cluster):
    """When the target node is in another group, the instance must meet that group's policy;
    nothing moved on a refusal."""
    create(cluster)
    uuid = rack2(cluster, **memory_between(1, 64))
    message = (f"Instance does not meet target node group's \\({uuid}\\) instance policy: memory-size value 128 is"
               " not in range \\[1, 64\\]")
    cluster.refused(OpInstanceMigrate(instance_name="web1", target_node="node3"), message, "wrong_input")
    create(cluster, name="db1", start=False)
    cluster.refused(OpInstanceMove(instance_name="db1", target_node="node3"), message, "wrong_input")


def test_a_move_within_the_group_is_not_checked(cluster):
    """Ganeti's CheckTargetNodeIPolicy: the group the instance is in already is not asked again."""
    create(cluster)
    cluster.run(bound(**memory_between(1, 64)))
    cluster.run(OpInstanceMigrate(instance_name="web1", target_node="node1"))
    assert cluster.instance("web1")["primary_node"] == "node1"


def test_migrate_with_ignore_ipolicy_goes_and_warns(cluster):
    create(cluster)
    uuid = rack2(cluster, **memory_between(1, 64))
    cluster.run(OpInstanceMigrate(instance_name="web1", target_node="node3", ignore_ipolicy=True))
    assert cluster.instance("web1")["primary_node"] == "node3"
    assert f"WARNING: Instance does not meet target node group's ({uuid}) instance policy: memory-size value 128" \
           " is not in range [1, 64]" in cluster.log


def test_failover_and_replace_disks_to_another_group_meet_its_policy(cluster, mirrored):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="fakemirror", pnode="node1:node2",
                                 os_type="noop", disks=[{"size": 8}], beparams={"memory": 128}, start=False))
    uuid = rack2(cluster, **memory_between(1, 64))
    cluster.refused(OpInstanceReplaceDisks(instance_name="web1", mode="replace_new_secondary", remote_node="node3"),
                    f"target node group's \\({uuid}\\) instance policy", "wrong_input")
    cluster.run(OpGroupAssignNodes(group_name="rack2", nodes=["node2"], force=True))
    cluster.refused(OpInstanceFailover(instance_name="web1"), f"target node group's \\({uuid}\\) instance policy",
                    "wrong_input")
    cluster.run(OpInstanceFailover(instance_name="web1", ignore_ipolicy=True))
    assert cluster.instance("web1")["primary_node"] == "node2"


def test_a_policy_change_under_instances_warns_of_those_it_makes_violate(cluster):
    """When a group's or the cluster's policy changes so that instances break it, the change is
    made and Ganeti's warning names them (those that broke it already are not named)."""
    create(cluster)
    create(cluster, name="db1", memory=512)
    cluster.run(bound(**memory_between(256, 1024)))
    assert "WARNING: After the ipolicy change the following instances violate them: web1" in cluster.log
    cluster.run(OpClusterSetParams(ipolicy={"disk-templates": ["diskless"]}))
    assert "WARNING: After the ipolicy change the following instances violate them: db1" in cluster.log
    warnings = [line for line in cluster.log if line.startswith("WARNING: After the ipolicy change")]
    cluster.run(bound(**{"disk-templates": ["file"]}))
    assert [line for line in cluster.log if line.startswith("WARNING: After the ipolicy change")] == warnings
    assert cluster.instance("web1") is not None and cluster.instance("db1") is not None


# --- gnt-cluster verify ----------------------------------------------------------------------

def test_verify_warns_of_an_instance_that_breaks_its_groups_policy(cluster):
    """When the policy changes under an instance, verify warns (Ganeti's EINSTANCEPOLICY) and still passes."""
    create(cluster)
    cluster.run(bound(**memory_between(256, 1024)))
    result = cluster.run(OpClusterVerify(error_codes=True))
    assert result["ok"]
    assert "  - WARNING:EINSTANCEPOLICY:instance:web1:memory-size value 128 is not in range [256, 1024]" in cluster.log


def n_plus_one_situation(cluster) -> None:
    """web1 (3000 MiB, stopped) has node1 as primary and node2 as secondary; node2 runs a 2000 MiB
    instance, so 2096 of its 4096 MiB are free."""
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="fakemirror", pnode="node1:node2",
                                 os_type="noop", disks=[{"size": 8}], beparams={"memory": 3000}, start=False))
    create(cluster, name="hog", node="node2", template="diskless", memory=2000)


def test_verify_reports_a_node_that_could_not_take_its_peers_instances(cluster, mirrored):
    """When a node's free memory is less than what its peer's instances need should the peer
    fail, verify fails with Ganeti's ENODEN1 (counting stopped instances too)."""
    n_plus_one_situation(cluster)
    result = cluster.run(OpClusterVerify())
    assert not result["ok"]
    assert result["errors"] == [["ENODEN1", "node", "node2", "not enough memory to accomodate instance failovers"
                                 " should node node1 fail (3000MiB needed, 2096MiB available)"]]
    assert "* Verifying N+1 Memory redundancy" in cluster.log


def test_verify_no_nplus1_mem_skips_the_check(cluster, mirrored):
    n_plus_one_situation(cluster)
    result = cluster.run(OpClusterVerify(skip_checks=["nplusone_mem"]))
    assert result == {"ok": True, "errors": []}
    assert "* Verifying N+1 Memory redundancy" not in cluster.log


@pytest.mark.parametrize("auto_balance, ok", [(True, False), (False, True)])
def test_only_auto_balanced_instances_count_for_n_plus_one(cluster, mirrored, auto_balance, ok):
    n_plus_one_situation(cluster)
    cluster.run(OpInstanceSetParams(instance_name="web1", beparams={"auto_balance": auto_balance}))
    assert cluster.run(OpClusterVerify())["ok"] is ok


# --- as a user runs them -----------------------------------------------------------------------

def test_gnt_instance_add_is_refused_by_the_policy_unless_told_to_ignore_it(cluster, gnt):
    cluster.run(bound(**memory_between(256, 1024)))
    code, out = gnt("gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=8M", "-B", "memory=128M",
                    "-o", "noop", "--no-start", "web1")
    assert code == 1
    assert "violates policy: memory-size value 128 is not in range [256, 1024]" in out
    code, out = gnt("gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=8M", "-B", "memory=128M",
                    "-o", "noop", "--no-start", "--ignore-ipolicy", "web1")
    assert code == 0 and "WARNING: Instance allocation to group" in out
    assert cluster.instance("web1") is not None


def test_gnt_cluster_verify_reports_n_plus_one_unless_no_nplus1_mem(cluster, mirrored, gnt):
    n_plus_one_situation(cluster)
    code, out = gnt("gnt-cluster", "verify")
    assert code == 1
    assert "ERROR: node node2: not enough memory to accomodate instance failovers should node node1 fail" \
           " (3000MiB needed, 2096MiB available)" in out
    code, out = gnt("gnt-cluster", "verify", "--no-nplus1-mem")
    assert code == 0 and "N+1" not in out
