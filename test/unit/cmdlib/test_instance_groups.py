"""gnt-instance change-group, gnt-group evacuate and batch-create (Ganeti's OpInstanceChangeGroup,
OpGroupEvacuate, OpInstanceMultiAlloc): one job per instance, run in-process (conftest.Cluster)."""
from __future__ import annotations

import pytest

from genet import errors
from genet.cmdlib.instance_groups import moves
from genet.objects import Instance
from genet.opcodes import (OpGroupAdd, OpGroupAssignNodes, OpGroupEvacuate, OpInstanceChangeGroup,
                           OpInstanceCreate, OpInstanceMultiAlloc)


@pytest.fixture
def racks(cluster):
    """node3 alone in group rack2; node1 and node2 stay in the default group."""
    cluster.run(OpGroupAdd(group_name="rack2"))
    cluster.run(OpGroupAssignNodes(group_name="rack2", nodes=["node3"]))
    return cluster


def create(cluster, name, template="file", node="node2", start=True):
    cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, pnode=node, os_type="noop",
                                 disks=[{"size": 8}] if template != "diskless" else [], start=start,
                                 beparams={"memory": 128}))


def follow(cluster, result) -> list[str]:
    """Wait for the jobs the opcode submitted; their statuses."""
    return [cluster.wait(job_id)["status"] for _, job_id in result["jobs"]]


def test_change_group_migrates_a_running_instance_to_the_other_group(racks):
    create(racks, "web1")
    result = racks.run(OpInstanceChangeGroup(instance_name="web1"))
    assert follow(racks, result) == ["success"]
    assert racks.instance("web1")["primary_node"] == "node3"
    assert racks.running()["node3"] == ["web1"]


def test_group_evacuate_moves_every_instance_one_job_each_in_sequence(racks):
    create(racks, "web1")
    create(racks, "db1", start=False)                      # a stopped file instance is copied (move)
    create(racks, "calc1", template="diskless", node="node1", start=False)     # shared: failed over
    create(racks, "stay1", template="diskless", node="node3")
    result = racks.run(OpGroupEvacuate(group_name="default", sequential=True))
    assert len(result["jobs"]) == 3
    assert follow(racks, result) == ["success"] * 3
    assert {name: racks.instance(name)["primary_node"] for name in ("web1", "db1", "calc1", "stay1")} == \
        dict.fromkeys(("web1", "db1", "calc1", "stay1"), "node3")
    assert sorted(racks.running()["node3"]) == ["stay1", "web1"]
    assert racks.nodes["node2"].files("db1") == [] and len(racks.nodes["node3"].files("db1")) == 1


def test_evacuating_a_group_without_instances_submits_nothing(racks):
    assert racks.run(OpGroupEvacuate(group_name="rack2")) == {"jobs": []}


@pytest.mark.parametrize("op, message, ecode", [
    (OpInstanceChangeGroup(instance_name="web1", iallocator="dumb"), "iallocator 'dumb' is not available",
     "wrong_input"),
    (OpInstanceChangeGroup(instance_name="web1", target_groups=["default"]),
     "node group default cannot be a target: instance web1 leaves it", "wrong_input"),
    (OpInstanceChangeGroup(instance_name="web1", target_groups=["rack9"]), "node group 'rack9' does not exist",
     "unknown_entity"),
])
def test_moves_that_cannot_be_planned_are_refused_before_any_job(racks, op, message, ecode):
    create(racks, "web1")
    racks.refused(op, message, ecode)
    assert racks.instance("web1")["primary_node"] == "node2"


def test_hail_is_the_allocator_genet_answers_to(racks):
    create(racks, "web1")
    assert follow(racks, racks.run(OpInstanceChangeGroup(instance_name="web1", iallocator="hail"))) == ["success"]


class Planner:
    """Picks nodes t1, t2, ... in turn (the real one asks the nodes' free memory)."""

    def __init__(self):
        self.picked = []

    def pick(self, inst, runs, exclude, count=1):
        first = len(self.picked) + 1
        self.picked.append((runs, sorted(exclude), count))
        return [f"t{first + k}" for k in range(count)]


@pytest.mark.parametrize("state, force_failover, move", [
    ("up", False, "OP_INSTANCE_MIGRATE"), ("down", False, "OP_INSTANCE_FAILOVER"),
    ("up", True, "OP_INSTANCE_FAILOVER")])
def test_a_mirrored_instance_gets_its_copy_in_the_target_group_moves_to_it_then_loses_the_old_one(
        state, force_failover, move):
    inst = Instance.from_wire({"name": "m1", "uuid": "u", "primary_node": "p", "secondary_nodes": ["s"],
                               "disk_template": "mirror", "admin_state": state, "beparams": {"maxmem": 128}})
    planner = Planner()
    ops = moves(inst, planner, force_failover, early_release=True)
    assert [(op.OP_ID, getattr(op, "remote_node", None) or op.target_node) for op in ops] == [
        ("OP_INSTANCE_REPLACE_DISKS", "t1"), (move, "t1"), ("OP_INSTANCE_REPLACE_DISKS", "t2")]
    assert ops[0].early_release and ops[0].mode == "replace_new_secondary"
    assert planner.picked == [(state == "up", ["p", "s"], 2)]


@pytest.mark.parametrize("state, force_failover, why", [
    ("down", False, ": start it first"), ("up", True, ", which --force-failover rules out")])
def test_a_plain_instance_leaves_its_node_only_by_live_migration(state, force_failover, why):
    inst = Instance.from_wire({"name": "v1", "uuid": "u", "primary_node": "p", "disk_template": "plain",
                               "admin_state": state, "beparams": {"maxmem": 128}})
    with pytest.raises(errors.OpPrereqError, match="v1: its plain disks leave p only with a live migration" + why):
        moves(inst, Planner(), force_failover, False)
    assert moves(inst.replace(admin_state="up"), Planner(), False, False)[0].OP_ID == "OP_INSTANCE_MIGRATE"


def creation(name, **kwargs):
    return {"instance_name": name, "disk_template": kwargs.pop("disk_template", "diskless"), "os_type": "noop",
            "beparams": {"memory": kwargs.pop("memory", 128)}, **kwargs}


def test_multi_alloc_spreads_the_instances_and_creates_each_in_a_job_of_its_own(cluster):
    result = cluster.run(OpInstanceMultiAlloc(instances=[creation(f"b{i}") for i in range(3)]))
    assert (result["allocatable"], result["failed"], len(result["jobs"])) == (["b0", "b1", "b2"], [], 3)
    assert follow(cluster, result) == ["success"] * 3
    assert sorted(cluster.instance(f"b{i}")["primary_node"] for i in range(3)) == ["node1", "node2", "node3"]


def test_multi_alloc_with_an_instance_no_node_can_take_creates_none_as_ganetis_hail(cluster):
    err = cluster.refused(OpInstanceMultiAlloc(instances=[creation("small"), creation("huge", memory=1 << 20)]),
                          "Can't compute nodes using iallocator 'hail': Request failed: Group default",
                          "insufficient_resources")
    assert "FailMem" in str(err) and cluster.instance("small") is None


def test_multi_alloc_lists_what_an_allocator_could_not_place_as_failed(cluster, tmp_path, monkeypatch):
    program = tmp_path / "half"
    program.write_text("#!/bin/sh\n"
                       "python3 -c 'import json,sys; r=json.load(open(sys.argv[-1]))[\"request\"][\"instances\"];"
                       " print(json.dumps({\"success\": True, \"info\": \"half\", \"result\": "
                       "[[[r[0][\"name\"], [\"node2\"]]], [[r[1][\"name\"], \"no room\"]]]}))' \"$@\"\n")
    program.chmod(0o755)
    result = cluster.run(OpInstanceMultiAlloc(iallocator=str(program),
                                              instances=[creation("small"), creation("huge", memory=1 << 20)]))
    assert (result["allocatable"], result["failed"]) == (["small"], ["huge"])
    assert follow(cluster, result) == ["success"] and cluster.instance("huge") is None
    assert cluster.instance("small")["primary_node"] == "node2"


@pytest.mark.parametrize("instances, message", [
    ([creation("a", pnode="node2"), creation("b")], "providing pnode/snode while others do not"),
    ([creation("a"), creation("a")], "There are duplicate instance names: a"),
    ([creation("a", iallocator="hail")], "iallocator are not allowed to be set on instance objects"),
])
def test_multi_alloc_refuses_what_ganeti_refuses(cluster, instances, message):
    cluster.refused(OpInstanceMultiAlloc(instances=instances), message, "wrong_input")
