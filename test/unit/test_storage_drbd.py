"""The drbd disk template against the fake DRBD (test/fakes/drbd) and drbd-utils' own parser.

Every scenario runs for DRBD 8.4 (status from /proc/drbd, command lines by minor and address)
and DRBD 9 (``drbdsetup status --json``, command lines by resource and peer node-id). Each
node has its own fake state, bin directory, volumes and genet config directory; the nodes meet
on one wire file. In 8.4 reading /proc/drbd moves nothing, so time passes with ``fake tick``;
in 9 every status call is a moment of time passing, as in the fake's model.
"""
from __future__ import annotations

import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from genet.drbd_pool import DrbdPool
from genet.storage import base
from genet.storage.base import StorageError
from genet.storage.drbd.backend import DrbdStorage
from genet.storage.drbd.backing import CallableBacking, FileBacking
from genet.storage.drbd.commands import commands
from genet.storage.drbd.resource import Resource, Side, render_config
from genet.storage.drbd.status import parse_proc_drbd, parse_status_json, sync_status

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "drbd"
ADDRESSES = {"node1": "203.0.113.1", "node2": "203.0.113.2", "node3": "203.0.113.3"}


def drbdadm() -> str:
    found = shutil.which("drbdadm") or "/usr/sbin/drbdadm"
    assert os.path.exists(found), "drbdadm missing: install drbd-utils (autotools/install-deps)"
    return found


def drbdadm84() -> str:
    for path in ("/usr/lib/drbd/drbdadm-84", "/lib/drbd/drbdadm-84"):
        if os.path.exists(path):
            return path
    raise AssertionError("drbdadm-84 missing: install drbd-utils (autotools/install-deps)")


def parse_with_drbdadm(path: Path, version: str) -> subprocess.CompletedProcess:
    tool = drbdadm84() if version == "8.4" else drbdadm()
    return subprocess.run([tool, "-c", str(path), "dump", "all"], capture_output=True, text=True)


class Node:
    """One fake DRBD host and genet's drbd template on it."""

    def __init__(self, tmp: Path, name: str, version: str, wire: Path, program: Path = FAKE):
        self.name, self.version, self.tmp = name, version, tmp
        self.bin = tmp / f"{name}-bin"
        self.bin.mkdir()
        self.state = tmp / f"{name}.json"
        self.proc = tmp / f"{name}.proc"
        self.dev = tmp / f"{name}-dev"
        self.volumes = tmp / f"{name}-volumes"
        self.conf = tmp / f"{name}-conf"
        for prog in ("drbdsetup", "drbdmeta", "fake"):
            wrapper = self.bin / prog
            wrapper.write_text(f"#!/bin/sh\nGENET_FAKE_DRBD_STATE={self.state} GENET_FAKE_DRBD_WIRE={wire} "
                               f"exec {sys.executable} -S {program} {prog} \"$@\"\n")
            wrapper.chmod(0o755)
        self.fake("init", name, version, f"--proc={self.proc}", f"--dev-dir={self.dev}", "--step=25")
        self.storage = DrbdStorage({"drbd_bindir": str(self.bin), "drbd_dev_dir": str(self.dev),
                                    "drbd_proc": str(self.proc), "drbd_conf_dir": str(self.conf),
                                    "drbd_backing": FileBacking(self.volumes), "node_name": name,
                                    "drbd_connect_timeout": 0})

    def run(self, prog: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / prog), *args], capture_output=True, text=True)

    def fake(self, *args: str) -> str:
        proc = self.run("fake", *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def show(self) -> dict:
        return json.loads(self.fake("show"))

    def md(self, disk: dict) -> dict | None:
        return json.loads(self.fake("md", str(self.volumes / f"{disk['uuid']}_meta.img")))

    def write(self, disk: dict, kib: int) -> None:
        self.fake("write", f"genet-{disk['uuid']}", str(kib))

    # the template's operations, for this node
    def create(self, disk):
        return self.storage.create("inst1", disk, 0)

    def assemble(self, disk, role, **kw):
        return self.storage.assemble("inst1", disk, 0, role, **kw)

    def status(self, disk):
        return self.storage.status("inst1", disk, 0)

    def promote(self, disk, **kw):
        return self.storage.promote("inst1", disk, 0, **kw)

    def demote(self, disk):
        return self.storage.demote("inst1", disk, 0)

    def dual(self, disk, enabled):
        return self.storage.set_dual_primary("inst1", disk, 0, enabled)


class Cluster:
    def __init__(self, tmp: Path, version: str, program: Path = FAKE):
        self.version = version
        self.wire = tmp / "wire.json"
        self.nodes = {name: Node(tmp, name, version, self.wire, program) for name in ADDRESSES}
        self.pool = DrbdPool()

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def disk(self, a: str = "node1", b: str = "node2", size: int = 64) -> dict:
        disk_uuid = str(uuid.uuid4())
        lid = self.pool.allocate_logical_id([a, b], [ADDRESSES[a], ADDRESSES[b]], (disk_uuid, 0))
        return {"uuid": disk_uuid, "size": size, "mode": "rw", "logical_id": lid}

    def moment(self, node: Node, disk: dict) -> dict:
        """Time passes once (one step of every resync), then ``node`` looks at the disk."""
        if self.version == "8.4":
            node.fake("tick")
        return node.status(disk)

    def settle(self, disk: dict, *names: str, limit: int = 12) -> list[dict]:
        """Let resyncs run until every named node reports "in sync"; the statuses seen on the way."""
        seen = []
        for _ in range(limit):
            seen.append(self.moment(self[names[0]], disk))
            if all(self[n].status(disk)["state"] == "in sync" for n in names):
                return seen
        raise AssertionError(f"not in sync after {limit} steps: {[self[n].status(disk) for n in names]}")

    def mirrored(self, a: str = "node1", b: str = "node2", size: int = 64) -> dict:
        """A disk in sync between a (primary) and b (secondary)."""
        disk = self.disk(a, b, size)
        for name in (a, b):
            self[name].create(disk)
            self[name].assemble(disk, "secondary")
        self[a].promote(disk, force=True)                 # the initial sync, as at instance creation
        self.settle(disk, a, b)
        return disk

    def cut(self, a: str, b: str) -> None:
        self[a].fake("cut", ADDRESSES[a], ADDRESSES[b])

    def heal(self, a: str, b: str) -> None:
        self[a].fake("heal", ADDRESSES[a], ADDRESSES[b])


@pytest.fixture(scope="session")
def fake_program(tmp_path_factory) -> Path:
    """The fake, compiled once: run as a script it would be compiled again at every call."""
    compiled = tmp_path_factory.mktemp("fake-drbd") / "drbd.pyc"
    py_compile.compile(str(FAKE), cfile=str(compiled), doraise=True)
    return compiled


@pytest.fixture
def short_tmp() -> Path:
    """A directory with a short path: drbdadm refuses a volume path longer than its token limit,
    and pytest's tmp_path grows with the user's and the test's names."""
    path = Path(tempfile.mkdtemp(prefix="drbd", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["8.4", "9"])
def cluster(request, short_tmp, fake_program) -> Cluster:
    return Cluster(short_tmp, request.param, fake_program)


@pytest.fixture
def cluster9(short_tmp, fake_program) -> Cluster:
    return Cluster(short_tmp, "9", fake_program)


# --- configuration files and command lines ------------------------------------------------

def sample_resource(version_nodes=("node1", "node2"), addresses=("203.0.113.1", "203.0.113.2"), port=11000,
                    minors=(0, 7), secret="0123456789abcdef0123") -> Resource:
    a = Side(version_nodes[0], addresses[0], minors[0], 0, "/dev/xenvg/d1_data", "/dev/xenvg/d1_meta")
    b = Side(version_nodes[1], addresses[1], minors[1], 1, "/dev/xenvg/d1_data", "/dev/xenvg/d1_meta")
    return Resource("genet-d1", port, secret, a, b, "disk 0 of inst1")


def dumped_sections(text: str) -> dict[str, dict[str, str]]:
    """net/disk sections of a ``drbdadm dump`` as {section: {keyword: value}}."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        head = re.match(r"^\s*(net|disk) \{$", line)
        if head:
            current = sections.setdefault(head.group(1), {})
        elif line.strip() == "}":
            current = None
        elif current is not None and line.strip():
            key, _, value = line.strip().rstrip(";").partition(" ")
            current[key] = value.strip()
    return sections


@pytest.mark.parametrize("version", ["8.4", "9"])
def test_generated_config_is_accepted_by_drbdadm_with_the_intended_settings(tmp_path, version):
    """When genet writes a resource file, drbd-utils' parser for that version reads back protocol C,
    the shared secret, the after-split-brain policies, fencing and on-io-error where they belong."""
    path = tmp_path / "r.res"
    path.write_text(render_config(sample_resource(), version))
    proc = parse_with_drbdadm(path, version)
    assert proc.returncode == 0, proc.stderr
    sections = dumped_sections(proc.stdout)
    net, disk = sections["net"], sections["disk"]
    assert net["protocol"] == "C"
    assert net["cram-hmac-alg"] == "sha1"
    assert net["shared-secret"] == "0123456789abcdef0123"
    assert (net["after-sb-0pri"], net["after-sb-1pri"], net["after-sb-2pri"]) == \
        ("discard-zero-changes", "consensus", "disconnect")
    assert disk["on-io-error"] == "detach"
    assert (net if version == "9" else disk)["fencing"] == "resource-only"
    assert "allow-two-primaries" not in net
    assert "device           minor 7;" in proc.stdout and "address          ipv4 203.0.113.2:11000;" in proc.stdout


@pytest.mark.parametrize("version", ["8.4", "9"])
def test_config_for_ipv6_and_fqdn_nodes_is_accepted(tmp_path, version):
    res = sample_resource(("node1.example.com", "node2.example.com"), ("2001:db8::1", "2001:db8::2"), 14999)
    path = tmp_path / "r.res"
    path.write_text(render_config(res, version))
    proc = parse_with_drbdadm(path, version)
    assert proc.returncode == 0, proc.stderr
    assert "address          ipv6 [2001:db8::2]:14999;" in proc.stdout


def test_parser_check_fails_on_a_config_for_the_other_version(tmp_path):
    """The parser check is not a formality: the 8.4 file (fencing in disk) is refused by DRBD 9's
    drbdadm, the 9 file (node-id, fencing in net) by 8.4's."""
    for written, read_by in (("8.4", "9"), ("9", "8.4")):
        path = tmp_path / f"{written}.res"
        path.write_text(render_config(sample_resource(), written))
        proc = parse_with_drbdadm(path, read_by)
        assert proc.returncode != 0
        assert "fencing" in proc.stderr or "node-id" in proc.stderr


@pytest.mark.parametrize("version", ["8.4", "9"])
def test_configs_of_pool_allocated_disks_do_not_conflict_for_drbdadm(tmp_path, version):
    """When the pool gives minors and ports to many disks of three nodes, drbdadm reading all their
    files at once finds no minor, address:port or volume used twice; a reused port is caught."""
    pool = DrbdPool()
    files = []
    pairs = [("node1", "node2"), ("node2", "node3"), ("node3", "node1"), ("node1", "node2"), ("node2", "node1")]
    for i, (a, b) in enumerate(pairs):
        lid = pool.allocate_logical_id([a, b], [ADDRESSES[a], ADDRESSES[b]], (f"inst{i}", 0))
        sides = [Side(lid["nodes"][j], lid["addresses"][j], lid["minors"][j], j, f"/dev/xenvg/d{i}_data",
                      f"/dev/xenvg/d{i}_meta") for j in (0, 1)]
        path = tmp_path / f"d{i}.res"
        path.write_text(render_config(Resource(f"genet-d{i}", lid["port"], lid["secret"], *sides), version))
        files.append(path)
    combined = tmp_path / "all.conf"
    combined.write_text("".join(f'include "{f}";\n' for f in files))
    proc = parse_with_drbdadm(combined, version)
    assert proc.returncode == 0, proc.stderr
    files[1].write_text(files[1].read_text().replace(":11001;", ":11000;"))     # a port given twice
    proc = parse_with_drbdadm(combined, version)
    assert proc.returncode != 0
    assert re.search(r"203\.0\.113\.2:11000.* is also used|conflicting use of IP '203\.0\.113\.2:11000'", proc.stderr,
                     re.S), proc.stderr


def normalise(lines: list[list[str]]) -> list[tuple]:
    """Command lines compared the way drbdsetup reads them: program, positionals, set of options."""
    out = []
    for argv in lines:
        prog = os.path.basename(argv[0]).replace("drbdsetup-84", "drbdsetup")
        out.append((prog, tuple(a for a in argv[1:] if not a.startswith("--")),
                    frozenset(a for a in argv[1:] if a.startswith("--"))))
    return out


def dry_run(tmp_path: Path, version: str, res: Resource, *command: str) -> list[list[str]]:
    path = tmp_path / f"{res.name}-{version}.res"
    path.write_text(render_config(res, version))
    tool = drbdadm84() if version == "8.4" else drbdadm()
    proc = subprocess.run([tool, "-d", "-c", str(path), *command, res.name], capture_output=True, text=True,
                          env={**os.environ, "__DRBD_NODE__": res.local.node})
    assert proc.returncode == 0, proc.stderr
    return [line.split() for line in proc.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("version", ["8.4", "9"])
def test_commands_are_what_drbdadm_runs_for_the_generated_file(tmp_path, version):
    """When drbdadm is asked (dry run) to bring up, promote, resize, ... the resource of genet's own
    file, it runs exactly the drbdsetup/drbdmeta command lines genet runs: file and actions agree."""
    res = sample_resource()
    cmds = commands(version)
    expected = {
        ("up",): cmds.up(res),
        ("create-md", "--force"): [cmds.create_md(res)],
        ("primary",): [cmds.primary(res)],
        ("primary", "--force"): [cmds.primary(res, force=True)],
        ("secondary",): [cmds.secondary(res)],
        ("down",): [cmds.down(res)],
        ("resize",): cmds.resize(res),
        ("disconnect",): cmds.disconnect(res),
        ("connect", "--discard-my-data"): cmds.connect(res, discard_my_data=True),
    }
    if version == "9":
        expected[("wipe-md", "--force")] = [cmds.wipe_md(res)]
    for command, lines in expected.items():
        assert normalise(dry_run(tmp_path, version, res, *command)) == normalise(lines), command
    # drbdadm 9 re-sends every net option with net-options; genet changes just the one
    (prog, args, opts), = normalise(dry_run(tmp_path, version, res, "net-options", "--allow-two-primaries=yes"))
    (g_prog, g_args, g_opts), = normalise([cmds.dual_primary(res, True)])
    assert (prog, args) == (g_prog, g_args) and g_opts <= opts
    if version == "8.4":                                     # drbdadm-84 has no --force for wipe-md
        (prog, args, _), = normalise(dry_run(tmp_path, version, res, "wipe-md"))
        assert (prog, args) == normalise([cmds.wipe_md(res)])[0][:2]


# --- the template against the fake ----------------------------------------------------------

def test_drbd_is_a_registered_mirrored_template():
    storage = base.get("drbd", {"node_name": "node1"})
    assert isinstance(storage, DrbdStorage) and storage.mirrored and not storage.shared


def test_create_makes_data_and_meta_volumes_and_fresh_meta_data(cluster):
    """When a side is created, it has a data volume of the disk's size, a 128 MiB meta volume with
    just-created DRBD meta data, and a resource file drbdadm accepts; nothing is assembled yet."""
    disk = cluster.disk(size=96)
    node = cluster["node1"]
    info = node.create(disk)
    assert os.path.getsize(info["data"]) == 96 * 1024 * 1024
    assert os.path.getsize(info["meta"]) == 128 * 1024 * 1024
    assert node.md(disk)["uuid"] == "0000000000000004"
    assert info["minor"] == disk["logical_id"]["minors"][0]
    conf = node.conf / f"genet-{disk['uuid']}.res"
    proc = parse_with_drbdadm(conf, cluster.version)
    assert proc.returncode == 0, proc.stderr
    assert info["data"] in proc.stdout
    assert node.status(disk)["assembled"] is False


def test_create_again_keeps_existing_meta_data(cluster):
    """When create is repeated on a side that holds data, its meta data (and so its data's
    generation) is kept, whether the side is assembled or not."""
    disk = cluster.mirrored()
    before = cluster["node2"].md(disk)
    cluster["node2"].create(disk)
    assert cluster["node2"].md(disk) == before
    cluster["node2"].storage.shutdown("inst1", disk, 0)
    cluster["node2"].create(disk)
    assert cluster["node2"].md(disk)["uuid"] == before["uuid"]


def test_new_pair_is_inconsistent_until_forced_initial_sync_runs_to_uptodate(cluster):
    """When both sides are assembled they connect with Inconsistent data; promoting is refused until
    forced; the forced side becomes SyncSource and the sync moves on until both are UpToDate."""
    disk = cluster.disk()
    a, b = cluster["node1"], cluster["node2"]
    for node in (a, b):
        node.create(disk)
        node.assemble(disk, "secondary")
    st = a.status(disk)
    assert (st["connected"], st["disk_state"], st["peer_disk_state"], st["state"]) == \
        (True, "Inconsistent", "Inconsistent", "stale")
    with pytest.raises(StorageError, match="refusing to promote .* its data is inconsistent"):
        a.promote(disk)
    cluster["node3"].fake("step", "10")              # a slower sync: more steps to watch
    a.promote(disk, force=True)
    seen = cluster.settle(disk, "node1", "node2")
    syncing = [s for s in seen if s["state"] == "syncing"]
    assert len(syncing) >= 3
    percents = [s["sync_percent"] for s in syncing]
    assert percents == sorted(percents) and len(set(percents)) == len(percents) and percents[-1] < 100
    assert all(s["replication"] == "SyncSource" and s["estimated_time"] is not None for s in syncing)
    assert syncing[0]["estimated_time"] > syncing[-1]["estimated_time"]
    final_a, final_b = a.status(disk), b.status(disk)
    assert (final_a["role"], final_a["state"], final_a["local_ok"]) == ("primary", "in sync", True)
    assert (final_b["role"], final_b["state"], final_b["disk_state"]) == ("secondary", "in sync", "UpToDate")


def test_target_side_sees_the_same_sync_progress(cluster):
    disk = cluster.disk()
    a, b = cluster["node1"], cluster["node2"]
    for node in (a, b):
        node.create(disk)
        node.assemble(disk, "secondary")
    a.promote(disk, force=True)
    st = cluster.moment(b, disk)
    assert (st["state"], st["replication"], st["disk_state"], st["local_ok"]) == \
        ("syncing", "SyncTarget", "Inconsistent", False)
    assert 0 < st["sync_percent"] < 100
    with pytest.raises(StorageError, match="node1 holds newer data and is still syncing it to this side"):
        b.promote(disk)


def test_assemble_primary_returns_the_device_and_is_idempotent(cluster):
    disk = cluster.mirrored()
    a = cluster["node1"]
    access = a.assemble(disk, "primary")
    assert access["path"] == str(a.dev / f"drbd{disk['logical_id']['minors'][0]}")
    assert os.path.realpath(access["path"]) == os.path.realpath(a.volumes / f"{disk['uuid']}_data.img")
    assert a.assemble(disk, "primary") == access
    cluster["node2"].assemble(disk, "secondary")
    assert a.status(disk)["state"] == cluster["node2"].status(disk)["state"] == "in sync"
    with pytest.raises(StorageError, match="not primary on node2 \\(role Secondary\\)"):
        cluster["node2"].storage.access("inst1", disk, 0)


def test_shutdown_and_reassemble_needs_no_resync(cluster):
    """When both sides are shut down cleanly (instance stopped) and assembled again, they are in
    sync at once: nothing is copied and neither side is outdated."""
    disk = cluster.mirrored()
    a, b = cluster["node1"], cluster["node2"]
    a.demote(disk)
    for node in (a, b):
        node.storage.shutdown("inst1", disk, 0)
        assert node.status(disk)["assembled"] is False
    for node in (b, a):
        node.assemble(disk, "secondary")
    assert a.status(disk)["state"] == b.status(disk)["state"] == "in sync"
    a.assemble(disk, "primary")
    assert a.status(disk)["role"] == "primary"


def test_migration_switches_primary_through_a_dual_primary_window(cluster):
    """Migration: both sides allow two primaries, the target is promoted while the source is still
    primary, the source is demoted, two primaries are forbidden again; data stays in sync."""
    disk = cluster.mirrored()
    src, dst = cluster["node1"], cluster["node2"]
    with pytest.raises(StorageError, match="node1 is primary and dual-primary was not asked for"):
        dst.promote(disk)
    with pytest.raises(StorageError, match="Multiple primaries not allowed by config"):
        dst.promote(disk, allow_dual=True)           # the source has not allowed it
    assert dst.status(disk)["role"] == "secondary"
    src.dual(disk, True)
    dst.promote(disk, allow_dual=True)
    assert src.status(disk)["role"] == dst.status(disk)["role"] == "primary"
    with pytest.raises(StorageError, match="primary on both node2 and node1"):
        dst.dual(disk, False)
    src.demote(disk)
    dst.dual(disk, False)
    src.dual(disk, False)
    s, d = src.status(disk), dst.status(disk)
    assert (s["role"], d["role"], s["state"], d["state"]) == ("secondary", "primary", "in sync", "in sync")
    with pytest.raises(StorageError, match="node2 is primary"):
        src.promote(disk)


def test_outdated_side_is_never_promoted_without_force(cluster):
    """When the secondary was shut down while the primary ran (fencing outdates it) and cannot
    reach the primary later, promoting it is refused as outdated; force is the only way."""
    disk = cluster.mirrored()
    a, b = cluster["node1"], cluster["node2"]
    b.storage.shutdown("inst1", disk, 0)
    assert b.md(disk)["outdated"] is True
    st = a.status(disk)
    assert (st["state"], st["peer_disk_state"]) == ("degraded", "Outdated")
    a.write(disk, 512)
    cluster.cut("node1", "node2")
    b.assemble(disk, "secondary")
    st = b.status(disk)
    assert (st["disk_state"], st["state"], st["connected"]) == ("Outdated", "stale", False)
    with pytest.raises(StorageError, match="its data is outdated: node1 was written to after they parted"):
        b.promote(disk)
    with pytest.raises(StorageError, match="its data is outdated"):
        b.assemble(disk, "primary")
    assert b.status(disk)["role"] == "secondary"
    b.promote(disk, force=True)
    assert b.status(disk)["role"] == "primary"


def test_outdated_side_resyncs_from_the_newer_one_when_it_returns(cluster):
    """When the outdated secondary reconnects, the primary's changes (only those) are synced to it,
    and during that sync the secondary refuses to be promoted because the peer is newer."""
    disk = cluster.mirrored(size=256)
    a, b = cluster["node1"], cluster["node2"]
    b.storage.shutdown("inst1", disk, 0)
    a.write(disk, 40960)                             # 40 MiB of the 256 changed
    b.assemble(disk, "secondary")
    st = b.status(disk)
    assert (st["replication"], st["disk_state"]) == ("SyncTarget", "Inconsistent")
    with pytest.raises(StorageError, match="node1 holds newer data"):
        b.promote(disk)
    total = b.show()["resources"][f"genet-{disk['uuid']}"]["net"]["sync"]["total"]
    assert total == 40960
    cluster.settle(disk, "node1", "node2")
    assert b.status(disk)["disk_state"] == "UpToDate"


def test_peer_out_of_reach_blocks_promotion_until_forced(cluster):
    """When the link to the primary is cut, the secondary (UpToDate as far as it knows) is not
    promoted: nothing shows whether the primary is newer. DRBD itself refuses too."""
    disk = cluster.mirrored()
    a, b = cluster["node1"], cluster["node2"]
    cluster.cut("node1", "node2")
    st_a, st_b = a.status(disk), b.status(disk)
    assert (st_a["state"], st_a["connected"], st_a["peer_disk_state"]) == ("degraded", False, "DUnknown")
    assert (st_b["state"], st_b["local_ok"], st_b["connection"]) == ("degraded", True, "Connecting")
    with pytest.raises(StorageError, match="node1 is not connected, so nothing shows whether its copy is newer"):
        b.promote(disk)
    target = str(disk["logical_id"]["minors"][1]) if cluster.version == "8.4" else f"genet-{disk['uuid']}"
    refused = b.run("drbdsetup", "primary", target)
    assert refused.returncode == 11 and "(-7) Refusing to be Primary while peer is not outdated" in refused.stderr
    b.promote(disk, force=True)                      # failover with --ignore-consistency
    assert b.status(disk)["role"] == "primary"
    assert "Forced into split brain situation!" in " ".join(b.show()["log"])


def test_split_brain_is_detected_and_no_side_is_discarded_silently(cluster):
    """When both sides were primary and written to while apart, reconnecting drops the connection
    (StandAlone) on both; promotion is refused; re-assembling does not resolve it; only an explicit
    discard of one side's data makes that side the sync target of the other."""
    disk = cluster.mirrored()
    a, b = cluster["node1"], cluster["node2"]
    cluster.cut("node1", "node2")
    a.write(disk, 1024)
    b.promote(disk, force=True)
    b.write(disk, 2048)
    cluster.heal("node1", "node2")
    for node in (a, b):
        st = node.status(disk)
        assert (st["connection"], st["connected"], st["state"], st["local_ok"]) == \
            ("StandAlone", False, "degraded", True)
        assert "Split-Brain detected but unresolved, dropping connection!" in " ".join(node.show()["log"])
    b.demote(disk)
    a.demote(disk)
    with pytest.raises(StorageError, match="handshake with node2 failed .*split brain"):
        a.promote(disk)
    for node in (a, b):                              # assembling again just meets the split brain again
        node.assemble(disk, "secondary")
    assert a.status(disk)["connection"] == b.status(disk)["connection"] == "StandAlone"
    a_md, b_md = a.md(disk), b.md(disk)
    assert a_md["uuid"] != b_md["uuid"] and a_md["changes"] == 1024 and b_md["changes"] == 2048
    with pytest.raises(StorageError, match="cannot be the primary"):
        b.assemble(disk, "primary", discard_my_data=True)
    b.assemble(disk, "secondary", discard_my_data=True)    # the administrator's decision: node2 loses
    a.assemble(disk, "primary")
    st = b.status(disk)
    assert (st["replication"], st["disk_state"]) == ("SyncTarget", "Inconsistent")
    cluster.settle(disk, "node1", "node2")
    assert b.md(disk)["uuid"] == a.md(disk)["uuid"]


def test_split_brain_where_one_side_wrote_nothing_is_resolved_towards_the_writer(cluster):
    """after-sb-1pri consensus: when the side that is secondary at reconnection has no changes of
    its own, it becomes the sync target automatically: nothing is lost."""
    disk = cluster.mirrored()
    a, b = cluster["node1"], cluster["node2"]
    cluster.cut("node1", "node2")
    b.promote(disk, force=True)                      # a new generation on node2, but no writes
    b.demote(disk)
    a.write(disk, 4096)
    cluster.heal("node1", "node2")
    st = b.status(disk)
    assert (st["connected"], st["replication"]) == (True, "SyncTarget")
    cluster.settle(disk, "node1", "node2")


def test_old_primary_returning_after_a_crash_becomes_sync_target_of_the_failed_over_side(cluster):
    """Primary node dies, the instance is failed over with --ignore-consistency and written to;
    when the old primary's side is assembled again it is resynced from the new primary (only the
    changed blocks), never the other way round."""
    disk = cluster.mirrored()
    old, new = cluster["node1"], cluster["node2"]
    old.fake("crash")
    st = new.status(disk)
    assert (st["connected"], st["connection"], st["local_ok"]) == (False, "Connecting", True)
    with pytest.raises(StorageError, match="node1 is not connected"):
        new.promote(disk)
    new.promote(disk, force=True)
    new.write(disk, 2048)
    assert old.status(disk)["assembled"] is False
    old.assemble(disk, "secondary")                  # what the watcher does when node1 is back
    st = old.status(disk)
    assert (st["replication"], st["disk_state"], st["peer_role"]) == ("SyncTarget", "Inconsistent", "primary")
    assert old.show()["resources"][f"genet-{disk['uuid']}"]["net"]["sync"]["total"] == 2048
    with pytest.raises(StorageError, match="node2 holds newer data"):
        old.promote(disk)
    cluster.settle(disk, "node1", "node2")
    assert old.md(disk)["uuid"] == new.md(disk)["uuid"]


def test_replace_secondary_moves_the_mirror_to_a_new_node(cluster):
    """Replacing node2 by node3: node3 gets fresh volumes and a new minor, node1 (primary) drops
    node2 and connects to node3, which gets a full sync; node2's side is removed."""
    disk = cluster.mirrored()
    a, old, new = cluster["node1"], cluster["node2"], cluster["node3"]
    a.assemble(disk, "primary")
    lid = dict(disk["logical_id"])
    lid["nodes"] = ["node1", "node3"]
    lid["addresses"] = [ADDRESSES["node1"], ADDRESSES["node3"]]
    lid["minors"] = [lid["minors"][0], cluster.pool.allocate_minors(["node3"], (disk["uuid"], 0))[0]]
    moved = dict(disk, logical_id=lid)
    new.create(moved)
    new.assemble(moved, "secondary")
    a.assemble(moved, "primary")
    st = new.status(moved)
    assert (st["replication"], st["peer_role"]) == ("SyncTarget", "primary")
    sync = new.show()["resources"][f"genet-{disk['uuid']}"]["net"]["sync"]
    assert sync["total"] == 64 * 1024                # a fresh side gets everything
    cluster.settle(moved, "node1", "node3")
    st_old = old.status(disk)
    assert st_old["connected"] is False and st_old["disk_state"] == "Outdated"
    old.storage.remove("inst1", disk, 0)
    assert old.status(disk)["assembled"] is False
    assert not any(old.volumes.iterdir())
    assert not (old.conf / f"genet-{disk['uuid']}.res").exists()
    assert a.status(moved)["state"] == "in sync"
    assert json.loads((a.conf / f"genet-{disk['uuid']}.json").read_text())["peer"]["node"] == "node3"


def test_grow_secondary_then_primary_resizes_and_syncs_the_new_area(cluster):
    disk = cluster.mirrored()
    a, b = cluster["node1"], cluster["node2"]
    b.storage.grow("inst1", disk, 0, 96)
    assert os.path.getsize(b.volumes / f"{disk['uuid']}_data.img") == 96 * 1024 * 1024
    assert b.status(disk)["state"] == "in sync"      # nothing happens until the primary resizes
    a.storage.grow("inst1", disk, 0, 96)
    res = a.show()["resources"][f"genet-{disk['uuid']}"]
    assert res["size_kib"] == 96 * 1024
    assert res["net"]["sync"]["total"] == 32 * 1024
    assert b.status(disk)["replication"] == "SyncTarget"
    cluster.settle(disk, "node1", "node2")
    assert b.show()["resources"][f"genet-{disk['uuid']}"]["size_kib"] == 96 * 1024


def test_grow_on_the_primary_first_is_refused_in_drbd9(cluster9):
    """When the primary is grown before its peer, the device cannot grow; DRBD 9's status shows it
    and genet says to grow the peer first (8.4's /proc/drbd has no size to check)."""
    disk = cluster9.mirrored()
    with pytest.raises(StorageError, match="still 64 MiB .* grow its volume on node2 first"):
        cluster9["node1"].storage.grow("inst1", disk, 0, 80)
    cluster9["node2"].storage.grow("inst1", disk, 0, 80)
    cluster9["node1"].storage.grow("inst1", disk, 0, 80)
    assert cluster9["node1"].show()["resources"][f"genet-{disk['uuid']}"]["size_kib"] == 80 * 1024


def test_remove_wipes_meta_data_and_volumes_and_is_idempotent(cluster):
    disk = cluster.mirrored()
    for name in ("node1", "node2"):
        node = cluster[name]
        meta = node.volumes / f"{disk['uuid']}_meta.img"
        node.storage.remove("inst1", disk, 0)
        assert not meta.exists() and not any(node.volumes.iterdir())
        assert any("wipe-md --force" in line for line in node.show()["log"])
        assert node.status(disk)["assembled"] is False
        node.storage.remove("inst1", disk, 0)
    assert cluster["node1"].show()["resources"] == {}


def test_remove_wipes_meta_data_before_the_volume_goes(cluster, tmp_path):
    """With volumes from someone else (the LVM hook), remove leaves no DRBD signature behind."""
    removed = []
    vols = tmp_path / "lvm"
    file_backing = FileBacking(vols)
    backing = CallableBacking(path=file_backing.path, create=file_backing.create, grow=file_backing.grow,
                              remove=removed.append)
    node = cluster["node1"]
    node.storage.backing = backing
    disk = cluster.disk()
    node.create(disk)
    assert node.run("fake", "md", file_backing.path(f"{disk['uuid']}_meta")).stdout.strip() != "null"
    node.storage.remove("inst1", disk, 0)
    assert removed == [f"{disk['uuid']}_meta", f"{disk['uuid']}_data"]
    assert node.run("fake", "md", file_backing.path(f"{disk['uuid']}_meta")).stdout.strip() == "null"


def test_operations_on_a_node_outside_the_pair_are_refused(cluster):
    disk = cluster.disk("node1", "node2")
    with pytest.raises(StorageError, match="mirrored between node1 and node2, not on node3"):
        cluster["node3"].create(disk)
    with pytest.raises(StorageError, match="no volume .* create the disk first"):
        cluster["node1"].assemble(disk, "secondary")
    with pytest.raises(StorageError, match="not assembled on node1"):
        cluster["node1"].promote(disk)


@pytest.mark.parametrize("change,message", [
    ({"secret": 'with "quote'}, "shared secret"), ({"secret": "x" * 65}, "shared secret"),
    ({"port": 70000}, "not a TCP port"), ({"minors": [0]}, "two different nodes"),
    ({"addresses": ["203.0.113.1", "node2"]}, "not an IP address"), ({"nodes": ["node1", "node1"]}, "two different"),
])
def test_bad_logical_id_is_refused_before_any_command(cluster, change, message):
    disk = cluster.disk()
    disk["logical_id"].update(change)
    with pytest.raises(StorageError, match=message):
        cluster["node1"].create(disk)
    assert not cluster["node1"].volumes.exists()


def test_version_comes_from_proc_drbd(tmp_path):
    proc = tmp_path / "drbd"
    storage = DrbdStorage({"drbd_proc": str(proc), "node_name": "node1"})
    with pytest.raises(StorageError, match="DRBD kernel module is not loaded on node1"):
        storage.version()
    proc.write_text("version: 8.4.11 (api:1/proto:86-101)\nsrcversion: X\n")
    assert storage.version() == "8.4"
    proc.write_text("version: 9.2.8 (api:2/proto:86-122)\n")
    assert storage.version() == "9"
    proc.write_text("version: 8.3.16 (api:88/proto:86-97)\n")
    with pytest.raises(StorageError, match="DRBD 8.3 on node1 is not supported"):
        storage.version()


# --- status parsing from samples ---------------------------------------------------------------

PROC_84 = """version: 8.4.11 (api:1/proto:86-101)
srcversion: 2B5C3D85E9E9A8CF5E0C2A1
 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:1048576 nr:0 dw:0 dr:1048776 al:0 bm:64 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
 1: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----
    ns:0 nr:0 dw:0 dr:200 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1048320
 2: cs:Unconfigured

 4: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r---n-
    ns:716992 nr:0 dw:0 dr:719432 al:0 bm:43 lo:0 pe:33 ua:18 ap:0 ep:1 wo:f oos:335744
\t[============>.......] sync'ed: 68.5% (335744/1048576)K
\tfinish: 0:00:05 speed: 64,800 (64,800) want: 71,680 K/sec
 5: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----
    ns:0 nr:9437184 dw:9437184 dr:0 al:0 bm:576 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:11534336
\t[========>...........] sync'ed: 45.0% (11264/20480)M
\tfinish: 1:02:03 speed: 3,072 (2,980) K/sec
 6: cs:Connected ro:Secondary/Primary ds:Diskless/UpToDate C r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:0
 7: cs:StandAlone ro:Secondary/Unknown ds:UpToDate/DUnknown   r-----
    ns:0 nr:0 dw:0 dr:200 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1048320
 8: cs:WFConnection ro:Secondary/Unknown ds:Outdated/DUnknown C r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
100: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
"""


def test_proc_drbd_84_sample_gives_each_minors_state():
    states = parse_proc_drbd(PROC_84)
    assert sorted(states) == [0, 1, 4, 5, 6, 7, 8, 100]           # 2 is unconfigured
    expect = {
        0: ("primary", True, True, None, None, "in sync"),
        1: ("primary", False, True, None, None, "degraded"),
        4: ("primary", True, True, 68.5, 5, "syncing"),
        5: ("secondary", True, False, 45.0, 3723, "syncing"),
        6: ("secondary", True, False, None, None, "stale"),
        7: ("secondary", False, True, None, None, "degraded"),
        8: ("secondary", False, False, None, None, "stale"),
        100: ("secondary", True, True, None, None, "in sync"),
    }
    for minor, (role, connected, local_ok, percent, eta, state) in expect.items():
        st = sync_status(states[minor])
        assert (st["role"], st["connected"], st["local_ok"], st["sync_percent"], st["estimated_time"],
                st["state"]) == (role, connected, local_ok, percent, eta, state), minor
    assert (states[1].connection, states[7].connection, states[4].replication) == \
        ("Connecting", "StandAlone", "SyncSource")
    assert (states[8].disk, states[6].disk, states[6].peer_disk) == ("Outdated", "Diskless", "UpToDate")


STATUS_9_SYNCING = """[
{
  "name": "genet-d1",
  "node-id": 1,
  "role": "Secondary",
  "suspended": false,
  "write-ordering": "flush",
  "devices": [
    {
      "volume": 0,
      "minor": 7,
      "disk-state": "Inconsistent",
      "client": false,
      "open": false,
      "quorum": true,
      "size": 1048576,
      "read": 0,
      "written": 310272,
      "al-writes": 0,
      "bm-writes": 0,
      "upper-pending": 0,
      "lower-pending": 0
    } ],
  "connections": [
    {
      "peer-node-id": 0,
      "name": "node1",
      "connection-state": "Connected",
      "congested": false,
      "peer-role": "Primary",
      "tls": false,
      "ap-in-flight": 0,
      "rs-in-flight": 4096,
      "paths": [],
      "peer_devices": [
        {
          "volume": 0,
          "replication-state": "SyncTarget",
          "peer-disk-state": "UpToDate",
          "peer-client": false,
          "resync-suspended": "no",
          "received": 310272,
          "sent": 0,
          "out-of-sync": 738304,
          "pending": 0,
          "unacked": 0,
          "has-sync-details": true,
          "has-online-verify-details": false,
          "percent-in-sync": 29.59,
          "rs-total": 2097152,
          "rs-dt-start-ms": 6021,
          "rs-paused-ms": 0,
          "rs-dt0-ms": 2000,
          "rs-db0-sectors": 204800,
          "rs-dt1-ms": 2000,
          "rs-db1-sectors": 204800,
          "rs-failed": 0,
          "rs-same-csum": 0,
          "want": 0.00,
          "db0/dt0 [MiB/s]": 50.00,
          "db1/dt1 [MiB/s]": 50.00,
          "estimated-seconds-to-finish": 14,
          "db/dt [MiB/s]": 50.32,
          "percent-resync-done": 29.59
        } ]
    } ]
}
]
"""


def test_drbd9_status_json_samples():
    st = parse_status_json(STATUS_9_SYNCING, "genet-d1")
    assert (st.role, st.peer_role, st.connection, st.replication, st.disk, st.peer_disk) == \
        ("Secondary", "Primary", "Connected", "SyncTarget", "Inconsistent", "UpToDate")
    assert (st.sync_percent, st.eta, st.size_kib, st.peer_name) == (29.59, 14, 1048576, "node1")
    assert sync_status(st)["state"] == "syncing"
    assert parse_status_json(STATUS_9_SYNCING, "genet-other") is None
    assert parse_status_json("[]", "genet-d1") is None
    data = json.loads(STATUS_9_SYNCING)
    conn, pd = data[0]["connections"][0], data[0]["connections"][0]["peer_devices"][0]
    conn["connection-state"], conn["peer-role"] = "Connecting", "Unknown"
    pd.update({"replication-state": "Off", "peer-disk-state": "DUnknown", "estimated-seconds-to-finish": 987654321})
    data[0]["devices"][0]["disk-state"] = "UpToDate"
    data[0]["role"] = "Primary"
    st = parse_status_json(json.dumps(data), "genet-d1")
    assert (st.connection, st.replication, st.sync_percent, st.eta) == ("Connecting", "Off", None, None)
    assert sync_status(st)["state"] == "degraded"
    data[0]["connections"] = []
    st = parse_status_json(json.dumps(data), "genet-d1")
    assert (st.connection, st.peer_disk, st.peer_name) == ("StandAlone", "DUnknown", None)
    with pytest.raises(StorageError, match="not JSON"):
        parse_status_json("garbage", "genet-d1")


def test_status_of_a_side_that_is_not_assembled():
    st = sync_status(None)
    assert (st["assembled"], st["role"], st["connected"], st["state"]) == (False, None, False, "degraded")


def test_live_migration_through_the_generic_steps_swaps_the_roles(cluster):
    """The master's sequence (storage.base.MirroredTemplate): prepare source, prepare target,
    switch target, switch source, finish target."""
    disk = cluster.mirrored()
    src, dst = cluster["node1"].storage, cluster["node2"].storage
    assert src.migration_prepare("inst1", disk, 0, "source") == {"role": "primary"}
    access = dst.migration_prepare("inst1", disk, 0, "target")
    assert access["path"].endswith(f"drbd{disk['logical_id']['minors'][1]}")
    assert dst.migration_switch("inst1", disk, 0, "target") == "in sync"
    assert src.migration_switch("inst1", disk, 0, "source") == "secondary"
    dst.migration_finish("inst1", disk, 0)
    s, d = cluster["node1"].status(disk), cluster["node2"].status(disk)
    assert (s["role"], d["role"], s["state"], d["state"]) == ("secondary", "primary", "in sync", "in sync")
    with pytest.raises(StorageError, match="node2 is primary"):
        cluster["node1"].promote(disk)                  # two primaries are forbidden again


def test_aborted_live_migration_leaves_the_source_primary_alone(cluster):
    disk = cluster.mirrored()
    src, dst = cluster["node1"].storage, cluster["node2"].storage
    src.migration_prepare("inst1", disk, 0, "source")
    dst.migration_prepare("inst1", disk, 0, "target")
    dst.migration_abort("inst1", disk, 0)
    src.migration_abort("inst1", disk, 0)
    assert (cluster["node1"].status(disk)["role"], cluster["node2"].status(disk)["role"]) == ("primary", "secondary")
    with pytest.raises(StorageError, match="node1 is primary and dual-primary was not asked for"):
        cluster["node2"].promote(disk)
