"""The plain (LVM) disk template, run against the fake lvm commands in test/fakes/lvm.

Every test works on a fresh fake volume group ``xenvg`` of 1024 MiB with 4 MiB extents.
The fake records each command genet runs (GENET_FAKE_LVM_LOG), so tests also check the
exact command lines, and that they use only what lvm2 documents.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from genet.config_writer import ConfigWriter
from genet import config, errors, opcodes
from genet.storage import base, lvm
from genet.storage.base import StorageError

FAKES = Path(__file__).resolve().parents[1] / "fakes"
FAKE_LVM = FAKES / "lvm"
FAKE_BIN = FAKES / "lvm-bin"
MIB = 1024 * 1024


class FakeLvm:
    """The fake's files under tmp_path, and a way to run its commands as a test."""

    def __init__(self, root: Path):
        self.state = root / "lvm-state.json"
        self.dev = root / "dev"
        self.logfile = root / "lvm.log"
        self.env = dict(os.environ, GENET_FAKE_LVM_STATE=str(self.state), GENET_FAKE_LVM_DEV=str(self.dev),
                        GENET_FAKE_LVM_LOG=str(self.logfile))

    def run(self, *argv: str, stdin: str = "") -> subprocess.CompletedProcess:
        """``run("lvs", ...)`` runs the fake's lvs, ``run("fake", ...)`` its test controls; neither is logged."""
        env = {k: v for k, v in self.env.items() if k != "GENET_FAKE_LVM_LOG"}
        argv = ("lvm", *argv) if argv[0] == "fake" else argv
        return subprocess.run([str(FAKE_BIN / argv[0]), *argv[1:]], capture_output=True, text=True, env=env,
                              input=stdin)

    def log(self) -> list[list[str]]:
        if not self.logfile.exists():
            return []
        return [json.loads(line) for line in self.logfile.read_text().splitlines()]

    def clear_log(self) -> None:
        self.logfile.unlink(missing_ok=True)

    def commands(self) -> list[str]:
        return [argv[0] for argv in self.log()]

    def lv(self, name: str, vg: str = "xenvg") -> dict | None:
        return json.loads(self.state.read_text())["vgs"][vg]["lvs"].get(name)

    def free_mib(self, vg: str = "xenvg") -> int:
        out = self.run("vgs", "--noheadings", "--units", "m", "--nosuffix", "-o", "vg_free", vg).stdout
        return int(float(out.strip()))


@pytest.fixture
def fake(tmp_path, monkeypatch):
    f = FakeLvm(tmp_path)
    for key in ("GENET_FAKE_LVM_STATE", "GENET_FAKE_LVM_DEV", "GENET_FAKE_LVM_LOG"):
        monkeypatch.setenv(key, f.env[key])
    assert f.run("fake", "vgcreate", "xenvg", "1024").stdout == '  Volume group "xenvg" successfully created\n'
    return f


@pytest.fixture
def plain(fake):
    return lvm.PlainStorage({"volume_group_name": "xenvg", "lvm_bindir": str(FAKE_BIN),
                             "lvm_dev_dir": str(fake.dev)})


def new_disk(size: int = 100, **extra) -> dict:
    return {"uuid": str(uuid.uuid4()), "size": size, "mode": "rw", **extra}


def lv_of(disk: dict) -> str:
    return f"{disk['uuid']}.disk"


def plain_volumes(fake: FakeLvm) -> dict[str, list[str]]:
    """The fake's LV names per volume group, from its state file."""
    return {vg: sorted(data["lvs"]) for vg, data in json.loads(fake.state.read_text())["vgs"].items()}


# --- create ---------------------------------------------------------------------

def test_create_makes_an_active_lv_named_after_the_disk_uuid(plain, fake):
    """When a disk is created, lvcreate runs once and the device /DEV/VG/UUID.disk appears."""
    disk = new_disk(100)
    access = plain.create("inst1", disk, 0)
    path = fake.dev / "xenvg" / lv_of(disk)
    assert access == {"path": str(path), "format": "raw", "mode": "rw", "size": 100, "uuid": disk["uuid"]}
    assert path.exists() and path.stat().st_size == 100 * MIB
    assert ["lvcreate", "--yes", "--wipesignatures", "y", "-L", "100m", "-n", lv_of(disk), "xenvg"] in fake.log()
    assert fake.free_mib() == 1024 - 100


def test_create_rounds_the_size_up_to_whole_extents(plain, fake):
    """When the size is no multiple of the 4 MiB extent, LVM (and so the fake) rounds it up."""
    disk = new_disk(10)
    plain.create("inst1", disk, 0)
    assert (fake.dev / "xenvg" / lv_of(disk)).stat().st_size == 12 * MIB
    assert [v["size"] for v in plain.list_volumes()] == [12]
    assert fake.free_mib() == 1024 - 12


def test_create_again_is_harmless_and_runs_no_lvcreate(plain, fake):
    """When the LV is there with its size (even rounded up), create succeeds without touching it."""
    disk = new_disk(10)
    first = plain.create("inst1", disk, 0)
    fake.clear_log()
    assert plain.create("inst1", disk, 0) == first
    assert "lvcreate" not in fake.commands()


def test_create_refuses_an_existing_lv_that_is_too_small(plain, fake):
    disk = new_disk(100)
    fake.run("lvcreate", "-L", "8m", "-n", lv_of(disk), "xenvg")
    with pytest.raises(StorageError, match=rf"disk 0 of inst1: logical volume xenvg/{lv_of(disk)} exists with"
                                           r" 8 MiB, less than the 100 MiB asked"):
        plain.create("inst1", disk, 0)


def test_create_names_free_space_and_need_when_the_group_is_full(plain, fake):
    disk = new_disk(2048)
    with pytest.raises(StorageError) as info:
        plain.create("inst1", disk, 0)
    assert str(info.value) == "volume group xenvg has 1024 MiB free, disk 0 of inst1 needs 2048 MiB"
    assert plain.list_volumes() == []


def test_create_says_the_volume_group_is_missing(fake):
    other = lvm.PlainStorage({"volume_group_name": "novg", "lvm_bindir": str(FAKE_BIN),
                              "lvm_dev_dir": str(fake.dev)})
    with pytest.raises(StorageError, match=r"cannot create disk 1 of inst1: volume group novg not found on this"
                                           r" node .*gnt-cluster modify --vg-name"):
        other.create("inst1", new_disk(), 1)
    assert plain_volumes(fake) == {"xenvg": []}


def test_create_refuses_qcow2(plain, fake):
    with pytest.raises(StorageError, match="plain disks are raw logical volumes, format 'qcow2' is not supported"):
        plain.create("inst1", new_disk(format="qcow2"), 0)
    assert fake.log() == []


def test_create_activates_an_existing_inactive_lv(plain, fake):
    disk = new_disk(8)
    fake.run("lvcreate", "-L", "8m", "-n", lv_of(disk), "xenvg")
    fake.run("lvchange", "-a", "n", f"xenvg/{lv_of(disk)}")
    path = fake.dev / "xenvg" / lv_of(disk)
    assert not path.exists()
    plain.create("inst1", disk, 0)
    assert path.exists()
    assert ["lvchange", "-a", "y", f"xenvg/{lv_of(disk)}"] in fake.log()


# --- access ---------------------------------------------------------------------

def test_access_names_a_missing_disk(plain, fake):
    disk = new_disk()
    with pytest.raises(StorageError, match=rf"^disk 2 of inst1 is missing \(logical volume xenvg/{lv_of(disk)}"
                                           r" not found\)$"):
        plain.access("inst1", disk, 2)


def test_access_reactivates_an_lv_whose_device_went_away(plain, fake):
    """When the LV was deactivated (say, after a reboot), access brings /dev/VG/LV back."""
    disk = new_disk(8)
    plain.create("inst1", disk, 0)
    fake.run("lvchange", "-an", f"xenvg/{lv_of(disk)}")
    access = plain.access("inst1", disk, 0)
    assert Path(access["path"]).exists()


def test_path_honours_a_ganeti_logical_id(plain, fake):
    """When the config records Ganeti's logical_id [vg, lv], the disk is found there."""
    disk = new_disk(8, logical_id=["othervg", "0c5f.disk0"])
    assert plain.path("inst1", disk, 0) == fake.dev / "othervg" / "0c5f.disk0"


# --- remove ---------------------------------------------------------------------

def test_remove_deletes_the_lv_and_gives_the_space_back(plain, fake):
    disk = new_disk(100)
    plain.create("inst1", disk, 0)
    plain.remove("inst1", disk, 0)
    assert fake.lv(lv_of(disk)) is None
    assert not (fake.dev / "xenvg" / lv_of(disk)).exists()
    assert ["lvremove", "-f", f"xenvg/{lv_of(disk)}"] in fake.log()
    assert fake.free_mib() == 1024


def test_remove_of_a_missing_disk_or_group_succeeds(plain, fake):
    """When the LV (or its whole group) is gone, remove counts it as removed, as Ganeti does."""
    plain.create("inst1", new_disk(8), 0)
    plain.remove("inst1", new_disk(), 0)
    gone = lvm.PlainStorage({"volume_group_name": "novg", "lvm_bindir": str(FAKE_BIN),
                             "lvm_dev_dir": str(fake.dev)})
    gone.remove("inst1", new_disk(), 0)
    assert [argv[0] for argv in fake.log()].count("lvremove") == 2
    assert len(plain.list_volumes()) == 1


def test_remove_refuses_an_open_lv_and_keeps_it(plain, fake):
    """When something holds the device open (a running guest), LVM refuses even with -f."""
    disk = new_disk(8)
    access = plain.create("inst1", disk, 0)
    with open(access["path"], "rb"):
        with pytest.raises(StorageError, match=rf"cannot remove disk 0 of inst1: logical volume xenvg/{lv_of(disk)}"
                                               r" \(or a snapshot of it\) is in use; is the instance still"
                                               r" running\? \(Logical volume .* in use\.\)"):
            plain.remove("inst1", disk, 0)
        assert fake.lv(lv_of(disk)) is not None
    plain.remove("inst1", disk, 0)
    assert fake.lv(lv_of(disk)) is None


def test_remove_takes_the_snapshots_along(plain, fake):
    disk = new_disk(8)
    plain.create("inst1", disk, 0)
    plain.snapshot("inst1", disk, 0, 8)
    plain.remove("inst1", disk, 0)
    assert plain.list_volumes() == []


# --- grow -----------------------------------------------------------------------

def test_grow_extends_the_lv_and_keeps_its_data(plain, fake):
    disk = new_disk(12)
    path = Path(plain.create("inst1", disk, 0)["path"])
    with open(path, "r+b") as f:
        f.write(b"genet")
    plain.grow("inst1", disk, 0, 100)
    assert ["lvextend", "-L", "100m", f"xenvg/{lv_of(disk)}"] in fake.log()
    assert path.stat().st_size == 100 * MIB
    assert path.read_bytes()[:5] == b"genet"
    assert [v["size"] for v in plain.list_volumes()] == [100]


def test_grow_to_a_size_the_lv_has_runs_no_lvextend(plain, fake):
    """When a grow is repeated (or asks for less than the rounded-up size), nothing runs."""
    disk = new_disk(10)                       # 12 MiB after rounding
    plain.create("inst1", disk, 0)
    fake.clear_log()
    plain.grow("inst1", disk, 0, 12)
    plain.grow("inst1", disk, 0, 11)
    assert "lvextend" not in fake.commands()


def test_grow_names_free_space_and_need_when_the_group_is_full(plain, fake):
    disk = new_disk(100)
    plain.create("inst1", disk, 0)
    with pytest.raises(StorageError) as info:
        plain.grow("inst1", disk, 0, 4096)
    assert str(info.value) == ("volume group xenvg has 924 MiB free, growing disk 0 of inst1 to 4096 MiB"
                               " needs 3996 MiB")
    assert [v["size"] for v in plain.list_volumes()] == [100]


def test_grow_refuses_a_disk_with_snapshots_and_names_them(plain, fake):
    """LVM extends an origin only while inactive; genet says which snapshots are in the way."""
    disk = new_disk(8)
    plain.create("inst1", disk, 0)
    plain.snapshot("inst1", disk, 0, 8)
    with pytest.raises(StorageError, match=rf"cannot grow disk 0 of inst1: it has snapshots \({lv_of(disk)}\.snap\)"):
        plain.grow("inst1", disk, 0, 64)


def test_grow_of_a_missing_disk_fails(plain, fake):
    disk = new_disk()
    with pytest.raises(StorageError, match=rf"cannot grow disk 0 of inst1: logical volume xenvg/{lv_of(disk)}"
                                           " not found"):
        plain.grow("inst1", disk, 0, 200)


# --- rename ---------------------------------------------------------------------

def test_rename_of_the_instance_leaves_the_volumes_alone(plain, fake):
    disk = new_disk(8)
    before = plain.create("old", disk, 0)["path"]
    fake.clear_log()
    plain.rename("old", "new", [disk])
    assert fake.log() == []
    assert plain.access("new", disk, 0)["path"] == before


# --- snapshots ------------------------------------------------------------------

def test_snapshot_keeps_the_data_of_its_moment(plain, fake):
    disk = new_disk(8)
    origin = Path(plain.create("inst1", disk, 0)["path"])
    with open(origin, "r+b") as f:
        f.write(b"before")
    snap = plain.snapshot("inst1", disk, 0, 4)
    with open(origin, "r+b") as f:
        f.write(b"AFTER!")
    assert snap == fake.dev / "xenvg" / f"{lv_of(disk)}.snap"
    assert snap.read_bytes()[:6] == b"before"
    assert ["lvcreate", "-s", "-L", "4m", "-n", f"{lv_of(disk)}.snap", f"xenvg/{lv_of(disk)}"] in fake.log()
    attrs = {v["name"]: v["attr"] for v in plain.list_volumes()}
    assert attrs == {lv_of(disk): "owi-a-s---", f"{lv_of(disk)}.snap": "swi-a-s---"}


def test_snapshot_again_returns_the_same_snapshot(plain, fake):
    disk = new_disk(8)
    plain.create("inst1", disk, 0)
    first = plain.snapshot("inst1", disk, 0, 8)
    fake.clear_log()
    assert plain.snapshot("inst1", disk, 0, 8) == first
    assert "lvcreate" not in fake.commands()


def test_snapshot_refuses_a_name_taken_by_another_lv(plain, fake):
    disk = new_disk(8)
    plain.create("inst1", disk, 0)
    fake.run("lvcreate", "-L", "4m", "-n", f"{lv_of(disk)}.snap", "xenvg")
    with pytest.raises(StorageError, match=rf"xenvg/{lv_of(disk)}\.snap exists and is not a snapshot of"):
        plain.snapshot("inst1", disk, 0, 8)


def test_snapshot_names_free_space_and_need_when_the_group_is_full(plain, fake):
    disk = new_disk(1000)
    plain.create("inst1", disk, 0)
    with pytest.raises(StorageError) as info:
        plain.snapshot("inst1", disk, 0, 100)
    assert str(info.value) == "volume group xenvg has 24 MiB free, a snapshot of disk 0 of inst1 needs 100 MiB"


def test_snapshot_of_a_missing_disk_fails(plain, fake):
    with pytest.raises(StorageError, match="cannot snapshot disk 0 of inst1: logical volume xenvg/.* not found"):
        plain.snapshot("inst1", new_disk(), 0, 8)


def test_remove_snapshot_leaves_the_disk(plain, fake):
    disk = new_disk(8)
    plain.create("inst1", disk, 0)
    plain.snapshot("inst1", disk, 0, 8)
    plain.remove_snapshot("inst1", disk, 0)
    plain.remove_snapshot("inst1", disk, 0)
    assert [v["name"] for v in plain.list_volumes()] == [lv_of(disk)]
    assert plain.access("inst1", disk, 0)


# --- listing --------------------------------------------------------------------

def test_list_volumes_reports_every_lv_of_the_group(plain, fake):
    fake.run("lvcreate", "-L", "20m", "-n", "foreign", "xenvg")
    disk = new_disk(8)
    plain.create("inst1", disk, 0)
    assert sorted(plain.list_volumes(), key=lambda v: v["name"]) == sorted([
        {"name": "foreign", "vg": "xenvg", "size": 20, "attr": "-wi-a-----"},
        {"name": lv_of(disk), "vg": "xenvg", "size": 8, "attr": "-wi-a-----"},
    ], key=lambda v: v["name"])


def test_list_volumes_says_when_the_group_is_missing(fake):
    other = lvm.PlainStorage({"volume_group_name": "novg", "lvm_bindir": str(FAKE_BIN),
                              "lvm_dev_dir": str(fake.dev)})
    with pytest.raises(StorageError, match="^volume group novg not found on this node$"):
        other.list_volumes()


def test_vg_info_reports_sizes_in_mib(plain, fake):
    plain.create("inst1", new_disk(100), 0)
    assert plain.vg_info() == {"name": "xenvg", "size": 1024, "free": 924, "extent_size": 4}


# --- adoption -------------------------------------------------------------------

def test_adopt_renames_the_lv_to_the_disk_and_reports_its_size(plain, fake):
    fake.run("lvcreate", "-L", "10m", "-n", "olddata", "xenvg")
    disk = new_disk(1)
    access = plain.adopt("inst1", disk, 0, "olddata")
    assert access == {"path": str(fake.dev / "xenvg" / lv_of(disk)), "format": "raw", "mode": "rw",
                      "size": 12, "uuid": disk["uuid"], "adopted": "xenvg/olddata"}
    assert ["lvrename", "xenvg", "olddata", lv_of(disk)] in fake.log()
    assert [v["name"] for v in plain.list_volumes()] == [lv_of(disk)]


def test_adopt_again_after_the_rename_succeeds(plain, fake):
    fake.run("lvcreate", "-L", "8m", "-n", "olddata", "xenvg")
    disk = new_disk(1)
    first = plain.adopt("inst1", disk, 0, "olddata")
    assert plain.adopt("inst1", disk, 0, "xenvg/olddata") == first


def test_adopt_accepts_a_device_path_of_the_cluster_group(plain, fake):
    fake.run("lvcreate", "-L", "8m", "-n", "olddata", "xenvg")
    assert plain.adopt("inst1", new_disk(1), 0, "/dev/xenvg/olddata")["size"] == 8


def test_adopt_refuses_an_open_lv(plain, fake):
    """As Ganeti's --disk N:adopt=LV, an LV in use (a guest, a mount) is not taken."""
    fake.run("lvcreate", "-L", "8m", "-n", "busy", "xenvg")
    fake.run("fake", "open", "xenvg/busy", "1")
    with pytest.raises(StorageError, match=r"^cannot adopt xenvg/busy as disk 0 of inst1: it is open"):
        plain.adopt("inst1", new_disk(), 0, "busy")
    assert fake.lv("busy") is not None


@pytest.mark.parametrize("name, message", [
    ("nothere", "cannot adopt xenvg/nothere as disk 0 of inst1: no such logical volume"),
    ("othervg/data", "cannot adopt othervg/data as disk 0 of inst1: it is not in the cluster's volume group xenvg"),
    ("data.snap", "cannot adopt xenvg/data.snap as disk 0 of inst1: it is a snapshot of data"),
])
def test_adopt_refuses_what_is_not_a_free_lv_of_the_group(plain, fake, name, message):
    fake.run("lvcreate", "-L", "8m", "-n", "data", "xenvg")
    fake.run("lvcreate", "-s", "-L", "4m", "-n", "data.snap", "xenvg/data")
    with pytest.raises(StorageError) as info:
        plain.adopt("inst1", new_disk(), 0, name)
    assert str(info.value) == message


def test_adopt_refuses_when_the_disk_name_is_taken(plain, fake):
    disk = new_disk(8)
    plain.create("inst1", disk, 0)
    fake.run("lvcreate", "-L", "8m", "-n", "data", "xenvg")
    with pytest.raises(StorageError, match=rf"cannot adopt xenvg/data .*: xenvg/{lv_of(disk)} already exists"):
        plain.adopt("inst1", disk, 0, "data")


# --- the runner -----------------------------------------------------------------

def test_missing_lvm_binaries_are_named_with_the_package(tmp_path):
    storage = lvm.PlainStorage({"lvm_bindir": str(tmp_path)})
    with pytest.raises(StorageError, match=rf"{tmp_path}/lvs not found: install lvm2 on this node"):
        storage.access("inst1", new_disk(), 0)


def test_the_environment_points_noded_at_the_fake(fake, monkeypatch):
    """Without storage params, GENET_LVM_BINDIR and GENET_LVM_DEV_DIR choose commands and devices."""
    monkeypatch.setenv("GENET_LVM_BINDIR", str(FAKE_BIN))
    monkeypatch.setenv("GENET_LVM_DEV_DIR", str(fake.dev))
    storage = base.get("plain", {"volume_group_name": "xenvg"})
    assert isinstance(storage, lvm.PlainStorage) and not storage.shared and not storage.mirrored
    assert storage.create("inst1", new_disk(8), 0)["path"].startswith(str(fake.dev))


def test_the_default_volume_group_is_ganetis_xenvg(fake, monkeypatch):
    monkeypatch.setenv("GENET_LVM_BINDIR", str(FAKE_BIN))
    monkeypatch.delenv("GENET_LVM_DEV_DIR", raising=False)
    storage = base.get("plain")
    disk = new_disk()
    assert storage.volume_group() == "xenvg" == config.storage_params(config.new_cluster("c", "n", "1.2.3.4"))[
        "volume_group_name"]
    assert storage.path("i", disk, 0) == Path("/dev/xenvg") / lv_of(disk)


# --- the node daemon's procedures with plain disks ---------------------------------

def test_noded_disk_procedures_work_on_plain_disks(fake, node_env, monkeypatch):
    """blockdev_create/access/find/grow/rename/remove reach the plain template with the cluster's params."""
    from genet.noded import NodeProcedures
    monkeypatch.setenv("GENET_LVM_BINDIR", str(FAKE_BIN))
    monkeypatch.setenv("GENET_LVM_DEV_DIR", str(fake.dev))
    data = config.new_cluster("c1", "node1", "127.0.0.11")
    sp = config.storage_params(data)
    assert sp["volume_group_name"] == "xenvg"
    node = NodeProcedures()
    disks = [new_disk(8), new_disk(16)]
    for index, disk in enumerate(disks):
        node.rpc_blockdev_create("inst1", "plain", disk, index, sp)
    paths = [a["path"] for a in node.rpc_blockdev_access("inst1", "plain", disks, sp)]
    assert paths == [str(fake.dev / "xenvg" / lv_of(d)) for d in disks]
    assert [f.dev_path for f in node.rpc_blockdev_find("inst1", "plain", disks, sp)] == paths
    assert node.rpc_blockdev_grow("inst1", "plain", disks[0], 0, 32, sp)
    assert node.rpc_blockdev_rename("inst1", "inst2", "plain", disks, sp)
    for index, disk in enumerate(disks):
        assert node.rpc_blockdev_remove("inst2", "plain", disk, index, sp)
    assert node.rpc_blockdev_find("inst2", "plain", disks, sp) == [None, None]
    assert fake.free_mib() == 1024


# --- the cluster's volume group -----------------------------------------------------

class ClusterConfig:
    def __init__(self, path: Path):
        config.write_atomic(path, config.dumps(config.new_cluster("c1", "node1", "192.0.2.11")))
        self.path = path
        self.cfg = ConfigWriter(path)

    def run(self, op):
        from genet.cmdlib import lu_for
        ctx = SimpleNamespace(cfg=self.cfg, sync_new_candidate=lambda name: None)
        lu = lu_for(op.OP_ID)(ctx, op, lambda msg: None)
        lu.expand_names()
        lu.check_prereq()
        return lu.exec()

    def add_instance(self, name: str, template: str) -> None:
        def change(data):
            data["instances"][name] = {"name": name, "uuid": f"uuid-{name}", "primary_node": "node1",
                                       "disk_template": template, "disks": []}
        self.cfg.update(change)


def test_modify_vg_name_sets_the_group_nodes_are_told(tmp_path):
    cluster = ClusterConfig(tmp_path / "config.data")
    cluster.run(opcodes.OpClusterSetParams(vg_name="genetvg"))
    assert config.storage_params(cluster.cfg.snapshot())["volume_group_name"] == "genetvg"


def test_modify_vg_name_is_refused_while_plain_or_drbd_instances_use_the_group(tmp_path):
    cluster = ClusterConfig(tmp_path / "config.data")
    cluster.add_instance("web1", "plain")
    cluster.add_instance("web2", "file")
    cluster.add_instance("web3", "drbd")
    before = cluster.path.read_bytes()
    with pytest.raises(errors.OpPrereqError, match="cannot change the volume group while instances have"
                                                   " disks in it: web1, web3'") as info:
        cluster.run(opcodes.OpClusterSetParams(vg_name="genetvg"))
    assert info.value.ecode == errors.ECode.WRONG_STATE
    assert cluster.path.read_bytes() == before
    cluster.run(opcodes.OpClusterSetParams(vg_name="xenvg"))        # unchanged: allowed


@pytest.mark.parametrize("bad", ["", "-vg", "a/b", "with space", ".", "x" * 128])
def test_vg_names_lvm_would_refuse_are_refused_by_the_opcode(bad):
    """The same rule as lvm2's for CLI and RAPI (``vg_name`` of PUT /2/modify)."""
    with pytest.raises(errors.OpPrereqError, match="vg_name") as info:
        opcodes.from_dict({"OP_ID": "OP_CLUSTER_SET_PARAMS", "vg_name": bad})
    assert info.value.ecode == "wrong_input"


def test_a_good_vg_name_passes_the_opcode():
    assert opcodes.OpClusterSetParams(vg_name="vg_genet-1.0+x").vg_name == "vg_genet-1.0+x"


def test_gnt_cluster_init_refuses_a_bad_vg_name_before_anything(monkeypatch):
    from genet.cli import gnt_cluster
    monkeypatch.setattr(gnt_cluster.bootstrap, "init_cluster",
                        lambda *a, **k: pytest.fail("init_cluster must not run"))
    ns = SimpleNamespace(enabled_hypervisors="fake", vg_name="bad/vg")
    with pytest.raises(errors.OpPrereqError, match="invalid volume group name 'bad/vg'"):
        gnt_cluster.cmd_init(ns)


# --- the fake behaves as lvm2 where genet depends on it -------------------------------

@pytest.mark.parametrize("setup, argv, code, stderr", [
    ([], ["lvcreate", "-L", "8m", "-n", "x", "novg"], 5,
     'Volume group "novg" not found\n  Cannot process volume group novg'),
    ([["lvcreate", "-L", "8m", "-n", "x", "xenvg"]], ["lvcreate", "-L", "8m", "-n", "x", "xenvg"], 5,
     'Logical Volume "x" already exists in volume group "xenvg"'),
    ([], ["lvcreate", "-L", "2g", "-n", "x", "xenvg"], 5,
     'Volume group "xenvg" has insufficient free space (256 extents): 512 required.'),
    ([], ["lvcreate", "-L", "8m", "-n", "snapshot1", "xenvg"], 3,
     'Names starting "snapshot" or "pvmove" are reserved. Please choose a different LV name.'),
    ([], ["lvcreate", "-L", "8m", "-n", "-x", "xenvg"], 3, 'Logical volume name "-x" is invalid.'),
    ([["lvcreate", "-L", "8m", "-n", "o", "xenvg"], ["lvcreate", "-s", "-L", "4m", "-n", "s", "xenvg/o"]],
     ["lvcreate", "-s", "-L", "4m", "-n", "s2", "xenvg/s"], 5, "Snapshots of snapshots are not supported."),
    ([], ["lvcreate", "-s", "-L", "4m", "-n", "s", "xenvg/nope"], 5,
     "Snapshot origin LV nope not found in Volume group xenvg."),
    ([], ["lvcreate", "-s", "-n", "s", "xenvg/nope"], 3, "Please specify either size or extents with snapshots."),
    ([], ["lvremove", "-f", "xenvg/nope"], 5, 'Failed to find logical volume "xenvg/nope"'),
    ([["lvcreate", "-L", "8m", "-n", "x", "xenvg"]], ["lvremove", "xenvg/x"], 5,
     "Logical volume xenvg/x not removed."),
    ([["lvcreate", "-L", "8m", "-n", "x", "xenvg"], ["fake", "open", "xenvg/x", "1"]], ["lvremove", "-f", "xenvg/x"], 5,
     "Logical volume xenvg/x in use."),
    ([["lvcreate", "-L", "8m", "-n", "x", "xenvg"]], ["lvextend", "-L", "8m", "xenvg/x"], 5, "No size change."),
    ([["lvcreate", "-L", "8m", "-n", "x", "xenvg"]], ["lvextend", "-L", "4m", "xenvg/x"], 5,
     "New size given (1 extents) not larger than existing size (2 extents)"),
    ([["lvcreate", "-L", "8m", "-n", "x", "xenvg"]], ["lvextend", "-L", "2g", "xenvg/x"], 5,
     "Insufficient free space: 510 extents needed, but only 254 available"),
    ([["lvcreate", "-L", "8m", "-n", "o", "xenvg"], ["lvcreate", "-s", "-L", "4m", "-n", "s", "xenvg/o"]],
     ["lvextend", "-L", "16m", "xenvg/o"], 5,
     "Snapshot origin volumes can be resized only while inactive: try lvchange -an."),
    ([], ["lvrename", "xenvg", "nope", "new"], 5, 'Existing logical volume "nope" not found in volume group "xenvg"'),
    ([["lvcreate", "-L", "8m", "-n", "a", "xenvg"], ["lvcreate", "-L", "8m", "-n", "b", "xenvg"]],
     ["lvrename", "xenvg", "a", "b"], 5, 'Logical Volume "b" already exists in volume group "xenvg"'),
    ([], ["lvs", "xenvg/nope"], 5, 'Failed to find logical volume "xenvg/nope"'),
    ([], ["vgs", "novg"], 5, 'Volume group "novg" not found\n  Cannot process volume group novg'),
    ([], ["lvcreate", "--bogus", "xenvg"], 3, "lvcreate: unrecognized option '--bogus'\n"
                                             "  Error during parsing of command line."),
    ([], ["lvcreate", "-L", "8q", "xenvg"], 3, "Invalid argument for --size: 8q\n"
                                              "  Error during parsing of command line."),
    ([], ["lvcreate", "-W", "maybe", "-L", "8m", "xenvg"], 3, "Invalid argument for --wipesignatures: maybe\n"
                                                             "  Error during parsing of command line."),
    ([], ["lvcreate", "-L", "8m", "-i", "2", "xenvg"], 3, "fake lvm: lvcreate -i is real lvm2 but not modelled"),
])
def test_the_fake_answers_as_lvm2(fake, setup, argv, code, stderr):
    for step in setup:
        assert fake.run(*step).returncode == 0, step
    result = fake.run(*argv)
    assert (result.returncode, result.stderr) == (code, f"  {stderr}\n")


def test_the_fake_prints_lvm2s_progress_lines(fake):
    created = fake.run("lvcreate", "-L", "10m", "-n", "x", "xenvg")
    assert created.stdout == ("  Rounding up size to full physical extent 12.00 MiB\n"
                              '  Logical volume "x" created.\n')
    extended = fake.run("lvextend", "-L", "1000m", "xenvg/x")
    assert extended.stdout == ("  Size of logical volume xenvg/x changed from 12.00 MiB (3 extents) to"
                               " 1000.00 MiB (250 extents).\n  Logical volume xenvg/x successfully resized.\n")
    assert fake.run("lvrename", "xenvg/x", "y").stdout == '  Renamed "x" to "y" in volume group "xenvg"\n'
    assert fake.run("lvremove", "-f", "xenvg/y").stdout == '  Logical volume "y" successfully removed.\n'


def test_the_fake_removes_an_active_lv_without_f_only_on_yes(fake):
    fake.run("lvcreate", "-L", "8m", "-n", "x", "xenvg")
    answered = fake.run("lvremove", "xenvg/x", stdin="y\n")
    assert answered.returncode == 0
    assert answered.stdout.startswith("Do you really want to remove active logical volume xenvg/x? [y/n]: ")
    fake.run("lvcreate", "-L", "8m", "-n", "x", "xenvg")
    assert fake.run("lvremove", "--yes", "xenvg/x").returncode == 0


def test_the_fake_counts_a_process_holding_the_device_as_open(fake):
    fake.run("lvcreate", "-L", "8m", "-n", "x", "xenvg")
    attr = ["lvs", "--noheadings", "-o", "lv_attr", "xenvg/x"]
    assert fake.run(*attr).stdout.strip() == "-wi-a-----"
    with open(fake.dev / "xenvg" / "x", "rb"):
        assert fake.run(*attr).stdout.strip() == "-wi-ao----"
        assert fake.run("lvchange", "-an", "xenvg/x").stderr == "  Logical volume xenvg/x in use.\n"
    assert fake.run(*attr).stdout.strip() == "-wi-a-----"


def test_the_fake_script_itself_is_lvm_with_subcommands(fake):
    """test/fakes/lvm runs as ``lvm COMMAND``, like /sbin/lvm; the links in lvm-bin name the command."""
    env = {k: v for k, v in fake.env.items() if k != "GENET_FAKE_LVM_LOG"}
    direct = subprocess.run([str(FAKE_LVM), "vgs", "--noheadings", "-o", "vg_name,vg_size"], capture_output=True,
                            text=True, env=env)
    assert (direct.returncode, direct.stdout) == (0, "  xenvg 1.00g\n")
    assert fake.run("vgs", "--noheadings", "-o", "vg_name,vg_size").stdout == direct.stdout
    unknown = subprocess.run([str(FAKE_LVM), "pvmove"], capture_output=True, text=True, env=env)
    assert (unknown.returncode, unknown.stderr) == (2, "  No such command 'pvmove'.  Try 'help'.\n")


def test_the_fake_reports_in_the_units_asked(fake):
    fake.run("lvcreate", "-L", "1g", "-n", "x", "xenvg")
    report = ["lvs", "--noheadings", "--separator", "|", "-o", "lv_name,lv_size", "xenvg"]
    assert fake.run(*report).stdout == "  x|1.00g\n"
    assert fake.run(*report, "--units", "m").stdout == "  x|1024.00m\n"
    assert fake.run(*report, "--units", "m", "--nosuffix").stdout == "  x|1024.00\n"
    assert fake.run(*report, "--units", "b", "--nosuffix").stdout == f"  x|{1024 * MIB}\n"
    assert fake.run(*report, "--units", "M").stdout == "  x|1073.74M\n"


# --- genet's command lines are lvm2's --------------------------------------------------

# From lvm2's tools/command-lines.in (2.03): the options each command takes (OO_ALL included)
# and the forms of its positional arguments, for the commands genet runs.
LVM2_SYNTAX = {
    "lvcreate": {"options": {"--size": "SizeMB", "-L": "SizeMB", "--name": "String", "-n": "String",
                             "--snapshot": None, "-s": None, "--wipesignatures": "Bool", "-W": "Bool",
                             "--yes": None, "-y": None, "--zero": "Bool", "-Z": "Bool"},
                 "forms": {False: ["VG"], True: ["LV"]}},        # linear: VG; --snapshot: origin LV
    "lvremove": {"options": {"--force": None, "-f": None, "--yes": None, "-y": None}, "forms": ["LV"]},
    "lvextend": {"options": {"--size": "PSizeMB", "-L": "PSizeMB"}, "forms": ["LV"]},
    "lvrename": {"options": {}, "forms": ["VG", "LV_name", "LV_new"]},   # lvrename VG LV LV_new
    "lvchange": {"options": {"--activate": "Active", "-a": "Active"}, "forms": ["LV"]},
    "lvs": {"options": {"--noheadings": None, "--units": "Units", "--nosuffix": None, "--separator": "String",
                        "--options": "String", "-o": "String"}, "forms": ["VG|LV"]},
    "vgs": {"options": {"--noheadings": None, "--units": "Units", "--nosuffix": None, "--separator": "String",
                        "--options": "String", "-o": "String"}, "forms": ["VG"]},
}
LVM2_VALUES = {
    "SizeMB": r"\d+(\.\d+)?[bBsSkKmMgGtTpPeE]?", "PSizeMB": r"\+?\d+(\.\d+)?[bBsSkKmMgGtTpPeE]?",
    "Bool": r"y|n|yes|no", "Active": r"y|n|ay|an|ey|en|ly|ln|sy|sn", "Units": r"[hHbBsSkKmMgGtTpPeErR]",
    "String": r".+",
}
LVM2_ARGS = {"VG": r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*", "LV": r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*/[A-Za-z0-9+_.][A-Za-z0-9+_.-]*",
             "LV_new": r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*"}
LVM2_ARGS["LV_name"] = LVM2_ARGS["LV_new"]             # an LV named within the VG given before it
LVM2_ARGS["VG|LV"] = f"({LVM2_ARGS['VG']})|({LVM2_ARGS['LV']})"
LVS_FIELDS = {"lv_name", "vg_name", "lv_size", "lv_attr", "origin"}
VGS_FIELDS = {"vg_name", "vg_size", "vg_free", "vg_extent_size"}


def lvm2_syntax_problems(argv: list[str]) -> list[str]:
    import re
    command, args = argv[0], argv[1:]
    spec = LVM2_SYNTAX.get(command)
    if spec is None:
        return [f"{command}: not a command genet should run"]
    problems, positional, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            if arg not in spec["options"]:
                problems.append(f"{command}: {arg} is not an option of {command} in lvm2")
            elif spec["options"][arg] is not None:
                value = args[i + 1] if i + 1 < len(args) else ""
                if not re.fullmatch(LVM2_VALUES[spec["options"][arg]], value):
                    problems.append(f"{command}: {arg} {value!r} is not a {spec['options'][arg]}")
                if arg in ("-o", "--options"):
                    known = LVS_FIELDS if command == "lvs" else VGS_FIELDS
                    problems += [f"{command}: field {f}" for f in value.split(",") if f not in known]
                i += 1
        else:
            positional.append(arg)
        i += 1
    forms = spec["forms"]
    if isinstance(forms, dict):
        forms = forms["-s" in args or "--snapshot" in args]
    if len(positional) != len(forms) or not all(re.fullmatch(LVM2_ARGS[f], a) for f, a in zip(forms, positional)):
        problems.append(f"{command}: arguments {positional} do not match {forms}")
    return problems


def test_every_command_line_genet_runs_is_valid_lvm2_syntax(plain, fake):
    """A whole lifecycle, then every logged argv checked against lvm2's documented command lines."""
    disk = new_disk(10)
    plain.create("inst1", disk, 0)
    fake.run("lvchange", "-an", f"xenvg/{lv_of(disk)}")
    plain.access("inst1", disk, 0)
    plain.grow("inst1", disk, 0, 20)
    plain.snapshot("inst1", disk, 0, 8)
    plain.remove_snapshot("inst1", disk, 0)
    plain.list_volumes()
    plain.vg_info()
    fake.run("lvcreate", "-L", "8m", "-n", "olddata", "xenvg")
    other = new_disk(1)
    plain.adopt("inst1", other, 1, "olddata")
    plain.remove("inst1", disk, 0)
    plain.remove("inst1", other, 1)
    log = fake.log()
    assert {argv[0] for argv in log} == {"lvcreate", "lvremove", "lvextend", "lvrename", "lvchange", "lvs", "vgs"}
    assert [p for argv in log for p in lvm2_syntax_problems(argv)] == []


def test_the_syntax_check_catches_a_wrong_command_line():
    assert lvm2_syntax_problems(["lvcreate", "-L", "10", "--stripes", "2", "xenvg/lv"]) == [
        "lvcreate: --stripes is not an option of lvcreate in lvm2",
        "lvcreate: arguments ['2', 'xenvg/lv'] do not match ['VG']"]
    assert lvm2_syntax_problems(["lvs", "-o", "lv_name,size", "xenvg"]) == ["lvs: field size"]
