"""gnt-node's storage commands and gnt-storage as a user runs them: the opcode each submits and
the table or report it prints from the job's result (a stand-in master answers with a fixed one)."""
from __future__ import annotations

import pytest

from genet import luxi
from genet.cli import gnt_node, gnt_storage
from genet.cli import base as cli_base


class Master:
    """Records the submitted job and answers it succeeded with ``result``."""

    def __init__(self, result):
        self.result, self.jobs = result, []

    def call(self, method, *args):
        if method == "SubmitJob":
            self.jobs.append(args[0])
            return 7
        if method == "WaitForJobChange":
            return {"job_info": ["success"], "log_entries": []}
        if method == "QueryJobs":
            return [["success", [self.result]]]
        raise AssertionError(f"unexpected luxi call {method}")


@pytest.fixture
def master(monkeypatch):
    def answering(result):
        stand_in = Master(result)
        monkeypatch.setattr(luxi.Client, "call", lambda self, method, *args: stand_in.call(method, *args))
        return stand_in
    return answering


def run(module, argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli_base.run(module.__name__.rsplit(".", 1)[1].replace("_", "-"), module.build, argv)
    out = capsys.readouterr()
    return code, out.out, out.err


PVS = [["node2", "lvm-pv", "/dev/sda7", 689971, 1536, 688435, True],
       ["node2", "lvm-pv", "/dev/sdb1", 715366, 0, 715366, False]]


def test_list_storage_prints_ganetis_table_with_scaled_sizes(master, capsys):
    m = master(PVS)
    code, out, _ = run(gnt_node, ["list-storage", "-t", "lvm-pv", "node2"], capsys)
    assert code == 0
    assert out.splitlines() == ["Node  Type   Name        Size Used   Free Allocatable",
                                "node2 lvm-pv /dev/sda7 673.8G 1.5G 672.3G Y",
                                "node2 lvm-pv /dev/sdb1 698.6G   0M 698.6G N"]
    (op,) = m.jobs[0]
    assert (op["OP_ID"], op["nodes"], op["storage_type"], op["output_fields"]) == \
        ("OP_NODE_QUERY_STORAGE", ["node2"], "lvm-pv", ["node", "type", "name", "size", "used", "free",
                                                         "allocatable"])


@pytest.mark.parametrize("options, lines", [
    (["--separator", "|", "--no-headers"], ["/dev/sda7|689971", "/dev/sdb1|715366"]),
    (["--separator", "|", "--human-readable"], ["Name|Size", "/dev/sda7|673.8G", "/dev/sdb1|698.6G"]),
    (["--units", "g"], ["Name       Size", "/dev/sda7 673.8", "/dev/sdb1 698.6"]),
])
def test_list_storage_sizes_follow_separator_units_and_human_readable(master, capsys, options, lines):
    m = master([row[2:4] for row in PVS])
    code, out, _ = run(gnt_node, ["list-storage", "-o", "name,size", *options], capsys)
    assert (code, out.splitlines()) == (0, lines)
    assert m.jobs[0][0]["storage_type"] is None and m.jobs[0][0]["nodes"] == []


def test_volumes_prints_each_volume_with_its_instance(master, capsys):
    m = master([["node1", "/dev/sdb1", "xenvg", "d0.disk", "1024", "web1"],
                ["node1", "/dev/sdb1", "xenvg", "spare", "4", "-"]])
    code, out, _ = run(gnt_node, ["volumes"], capsys)
    assert out.splitlines() == ["Node  PhysDev   VG    Name    Size Instance",
                                "node1 /dev/sdb1 xenvg d0.disk 1.0G web1",
                                "node1 /dev/sdb1 xenvg spare     4M -"]
    assert m.jobs[0][0]["OP_ID"] == "OP_NODE_QUERYVOLS"


def test_modify_storage_without_a_change_submits_nothing(master, capsys):
    m = master(None)
    code, _, err = run(gnt_node, ["modify-storage", "node2", "lvm-pv", "/dev/sdb1"], capsys)
    assert (code, err.strip(), m.jobs) == (0, "No changes to perform, exiting.", [])


def test_modify_storage_sends_the_allocatable_change(master, capsys):
    m = master(None)
    run(gnt_node, ["modify-storage", "--allocatable", "no", "node2", "lvm-pv", "/dev/sdb1"], capsys)
    (op,) = m.jobs[0]
    assert (op["node_name"], op["storage_type"], op["name"], op["changes"]) == \
        ("node2", "lvm-pv", "/dev/sdb1", {"allocatable": False})


def test_list_drbd_wants_exactly_one_node(master, capsys):
    m = master([])
    code, _, err = run(gnt_node, ["list-drbd", "node1", "node2"], capsys)
    assert (code, err.strip(), m.jobs) == (1, "Please give one (and only one) node.", [])


def test_list_drbd_prints_the_minors_of_the_node(master, capsys):
    master([["node1", 0, "db1", 0, "primary", "node2"], ["node1", 12, "db2", 1, "secondary", "node3"]])
    code, out, _ = run(gnt_node, ["list-drbd", "node1"], capsys)
    assert out.splitlines() == ["Node  Minor Instance Disk Role      PeerNode",
                                "node1     0 db1      0    primary   node2",
                                "node1    12 db2      1    secondary node3"]


DIAGNOSIS = [["file", {"node1": [["/srv/f", True, "", [["file_storage_dir", "cluster setting, default 'x'"]]]],
                       "node2": [["/srv/f", False, "not writable", []]], "node3": []},
              {"default": False, "rack2": True}, [["file_storage_dir", "cluster setting, default 'x'"]]]]


def test_storage_diagnose_prints_ganetis_provider_report(master, capsys):
    m = master([row[:3] for row in DIAGNOSIS])
    code, out, _ = run(gnt_storage, ["diagnose"], capsys)
    assert code == 0
    assert out.splitlines() == [
        "Provider: file", "---",
        "  Node: node1, status: valid (path: /srv/f) [parameters: file_storage_dir]",
        "  Node: node2, status: invalid - not writable (path: /srv/f) [no parameters]",
        "  Node: node3, status: no report from the node",
        "  --",
        "  For nodegroup: rack2 --> valid",
        "  For nodegroup: default --> invalid", ""]
    assert m.jobs[0][0]["output_fields"] == ["name", "node_status", "nodegroup_status"]


def test_storage_info_lists_valid_groups_and_parameters_and_names_the_unknown(master, capsys):
    master([[row[0], row[2], row[3]] for row in DIAGNOSIS] + [["drbd", {"default": False}, []]])
    code, out, _ = run(gnt_storage, ["info", "file", "drbd", "rbd"], capsys)
    assert out.splitlines() == ["file:", "  - Valid for nodegroups:", "      rack2", "  - Supported parameters:",
                                "      file_storage_dir: cluster setting, default 'x'", "",
                                "drbd:", "  - Invalid for all nodegroups", "",
                                "rbd: Not Found", ""]
