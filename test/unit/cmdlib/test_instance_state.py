"""Ganeti's offline instances, runtime memory, --new-primary, OS changes with private and secret
parameters, gnt-instance add's group, file driver, forthcoming instances and refusals, run in-process
(conftest.Cluster): the real logical units against the nodes' own procedures."""
from __future__ import annotations

import pytest

from genet import errors
from genet.opcodes import (OpGroupAdd, OpGroupAssignNodes, OpInstanceCreate, OpInstanceReboot, OpInstanceReinstall,
                           OpInstanceRemove, OpInstanceSetParams, OpInstanceShutdown, OpInstanceStartup,
                           OpNodeSetParams)
from genet.query.instance import instance_status


def create(cluster, name="web1", node="node2", **kwargs):
    return cluster.run(OpInstanceCreate(instance_name=name, disk_template=kwargs.pop("template", "file"),
                                        pnode=node, disks=kwargs.pop("disks", [{"size": 8}]), os_type=kwargs.pop("os_type", "noop"),
                                        beparams=kwargs.pop("beparams", {"memory": 128}), **kwargs))


def modify(cluster, name="web1", **kwargs):
    return cluster.run(OpInstanceSetParams(instance_name=name, **kwargs))


def test_an_offline_instance_cannot_start_and_comes_back_down_with_online(cluster):
    create(cluster, start=False)
    assert modify(cluster, offline=True) == [["admin_state", "offline"]]
    inst = cluster.instance("web1")
    assert inst["admin_state"] == "offline"
    assert instance_status(inst, {"offline": False}, None, True) == "ADMIN_offline"
    for op in (OpInstanceStartup(instance_name="web1"), OpInstanceReboot(instance_name="web1"),
               OpInstanceReinstall(instance_name="web1")):
        cluster.refused(op, "Instance 'web1' is marked to be offline", "wrong_state")
    assert cluster.running()["node2"] == []
    assert modify(cluster, offline=False) == [["admin_state", "down"]]
    cluster.run(OpInstanceStartup(instance_name="web1"))
    assert cluster.running()["node2"] == ["web1"]


def test_only_a_stopped_instance_goes_offline_and_online_needs_an_offline_one(cluster):
    create(cluster)
    cluster.refused(OpInstanceSetParams(instance_name="web1", offline=True), "is marked to be up", "wrong_state")
    cluster.run(OpInstanceShutdown(instance_name="web1", timeout=0, no_remember=True))
    cluster.run(OpInstanceShutdown(instance_name="web1", timeout=0))
    cluster.refused(OpInstanceSetParams(instance_name="web1", offline=False), "not offline", "wrong_state")
    cluster.run(OpInstanceStartup(instance_name="web1", no_remember=True))      # ERROR_up: runs while down
    cluster.refused(OpInstanceSetParams(instance_name="web1", offline=True), "is running on node2", "wrong_state")


def test_shutdown_of_an_offline_instance_needs_force_and_keeps_it_offline(cluster):
    """Ganeti's case for --force: an offline instance found running (ERROR_up)."""
    create(cluster, start=False)
    modify(cluster, offline=True)
    cluster.nodes["node2"].hv.start(cluster.instance("web1"))       # started behind genet's back
    cluster.refused(OpInstanceShutdown(instance_name="web1"), "without --force", "wrong_state")
    cluster.run(OpInstanceShutdown(instance_name="web1", timeout=0, force=True))
    assert cluster.running()["node2"] == [] and cluster.instance("web1")["admin_state"] == "offline"


def test_runtime_memory_balloons_a_running_instance_within_minmem_and_maxmem(cluster):
    create(cluster, beparams={"maxmem": 256, "minmem": 64})
    assert modify(cluster, runtime_mem=96) == [["runtime_memory", 96]]
    assert cluster.nodes["node2"].hv.info("web1")["memory"] == 96
    assert cluster.instance("web1")["beparams"] == {"maxmem": 256, "minmem": 64}      # not recorded
    cluster.refused(OpInstanceSetParams(instance_name="web1", runtime_mem=32),
                    "must have memory between 64 and 256 MiB unless --force is given", "wrong_input")
    modify(cluster, runtime_mem=32, force=True)
    assert cluster.nodes["node2"].hv.info("web1")["memory"] == 32
    cluster.run(OpInstanceShutdown(instance_name="web1", timeout=0))
    cluster.refused(OpInstanceSetParams(instance_name="web1", runtime_mem=128), "Instance web1 is not running",
                    "wrong_state")


def test_new_primary_moves_the_record_of_a_stopped_file_instance(cluster):
    create(cluster, start=False)
    cluster.refused(OpInstanceSetParams(instance_name="web1", pnode="node2"), "already the primary node")
    assert modify(cluster, pnode="node3") == [["primary_node", "node3"]]
    assert cluster.instance("web1")["primary_node"] == "node3"
    create(cluster, name="up1")
    cluster.refused(OpInstanceSetParams(instance_name="up1", pnode="node3"), "is marked to be up", "wrong_state")
    create(cluster, name="plain1", template="diskless", disks=[], start=False)
    cluster.refused(OpInstanceSetParams(instance_name="plain1", pnode="node3"),
                    "--new-primary is for file and sharedfile instances", "wrong_input")


def test_new_primary_with_force_does_not_ask_an_offline_old_primary(cluster):
    create(cluster, start=False)
    cluster.run(OpNodeSetParams(node_name="node2", offline=True))
    cluster.refused(OpInstanceSetParams(instance_name="web1", pnode="node3"), "node node2 is offline")
    modify(cluster, pnode="node3", force=True)
    assert cluster.instance("web1")["primary_node"] == "node3"


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    """An OS whose create script writes the OSP_ variables it got next to the test."""
    base, out = tmp_path / "os", tmp_path / "osp"
    d = base / "recorder"
    d.mkdir(parents=True)
    (d / "ganeti_api_version").write_text("20\n")
    (d / "variants.list").write_text("small\n")
    (d / "parameters.list").write_text("colour the colour\npassword the root password\n")
    for script in ("create", "import", "export", "rename", "verify"):
        body = f"env | grep ^OSP_ | sort > {out}.$INSTANCE_NAME\n" if script == "create" else ""
        (d / script).write_text(f"#!/bin/sh\n{body}exit 0\n")
        (d / script).chmod(0o755)
    monkeypatch.setenv("GENET_OS_SEARCH_PATH", str(base))
    return lambda name: (tmp_path / f"osp.{name}").read_text().split()


def test_private_params_are_stored_redacted_and_secret_ones_reach_the_script_only(cluster, recorder):
    create(cluster, os_type="recorder+small", start=False, osparams={"colour": "red"},
           osparams_private={"password": "hunter2"})
    assert recorder("web1") == ["OSP_COLOUR=red", "OSP_PASSWORD=hunter2"]
    inst = cluster.instance("web1")
    assert (inst["osparams"], inst["osparams_private"]) == ({"colour": "red"}, {"password": "hunter2"})
    cluster.run(OpInstanceReinstall(instance_name="web1", osparams_secret={"password": "s3cret"}))
    assert recorder("web1") == ["OSP_COLOUR=red", "OSP_PASSWORD=s3cret"]
    assert "s3cret" not in cluster.config_text()
    assert modify(cluster, osparams={"colour": "blue"}, osparams_private={"password": "new"}) == \
        [["os/colour", "blue"], ["os_private/password", "<redacted>"]]
    inst = cluster.instance("web1")
    assert (inst["osparams"], inst["osparams_private"]) == ({"colour": "blue"}, {"password": "new"})
    cluster.refused(OpInstanceSetParams(instance_name="web1", osparams={"size": "1"}),
                    r"does not support the parameter\(s\) size")


def test_os_type_changes_the_record_and_force_variant_accepts_an_unlisted_variant(cluster, recorder):
    create(cluster, start=False)
    cluster.refused(OpInstanceSetParams(instance_name="web1", os_name="recorder+huge"), "cannot be used on node node2")
    assert modify(cluster, os_name="recorder+huge", force_variant=True) == [["os", "recorder+huge"]]
    assert cluster.instance("web1")["os"] == "recorder+huge"


@pytest.mark.parametrize("kwargs, message", [
    ({"ext_params": {"a": "1"}}, "genet has no ExtStorage"),
    ({"file_storage_dir": "mine"}, "cannot place one instance elsewhere"),
    ({"file_driver": "blktap", "disk_template": "sharedfile"}, "has Ganeti's loop driver only"),
    ({"file_driver": "loop"}, "--file-driver is for the file and sharedfile disk templates, not None"),
])
def test_modify_refuses_what_genet_has_not(cluster, kwargs, message):
    create(cluster, start=False)
    cluster.refused(OpInstanceSetParams(instance_name="web1", **kwargs), message, "wrong_input")


def test_add_places_the_instance_in_the_group_asked_for(cluster):
    cluster.run(OpGroupAdd(group_name="rack2"))
    cluster.run(OpGroupAssignNodes(group_name="rack2", nodes=["node2", "node3"]))
    cluster.run(OpInstanceCreate(instance_name="g1", disk_template="file", disks=[{"size": 8}], os_type="noop",
                                 beparams={"memory": 128}, group_name="rack2"))
    assert cluster.instance("g1")["primary_node"] in ("node2", "node3")
    cluster.refused(OpInstanceCreate(instance_name="g2", disk_template="file", disks=[{"size": 8}],
                                     os_type="noop", pnode="node1", group_name="rack2"),
                    "node node1 is not in node group rack2")
    cluster.refused(OpInstanceCreate(instance_name="g3", disk_template="file", disks=[{"size": 8}],
                                     os_type="noop", group_name="nosuch"), "node group 'nosuch' does not exist")


@pytest.mark.parametrize("kwargs, message", [
    ({"instance_communication": True}, "genet cannot serve instance communication"),
    ({"file_storage_dir": "mine"}, "cannot place one instance elsewhere"),
    ({"file_driver": "blktap2"}, "has Ganeti's loop driver only"),
])
def test_add_refuses_what_genet_has_not_and_creates_nothing(cluster, kwargs, message):
    cluster.refused(OpInstanceCreate(instance_name="x1", disk_template="file", disks=[{"size": 8}], os_type="noop",
                                     pnode="node2", **kwargs), message, "wrong_input")
    assert cluster.instance("x1") is None


def test_add_with_the_loop_file_driver_creates_the_instance(cluster):
    create(cluster, file_driver="loop", start=False)
    assert cluster.instance("web1")["disk_template"] == "file"


def test_forthcoming_reserves_the_instance_and_commit_creates_it(cluster):
    create(cluster, forthcoming=True, nics=[{"ip": "192.0.2.10"}])
    inst = cluster.instance("web1")
    assert (inst["forthcoming"], inst["admin_state"], inst["primary_node"]) == (True, "down", "node2")
    assert cluster.nodes["node2"].files("web1") == [] and cluster.running()["node2"] == []
    for op in (OpInstanceStartup(instance_name="web1"), OpInstanceSetParams(instance_name="web1", offline=True)):
        cluster.refused(op, "instance web1 is forthcoming", "wrong_state")
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2",
                                     disks=[{"size": 8}], os_type="noop"), "instance 'web1' already exists")
    create(cluster, commit=True, nics=[{"ip": "192.0.2.10"}])
    inst = cluster.instance("web1")
    assert "forthcoming" not in inst and inst["admin_state"] == "up" and cluster.running()["node2"] == ["web1"]
    assert len(cluster.nodes["node2"].files("web1")) == 1


def test_a_failed_commit_keeps_the_reservation_and_commit_needs_one(cluster):
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2", disks=[{"size": 8}],
                                     os_type="noop", commit=True), "there is no forthcoming instance 'web1'")
    create(cluster, forthcoming=True)
    cluster.nodes["node2"].hv.fail_next("start", "no room for the guest")
    with pytest.raises(errors.OpExecError, match="no room for the guest"):
        create(cluster, commit=True)
    assert cluster.instance("web1")["forthcoming"] is True and cluster.nodes["node2"].files("web1") == []
    cluster.run(OpInstanceRemove(instance_name="web1"))
    assert cluster.instance("web1") is None
