"""gnt-cluster modify --auto-master-failover and --ha-timeouts, run in-process: off by default,
kept with their defaults, shown by info; refused with fewer than three master candidates (a
two-node cluster needs a witness) and when the timeouts do not fit together."""
from __future__ import annotations

import dataclasses
import re

import pytest

from genet import errors, paths
from genet.ha import settings
from genet.ha.timing import Timing
from genet.opcodes import OpClusterQuery, OpClusterSetParams, OpNodeSetParams


class MemoryStore:
    """The leadership store in memory (what the LU needs of genet.ha.etcd.EtcdStore)."""

    def __init__(self):
        self.epoch, self.master, self.leases = 0, None, set()

    def seed_epoch(self, epoch):
        self.epoch = self.epoch or epoch

    def grant(self, ttl):
        self.leases.add(len(self.leases) + 1)
        return len(self.leases)

    def claim(self, node, lease, epoch):
        if self.master is not None or self.epoch != epoch:
            return False
        self.master, self.epoch = (node, lease), epoch + 1
        return True

    def keepalive(self, lease):
        return lease in self.leases

    def revoke(self, lease):
        self.leases.discard(lease)
        if self.master and self.master[1] == lease:
            self.master = None


@pytest.fixture
def store(monkeypatch):
    """No etcd in-process: the members' start and stop are recorded, the store is in memory."""
    from genet.ha import node_agent
    memory = MemoryStore()
    memory.members = {}
    monkeypatch.setattr(node_agent, "store_of", lambda data: memory)
    monkeypatch.setattr(node_agent, "start_member",
                        lambda members, token: memory.members.__setitem__(paths.node_name(), members) or 1)
    monkeypatch.setattr(node_agent, "stop_member", lambda: memory.members.pop(paths.node_name(), None) is not None)
    return memory


def test_turning_it_on_starts_a_member_on_every_candidate_and_hands_the_master_its_lease(cluster, store):
    assert cluster.ctx.lease is None and cluster.data().cluster["master_epoch"] == 0
    cluster.run(OpClusterSetParams(auto_master_failover=True))
    voters = {name: node.address for name, node in cluster.nodes.items()}
    assert store.members == {name: voters for name in voters}
    assert store.master == ("node1", cluster.ctx.lease.lease) and store.epoch == 1
    assert cluster.data().cluster["master_epoch"] == 1 == cluster.ctx.epoch      # epoch 0 moves to 1
    assert cluster.ctx.lease.holds()
    cluster.run(OpClusterSetParams(auto_master_failover=False))
    assert cluster.ctx.lease is None and store.master is None and store.members == {}


def test_off_by_default_and_the_settings_are_kept_and_shown(cluster, store):
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


def test_a_store_member_is_neither_removed_nor_demoted_while_failover_is_on(cluster, store):
    from genet.opcodes import OpNodeRemove
    cluster.run(OpClusterSetParams(auto_master_failover=True))
    cluster.refused(OpNodeRemove(node_name="node3"), "node3 is a member of the leadership store.*--auto-master-"
                                                     "failover no first")
    cluster.refused(OpNodeSetParams(node_name="node3", master_candidate=False, auto_promote=True),
                    "to demote it, run gnt-cluster modify --auto-master-failover no first")
    cluster.run(OpClusterSetParams(auto_master_failover=False))
    cluster.run(OpNodeSetParams(node_name="node3", master_candidate=False, auto_promote=True))


def test_verify_reports_candidates_without_their_member_and_a_master_without_its_lease(cluster, store):
    from genet.opcodes import OpClusterVerify
    cluster.run(OpClusterSetParams(auto_master_failover=True))
    cluster.run(OpClusterVerify())
    missing = [line for line in cluster.log if "its member of the leadership store (etcd) does not run" in line]
    assert sorted(re.search(r"node(\d)", line).group(0) for line in missing) == ["node1", "node2", "node3"]
    assert not [line for line in cluster.log if "holds no master lease" in line]
    cluster.ctx.lease = None        # a master started without its lease (by hand)
    cluster.run(OpClusterVerify())
    assert [line for line in cluster.log if "automatic master failover is on but node1 holds no master lease" in line]
