"""Exports and imports (gnt-backup), recreate-disks, replace-disks and the instance data query,
on a loopback cluster with the fake hypervisor and file disks."""
import configparser
import os

import pytest

from genet import opcodes

STORAGE = "srv/genet/file-storage"
EXPORTS = "var/lib/genet/export"


def listing(cluster, *fields):
    out = cluster.run("node1", "gnt-instance", "list", "--no-headers", "--separator=|", "-o", ",".join(fields))
    return [line.split("|") for line in out.stdout.splitlines() if line]


def disk_files(cluster, node, instance):
    folder = cluster.root(node) / STORAGE / instance
    return sorted(folder.iterdir()) if folder.exists() else []


def run_op(cluster, op):
    """Run one opcode as a job; returns (status, result)."""
    job = cluster.submit_and_wait([op.to_dict()])
    return job["status"], job["opresult"][0]


def exports_on(cluster, node):
    folder = cluster.root(node) / EXPORTS
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def write_marker(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_export_list_import_remove_round_trip(cluster):
    """When an instance is exported to another node and imported as a new one, the new instance's
    disks hold the same bytes, its settings come from the export, and remove deletes the export."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=8M",
                "--disk", "1:size=4M,format=qcow2", "--net", "0:link=br7", "-B", "memory=64M,vcpus=2", "src1")
    cluster.run("node1", "gnt-instance", "add-tags", "src1", "env:prod")
    raw, qcow = sorted(disk_files(cluster, "node1", "src1"), key=lambda p: p.suffix != ".raw")
    marker = b"GENET-EXPORT-MARKER" + os.urandom(1 << 20)
    write_marker(raw, 3 << 20, marker)
    original = {"raw": raw.read_bytes(), "qcow2": qcow.read_bytes()}

    out = cluster.run("node1", "gnt-backup", "export", "-n", "node2", "src1").stdout
    assert "shutting down instance src1 on node1" in out
    assert "copying disk 0 (8 MiB) to node2" in out and "copying disk 1 (4 MiB) to node2" in out
    assert listing(cluster, "name", "status") == [["src1", "running"]]      # started again
    export = cluster.root("node2") / EXPORTS / "src1"
    assert exports_on(cluster, "node2") == ["src1"]                          # no staging directory left
    assert sorted(p.name for p in export.iterdir()) == ["config.ini", "disk0.raw", "disk1.qcow2"]
    assert (export / "disk0.raw").read_bytes() == original["raw"]
    assert (export / "disk1.qcow2").read_bytes() == original["qcow2"]
    conf = configparser.RawConfigParser()
    conf.read(export / "config.ini")
    assert conf.get("export", "version") == "0" and conf.get("export", "source") == "node1"
    assert conf.get("instance", "disk_count") == "2" and conf.get("instance", "disk0_size") == "8"
    assert conf.get("instance", "nic0_link") == "br7" and conf.get("backend", "maxmem") == "64"
    assert conf.get("instance", "tags") == "env:prod"

    lines = cluster.run("node1", "gnt-backup", "list", "--no-headers", "--separator=|").stdout.splitlines()
    assert lines == ["node2|src1"]
    assert cluster.run("node1", "gnt-backup", "list", "--node", "node3", "--no-headers").stdout == ""

    out = cluster.run("node1", "gnt-backup", "import", "-n", "node3", "--src-node", "node2", "--src-dir", "src1",
                      "-t", "file", "copy1").stdout
    assert "copying disk 0 (8 MiB) from the export on node2" in out
    copied = disk_files(cluster, "node3", "copy1")
    assert sorted(p.read_bytes() for p in copied) == sorted(original.values())
    rows = listing(cluster, "name", "pnode", "status", "be/maxmem", "be/vcpus", "disk.sizes", "nic.links", "nic.macs",
                   "tags")
    src, copy = rows[1], rows[0]
    assert copy[:8] == ["copy1", "node3", "running", "64", "2", "8,4", "br7", copy[7]]
    assert copy[7] != src[7]                                   # a new name gets a new MAC
    assert copy[8] == "env:prod"

    # without --src-node the export is looked for on every node; -B overrides the export's value and
    # the disks given replace the export's list (here: only disk 0, grown)
    cluster.run("node1", "gnt-backup", "import", "-n", "node1", "--src-dir", "src1", "-t", "file", "-B",
                "memory=32M", "--disk", "0:size=12M", "--no-start", "copy2")
    assert dict((r[0], r[1:]) for r in listing(cluster, "name", "be/maxmem", "disk.sizes"))["copy2"] == ["32", "12"]
    grown = next(p for p in disk_files(cluster, "node1", "copy2") if p.suffix == ".raw")
    assert grown.stat().st_size == 12 << 20 and grown.read_bytes()[:8 << 20] == original["raw"]

    out = cluster.run("node1", "gnt-backup", "remove", "src1").stdout
    assert "removing export src1 on node2" in out
    assert exports_on(cluster, "node2") == []
    assert cluster.run("node1", "gnt-backup", "list", "--no-headers").stdout == ""
    proc = cluster.run("node1", "gnt-backup", "remove", "src1", check=False)
    assert proc.returncode == 1 and "no node has an export named 'src1'" in proc.stderr


def test_export_of_a_stopped_instance_with_remove_replaces_the_older_export(cluster):
    """When an instance is exported again elsewhere with --remove-instance, the older export goes, the
    instance and its disks are gone and the export stays; a stopped instance is not started."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=4M", "--no-start",
                "old1")
    cluster.run("node1", "gnt-backup", "export", "-n", "node2", "old1")
    assert listing(cluster, "status") == [["ADMIN_down"]]
    out = cluster.run("node1", "gnt-backup", "export", "-n", "node1", "old1").stdout      # its own node
    assert "removing the older export of old1 on node2" in out
    assert exports_on(cluster, "node1") == ["old1"] and exports_on(cluster, "node2") == []
    out = cluster.run("node1", "gnt-backup", "export", "-n", "node3", "--remove-instance", "old1").stdout
    assert "removing the older export of old1 on node1" in out and "removing instance old1" in out
    assert exports_on(cluster, "node1") == [] and exports_on(cluster, "node3") == ["old1"]
    assert listing(cluster, "name") == []
    assert not (cluster.root("node1") / STORAGE / "old1").exists()
    cluster.run("node1", "gnt-backup", "import", "-n", "node2", "-t", "file", "--no-start", "old1")
    assert listing(cluster, "name", "pnode") == [["old1", "node2"]]


def test_export_refusals_change_nothing(cluster):
    """When an export cannot be made, the job says why and no export directory or instance changes."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=4M", "r1")
    cases = [
        (["-n", "node2", "ghost"], "instance 'ghost' does not exist"),
        (["-n", "node9", "r1"], "node 'node9' is not in the cluster"),
        (["-n", "node2", "--noshutdown", "r1"], "cannot be copied consistently while it runs"),
        (["-n", "node2", "--noshutdown", "--remove-instance", "r1"], "without shutting it down first"),
        (["r1"], "missing required parameter 'target_node'"),
    ]
    for args, message in cases:
        proc = cluster.run("node1", "gnt-backup", "export", *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
    status, result = run_op(cluster, opcodes.OpBackupExport(instance_name="r1", target_node=["x", "y"],
                                                            mode="remote"))
    assert status == "error" and "remote exports (mode 'remote') are not supported" in result[1][0]
    status, result = run_op(cluster, opcodes.OpBackupExport(instance_name="r1", target_node="node2",
                                                            destination_x509_ca="PEM"))
    assert status == "error" and "for remote exports only" in result[1][0]
    assert all(exports_on(cluster, n) == [] for n in cluster.names)
    assert listing(cluster, "name", "status") == [["r1", "running"]]


def test_failed_export_keeps_the_previous_export_and_restarts_the_instance(cluster):
    """When the copy fails, the staging directory is discarded, the older export is untouched and the
    instance runs again; when a disk is lost, the job names the disk, not the failed restart."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=4M", "f1")
    cluster.run("node1", "gnt-backup", "export", "-n", "node2", "f1")
    export = cluster.root("node2") / EXPORTS / "f1"
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    blocker = export.with_name(".f1.new")          # the staging directory cannot be made
    blocker.write_text("in the way")
    proc = cluster.run("node1", "gnt-backup", "export", "-n", "node2", "f1", check=False)
    assert proc.returncode == 1 and "preparing the export directory failed on node2" in proc.stderr
    assert "starting instance f1 again" in proc.stdout
    assert {p.name: p.read_bytes() for p in export.iterdir()} == before
    assert listing(cluster, "status") == [["running"]]
    blocker.unlink()

    [disk] = disk_files(cluster, "node1", "f1")
    disk.unlink()
    proc = cluster.run("node1", "gnt-backup", "export", "-n", "node2", "f1", check=False)
    assert proc.returncode == 1 and "sending disk 0 failed on node1" in proc.stderr
    assert "Warning: could not start instance f1" in proc.stdout
    assert exports_on(cluster, "node2") == ["f1"]
    assert {p.name: p.read_bytes() for p in export.iterdir()} == before


@pytest.mark.parametrize("args, message", [
    (["--src-node", "node2", "--src-dir", "../../etc", "-t", "file", "x1"], "invalid export name '../../etc'"),
    (["--src-node", "node2", "--src-dir", "/etc", "-t", "file", "x1"], "invalid export directory '/etc'"),
    (["--src-dir", "nosuch", "-t", "file", "x1"], "no node has an export named 'nosuch'"),
    (["--src-node", "node2", "--src-dir", "nosuch", "-t", "file", "x1"], "node2 has no export 'nosuch'"),
    (["--src-node", "node9", "--src-dir", "e1", "-t", "file", "x1"], "node 'node9' is not in the cluster"),
    (["--src-dir", "e1", "-t", "file", "--disk", "0:size=2M", "x1"], "smaller than the exported disk"),
    (["--src-dir", "e1", "-t", "file", "--disk", "0:size=8M,format=qcow2", "x1"], "cannot become a qcow2 disk"),
    (["--src-dir", "e1", "-t", "diskless", "x1"], "import it with a template that has disks"),
    (["--src-dir", "e1", "-t", "file", "e1"], "instance 'e1' already exists"),
])
def test_bad_import_is_refused_and_leaves_nothing(cluster, args, message):
    """When an import names a bad export, node or disk, nothing is created."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=4M", "--no-start",
                "e1")
    cluster.run("node1", "gnt-backup", "export", "-n", "node2", "e1")
    proc = cluster.run("node1", "gnt-backup", "import", "-n", "node3", *args, check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert listing(cluster, "name") == [["e1"]]
    assert not (cluster.root("node3") / STORAGE).exists() or disk_files(cluster, "node3", "x1") == []


def test_import_whose_image_is_missing_removes_the_new_disks(cluster):
    """When an image of the export cannot be sent, the new instance's disks are removed again."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=4M",
                "--disk", "1:size=4M", "--no-start", "m1")
    cluster.run("node1", "gnt-backup", "export", "-n", "node2", "m1")
    (cluster.root("node2") / EXPORTS / "m1" / "disk1.raw").unlink()
    proc = cluster.run("node1", "gnt-backup", "import", "-n", "node3", "-t", "file", "--src-dir", "m1", "m2",
                       check=False)
    assert proc.returncode == 1 and "has no image 'disk1.raw'" in proc.stderr
    assert listing(cluster, "name") == [["m1"]]
    assert not (cluster.root("node3") / STORAGE / "m2").exists()


def test_backup_remove_refuses_names_that_leave_the_export_directory(cluster):
    (cluster.root("node2") / "var/lib/genet/secret").mkdir(parents=True)
    for name in ("../secret", "a/b", ".hidden"):
        proc = cluster.run("node1", "gnt-backup", "remove", name, check=False)
        assert proc.returncode == 1 and "invalid export name" in proc.stderr, name
    assert (cluster.root("node2") / "var/lib/genet/secret").is_dir()


def test_recreate_disks_creates_only_missing_disks(cluster):
    """When a disk file is lost, recreate-disks creates it again empty; existing disks are never touched."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M",
                "--disk", "1:size=4M", "rc1")
    proc = cluster.run("node1", "gnt-instance", "recreate-disks", "rc1", check=False)
    assert proc.returncode == 1 and "is running; stop it before recreating its disks" in proc.stderr
    cluster.run("node1", "gnt-instance", "shutdown", "rc1")
    first, second = disk_files(cluster, "node2", "rc1")
    write_marker(first, 0, b"KEEP-ME")
    config_disks = {str(p) for p in (first, second)}
    lost = second
    lost.unlink()
    proc = cluster.run("node1", "gnt-instance", "recreate-disks", "rc1", check=False)
    assert proc.returncode == 1 and "only creates missing disks" in proc.stderr
    assert not lost.exists()
    # files are named by disk UUID: the query data says which index is the lost one
    status, data = run_op(cluster, opcodes.OpInstanceQueryData(instances=["rc1"]))
    paths = [d["pstatus"] and d["pstatus"][0] for d in data["rc1"]["disks"]]
    assert paths.count(None) == 1 and set(filter(None, paths)) < config_disks
    index = paths.index(None)
    out = cluster.run("node1", "gnt-instance", "recreate-disks", "--disk", f"{index}:size=16M", "rc1").stdout
    assert f"recreating disk {index} (16 MiB) on node2" in out
    assert lost.stat().st_size == 16 << 20 and first.read_bytes()[:7] == b"KEEP-ME"
    sizes = listing(cluster, "disk.sizes")[0][0].split(",")
    assert sizes[index] == "16" and sizes[1 - index] == "4"
    cluster.run("node1", "gnt-instance", "startup", "rc1")


def test_recreate_disks_on_a_new_node_and_refusals(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M",
                "--disk", "1:size=4M", "--no-start", "rn1")
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node1", "--no-start", "dl1")
    for args, message in [
        (["--disk", "0", "-n", "node3", "rn1"], "cannot recreate only some disks and change the nodes"),
        (["--disk", "5", "rn1"], "instance rn1 has no disk 5 (it has 2)"),
        (["--disk", "0", "--disk", "0", "rn1"], "disk(s) 0 given more than once"),
        (["-n", "node9", "rn1"], "node 'node9' is not in the cluster"),
        (["-n", "node3", "-I", "any", "rn1"], "either new nodes or an iallocator"),
        (["dl1"], "instance dl1 has no disks"),
        (["ghost"], "instance 'ghost' does not exist"),
    ]:
        proc = cluster.run("node1", "gnt-instance", "recreate-disks", *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
    out = cluster.run("node1", "gnt-instance", "recreate-disks", "-n", "node3", "rn1").stdout
    assert "recreating disk 0 (4 MiB) on node3" in out
    assert len(disk_files(cluster, "node3", "rn1")) == 2
    assert len(disk_files(cluster, "node2", "rn1")) == 2          # the old node's files are not touched
    assert listing(cluster, "name", "pnode") == [["dl1", "node1"], ["rn1", "node3"]]
    cluster.run("node1", "gnt-instance", "startup", "rn1")


def test_replace_disks_is_refused_for_templates_without_a_mirror(cluster):
    """When an instance's disks are not mirrored, replace-disks is refused whatever the mode, and the
    instances stay as they were; bad mode options are named."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M", "rp1")
    cluster.run("node1", "gnt-instance", "add", "-t", "sharedfile", "--disk", "0:size=4M", "--no-start", "rp2")
    for args, template in ((["-p", "rp1"], "file"), (["-a", "--disks", "0", "rp1"], "file"),
                           (["-n", "node3", "rp1"], "file"), (["-s", "rp2"], "sharedfile")):
        proc = cluster.run("node1", "gnt-instance", "replace-disks", *args, check=False)
        assert proc.returncode == 1, args
        assert (f"Instance's disk layout '{template}' is not mirrored, replace-disks needs a mirrored template"
                " (drbd or mirror)") in proc.stderr
        assert "wrong_input" in proc.stderr
    for args in (["rp1"], ["-p", "-s", "rp1"], ["-p", "-n", "node3", "rp1"]):
        proc = cluster.run("node1", "gnt-instance", "replace-disks", *args, check=False)
        assert proc.returncode == 1 and "one and only one of the -p, -s, -a, -n and -I" in proc.stderr
    status, result = run_op(cluster, opcodes.OpInstanceReplaceDisks(instance_name="rp1", mode="replace_new_secondary"))
    assert status == "error" and "give either the new node (remote_node) or an iallocator" in result[1][0]
    status, result = run_op(cluster, opcodes.OpInstanceReplaceDisks(instance_name="rp1", mode="replace_on_primary",
                                                                    remote_node="node3"))
    assert status == "error" and "only used to change the secondary node" in result[1][0]
    proc = cluster.run("node1", "gnt-instance", "replace-disks", "-p", "ghost", check=False)
    assert proc.returncode == 1 and "instance 'ghost' does not exist" in proc.stderr
    assert listing(cluster, "name", "status") == [["rp1", "running"], ["rp2", "ADMIN_down"]]


def test_query_data_static_and_live(cluster):
    """When asked for details, the job returns Ganeti's per-instance dict; static asks no node."""
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M",
                "--net", "0:link=br5,ip=10.0.0.5", "-B", "memory=64M", "q1")
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node3", "--no-start", "q2")
    status, data = run_op(cluster, opcodes.OpInstanceQueryData())
    assert status == "success" and sorted(data) == ["q1", "q2"]
    q1 = data["q1"]
    assert (q1["config_state"], q1["run_state"], q1["pnode"], q1["snodes"]) == ("up", "up", "node2", [])
    assert q1["disk_template"] == "file" and q1["hypervisor"] == "fake" and q1["os"] == "noop"
    assert q1["be_instance"]["maxmem"] == 64 and q1["be_actual"]["vcpus"] == 1
    assert q1["hv_actual"]["disk_type"] == "paravirtual"
    [disk] = q1["disks"]
    [path] = [str(p) for p in disk_files(cluster, "node2", "q1")]
    assert (disk["iv_name"], disk["size"], disk["mode"], disk["dev_type"]) == ("disk/0", 4, "rw", "file")
    assert disk["pstatus"][0] == path and disk["sstatus"] is None
    assert disk["logical_id"] == ["loop", "/" + os.path.relpath(path, cluster.root("node2"))]
    [nic] = q1["nics"]
    assert nic[2:6] == ["10.0.0.5", nic[3], "bridged", "br5"] and len(nic) == 9
    assert data["q2"]["run_state"] == "down" and data["q2"]["disks"] == []

    status, data = run_op(cluster, opcodes.OpInstanceQueryData(instances=["q1"], static=True, use_locking=True))
    assert sorted(data) == ["q1"]
    assert data["q1"]["run_state"] is None and data["q1"]["disks"][0]["pstatus"] is None

    cluster.run("node1", "gnt-node", "modify", "-O", "yes", "node3")
    status, data = run_op(cluster, opcodes.OpInstanceQueryData(instances=["q2"]))
    assert status == "success" and data["q2"]["run_state"] is None
    cluster.run("node1", "gnt-node", "modify", "-O", "no", "node3")
    status, result = run_op(cluster, opcodes.OpInstanceQueryData(instances=["ghost"]))
    assert status == "error" and "instance 'ghost' does not exist" in result[1][0]
