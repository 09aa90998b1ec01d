"""The leadership store on real etcd members (Debian's etcd-server): three nodes on 127.0.0.1,
each with its own state root and ports, TLS with a cluster certificate made as gnt-cluster init
makes it."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from genet import daemon_util, paths, ssl_utils
from genet.ha import etcd_member
from genet.ha.etcd import EtcdStore
from genet.ha.etcd_member import Member, State
from genet.ha.store import Leader, StoreUnavailable

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd-server is not installed")
TTL = 2          # the shortest lease etcd grants with genet's election timeout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except StoreUnavailable:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.1)


class Nodes:
    """Nodes with an etcd member each, on 127.0.0.1 with ports of their own."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.cert = tmp_path / "cluster.pem"
        ssl_utils.generate_cluster_cert(self.cert, "etcd-test")
        self.members: dict[str, Member] = {}

    def add(self, name: str) -> Member:
        self.members[name] = Member(name, "127.0.0.1", free_port(), free_port())
        root = self.root(name)
        (root / "var/lib/genet").mkdir(parents=True)
        shutil.copy(self.cert, root / "var/lib/genet/server.pem")     # as node add copies it
        return self.members[name]

    def root(self, name: str) -> Path:
        return self.tmp_path / name

    def start(self, name: str, initial: dict[str, str], state: State) -> int:
        with paths.acting_as(self.root(name), name):
            return etcd_member.start(self.members[name], initial, state, token="etcd-test")

    def pid(self, name: str) -> int | None:
        with paths.acting_as(self.root(name), name):
            return daemon_util.pid_of(etcd_member.DAEMON)

    def kill(self, name: str) -> None:
        pid = self.pid(name)
        if pid:
            os.kill(pid, signal.SIGKILL)

    def store(self, name: str) -> EtcdStore:
        member = self.members[name]
        return EtcdStore(member.ip, member.client_port, self.root(name) / "var/lib/genet/server.pem")


@pytest.fixture
def nodes(tmp_path):
    """Three members of a new cluster, serving; every etcd started is killed afterwards."""
    nodes = Nodes(tmp_path)
    try:
        members = [nodes.add(f"node{i}") for i in (1, 2, 3)]
        for m in members:
            nodes.start(m.name, etcd_member.initial_cluster(members), State.NEW)
        for m in members:
            wait_for(f"answer from {m.name}", nodes.store(m.name).leader)
        yield nodes
    finally:
        for name in nodes.members:
            nodes.kill(name)


def test_a_lease_lives_while_kept_alive_and_its_key_vanishes_when_it_expires(nodes):
    """When the master keeps its lease alive it keeps the role past the TTL; when it stops,
    the key is gone within about the TTL, a keepalive then says False, and the epoch stays."""
    store = nodes.store("node1")
    lease = store.grant(TTL)
    assert store.claim("node1", lease, 0)
    for _ in range(6):
        time.sleep(0.5)
        assert store.keepalive(lease)
    assert store.leader() == Leader("node1", lease, 1)
    stopped = time.monotonic()
    wait_for("expiry", lambda: store.leader().node is None, timeout=TTL + 3)
    assert time.monotonic() - stopped >= TTL - 1
    assert not store.keepalive(lease)
    assert store.leader() == Leader(None, None, 1)


def test_a_claim_succeeds_once_and_again_only_after_the_lease_expired(nodes):
    """When node1 holds the role, node2's claim fails with the old epoch and with the new one;
    once node1's lease expired node2's claim succeeds, and each claim raised the epoch by one."""
    first, second = nodes.store("node1"), nodes.store("node2")
    assert first.leader() == Leader(None, None, 0)
    lease1 = first.grant(TTL)
    assert first.claim("node1", lease1, 0)
    assert second.leader() == Leader("node1", lease1, 1)
    lease2 = second.grant(TTL + 8)
    assert not second.claim("node2", lease2, 0)
    assert not second.claim("node2", lease2, 1)
    wait_for("expiry", lambda: second.leader().node is None, timeout=TTL + 3)
    assert second.claim("node2", lease2, 1)
    assert first.leader() == Leader("node2", lease2, 2)
    assert not first.claim("node1", first.grant(TTL), 2)


def test_a_hand_over_takes_the_key_and_raises_the_epoch_once(nodes):
    """When node2 takes the role over from node1, the key names node2 under node2's lease with
    the next epoch; a second hand-over with the old epoch is refused; node1's lease lives on but
    holds nothing."""
    first, second = nodes.store("node1"), nodes.store("node2")
    lease1, lease2 = first.grant(10), second.grant(10)
    assert first.claim("node1", lease1, 0)
    assert second.hand_over("node2", lease2, 1)
    assert first.leader() == Leader("node2", lease2, 2)
    assert not first.hand_over("node1", lease1, 1)
    assert first.keepalive(lease1)
    first.revoke(lease1)
    assert second.leader() == Leader("node2", lease2, 2)


def test_the_epochs_start_from_a_seeded_one(nodes):
    """When the cluster had manual failovers before etcd ran, the epoch is seeded once: the first
    claim continues from it, and a second seed changes nothing."""
    store = nodes.store("node3")
    assert store.seed_epoch(7)
    assert not store.seed_epoch(9)
    lease = store.grant(TTL)
    assert not store.claim("node3", lease, 0)
    assert store.claim("node3", lease, 7)
    assert store.leader() == Leader("node3", lease, 8)


def test_a_claim_under_a_revoked_lease_is_refused(nodes):
    """When the claimer's lease is gone (revoked, or expired), its claim is a plain refusal and
    revoking it again is harmless."""
    store = nodes.store("node1")
    lease = store.grant(TTL)
    store.revoke(lease)
    store.revoke(lease)
    assert not store.claim("node1", lease, 0)
    assert not store.keepalive(lease)
    assert store.leader() == Leader(None, None, 0)


def test_a_client_without_the_cluster_certificate_is_refused(nodes, tmp_path):
    """When a client presents another cluster's certificate, or none, the member refuses the
    TLS handshake: only holders of the cluster key reach the store."""
    member = nodes.members["node1"]
    stranger = tmp_path / "stranger.pem"
    ssl_utils.generate_cluster_cert(stranger, "another-cluster")
    with pytest.raises(StoreUnavailable):
        EtcdStore(member.ip, member.client_port, stranger).leader()
    with paths.acting_as(nodes.root("node1"), "node1"):
        ca = etcd_member.tls_files()[1]
    with pytest.raises(requests.exceptions.SSLError):      # the member itself is trusted: no client certificate
        requests.post(f"{member.client_url}/v3/kv/range", json={"key": "Zm9v"}, verify=str(ca), timeout=2)


def test_a_member_cut_off_from_its_majority_is_unavailable_within_the_timeout(nodes):
    """When both peers of node1's member die, every request to it raises StoreUnavailable
    within about a second instead of hanging, and the role cannot be claimed there."""
    store = nodes.store("node1")
    lease = store.grant(10)
    nodes.kill("node2")
    nodes.kill("node3")
    for call in (store.leader, lambda: store.keepalive(lease), lambda: store.claim("node1", lease, 0),
                 lambda: store.grant(10)):
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            call()
        assert time.monotonic() - began < 2


def test_a_member_added_joins_and_a_member_removed_leaves(nodes):
    """When a fourth member is announced (a learner), started with the member list that returned
    and promoted, it serves the same data as a voter; a member removed leaves the list and its
    etcd stops by itself, and a dead member can be removed by the others. Starting a running
    member again changes nothing."""
    store = nodes.store("node1")
    assert store.seed_epoch(3)
    fourth = nodes.add("node4")
    # etcd refuses a change of members until every member was connected for 5 s ("unhealthy")
    initial = wait_for("member add", lambda: etcd_member.add_member(store.client, fourth))
    assert initial == {m.name: m.peer_url for m in nodes.members.values()}
    pid = nodes.start("node4", initial, State.EXISTING)
    assert nodes.start("node4", initial, State.EXISTING) == pid
    wait_for("promotion", lambda: etcd_member.promote_member(store.client, fourth))
    assert wait_for("answer from node4", nodes.store("node4").leader) == Leader(None, None, 3)
    listed = etcd_member.members(store.client)
    assert sorted((m["name"], bool(m.get("isLearner"))) for m in listed) == \
        [("node1", False), ("node2", False), ("node3", False), ("node4", False)]

    assert etcd_member.remove_member(store.client, nodes.members["node2"])
    assert sorted(m["name"] for m in etcd_member.members(store.client)) == ["node1", "node3", "node4"]
    wait_for("node2's etcd to stop", lambda: nodes.pid("node2") is None)
    assert not etcd_member.remove_member(store.client, nodes.members["node2"])

    nodes.kill("node3")     # (refused as "unhealthy" too while node4 has been connected for under 5 s)
    assert wait_for("dead member removal", lambda: etcd_member.remove_member(store.client, nodes.members["node3"]))
    assert sorted(m["name"] for m in etcd_member.members(store.client)) == ["node1", "node4"]
    assert nodes.store("node4").claim("node4", nodes.store("node4").grant(TTL), 3)
