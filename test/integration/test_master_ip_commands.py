"""The floating master IP on a 3-node dev cluster, as a user runs it: the cluster renamed to a name
of its own address, given a master netdev, and the address then found with `ip -n NODE_NS address`
in the master's network namespace (never on this machine's own interfaces): moved by a netmask
change, taken down and up again, carried over by master-failover (the RAPI answering there,
as Ganeti's at the cluster name), and run through the administrator's own master-ip-setup
script."""
from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest
from devnet import dev_cluster, wait_for

PROBE = ("import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], 1811), timeout=2).close()\n"
         "except ConnectionRefusedError:\n    pass\nexcept OSError:\n    sys.exit(1)\n")


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    with dev_cluster(tmp_path_factory.mktemp("dev") / "cluster") as cluster:
        yield cluster


def doc(dev) -> dict:
    return json.loads((dev.dir / "cluster.json").read_text())


def addresses(dev, node: str) -> list[str]:
    """ADDRESS/NETMASK of the node's eth0, in its own namespace."""
    netns = next(n["netns"] for n in doc(dev)["nodes"] if n["name"] == node)
    out = subprocess.run(["ip", "-n", netns, "-o", "address", "show", "dev", "eth0"], capture_output=True,
                         text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if " inet " in line]


def answers(dev, node: str, address: str) -> bool:
    """Something at ``address`` answers a connection from ``node`` (noded's port: a refusal counts)."""
    return dev.run(node, sys.executable, "-c", PROBE, address, ok=False).returncode == 0


RAPI_INFO = ("import json, ssl, sys, urllib.request\ntry:\n"
             "    reply = urllib.request.urlopen(f'https://{sys.argv[1]}:5080/2/info', timeout=5,"
             " context=ssl._create_unverified_context())\nexcept OSError:\n    sys.exit(1)\n"
             "print(json.load(reply)['name'])\n")


def rapi_name(dev, node: str, address: str) -> str | None:
    """The cluster name the RAPI at ``address`` gives ``node``, None if none answers."""
    proc = dev.run(node, sys.executable, "-c", RAPI_INFO, address, ok=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_the_master_ip_lives_in_the_masters_namespace_and_follows_it(dev):
    subnet = ipaddress.ip_network(doc(dev)["subnet"])
    mip = str(subnet.network_address + 5)           # dev-cluster leaves .+2 to .+10 unused
    proc = dev.run("node1", "gnt-cluster", "activate-master-ip", ok=False)
    assert proc.returncode == 1 and "no master netdev is configured" in proc.stderr
    proc = dev.run("node1", "gnt-cluster", "modify", "--master-netdev", "eth0", ok=False)
    assert proc.returncode == 1 and "is node node1's own address" in proc.stderr

    with open(dev.dir / "hosts", "a") as hosts:        # the cluster's own name and address
        hosts.write(f"{mip} genet-mip\n")
    out = dev.run("node1", "gnt-cluster", "rename", "-f", "genet-mip").stdout
    assert "Cluster renamed from 'genet-dev' to 'genet-mip'" in out
    assert not answers(dev, "node2", mip)
    dev.run("node1", "gnt-cluster", "modify", "--master-netdev", "eth0")
    assert f"{mip}/32" in addresses(dev, "node1") and answers(dev, "node2", mip)
    wait_for(lambda: rapi_name(dev, "node2", mip) == "genet-mip", 30, "the RAPI at the master IP")
    info = dev.run("node1", "gnt-cluster", "info").stdout
    assert "master netdev: eth0" in info and "master netmask: 32" in info

    dev.run("node1", "gnt-cluster", "modify", "--master-netmask", "28")
    assert f"{mip}/28" in addresses(dev, "node1") and f"{mip}/32" not in addresses(dev, "node1")
    assert dev.run("node1", "gnt-cluster", "deactivate-master-ip", ok=False).returncode == 13
    assert f"{mip}/28" in addresses(dev, "node1")
    dev.run("node1", "gnt-cluster", "deactivate-master-ip", "--yes")
    assert f"{mip}/28" not in addresses(dev, "node1") and not answers(dev, "node2", mip)
    proc = dev.run("node1", "gnt-cluster", "verify", ok=False)
    assert proc.returncode == 1 and "node node1: the master node cannot reach the master IP" in proc.stdout
    dev.run("node1", "gnt-cluster", "activate-master-ip")
    assert f"{mip}/28" in addresses(dev, "node1")
    dev.run("node1", "gnt-cluster", "verify")

    out = dev.run("node2", "gnt-cluster", "master-failover").stdout
    assert "Master role moved from node1 to node2" in out
    assert f"{mip}/28" not in addresses(dev, "node1")
    wait_for(lambda: f"{mip}/28" in addresses(dev, "node2"), 30, "the master IP on node2")
    assert answers(dev, "node3", mip)
    wait_for(lambda: rapi_name(dev, "node3", mip) == "genet-mip", 30, "the new master's RAPI at the master IP")

    # the administrator's script instead of the built-in steps, with Ganeti's environment
    record = dev.dir / "mip-record"
    script = dev.root("node2") / "etc/genet/scripts/master-ip-setup"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("#!/bin/sh\n"
                      f"echo \"$1 $MASTER_IP/$MASTER_NETMASK $MASTER_NETDEV v$CLUSTER_IP_VERSION\" >> {record}\n"
                      "[ \"$1\" = start ] && op=add || op=del\n"
                      "exec ip address $op $MASTER_IP/$MASTER_NETMASK dev $MASTER_NETDEV\n")
    script.chmod(0o755)
    dev.run("node2", "gnt-cluster", "modify", "--use-external-mip-script", "yes")
    dev.run("node2", "gnt-cluster", "deactivate-master-ip", "--yes")
    assert f"{mip}/28" not in addresses(dev, "node2")
    dev.run("node2", "gnt-cluster", "activate-master-ip")
    assert f"{mip}/28" in addresses(dev, "node2")
    assert record.read_text().splitlines() == [f"stop {mip}/28 eth0 v4", f"start {mip}/28 eth0 v4"]
