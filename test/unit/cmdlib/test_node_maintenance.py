"""genet.nodemaint (gnt-cluster modify --maintain-node-health), run in-process: the node asks
the master candidates for the configuration over the node RPC and, once it is marked offline,
shuts down its instances and its side of the mirrored disks (conftest.Cluster)."""
from __future__ import annotations

import json
import time

import pytest

from genet import config, nodemaint
from genet.opcodes import OpClusterSetParams, OpInstanceCreate, OpNodeSetParams
from genet.rpc import NodeRpc

from conftest import ADDRESSES


@pytest.fixture
def web(cluster, mirrored):
    """web1 runs on node3 (file disk); db1 is mirrored between node2 and node3 (assembled)."""
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node3", os_type="noop",
                                 disks=[{"size": 8}], beparams={"memory": 128}, start=True))
    cluster.run(OpInstanceCreate(instance_name="db1", disk_template=mirrored.name, pnode="node2", snode="node3",
                                 os_type="noop", disks=[{"size": 8}], beparams={"memory": 128}, start=True))
    return cluster


def maintain(cluster, node: str, **options) -> list[str]:
    """One maintenance pass on ``node``, its RPC going to the other nodes' procedures."""
    rpc = NodeRpc(cluster.transport, ADDRESSES.__getitem__)
    with cluster.nodes[node].acting():
        return nodemaint.run(rpc, **options)


def role(cluster, node: str, disk_uuid: str) -> str | None:
    path = cluster.nodes[node].root / "var/run/genet/fakemirror" / f"{disk_uuid}.json"
    return json.loads(path.read_text()).get("role") if path.exists() else None


def test_an_online_node_keeps_what_it_runs(web):
    assert maintain(web, "node3") == []
    assert web.running()["node3"] == ["web1"]


def test_a_node_marked_offline_stops_its_instances_and_takes_its_mirror_side_down(web):
    """When node3 is marked offline while web1 still runs there and it holds db1's secondary,
    its maintenance kills web1 and takes db1's side down; node2 keeps running db1."""
    web.run(OpNodeSetParams(node_name="node3", offline=True))
    disk = web.instance("db1")["disks"][0]["uuid"]
    assert role(web, "node3", disk) == "secondary"
    assert maintain(web, "node3") == ["web1", "db1/disk/0"]
    assert web.running()["node3"] == [] and web.running()["node2"] == ["db1"]
    assert role(web, "node3", disk) is None and role(web, "node2", disk) == "primary"


def test_the_watchers_pause_holds_the_maintenance_too(web):
    web.run(OpNodeSetParams(node_name="node3", offline=True))
    web.ctx.cfg.update(lambda data: data.cluster.__setitem__("watcher_pause", time.time() + 3600))
    assert maintain(web, "node3") == []
    assert maintain(web, "node3", ignore_pause=True) == ["web1", "db1/disk/0"]


def test_the_setting_reaches_the_nodes_ssconf(cluster):
    with cluster.nodes["node3"].acting():
        assert not nodemaint.enabled()
    cluster.run(OpClusterSetParams(maintain_node_health=True))
    cluster.ctx.redistribute(lambda *_: None)
    with cluster.nodes["node3"].acting():
        assert config.ssconf_value("maintain_node_health") == "True" and nodemaint.enabled()
