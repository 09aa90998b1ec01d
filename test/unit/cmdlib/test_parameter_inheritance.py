"""Ganeti's parameter inheritance, run in-process: an instance records only what is set on it,
the cluster's defaults fill in the rest each time it is used, and "default" inherits again."""
from __future__ import annotations

import pytest

from genet import errors
from genet.opcodes import (OpClusterSetParams, OpInstanceCreate, OpInstanceQueryData, OpInstanceSetParams,
                           OpInstanceShutdown, OpInstanceStartup)


def create(cluster, **kwargs):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="diskless", pnode="node2", disks=[],
                                 os_type="noop", **kwargs))


def actual(cluster) -> dict:
    return cluster.run(OpInstanceQueryData(instances=["web1"], static=True))["web1"]


def test_an_instance_records_its_own_backend_parameters_and_takes_the_clusters_when_started(cluster):
    create(cluster, beparams={"memory": 256}, start=False)
    assert cluster.instance("web1")["beparams"] == {"maxmem": 256, "minmem": 256}
    cluster.run(OpClusterSetParams(beparams={"vcpus": 2}))
    assert actual(cluster)["be_actual"]["vcpus"] == 2 and actual(cluster)["be_instance"] == {"maxmem": 256,
                                                                                               "minmem": 256}
    cluster.run(OpInstanceStartup(instance_name="web1"))
    assert cluster.nodes["node2"].hv.info("web1")["vcpus"] == 2


def test_default_drops_the_instances_own_value(cluster):
    create(cluster, beparams={"memory": 256, "vcpus": 3}, start=False)
    result = cluster.run(OpInstanceSetParams(instance_name="web1", beparams={"vcpus": "default"}))
    assert cluster.instance("web1")["beparams"] == {"maxmem": 256, "minmem": 256}
    assert ["be/vcpus", "default"] in result and actual(cluster)["be_actual"]["vcpus"] == 1


def test_cluster_hypervisor_defaults_apply_and_a_bad_one_changes_nothing(cluster):
    create(cluster, hvparams={"kernel_args": "own"}, start=False)
    cluster.run(OpClusterSetParams(hvparams={"fake": {"serial_speed": "115200", "kernel_args": "cluster"}}))
    hv = actual(cluster)["hv_actual"]
    assert (hv["serial_speed"], hv["kernel_args"]) == (115200, "own")      # the instance's own wins
    cluster.refused(OpClusterSetParams(hvparams={"fake": {"warp": "9"}}), "unknown hvparams: warp")
    cluster.refused(OpClusterSetParams(beparams={"minmem": 512, "maxmem": 256}), "minmem .* is larger than maxmem")


def test_a_hypervisor_in_use_cannot_be_disabled(cluster):
    create(cluster, start=False)
    cluster.refused(OpClusterSetParams(enabled_hypervisors=["kvm"]), r"in use cannot be disabled; instances: web1 \(fake\)")
    cluster.refused(OpClusterSetParams(enabled_hypervisors=[]), "at least one hypervisor")
    cluster.run(OpClusterSetParams(enabled_hypervisors=["fake", "kvm"]))
    assert cluster.data().cluster.enabled_hypervisors == ["fake", "kvm"]


def test_a_new_nic_takes_the_clusters_nic_parameters(cluster):
    cluster.run(OpClusterSetParams(nicparams={"link": "br-lan", "vlan": "7"}))
    create(cluster, nics=[{}, {"link": "br-dmz"}], start=False)
    assert [(n["mode"], n["link"], n["vlan"]) for n in cluster.instance("web1")["nics"]] == \
        [("bridged", "br-lan", "7"), ("bridged", "br-dmz", "7")]


def test_temporary_startup_parameters_go_with_the_next_stop(cluster):
    create(cluster, start=False)
    cluster.run(OpInstanceStartup(instance_name="web1", beparams={"vcpus": 4}))
    assert cluster.nodes["node2"].hv.info("web1")["vcpus"] == 4
    cluster.run(OpInstanceShutdown(instance_name="web1", timeout=0))
    cluster.run(OpInstanceStartup(instance_name="web1"))
    assert cluster.nodes["node2"].hv.info("web1")["vcpus"] == 1 and cluster.instance("web1")["beparams"] == {}


def test_only_enabled_disk_templates_are_used_and_one_in_use_stays_enabled(cluster):
    from genet.opcodes import OpClusterQuery
    cluster.run(OpClusterSetParams(enabled_disk_templates=["diskless", "file"]))
    assert cluster.run(OpClusterQuery())["enabled_disk_templates"] == ["diskless", "file"]
    cluster.refused(OpInstanceCreate(instance_name="web1", disk_template="sharedfile", pnode="node2",
                                     disks=[{"size": 8}], os_type="noop", start=False),
                    "disk template 'sharedfile' is not enabled in this cluster", "wrong_state")
    create(cluster, start=False)
    cluster.refused(OpClusterSetParams(enabled_disk_templates=["file"]),
                    r"disk templates in use cannot be disabled; instances: web1 \(diskless\)", "wrong_state")


def test_storage_directories_and_the_mac_prefix_change_only_where_nothing_depends_on_them(cluster):
    cluster.run(OpClusterSetParams(mac_prefix="AA:BB:CC", shared_file_storage_dir="/srv/elsewhere"))
    cluster_config = cluster.data().cluster
    assert (cluster_config["mac_prefix"], cluster_config["shared_file_storage_dir"]) == ("aa:bb:cc", "/srv/elsewhere")
    create(cluster, nics=[{}], start=False)
    assert cluster.instance("web1")["nics"][0]["mac"].startswith("aa:bb:cc:")
    cluster.run(OpInstanceCreate(instance_name="f1", disk_template="file", pnode="node2", disks=[{"size": 8}],
                                 os_type="noop", start=False))
    cluster.refused(OpClusterSetParams(file_storage_dir="srv/other"),
                    "cannot change file storage dir while instances have disks in it: f1", "wrong_state")
    with pytest.raises(errors.OpPrereqError, match="invalid MAC prefix 'ab:00:00'"):
        OpClusterSetParams(mac_prefix="ab:00:00")          # a multicast address
