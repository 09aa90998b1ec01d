"""gnt-instance info in Ganeti's layout, from the real OpInstanceQueryData of an in-process
cluster, read back with a YAML loader the way Ganeti's QA (qa_instance.GetInstanceInfo) reads it."""
from __future__ import annotations

import re

import yaml

from genet.cli import info, instance_info
from genet.opcodes import OpInstanceCreate, OpInstanceQueryData


def described(cluster, name: str, static: bool = False) -> dict:
    found = cluster.run(OpInstanceQueryData(instances=[name], static=static))
    [parsed] = yaml.safe_load(info.dump([instance_info.entries(found[name])]))
    return parsed


def test_a_running_file_instance_reads_as_ganetis_qa_expects(cluster):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="file", pnode="node2",
                                 disks=[{"size": 8}, {"size": 2048, "name": "data"}], os_type="noop",
                                 beparams={"memory": 128}, nics=[{"mac": "aa:00:00:11:22:33"}]))
    shown = described(cluster, "web1")
    assert shown["Instance name"] == "web1"
    assert shown["State"] == "configured to be up, actual state is up"
    assert shown["Nodes"] == [{"primary": "node2", "group": f"default (UUID {cluster.data().nodes['node2'].group})"},
                              {"secondaries": None}]
    assert [d[f"disk/{i}"] for i, d in enumerate(shown["Disks"])] == ["file, size 8M", "file, size 2.0G"]
    assert [(d["access mode"], d["name"]) for d in shown["Disks"]] == [("rw", "None"), ("rw", "data")]
    assert shown["Disks"][0]["logical_id"].startswith("('loop', '/srv/genet/file-storage/web1/")
    assert re.match(r"^/\S+ \(N/A:N/A\)$", shown["Disks"][0]["on primary"])
    [nic] = shown["NICs"]
    assert (nic["nic/0"], nic["MAC"], nic["IP"]) == (None, "aa:00:00:11:22:33", "None")
    # set on the instance: as it is; inherited: "default (value)", which QA turns back into the value
    assert shown["Back-end parameters"]["maxmem"] == 128
    assert shown["Back-end parameters"]["memory"] == "default (128)"
    assert shown["Disk template"] == "file" and shown["Hypervisor"] == "fake"


def test_static_info_asks_no_node_and_says_only_what_is_configured(cluster):
    cluster.run(OpInstanceCreate(instance_name="web1", disk_template="diskless", pnode="node3", disks=[],
                                 os_type="noop", beparams={"memory": 128}, start=False))
    shown = described(cluster, "web1", static=True)
    assert shown["State"] == "configured to be down" and shown["Disks"] is None


def test_a_mirrored_instance_names_both_nodes_and_its_sync_state(cluster, mirrored):
    cluster.run(OpInstanceCreate(instance_name="db1", disk_template=mirrored.name, pnode="node1", snode="node2",
                                 disks=[{"size": 8}], os_type="noop", beparams={"memory": 128}))
    shown = described(cluster, "db1")
    group = cluster.data().nodes["node2"].group
    assert shown["Nodes"][1] == {"secondaries": f"node2 (group default, group UUID {group})"}
    assert shown["Disks"][0]["disk/0"] == f"{mirrored.name}, size 8M"


def test_the_layout_is_ganetis_line_for_line():
    data = [[("Instance name", "web1"), ("Nodes", [[("primary", "node2"), ("group", "default")],
                                                  [("secondaries", "")]]),
             ("Hypervisor parameters", {"b": "default (1)", "a": "x"}), ("NICs", []), ("pair", (1, 2))],
            [("Instance name", "web2")]]
    assert info.dump(data).split("\n") == [
        "- Instance name: web1", "  Nodes: ", "    - primary: node2", "      group: default",
        "    - secondaries: ", "  Hypervisor parameters: ", "    a: x", "    b: default (1)", "  NICs: ",
        "  pair: [1, 2]", "- Instance name: web2"]


def test_sizes_and_roman_numbers_as_ganeti_writes_them():
    assert [info.size(m) for m in (512, 1024, 1536, 3 * 1024 * 1024)] == ["512M", "1.0G", "1.5G", "3.0T"]
    assert [info.number(n, True) for n in (4, 1999, 2026, 0, "x")] == ["IV", "MCMXCIX", "MMXXVI", 0, "x"]
    assert info.size(2048, roman=True) == "IIG"


# the keys of Ganeti's /2/info (doc/rapi.rst, GET /2/info) and of its QueryClusterInfo
GANETI_CLUSTER_INFO = (
    "architecture", "beparams", "blacklisted_os", "candidate_pool_size", "compression_tools", "ctime",
    "data_collector_interval", "default_hypervisor", "default_iallocator", "default_iallocator_params",
    "diskparams", "drbd_usermode_helper", "enabled_data_collectors", "enabled_disk_templates",
    "enabled_hypervisors", "enabled_user_shutdown", "export_version", "file_storage_dir", "gluster_storage_dir",
    "hidden_os", "hvparams", "install_image", "instance_communication_network", "ipolicy", "maintain_node_health",
    "mac_prefix", "master", "master_netdev", "master_netmask", "max_running_jobs", "max_tracked_jobs",
    "modify_etc_hosts", "modify_ssh_setup", "mtime", "name", "ndparams", "nicparams", "os_api_version", "os_hvp",
    "osparams", "prealloc_wipe_disks", "primary_ip_version", "protocol_version", "reserved_lvs",
    "shared_file_storage_dir", "software_version", "ssh_key_bits", "ssh_key_type", "tags", "uid_pool",
    "use_external_mip_script", "uuid", "volume_group_name", "zeroing_image")


def test_cluster_info_has_every_key_of_ganetis_and_shows_the_defaults_in_its_layout(cluster):
    from genet.cli.gnt_cluster import cluster_entries
    from genet.opcodes import OpClusterQuery, OpClusterSetParams
    cluster.run(OpClusterSetParams(beparams={"vcpus": 2}, hvparams={"fake": {"serial_speed": "9600"}},
                                   nicparams={"link": "br-lan"}))
    found = cluster.run(OpClusterQuery())
    assert [key for key in GANETI_CLUSTER_INFO if key not in found] == []
    shown = yaml.safe_load(info.dump(cluster_entries(found)))
    assert (shown["Cluster name"], shown["Master node"]) == ("c1", "node1")
    assert shown["Cluster parameters"]["candidate pool size"] == 10
    assert shown["Default instance parameters"]["default"]["vcpus"] == 2
    assert shown["Default nic parameters"]["default"]["link"] == "br-lan"
    assert shown["Hypervisor parameters"]["fake"]["serial_speed"] == 9600
    assert shown["Hypervisor parameters"]["fake"]["boot_order"] == "disk"          # the hypervisor's default
    assert shown["Instance policy - limits for instances"]["vcpu-ratio"] == 4.0
