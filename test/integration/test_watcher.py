"""genet-watcher on a loopback cluster with the fake hypervisor: restarts, the give-up limit,
the cluster-wide pause, and genet-noded running it periodically."""
from __future__ import annotations

import json
import time

import pytest

from genet.hypervisor.fake import FakeHypervisor


def status(cluster, name: str) -> str:
    return cluster.run("node1", "gnt-instance", "list", "--no-headers", "-o", "status", name).stdout.strip()


def fake_hv(cluster, node: str) -> FakeHypervisor:
    return FakeHypervisor(state_dir=cluster.root(node) / "var/lib/genet/fake-hv")


def watcher(cluster, *args: str, node: str = "node1") -> str:
    """Run genet-watcher as cron would; returns what it logged."""
    log = cluster.root(node) / "var/log/genet/watcher.log"
    before = log.read_text() if log.exists() else ""
    proc = cluster.run(node, "genet-watcher", *args)
    assert proc.returncode == 0
    return log.read_text()[len(before):] if log.exists() else ""


@pytest.fixture
def crashed(cluster):
    """An instance on node2 whose process died: it should run, so its status is ERROR_down."""
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node2", "-B", "memory=64M", "web1")
    fake_hv(cluster, "node2").crash("web1")
    assert status(cluster, "web1") == "ERROR_down"
    return "web1"


def test_watcher_restarts_an_instance_that_should_run(cluster, crashed):
    log = watcher(cluster)
    assert "instance web1 is down but should run: restarting it (attempt 1)" in log
    assert status(cluster, "web1") == "running"
    assert json.loads((cluster.root("node1") / "var/lib/genet/watcher.data").read_text())["restarts"] == {"web1": 1}
    watcher(cluster)             # running again: the count is forgotten
    assert json.loads((cluster.root("node1") / "var/lib/genet/watcher.data").read_text())["restarts"] == {}


def test_watcher_gives_up_after_five_failed_restarts_until_the_instance_runs_again(cluster, crashed):
    hv = fake_hv(cluster, "node2")
    for attempt in range(1, 6):
        hv.fail_next("start", "qemu: could not open disk image")
        log = watcher(cluster)
        assert f"restarting it (attempt {attempt})" in log and "restart failed" in log
        assert status(cluster, "web1") == "ERROR_down"
    log = watcher(cluster)
    assert "instance web1: not restarting, 5 attempts failed already" in log
    assert status(cluster, "web1") == "ERROR_down"
    cluster.run("node1", "gnt-instance", "startup", "web1")      # the admin repaired it
    watcher(cluster)
    hv.crash("web1")
    assert "restarting it (attempt 1)" in watcher(cluster)
    assert status(cluster, "web1") == "running"


def test_watcher_leaves_stopped_instances_alone_and_does_nothing_on_other_nodes(cluster, crashed):
    assert watcher(cluster, node="node2") == ""
    assert status(cluster, "web1") == "ERROR_down"
    cluster.run("node1", "gnt-instance", "shutdown", "web1")
    watcher(cluster)
    assert status(cluster, "web1") == "ADMIN_down"


def test_pause_holds_the_watcher_cluster_wide_until_continue(cluster, crashed):
    out = cluster.run("node1", "gnt-cluster", "watcher", "pause", "1h").stdout
    assert out.startswith("The watcher is paused until ")
    assert cluster.run("node1", "gnt-cluster", "watcher", "info").stdout == out
    assert "paused until" in watcher(cluster)
    assert status(cluster, "web1") == "ERROR_down"
    # kept in the configuration: every master candidate knows it
    data = cluster.stored_config("node2")
    assert data["cluster"]["watcher_pause"] > time.time() + 3500
    assert "restarting it" in watcher(cluster, "--ignore-pause")
    assert status(cluster, "web1") == "running"
    out = cluster.run("node1", "gnt-cluster", "watcher", "continue").stdout
    assert out == "The watcher is not paused.\n"
    assert cluster.run("node1", "gnt-cluster", "watcher", "info").stdout == out


@pytest.mark.parametrize("args, message", [
    (["pause"], "needs a duration"),
    (["pause", "soon"], "invalid age 'soon'"),
    (["info", "5m"], "takes no duration"),
])
def test_bad_watcher_commands_are_refused(cluster, args, message):
    proc = cluster.run("node1", "gnt-cluster", "watcher", *args, check=False)
    assert proc.returncode == 1 and message in proc.stderr
    assert cluster.run("node1", "gnt-cluster", "watcher", "info").stdout == "The watcher is not paused.\n"


def test_bad_job_age_is_an_error(cluster):
    proc = cluster.run("node1", "genet-watcher", "-d", "--job-age=-5m", check=False)
    assert proc.returncode == 1 and "must not be negative" in proc.stderr


def test_noded_runs_the_watcher_periodically(cluster, crashed):
    """With NODED_ARGS="--watcher-interval 1" the master's genet-noded runs genet-watcher every second."""
    defaults = cluster.root("node1") / "etc/default/genet"
    defaults.write_text('NODED_ARGS="--watcher-interval 1"\n')
    cluster.run("node1", "genet-daemon", "stop")
    cluster.run("node1", "genet-daemon", "start")
    deadline = time.monotonic() + 30
    while status(cluster, "web1") != "running":
        assert time.monotonic() < deadline, "genet-noded did not run the watcher"
        time.sleep(0.5)


def test_node_maintenance_stops_what_still_runs_on_a_node_marked_offline(cluster):
    """With --maintain-node-health yes, the watcher on a node marked offline (which the master no
    longer calls) asks the other candidates, learns it is offline and kills the instance still
    running there; without the setting, or while the node is online, it leaves it."""
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node3", "-B", "memory=64M", "web1")
    cluster.run("node1", "gnt-node", "modify", "-O", "yes", "node3")
    watcher(cluster, "-d", node="node3")
    assert sorted(fake_hv(cluster, "node3").all_info()) == ["web1"]         # not asked to maintain
    cluster.run("node1", "gnt-node", "modify", "-O", "no", "node3")
    cluster.run("node1", "gnt-cluster", "modify", "--maintain-node-health", "yes")
    assert (cluster.root("node3") / "var/lib/genet/ssconf_maintain_node_health").read_text() == "True\n"
    watcher(cluster, node="node3")
    assert sorted(fake_hv(cluster, "node3").all_info()) == ["web1"]         # online: nothing to do
    cluster.run("node1", "gnt-node", "modify", "-O", "yes", "node3")
    log = watcher(cluster, node="node3")
    assert "this node is offline; shutting down the instances still here: web1" in log
    assert fake_hv(cluster, "node3").all_info() == {}
