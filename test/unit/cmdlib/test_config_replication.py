"""Config replication: candidates receive changes; one that missed a change gets the whole config."""
import time

from genet import config, noded, paths
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


def test_candidates_store_each_change_in_their_journal(cluster, monkeypatch):
    # a change that overtakes the one before it waits for it; on a loaded machine longer than
    # noded's half second, after which the master would send the whole config instead
    monkeypatch.setattr(noded, "CHANGE_ORDER_WAIT", 30.0)
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


def test_a_change_that_overtakes_the_one_before_waits_for_it(cluster):
    """The master sends change N+1 once N has its majority, so N may still be on its way to a
    straggler on another connection: N+1 waits for it there instead of asking for the whole config."""
    import threading
    node = cluster.nodes["node3"]
    with node.acting():
        serial, epoch = ConfigFile(paths.config_file()).stamp()
    first = {"base": [serial, epoch], "fields": {"serial_no": serial + 1, "mtime": 1.0}}
    second = {"base": [serial + 1, epoch], "fields": {"serial_no": serial + 2, "mtime": 2.0}}
    answers = {}
    late = threading.Thread(target=lambda: answers.setdefault("second", node.call("apply_config_change", [second])))
    late.start()
    time.sleep(0.1)                             # N+1 is there first
    answers["first"] = node.call("apply_config_change", [first])
    late.join(5)
    assert answers == {"first": serial + 1, "second": serial + 2}
    assert stored(cluster, "node3").serial_no == serial + 2
