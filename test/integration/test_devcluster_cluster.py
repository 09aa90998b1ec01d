"""Issue 3 on a real 3-node dev cluster: network namespaces, SSH joins, TLS, failover.

The tests share one cluster and run in file order; the last ones kill the master.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from devnet import free_subnet

TOOL = Path(__file__).resolve().parents[2] / "tools" / "dev-cluster"


def tool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=timeout)


class Dev:
    def __init__(self, directory: Path):
        self.dir = directory

    def run(self, node: str, *cmd: str, ok: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = tool("exec", "--dir", str(self.dir), node, "--", *cmd, timeout=timeout)
        if ok:
            assert proc.returncode == 0, f"{' '.join(cmd)} on {node}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def root(self, node: str) -> Path:
        return self.dir / node / "root"


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dev") / "cluster"
    try:
        proc = tool("start", "--nodes", "3", "--dir", str(directory), "--subnet", free_subnet(), timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield Dev(directory)
    finally:
        stop = tool("stop", "--dir", str(directory))
        assert stop.returncode == 0, stop.stderr


def test_nodes_joined_over_ssh_and_were_promoted(dev):
    """When dev-cluster ran init and two `gnt-node add`s, all three nodes are listed with roles."""
    out = dev.run("node1", "gnt-node", "list", "--no-headers", "-o", "name,role,master_candidate").stdout
    assert out.splitlines() == ["node1 M Y", "node2 C Y", "node3 C Y"]
    for node in ("node2", "node3"):
        assert (dev.root(node) / "var/lib/genet/config.data").exists()


def test_verify_is_clean_and_getmaster_agrees_everywhere(dev):
    dev.run("node1", "gnt-cluster", "verify")
    for node in ("node1", "node2", "node3"):
        assert dev.run(node, "gnt-cluster", "getmaster").stdout.strip() == "node1"


def test_adding_a_node_twice_is_refused(dev):
    proc = dev.run("node1", "gnt-node", "add", "--no-ssh-key-check", "node2", ok=False)
    assert proc.returncode == 1 and "already in the cluster" in proc.stderr


def test_adding_an_unknown_node_names_it(dev):
    proc = dev.run("node1", "gnt-node", "add", "--no-ssh-key-check", "node9", ok=False)
    assert proc.returncode == 1 and "node9" in proc.stderr


def test_partitioned_node_is_reported_by_verify_until_healed(dev):
    assert tool("partition", "--dir", str(dev.dir), "node3").returncode == 0
    try:
        proc = dev.run("node1", "gnt-cluster", "verify", ok=False)
        assert proc.returncode == 1
        assert "node node3: cannot reach node over TLS" in proc.stdout
        assert "node2" not in proc.stdout.split("ERROR", 1)[1]
    finally:
        assert tool("heal", "--dir", str(dev.dir), "node3").returncode == 0
    dev.run("node1", "gnt-cluster", "verify")


def test_removing_the_master_is_refused(dev):
    proc = dev.run("node1", "gnt-node", "remove", "node1", ok=False)
    assert proc.returncode == 1 and "master node cannot be removed" in proc.stderr


def test_kill_master_node_then_failover_on_a_candidate_keeps_every_change(dev):
    """When the master node dies, a candidate wins the vote and nothing acknowledged is lost."""
    dev.run("node1", "gnt-cluster", "add-tags", "acknowledged")
    dev.run("node1", "gnt-debug", "delay", "0")
    jobs_before = dev.run("node1", "gnt-job", "list", "--no-headers", "-o", "id").stdout.split()
    assert tool("kill-node", "--dir", str(dev.dir), "node1").returncode == 0
    proc = dev.run("node2", "gnt-cluster", "master-failover")
    assert "from node1 to node2" in proc.stdout
    assert dev.run("node3", "gnt-cluster", "getmaster").stdout.strip() == "node2"
    assert "acknowledged" in dev.run("node2", "gnt-cluster", "list-tags").stdout.split()
    jobs_after = dev.run("node2", "gnt-job", "list", "--no-headers", "-o", "id").stdout.split()
    assert set(jobs_before) <= set(jobs_after)
    dev.run("node2", "gnt-debug", "delay", "0")


def test_dead_old_master_is_set_offline_and_the_cluster_works_on(dev):
    dev.run("node2", "gnt-node", "modify", "-O", "yes", "node1")
    out = dev.run("node2", "gnt-node", "list", "--no-headers", "-o", "name,role").stdout
    assert out.splitlines() == ["node1 O", "node2 M", "node3 C"]
    proc = dev.run("node2", "gnt-cluster", "verify")
    assert "node node1 is offline" in proc.stdout
    serials = {json.loads((dev.root(n) / "var/lib/genet/config.data").read_text())["serial_no"]
               for n in ("node2", "node3")}
    assert len(serials) == 1


def test_old_master_coming_back_does_not_start_a_second_masterd(dev):
    tool("restart", "--dir", str(dev.dir), "node1", timeout=120)
    assert not (dev.root("node1") / "var/run/genet/genet-masterd.pid").exists() or \
        dev.run("node1", "gnt-cluster", "getmaster", ok=False).stdout.strip() != "node1" or \
        pytest.fail("node1 runs a master daemon after failover")
    log = (dev.root("node1") / "var/log/genet/genet-masterd.log").read_text()
    assert "the master is node2" in log
