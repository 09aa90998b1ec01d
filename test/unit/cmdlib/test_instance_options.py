"""Ganeti's further options of migrate, failover, move, activate-disks, export and import, run
in-process (conftest.Cluster): what each does, or the reason it is refused."""
from __future__ import annotations

import pytest

from genet import errors
from genet.opcodes import (OpBackupExport, OpInstanceActivateDisks, OpInstanceCreate, OpInstanceFailover,
                           OpInstanceMigrate, OpInstanceMove, OpInstanceRemove)


def create(cluster, name="web1", node="node2", template="file", start=True, **kwargs):
    cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, pnode=node, os_type="noop",
                                 disks=[{"size": 8}] if template != "diskless" else [], start=start,
                                 beparams=kwargs.pop("beparams", {"memory": 128}), **kwargs))


def test_migrate_refuses_differing_hypervisor_versions_unless_told_to_ignore_them(cluster):
    create(cluster, template="diskless")
    cluster.nodes["node3"].hv.set_hv_version([2, 0, 0])
    cluster.refused(OpInstanceMigrate(instance_name="web1", target_node="node3"),
                    r"the hypervisor versions of node2 \(1.0.0\) and node3 \(2.0.0\) differ", "wrong_input")
    cluster.run(OpInstanceMigrate(instance_name="web1", target_node="node3", ignore_hvversions=True))
    assert cluster.instance("web1")["primary_node"] == "node3"
    assert any("--ignore-hvversions" in line and line.startswith("Warning") for line in cluster.log)


def test_failover_cleanup_keeps_the_copy_that_runs_and_records_its_node(cluster):
    create(cluster, template="diskless")
    inst = cluster.instance("web1")
    cluster.nodes["node3"].hv.start(inst)            # a failover that started the target, then died
    cluster.nodes["node2"].hv.stop("web1")
    assert cluster.run(OpInstanceFailover(instance_name="web1", cleanup=True)) == {"node": "node3"}
    assert cluster.instance("web1")["primary_node"] == "node3" and cluster.running()["node3"] == ["web1"]


def test_failover_cleanup_of_a_stopped_instance_that_runs_nowhere_is_fine(cluster):
    create(cluster, template="diskless", start=False)
    assert cluster.run(OpInstanceFailover(instance_name="web1", cleanup=True)) == {"node": "node2"}


def test_move_with_ignore_consistency_copies_even_when_the_instance_cannot_be_stopped(cluster):
    create(cluster)
    cluster.nodes["node2"].hv.fail_next("stop", "hypervisor wedged")
    with pytest.raises(errors.OpExecError, match="hypervisor wedged"):
        cluster.run(OpInstanceMove(instance_name="web1", target_node="node3"))
    cluster.nodes["node2"].hv.fail_next("stop", "hypervisor wedged")
    cluster.run(OpInstanceMove(instance_name="web1", target_node="node3", ignore_consistency=True))
    assert cluster.instance("web1")["primary_node"] == "node3"
    assert any("copying its disks anyway" in line for line in cluster.log)


def test_activate_disks_accepts_ganetis_ignore_size_and_wait_for_sync(cluster):
    create(cluster, start=False)
    [[node, disk, path]] = cluster.run(OpInstanceActivateDisks(instance_name="web1", ignore_size=True,
                                                               wait_for_sync=True))
    assert (node, disk) == ("node2", "disk/0") and path.endswith(".raw")


@pytest.mark.parametrize("kwargs, message", [
    ({"zero_free_space": True}, "genet cannot zero an instance's free space"),
    ({"zeroing_timeout_fixed": 10}, "the zeroing timeouts apply to --zero-free-space only"),
])
def test_export_refuses_zeroing(cluster, kwargs, message):
    create(cluster)
    cluster.refused(OpBackupExport(instance_name="web1", target_node="node3", **kwargs), message, "wrong_input")


def test_import_with_no_nics_and_identify_defaults(cluster):
    create(cluster, nics=[{}], beparams={"maxmem": 256, "minmem": 128, "vcpus": 1})
    cluster.run(OpBackupExport(instance_name="web1", target_node="node3", shutdown_timeout=5, long_sleep=True))
    cluster.run(OpInstanceRemove(instance_name="web1", shutdown_timeout=5))
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node1", mode="import",
                                 src_node="node3", start=False, no_nics=True, identify_defaults=True))
    inst = cluster.instance("web1")
    assert inst["nics"] == [] and inst["beparams"] == {"maxmem": 256}       # minmem 128, vcpus 1: the defaults
