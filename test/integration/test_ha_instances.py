"""Instance HA on a real 4-node dev cluster with QEMU guests (issue 16): the node of an HA mirror
instance is killed while its guest writes checksummed blocks; the master declares it dead, fences
it through the dev cluster's out-of-band program (power-off kills whatever is left of it,
power-status confirms), sets it offline and restarts the instance on its secondary, where every
block the guest saw written is intact. With a fence agent that fails, nothing restarts and
verify says why. The tests share one cluster and run in file order.
"""
from __future__ import annotations

import re
import time

import pytest
from devnet import wait_for
from test_instances_mirror import BLOCK_KIB, Dev, booted, hvparams, image_md5, kvm_cluster, tool


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    yield from kvm_cluster(tmp_path_factory, "ha-instances", nodes=4)


def add_ha_instance(dev: Dev, name: str, nodes: str, ip: str) -> None:
    out = dev.gnt("gnt-instance", "add", "-t", "mirror", "-n", nodes, "--disk", "0:size=32M",
                  "--net", "0:link=gnt-br0", "-B", "memory=256M,ha=true",
                  "-H", hvparams().replace("10.199.0.61", ip), name).stdout
    assert "in sync" in out
    booted(dev, nodes.split(":")[0], name)


def start_console_writer(dev: Dev, name: str, span: int) -> None:
    """The guest writes random 64 KiB blocks in turn over ``span`` blocks, each with fsync, and
    only once dd returned says "ACK block md5" on its serial console: the log of acknowledged
    writes is on the host, and outlives the node. It starts once this console session ended (the
    session lasts until the guest has been quiet for 3 s)."""
    dev.console(name, f"(sleep 5; i=0; while true; do b=$((i%{span})); dd if=/dev/urandom of=/tmp/w bs={BLOCK_KIB}k"
                      f" count=1 2>/dev/null; dd if=/tmp/w of=/dev/vda bs={BLOCK_KIB}k seek=$b conv=fsync"
                      f" 2>/dev/null && echo ACK $b $(md5sum < /tmp/w | cut -c1-32) > /dev/ttyS0;"
                      " i=$((i+1)); done) &\n")


def acknowledged(dev: Dev, node: str, name: str) -> dict[int, str]:
    """Every block the guest on ``node`` acknowledged, with what it wrote there last."""
    text = dev.serial_log(node, name).read_text(errors="replace")
    return {int(block): md5 for block, md5 in re.findall(r"ACK (\d+) ([0-9a-f]{32})", text)}


def test_the_node_of_an_ha_instance_is_fenced_and_the_instance_restarts_on_its_secondary(dev):
    add_ha_instance(dev, "web", "node2:node3", "10.199.0.71")
    start_console_writer(dev, "web", 64)
    wait_for(lambda: len(acknowledged(dev, "node2", "web")) >= 20, 120, "the guest to acknowledge writes")
    assert tool("kill-node", "--dir", str(dev.dir), "node2").returncode == 0
    killed = time.monotonic()
    wait_for(lambda: dev.field("web", "pnode") == "node3", 90, "web to fail over to node3")
    booted(dev, "node3", "web")
    print(f"web runs on node3 {time.monotonic() - killed:.1f} s after node2 was killed")
    assert dev.gnt("gnt-node", "list", "--no-headers", "-o", "offline", "node2").stdout.strip() == "Y"
    jobs = dev.gnt("gnt-job", "list", "--no-headers", "-o", "summary,status").stdout
    assert re.search(r"OOB_COMMAND.*success", jobs) and re.search(r"INSTANCE_FAILOVER\(web\).*success", jobs), jobs
    written = acknowledged(dev, "node2", "web")
    image = dev.image("node3", "web")
    assert {b: image_md5(image, b, 1) for b in written} == written


def test_with_a_fence_agent_that_fails_nothing_restarts_and_verify_says_why(dev):
    add_ha_instance(dev, "db", "node4:node3", "10.199.0.72")
    conf = dev.dir / "node1/root/etc/genet/oob/script.conf"
    conf.write_text(conf.read_text() + "[node4]\npower-off = echo 'the BMC of node4 does not answer' >&2; exit 1\n")
    time.sleep(4)       # two heartbeats: node4 reports db's mirror in sync
    assert tool("kill-node", "--dir", str(dev.dir), "node4").returncode == 0

    def verify_says_why():
        out = dev.gnt("gnt-cluster", "verify", "--error-codes", ok=False).stdout
        return out if "ENODEHA" in out else None
    out = wait_for(verify_says_why, 90, "verify to report the failed fence")
    assert "node4 is dead but not fenced" in out and "the BMC of node4 does not answer" in out, out
    time.sleep(6)       # a retry later, still nothing
    assert dev.field("db", "pnode") == "node4"
    assert dev.gnt("gnt-node", "list", "--no-headers", "-o", "offline", "node4").stdout.strip() == "N"
