"""The drbd template end to end: a loopback cluster of three nodes, each with the fake LVM
(its 1 GiB volume group xenvg holds the data and meta volumes) and the fake DRBD 9
(test/fakes/drbd: the kernel's state machine, shared by the nodes through one wire file),
and the fake hypervisor. What each node's "kernel" holds is read with ``fake show``.

The fake moves no data (its devices are links to the data volumes), so these tests check
roles, connections, sync decisions and volumes; the data itself is checked through the
mirror template's tests with real QEMU (test_instances_mirror.py).
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ganeti_info import mirror_sides
from loopback import LoopbackCluster

from genet import opcodes

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LoopbackCluster(tmp_path_factory.mktemp("drbd"), nodes=3, drbd="9")
    try:
        c.start()
        yield c
    finally:
        c.stop()


def gnt(c, *argv, check=True):
    return c.run("node1", *argv, check=check)


def field(c, name: str, fields: str) -> str:
    return gnt(c, "gnt-instance", "list", "--no-headers", "--separator=|", "-o", fields, name).stdout.strip()


def disk_uuids(c, name: str) -> list[str]:
    return field(c, name, "disk.uuids").split(",")


def add_drbd(c, name: str, nodes: str, *disk_sizes: str, start: bool = True) -> list[str]:
    """A drbd instance on ``nodes`` (PRIMARY:SECONDARY) with disks of these sizes; their UUIDs."""
    disks = [arg for i, size in enumerate(disk_sizes) for arg in ("--disk", f"{i}:size={size}")]
    gnt(c, "gnt-instance", "add", "-t", "drbd", "-n", nodes, *disks, "-B", "memory=64M",
        *([] if start else ["--no-start"]), name)
    return disk_uuids(c, name)


def kernel(c, node: str, disk_uuid: str) -> dict | None:
    """The fake DRBD's view of the disk's resource on ``node`` (None: not configured there)."""
    return json.loads(c.fake_drbd(node, "show"))["resources"].get(f"genet-{disk_uuid}")


def roles(c, disk_uuid: str) -> dict[str, str]:
    """node -> "Primary"/"Secondary" for every node where the resource is up."""
    return {n: r["role"] for n in c.names if (r := kernel(c, n, disk_uuid)) is not None}


def volumes(c, node: str) -> set[str]:
    """The names of the logical volumes on ``node``."""
    return set(json.loads(c.lvm_state(node).read_text())["vgs"]["xenvg"]["lvs"])


def config_of(c, name: str) -> dict:
    data = c.stored_config("node1")
    return data["instances"][name]


def in_sync(c, node: str, disk_uuid: str) -> bool:
    res = kernel(c, node, disk_uuid)
    return res["disk"] == "UpToDate" and res["net"]["cstate"] == "Connected" and res["net"]["peer_disk"] == "UpToDate"


def last_handshake(c, node: str, disk_uuid: str) -> str:
    """How the last handshake of the disk on ``node`` ended: "none" (nothing to copy), "sync"..."""
    log = json.loads(c.fake_drbd(node, "show"))["log"]
    found = [line for line in log if line.startswith(f"genet-{disk_uuid}: connected (")]
    return found[-1].rpartition("(")[2].rstrip(")") if found else ""


def test_new_drbd_instance_is_primary_on_one_node_secondary_on_the_other(cluster):
    c = cluster
    disks = add_drbd(c, "web1", "node1:node2", "64M", "32M")
    assert field(c, "web1", "disk_template,pnode,snodes,status") == "drbd|node1|node2|running"
    for uuid in disks:
        assert roles(c, uuid) == {"node1": "Primary", "node2": "Secondary"}
        assert in_sync(c, "node1", uuid) and in_sync(c, "node2", uuid)
        # two volumes per side: the data in the plain template's name, DRBD's meta data beside it
        for node in ("node1", "node2"):
            assert {f"{uuid}.disk", f"{uuid}.meta"} <= volumes(c, node)
        assert not any(v.startswith(uuid) for v in volumes(c, "node3"))
    # minors per node and ports per cluster come from the pool; the secret is shared
    lids = [d["logical_id"] for d in config_of(c, "web1")["disks"]]
    assert [lid["minors"] for lid in lids] == [[0, 0], [1, 1]]
    assert len({lid["port"] for lid in lids}) == 2 and all(11000 <= lid["port"] < 15000 for lid in lids)
    assert len({lid["secret"] for lid in lids}) == 2
    # the resource file genet writes for administrators parses with drbd-utils' own parser
    res_file = c.root("node1") / f"var/lib/genet/drbd/genet-{disks[0]}.res"
    drbdadm = shutil.which("drbdadm") or "/usr/sbin/drbdadm"
    dump = subprocess.run([drbdadm, "-c", str(res_file), "dump", "all"], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert f"genet-{disks[0]}" in dump.stdout and "protocol" in dump.stdout
    info = gnt(c, "gnt-instance", "info", "web1").stdout
    assert mirror_sides(info) == [("node1", "node2", "in sync")] * 2
    # Ganeti's shapes in the instance data (RAPI /2/instances/NAME/info)
    job = c.submit_and_wait([opcodes.OpInstanceQueryData(instances=["web1"]).to_dict()])
    disk = job["opresult"][0]["web1"]["disks"][0]
    assert disk["logical_id"] == ["node1", "node2", lids[0]["port"], 0, 0, lids[0]["secret"]]
    assert disk["drbd_info"] == {"primary_node": "node1", "primary_minor": 0, "secondary_node": "node2",
                                 "secondary_minor": 0, "port": lids[0]["port"], "secret": lids[0]["secret"]}


def test_migration_and_failover_swap_the_roles(cluster):
    c = cluster
    [uuid] = add_drbd(c, "mig1", "node2:node3", "32M")
    out = gnt(c, "gnt-instance", "migrate", "mig1").stdout
    assert "node3 took over the disks: in sync" in out
    assert field(c, "mig1", "pnode,snodes,status") == "node3|node2|running"
    assert roles(c, uuid) == {"node3": "Primary", "node2": "Secondary"}
    # two primaries were allowed only for the switch-over
    for node in ("node2", "node3"):
        assert kernel(c, node, uuid)["net"]["opts"].get("allow-two-primaries", "no") == "no"
    gnt(c, "gnt-instance", "failover", "mig1")
    assert field(c, "mig1", "pnode,snodes,status") == "node2|node3|running"
    assert roles(c, uuid) == {"node2": "Primary", "node3": "Secondary"}
    assert in_sync(c, "node2", uuid)
    gnt(c, "gnt-node", "failover", "node2")                       # every primary of node2 moves
    assert field(c, "mig1", "pnode,snodes,status") == "node3|node2|running"
    assert roles(c, uuid) == {"node3": "Primary", "node2": "Secondary"}
    gnt(c, "gnt-instance", "remove", "mig1")


def test_cut_link_runs_degraded_and_resyncs_only_what_changed(cluster):
    c = cluster
    [uuid] = add_drbd(c, "cut1", "node2:node3", "64M")
    c.fake_drbd("node2", "cut", c.address("node2"), c.address("node3"))
    try:
        c.fake_drbd("node2", "write", f"genet-{uuid}", "1024")        # the guest writes 1 MiB meanwhile
        proc = gnt(c, "gnt-cluster", "verify-disks", check=False)
        assert proc.returncode == 1 and "instance cut1: disk 0 is degraded" in proc.stdout + proc.stderr
        assert mirror_sides(gnt(c, "gnt-instance", "info", "cut1").stdout) == [("node2", "node3", "degraded")]
        assert field(c, "cut1", "status") == "running"               # the primary keeps running
    finally:
        c.fake_drbd("node2", "heal", c.address("node2"), c.address("node3"))
    # DRBD's bitmap: the resync moves the 1 MiB written, not the 64 MiB disk
    assert kernel(c, "node2", uuid)["net"]["sync"] == {"total": 1024, "left": 1024}
    proc = gnt(c, "gnt-cluster", "verify-disks")
    assert "in sync" in proc.stdout
    assert in_sync(c, "node2", uuid) and roles(c, uuid) == {"node2": "Primary", "node3": "Secondary"}
    gnt(c, "gnt-instance", "remove", "cut1")


def test_dead_primary_fails_over_only_with_ignore_consistency_and_comes_back_as_secondary(cluster):
    c = cluster
    [uuid] = add_drbd(c, "dead1", "node3:node2", "32M")
    c.run("node3", "genet-daemon", "stop")
    c.fake_drbd("node3", "crash")                   # node3's kernel state is gone, its meta data stays
    try:
        gnt(c, "gnt-node", "modify", "-O", "yes", "node3")
        proc = gnt(c, "gnt-instance", "failover", "dead1", check=False)
        assert proc.returncode == 1
        assert "refusing to promote" in proc.stderr and "--ignore-consistency" in proc.stderr
        assert kernel(c, "node2", uuid)["role"] == "Secondary"
        gnt(c, "gnt-instance", "failover", "--ignore-consistency", "dead1")
        assert field(c, "dead1", "pnode,snodes") == "node2|node3"
        assert kernel(c, "node2", uuid)["role"] == "Primary"
        c.fake_drbd("node2", "write", f"genet-{uuid}", "512")         # written without node3
    finally:
        c.run("node3", "genet-daemon", "start")
        gnt(c, "gnt-node", "modify", "-O", "no", "node3")
    gnt(c, "gnt-cluster", "verify-disks")
    # the old primary came back as the secondary and took node2's newer data
    assert roles(c, uuid) == {"node2": "Primary", "node3": "Secondary"}
    assert in_sync(c, "node3", uuid)
    assert last_handshake(c, "node3", uuid) == "sync"
    gnt(c, "gnt-instance", "remove", "dead1")


def test_replace_disks_moves_the_secondary_and_rebuilds_it(cluster):
    c = cluster
    [uuid] = add_drbd(c, "rep1", "node1:node2", "32M")
    before = config_of(c, "rep1")["disks"][0]["logical_id"]
    gnt(c, "gnt-instance", "replace-disks", "-n", "node3", "rep1")
    assert field(c, "rep1", "pnode,snodes") == "node1|node3"
    after = config_of(c, "rep1")["disks"][0]["logical_id"]
    # node3 took node2's place (node-id 1); node1 keeps its place, minor, the port and the secret
    assert after["nodes"] == ["node1", "node3"] and after["addresses"][1] == c.address("node3")
    assert (after["minors"][0], after["port"], after["secret"]) == (before["minors"][0], before["port"],
                                                                      before["secret"])
    assert roles(c, uuid) == {"node1": "Primary", "node3": "Secondary"} and in_sync(c, "node1", uuid)
    assert not any(v.startswith(uuid) for v in volumes(c, "node2"))
    assert not (c.root("node2") / f"var/lib/genet/drbd/genet-{uuid}.res").exists()

    gnt(c, "gnt-instance", "replace-disks", "-s", "rep1")          # a fresh copy on node3, synced anew
    assert last_handshake(c, "node3", uuid) == "sync"
    assert roles(c, uuid) == {"node1": "Primary", "node3": "Secondary"} and in_sync(c, "node3", uuid)

    proc = gnt(c, "gnt-instance", "replace-disks", "-p", "rep1", check=False)
    assert proc.returncode == 1 and "stop the instance first" in proc.stderr

    gnt(c, "gnt-node", "evacuate", "-s", "-n", "node2", "node3")
    assert field(c, "rep1", "pnode,snodes") == "node1|node2"
    assert roles(c, uuid) == {"node1": "Primary", "node2": "Secondary"} and in_sync(c, "node2", uuid)
    out = gnt(c, "gnt-instance", "grow-disk", "rep1", "0", "16M").stdout
    assert field(c, "rep1", "disk.sizes") == "48" and "(the running guest sees it at once)" in out
    from genet.hypervisor.fake import FakeHypervisor
    assert FakeHypervisor(state_dir=c.root("node1") / "var/lib/genet/fake-hv").devices("rep1")["disks"][0]["size"] == 48
    for node in ("node1", "node2"):
        vg = json.loads(c.lvm_state(node).read_text())["vgs"]["xenvg"]
        assert vg["lvs"][f"{uuid}.disk"]["extents"] * vg["extent_size"] == 48
    assert kernel(c, "node1", uuid)["size_kib"] == 48 * 1024 and in_sync(c, "node1", uuid)

    # -p on the stopped instance: node1's volumes made anew and filled from node2's
    gnt(c, "gnt-instance", "shutdown", "rep1")
    old_data = c.base / "node1/dev/xenvg" / f"{uuid}.disk"
    with open(old_data, "r+b") as f:
        f.write(b"old primary volume")
    out = gnt(c, "gnt-instance", "replace-disks", "-p", "rep1").stdout
    assert "creating disk 0 (48 MiB) on node1" in out and "copying disk 0 from node2 to node1" in out
    assert not old_data.read_bytes().startswith(b"old primary volume")
    assert last_handshake(c, "node1", uuid) == "sync" and roles(c, uuid) == {}
    gnt(c, "gnt-instance", "startup", "rep1")
    assert roles(c, uuid) == {"node1": "Primary", "node2": "Secondary"} and in_sync(c, "node1", uuid)

    gnt(c, "gnt-instance", "remove", "rep1")
    for node in c.names:
        assert not any(v.startswith(uuid) for v in volumes(c, node)) and kernel(c, node, uuid) is None


def test_plain_to_drbd_and_back_keeps_the_data_volume(cluster):
    c = cluster
    gnt(c, "gnt-instance", "add", "-t", "plain", "-n", "node2", "--disk", "0:size=16M", "-B", "memory=64M",
        "--no-start", "conv1")
    [uuid] = disk_uuids(c, "conv1")
    lv = c.base / "node2/dev/xenvg" / f"{uuid}.disk"
    with open(lv, "r+b") as f:
        f.write(b"genet-marker")
    proc = gnt(c, "gnt-instance", "modify", "-t", "drbd", "conv1", check=False)
    assert proc.returncode == 1 and "needs the secondary node (-n NODE)" in proc.stderr
    gnt(c, "gnt-instance", "modify", "-t", "drbd", "-n", "node1", "conv1")
    assert field(c, "conv1", "disk_template,pnode,snodes") == "drbd|node2|node1"
    assert {f"{uuid}.disk", f"{uuid}.meta"} <= volumes(c, "node1") & volumes(c, "node2")
    assert lv.read_bytes().startswith(b"genet-marker")
    gnt(c, "gnt-instance", "startup", "conv1")
    assert roles(c, uuid) == {"node2": "Primary", "node1": "Secondary"} and in_sync(c, "node2", uuid)
    gnt(c, "gnt-instance", "shutdown", "conv1")
    gnt(c, "gnt-instance", "modify", "-t", "plain", "conv1")
    assert field(c, "conv1", "disk_template,pnode,snodes") == "plain|node2|"
    assert f"{uuid}.meta" not in volumes(c, "node2") and not any(v.startswith(uuid) for v in volumes(c, "node1"))
    assert lv.read_bytes().startswith(b"genet-marker") and kernel(c, "node2", uuid) is None
    gnt(c, "gnt-instance", "remove", "conv1")


def test_allocator_chooses_both_nodes(cluster):
    c = cluster
    gnt(c, "gnt-instance", "add", "-t", "drbd", "-I", "hail", "--disk", "0:size=16M", "-B", "memory=64M", "auto1")
    primary, secondary = field(c, "auto1", "pnode,snodes").split("|")
    assert primary in c.names and secondary in c.names and primary != secondary
    [uuid] = disk_uuids(c, "auto1")
    assert roles(c, uuid) == {primary: "Primary", secondary: "Secondary"} and in_sync(c, primary, uuid)
    gnt(c, "gnt-instance", "remove", "auto1")


def test_drbd_refusals_leave_nothing_behind(cluster):
    c = cluster
    proc = gnt(c, "gnt-instance", "add", "-t", "drbd", "-n", "node1", "--disk", "0:size=32M", "bad1", check=False)
    assert proc.returncode == 1 and "needs a secondary node" in proc.stderr
    proc = gnt(c, "gnt-instance", "add", "-t", "drbd", "-n", "node1:node1", "--disk", "0:size=32M", "bad1",
               check=False)
    assert proc.returncode == 1 and "must differ from the primary" in proc.stderr
    before = {n: volumes(c, n) for n in c.names}
    proc = gnt(c, "gnt-instance", "add", "-t", "drbd", "-n", "node1:node2", "--disk", "0:size=2G", "bad1",
               check=False)
    assert proc.returncode == 1 and "volume group xenvg has" in proc.stderr
    assert {n: volumes(c, n) for n in c.names} == before
    assert "bad1" not in gnt(c, "gnt-instance", "list", "--no-headers", "-o", "name").stdout


def lose_volumes(c, node: str, disk_uuid: str) -> None:
    """The node's volumes of the disk are gone (a replaced disk, an lvremove by mistake)."""
    from loopback import FAKE_LVM_BIN
    for suffix in ("disk", "meta"):
        c.run(node, str(FAKE_LVM_BIN / "lvremove"), "-f", f"xenvg/{disk_uuid}.{suffix}")


def test_recreate_disks_refills_a_lost_secondary_and_moves_to_new_nodes(cluster):
    c = cluster
    [uuid] = add_drbd(c, "rec1", "node1:node2", "16M", start=False)
    gnt(c, "gnt-instance", "deactivate-disks", "rec1")
    proc = gnt(c, "gnt-instance", "recreate-disks", "rec1", check=False)
    assert proc.returncode == 1 and "exists on node1 and node2" in proc.stderr
    lose_volumes(c, "node2", uuid)
    out = gnt(c, "gnt-instance", "recreate-disks", "rec1").stdout
    assert "recreating disk 0 (16 MiB) on node2" in out and "on node1" not in out
    assert {f"{uuid}.disk", f"{uuid}.meta"} <= volumes(c, "node2")
    assert last_handshake(c, "node2", uuid) == "sync" and roles(c, uuid) == {}     # filled, then taken down

    proc = gnt(c, "gnt-instance", "recreate-disks", "-n", "node3", "rec1", check=False)
    assert proc.returncode == 1 and "has 2 node(s), 1 given" in proc.stderr
    lose_volumes(c, "node1", uuid)                      # the primary's copy: fail over first
    proc = gnt(c, "gnt-instance", "recreate-disks", "rec1", check=False)
    assert proc.returncode == 1 and "missing on its primary node node1 but its copy on node2 exists" in proc.stderr
    assert not any(v.startswith(uuid) for v in volumes(c, "node1"))

    gnt(c, "gnt-instance", "recreate-disks", "-n", "node3:node1", "rec1")
    assert field(c, "rec1", "pnode,snodes") == "node3|node1"
    lid = config_of(c, "rec1")["disks"][0]["logical_id"]
    assert lid["nodes"] == ["node3", "node1"]
    for node in ("node3", "node1"):
        assert {f"{uuid}.disk", f"{uuid}.meta"} <= volumes(c, node)
    gnt(c, "gnt-instance", "startup", "rec1")
    assert roles(c, uuid) == {"node3": "Primary", "node1": "Secondary"} and in_sync(c, "node3", uuid)
    gnt(c, "gnt-instance", "remove", "rec1")
    assert not any(v.startswith(uuid) for v in volumes(c, "node3") | volumes(c, "node1"))


def test_disks_added_and_removed_on_both_nodes(cluster):
    """gnt-instance modify --disk on a drbd instance: a new disk gets its own port and minors,
    volumes and a synced DRBD resource on both nodes (hot-plugged while the instance runs,
    taken down again while it is stopped); a removed one goes on both nodes."""
    from genet.hypervisor.fake import FakeHypervisor
    c = cluster
    [first] = add_drbd(c, "dsk1", "node2:node3", "32M")
    out = gnt(c, "gnt-instance", "modify", "--disk", "add:size=16M", "dsk1").stdout
    assert "disk/1 -> add" in out and "the disks of dsk1 are in sync" in out and "disk 1 hot-plugged" in out
    _, added = disk_uuids(c, "dsk1")
    assert roles(c, added) == {"node2": "Primary", "node3": "Secondary"}
    assert in_sync(c, "node2", added) and in_sync(c, "node3", added)
    for node in ("node2", "node3"):
        assert {f"{added}.disk", f"{added}.meta"} <= volumes(c, node)
    lids = [d["logical_id"] for d in config_of(c, "dsk1")["disks"]]
    assert lids[1]["nodes"] == ["node2", "node3"] and lids[1]["port"] != lids[0]["port"]
    assert all(a != b for a, b in zip(lids[0]["minors"], lids[1]["minors"]))
    guest = FakeHypervisor(state_dir=c.root("node2") / "var/lib/genet/fake-hv").devices("dsk1")
    assert [d["uuid"] for d in guest["disks"]] == [first, added]

    proc = gnt(c, "gnt-instance", "modify", "--disk", "add:size=8M,format=qcow2", "dsk1", check=False)
    assert proc.returncode == 1 and "drbd disks are raw images, not qcow2" in proc.stderr
    gnt(c, "gnt-node", "modify", "-O", "yes", "node3")
    try:
        proc = gnt(c, "gnt-instance", "modify", "--disk", "add:size=8M", "dsk1", check=False)
    finally:
        gnt(c, "gnt-node", "modify", "-O", "no", "node3")
    assert proc.returncode == 1 and "the secondary node node3 of dsk1 is offline" in proc.stderr
    assert len(disk_uuids(c, "dsk1")) == 2

    gnt(c, "gnt-instance", "shutdown", "dsk1")
    gnt(c, "gnt-instance", "modify", "--disk", "add:size=8M", "dsk1")
    third = disk_uuids(c, "dsk1")[2]
    log = json.loads(c.fake_drbd("node2", "show"))["log"]
    assert f"genet-{third}: Forced to consider local data as UpToDate!" in log and roles(c, third) == {}
    gnt(c, "gnt-instance", "startup", "dsk1")
    assert roles(c, third) == {"node2": "Primary", "node3": "Secondary"} and in_sync(c, "node2", third)
    assert last_handshake(c, "node3", third) == "none"     # filled before it was taken down: nothing to copy

    gnt(c, "gnt-instance", "modify", "--disk", "1:remove", "dsk1")
    assert disk_uuids(c, "dsk1") == [first, third]
    for node in ("node2", "node3"):
        assert kernel(c, node, added) is None and not any(v.startswith(added) for v in volumes(c, node))
    gnt(c, "gnt-instance", "remove", "dsk1")


def test_replace_disks_chosen_with_disks_or_found_faulty_with_auto(cluster):
    """-s --disks 1 makes only disk 1's secondary copy anew; -a does nothing while no copy is
    faulty, replaces a lost secondary copy (only that disk), and refuses faults on both sides."""
    c = cluster
    d0, d1 = add_drbd(c, "rpa1", "node1:node2", "16M", "16M")
    out = gnt(c, "gnt-instance", "replace-disks", "-a", "rpa1").stdout
    assert "no disk of rpa1 is faulty: nothing to replace" in out and "creating" not in out
    out = gnt(c, "gnt-instance", "replace-disks", "-s", "--disks", "1", "rpa1").stdout
    assert "creating disk 1 (16 MiB) on node2" in out and "disk 0" not in out
    assert last_handshake(c, "node2", d1) == "sync" and last_handshake(c, "node2", d0) == "none"
    assert in_sync(c, "node1", d0) and in_sync(c, "node1", d1)

    c.fake_drbd("node2", "crash")                   # node2 restarts and finds disk 1's volumes gone
    lose_volumes(c, "node2", d1)
    out = gnt(c, "gnt-instance", "replace-disks", "-a", "rpa1").stdout
    assert "creating disk 1 (16 MiB) on node2" in out and "disk 0 (" not in out
    assert in_sync(c, "node1", d1) and {f"{d1}.disk", f"{d1}.meta"} <= volumes(c, "node2")
    gnt(c, "gnt-cluster", "verify-disks")           # disk 0's copy was only disconnected
    assert in_sync(c, "node1", d0)

    gnt(c, "gnt-instance", "shutdown", "rpa1")
    gnt(c, "gnt-instance", "deactivate-disks", "rpa1")
    lose_volumes(c, "node1", d0)
    lose_volumes(c, "node2", d1)
    proc = gnt(c, "gnt-instance", "replace-disks", "-a", "rpa1", check=False)
    assert proc.returncode == 1
    assert "faulty on both nodes (disk(s) 0 on node1, 1 on node2): -a cannot choose a side" in proc.stderr
    gnt(c, "gnt-instance", "remove", "rpa1")
