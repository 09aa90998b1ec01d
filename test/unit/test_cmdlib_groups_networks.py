"""Node group and network logical units, run through their phases on a config in a temp dir."""
from types import SimpleNamespace

import pytest

from genet.config_writer import ConfigWriter
from genet import config, errors, opcodes, query
from genet.cmdlib import lu_for


class Cluster:
    """A three-node config (node1 master, all in group 'default') and a way to run opcodes on it."""

    def __init__(self, path):
        data = config.new_cluster("c1", "node1", "192.0.2.11")
        for i in (2, 3):
            config.add_node(data, f"node{i}", f"192.0.2.{10 + i}")
        config.write_atomic(path, config.dumps(data))
        self.path = path
        self.cfg = ConfigWriter(path)
        self.log: list[str] = []

    def run(self, op: opcodes.OpCode):
        lu = lu_for(op.OP_ID)(SimpleNamespace(cfg=self.cfg), op, self.log.append)
        lu.expand_names()
        lu.check_prereq()
        return lu.exec()

    def refused(self, op: opcodes.OpCode, match: str, ecode: str) -> None:
        """The opcode is refused with the message and ecode, and the config file did not change."""
        before = self.path.read_bytes()
        with pytest.raises(errors.OpPrereqError, match=match) as info:
            self.run(op)
        assert info.value.ecode == ecode
        assert self.path.read_bytes() == before

    def add_instance(self, name: str, node: str, nics: list[dict], secondaries: list[str] = ()) -> None:
        def change(data):
            data["instances"][name] = {"name": name, "uuid": f"uuid-{name}", "primary_node": node,
                                       "secondary_nodes": list(secondaries), "nics": nics, "tags": [],
                                       "disk_template": "drbd" if secondaries else "plain"}
        self.cfg.update(change)

    def query(self, what: str, fields: list[str]) -> dict:
        data = self.cfg.snapshot()
        result = getattr(query, f"query_{what}s")(data, fields, None)
        return {row[0][1]: [v for _, v in row[1:]] for row in result["data"]}

    def group(self, name: str) -> dict:
        return next(g for g in self.cfg.snapshot()["nodegroups"].values() if g["name"] == name)

    def network(self, name: str) -> dict:
        return next(n for n in self.cfg.snapshot()["networks"].values() if n["name"] == name)


@pytest.fixture
def cluster(tmp_path):
    return Cluster(tmp_path / "config.data")


# --- node groups ------------------------------------------------------------

def test_group_add_creates_an_empty_group_with_its_own_parameters(cluster):
    cluster.run(opcodes.OpGroupAdd(group_name="rack2", alloc_policy="last_resort",
                                   ndparams={"spindle_count": 4}, diskparams={"plain": {"stripes": 2}},
                                   ipolicy={"vcpu-ratio": 2.0}))
    rows = cluster.query("group", ["name", "node_cnt", "alloc_policy", "custom_ndparams", "ndparams",
                                   "diskparams", "custom_ipolicy", "ipolicy"])
    node_cnt, policy, custom, ndparams, diskparams, custom_ipolicy, ipolicy = rows["rack2"]
    assert (node_cnt, policy, custom) == (0, "last_resort", {"spindle_count": 4})
    assert ndparams["spindle_count"] == 4 and ndparams["ssh_port"] == 22
    assert diskparams == {"plain": {"stripes": 2}}
    assert custom_ipolicy == {"vcpu-ratio": 2.0} and ipolicy["vcpu-ratio"] == 2.0 and "minmax" in ipolicy
    assert rows["default"][:2] == [3, "preferred"]


def test_group_add_refuses_an_existing_name(cluster):
    cluster.refused(opcodes.OpGroupAdd(group_name="default"), "node group 'default' already exists",
                    "already_exists")


def test_group_remove_refuses_a_group_with_nodes_and_the_last_group(cluster):
    """When a group holds nodes, or is the only group, removing it is refused and nothing changes."""
    cluster.refused(opcodes.OpGroupRemove(group_name="default"), "'default' is the last node group",
                    "wrong_state")
    cluster.run(opcodes.OpGroupAdd(group_name="empty"))
    cluster.refused(opcodes.OpGroupRemove(group_name="default"), "still has 3 node\\(s\\): node1, node2, node3",
                    "wrong_state")
    cluster.run(opcodes.OpGroupAssignNodes(group_name="empty", nodes=["node1", "node2", "node3"]))
    cluster.run(opcodes.OpGroupRemove(group_name="default"))
    cluster.refused(opcodes.OpGroupRemove(group_name="empty"), "last node group", "wrong_state")
    cluster.refused(opcodes.OpGroupRemove(group_name="nosuch"), "node group 'nosuch' does not exist",
                    "unknown_entity")


def test_group_rename_keeps_nodes_and_refuses_a_taken_name(cluster):
    cluster.run(opcodes.OpGroupAdd(group_name="rack2"))
    cluster.refused(opcodes.OpGroupRename(group_name="rack2", new_name="default"),
                    "a node group 'default' already exists", "already_exists")
    cluster.run(opcodes.OpGroupRename(group_name="default", new_name="rack1"))
    assert cluster.query("group", ["name", "node_list"])["rack1"] == [["node1", "node2", "node3"]]
    assert query.query_nodes(cluster.cfg.snapshot(), ["group"], None, None)["data"][0] == [[0, "rack1"]]


def test_group_set_params_merges_and_default_resets(cluster):
    cluster.run(opcodes.OpGroupSetParams(group_name="default", ndparams={"ssh_port": 2222, "ovs": True}))
    changes = cluster.run(opcodes.OpGroupSetParams(group_name="default", alloc_policy="unallocable",
                                                   ndparams={"ovs": "default"}))
    assert changes == [["alloc_policy", "unallocable"], ["ndparams", '{"ssh_port": 2222}']]
    assert cluster.group("default")["ndparams"] == {"ssh_port": 2222}
    cluster.refused(opcodes.OpGroupSetParams(group_name="default"), "no changes requested", "wrong_input")


def test_assign_nodes_moves_nodes_between_groups(cluster):
    cluster.run(opcodes.OpGroupAdd(group_name="rack2"))
    moved = cluster.run(opcodes.OpGroupAssignNodes(group_name="rack2", nodes=["node3", "node2"]))
    assert moved == ["node2", "node3"]
    assert cluster.query("group", ["name", "node_list"]) == {"default": [["node1"]], "rack2": [["node2", "node3"]]}
    assert cluster.run(opcodes.OpGroupAssignNodes(group_name="rack2", nodes=["node2"])) == []
    assert "Node node2 is already in node group rack2" in cluster.log
    cluster.refused(opcodes.OpGroupAssignNodes(group_name="rack2", nodes=["node9"]), "not in the cluster: node9",
                    "unknown_entity")


def test_assign_nodes_refuses_to_split_an_instance_unless_forced(cluster):
    """When an instance's primary and secondary would end up in different groups, --force is needed."""
    cluster.run(opcodes.OpGroupAdd(group_name="rack2"))
    cluster.add_instance("inst1", "node2", [], secondaries=["node3"])
    cluster.refused(opcodes.OpGroupAssignNodes(group_name="rack2", nodes=["node2"]),
                    "instance inst1 would have its nodes in different node groups", "wrong_state")
    cluster.run(opcodes.OpGroupAssignNodes(group_name="rack2", nodes=["node2", "node3"]))
    assert cluster.query("group", ["name", "pinst_list"])["rack2"] == [["inst1"]]


def test_assign_nodes_refuses_to_cut_an_instance_off_its_network(cluster):
    cluster.run(opcodes.OpGroupAdd(group_name="rack2"))
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    cluster.run(opcodes.OpNetworkConnect(group_name="default", network_name="net1", network_mode="bridged",
                                         network_link="br0"))
    cluster.add_instance("inst1", "node2", [{"network": cluster.network("net1")["uuid"], "ip": "198.51.100.5"}])
    cluster.refused(opcodes.OpGroupAssignNodes(group_name="rack2", nodes=["node2"]),
                    "NIC 0 of instance inst1 uses network net1, which is not connected to node group rack2",
                    "wrong_state")
    cluster.run(opcodes.OpGroupAssignNodes(group_name="rack2", nodes=["node2"], force=True))
    assert any("Warning: NIC 0 of instance inst1" in line for line in cluster.log)


# --- networks ---------------------------------------------------------------

def test_network_add_builds_the_pool(cluster):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/28", gateway="198.51.100.1",
                                     add_reserved_ips=["198.51.100.5", "198.51.100.1"], mac_prefix="AA:BB:CC",
                                     network6="2001:db8::/64", gateway6="2001:db8::1", tags=["a"]))
    rows = cluster.query("network", ["name", "network", "gateway", "mac_prefix", "free_count", "reserved_count",
                                     "map", "external_reservations", "network6", "tags"])
    assert rows["net1"] == ["198.51.100.0/28", "198.51.100.1", "aa:bb:cc", 12, 4, "XX...X.........X",
                            "198.51.100.0, 198.51.100.1, 198.51.100.5, 198.51.100.15", "2001:db8::/64", ["a"]]
    assert "Address 198.51.100.1 is reserved already" in cluster.log


def test_network_add_reserves_node_addresses_inside_it(cluster):
    """When the network holds node or master addresses, they are reserved (unless conflicts_check is off)."""
    cluster.run(opcodes.OpNetworkAdd(network_name="nodes", network="192.0.2.0/24"))
    assert cluster.query("network", ["name", "external_reservations"])["nodes"] == \
        ["192.0.2.0, 192.0.2.11, 192.0.2.12, 192.0.2.13, 192.0.2.255"]
    assert "Reserved 192.0.2.12 (the primary address of node node2) in network nodes" in cluster.log
    cluster.run(opcodes.OpNetworkRemove(network_name="nodes"))
    cluster.run(opcodes.OpNetworkAdd(network_name="nodes", network="192.0.2.0/24", conflicts_check=False))
    assert cluster.query("network", ["name", "reserved_count"])["nodes"] == [2]


@pytest.mark.parametrize("params, match, ecode", [
    ({"network": "198.51.100.128/25"}, "overlaps network 'net1' \\(198.51.100.0/24\\)", "resource_not_unique"),
    ({"network": "198.51.0.0/16"}, "overlaps network 'net1'", "resource_not_unique"),
    ({"network": "203.0.113.0/24", "gateway": "198.51.100.1"}, "gateway 198.51.100.1 is outside network",
     "wrong_input"),
    ({"network": "203.0.113.0/24", "gateway": "203.0.113.255"}, "network or broadcast address", "wrong_input"),
    ({"network": "203.0.113.0/24", "add_reserved_ips": ["203.0.113.9", "10.0.0.1"]},
     "cannot reserve 10.0.0.1: it is outside network 203.0.113.0/24", "wrong_input"),
    ({"network": "203.0.113.0/24", "network6": "2001:db9::/64", "gateway6": "2001:db8::1"},
     "IPv6 gateway 2001:db8::1 is outside IPv6 network", "wrong_input"),
    ({"network": "203.0.113.0/24", "network6": "2001:db8::/48"}, "IPv6 network 2001:db8::/48 overlaps",
     "resource_not_unique"),
])
def test_network_add_refusals(cluster, params, match, ecode):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24", network6="2001:db8::/64"))
    cluster.refused(opcodes.OpNetworkAdd(network_name="net2", **params), match, ecode)


def test_bad_tags_are_refused_before_any_job():
    from genet import errors
    with pytest.raises(errors.OpPrereqError, match="invalid tag 'bad tag'"):
        opcodes.OpNetworkAdd(network_name="net2", network="203.0.113.0/24", tags=["bad tag"])
    with pytest.raises(errors.OpPrereqError, match="invalid tag 'a,b'"):
        opcodes.OpInstanceCreate(instance_name="i1", disk_template="diskless", tags=["a,b"])


def test_network_add_refuses_a_taken_name(cluster):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    cluster.refused(opcodes.OpNetworkAdd(network_name="net1", network="203.0.113.0/24"),
                    "network 'net1' already exists", "already_exists")


def test_network_rename_keeps_its_connections_and_refuses_a_taken_name(cluster):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    cluster.run(opcodes.OpNetworkAdd(network_name="net2", network="203.0.113.0/24"))
    cluster.run(opcodes.OpNetworkConnect(network_name="net1", group_name="default", network_mode="bridged",
                                         network_link="br1"))
    cluster.refused(opcodes.OpNetworkRename(network_name="net1", new_name="net2"),
                    "a network 'net2' already exists", "already_exists")
    cluster.refused(opcodes.OpNetworkRename(network_name="nope", new_name="x"), "network .nope. does not exist",
                    "unknown_entity")
    cluster.run(opcodes.OpNetworkRename(network_name="net1", new_name="lan"))
    assert cluster.query("network", ["name", "group_list"])["lan"] == [[["default", "bridged", "br1", ""]]]


def test_network_modify_moves_the_gateway_and_changes_reservations(cluster):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/29", gateway="198.51.100.1",
                                     add_reserved_ips=["198.51.100.4"]))
    changes = cluster.run(opcodes.OpNetworkSetParams(
        network_name="net1", gateway="198.51.100.6", mac_prefix="aa:00:01",
        add_reserved_ips=["198.51.100.2"], remove_reserved_ips=["198.51.100.4", "198.51.100.5"]))
    assert changes == [["gateway", "198.51.100.6"], ["mac_prefix", "aa:00:01"],
                       ["add_reserved_ips", "198.51.100.2"], ["remove_reserved_ips", "198.51.100.4,198.51.100.5"]]
    assert cluster.query("network", ["name", "map", "gateway"])["net1"] == ["X.X...XX", "198.51.100.6"]
    assert "Address 198.51.100.5 is not reserved externally; nothing to release" in cluster.log
    cluster.run(opcodes.OpNetworkSetParams(network_name="net1", gateway="none", mac_prefix="none"))
    assert cluster.query("network", ["name", "map", "gateway", "mac_prefix"])["net1"] == ["X.X....X", None, None]


@pytest.mark.parametrize("params, match, ecode", [
    ({"remove_reserved_ips": ["198.51.100.1"]}, "cannot release 198.51.100.1: it is the gateway", "wrong_input"),
    ({"remove_reserved_ips": ["198.51.100.0"]}, "network or broadcast address", "wrong_input"),
    ({"add_reserved_ips": ["203.0.113.1"]}, "cannot reserve 203.0.113.1: it is outside network", "wrong_input"),
    ({"gateway": "203.0.113.1"}, "gateway 203.0.113.1 is outside network", "wrong_input"),
    ({"gateway": "198.51.100.4"}, "gateway 198.51.100.4 is already reserved", "resource_not_unique"),
    ({"gateway6": "2001:db8::1", "network6": "2001:db9::/64"}, "outside IPv6 network", "wrong_input"),
    ({}, "no changes requested", "wrong_input"),
])
def test_network_modify_refusals(cluster, params, match, ecode):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24", gateway="198.51.100.1",
                                     add_reserved_ips=["198.51.100.4"]))
    cluster.refused(opcodes.OpNetworkSetParams(network_name="net1", **params), match, ecode)


def test_connect_and_disconnect_a_group(cluster):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    assert cluster.run(opcodes.OpNetworkConnect(group_name="default", network_name="net1",
                                                network_mode="openvswitch", network_link="sw0",
                                                network_vlan=":100")) is True
    assert cluster.group("default")["networks"] == {
        cluster.network("net1")["uuid"]: {"mode": "openvswitch", "link": "sw0", "vlan": ":100"}}
    assert cluster.query("network", ["name", "group_list", "group_cnt"])["net1"] == \
        [[["default", "openvswitch", "sw0", ":100"]], 1]
    assert cluster.query("group", ["name", "networks"])["default"] == [["net1"]]
    assert cluster.run(opcodes.OpNetworkConnect(group_name="default", network_name="net1",
                                                network_mode="openvswitch", network_link="sw0",
                                                network_vlan=":100")) is False
    cluster.refused(opcodes.OpNetworkConnect(group_name="default", network_name="net1", network_mode="bridged",
                                             network_link="br0"), "already connected .* disconnect it first",
                    "wrong_state")
    assert cluster.run(opcodes.OpNetworkDisconnect(group_name="default", network_name="net1")) is True
    assert cluster.run(opcodes.OpNetworkDisconnect(group_name="default", network_name="net1")) is False
    assert "Network net1 is not connected to node group default" in cluster.log


@pytest.mark.parametrize("params, match", [
    ({"network_mode": "bridged", "network_link": ""}, "NIC mode bridged needs a link"),
    ({"network_mode": "bridged", "network_link": "br0", "network_vlan": "100"}, "a VLAN needs NIC mode openvswitch"),
    ({"network_mode": "openvswitch", "network_link": "sw0", "network_vlan": "abc"}, "invalid VLAN 'abc'"),
])
def test_connect_refuses_bad_nic_parameters(cluster, params, match):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    cluster.refused(opcodes.OpNetworkConnect(group_name="default", network_name="net1", **params), match,
                    "wrong_input")


def test_connect_refuses_addresses_of_the_group_in_the_network_unless_told(cluster):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    cluster.add_instance("inst1", "node2", [{"ip": "198.51.100.7"}])
    op = dict(group_name="default", network_name="net1", network_mode="routed", network_link="")
    cluster.refused(opcodes.OpNetworkConnect(**op), "NIC 0 of instance inst1 has address 198.51.100.7",
                    "wrong_state")
    cluster.run(opcodes.OpNetworkConnect(conflicts_check=False, **op))


def test_network_in_use_cannot_be_disconnected_or_removed(cluster):
    """When an instance NIC uses a network, disconnect and remove (even forced) are refused."""
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    cluster.run(opcodes.OpNetworkConnect(group_name="default", network_name="net1", network_mode="bridged",
                                         network_link="br0"))
    cluster.add_instance("inst1", "node2", [{"network": "net1", "ip": "198.51.100.9"}])
    assert cluster.query("network", ["name", "inst_list", "inst_cnt"])["net1"] == [["inst1"], 1]
    cluster.refused(opcodes.OpNetworkDisconnect(group_name="default", network_name="net1"),
                    "used by instance\\(s\\) inst1 in node group 'default'", "wrong_state")
    cluster.refused(opcodes.OpNetworkRemove(network_name="net1", force=True),
                    "network 'net1' is used by instance\\(s\\) inst1", "wrong_state")


def test_network_remove_refuses_a_connected_network_unless_forced(cluster):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    cluster.run(opcodes.OpNetworkConnect(group_name="default", network_name="net1", network_mode="bridged",
                                         network_link="br0"))
    cluster.refused(opcodes.OpNetworkRemove(network_name="net1"),
                    "still connected to node group\\(s\\) default", "wrong_state")
    cluster.run(opcodes.OpNetworkRemove(network_name="net1", force=True))
    assert cluster.cfg.snapshot()["networks"] == {}
    assert cluster.group("default")["networks"] == {}
    cluster.refused(opcodes.OpNetworkRemove(network_name="net1"), "network 'net1' does not exist",
                    "unknown_entity")


def test_tags_reach_groups_and_networks_by_name(cluster):
    cluster.run(opcodes.OpNetworkAdd(network_name="net1", network="198.51.100.0/24"))
    cluster.run(opcodes.OpTagsSet(kind="nodegroup", name="default", tags=["rack:1"]))
    cluster.run(opcodes.OpTagsSet(kind="network", name="net1", tags=["vlan:7", "dmz"]))
    assert cluster.run(opcodes.OpTagsGet(kind="network", name="net1")) == ["dmz", "vlan:7"]
    assert cluster.query("group", ["name", "tags"])["default"] == [["rack:1"]]
    cluster.run(opcodes.OpTagsDel(kind="network", name="net1", tags=["dmz"]))
    assert cluster.query("network", ["name", "tags"])["net1"] == [["vlan:7"]]
    cluster.refused(opcodes.OpTagsSet(kind="network", name="net9", tags=["x"]), "network 'net9' does not exist",
                    "unknown_entity")


def test_group_and_network_queries_filter_and_mark_unknown_fields(cluster):
    cluster.run(opcodes.OpGroupAdd(group_name="rack2"))
    data = cluster.cfg.snapshot()
    result = query.query_groups(data, ["name", "bogus"], ["=", "node_cnt", 0])
    assert result["data"] == [[[0, "rack2"], [1, None]]]
    assert result["fields"][1]["kind"] == "unknown"
    with pytest.raises(errors.ParameterError, match="bogus"):
        query.query_networks(data, ["name"], ["=", "bogus", 1])
