"""A dev cluster fences its nodes for real: every node inherits an oob_program (genet-oob-script
calling dev-cluster), so gnt-node power off kills every process of the node and takes its link
down, power on restarts it, and power status and health tell what dev-cluster sees.

The tests share one 3-node cluster and run in file order."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from devnet import TOOL, dev_cluster, tool, wait_for

from genet_dev.netns import pid_alive

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    with dev_cluster(tmp_path_factory.mktemp("fence") / "cluster") as cluster:
        yield cluster


def gnt(dev, *argv: str, ok: bool = True) -> subprocess.CompletedProcess:
    return dev.run("node1", *argv, ok=ok)


def node_status(dev, node: str) -> dict:
    status = json.loads(tool("status", "--dir", str(dev.dir), "--json").stdout)
    return next(n for n in status["nodes"] if n["name"] == node)


def netns_pids(dev, node: str) -> list[int]:
    netns = node_status(dev, node)["netns"]
    inode = os.stat(f"/var/run/netns/{netns}").st_ino
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.readlink(f"/proc/{entry}/ns/net") == f"net:[{inode}]":
                found.append(int(entry))
        except OSError:
            continue
    return found


def test_every_node_inherits_the_dev_clusters_oob_program(dev):
    program = BIN / "genet-oob-script"
    assert json.loads((dev.dir / "cluster.json").read_text())["oob_program"] == str(program)
    assert f"oob_program: {program}" in gnt(dev, "gnt-cluster", "info").stdout
    conf = (dev.root("node2") / "etc/genet/oob/script.conf").read_text()
    assert f"nsenter --net={dev.dir}/host-netns -- {sys.executable} {TOOL}" in conf
    assert conf == (dev.root("node1") / "etc/genet/oob/script.conf").read_text()


def test_power_status_and_health_tell_what_dev_cluster_sees(dev):
    out = gnt(dev, "gnt-node", "power", "status").stdout.splitlines()
    assert out == ["Node  Status", "node1 powered", "node2 powered", "node3 powered"]
    out = gnt(dev, "gnt-node", "health", "node3").stdout.splitlines()
    assert out[-4:] == ["node3 namespace=OK", "      link=OK", "      sshd=OK", "      genet-noded=OK"]


def test_power_off_kills_every_process_of_the_node_and_takes_its_link_down(dev):
    sleeper = subprocess.Popen([sys.executable, str(TOOL), "exec", "--dir", str(dev.dir), "node3", "--",
                                "sleep", "600"])
    wait_for(lambda: any("sleep" in Path(f"/proc/{pid}/cmdline").read_text() for pid in netns_pids(dev, "node3")),
             10, "the sleeper in node3")
    noded = node_status(dev, "node3")["daemons"]["genet-noded"]
    out = gnt(dev, "gnt-node", "power", "-f", "off", "node3").stdout.splitlines()
    assert out[-2:] == ["Node  Status", "node3 invoked"]
    assert sleeper.wait(timeout=10) != 0
    assert netns_pids(dev, "node3") == []
    assert not pid_alive(noded)          # (perhaps a zombie yet: its parent died with it)
    status = node_status(dev, "node3")
    assert (status["state"], status["link"], status["sshd"], status["daemons"]) == ("killed", "down", False, {})
    assert gnt(dev, "gnt-node", "power", "status", "node3").stdout.splitlines()[1] == "node3 unpowered"
    out = gnt(dev, "gnt-node", "list", "--no-headers", "-o", "offline,powered", "node3").stdout.split()
    assert out == ["Y", "N"]


def test_health_of_a_fenced_node_is_critical(dev):
    out = gnt(dev, "gnt-node", "health", "node3").stdout
    assert "node3 namespace=OK" in out and "link=CRITICAL" in out and "genet-noded=CRITICAL" in out
    assert "WARNING: Item 'link' on node 'node3' has status 'CRITICAL'" in out


def test_power_on_brings_the_node_back_and_it_answers_the_master(dev):
    out = gnt(dev, "gnt-node", "power", "on", "node3").stdout.splitlines()
    assert out[-2:] == ["Node  Status", "node3 invoked"]
    status = node_status(dev, "node3")
    assert (status["state"], status["link"], status["sshd"]) == ("up", "up", True)
    assert "genet-noded" in status["daemons"]
    gnt(dev, "gnt-node", "modify", "-O", "no", "node3")
    gnt(dev, "gnt-debug", "delay", "--no-master", "-n", "node3", "0")
    out = gnt(dev, "gnt-node", "list", "--no-headers", "-o", "offline,powered", "node3").stdout.split()
    assert out == ["N", "Y"]


def test_power_cycle_kills_and_restarts_the_node(dev):
    before = node_status(dev, "node2")["daemons"]["genet-noded"]
    out = gnt(dev, "gnt-node", "power", "-f", "cycle", "node2").stdout.splitlines()
    assert out[-2:] == ["Node  Status", "node2 invoked"]
    after = node_status(dev, "node2")
    assert after["state"] == "up" and after["daemons"]["genet-noded"] != before
    gnt(dev, "gnt-debug", "delay", "--no-master", "-n", "node2", "0")
    gnt(dev, "gnt-cluster", "verify")


def test_power_status_of_an_unknown_cluster_is_unknown_not_off(tmp_path):
    proc = tool("power-status", "--dir", str(tmp_path / "none"), "node3")
    assert proc.returncode == 3 and "no dev cluster" in proc.stderr
