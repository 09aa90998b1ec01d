"""Config replication: candidates receive changes; one that missed a change gets the whole config."""
import time

from genet import config, paths
from genet.config_file import ConfigFile
from genet.opcodes import OpTagsSet


def stored(cluster, name: str):
    """The config node ``name`` holds on its disk."""
    with cluster.nodes[name].acting():
        return config.load(paths.config_file())


def wait_until(predicate, what: str, timeout: float = 10.0):
    """For the catch-up the master sends from a thread of its own (real time: it is a thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.01)


def test_candidates_store_each_change_in_their_journal(cluster):
    cluster.run(OpTagsSet(kind="cluster", tags=["one"]))
    cluster.run(OpTagsSet(kind="cluster", tags=["two"]))
    serial = cluster.data().serial_no
    for name in ("node2", "node3"):
        with cluster.nodes[name].acting():
            assert ConfigFile(paths.config_file()).entries() >= 2
        assert stored(cluster, name).serial_no == serial and stored(cluster, name).cluster.tags == ["one", "two"]
    calls = [proc for _, proc in cluster.transport.calls]
    assert "apply_config_change" in calls and "upload_config" not in calls


def test_a_candidate_that_missed_a_change_gets_the_whole_config(cluster):
    cluster.nodes["node3"].reachable = False
    cluster.run(OpTagsSet(kind="cluster", tags=["missed"]))      # node2 and the master commit it
    cluster.nodes["node3"].reachable = True
    cluster.run(OpTagsSet(kind="cluster", tags=["next"]))         # node3 answers: behind
    serial = cluster.data().serial_no
    wait_until(lambda: stored(cluster, "node3").serial_no == serial, "node3 caught up")
    assert stored(cluster, "node3").cluster.tags == ["missed", "next"]
    assert ("node3", "upload_config") in cluster.transport.calls


def test_a_majority_that_needs_a_lagging_candidate_waits_for_its_whole_config(cluster):
    """node3 is behind and node2 unreachable: the change commits once node3 stored the whole config."""
    cluster.nodes["node3"].reachable = False
    cluster.run(OpTagsSet(kind="cluster", tags=["missed"]))
    cluster.nodes["node3"].reachable = True
    cluster.nodes["node2"].reachable = False
    cluster.run(OpTagsSet(kind="cluster", tags=["next"]))
    assert stored(cluster, "node3").serial_no == cluster.data().serial_no
    assert stored(cluster, "node3").cluster.tags == ["missed", "next"]
