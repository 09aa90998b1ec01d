"""Out-of-band commands and powercycle run in-process (conftest.Cluster), with an OOB program
written here: a shell script that records each call and answers what the test put in its folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from genet import powercycle
from genet.opcodes import OpClusterSetParams, OpNodePowercycle, OpNodeSetParams, OpOobCommand

RS_NORMAL, RS_NODATA, RS_UNAVAIL = 0, 2, 3
SCRIPT = """#!/bin/sh
dir={dir}
echo "$1 $2" >> "$dir/calls"
if [ -f "$dir/fail-$2" ]; then cat "$dir/fail-$2" >&2; exit 1; fi
if [ -f "$dir/sleep" ]; then sleep "$(cat "$dir/sleep")"; fi
if [ -f "$dir/answer-$1-$2" ]; then cat "$dir/answer-$1-$2"; exit 0; fi
case "$1" in
    power-status) echo '{{"powered": true}}' ;;
    health) echo '[["Ambient Temp", "OK"], ["FAN 1 RPM", "OK"]]' ;;
esac
"""


class OobProgram:
    """The test's OOB program: ``path`` to set as oob_program, ``calls`` it received."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir()
        self.path = folder / "oob"
        self.path.write_text(SCRIPT.format(dir=folder))
        os.chmod(self.path, 0o755)

    def calls(self) -> list[str]:
        log = self.folder / "calls"
        return log.read_text().splitlines() if log.exists() else []

    def answer(self, command: str, node: str, text: str) -> None:
        (self.folder / f"answer-{command}-{node}").write_text(text)

    def fail(self, node: str, reason: str) -> None:
        (self.folder / f"fail-{node}").write_text(reason)


@pytest.fixture
def program(tmp_path, cluster) -> OobProgram:
    """Every node has the program, through the cluster's node parameters."""
    prog = OobProgram(tmp_path / "oob-program")
    cluster.run(OpClusterSetParams(ndparams={"oob_program": str(prog.path)}))
    return prog


def rows(result) -> dict[str, list]:
    """{node: [status, answer]} from the LU's [[(RS_NORMAL, node), (status, answer)], ...]."""
    assert all(entry[0][0] == RS_NORMAL for entry in result)
    return {entry[0][1]: entry[1] for entry in result}


def test_power_status_runs_each_nodes_program_on_the_master(cluster, program):
    """When the power status is asked for all nodes, the program runs on the master once per
    node (PROGRAM power-status NODE) and each node's answer is returned, in node order."""
    program.answer("power-status", "node3", '{"powered": false}')
    cluster.transport.calls.clear()
    result = cluster.run(OpOobCommand(command="power-status"))
    assert [entry[0][1] for entry in result] == ["node1", "node2", "node3"]
    assert rows(result) == {"node1": [RS_NORMAL, {"powered": True}], "node2": [RS_NORMAL, {"powered": True}],
                            "node3": [RS_NORMAL, {"powered": False}]}
    assert program.calls() == ["power-status node1", "power-status node2", "power-status node3"]
    assert [call for call in cluster.transport.calls if call[1] == "run_oob"] == [("node1", "run_oob")] * 3
    assert all(node["powered"] for node in cluster.data()["nodes"].values())    # status records nothing


def test_power_off_needs_the_node_offline_unless_told_and_records_it_unpowered(cluster, program):
    """When a node is to be powered off it must be marked offline first (or --ignore-status
    given); the program then runs and the node is recorded as not powered."""
    cluster.refused(OpOobCommand(command="power-off", node_names=["node3"]),
                    "Cannot power off node node3 because it is not marked offline", "wrong_state")
    assert program.calls() == []
    cluster.run(OpNodeSetParams(node_name="node3", offline=True))
    result = cluster.run(OpOobCommand(command="power-off", node_names=["node3"]))
    assert rows(result) == {"node3": [RS_NORMAL, None]}
    assert cluster.data()["nodes"]["node3"]["powered"] is False
    cluster.run(OpOobCommand(command="power-off", node_names=["node2"], ignore_status=True))
    assert cluster.data()["nodes"]["node2"]["powered"] is False
    assert program.calls() == ["power-off node3", "power-off node2"]


def test_power_on_records_the_nodes_powered_and_waits_between_them(cluster, program):
    """When nodes are powered on, each is recorded powered and the power delay passes between
    two of them (not after the last)."""
    for name in ("node2", "node3"):
        cluster.run(OpNodeSetParams(node_name=name, powered=False))
    before = cluster.clock.time()
    cluster.run(OpOobCommand(command="power-on", node_names=["node3", "node2"], power_delay=7.5))
    assert program.calls() == ["power-on node2", "power-on node3"]
    assert cluster.data()["nodes"]["node2"]["powered"] and cluster.data()["nodes"]["node3"]["powered"]
    assert cluster.clock.time() - before == 7.5


def test_the_master_is_refused_for_power_off_and_cycle_with_the_command_to_run_by_hand(cluster, program):
    """When the master is named for power-off or power-cycle, the command is refused and the
    message gives the program's command line; without names the master is left out."""
    for command in ("power-off", "power-cycle"):
        cluster.refused(OpOobCommand(command=command, node_names=["node1", "node2"], ignore_status=True),
                        f"Operating on the master node node1 is not allowed for {command}; run"
                        f" '{program.path} {command} node1' if you want to operate on the master regardless",
                        "wrong_input")
    result = cluster.run(OpOobCommand(command="power-cycle"))
    assert list(rows(result)) == ["node2", "node3"]
    assert program.calls() == ["power-cycle node2", "power-cycle node3"]


def test_a_node_without_program_is_refused_by_name_and_unavailable_among_all(cluster, program):
    """When a named node has no OOB program the command is refused naming it; when all nodes
    are asked, that node's row is unavailable and the others are asked."""
    cluster.run(OpNodeSetParams(node_name="node2", ndparams={"oob_program": ""}))
    cluster.refused(OpOobCommand(command="health", node_names=["node3", "node2"]),
                    "Node node2 does not support out-of-band commands: its node parameter oob_program is empty",
                    "wrong_state")
    result = rows(cluster.run(OpOobCommand(command="health")))
    assert result["node2"] == [RS_UNAVAIL, None]
    assert result["node3"] == [RS_NORMAL, [["Ambient Temp", "OK"], ["FAN 1 RPM", "OK"]]]
    assert program.calls() == ["health node1", "health node3"]


def test_an_unknown_node_is_refused(cluster, program):
    cluster.refused(OpOobCommand(command="health", node_names=["node9"]), "node 'node9' is not in the cluster",
                    "unknown_entity")
    assert program.calls() == []


def test_a_failing_program_gives_no_data_and_its_reason_as_a_warning(cluster, program):
    """When the program exits 1 for a node, that node has no data, the warning shows the
    program's reason, and the recorded power state does not change."""
    cluster.run(OpNodeSetParams(node_name="node3", offline=True))
    program.fail("node3", "BMC of node3 does not answer")
    result = rows(cluster.run(OpOobCommand(command="power-off", node_names=["node3"])))
    assert result == {"node3": [RS_NODATA, None]}
    assert cluster.data()["nodes"]["node3"]["powered"] is True
    assert any(line.startswith(" - WARNING: Out-of-band RPC failed on node 'node3':") and
               f"'{program.path} power-off node3' failed with reason 'exited with exit code 1'; output:"
               " BMC of node3 does not answer" in line for line in cluster.log)


@pytest.mark.parametrize("command, text, fault", [
    ("health", '[["fan", "BROKEN"]]', "health item 'fan' has invalid status 'BROKEN'"),
    ("health", '{"fan": "OK"}', "command 'health' is expected to return a list but got dict"),
    ("power-status", '[true]', "power-status is expected to return a dict but got list"),
    ("power-status", '{"on": true}', "power-status is expected to say whether the node is powered"),
    ("power-on", '"done"', "power-on is expected to not return payload but got 'done'"),
    ("power-on", 'not json', "answered no valid JSON"),
])
def test_an_answer_that_does_not_fit_the_command_gives_no_data(cluster, program, command, text, fault):
    """When the program's answer is not what the command expects, the node has no data and
    the warning names the fault; a power-on that answered wrongly records nothing."""
    cluster.run(OpNodeSetParams(node_name="node2", powered=False))
    program.answer(command, "node2", text)
    assert rows(cluster.run(OpOobCommand(command=command, node_names=["node2"]))) == {"node2": [RS_NODATA, None]}
    assert any(fault in line and "node2" in line for line in cluster.log if "WARNING" in line)
    assert cluster.data()["nodes"]["node2"]["powered"] is False


def test_a_program_running_past_its_timeout_is_stopped(cluster, program):
    (program.folder / "sleep").write_text("30")
    result = rows(cluster.run(OpOobCommand(command="health", node_names=["node2"], timeout=1)))
    assert result == {"node2": [RS_NODATA, None]}
    assert any("terminated after timeout of 1.00 seconds" in line for line in cluster.log)


def test_health_warns_of_items_in_warning_or_critical_state(cluster, program):
    program.answer("health", "node2", '[["PS Redundancy", "WARNING"], ["FAN 1 RPM", "CRITICAL"], ["Temp", "OK"]]')
    result = rows(cluster.run(OpOobCommand(command="health", node_names=["node2"])))
    assert result["node2"][0] == RS_NORMAL
    warnings = [line for line in cluster.log if "WARNING: Item" in line]
    assert warnings == [" - WARNING: Item 'PS Redundancy' on node 'node2' has status 'WARNING'",
                        " - WARNING: Item 'FAN 1 RPM' on node 'node2' has status 'CRITICAL'"]


def test_powercycle_asks_the_nodes_own_daemon_and_refuses_the_master_without_force(cluster, monkeypatch):
    """When a node is powercycled its own noded schedules the restart and says what it will do
    (a dev node restarts its daemons, never the shared machine); the master needs force."""
    spawned = []
    monkeypatch.setattr(powercycle, "spawn", lambda argv, log: spawned.append(argv))
    cluster.refused(OpNodePowercycle(node_name="node1"), "The node is the master and the force parameter was not set",
                    "wrong_input")
    answer = cluster.run(OpNodePowercycle(node_name="node3"))
    assert answer.startswith("Restart of the node daemons scheduled in 5 seconds; the machine is not rebooted:"
                             f" this node's state root is {cluster.nodes['node3'].root}")
    assert [argv[1:] for argv in spawned] == [["-m", "genet.powercycle", "restart-daemons"]]
    assert ("node3", "node_powercycle") in cluster.transport.calls
    cluster.run(OpNodePowercycle(node_name="node1", force=True))
    assert len(spawned) == 2


def test_only_a_node_that_owns_its_machine_reboots_it():
    assert powercycle.plan(Path("/")) == powercycle.REBOOT
    assert powercycle.plan(Path("/srv/dev-cluster/node2")) == powercycle.RESTART
    assert powercycle.describe(powercycle.REBOOT, Path("/")) == "Reboot scheduled in 5 seconds"
