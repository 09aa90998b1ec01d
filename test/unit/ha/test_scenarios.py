"""Every HA scenario under test/ha-scenarios plays to its expected log, with no invariant broken
(genet.ha.sim checks them on every step) (how fast they run together is measured in bench/ha_sim.py)."""
from pathlib import Path

import pytest

from genet.ha import scenario

SCENARIOS = sorted(p.parent for p in (Path(__file__).parents[2] / "ha-scenarios").glob("*/scenario"))


def test_there_are_at_least_forty_scenarios():
    assert len(SCENARIOS) >= 40


@pytest.mark.parametrize("directory", SCENARIOS, ids=[d.name for d in SCENARIOS])
def test_scenario_plays_to_its_expected_log(directory):
    lines = scenario.run((directory / "scenario").read_text())
    assert not [line for line in lines if "VIOLATION" in line]
    assert lines == (directory / "log.expect").read_text().splitlines()
