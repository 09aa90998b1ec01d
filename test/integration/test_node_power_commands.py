"""gnt-node power, health and powercycle and gnt-cluster epo as a user types them on a loopback
cluster of three nodes. The out-of-band program is a shell script written here that does to a
loopback node what a BMC does to a machine: power-off stops the node's daemons, power-on starts
them, power-status tells whether its noded runs; every call is recorded. The tests share the
cluster and run in file order."""
from __future__ import annotations

import os
import time

import pytest
from loopback import LoopbackCluster

SCRIPT = """#!/bin/sh
base={base}
echo "$1 $2" >> "$base/oob-calls"
. "$base/oob-env-$2"
pidfile="$GENET_ROOT/var/run/genet/genet-noded.pid"
case "$1" in
    power-on) genet-daemon start >/dev/null ;;
    power-off) genet-daemon stop >/dev/null ;;
    power-cycle) genet-daemon stop >/dev/null && genet-daemon start >/dev/null ;;
    power-status)
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo '{{"powered": true}}'
        else
            echo '{{"powered": false}}'
        fi ;;
    health) echo '[["noded", "OK"], ["Ambient Temp", "WARNING"]]' ;;
esac
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LoopbackCluster(tmp_path_factory.mktemp("power"))
    try:
        c.start()
        for node in c.names:
            env = c.env(node)
            (c.base / f"oob-env-{node}").write_text("".join(
                f"export {key}='{env[key]}'\n" for key in ("GENET_ROOT", "GENET_HOSTNAME", "GENET_HOSTS", "PATH")))
        program = c.base / "oob"
        program.write_text(SCRIPT.format(base=c.base))
        os.chmod(program, 0o755)
        yield c
    finally:
        c.stop()


def gnt(c, *argv, check=True):
    return c.run("node1", *argv, check=check)


def calls(c) -> list[str]:
    log = c.base / "oob-calls"
    return log.read_text().splitlines() if log.exists() else []


def daemon_pid(c, node: str, daemon: str = "genet-noded") -> int | None:
    try:
        pid = int((c.root(node) / f"var/run/genet/{daemon}.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def node_row(c, node: str, fields: str) -> list[str]:
    return gnt(c, "gnt-node", "list", "--no-headers", "--separator=|", "-o", fields, node).stdout.strip().split("|")


def test_without_an_oob_program_nodes_are_unavailable_or_refused(cluster):
    proc = gnt(cluster, "gnt-node", "power", "status", check=False)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["Node  Status", "node1 (unavail)", "node2 (unavail)", "node3 (unavail)"]
    proc = gnt(cluster, "gnt-node", "power", "-f", "off", "node3", check=False)
    assert proc.returncode == 1
    assert "Node node3 does not support out-of-band commands: its node parameter oob_program is empty" in proc.stderr
    assert node_row(cluster, "node3", "offline") == ["N"]          # refused before marking it offline
    assert calls(cluster) == []


def test_power_status_asks_every_nodes_program(cluster):
    gnt(cluster, "gnt-cluster", "modify", "--node-parameters", f"oob_program={cluster.base / 'oob'}")
    proc = gnt(cluster, "gnt-node", "power", "status")
    assert proc.stdout.splitlines() == ["Node  Status", "node1 powered", "node2 powered", "node3 powered"]
    assert calls(cluster) == ["power-status node1", "power-status node2", "power-status node3"]
    out = gnt(cluster, "gnt-node", "power", "--no-headers", "--separator=:", "status", "node2").stdout
    assert out == "node2:powered\n"


def test_power_off_asks_for_force_marks_the_node_offline_and_stops_it(cluster):
    proc = gnt(cluster, "gnt-node", "power", "off", "node3", check=False)
    assert proc.returncode == 13 and "node3" in proc.stdout and "--force" in proc.stderr
    proc = gnt(cluster, "gnt-node", "power", "off", check=False)
    assert proc.returncode == 1 and "Please provide at least one node for this command" in proc.stderr
    proc = gnt(cluster, "gnt-node", "power", "-f", "off", "node1", check=False)
    assert proc.returncode == 1 and "the master node 'node1' cannot be demoted, drained or set offline" in proc.stderr
    proc = gnt(cluster, "gnt-node", "power", "-f", "--ignore-status", "off", "node1", check=False)
    assert proc.returncode == 1
    assert (f"Operating on the master node node1 is not allowed for power-off; run '{cluster.base / 'oob'}"
            " power-off node1' if you want to operate on the master regardless") in proc.stderr
    out = gnt(cluster, "gnt-node", "power", "-f", "off", "node3").stdout.splitlines()
    assert "Node node3 marked offline: it no longer counts for the majority" in out[0]     # the job's log
    assert out[1:] == ["Node  Status", "node3 invoked"]
    assert daemon_pid(cluster, "node3") is None
    assert node_row(cluster, "node3", "offline,powered") == ["Y", "N"]
    assert "powered: False" in gnt(cluster, "gnt-node", "info", "node3").stdout
    assert gnt(cluster, "gnt-node", "power", "status", "node3").stdout.splitlines()[1] == "node3 unpowered"


def test_power_on_starts_the_node_and_records_it_powered(cluster):
    assert gnt(cluster, "gnt-node", "power", "on", "node3").stdout.splitlines()[1] == "node3 invoked"
    assert daemon_pid(cluster, "node3") is not None
    gnt(cluster, "gnt-node", "modify", "-O", "no", "node3")
    assert node_row(cluster, "node3", "offline,powered") == ["N", "Y"]


def test_power_cycle_of_all_leaves_the_master_alone(cluster):
    before = calls(cluster)
    pids = {node: daemon_pid(cluster, node) for node in ("node2", "node3")}
    out = gnt(cluster, "gnt-node", "power", "-f", "--all", "cycle").stdout
    assert out.splitlines() == ["Node  Status", "node2 invoked", "node3 invoked"]
    assert calls(cluster)[len(before):] == ["power-cycle node2", "power-cycle node3"]
    assert all(daemon_pid(cluster, node) not in (None, pids[node]) for node in pids)


def test_health_lists_each_item_and_warns_of_the_bad_ones(cluster):
    proc = gnt(cluster, "gnt-node", "health", "node2")
    assert proc.stdout.splitlines()[-3:] == ["Node  Status", "node2 noded=OK", "      Ambient Temp=WARNING"]
    assert "WARNING: Item 'Ambient Temp' on node 'node2' has status 'WARNING'" in proc.stdout


def test_powercycle_restarts_a_loopback_nodes_daemons_and_says_so(cluster):
    proc = gnt(cluster, "gnt-node", "powercycle", "node2", check=False)
    assert proc.returncode == 13 and "--yes" in proc.stderr
    proc = gnt(cluster, "gnt-node", "powercycle", "--yes", "node1", check=False)
    assert proc.returncode == 1 and "The node is the master and the force parameter was not set" in proc.stderr
    before = daemon_pid(cluster, "node2")
    proc = gnt(cluster, "gnt-node", "powercycle", "--yes", "node2")
    assert ("Restart of the node daemons scheduled in 5 seconds; the machine is not rebooted: this node's state"
            f" root is {cluster.root('node2')}, so it shares the machine with other nodes") in proc.stderr
    deadline = time.monotonic() + 30
    while daemon_pid(cluster, "node2") in (None, before):
        assert time.monotonic() < deadline, "node2's noded was not restarted"
        time.sleep(0.2)
    gnt(cluster, "gnt-debug", "delay", "--no-master", "-n", "node2", "0")     # it answers the master again


def test_epo_stops_the_instances_powers_off_and_on_brings_them_back(cluster):
    gnt(cluster, "gnt-instance", "add", "-t", "diskless", "-n", "node3", "-o", "noop", "-B", "memory=64M", "web1")
    proc = gnt(cluster, "gnt-cluster", "epo", "node3", check=False)
    assert proc.returncode == 13 and "  node3" in proc.stdout
    proc = gnt(cluster, "gnt-cluster", "epo", "node1", "node3", check=False)
    assert proc.returncode == 1 and "node1 is the master node, please do a master-failover" in proc.stderr
    out = gnt(cluster, "gnt-cluster", "epo", "-f", "node3").stdout
    assert "Submit shutdown of instance web1" in out and "All instances have been stopped successfully" in out
    assert daemon_pid(cluster, "node3") is None
    assert node_row(cluster, "node3", "offline,powered") == ["N", "N"]
    out = gnt(cluster, "gnt-cluster", "epo", "-f", "--on", "--power-delay", "0", "node3").stdout.splitlines()
    assert out[-4:] == ["Waiting until all nodes are available again", "Node node3 became available",
                        "Submit startup of instance web1", "All instances have been started successfully"]
    assert node_row(cluster, "node3", "powered") == ["Y"]
    assert gnt(cluster, "gnt-instance", "list", "--no-headers", "-o", "status", "web1").stdout.strip() == "running"


def test_epo_on_skips_a_node_that_is_powered_and_waits_for_it(cluster):
    out = gnt(cluster, "gnt-cluster", "epo", "-f", "--on", "node2").stdout.splitlines()
    assert out == ["Node node2 is already in desired power state, skipping",
                   "Waiting until all nodes are available again", "Node node2 became available"]


def test_powercycle_of_the_master_with_force_restarts_its_master_daemon_too(cluster):
    masterd = daemon_pid(cluster, "node1", "genet-masterd")
    gnt(cluster, "gnt-node", "powercycle", "--yes", "--force", "node1")
    deadline = time.monotonic() + 60
    while daemon_pid(cluster, "node1", "genet-masterd") in (None, masterd) or daemon_pid(cluster, "node1") is None \
            or gnt(cluster, "gnt-cluster", "master-ping", check=False).returncode:
        assert time.monotonic() < deadline, "node1's daemons did not come back"
        time.sleep(0.5)
    assert gnt(cluster, "gnt-node", "power", "status", "node2").stdout.splitlines()[1] == "node2 powered"
