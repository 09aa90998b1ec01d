"""gnt-os modify's settings, in-process: per-OS hypervisor and OS parameters inherited by the
OS's instances, hidden and blacklisted OSes."""
from __future__ import annotations

from genet.opcodes import OpClusterSetParams, OpInstanceCreate, OpInstanceQueryData, OpOsDiagnose


def create(cluster, name="web1", os_type="noop", **kwargs):
    return OpInstanceCreate(instance_name=name, disk_template="diskless", pnode="node2", disks=[],
                            os_type=os_type, start=False, **kwargs)


def test_an_oses_hypervisor_parameters_come_between_the_clusters_and_the_instances(cluster):
    cluster.run(OpClusterSetParams(hvparams={"fake": {"kernel_args": "cluster", "serial_speed": "9600"}},
                                   os_hvp={"noop": {"fake": {"kernel_args": "for-noop"}}}))
    cluster.run(create(cluster))
    hv = cluster.run(OpInstanceQueryData(instances=["web1"], static=True))["web1"]["hv_actual"]
    assert (hv["kernel_args"], hv["serial_speed"]) == ("for-noop", 9600)
    cluster.refused(OpClusterSetParams(os_hvp={"noop": {"fake": {"warp": "1"}}}), "unknown hvparams: warp",
                    "wrong_input")
    cluster.refused(OpClusterSetParams(os_hvp={"noop": {"blahblahblubb": {"bar": ""}}}),
                    "unknown hypervisor 'blahblahblubb'", "wrong_input")      # Ganeti's QA's invalid modify
    cluster.run(OpClusterSetParams(os_hvp={"noop": {"fake": {"kernel_args": "default"}}}))
    assert cluster.data().cluster.os_hvp == {}          # nothing left of the OS's entry either


def test_hidden_oses_leave_the_listing_and_blacklisted_ones_are_not_installed(cluster):
    cluster.run(OpClusterSetParams(hidden_os=[["add", "noop"]], blacklisted_os=[["add", "image"]]))
    listed = {entry["name"]: (entry["hidden"], entry["blacklisted"]) for entry in cluster.run(OpOsDiagnose())}
    assert listed["noop"] == (True, False) and listed["image"] == (False, True)
    cluster.refused(create(cluster, os_type="image"), "Guest OS 'image' is not allowed for installation",
                    "wrong_state")
    cluster.run(OpClusterSetParams(blacklisted_os=[["remove", "image"]], hidden_os=[["remove", "noop"]]))
    assert cluster.data().cluster.blacklisted_os == [] and cluster.data().cluster.hidden_os == []


def test_os_parameters_are_checked_on_the_master_and_private_ones_shown_redacted(cluster, tmp_path):
    from genet.opcodes import OpClusterQuery
    cluster.refused(OpClusterSetParams(osparams={"noop": {"nonsense": "1"}}), "OS 'noop' cannot be used on node node1",
                    "wrong_input")
    (tmp_path / "disk.img").write_bytes(b"\0" * 512)
    cluster.run(OpClusterSetParams(osparams={"image": {"image": str(tmp_path / "disk.img")}},
                                   osparams_private={"image": {"ssh_keys": "ssh-ed25519 AAAA joe"}}))
    assert cluster.run(OpClusterQuery())["osparams_private"] == {"image": {"ssh_keys": "<redacted>"}}
