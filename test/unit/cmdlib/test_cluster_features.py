"""gnt-cluster modify's settings of Ganeti's optional features, run in-process: the compression
tools a disk copy may use, the helper VM images, the instance communication network, user
shutdown and the data collectors."""
from __future__ import annotations

import pytest

from genet import query
from genet.opcodes import OpClusterQuery, OpClusterSetParams, OpInstanceCreate, OpInstanceMove, OpNetworkAdd


def create(cluster, name="web1", start=False):
    cluster.run(OpInstanceCreate(instance_name=name, disk_template="file", pnode="node2", os_type="noop",
                                 disks=[{"size": 4}], start=start))


def test_a_move_may_use_only_the_clusters_compression_tools(cluster):
    """When lzop is not allowed a move with it is refused; once allowed it is accepted and the
    disk is copied through gzip's or lzop's stream all the same."""
    create(cluster)
    assert cluster.run(OpClusterQuery())["compression_tools"] == ["gzip", "gzip-fast", "gzip-slow"]
    cluster.refused(OpInstanceMove(instance_name="web1", target_node="node3", compress="lzop"),
                    r"Compression tool not allowed, tools allowed are \[gzip, gzip-fast, gzip-slow\]", "wrong_input")
    cluster.run(OpInstanceMove(instance_name="web1", target_node="node3", compress="gzip-slow"))
    assert cluster.instance("web1")["primary_node"] == "node3" and len(cluster.nodes["node3"].files("web1")) == 1
    cluster.run(OpClusterSetParams(compression_tools=["gzip", "lzop"]))
    assert cluster.data().cluster.compression_tools == ["gzip", "lzop"]
    cluster.refused(OpInstanceMove(instance_name="web1", target_node="node2", compress="gzip-slow"),
                    r"tools allowed are \[gzip, lzop\]")


@pytest.mark.parametrize("tools, message", [
    (["lzop"], "the gzip utility must be present"), (["gzip", "a b"], "contain illegal characters"),
    (["gzip", "none"], "none is a reserved value")])
def test_a_list_of_tools_ganeti_would_refuse_changes_nothing(cluster, tools, message):
    cluster.refused(OpClusterSetParams(compression_tools=tools), message, "wrong_input")


def test_helper_images_are_an_absolute_path_or_a_url_and_are_shown(cluster):
    cluster.run(OpClusterSetParams(install_image="/srv/images/install.img",
                                   zeroing_image="https://images.example/zero.img"))
    info = cluster.run(OpClusterQuery())
    assert (info["install_image"], info["zeroing_image"]) == ("/srv/images/install.img",
                                                              "https://images.example/zero.img")
    cluster.refused(OpClusterSetParams(install_image="images/install.img"),
                    "Install image must be an absolute path or a URL")
    cluster.refused(OpClusterSetParams(zeroing_image=""), "Zeroing image must be an absolute path or a URL")


def test_a_missing_communication_network_is_made_and_connected_to_every_group(cluster):
    """When the network does not exist, the change submits Ganeti's job: the network with the
    link-local defaults, connected routed to every node group."""
    result = cluster.run(OpClusterSetParams(instance_communication_network="comm"))
    [[_, job_id]] = result["jobs"]
    assert cluster.wait(job_id)["status"] == "success"
    data = cluster.data()
    [net] = [n for n in data.networks.values() if n["name"] == "comm"]
    assert (net["network"], net["network6"], net["mac_prefix"]) == ("169.254.0.0/16", "fe80::/10", "52:54:00")
    for group in data.nodegroups.values():
        assert group["networks"][net["uuid"]] == {"mode": "routed", "link": "communication_rt", "vlan": ""}
    assert cluster.run(OpClusterQuery())["instance_communication_network"] == "comm"
    assert cluster.run(OpClusterSetParams(instance_communication_network="comm")) == []
    assert "Instance communication network already is 'comm', nothing to do." in cluster.log
    cluster.run(OpClusterSetParams(instance_communication_network=""))
    assert "Previous instance communication network 'comm' should be removed manually." in cluster.log
    assert data.cluster.instance_communication_network == "comm" and \
        cluster.data().cluster.instance_communication_network == ""


def test_an_existing_network_unlike_ganetis_is_used_with_a_warning(cluster):
    cluster.run(OpNetworkAdd(network_name="lan", network="10.9.0.0/24", gateway="10.9.0.1"))
    cluster.run(OpClusterSetParams(instance_communication_network="lan"))
    assert any("'lan' has an IPv4 gateway '10.9.0.1', this might pose a security risk (default is 'None')" in line
               for line in cluster.log)
    assert cluster.data().cluster.instance_communication_network == "lan"


def statuses(cluster) -> dict:
    def live(nodes, hypervisors):
        results = cluster.ctx.rpc.instances_info.on(nodes, hypervisors)
        return {name: None if res.failed else res.payload for name, res in results.items()}
    rows = query.query_instances(cluster.data(), ["name", "status"], None, live)["data"]
    return {name[1]: status[1] for name, status in rows}


def test_a_guest_that_powered_off_is_user_down_only_with_the_clusters_user_shutdown(cluster):
    """When user shutdown is off, a guest's own power-off is ERROR_down (the watcher restarts it);
    on, it is USER_down; ssconf carries the switch to the nodes."""
    create(cluster, start=True)
    cluster.nodes["node2"].hv.guest_poweroff("web1")
    assert statuses(cluster) == {"web1": "ERROR_down"}
    cluster.run(OpClusterSetParams(enabled_user_shutdown=True))
    assert statuses(cluster) == {"web1": "USER_down"}
    assert cluster.run(OpClusterQuery())["enabled_user_shutdown"] is True
    assert query.instance.allows_user_down({"enabled_user_shutdown": True}, {"hypervisor": "kvm"},
                                           {"user_shutdown": False}) is False


def test_data_collectors_are_switched_and_timed_per_collector(cluster):
    info = cluster.run(OpClusterQuery())
    assert info["enabled_data_collectors"]["lv"] is True and info["data_collector_interval"]["lv"] == 5_000_000
    cluster.run(OpClusterSetParams(enabled_data_collectors={"lv": False}, data_collector_interval={"drbd": 2_500_000}))
    info = cluster.run(OpClusterQuery())
    assert (info["enabled_data_collectors"]["lv"], info["data_collector_interval"]["drbd"]) == (False, 2_500_000)
    assert info["enabled_data_collectors"]["drbd"] is True
    cluster.refused(OpClusterSetParams(enabled_data_collectors={"cpu": True}), r"unknown data collector\(s\) cpu")
