"""gnt-group maintenance (issue 16) as a user runs it, against the in-process cluster's luxi:
hroller's reboot groups one after the other, each node into maintenance, the site's command
for it, back once it answers; the first failure stops it and names the node."""
from __future__ import annotations

import shlex
import sys

import pytest

from genet.cli import group_maintenance
from genet.opcodes import OpInstanceCreate


@pytest.fixture
def spread(cluster, mirrored):
    """db1 runs on node2 mirrored to node3 (so they reboot apart), web1 (diskless) on node3."""
    cluster.run(OpInstanceCreate(instance_name="db1", disk_template=mirrored.name, pnode="node2:node3",
                                 os_type="noop", disks=[{"size": 8}], beparams={"memory": 128}))
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="diskless", pnode="node3", os_type="noop",
                                 disks=[], beparams={"memory": 128}))
    return cluster


def recording(cluster, tmp_path, monkeypatch, exit_code: int = 0) -> tuple[str, object, list]:
    """A command that notes each node it is run for and exits with ``exit_code``; and what the
    cluster said about those nodes (in maintenance, drained) when it was run."""
    notes, seen = tmp_path / "notes", []
    script = f"import sys; open({str(notes)!r}, 'a').write(sys.argv[1] + '\\n'); sys.exit({exit_code})"
    real = group_maintenance._run_command

    def run(command, nodes):
        seen.append({node: maintained(cluster)[node] for node in nodes})
        real(command, nodes)
    monkeypatch.setattr(group_maintenance, "_run_command", run)
    return shlex.join([sys.executable, "-c", script]), notes, seen


def maintained(cluster) -> dict[str, tuple[bool, bool]]:
    return {name: (node["maintenance"], node["drained"]) for name, node in cluster.data().nodes.items()}


def test_each_reboot_group_goes_through_maintenance_in_turn(spread, gnt, tmp_path, monkeypatch):
    """When the group is maintained, node2 and node3 (which share db1) take their turn apart,
    each in maintenance while its command runs, and all are back at the end; the master is
    left out, saying so."""
    command, notes, seen = recording(spread, tmp_path, monkeypatch)
    code, out = gnt("gnt-group", "maintenance", "--command", command, "default")
    assert code == 0, out
    assert sorted(notes.read_text().split()) == ["node2", "node3"]
    assert sorted(seen, key=str) == [{"node2": (True, True)}, {"node3": (True, True)}]
    assert "Leaving out the master node node1: fail the master over to maintain it" in out
    assert "Reboot group 1 of 2" in out and "Reboot group 2 of 2" in out
    assert "Maintenance of node group default done" in out
    assert maintained(spread) == {"node1": (False, False), "node2": (False, False), "node3": (False, False)}
    assert "* migrating instance db1 from node2 to node3 (live)" in out


def test_a_failing_command_stops_at_its_node(spread, gnt, tmp_path, monkeypatch):
    """When the command fails for a node, nothing goes on: the message names the node, which
    stays in maintenance, and the other reboot group was not touched."""
    command, notes, _ = recording(spread, tmp_path, monkeypatch, exit_code=3)
    code, out = gnt("gnt-group", "maintenance", "--command", command, "default")
    first = notes.read_text().split()[0]
    assert code == 1
    assert f"the command {command!r} failed for node {first} (exit code 3); {first} stays in maintenance" in out
    assert [name for name, flags in maintained(spread).items() if flags != (False, False)] == [first]


def test_a_node_that_does_not_answer_again_stops_it(spread, gnt, monkeypatch):
    """When a node stays silent after its command past --timeout, the command stops, naming it."""
    def goes_down(command, nodes):
        for node in nodes:
            spread.nodes[node].reachable = False
    monkeypatch.setattr(group_maintenance, "_run_command", goes_down)
    monkeypatch.setattr(group_maintenance, "POLL", 0.0)
    code, out = gnt("gnt-group", "maintenance", "--command", "true", "--timeout", "0", "default")
    assert code == 1 and "did not answer within 0 s after the command; it stays in maintenance" in out
    assert sum(flags == (True, True) for flags in maintained(spread).values()) == 1


def test_a_node_that_cannot_be_emptied_stops_it_before_its_command(spread, gnt, tmp_path, monkeypatch):
    """When a node's maintenance is refused (an instance with local disks), the command stops
    naming the node, which gets no command and is left as it was."""
    spread.run(OpInstanceCreate(instance_name="files1", disk_template="file", pnode="node2", os_type="noop",
                                disks=[{"size": 8}], beparams={"memory": 64}, start=False))
    command, notes, _ = recording(spread, tmp_path, monkeypatch)
    code, out = gnt("gnt-group", "maintenance", "--command", command, "default")
    assert code == 1 and "putting node node2 into maintenance failed: instance files1 uses disk template" in out
    assert "node2" not in (notes.read_text().split() if notes.exists() else [])
    assert maintained(spread)["node2"] == (False, False)
