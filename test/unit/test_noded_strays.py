"""A node cut off from the master stops what the config placed elsewhere before it serves
instance or disk requests again, and never gives a disk a running guest holds to a resync."""
from __future__ import annotations

import os
import time

import pytest

from genet import errors, paths
from genet.hypervisor.fake import FakeHypervisor
from genet.noded import CUT_OFF_AFTER
from genet.rpc_defs import Heartbeat
from test_noded_epoch import node_procedures


class RecordingHypervisor(FakeHypervisor):
    """The fake hypervisor, noting the order of pauses and stops."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple[str, str]] = []

    def pause(self, name):
        self.calls.append(("pause", name))
        super().pause(name)

    def stop(self, name, timeout=120.0, force=False):
        self.calls.append(("stop" if force else "shutdown", name))
        super().stop(name, timeout, force)


@pytest.fixture
def node(node_env):
    procs = node_procedures()
    procs._hypervisors["fake"] = RecordingHypervisor(state_dir=paths.data_dir() / "fake-hv")
    return procs


def run(node, *names):
    for name in names:
        node._hv("fake").start({"name": name, "hypervisor": "fake", "beparams": {"maxmem": 64}})


def silence(seconds: float) -> None:
    """The last heartbeat was ``seconds`` ago."""
    mark = paths.master_contact_file()
    then = time.time() - seconds
    os.utime(mark, (then, then))


def test_a_heartbeat_of_an_older_epoch_is_refused_naming_the_master(node):
    """When a deposed master (epoch 0) sends its heartbeat, it gets an EpochError naming the
    current master, and the node does not count it as contact."""
    with pytest.raises(errors.EpochError, match="the master is now node2") as err:
        node.rpc_heartbeat(0, "node1")
    assert err.value.args[1] == "node2"
    assert not paths.master_contact_file().exists()


def test_a_node_that_never_heard_a_master_is_not_cut_off(node):
    """When a node never had a heartbeat (new, or rebooted: nothing of its guests survived), it
    serves instance requests and its first heartbeat asks for nothing more."""
    assert node.cut_off_for() is None
    assert node.rpc_heartbeat(1, "node2") == Heartbeat("node2", 1, False, serial=5)
    run(node, "inst1")
    assert node.call("instance_stop", ["inst1", "fake", 0, True]) is True


def test_a_cut_off_node_refuses_instance_and_disk_requests_until_its_strays_are_stopped(node):
    """When the last heartbeat is older than CUT_OFF_AFTER, instance, disk and OS requests are
    refused with an error that says why, reads still work, and the heartbeat says cut_off."""
    node.rpc_heartbeat(1, "node2")
    run(node, "inst1")
    silence(CUT_OFF_AFTER + 5)
    for name, args in [("instance_stop", ["inst1", "fake", 0, True]),
                       ("blockdev_assemble", ["inst1", "mirror", [], "secondary", {}]),
                       ("os_create", [{"name": "inst1", "uuid": "u1", "primary_node": "node1",
                                       "disk_template": "diskless"}, {}])]:
        with pytest.raises(errors.OpPrereqError, match=f"{name} refused: node1 has not heard from the master"
                                                       " for 1[5-9] s"):
            node.call(name, args)
    assert set(node.call("instances_info", [["fake"]])) == {"inst1"}
    assert node.rpc_heartbeat(1, "node2").cut_off is True
    assert node.cut_off_for() is not None            # a heartbeat alone does not end it


def test_stop_strays_pauses_then_kills_what_the_master_does_not_allow_and_ends_the_cut_off(node):
    """When the master sends the instances placed here (and those its jobs hold), every other
    running guest is paused, then killed; the allowed ones keep running; the node serves again."""
    node.rpc_heartbeat(1, "node2")
    run(node, "stray", "mine", "moving")
    node._hv("fake").crash("moving")          # a crashed one is cleaned up without a pause
    silence(CUT_OFF_AFTER + 5)
    assert node.rpc_stop_strays(1, ["mine"]) == ["moving", "stray"]
    assert node._hv("fake").calls == [("stop", "moving"), ("pause", "stray"), ("stop", "stray")]
    assert set(node._hv("fake").all_info()) == {"mine"}
    assert node.cut_off_for() is None
    assert node.call("instance_stop", ["mine", "fake", 0, True]) is True


def test_stop_strays_from_an_older_epoch_stops_nothing(node):
    """When a deposed master asks to stop instances, it is refused and every guest keeps running."""
    run(node, "inst1")
    with pytest.raises(errors.EpochError):
        node.rpc_stop_strays(0, [])
    assert set(node._hv("fake").all_info()) == {"inst1"}


def test_a_disk_a_running_guest_holds_is_not_assembled_as_secondary(node):
    """When the master asks for the secondary side of an instance that still runs here (a stray
    after a failover away from this node), it is refused before the storage is touched."""
    run(node, "inst1")
    with pytest.raises(errors.OpPrereqError, match="assembling the disks of inst1 as secondary refused:"
                                                   " instance inst1 still runs on node1"):
        node.call("blockdev_assemble", ["inst1", "mirror", [{"uuid": "u1", "size": 16}], "secondary", {}])
    assert not (paths.run_dir() / "mirror").exists()
