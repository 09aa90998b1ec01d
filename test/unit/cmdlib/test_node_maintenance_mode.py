"""gnt-node modify --maintenance (issue 16), run in-process: one job drains the node, moves its
primary instances away (and its secondary copies when asked), then records it as in
maintenance; every refusal the prerequisites can make leaves the cluster as it was."""
from __future__ import annotations

import pytest

from genet import errors, query
from genet.opcodes import OpInstanceCreate, OpNodeSetParams


def create(cluster, name: str, template: str, nodes: str, memory: int = 128, start: bool = True) -> None:
    disks = [] if template == "diskless" else [{"size": 8}]
    cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, pnode=nodes, os_type="noop",
                                 disks=disks, beparams={"memory": memory}, start=start))


def maintenance(node: str, on: bool = True, **extra) -> OpNodeSetParams:
    return OpNodeSetParams(node_name=node, maintenance=on, **extra)


def flags(cluster, node: str) -> tuple[bool, bool, bool]:
    found = cluster.data().nodes[node]
    return found["maintenance"], found["drained"], found["master_candidate"]


@pytest.fixture
def busy(cluster, mirrored):
    """node2 runs db1 (mirrored to node3) and web1 (diskless), and holds the stopped db2 (mirrored
    to node1); node3 runs db3, mirrored to node2."""
    create(cluster, "db1", mirrored.name, "node2:node3")
    create(cluster, "web1", "diskless", "node2")
    create(cluster, "db2", mirrored.name, "node2:node1", start=False)
    create(cluster, "db3", mirrored.name, "node3:node2")
    return cluster


def test_maintenance_yes_empties_the_node_in_one_job_whose_log_shows_each_move(busy):
    """When a node goes into maintenance, its running instances migrate (mirrored ones to their
    secondary, the others where the allocator says), a stopped one changes node, and the node
    is recorded drained and in maintenance, no longer a candidate."""
    before = len(busy.log)
    result = busy.run(maintenance("node2"))
    assert ["maintenance", "True"] in result
    primaries = {name: busy.instance(name)["primary_node"] for name in ("db1", "web1", "db2")}
    assert primaries["db1"] == "node3" and primaries["db2"] == "node1" and primaries["web1"] in ("node1", "node3")
    assert busy.running()["node2"] == [] and busy.instance("db3")["secondary_nodes"] == ["node2"]
    assert flags(busy, "node2") == (True, True, False)
    moves = [line for line in busy.log[before:] if line.startswith(("* migrating", "* failing over"))]
    assert moves == ["* migrating instance db1 from node2 to node3 (live)",
                     "* failing over instance db2 from node2 to node1",
                     f"* migrating instance web1 from node2 to {primaries['web1']} (live)"]
    assert busy.log[-1] == "Node node2 is in maintenance"


def test_maintenance_move_takes_the_secondary_copies_too(busy):
    """When --maintenance-secondaries move is given, a mirror whose copy was on the node gets a new
    one on a node that is neither its primary nor the node."""
    busy.run(maintenance("node2", maintenance_secondaries="move"))
    assert busy.instance("db3")["secondary_nodes"] == ["node1"]
    assert busy.nodes["node2"].files("db3") == []
    assert "* moving the secondary copy of db3 from node2 to node1" in busy.log


def test_maintenance_no_ends_it_and_undrains_the_node(busy):
    """When maintenance ends, the node is neither in maintenance nor drained, a candidate again,
    and gnt-node list shows it."""
    busy.run(maintenance("node2"))
    rows = query.query_nodes(busy.data(), ["name", "maintenance", "role"], ["=", "name", "node2"], None)["data"]
    assert [value for _, value in rows[0]] == ["node2", True, "D"]
    busy.run(maintenance("node2", on=False))
    assert flags(busy, "node2") == (False, False, True)


def test_a_node_in_maintenance_is_no_allocators_choice(busy):
    """When a node is in maintenance, an instance placed by the allocator goes elsewhere."""
    busy.run(maintenance("node2"))
    busy.run(OpInstanceCreate(instance_name="new1", disk_template="diskless", disks=[], os_type="noop",
                              iallocator="hail", beparams={"memory": 64}, start=False))
    assert busy.instance("new1")["primary_node"] != "node2"


def test_the_master_node_is_refused(cluster):
    cluster.refused(maintenance("node1"), "the master node 'node1' cannot be put in maintenance", "wrong_input")


def test_an_instance_with_local_disks_is_refused_by_name(busy):
    """When an instance's disks are neither mirrored nor shared, nothing moves and it is named."""
    create(busy, "files1", "file", "node2")
    busy.refused(maintenance("node2"), "instance files1 uses disk template 'file', whose disks are neither"
                 " mirrored nor shared: it cannot be migrated off node2", "wrong_state")


def test_not_enough_memory_elsewhere_is_refused(cluster, mirrored):
    """When the secondary cannot hold a mirrored instance's memory, nothing moves or drains."""
    create(cluster, "big", mirrored.name, "node2:node3", memory=2500)
    create(cluster, "fill", "diskless", "node3", memory=2500)
    cluster.refused(maintenance("node2"), "not enough memory on target node node3 for instance big",
                    "insufficient_resources")


def test_a_peer_in_maintenance_is_refused(busy):
    """When the only node an instance can move to is in maintenance itself (db1 went from node2 to
    its mirror on node3), the node is refused."""
    busy.run(maintenance("node2"))
    busy.refused(maintenance("node3"), "instance db1 can only move to node2, which is in maintenance too",
                 "wrong_state")


@pytest.mark.parametrize("extra, message", [
    ({"drained": True}, "--maintenance sets the drained flag itself; give drained in another modify"),
    ({"offline": False}, "give offline in another modify"),
    ({"master_candidate": True}, "give master_candidate in another modify"),
])
def test_maintenance_comes_alone_among_the_role_flags(cluster, extra, message):
    cluster.refused(maintenance("node2", **extra), message, "wrong_input")


def test_moving_secondaries_goes_with_maintenance_yes(cluster):
    cluster.refused(OpNodeSetParams(node_name="node2", maintenance=False, maintenance_secondaries="move"),
                    "--maintenance-secondaries move goes with --maintenance yes", "wrong_input")


def test_a_node_in_maintenance_stays_drained_until_it_ends(cluster):
    cluster.run(maintenance("node2"))
    cluster.refused(OpNodeSetParams(node_name="node2", drained=False), "node 'node2' is in maintenance; end it"
                    " with --maintenance no", "wrong_state")


def test_an_offline_node_is_refused(cluster):
    cluster.run(OpNodeSetParams(node_name="node3", offline=True))
    cluster.refused(maintenance("node3"), "node 'node3' is offline", "wrong_state")


def test_a_failed_migration_leaves_the_node_drained_and_says_so(busy):
    """When a migration fails while acting, the job fails naming the node, which stays drained
    but is not recorded as in maintenance; running the same command again finishes the work."""
    busy.nodes["node2"].hv.fail_next("migrate", "link down")
    with pytest.raises(errors.OpExecError, match="maintenance of node node2 stopped: .*link down.*; the node stays"
                       " drained"):
        busy.run(maintenance("node2"))
    assert flags(busy, "node2")[:2] == (False, True)
    busy.run(maintenance("node2"))
    assert flags(busy, "node2")[:2] == (True, True) and busy.running()["node2"] == []
