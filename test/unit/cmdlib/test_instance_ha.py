"""Instance HA on the in-process master (conftest.Cluster): a node that stops answering with an
HA instance on it is declared dead after the timeout, fenced through its out-of-band program
(power-off, then power-status must say off), set offline, and the instance failed over to its
secondary, each step a job in the queue; a failed fence, a copy not reported in sync or a
missing program stops the recovery before anything restarts, and verify says why."""
from __future__ import annotations

import pytest

from genet import paths
from genet.opcodes import OpClusterSetParams, OpClusterVerify, OpInstanceCreate
from test_node_oob import OobProgram

DEAD_AFTER = 10.0       # genet.ha.timing's default node_dead


@pytest.fixture
def ha_cluster(tmp_path, cluster, mirrored, monkeypatch):
    """web1 (mirrored, node2 -> node3, ha=true) running; every node has the test's OOB program;
    node2 reports web1's mirror in sync while ``cluster.synced`` says so."""
    cluster.program = OobProgram(tmp_path / "oob-program")
    cluster.run(OpClusterSetParams(ndparams={"oob_program": str(cluster.program.path)}))
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="fakemirror", pnode="node2:node3",
                                 os_type="noop", disks=[{"size": 8}], beparams={"memory": 128, "ha": True}))
    cluster.synced = {"web1"}
    monkeypatch.setattr(mirrored, "synced_primaries",
                        classmethod(lambda cls: cluster.synced if paths.node_name() == "node2" else set()))
    return cluster


def lose(cluster, node: str) -> None:
    """``node`` stops answering; the master's heartbeat and HA rounds run until it counts as dead."""
    cluster.ctx.heartbeat_round()
    cluster.ctx.ha.round()
    cluster.nodes[node].reachable = False
    for _ in range(int(DEAD_AFTER / 2) + 1):
        cluster.clock.advance(2.0)
        cluster.ctx.heartbeat_round()
        cluster.ctx.ha.round()


def jobs(cluster) -> list[str]:
    return [" ".join(op["OP_ID"] for op in job["ops"]) for job in
            (cluster.ctx.queue.get(i)[0] for i in range(1, cluster.ctx.queue.last_id() + 1))]


def test_a_dead_node_is_fenced_set_offline_and_its_ha_instance_restarted_on_the_secondary(ha_cluster):
    ha_cluster.program.answer("power-status", "node2", '{"powered": false}')
    before = len(jobs(ha_cluster))
    lose(ha_cluster, "node2")
    assert ha_cluster.program.calls()[-2:] == ["power-off node2", "power-status node2"]
    data = ha_cluster.data()
    assert data.nodes["node2"]["offline"] and data.nodes["node2"]["powered"] is False
    assert data.instances["web1"]["primary_node"] == "node3"
    assert "web1" in ha_cluster.running()["node3"]
    assert jobs(ha_cluster)[before:] == ["OP_OOB_COMMAND OP_OOB_COMMAND", "OP_NODE_SET_PARAMS",
                                         "OP_INSTANCE_FAILOVER"]
    assert ha_cluster.ctx.ha.alerts() == {}
    lose(ha_cluster, "node3")      # never twice: web1 left node2, and node2 is not looked at again
    assert jobs(ha_cluster).count("OP_INSTANCE_FAILOVER") == 1


def test_a_failed_fence_restarts_nothing_and_verify_says_why(ha_cluster):
    ha_cluster.program.fail("node2", "BMC at 10.0.0.2 does not answer")
    lose(ha_cluster, "node2")
    data = ha_cluster.data()
    assert not data.nodes["node2"]["offline"]
    assert data.instances["web1"]["primary_node"] == "node2"
    assert "web1" not in ha_cluster.running()["node3"]
    alert = ha_cluster.ctx.ha.alerts()["node2"]
    assert "node2 is dead but not fenced" in alert and "BMC at 10.0.0.2 does not answer" in alert
    ha_cluster.nodes["node2"].reachable = True
    result = ha_cluster.run(OpClusterVerify())
    assert not result["ok"]
    assert any(code == "ENODEHA" and "BMC at 10.0.0.2" in text for code, *_, text in _problems(result))


def test_power_off_not_confirmed_by_power_status_is_no_fence(ha_cluster):
    lose(ha_cluster, "node2")       # the program's power-status still says powered
    assert "still powered after power-off" in ha_cluster.ctx.ha.alerts()["node2"]
    assert ha_cluster.data().instances["web1"]["primary_node"] == "node2"


def test_a_copy_not_reported_in_sync_keeps_the_node_unfenced(ha_cluster):
    ha_cluster.synced = set()
    ha_cluster.program.answer("power-status", "node2", '{"powered": false}')
    lose(ha_cluster, "node2")
    assert "power-off node2" not in ha_cluster.program.calls()
    assert "web1: the copy on its secondary node3 was not in sync" in ha_cluster.ctx.ha.alerts()["node2"]
    assert not ha_cluster.data().nodes["node2"]["offline"]


def test_an_instance_without_ha_is_left_alone(ha_cluster):
    from genet.opcodes import OpInstanceSetParams
    ha_cluster.run(OpInstanceSetParams(instance_name="web1", beparams={"ha": False}))
    lose(ha_cluster, "node2")
    assert ha_cluster.program.calls() == []
    assert ha_cluster.ctx.ha.alerts() == {}


def _problems(result) -> list:
    return [tuple(p) if isinstance(p, (list, tuple)) else (p,) for p in result["errors"]]
