"""Storage units on one node (genet.storage.units, lvm_units) through genet-noded's procedures:
file directories for real, LVM against the fake lvm commands (whose log shows the exact command
lines, checked against Ganeti's)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from genet import errors, paths
from genet.noded import NodeProcedures
from genet.storage import units

FAKE_BIN = Path(__file__).resolve().parents[1] / "fakes" / "lvm-bin"


@pytest.fixture
def node(tmp_path):
    with paths.acting_as(tmp_path / "root", "node1"):
        yield NodeProcedures()


@pytest.fixture
def lvm(tmp_path, monkeypatch):
    env = {"GENET_FAKE_LVM_STATE": str(tmp_path / "lvm.json"), "GENET_FAKE_LVM_DEV": str(tmp_path / "dev"),
           "GENET_LVM_BINDIR": str(FAKE_BIN), "GENET_LVM_DEV_DIR": str(tmp_path / "dev")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    log = tmp_path / "lvm.log"

    def run(*argv: str) -> None:
        subprocess.run([str(FAKE_BIN / argv[0]), *argv[1:]], check=True, capture_output=True,
                       env={**os.environ, **env})
    run("lvm", "fake", "vgcreate", "xenvg", "1024")
    run("lvm", "fake", "pvcreate", "xenvg", "/dev/sdb1", "512")
    monkeypatch.setenv("GENET_FAKE_LVM_LOG", str(log))
    run.log = lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return run


def test_file_storage_reports_the_files_under_its_directory_and_the_filesystem(node, tmp_path):
    folder = tmp_path / "root/srv/genet/file-storage/web1"
    folder.mkdir(parents=True)
    (folder / "disk-a.raw").write_bytes(b"\0" * (3 << 20))
    (folder / "disk-b.raw").write_bytes(b"\0" * (2 << 20))
    rows = node.call("storage_list", ["file", {}, None, ["name", "used", "size", "free", "allocatable"]])
    stat = os.statvfs(folder)
    assert rows == [[str(folder.parent), 5, stat.f_blocks * stat.f_frsize >> 20,
                     stat.f_bavail * stat.f_frsize >> 20, True]]


def test_file_storage_not_made_yet_is_empty_on_the_filesystem_it_will_be_on(node, tmp_path):
    (tmp_path / "root").mkdir(exist_ok=True)
    rows = node.call("storage_list", ["sharedfile", {"shared_file_storage_dir": str(tmp_path / "root/shared")},
                                      None, ["name", "used"]])
    assert rows == [[str(tmp_path / "root/shared"), 0]]


def test_file_storage_knows_only_its_own_directory(node):
    with pytest.raises(errors.StorageError, match="no file storage unit '/etc'"):
        node.call("storage_list", ["file", {}, "/etc", ["name"]])


def test_an_unknown_field_or_type_is_refused_naming_it(node):
    with pytest.raises(errors.StorageError, match="unknown storage field.*colour"):
        node.call("storage_list", ["file", {}, None, ["name", "colour"]])
    with pytest.raises(errors.OpPrereqError, match="storage_type"):
        node.call("storage_list", [7, {}, None, ["name"]])
    with pytest.raises(errors.StorageError, match="unknown storage type 'rbd'"):
        units.get("rbd")


def test_volume_groups_and_physical_volumes_as_ganeti_reads_them(node, lvm):
    lvm("lvcreate", "-L", "1100m", "-n", "big", "xenvg")
    assert node.call("storage_list", ["lvm-vg", {}, None, ["name", "size", "used", "free", "allocatable"]]) == \
        [["xenvg", 1536, 1100, 436, True]]
    assert node.call("storage_list", ["lvm-pv", {}, "/dev/sdb1", ["name", "used", "free", "allocatable"]]) == \
        [["/dev/sdb1", 76, 436, True]]
    assert lvm.log()[-2:] == [
        ["vgs", "--noheadings", "--units", "m", "--nosuffix", "--separator", "|", "-o", "vg_name,vg_size,vg_free"],
        ["pvs", "--noheadings", "--units", "m", "--nosuffix", "--separator", "|", "-o",
         "pv_name,pv_size,pv_used,pv_free,pv_attr", "/dev/sdb1"]]


def test_a_physical_volume_is_made_unallocatable_with_pvchange(node, lvm):
    assert node.call("storage_modify", ["lvm-pv", {}, "/dev/sdb1", {"allocatable": False}]) is True
    assert lvm.log()[-1] == ["pvchange", "--allocatable", "n", "/dev/sdb1"]
    assert node.call("storage_list", ["lvm-pv", {}, "/dev/sdb1", ["allocatable"]]) == [[False]]


def test_only_the_modifiable_fields_of_a_type_change(node, lvm):
    with pytest.raises(errors.StorageError, match="lvm-vg cannot change allocatable"):
        node.call("storage_modify", ["lvm-vg", {}, "xenvg", {"allocatable": False}])
    assert lvm.log() == []


def test_fix_consistency_runs_vgreduce_as_ganeti_then_checks_the_group(node, lvm):
    """A group that lost a PV with a volume on it: vgreduce --removemissing refuses, --force drops
    the volume, vgs then finds no missing device."""
    lvm("lvcreate", "-L", "1100m", "-n", "big", "xenvg")
    lvm("lvm", "fake", "pvlose", "/dev/sdb1")
    assert node.call("storage_execute", ["lvm-vg", {}, "xenvg", "fix-consistency"]) is True
    assert lvm.log()[-3:] == [["vgreduce", "--removemissing", "xenvg"],
                              ["vgreduce", "--removemissing", "--force", "xenvg"],
                              ["vgs", "--noheadings", "--nosuffix", "xenvg"]]
    assert node.call("storage_list", ["lvm-pv", {}, None, ["name"]]) == [["/dev/fake-pv-xenvg"]]


def test_an_operation_a_type_does_not_know_is_refused(node, lvm):
    with pytest.raises(errors.StorageError, match="lvm-pv know no operation 'fix-consistency'"):
        node.call("storage_execute", ["lvm-pv", {}, "/dev/sdb1", "fix-consistency"])


def test_node_volumes_lists_a_volume_once_per_physical_volume(node, lvm):
    lvm("lvcreate", "-L", "1100m", "-n", "big", "xenvg")
    lvm("lvcreate", "-L", "8m", "-n", "small", "xenvg")
    assert node.call("node_volumes", [{}]) == [
        {"name": "big", "vg": "xenvg", "size": 1100, "dev": "/dev/fake-pv-xenvg"},
        {"name": "big", "vg": "xenvg", "size": 1100, "dev": "/dev/sdb1"},
        {"name": "small", "vg": "xenvg", "size": 8, "dev": "/dev/sdb1"}]


def test_diagnose_says_which_templates_this_node_can_hold_and_why_not(node, lvm, tmp_path):
    report = {name: rest for name, *rest in node.call("storage_diagnose", [
        {"volume_group_name": "xenvg", "shared_file_storage_dir": str(tmp_path / "nowhere")}])}
    assert report["plain"] == ["xenvg", True, ""]
    assert report["diskless"] == ["", True, ""]
    assert report["sharedfile"][1:] == [False, f"{tmp_path}/nowhere does not exist (mount the shared directory"
                                                " on every node)"]
    assert report["drbd"][1] is False and "kernel module is not loaded" in report["drbd"][2]
    missing_vg = {name: rest for name, *rest in node.call("storage_diagnose", [{"volume_group_name": "other"}])}
    assert missing_vg["plain"] == ["other", False, "volume group other not found"]
