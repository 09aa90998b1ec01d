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
