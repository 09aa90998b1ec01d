"""Every HA scenario under test/ha-scenarios plays to its expected log, with no invariant broken
(genet.ha.sim checks them on every step) (how fast they run together is measured in bench/ha_sim.py)."""
from pathlib import Path

import pytest

from genet.ha import election, recovery, scenario, sim

SCENARIOS = sorted(p.parent for p in (Path(__file__).parents[2] / "ha-scenarios").glob("*/scenario"))


def test_there_are_at_least_forty_scenarios():
    assert len(SCENARIOS) >= 40


@pytest.mark.parametrize("directory", SCENARIOS, ids=[d.name for d in SCENARIOS])
def test_scenario_plays_to_its_expected_log(directory):
    lines = scenario.run((directory / "scenario").read_text())
    assert not [line for line in lines if "VIOLATION" in line]
    assert lines == (directory / "log.expect").read_text().splitlines()


def _play(name: str) -> list[str]:
    return scenario.run((Path(__file__).parents[2] / "ha-scenarios" / name / "scenario").read_text())


def test_a_master_that_ignores_its_lease_is_caught_accepting_beside_the_new_one(monkeypatch):
    monkeypatch.setattr(election.MasterLease, "holds", lambda self: True)
    monkeypatch.setattr(sim.Master, "holds", lambda self: True)
    lines = _play("master-partitioned")
    assert any("VIOLATION node1 and node2 both accept jobs" in line for line in lines)


def test_a_recovery_that_skips_the_fence_is_caught_running_a_guest_twice(monkeypatch):
    monkeypatch.setattr(recovery.Recovery, "_fence", lambda self, node: None)
    lines = _play("ha-watchdog-partition")
    assert any("VIOLATION web runs on node1 and node2" in line for line in lines)


def test_a_takeover_without_the_others_queues_is_caught_losing_acknowledged_jobs(monkeypatch):
    take_over = sim.Local.take_over

    def forgetful(self, epoch, lease):
        why_not = take_over(self, epoch, lease)
        self.node.jobs = set(list(self.node.jobs)[:1])
        return why_not
    monkeypatch.setattr(sim.Local, "take_over", forgetful)
    lines = _play("master-dies")
    assert any("VIOLATION master node2 lacks acknowledged jobs" in line for line in lines)


def test_a_bad_scenario_is_refused_with_its_line():
    with pytest.raises(scenario.ScenarioError, match="line 2: unknown option 'colour=red'"):
        scenario.run("node node1\nnode node2 colour=red\nend 5\n")
    with pytest.raises(scenario.ScenarioError, match="line 2: no node 'node9'"):
        scenario.run("node node1\nat 1 power-off node9\nend 5\n")
    with pytest.raises(scenario.ScenarioError, match="no 'end TIME'"):
        scenario.run("node node1\n")
