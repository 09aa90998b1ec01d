"""The etcd leadership store and member without etcd: the command line a member starts with,
its TLS files, the transactions sent, and how etcd's answers and failures are read."""
from __future__ import annotations

import base64
import socket
import ssl
import time

import etcd3gw
import pytest
import requests
from cryptography import x509

from genet import paths, ssl_utils
from genet.ha import etcd_member
from genet.ha.etcd import EtcdStore, take_role
from genet.ha.etcd_member import Member, State
from genet.ha.store import EPOCH_KEY, MASTER_KEY, Leader, StoreUnavailable


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class FakeGateway:
    """etcd3gw's client as EtcdStore and the member functions use it: each POST is recorded and
    answered from ``replies`` (a dict, or an exception to raise), in order."""

    def __init__(self, *replies, members=()):
        self.replies, self.posts, self.listed = list(replies), [], list(members)

    def get_url(self, path: str) -> str:
        return path

    def post(self, url: str, json=None):
        self.posts.append((url, json))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def transaction(self, txn: dict):
        return self.post("/kv/txn", txn)

    def members(self):
        return self.listed


@pytest.fixture
def cert(node_env):
    paths.ensure_dirs()
    ssl_utils.generate_cluster_cert(paths.cluster_cert(), "c1")
    return paths.cluster_cert()


@pytest.fixture
def store(cert):
    """An EtcdStore whose gateway is faked: set ``store.client``."""
    return EtcdStore("127.0.0.1", 2379, cert)


def flags_of(args: list[str]) -> dict[str, str | None]:
    """etcd's flags and their values (None for a flag that takes none)."""
    return {flag: None if following.startswith("--") else following
            for flag, following in zip(args[1:], args[2:] + ["--"]) if flag.startswith("--")}


def kv(key: str, value: str, lease: int | None = None) -> dict:
    item = {"key": b64(key), "value": b64(value), "create_revision": "5", "version": "1"}
    if lease:
        item["lease"] = str(lease)
    return item


# --- the member's command line and files ---------------------------------------------------

def test_a_member_listens_on_its_node_address_with_tls_both_ways(node_env):
    """When a member starts, etcd serves clients and peers on the node's IP only, each side with
    the node's leaf, the cluster certificate as CA and a client certificate required."""
    member = Member("node1", "192.168.7.1")
    args = etcd_member.argv(member, {"node1": member.peer_url}, State.NEW, "c1")
    flags = flags_of(args)
    assert args[0] == "etcd"
    assert flags["--listen-client-urls"] == flags["--advertise-client-urls"] == "https://192.168.7.1:2379"
    assert flags["--listen-peer-urls"] == flags["--initial-advertise-peer-urls"] == "https://192.168.7.1:2380"
    leaf, ca = etcd_member.tls_files()
    assert [flags[f] for f in ("--cert-file", "--key-file", "--peer-cert-file", "--peer-key-file")] == [str(leaf)] * 4
    assert flags["--trusted-ca-file"] == flags["--peer-trusted-ca-file"] == str(ca)
    assert flags["--client-cert-auth"] is None and flags["--peer-client-cert-auth"] is None
    assert flags["--data-dir"] == str(node_env / "node1/var/lib/genet/etcd/member")
    assert (flags["--heartbeat-interval"], flags["--election-timeout"]) == ("100", "1000")


def test_a_new_cluster_names_every_member_and_an_added_member_joins_the_existing_one():
    """When members start together they share one initial cluster and state new; a member added
    later starts with the list its announcement returned and state existing."""
    members = [Member(f"node{i}", f"10.0.0.{i}") for i in (1, 2, 3)]
    initial = etcd_member.initial_cluster(members)
    args = etcd_member.argv(members[1], initial, State.NEW, "cluster.example")
    flags = flags_of(args)
    assert flags["--initial-cluster"] == \
        "node1=https://10.0.0.1:2380,node2=https://10.0.0.2:2380,node3=https://10.0.0.3:2380"
    assert (flags["--name"], flags["--initial-cluster-state"], flags["--initial-cluster-token"]) == \
        ("node2", "new", "cluster.example")
    joining = etcd_member.argv(Member("node4", "10.0.0.4"), initial, State.EXISTING, "cluster.example")
    assert flags_of(joining)["--initial-cluster-state"] == "existing"


def test_ipv6_addresses_are_bracketed_in_urls_and_ports_are_configurable():
    member = Member("node1", "fd00::1", client_port=12379, peer_port=12380)
    assert (member.client_url, member.peer_url) == ("https://[fd00::1]:12379", "https://[fd00::1]:12380")


def test_the_member_leaf_names_its_address_and_the_ca_file_holds_no_key(cert):
    """When the TLS files are written, the leaf is signed by the cluster key and names the node's
    IP (etcd checks the address it dialled), and the CA file is the bare cluster certificate."""
    leaf, ca = etcd_member.write_tls(Member("node1", "127.0.0.1"))
    assert leaf.parent == paths.etcd_dir() / "tls" and leaf.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" not in ca.read_bytes()
    assert x509.load_pem_x509_certificate(ca.read_bytes()) == x509.load_pem_x509_certificate(cert.read_bytes())
    issued = x509.load_pem_x509_certificate(leaf.read_bytes())
    san = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(leaf)          # the key belongs to the leaf
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.read_bytes()))


# --- the transactions ----------------------------------------------------------------------

def test_a_first_claim_requires_the_epoch_key_absent_and_the_master_key_vacant():
    """When nobody was ever master (epoch 0), the claim compares the epoch key's absence and the
    master key's; it puts the master key under the lease and epoch 1 under none."""
    txn = take_role("node1", 42, 0, vacant=True)
    assert txn["compare"] == [
        {"key": b64(EPOCH_KEY), "target": "VERSION", "result": "EQUAL", "version": 0},
        {"key": b64(MASTER_KEY), "target": "CREATE", "result": "EQUAL", "create_revision": 0}]
    assert txn["success"] == [{"request_put": {"key": b64(MASTER_KEY), "value": b64("node1"), "lease": 42}},
                              {"request_put": {"key": b64(EPOCH_KEY), "value": b64("1")}}]


def test_a_hand_over_compares_the_epoch_value_only():
    txn = take_role("node2", 7, 5, vacant=False)
    assert txn["compare"] == [{"key": b64(EPOCH_KEY), "target": "VALUE", "result": "EQUAL", "value": b64("5")}]
    assert txn["success"][1] == {"request_put": {"key": b64(EPOCH_KEY), "value": b64("6")}}


def test_the_leader_is_read_from_both_keys_in_one_transaction(store):
    store.client = FakeGateway({"responses": [{"response_range": {"kvs": [kv(MASTER_KEY, "node2", 99)]}},
                                              {"response_range": {"kvs": [kv(EPOCH_KEY, "4")]}}]},
                               {"responses": [{"response_range": {}}, {"response_range": {}}]})
    assert store.leader() == Leader("node2", 99, 4)
    assert store.leader() == Leader(None, None, 0)
    assert [p[1]["success"] for p in store.client.posts][0] == [
        {"request_range": {"key": b64(MASTER_KEY)}}, {"request_range": {"key": b64(EPOCH_KEY)}}]


def test_a_claim_is_true_only_when_the_transaction_succeeded(store):
    """The gateway leaves out a false 'succeeded': a failed compare reads as a refusal."""
    store.client = FakeGateway({"succeeded": True, "responses": []}, {"responses": []})
    assert store.claim("node1", 1, 0)
    assert not store.claim("node1", 1, 0)


def test_the_seed_is_written_only_where_there_is_no_epoch_and_never_as_zero(store):
    store.client = FakeGateway({"succeeded": True})
    assert store.seed_epoch(12)
    assert store.client.posts[0][1]["compare"][0]["version"] == 0
    assert not store.seed_epoch(0)
    assert len(store.client.posts) == 1


def test_a_grant_asks_whole_seconds_rounded_up(store):
    store.client = FakeGateway({"ID": "7587", "TTL": "3"})
    assert store.grant(2.2) == 7587
    assert store.client.posts == [("/lease/grant", {"TTL": 3, "ID": 0})]


def test_a_keepalive_of_a_lease_gone_says_false(store):
    """etcd answers a keepalive of an expired lease with no TTL (proto3 leaves out the 0)."""
    store.client = FakeGateway({"result": {"ID": "1", "TTL": "2"}}, {"result": {"ID": "1"}})
    assert store.keepalive(1)
    assert not store.keepalive(1)


# --- failures ------------------------------------------------------------------------------

LEASE_GONE = etcd3gw.exceptions.Etcd3Exception(
    '{"error":"etcdserver: requested lease not found","code":5}', "Not Found")


@pytest.mark.parametrize("failure", [
    etcd3gw.exceptions.ConnectionFailedError('{"error":"etcdserver: no leader","code":14}', "Service Unavailable"),
    etcd3gw.exceptions.ConnectionTimeoutError("Read timed out. (read timeout=1.0)"),
    etcd3gw.exceptions.InternalServerError("", "Internal Server Error"),
    requests.exceptions.ChunkedEncodingError("connection broken"),
    ValueError("Expecting value: line 1 column 1 (char 0)"),
], ids=["no-leader", "timeout", "server-error", "broken-reply", "not-json"])
def test_every_failure_to_answer_is_store_unavailable(store, failure):
    """When the member cannot answer, for whatever reason, each operation raises StoreUnavailable
    naming what was asked and why."""
    for call in (store.leader, lambda: store.grant(5), lambda: store.keepalive(1), lambda: store.revoke(1),
                 lambda: store.claim("node1", 1, 0), lambda: store.hand_over("node1", 1, 0),
                 lambda: store.seed_epoch(3)):
        store.client = FakeGateway(failure)
        with pytest.raises(StoreUnavailable) as raised:
            call()
        assert raised.value.__cause__ is failure


def test_a_claim_under_a_lease_gone_is_a_refusal_and_its_revoke_no_error(store):
    store.client = FakeGateway(LEASE_GONE, LEASE_GONE, LEASE_GONE)
    assert not store.claim("node1", 1, 0)
    assert not store.hand_over("node1", 1, 0)
    store.revoke(1)


def test_a_member_that_does_not_listen_is_unavailable_at_once(cert):
    """When nothing listens at the member's address (etcd stopped), the store says so without
    waiting for the timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    began = time.monotonic()
    with pytest.raises(StoreUnavailable, match="read the leader"):
        EtcdStore("127.0.0.1", port, cert).leader()
    assert time.monotonic() - began < 1


# --- membership ----------------------------------------------------------------------------

def test_an_added_member_gets_the_member_list_it_must_start_with():
    """When a member is announced it is a learner, and the returned list names it (etcd leaves
    the name of a member that never started empty)."""
    new = Member("node4", "10.0.0.4")
    gateway = FakeGateway({"members": [
        {"ID": "1", "name": "node1", "peerURLs": ["https://10.0.0.1:2380"]},
        {"ID": "4", "peerURLs": ["https://10.0.0.4:2380"], "isLearner": True}]})
    assert etcd_member.add_member(gateway, new) == {"node1": "https://10.0.0.1:2380", "node4": "https://10.0.0.4:2380"}
    assert gateway.posts == [("/cluster/member/add", {"peerURLs": ["https://10.0.0.4:2380"], "isLearner": True})]


def test_a_learner_not_yet_in_sync_is_not_promoted_yet():
    member = Member("node4", "10.0.0.4")
    listed = [{"ID": "18446744073709551615", "peerURLs": [member.peer_url], "isLearner": True}]
    gateway = FakeGateway(etcd3gw.exceptions.Etcd3Exception(
        '{"error":"etcdserver: can only promote a learner member which is in sync with leader"}'), {},
        members=listed)
    assert not etcd_member.promote_member(gateway, member)
    assert etcd_member.promote_member(gateway, member)
    assert gateway.posts[-1] == ("/cluster/member/promote", {"ID": 18446744073709551615})


def test_removing_a_member_not_in_the_cluster_changes_nothing():
    gateway = FakeGateway(members=[{"ID": "1", "name": "node1", "peerURLs": ["https://10.0.0.1:2380"]}])
    assert not etcd_member.remove_member(gateway, Member("node2", "10.0.0.2"))
    assert gateway.posts == []
