"""gnt-group and gnt-network run as a user would, on a loopback cluster."""
import ipaddress

import pytest

from loopback import LoopbackCluster


class Cluster(LoopbackCluster):
    """A loopback cluster with the checks this file makes."""

    def gnt(self, *argv, check=True):
        return self.run("node1", *argv, check=check)

    def config(self) -> dict:
        return self.stored_config("node1")

    def refused(self, *argv, message: str, code: int = 1):
        """The command fails with the exit code and the message, and the configuration does not change."""
        before = self.config()
        proc = self.gnt(*argv, check=False)
        assert proc.returncode == code, f"{argv}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert message in proc.stderr, proc.stderr
        assert self.config() == before
        return proc


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def table(proc):
    return [line.split() for line in proc.stdout.splitlines() if line.strip()]


def node_groups(cluster):
    return dict(table(cluster.gnt("gnt-node", "list", "--no-headers", "-o", "name,group")))


def test_group_add_assign_rename_modify_remove(cluster):
    cluster.gnt("gnt-group", "add", "--alloc-policy", "last_resort", "--node-parameters", "ssh_port=2222",
                "--ipolicy-vcpu-ratio", "2", "rack2")
    assert table(cluster.gnt("gnt-group", "list", "-o", "name,node_cnt,pinst_cnt,alloc_policy")) == [
        ["Group", "Nodes", "Instances", "AllocPolicy"], ["default", "3", "0", "preferred"],
        ["rack2", "0", "0", "last_resort"]]

    cluster.gnt("gnt-group", "assign-nodes", "rack2", "node2", "node3")
    assert node_groups(cluster) == {"node1": "default", "node2": "rack2", "node3": "rack2"}
    out = cluster.gnt("gnt-group", "list", "--no-headers", "--separator=|", "-o", "name,node_list").stdout
    assert out.splitlines() == ["default|node1", "rack2|node2,node3"]

    info = cluster.gnt("gnt-group", "info", "rack2").stdout
    assert "Node group: rack2" in info and "Allocation policy: last_resort" in info
    assert "Nodes: node2, node3" in info and "    ssh_port: 2222" in info.splitlines()     # the group's own
    assert "    vcpu-ratio: 2.0" in info.splitlines()

    cluster.gnt("gnt-group", "rename", "rack2", "rack9")
    assert node_groups(cluster)["node2"] == "rack9"

    out = cluster.gnt("gnt-group", "modify", "--alloc-policy", "preferred", "--node-parameters",
                      "ssh_port=default,ovs=yes", "rack9").stdout
    assert out.splitlines()[-3:] == ["Modified node group rack9", " - alloc_policy -> preferred",
                                     ' - ndparams -> {"ovs": true}']
    assert cluster.gnt("gnt-group", "list", "--no-headers", "-o", "custom_ndparams", "rack9").stdout.strip() == \
        '{"ovs": true}'

    cluster.gnt("gnt-group", "assign-nodes", "default", "node2", "node3")
    cluster.gnt("gnt-group", "remove", "rack9")
    assert table(cluster.gnt("gnt-group", "list", "--no-headers", "-o", "name")) == [["default"]]


def test_group_refusals_leave_the_config_unchanged(cluster):
    cluster.gnt("gnt-group", "add", "rack2")
    cluster.gnt("gnt-group", "assign-nodes", "rack2", "node3")
    cluster.refused("gnt-group", "remove", "rack2", message="node group 'rack2' still has 1 node(s): node3")
    cluster.refused("gnt-group", "rename", "rack2", "default",
                    message="cannot rename node group 'rack2': a node group 'default' already exists")
    cluster.refused("gnt-group", "add", "default", message="node group 'default' already exists")
    cluster.refused("gnt-group", "assign-nodes", "rack2", "node7", message="not in the cluster: node7")
    cluster.refused("gnt-group", "assign-nodes", "rack7", "node2", message="node group 'rack7' does not exist")
    cluster.refused("gnt-group", "modify", "rack2", message="no changes requested")
    cluster.refused("gnt-group", "add", "--alloc-policy", "sometimes", "rack3",
                    message="must be one of preferred, last_resort, unallocable", code=2)
    cluster.refused("gnt-group", "add", "--node-parameters", "colour=red", "rack3",
                    message="unknown key(s) colour", code=2)
    cluster.gnt("gnt-group", "assign-nodes", "default", "node3")
    cluster.gnt("gnt-group", "remove", "rack2")
    cluster.refused("gnt-group", "remove", "default", message="'default' is the last node group")
    cluster.refused("gnt-group", "info", "rack2", message="node group(s) not found: rack2")
    cluster.refused("gnt-group", "list", "-o", "name,bogus", message="bogus", code=14)


def test_group_list_filter_and_fields(cluster):
    cluster.gnt("gnt-group", "add", "empty")
    out = cluster.gnt("gnt-group", "list", "--no-headers", "-o", "name", "-F", "node_cnt == 0").stdout
    assert out.split() == ["empty"]
    fields = cluster.gnt("gnt-group", "list-fields").stdout
    assert "custom_ipolicy" in fields and "pinst_list" in fields


def test_network_add_list_info_modify(cluster):
    cluster.gnt("gnt-network", "add", "--network=198.51.100.0/28", "--gateway=198.51.100.1",
                "--add-reserved-ips=198.51.100.5,198.51.100.6", "--mac-prefix=AA:00:01",
                "--network6=2001:db8::/64", "--gateway6=2001:db8::1", "net1")
    assert table(cluster.gnt("gnt-network", "list")) == [
        ["Network", "Subnet", "Gateway", "MacPrefix", "GroupList", "Tags"],
        ["net1", "198.51.100.0/28", "198.51.100.1", "aa:00:01"]]      # no groups, no tags: empty
    info = cluster.gnt("gnt-network", "info", "net1").stdout
    for line in ("  Subnet: 198.51.100.0/28", "  IPv6 Subnet: 2001:db8::/64", "  Mac Prefix: aa:00:01",
                 "  Size: 16", "  Free: 11 (68.75%)", f"        0 {'XX...XX........X':<64} 63",
                 "  externally reserved IPs:", "    198.51.100.0, 198.51.100.1, 198.51.100.5, 198.51.100.6,",
                 "    198.51.100.15", "  not connected to any node group", "  not used by any instances"):
        assert line in info.splitlines(), line       # Ganeti's layout, line for line (wrapped at 64)

    out = cluster.gnt("gnt-network", "modify", "--gateway=198.51.100.14", "--remove-reserved-ips=198.51.100.5",
                      "--add-reserved-ips=198.51.100.9", "net1").stdout
    assert out.splitlines()[-4:] == ["Modified network net1", " - gateway -> 198.51.100.14",
                                     " - add_reserved_ips -> 198.51.100.9",
                                     " - remove_reserved_ips -> 198.51.100.5"]
    out = cluster.gnt("gnt-network", "list", "--no-headers", "--separator=|",
                      "-o", "gateway,free_count,reserved_count,map").stdout
    assert out.strip() == "198.51.100.14|11|5|X.....X..X....XX"


def test_network_add_reserves_the_cluster_addresses_inside_it(cluster):
    """When a network holds the nodes' addresses, they are reserved unless --no-conflicts-check."""
    net = ipaddress.ip_network(f"{cluster.address('node1')}/24", strict=False)
    out = cluster.gnt("gnt-network", "add", f"--network={net}", "nodes").stdout
    assert f"Reserved {cluster.address('node2')} (the primary address of node node2) in network nodes" in out
    reserved = cluster.gnt("gnt-network", "list", "--no-headers", "--separator=|",
                           "-o", "external_reservations", "nodes").stdout.strip()
    assert reserved == ", ".join([str(net[0]), *map(cluster.address, cluster.names), str(net[-1])])
    cluster.gnt("gnt-network", "remove", "nodes")
    cluster.gnt("gnt-network", "add", f"--network={net}", "--no-conflicts-check", "nodes")
    assert cluster.gnt("gnt-network", "list", "--no-headers", "-o", "reserved_count").stdout.strip() == "2"


def test_network_connect_disconnect_and_remove(cluster):
    cluster.gnt("gnt-group", "add", "rack2")
    cluster.gnt("gnt-network", "add", "--network=198.51.100.0/24", "net1")
    cluster.gnt("gnt-network", "connect", "-N", "mode=bridged,link=br-dmz", "net1")
    out = cluster.gnt("gnt-network", "list", "--no-headers", "--separator=|", "-o", "name,group_list,group_cnt")
    assert out.stdout.strip() == "net1|default (bridged, br-dmz),rack2 (bridged, br-dmz)|2"
    assert "- net1: mode bridged, link br-dmz" in cluster.gnt("gnt-group", "info", "rack2").stdout

    cluster.refused("gnt-network", "connect", "-N", "mode=routed,link=10", "net1", "rack2",
                    message="already connected to node group 'rack2' with mode bridged")
    cluster.refused("gnt-network", "remove", "net1",
                    message="network 'net1' is still connected to node group(s) default, rack2")
    cluster.gnt("gnt-network", "disconnect", "net1", "rack2")
    assert cluster.gnt("gnt-group", "list", "--no-headers", "-o", "networks", "default").stdout.strip() == "net1"
    assert cluster.gnt("gnt-group", "list", "--no-headers", "-o", "networks", "rack2").stdout.strip() == ""

    cluster.gnt("gnt-network", "connect", "-N", "mode=openvswitch,link=sw0,vlan=:100", "net1", "rack2")
    out = cluster.gnt("gnt-network", "list", "--no-headers", "--separator=|", "-o", "group_list").stdout
    assert out.strip() == "default (bridged, br-dmz),rack2 (openvswitch, sw0, vlan :100)"
    cluster.gnt("gnt-network", "disconnect", "net1")
    assert cluster.gnt("gnt-network", "list", "--no-headers", "-o", "group_cnt").stdout.strip() == "0"
    cluster.gnt("gnt-network", "connect", "net1", "default")
    cluster.gnt("gnt-network", "remove", "--force", "net1")
    assert cluster.gnt("gnt-network", "list", "--no-headers").stdout == ""
    assert cluster.config()["networks"] == {}


def test_network_refusals_leave_the_config_unchanged(cluster):
    cluster.gnt("gnt-network", "add", "--network=198.51.100.0/24", "--gateway=198.51.100.1", "net1")
    cluster.refused("gnt-network", "add", "--network=198.51.100.128/25", "net2",
                    message="network 198.51.100.128/25 overlaps network 'net1' (198.51.100.0/24)")
    cluster.refused("gnt-network", "add", "--network=203.0.113.0/24", "net1", message="network 'net1' already exists")
    cluster.refused("gnt-network", "add", "--network=203.0.113.1/24", "net2", message="has host bits set", code=2)
    cluster.refused("gnt-network", "add", "--network=10.0.0.0/8", "net2", message="prefix length /8", code=2)
    cluster.refused("gnt-network", "add", "net2", message="missing required parameter 'network'")
    cluster.refused("gnt-network", "add", "--network=203.0.113.0/24", "--gateway=198.51.100.1", "net2",
                    message="gateway 198.51.100.1 is outside network 203.0.113.0/24")
    cluster.refused("gnt-network", "add", "--network=203.0.113.0/24", "--add-reserved-ips=10.1.1.1", "net2",
                    message="cannot reserve 10.1.1.1: it is outside network 203.0.113.0/24")
    cluster.refused("gnt-network", "modify", "--add-reserved-ips=203.0.113.7", "net1",
                    message="cannot reserve 203.0.113.7: it is outside network 198.51.100.0/24")
    cluster.refused("gnt-network", "modify", "--remove-reserved-ips=198.51.100.1", "net1",
                    message="cannot release 198.51.100.1: it is the gateway")
    cluster.refused("gnt-network", "connect", "-N", "mode=bridged,link=br0,vlan=5", "net1",
                    message="a VLAN needs NIC mode openvswitch")
    cluster.refused("gnt-network", "connect", "-N", "mode=nat", "net1",
                    message="must be one of bridged, routed, openvswitch", code=2)
    cluster.refused("gnt-network", "connect", "net1", "rack7", message="node group 'rack7' does not exist")
    cluster.refused("gnt-network", "remove", "net9", message="network 'net9' does not exist")


def test_tags_on_groups_and_networks(cluster):
    cluster.gnt("gnt-network", "add", "--network=198.51.100.0/24", "net1")
    cluster.gnt("gnt-group", "add-tags", "default", "rack:1", "power:a")
    cluster.gnt("gnt-network", "add-tags", "net1", "dmz")
    assert cluster.gnt("gnt-group", "list-tags", "default").stdout.split() == ["power:a", "rack:1"]
    assert cluster.gnt("gnt-network", "list-tags", "net1").stdout.split() == ["dmz"]
    cluster.gnt("gnt-group", "remove-tags", "default", "power:a")
    assert cluster.gnt("gnt-group", "list", "--no-headers", "-o", "tags").stdout.strip() == "rack:1"
    assert table(cluster.gnt("gnt-network", "list", "--no-headers", "-o", "name,tags")) == [["net1", "dmz"]]
    cluster.refused("gnt-network", "remove-tags", "net1", "nosuch", message="tag(s) nosuch not found")
    cluster.refused("gnt-group", "add-tags", "rack9", "x", message="nodegroup 'rack9' does not exist")
    cluster.refused("gnt-network", "list-tags", "net9", message="network 'net9' does not exist")


def test_instance_nics_take_their_addresses_from_the_network_pool(cluster):
    cluster.gnt("gnt-network", "add", "--network=198.51.100.0/29", "--gateway=198.51.100.1", "lan")
    cluster.gnt("gnt-network", "connect", "-N", "mode=bridged,link=br-lan", "lan", "default")

    def add(name, net, *extra, node="node1"):
        return cluster.gnt("gnt-instance", "add", "-t", "diskless", "--no-start", "--hypervisor", "fake",
                           "-n", node, "--net", net, *extra, name)

    def counts():
        out = cluster.gnt("gnt-network", "list", "--no-headers", "-o", "free_count,reserved_count", "lan")
        return [int(x) for x in out.stdout.split()]

    add("vm1", "0:network=lan,ip=pool", "--tags", "web,blue")
    add("vm2", "0:network=lan,ip=pool")
    out = cluster.gnt("gnt-instance", "list", "--no-headers", "--separator=|",
                      "-o", "name,nic.ips,nic.modes,nic.links,nic.networks.names,tags")
    assert out.stdout.splitlines() == ["vm1|198.51.100.2|bridged|br-lan|lan|blue,web",
                                       "vm2|198.51.100.3|bridged|br-lan|lan|"]
    assert counts() == [3, 5]          # of 8: network, gateway, broadcast and two instances taken

    cluster.refused("gnt-instance", "add", "-t", "diskless", "--no-start", "-n", "node1",
                    "--net", "0:network=lan,ip=198.51.100.2", "vm3", message="198.51.100.2 of network lan is already taken")
    cluster.refused("gnt-instance", "add", "-t", "diskless", "--no-start", "-n", "node1",
                    "--net", "0:network=lan,ip=192.0.2.5", "vm3", message="not in network lan")
    cluster.refused("gnt-instance", "add", "-t", "diskless", "--no-start", "-n", "node1",
                    "--net", "0:ip=pool", "vm3", message="ip=pool needs a network")
    cluster.refused("gnt-instance", "add", "-t", "diskless", "--no-start", "-n", "node1", "-I", "hail",
                    "--net", "0:", "vm3", message="Do not specify both, iallocator and node")
    cluster.gnt("gnt-group", "add", "rack2")
    cluster.gnt("gnt-group", "assign-nodes", "rack2", "node3")
    cluster.refused("gnt-instance", "add", "-t", "diskless", "--no-start", "-n", "node3",
                    "--net", "0:network=lan,ip=pool", "vm3", message="not connected to node group rack2")

    cluster.gnt("gnt-instance", "modify", "--net", "add:network=lan,ip=pool", "vm2")
    assert counts() == [2, 6]
    cluster.gnt("gnt-instance", "modify", "--net", "1:remove", "vm2")
    cluster.gnt("gnt-instance", "remove", "vm1")
    assert counts() == [4, 4]
    add("vm4", "0:network=lan,ip=pool")
    assert cluster.gnt("gnt-instance", "list", "--no-headers", "-o", "nic.ips", "vm4").stdout.strip() == "198.51.100.2"
