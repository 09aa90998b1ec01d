"""gnt-cluster modify's settings beyond parameter defaults, run in-process (conftest.Cluster):
the user-id pool, the default allocator, reserved volumes, the DRBD usermode helper, the static
resource state, and the options genet refuses with their reason."""
from __future__ import annotations

import pytest

from genet import config, errors, paths
from genet.opcodes import (OpClusterQuery, OpClusterSetParams, OpClusterVerify, OpGroupEvacuate, OpInstanceCreate,
                           OpGroupSetParams, OpInstanceMultiAlloc, OpNodeEvacuate, OpNodeSetParams)


def info(cluster) -> dict:
    return cluster.run(OpClusterQuery())


def ssconf(cluster, node: str, key: str) -> str:
    with cluster.nodes[node].acting():
        return config.ssconf_value(key)


def test_uid_pool_is_set_added_to_and_removed_from_and_reaches_every_nodes_ssconf(cluster):
    """When the pool is set, ranges added and one removed, info shows the sorted ranges and each
    node's ssconf uid_pool holds them one a line, as Ganeti's."""
    cluster.run(OpClusterSetParams(uid_pool=[[3000, 3009], [1000, 1000]]))
    cluster.run(OpClusterSetParams(add_uids=[[2000, 2004], [1000, 1000]]))
    assert info(cluster)["uid_pool"] == [[1000, 1000], [2000, 2004], [3000, 3009]]
    cluster.run(OpClusterSetParams(remove_uids=[[3000, 3009]]))
    cluster.ctx.redistribute(lambda *_: None)
    assert ssconf(cluster, "node3", "uid_pool") == "1000\n2000-2004"
    cluster.run(OpClusterSetParams(uid_pool=[]))
    assert info(cluster)["uid_pool"] == []


def test_removing_a_range_not_in_the_pool_is_refused(cluster):
    cluster.run(OpClusterSetParams(uid_pool=[[1000, 1009]]))
    cluster.refused(OpClusterSetParams(remove_uids=[[1000, 1004]]), "not found in the current user-id pool: 1000-1004",
                    "wrong_input")


@pytest.mark.parametrize("pool,why", [([[10, 5]], "larger than higher boundary"),
                                      ([[1, 2 ** 32]], "larger than 4294967295")])
def test_a_uid_range_out_of_order_or_bounds_is_refused(cluster, pool, why):
    with pytest.raises(errors.OpPrereqError, match=why):
        OpClusterSetParams(uid_pool=pool)


def test_max_tracked_jobs_is_refused_with_the_reason(cluster):
    cluster.refused(OpClusterSetParams(max_tracked_jobs=30), "tracks no job files", "wrong_input")


def test_settings_are_recorded_and_shown_by_info(cluster):
    """When maintenance, wiping, allocator parameters and the helper are set, /2/info shows them."""
    cluster.run(OpClusterSetParams(maintain_node_health=True, prealloc_wipe_disks=True,
                                   default_iallocator_params={"x": "1"}, drbd_helper="/usr/sbin/drbd-helper",
                                   reserved_lvs=["xenvg/backup.*"]))
    found = info(cluster)
    assert (found["maintain_node_health"], found["prealloc_wipe_disks"], found["default_iallocator_params"],
            found["drbd_usermode_helper"], found["reserved_lvs"]) == (
        True, True, {"x": "1"}, "/usr/sbin/drbd-helper", ["xenvg/backup.*"])
    cluster.ctx.redistribute(lambda *_: None)
    assert ssconf(cluster, "node2", "maintain_node_health") == "True"
    # modules not loaded here: the helper could not be compared, and the admin is told
    assert "Not checking drbd helper on node node2: its DRBD kernel module is not loaded" in cluster.log


def test_a_reserved_volume_that_is_no_regular_expression_is_refused(cluster):
    cluster.refused(OpClusterSetParams(reserved_lvs=["xenvg/(unclosed"]), "is not a regular expression")


def test_unknown_default_allocator_is_refused_and_empty_clears_it(cluster):
    assert info(cluster)["default_iallocator"] == "hail"
    cluster.refused(OpClusterSetParams(default_iallocator="dumb"), "iallocator 'dumb' is not available",
                    "wrong_input")
    cluster.run(OpClusterSetParams(default_iallocator=""))
    assert info(cluster)["default_iallocator"] == ""


def create(cluster, name, **nodes):
    cluster.run(OpInstanceCreate(instance_name=name, disk_template="file", os_type="noop", disks=[{"size": 8}],
                                 start=False, beparams={"memory": 128}, **nodes))


def test_without_a_default_allocator_placement_needs_nodes_or_an_allocator(cluster):
    """When the cluster has no default allocator, add and evacuate without -n or -I are refused
    with Ganeti's words; -n or -I hail still work; -I . means the (missing) default."""
    cluster.run(OpClusterSetParams(default_iallocator=""))
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="file", os_type="noop", disks=[{"size": 8}],
                                     start=False), "No iallocator or node given and no cluster-wide default iallocator")
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="file", os_type="noop", disks=[{"size": 8}],
                                     start=False, iallocator="."), "no cluster-wide default iallocator")
    create(cluster, "web1", pnode="node2")
    create(cluster, "web2", iallocator="hail")
    cluster.refused(OpNodeEvacuate(node_name="node2"), "No iallocator or node given")
    cluster.refused(OpGroupEvacuate(group_name="default"), "No iallocator was specified")
    cluster.refused(OpInstanceMultiAlloc(instances=[{"instance_name": "web9", "disk_template": "diskless",
                                                     "os_type": "noop", "disks": [], "nics": []}]),
                    "No iallocator was specified")
    cluster.refused(OpInstanceCreate(instance_name="web3", disk_template="file", os_type="noop", disks=[{"size": 8}],
                                     start=False, iallocator="dumb"), "iallocator 'dumb' is not available")


def test_with_the_default_allocator_add_places_the_instance_itself(cluster):
    create(cluster, "web1")
    assert cluster.instance("web1")["primary_node"] in cluster.nodes


def test_hypervisor_and_disk_state_keep_ganetis_keys_filled_in(cluster):
    cluster.run(OpClusterSetParams(hv_state={"fake": {"mem_total": "4096"}}, disk_state={"lvm-vg": {"disk_total": 10}}))
    cluster_cfg = cluster.data()["cluster"]
    assert cluster_cfg["hv_state"] == {"fake": {"cpu_node": 1, "cpu_total": 1, "mem_hv": 0, "mem_node": 0,
                                                "mem_total": 4096}}
    assert cluster_cfg["disk_state"] == {"lvm-vg": {"disk_total": 10, "disk_reserved": 0, "disk_overhead": 0}}


@pytest.mark.parametrize("opcode", [OpClusterSetParams, OpNodeSetParams, OpGroupSetParams])
@pytest.mark.parametrize("state,why", [
    ({"hv_state": {"fake": {"memory": 1}}}, r"unknown key\(s\) memory \(known: cpu_node"),
    ({"disk_state": {"lvm-vg": {"disk_total": "1G"}}}, "must be whole numbers")])
def test_resource_states_take_ganetis_keys_and_whole_numbers_only(opcode, state, why):
    """The cluster's, a node's and a group's states are checked alike, before any job."""
    names = {OpNodeSetParams: {"node_name": "node1"}, OpGroupSetParams: {"group_name": "default"}}
    with pytest.raises(errors.OpPrereqError, match=why):
        opcode(**names.get(opcode, {}), **state)


def test_unsetting_the_drbd_helper_is_refused_while_drbd_is_enabled(cluster):
    cluster.refused(OpClusterSetParams(drbd_helper=""), "Cannot disable drbd helper while DRBD is enabled")
    cluster.run(OpClusterSetParams(enabled_disk_templates=["file", "diskless"], drbd_helper=""))
    assert info(cluster)["drbd_usermode_helper"] == ""


def helper_file(cluster, monkeypatch, helpers: dict[str, str]) -> None:
    """Each node's DRBD module loaded, calling the helper given (GENET_DRBD_HELPER_FILE is read
    below the node's root: every node has its own)."""
    for name, helper in helpers.items():
        path = cluster.nodes[name].root / "sys-drbd-helper"
        path.write_text(helper + "\n")
    monkeypatch.setattr("genet.storage.drbd.backend.DrbdStorage.usermode_helper",
                        lambda self: (paths.root() / "sys-drbd-helper").read_text().strip()
                        if (paths.root() / "sys-drbd-helper").exists() else None)


def test_a_helper_other_than_the_nodes_is_refused_and_verify_reports_a_wrong_one(cluster, monkeypatch):
    """When the nodes' DRBD runs /bin/true, another helper is refused naming the node; once a node
    runs another, verify reports ENODEDRBDHELPER for it."""
    helper_file(cluster, monkeypatch, {"node1": "/bin/true", "node2": "/bin/true", "node3": "/bin/true"})
    cluster.refused(OpClusterSetParams(drbd_helper="/sbin/other"), "Error on node 'node1': drbd helper is /bin/true")
    cluster.run(OpClusterSetParams(drbd_helper="/bin/true"))
    assert cluster.run(OpClusterVerify())["ok"]
    helper_file(cluster, monkeypatch, {"node3": "/usr/lib/drbd/notify.sh"})
    result = cluster.run(OpClusterVerify())
    assert result["errors"] == [["ENODEDRBDHELPER", "node", "node3",
                                 "wrong drbd usermode helper: /usr/lib/drbd/notify.sh"]]


def test_verify_warns_of_volumes_no_disk_holds_unless_reserved(cluster, monkeypatch, tmp_path):
    """When the volume group holds a volume of no instance, verify warns of it on each node (the
    fake's one volume group is every node's) and still passes; once reserved, it is quiet."""
    from test_node_storage import FakeLvm
    lvm = FakeLvm(tmp_path / "lvm", monkeypatch)
    lvm.run("lvcreate", "-L", "8m", "-n", "backup1", "xenvg")
    cluster.ctx.redistribute(lambda *_: None)
    result = cluster.run(OpClusterVerify())
    assert result["ok"], result
    assert [line for line in cluster.log if "ENODEORPHANLV" in line or "is unknown" in line] == [
        f"  - WARNING: node {n}: volume xenvg/backup1 is unknown" for n in ("node1", "node2", "node3")]
    cluster.log.clear()
    cluster.run(OpClusterSetParams(reserved_lvs=["xenvg/backup[0-9]+"]))
    cluster.run(OpClusterVerify())
    assert not [line for line in cluster.log if "is unknown" in line]
