"""gnt-cluster modify --auto-master-failover and --ha-timeouts, run in-process: off by default,
kept with their defaults, shown by info; refused with fewer than three master candidates (a
two-node cluster needs a witness) and when the timeouts do not fit together."""
from __future__ import annotations

import dataclasses

import pytest

from genet import errors
from genet.ha import settings
from genet.ha.timing import Timing
from genet.opcodes import OpClusterQuery, OpClusterSetParams, OpNodeSetParams


def test_off_by_default_and_the_settings_are_kept_and_shown(cluster):
    shown = cluster.run(OpClusterQuery())["ha"]
    assert shown == {"auto_master_failover": False, "timeouts": dataclasses.asdict(Timing())}
    cluster.run(OpClusterSetParams(auto_master_failover=True, ha_timeouts={"node_dead": 15.0}))
    cluster.run(OpClusterSetParams(ha_timeouts={"lease_ttl": 8.0}))
    shown = cluster.run(OpClusterQuery())["ha"]
    assert shown["auto_master_failover"] is True
    assert shown["timeouts"] == {**dataclasses.asdict(Timing()), "node_dead": 15.0, "lease_ttl": 8.0}
    assert settings.timing(cluster.data().cluster.ha) == Timing(node_dead=15.0, lease_ttl=8.0)


def test_two_candidates_are_refused_and_told_to_add_a_witness(cluster):
    cluster.run(OpClusterSetParams(candidate_pool_size=2))
    cluster.run(OpNodeSetParams(node_name="node3", master_candidate=False))
    before = cluster.data().serial_no
    with pytest.raises(errors.OpPrereqError, match="needs at least 3 master candidates to vote, this cluster"
                                                   r" has 2 \(node1, node2\).*witness.*--vm-capable=no"):
        cluster.run(OpClusterSetParams(auto_master_failover=True))
    assert cluster.data().serial_no == before
    assert settings.settings(cluster.data().cluster.ha)["auto_master_failover"] is False


def test_timeouts_that_do_not_fit_together_are_refused(cluster):
    with pytest.raises(errors.OpPrereqError, match="invalid HA timeouts: the master lease"):
        cluster.run(OpClusterSetParams(ha_timeouts={"lease_ttl": 2.0}))
    with pytest.raises(errors.OpPrereqError, match=r"ha_timeouts: unknown key\(s\) lease \(known: lease_ttl,"):
        OpClusterSetParams(ha_timeouts={"lease": 2.0})
    with pytest.raises(errors.OpPrereqError, match="ha_timeouts node_dead: .*at least 0.1"):
        OpClusterSetParams(ha_timeouts={"node_dead": 0.0})
