"""The floating master IP and restricted commands run in-process (conftest.Cluster): the address
put on, moved between devices and netmasks and taken off the master's devices (a fake ``ip``,
fake_ip.FakeIp), and each node's restricted command answering for itself."""
from __future__ import annotations

import os

import pytest

from fake_ip import FakeIp
from genet import errors, master_ip, restricted_commands
from genet.opcodes import (OpClusterActivateMasterIp, OpClusterDeactivateMasterIp, OpClusterRename,
                           OpClusterSetParams, OpClusterVerify, OpRestrictedCommand)

MIP = "203.0.113.200"


@pytest.fixture
def ip(cluster, tmp_path, monkeypatch):
    """Devices eth0 and eth1 on every node (scripts run for real); the name mip.example resolves to MIP."""
    fake, real = FakeIp(), master_ip.run
    monkeypatch.setattr(master_ip, "run", lambda argv, env=None: fake(argv) if argv[0] == "ip" else real(argv, env))
    monkeypatch.setattr(master_ip, "taken_elsewhere", lambda address: False)
    monkeypatch.setattr(master_ip, "announce", lambda params, runner: None)     # no frame leaves the test
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{MIP} mip.example\n")
    monkeypatch.setenv("GENET_HOSTS", str(hosts))
    return fake


def ssconf(cluster, key: str) -> str:
    return (cluster.nodes["node1"].root / f"var/lib/genet/ssconf_{key}").read_text().strip()


def test_without_a_master_netdev_the_master_ip_commands_say_so_and_change_nothing(cluster, ip):
    """When the cluster has no master netdev (genet's default), activate and deactivate are
    refused naming that, and no node is asked to change an address."""
    for op in (OpClusterActivateMasterIp(), OpClusterDeactivateMasterIp()):
        cluster.refused(op, "no master netdev is configured", "wrong_state")
    assert ip.calls == []


def test_a_netdev_is_refused_while_the_master_ip_is_the_master_nodes_own_address(cluster, ip):
    """When the cluster's name resolves to no address of its own, its master IP is node1's, which
    must never be taken down: a master netdev is refused."""
    cluster.refused(OpClusterSetParams(master_netdev="eth0"), "is node node1's own address", "wrong_state")
    assert ip.calls == []


def test_the_master_ip_follows_rename_netdev_netmask_and_the_activate_commands(cluster, ip):
    """When the cluster is renamed to a name of its own address and given a netdev, the master
    holds the address there; deactivate and activate take it off and put it back; a new netmask
    and a new device move it; an empty netdev takes it away for good."""
    cluster.run(OpClusterRename(name="mip.example"))
    assert cluster.data().cluster["master_ip"] == MIP and ssconf(cluster, "master_ip") == MIP
    assert any("The master IP is not activated: no master netdev" in line for line in cluster.log)
    cluster.run(OpClusterSetParams(master_netdev="eth0"))
    assert ip.of("node1") == {"eth0": [f"{MIP}/32"], "eth1": []} and ssconf(cluster, "master_netdev") == "eth0"
    assert ip.of("node2") == {"eth0": [], "eth1": []}
    cluster.run(OpClusterDeactivateMasterIp())
    assert ip.of("node1")["eth0"] == []
    cluster.run(OpClusterActivateMasterIp())
    assert ip.of("node1")["eth0"] == [f"{MIP}/32"]
    cluster.run(OpClusterSetParams(master_netmask=24))
    assert ip.of("node1")["eth0"] == [f"{MIP}/24"] and ssconf(cluster, "master_netmask") == "24"
    cluster.run(OpClusterSetParams(master_netdev="eth1"))
    assert ip.of("node1") == {"eth0": [], "eth1": [f"{MIP}/24"]}
    assert "Changing master_netdev from eth0 to eth1" in cluster.log
    cluster.refused(OpClusterSetParams(master_netmask=33), r"CIDR netmask \(33\) not valid", "wrong_input")
    cluster.run(OpClusterSetParams(master_netdev=""))
    assert ip.of("node1") == {"eth0": [], "eth1": []}
    cluster.refused(OpClusterActivateMasterIp(), "no master netdev is configured")


def test_verify_reports_a_floating_master_ip_that_is_not_up(cluster, ip):
    """When the master IP should float but is not on the master, verify says so as Ganeti's does."""
    cluster.run(OpClusterRename(name="mip.example"))
    cluster.run(OpClusterSetParams(master_netdev="eth0"))
    assert cluster.run(OpClusterVerify())["ok"]
    cluster.run(OpClusterDeactivateMasterIp())
    assert cluster.run(OpClusterVerify())["errors"] == [
        ["ENODENET", "node", "node1", "the master node cannot reach the master IP (not configured?)"]]


def test_the_external_script_gets_the_old_parameters_to_stop_and_the_new_to_start(cluster, ip):
    """When use_external_mip_script is on, the administrator's script on the master runs instead of
    the built-in steps, with Ganeti's environment."""
    cluster.run(OpClusterRename(name="mip.example"))
    node1 = cluster.nodes["node1"]
    record = node1.root / "record"
    script = node1.root / "etc/genet/scripts/master-ip-setup"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!/bin/sh\necho \"$1 $MASTER_IP/$MASTER_NETMASK $MASTER_NETDEV\" >> {record}\n")
    os.chmod(script, 0o755)
    cluster.run(OpClusterSetParams(master_netdev="eth0", use_external_mip_script=True))
    cluster.run(OpClusterSetParams(master_netdev="eth1", master_netmask=28))
    assert record.read_text().splitlines() == [f"start {MIP}/32 eth0", f"stop {MIP}/32 eth0", f"start {MIP}/28 eth1"]
    assert ip.calls == []


def test_a_netdev_change_stops_where_the_old_address_cannot_be_taken_down_unless_forced(cluster, ip):
    """When the master IP cannot be taken off the old device, the new device is refused and
    nothing changes; with force the change goes on, saying so."""
    cluster.run(OpClusterRename(name="mip.example"))
    cluster.run(OpClusterSetParams(master_netdev="eth0"))
    ip.of("node1")["eth0"] = []
    ip.of("node1")["eth1"] = [f"{MIP}/32"]          # moved behind genet's back: stop refuses it
    with pytest.raises(errors.OpExecError, match="Could not disable the master ip failed on node1: .*wrong device"):
        cluster.run(OpClusterSetParams(master_netdev="eth1"))
    assert cluster.data().cluster["master_netdev"] == "eth0"
    cluster.run(OpClusterSetParams(master_netdev="eth1", force=True))
    assert cluster.data().cluster["master_netdev"] == "eth1"
    assert any("Could not disable the master ip (continuing anyway)" in line for line in cluster.log)


@pytest.fixture
def commands(cluster, monkeypatch):
    """A restricted command "whoami" on node1 and node2 (owned by the test's user, trusted as root)."""
    monkeypatch.setattr(restricted_commands, "OWNER", (os.getuid(), os.getgid()))
    monkeypatch.setattr(restricted_commands, "INVALID_DELAY", 0)
    for name in ("node1", "node2"):
        directory = cluster.nodes[name].root / "etc/genet/restricted-commands"
        directory.mkdir(parents=True)
        os.chmod(directory, 0o755)
        (directory / "whoami").write_text(f"#!/bin/sh\necho I am {name}\n")
        os.chmod(directory / "whoami", 0o755)


def test_a_restricted_command_answers_from_each_node_in_the_order_asked(cluster, commands):
    """When nodes are asked to run a restricted command, each answers with its own output, and a
    node without it fails alone, in Ganeti's words."""
    assert cluster.run(OpRestrictedCommand(command="whoami", nodes=["node2", "node3", "node1"])) == [
        [True, "I am node2\n"],
        [False, "Command 'whoami' on node 'node3' failed: Executing command 'whoami' failed"],
        [True, "I am node1\n"]]


def test_a_restricted_command_on_an_unknown_node_is_refused(cluster, commands):
    cluster.refused(OpRestrictedCommand(command="whoami", nodes=["node1", "node9"]), "node 'node9' is not in the cluster")
