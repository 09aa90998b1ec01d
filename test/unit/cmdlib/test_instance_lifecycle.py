"""Instance create, remove, start, stop, reboot, rename, reinstall and console, run in-process
(conftest.Cluster): the real logical units against the nodes' own procedures."""
from __future__ import annotations

import pytest

from genet import config, errors, paths
from genet.opcodes import (OpInstanceConsole, OpInstanceCreate, OpInstanceQueryData, OpInstanceReboot,
                           OpInstanceReinstall, OpInstanceRemove, OpInstanceRename, OpInstanceShutdown,
                           OpInstanceStartup, OpNodeSetParams)


def create(cluster, name="web1", template="file", node="node2", **kwargs):
    disks = kwargs.pop("disks", [{"size": 8}] if template != "diskless" else [])
    return cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, pnode=node, disks=disks,
                                        os_type="noop", beparams={"memory": 128}, **kwargs))


def test_create_makes_the_disks_records_the_instance_and_starts_it(cluster):
    create(cluster, disks=[{"size": 8}, {"size": 4, "format": "qcow2"}])
    inst = cluster.instance("web1")
    assert (inst["primary_node"], inst["disk_template"], inst["admin_state"]) == ("node2", "file", "up")
    assert [d["size"] for d in inst["disks"]] == [8, 4]
    assert sorted(f.rsplit(".", 1)[1] for f in cluster.nodes["node2"].files("web1")) == ["qcow2", "raw"]
    assert cluster.running() == {"node1": [], "node2": ["web1"], "node3": []}
    assert cluster.nodes["node2"].hv.info("web1")["memory"] == 128


def test_create_without_start_leaves_it_down_and_the_config_committed_on_a_majority(cluster):
    create(cluster, name="db1", start=False)
    assert cluster.instance("db1")["admin_state"] == "down" and cluster.running()["node2"] == []
    holding = []
    for name, node in cluster.nodes.items():        # the job ends once a majority acknowledged
        with node.acting():
            if "db1" in config.load(paths.config_file())["instances"]:
                holding.append(name)
    assert "node1" in holding and len(holding) >= 2


@pytest.mark.parametrize("kwargs, message, ecode", [
    ({"node": "node9"}, "node 'node9' is not in the cluster", "unknown_entity"),
    ({"os_type": "nosuchos"}, "OS 'nosuchos' cannot be used on node node2", "wrong_input"),
    ({"beparams": {"memory": 1 << 20}}, "not enough memory on node node2", "insufficient_resources"),
    ({"template": "file", "disks": []}, "needs at least one disk", "wrong_input"),
])
def test_a_create_that_cannot_work_is_refused_and_leaves_nothing(cluster, kwargs, message, ecode):
    args = {"name": "x1", "template": "file", "node": "node2", **kwargs}
    op = OpInstanceCreate(instance_name=args["name"], disk_template=args["template"], pnode=args["node"],
                          disks=args.get("disks", [{"size": 8}]), os_type=args.get("os_type", "noop"),
                          beparams=args.get("beparams", {"memory": 128}))
    cluster.refused(op, message, ecode)


def test_a_create_that_fails_on_the_node_removes_what_it_made(cluster):
    """When starting the new instance fails on its node, the job fails and the instance is not
    left half made: no disks, no config entry."""
    cluster.nodes["node2"].hv.fail_next("start", "no room for the guest")
    with pytest.raises(errors.OpExecError, match="no room for the guest"):
        create(cluster)
    assert cluster.instance("web1") is None
    assert cluster.nodes["node2"].files("web1") == [] and cluster.running()["node2"] == []


def test_a_name_in_use_is_refused(cluster):
    create(cluster, template="diskless")
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="diskless", pnode="node3", os_type="noop"),
                    "instance 'web1' already exists", "already_exists")


def test_shutdown_startup_and_reboot_follow_the_admin_state(cluster):
    create(cluster)
    node = cluster.nodes["node2"]
    pid = node.hv.info("web1")["pid"]
    cluster.run(OpInstanceShutdown(instance_name="web1", timeout=5))
    assert cluster.instance("web1")["admin_state"] == "down" and cluster.running()["node2"] == []
    cluster.run(OpInstanceStartup(instance_name="web1"))
    assert cluster.instance("web1")["admin_state"] == "up" and cluster.running()["node2"] == ["web1"]
    started = node.hv.info("web1")["pid"]
    assert started != pid
    cluster.run(OpInstanceReboot(instance_name="web1", reboot_type="hard"))
    assert node.hv.info("web1")["pid"] == started                 # a hard reboot keeps the process
    cluster.run(OpInstanceReboot(instance_name="web1", reboot_type="full", shutdown_timeout=5))
    assert node.hv.info("web1")["pid"] != started and cluster.running()["node2"] == ["web1"]


def test_startup_with_temporary_parameters_and_paused_records_neither(cluster):
    create(cluster, start=False)
    cluster.run(OpInstanceStartup(instance_name="web1", beparams={"memory": 256}, hvparams={"kernel_args": "single"},
                                  startup_paused=True))
    info = cluster.nodes["node2"].hv.info("web1")
    assert (info["memory"], info["runstate"]) == (256, "paused")
    inst = cluster.instance("web1")
    assert (inst["admin_state"], inst["beparams"]["maxmem"], inst["hvparams"]) == ("up", 128, {})


def test_startup_refuses_temporary_parameters_the_hypervisor_does_not_take(cluster):
    create(cluster, start=False)
    cluster.refused(OpInstanceStartup(instance_name="web1", hvparams={"warp": "9"}), "unknown hvparams: warp")
    cluster.refused(OpInstanceStartup(instance_name="web1", beparams={"memory": 8192}),
                    "not enough memory on node node2 to start web1: needed 8192 MiB", "insufficient_resources")


def test_ignore_offline_only_records_the_state_of_an_instance_on_an_offline_node(cluster):
    create(cluster, start=False)
    cluster.run(OpNodeSetParams(node_name="node2", offline=True))
    cluster.refused(OpInstanceStartup(instance_name="web1"), "node2 is offline")
    cluster.run(OpInstanceStartup(instance_name="web1", ignore_offline_nodes=True))
    assert cluster.instance("web1")["admin_state"] == "up" and cluster.running()["node2"] == []
    cluster.run(OpInstanceShutdown(instance_name="web1", ignore_offline_nodes=True))
    assert cluster.instance("web1")["admin_state"] == "down"


def test_rebooting_a_stopped_instance_starts_it_and_the_default_is_hard(cluster):
    create(cluster, start=False)
    assert OpInstanceReboot(instance_name="web1").reboot_type == "hard"      # Ganeti's default
    cluster.run(OpInstanceReboot(instance_name="web1"))
    assert cluster.instance("web1")["admin_state"] == "up" and cluster.running()["node2"] == ["web1"]


def test_shutdown_with_no_remember_keeps_the_recorded_state(cluster):
    create(cluster)
    cluster.run(OpInstanceShutdown(instance_name="web1", timeout=5, no_remember=True))
    assert cluster.instance("web1")["admin_state"] == "up" and cluster.running()["node2"] == []


def test_operations_on_an_unknown_instance_are_refused(cluster):
    for op in (OpInstanceStartup(instance_name="nope"), OpInstanceShutdown(instance_name="nope"),
               OpInstanceRemove(instance_name="nope"), OpInstanceReboot(instance_name="nope")):
        cluster.refused(op, "instance 'nope' does not exist", "unknown_entity")


def test_remove_stops_the_instance_and_deletes_disks_and_entry(cluster):
    create(cluster)
    cluster.run(OpInstanceRemove(instance_name="web1", shutdown_timeout=5))
    assert cluster.instance("web1") is None
    assert cluster.nodes["node2"].files("web1") == [] and cluster.running()["node2"] == []


def test_remove_of_an_instance_whose_node_is_unreachable_needs_ignore_failures(cluster):
    create(cluster, start=False)
    cluster.nodes["node2"].reachable = False
    with pytest.raises(errors.OpExecError, match="node2"):
        cluster.run(OpInstanceRemove(instance_name="web1"))
    assert cluster.instance("web1") is not None
    cluster.run(OpInstanceRemove(instance_name="web1", ignore_failures=True))
    assert cluster.instance("web1") is None


def test_rename_moves_the_disks_and_the_entry(cluster):
    create(cluster, start=False)
    cluster.run(OpInstanceRename(instance_name="web1", new_name="web2"))
    assert cluster.instance("web1") is None and cluster.instance("web2")["primary_node"] == "node2"
    assert cluster.nodes["node2"].files("web1") == [] and len(cluster.nodes["node2"].files("web2")) == 1


def test_rename_to_a_name_in_use_is_refused(cluster):
    create(cluster, start=False)
    create(cluster, name="web2", template="diskless", start=False)
    cluster.refused(OpInstanceRename(instance_name="web1", new_name="web2"), "web2", "already_exists")


def test_rename_of_a_running_instance_is_refused(cluster):
    create(cluster)
    cluster.refused(OpInstanceRename(instance_name="web1", new_name="web2"), "running", "wrong_state")


def test_reinstall_runs_the_os_again_on_a_stopped_instance(cluster):
    create(cluster, start=False)
    cluster.run(OpInstanceReinstall(instance_name="web1"))
    assert any("reinstall" in line for line in cluster.log)
    create(cluster, name="web2")
    cluster.refused(OpInstanceReinstall(instance_name="web2"), "running", "wrong_state")


def test_query_data_reports_the_disks_in_ganeti_shape(cluster):
    create(cluster)
    info = cluster.run(OpInstanceQueryData(instances=["web1"]))["web1"]
    assert (info["pnode"], info["run_state"], info["config_state"]) == ("node2", "up", "up")
    pstatus = info["disks"][0]["pstatus"]
    assert len(pstatus) == 7 and pstatus[0].endswith(".raw") and pstatus[5:] == [False, 1]
    assert info["disks"][0]["mirror"] is None


def test_console_tells_how_to_reach_the_guest(cluster):
    create(cluster)
    console = cluster.run(OpInstanceConsole(instance_name="web1"))
    assert (console["instance"], console["kind"], console["host"]) == ("web1", "ssh", "127.0.0.12")
    assert console["command"][0] == "socat" and console["command"][-1].startswith("UNIX-CONNECT:")
