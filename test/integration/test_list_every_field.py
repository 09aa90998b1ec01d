"""Every list field on a running cluster: gnt-instance list with every field list-fields names,
over an instance of each disk template (plain and drbd on the fake LVM and DRBD), each row parsed
and the values the test knows checked; gnt-node and gnt-group list likewise."""
from __future__ import annotations

import pytest
from loopback import LoopbackCluster

from genet.storage.base import TEMPLATES

SEP = "\x1f"          # a separator no value holds (JSON parameter sets have | and , in them)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LoopbackCluster(tmp_path_factory.mktemp("query"), nodes=3, drbd="9")
    try:
        c.start()
        yield c
    finally:
        c.stop()


def templates() -> list[str]:
    return sorted(TEMPLATES.names())


def fields_of(cluster, command: str) -> list[str]:
    out = cluster.run("node1", command, "list-fields", "--no-headers", f"--separator={SEP}").stdout
    return [line.split(SEP)[0] for line in out.splitlines() if line]


def rows(cluster, command: str, fields: list[str], *args: str) -> list[dict[str, str]]:
    proc = cluster.run("node1", command, "list", "--no-headers", f"--separator={SEP}", "-o", ",".join(fields),
                       *args)
    assert proc.stderr == ""
    out = [line.split(SEP) for line in proc.stdout.splitlines() if line]
    assert all(len(row) == len(fields) for row in out), out
    return [dict(zip(fields, row)) for row in out]


@pytest.fixture(scope="module")
def instances(cluster) -> dict[str, dict]:
    """One instance per disk template, named after it: two disks (8 MiB named "root", 4 MiB) and
    two NICs where the template has disks; what the test knows of each."""
    made = {}
    for n, template in enumerate(templates(), start=1):
        cls = TEMPLATES.cls(template)
        nodes = "node2:node3" if cls.mirrored else "node2"
        disks = ["--disk", "0:size=8M,name=root", "--disk", "1:size=4M"] if cls.needs_disks else []
        macs = [f"aa:00:00:00:0{n}:01", f"aa:00:00:00:0{n}:02"]
        name = f"q-{template}"
        cluster.run("node1", "gnt-instance", "add", "-t", template, "-n", nodes, *disks, "-B", "memory=64M",
                    "--net", f"0:mac={macs[0]},link=br0", "--net", f"1:mac={macs[1]},link=br1", "--no-start", name)
        made[name] = {"template": template, "snodes": "node3" if cls.mirrored else "", "macs": macs,
                      "disks": ["8", "4"] if disks else []}
    return made


def test_every_instance_field_answers_on_an_instance_of_every_template(cluster, instances):
    """When gnt-instance list shows every field of list-fields, no field is unknown and the values
    the test set show as set, in MiB with a separator."""
    fields = fields_of(cluster, "gnt-instance")
    assert {"disk.size/15", "nic.mac/7", "sda_size", "mac", "vcpus", "hv/kernel_path", "be/maxmem"} <= set(fields)
    listed = {row["name"]: row for row in rows(cluster, "gnt-instance", fields)}
    assert sorted(listed) == sorted(instances)
    for name, known in instances.items():
        row = listed[name]
        assert [f for f, v in row.items() if v == "??"] == [], name
        disks = known["disks"]
        expected = {
            "pnode": "node2", "snodes": known["snodes"], "disk_template": known["template"],
            "status": "ADMIN_down", "admin_state": "down", "oper_state": "N",
            "disk.count": str(len(disks)), "disk.sizes": ",".join(disks),
            "disk.size/0": disks[0] if disks else "-", "sda_size": disks[0] if disks else "-",
            "disk.size/1": disks[1] if disks else "-", "sdb_size": disks[1] if disks else "-",
            "disk.size/2": "-", "disk.name/0": "root" if disks else "-", "disk.name/1": "-",
            "nic.count": "2", "nic.macs": ",".join(known["macs"]), "nic.mac/0": known["macs"][0],
            "mac": known["macs"][0], "nic.mac/1": known["macs"][1], "nic.mac/2": "-",
            "nic.link/1": "br1", "bridge": "br0", "nic.mode/0": "bridged", "nic_mode": "bridged",
            "be/maxmem": "64", "be/memory": "64", "be/minmem": "64", "vcpus": "1",
            "hypervisor": "fake", "pnode.group": "default", "oper_ram": "-",
        }
        assert {f: row[f] for f in expected} == expected, name
        assert (row["hv/kernel_path"], row["hv/serial_console"]) == ("", "Y")   # the backend's defaults
        assert (row["disk.uuid/0"] != "-") == bool(disks) and row["disk.uuid/2"] == "-"


def test_sizes_are_scaled_without_a_separator_and_filters_take_indexed_fields(cluster, instances):
    with_disks = sorted(n for n, known in instances.items() if known["disks"])
    out = cluster.run("node1", "gnt-instance", "list", "--no-headers", "-o", "name,sda_size,be/maxmem",
                      "-F", "disk.size/0 >= 8 and nic.mac/1 =~ /:02$/").stdout
    assert [line.split() for line in out.splitlines()] == [[n, "8M", "64M"] for n in with_disks]
    out = cluster.run("node1", "gnt-instance", "list", "--no-headers", "--units", "g", "-o", "be/maxmem",
                      with_disks[0]).stdout
    assert out.split() == ["0.1"]
    globbed = cluster.run("node1", "gnt-instance", "list", "--no-headers", "-o", "name", "q-d*").stdout.split()
    assert globbed == sorted(n for n in instances if n.startswith("q-d"))


@pytest.mark.parametrize("command, name", [("gnt-node", "node2"), ("gnt-group", "default"),
                                           ("gnt-network", None)])
def test_every_node_group_and_network_field_answers(cluster, instances, command, name):
    """When node, group and network lists show every field of list-fields, none is unknown."""
    if command == "gnt-network":
        cluster.run("node1", "gnt-network", "add", "--network", "10.77.0.0/24", "qnet")
        name = "qnet"
    fields = fields_of(cluster, command)
    [row] = rows(cluster, command, fields, name)
    assert [f for f, v in row.items() if v == "??"] == []
    assert row["name"] == name
    if command == "gnt-node":
        assert row["pinst_cnt"] == str(len(instances)) and row["ndp/ssh_port"] == "22"
        assert int(row["mtotal"]) > 0 and row["group"] == "default"
    if command == "gnt-group":
        assert row["node_cnt"] == "3" and row["ndp/spindle_count"] == "1"
