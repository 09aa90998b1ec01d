"""Nodes joining, leaving and changing roles; cluster settings, redistribution, OS listing, tags
and the delay opcode, run in-process (conftest.Cluster)."""
from __future__ import annotations

from genet import config, paths
from genet.opcodes import (OpClusterDestroy, OpClusterQuery, OpClusterRedistConf, OpClusterSetParams,
                           OpInstanceCreate, OpInstanceRemove, OpNodeAdd, OpNodeRemove, OpNodeSetParams, OpOsDiagnose,
                           OpTagsDel, OpTagsGet, OpTagsSet, OpTestDelay)


def test_a_prepared_node_is_added_and_becomes_a_candidate_with_the_config(cluster):
    node4 = cluster.prepare_node("node4")
    result = cluster.run(OpNodeAdd(node_name="node4", primary_ip="127.0.0.14"))
    assert result == {"name": "node4", "primary_ip": "127.0.0.14", "promoted": ["node4"]}
    assert cluster.data()["nodes"]["node4"]["master_candidate"] is True
    with node4.acting():                       # the new candidate holds the config and the job queue
        assert "node4" in config.load(paths.config_file())["nodes"]
    assert any("Promoted node node4 to master candidate" in line for line in cluster.log)


def test_adding_a_machine_that_is_not_ready_or_already_in_is_refused(cluster):
    cluster.refused(OpNodeAdd(node_name="node4", primary_ip="127.0.0.14"),
                    "cannot contact node 'node4' at 127.0.0.14", "environment_error")
    cluster.refused(OpNodeAdd(node_name="node2", primary_ip="127.0.0.12"), "node 'node2' is already in the cluster",
                    "already_exists")
    cluster.prepare_node("node4")
    cluster.refused(OpNodeAdd(node_name="node4", primary_ip="127.0.0.12"),
                    "address 127.0.0.12 is already used by node 'node2'", "resource_not_unique")


def test_a_node_without_instances_is_removed_and_leaves_the_cluster(cluster):
    cluster.run(OpNodeRemove(node_name="node3"))
    assert "node3" not in cluster.data()["nodes"]
    with cluster.nodes["node3"].acting():       # it forgot the cluster
        assert not paths.config_file().exists() and not paths.cluster_cert().exists()


def test_removing_the_master_or_a_node_with_instances_is_refused(cluster):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="diskless", pnode="node2", os_type="noop",
                                 beparams={"memory": 64}, start=False))
    cluster.refused(OpNodeRemove(node_name="node2"), "still holds instance\\(s\\) web1", "wrong_state")
    cluster.refused(OpNodeRemove(node_name="node1"), "the master node cannot be removed", "wrong_input")


def test_a_candidate_is_demoted_only_when_another_takes_its_place(cluster):
    cluster.refused(OpNodeSetParams(node_name="node3", master_candidate=False),
                    "not enough master candidates \\(desired 3, new value will be 2\\)", "wrong_state")
    cluster.run(OpClusterSetParams(candidate_pool_size=2))
    cluster.run(OpNodeSetParams(node_name="node3", master_candidate=False))
    assert cluster.data()["nodes"]["node3"]["master_candidate"] is False
    cluster.run(OpNodeSetParams(node_name="node2", drained=True, auto_promote=True))
    node2 = cluster.data()["nodes"]["node2"]
    assert node2["drained"] is True and node2["master_candidate"] is False
    assert cluster.data()["nodes"]["node3"]["master_candidate"] is True       # promoted in its place


def test_cluster_settings_change_and_are_reported(cluster):
    cluster.run(OpClusterSetParams(candidate_pool_size=2, max_running_jobs=5))
    info = cluster.run(OpClusterQuery())
    assert (info["candidate_pool_size"], info["max_running_jobs"]) == (2, 5)
    assert info["master"] == "node1" and info["name"] == "c1"


def test_redist_conf_brings_a_candidate_that_lost_its_copy_back(cluster):
    with cluster.nodes["node3"].acting():
        paths.config_file().unlink()
    cluster.run(OpClusterRedistConf())
    with cluster.nodes["node3"].acting():
        assert config.load(paths.config_file())["serial_no"] == cluster.data()["serial_no"]


def test_redist_conf_gives_the_candidates_the_masters_cluster_domain_secret(cluster):
    """When the configuration is redistributed, every candidate holds the master's cluster domain
    secret (made first, for a cluster without one), so a new master prepares remote exports with it."""
    cluster.run(OpClusterRedistConf())
    secrets = {}
    for name in ("node1", "node2", "node3"):
        with cluster.nodes[name].acting():
            secrets[name] = paths.cluster_domain_secret().read_text()
    assert len(set(secrets.values())) == 1 and len(secrets["node1"].strip()) == 40


def test_os_diagnose_lists_the_bundled_definitions_on_every_node(cluster):
    found = {entry["name"]: entry for entry in cluster.run(OpOsDiagnose())}
    assert found["noop"]["valid"] is True and sorted(found["noop"]["node_status"]) == ["node1", "node2", "node3"]


def test_tags_are_set_read_and_deleted(cluster):
    cluster.run(OpTagsSet(kind="node", name="node2", tags=["rack:a", "ssd"]))
    assert cluster.run(OpTagsGet(kind="node", name="node2")) == ["rack:a", "ssd"]
    cluster.run(OpTagsDel(kind="node", name="node2", tags=["ssd"]))
    assert cluster.run(OpTagsGet(kind="node", name="node2")) == ["rack:a"]
    cluster.refused(OpTagsDel(kind="node", name="node2", tags=["nope"]), "nope")


def test_delay_sleeps_on_the_master_clock_and_on_the_nodes(cluster):
    before = cluster.clock.time()
    assert cluster.run(OpTestDelay(duration=30, on_master=True, repeat=2)) is True      # Ganeti's: two
    assert cluster.clock.time() - before == 60
    assert cluster.run(OpTestDelay(duration=30, on_master=True)) is True                  # once
    assert cluster.clock.time() - before == 90
    assert cluster.run(OpTestDelay(duration=0, on_master=False, on_nodes=["node2", "node3"])) is True


def test_destroy_is_refused_until_only_the_master_remains_without_instances(cluster):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="diskless", pnode="node1", os_type="noop",
                                 beparams={"memory": 64}, start=False))
    cluster.refused(OpClusterDestroy(), "cluster still has 2 other node\\(s\\): node2, node3; remove them first",
                    "wrong_state")
    cluster.run(OpClusterSetParams(candidate_pool_size=1))
    for node in ("node2", "node3"):
        cluster.run(OpNodeRemove(node_name=node))
    cluster.refused(OpClusterDestroy(), "cluster still has 1 instance\\(s\\)", "wrong_state")
    cluster.run(OpInstanceRemove(instance_name="web1"))
    assert cluster.run(OpClusterDestroy()) == "node1"


def test_node_parameters_and_resource_states_are_the_nodes_own(cluster):
    cluster.prepare_node("node4")
    cluster.run(OpNodeAdd(node_name="node4", primary_ip="127.0.0.14", ndparams={"ssh_port": 2222},
                          hv_state={"fake": {"mem_total": 4096}}, disk_state={"file": {"disk_total": 10240}}))
    node = cluster.data().nodes["node4"]
    assert (node.ndparams, node.hv_state, node.disk_state) == (
        {"ssh_port": 2222}, {"fake": {"mem_total": 4096}}, {"file": {"disk_total": 10240}})
    result = cluster.run(OpNodeSetParams(node_name="node4", ndparams={"ssh_port": "default", "cpu_speed": 2.0}))
    assert ["ndparams/cpu_speed", "2.0"] in result and cluster.data().nodes["node4"].ndparams == {"cpu_speed": 2.0}
    cluster.refused(OpNodeSetParams(node_name="node4", powered=False), "has no out-of-band program", "wrong_input")
    cluster.run(OpNodeSetParams(node_name="node4", ndparams={"oob_program": "/bin/true"}))
    cluster.run(OpNodeSetParams(node_name="node4", powered=False))
    assert cluster.data().nodes["node4"].powered is False
