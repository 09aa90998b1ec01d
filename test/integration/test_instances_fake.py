"""Instance lifecycle on a loopback cluster with the fake hypervisor: checks and rollback."""

import pytest
from ganeti_info import parsed


def listing(cluster, *fields):
    out = cluster.run("node1", "gnt-instance", "list", "--no-headers", "--separator=|", "-o", ",".join(fields))
    return [line.split("|") for line in out.stdout.splitlines() if line]


def test_add_start_stop_reboot_remove_diskless(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node2", "-B", "memory=64M", "web1")
    assert listing(cluster, "name", "pnode", "status", "oper_ram") == [["web1", "node2", "running", "64"]]
    cluster.run("node1", "gnt-instance", "shutdown", "--timeout", "5", "web1")
    assert listing(cluster, "status", "admin_state") == [["ADMIN_down", "down"]]
    cluster.run("node1", "gnt-instance", "startup", "web1")
    cluster.run("node1", "gnt-instance", "reboot", "--type", "hard", "web1")
    cluster.run("node1", "gnt-instance", "reboot", "--type", "full", "web1")
    assert listing(cluster, "status") == [["running"]]
    [info] = parsed(cluster.run("node1", "gnt-instance", "info", "web1").stdout)
    assert info["Nodes"][0]["primary"] == "node2" and info["State"].endswith("actual state is up")
    cluster.run("node1", "gnt-instance", "remove", "web1")
    assert listing(cluster, "name") == []


def test_add_file_instance_creates_its_disk_and_remove_deletes_it(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node3", "--disk", "0:size=8M",
                "--disk", "1:size=4M,format=qcow2", "--no-start", "db1")
    files = sorted(p.name for p in (cluster.root("node3") / "srv/genet/file-storage/db1").iterdir())
    assert len(files) == 2 and sorted(f.rsplit(".", 1)[1] for f in files) == ["qcow2", "raw"]
    assert listing(cluster, "name", "status", "disk.sizes") == [["db1", "ADMIN_down", "8,4"]]
    cluster.run("node1", "gnt-instance", "remove", "-f", "db1")     # Ganeti's no-ask flag
    assert not (cluster.root("node3") / "srv/genet/file-storage/db1").exists()


@pytest.mark.parametrize("args, message", [
    (["-t", "diskless", "-o", "nosuchos", "x1"], "OS 'nosuchos' cannot be used"),
    (["-t", "diskless", "-n", "node9", "x1"], "node 'node9' is not in the cluster"),
    (["-t", "diskless", "-B", "memory=1000000G", "x1"], "Can't compute nodes using iallocator 'hail'"),
    (["-t", "diskless", "-n", "node2", "-B", "memory=1000000G", "x1"], "not enough memory on node node2"),
    (["-t", "file", "x1"], "needs at least one disk"),
    (["-t", "diskless", "--net", "0:mac=zz", "x1"], "invalid MAC address"),
    (["-t", "diskless", "Bad_Name"], "invalid instance name"),
])
def test_bad_create_is_refused_and_leaves_nothing(cluster, args, message):
    proc = cluster.run("node1", "gnt-instance", "add", *args, check=False)
    assert proc.returncode == 1 and message in proc.stderr
    assert listing(cluster, "name") == []


@pytest.mark.parametrize("disk", ["0:size=0", "0:size=abc"])
def test_bad_disk_size_is_a_usage_error(cluster, disk):
    proc = cluster.run("node1", "gnt-instance", "add", "-t", "file", "--disk", disk, "x1", check=False)
    assert proc.returncode == 2 and "size" in proc.stderr


def test_duplicate_name_and_mac_are_refused(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "--net", "0:mac=aa:00:00:00:00:01",
                "--no-start", "one")
    proc = cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "--no-start", "one", check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    proc = cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "--net", "0:mac=aa:00:00:00:00:01",
                       "--no-start", "two", check=False)
    assert proc.returncode == 1 and "already in use" in proc.stderr
    assert [r[0] for r in listing(cluster, "name")] == ["one"]


def test_failed_start_rolls_back_disks_and_config(cluster):
    """When the hypervisor cannot start the instance, its disks and config entry are removed."""
    from genet.hypervisor.fake import FakeHypervisor
    FakeHypervisor(state_dir=cluster.root("node2") / "var/lib/genet/fake-hv").fail_next(
        "start", "qemu: could not open disk image: Permission denied")
    proc = cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M",
                       "broken", check=False)
    assert proc.returncode == 1 and "could not start instance broken" in proc.stderr
    assert "Permission denied" in proc.stderr
    assert listing(cluster, "name") == []
    assert not (cluster.root("node2") / "srv/genet/file-storage/broken").exists()
    data = cluster.stored_config("node1")
    assert "broken" not in data["instances"]
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "--no-start", "broken")


def test_instance_tags_and_fields(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "--no-start", "tagged")
    cluster.run("node1", "gnt-instance", "add-tags", "tagged", "env:prod")
    assert cluster.run("node1", "gnt-instance", "list-tags", "tagged").stdout.split() == ["env:prod"]
    cluster.run("node1", "gnt-instance", "remove-tags", "tagged", "env:prod")
    assert "oper_ram" in cluster.run("node1", "gnt-instance", "list-fields").stdout
    proc = cluster.run("node1", "gnt-instance", "startup", "ghost", check=False)
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_migrate_sharedfile_instance_and_back(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "sharedfile", "-n", "node1", "--disk", "0:size=4M", "mig1")
    out = cluster.run("node1", "gnt-instance", "migrate", "-n", "node2", "mig1").stdout
    assert "migration done" in out and "memory transfer progress" in out
    assert listing(cluster, "name", "pnode", "status") == [["mig1", "node2", "running"]]
    cluster.run("node1", "gnt-instance", "migrate", "mig1")        # target chosen by free memory
    assert listing(cluster, "pnode")[0][0] in ("node1", "node3")


def test_migrate_refusals(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=4M", "local1")
    proc = cluster.run("node1", "gnt-instance", "failover", "-n", "node2", "local1", check=False)
    assert proc.returncode == 1 and "only a live migration can take them along" in proc.stderr
    cluster.run("node1", "gnt-instance", "shutdown", "local1")
    proc = cluster.run("node1", "gnt-instance", "migrate", "-n", "node2", "local1", check=False)
    assert proc.returncode == 1 and "is not running" in proc.stderr
    proc = cluster.run("node1", "gnt-instance", "migrate", "--allow-failover", "-n", "node2", "local1", check=False)
    assert proc.returncode == 1 and "only a live migration can take them along" in proc.stderr
    cluster.run("node1", "gnt-instance", "startup", "local1")
    out = cluster.run("node1", "gnt-instance", "migrate", "-n", "node2", "local1").stdout
    assert "mirroring 1 disk(s) to node2" in out
    assert not (cluster.root("node1") / "srv/genet/file-storage/local1").exists()
    assert len(list((cluster.root("node2") / "srv/genet/file-storage/local1").iterdir())) == 1
    cluster.run("node1", "gnt-instance", "migrate", "-n", "node1", "local1")
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node1", "--no-start", "off1")
    proc = cluster.run("node1", "gnt-instance", "migrate", "-n", "node2", "off1", check=False)
    assert proc.returncode == 1 and "not running" in proc.stderr
    cluster.run("node1", "gnt-instance", "migrate", "--allow-failover", "-n", "node2", "off1")
    assert listing(cluster, "name", "pnode") == [["local1", "node1"], ["off1", "node2"]]
    cluster.run("node1", "gnt-instance", "startup", "off1")
    cluster.run("node1", "gnt-node", "modify", "-O", "yes", "node3")
    proc = cluster.run("node1", "gnt-instance", "migrate", "-n", "node3", "off1", check=False)
    assert proc.returncode == 1 and "target node node3 is offline" in proc.stderr
    cluster.run("node1", "gnt-node", "modify", "-O", "no", "node3")


def test_failover_and_node_evacuate_and_migrate(cluster):
    for name in ("e1", "e2"):
        cluster.run("node1", "gnt-instance", "add", "-t", "sharedfile", "-n", "node1", "--disk", "0:size=4M", name)
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node1", "--no-start", "e3")
    cluster.run("node1", "gnt-instance", "failover", "-f", "-n", "node3", "e1")
    assert listing(cluster, "name", "pnode", "status")[0] == ["e1", "node3", "running"]
    cluster.run("node1", "gnt-node", "evacuate", "--force", "--early-release", "-n", "node2", "node1")
    rows = listing(cluster, "name", "pnode", "status")
    assert rows == [["e1", "node3", "running"], ["e2", "node2", "running"], ["e3", "node2", "ADMIN_down"]]
    cluster.run("node1", "gnt-node", "migrate", "-f", "node2")
    rows = listing(cluster, "name", "pnode")
    assert dict(rows)["e2"] != "node2" and dict(rows)["e3"] == "node2"   # e3 is down: not migrated


def test_migrate_cleanup_keeps_the_running_copy(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node1", "c1")
    out = cluster.run("node1", "gnt-instance", "migrate", "--cleanup", "c1").stdout
    assert "runs on node1" in out
    assert listing(cluster, "name", "pnode", "status") == [["c1", "node1", "running"]]


def test_verify_finds_instances_running_in_the_wrong_place(cluster):
    """When an instance stopped behind genet's back or a node runs an unknown one, verify says so."""
    from genet.hypervisor.fake import FakeHypervisor
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node2", "v1")
    cluster.run("node1", "gnt-cluster", "verify")
    node2 = FakeHypervisor(state_dir=cluster.root("node2") / "var/lib/genet/fake-hv")
    node3 = FakeHypervisor(state_dir=cluster.root("node3") / "var/lib/genet/fake-hv")
    node2.stop("v1", force=True)
    node3.start({"name": "stray", "hvparams": {}, "beparams": {"maxmem": 64, "vcpus": 1}, "disks": [], "nics": []})
    node3.start({"name": "v1", "hvparams": {}, "beparams": {"maxmem": 64, "vcpus": 1}, "disks": [], "nics": []})
    proc = cluster.run("node1", "gnt-cluster", "verify", check=False)
    assert proc.returncode == 1
    assert "instance v1: not running on its primary node node2" in proc.stdout
    assert "node node3: runs unknown instance stray" in proc.stdout
    assert "instance v1: running on node3, which is not its primary node node2" in proc.stdout


def test_grow_disk_activate_deactivate_rename(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M",
                "--no-wait-for-sync", "g1")
    cluster.run("node1", "gnt-instance", "grow-disk", "--no-wait-for-sync", "g1", "0", "4M")
    cluster.run("node1", "gnt-instance", "grow-disk", "--absolute", "g1", "0", "16M")
    assert listing(cluster, "disk.sizes") == [["16"]]
    [disk] = (cluster.root("node2") / "srv/genet/file-storage/g1").iterdir()
    assert disk.stat().st_size == 16 << 20
    proc = cluster.run("node1", "gnt-instance", "grow-disk", "--absolute", "g1", "0", "8M", check=False)
    assert proc.returncode == 1 and "would not grow" in proc.stderr
    out = cluster.run("node1", "gnt-instance", "activate-disks", "g1").stdout
    assert out.strip() == f"node2:disk/0:{disk}"
    proc = cluster.run("node1", "gnt-instance", "deactivate-disks", "g1", check=False)
    assert proc.returncode == 1 and "is running" in proc.stderr
    proc = cluster.run("node1", "gnt-instance", "rename", "g1", "g2", check=False)
    assert proc.returncode == 1 and "stop it before renaming" in proc.stderr
    cluster.run("node1", "gnt-instance", "shutdown", "g1")
    cluster.run("node1", "gnt-instance", "deactivate-disks", "g1")
    # the new name resolves (the cluster's hosts file, no DNS) to an address that answers: --ip-check refuses
    with open(cluster.hosts, "a") as hosts:
        hosts.write("127.0.0.99 g2\n")
    proc = cluster.run("node1", "gnt-instance", "rename", "--name-check", "--ip-check", "g1", "g2", check=False)
    assert proc.returncode == 1 and "127.0.0.99 of g2 already answers" in proc.stderr, proc.stderr
    assert listing(cluster, "name") == [["g1"]]
    cluster.run("node1", "gnt-instance", "rename", "--no-name-check", "--no-ip-check", "g1", "g2")
    assert listing(cluster, "name") == [["g2"]]
    assert (cluster.root("node2") / f"srv/genet/file-storage/g2/{disk.name}").exists()
    cluster.run("node1", "gnt-instance", "startup", "g2")
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "--no-start", "g1")   # the old name is free


def test_modify_params_and_hotplug_disks_and_nics(cluster):
    from genet.hypervisor.fake import FakeHypervisor
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M", "--no-nics", "m1")
    out = cluster.run("node1", "gnt-instance", "modify", "-B", "vcpus=2", "--disk", "add:size=8M",
                      "--net", "add:link=br9", "m1").stdout
    assert "be/vcpus -> 2" in out and "disk/1 -> add" in out and "nic/0 -> add" in out
    assert listing(cluster, "be/vcpus", "disk.sizes", "nic.links") == [["2", "4,8", "br9"]]
    fake = FakeHypervisor(state_dir=cluster.root("node2") / "var/lib/genet/fake-hv")
    devices = fake.devices("m1")
    assert len(devices["disks"]) == 2 and len(devices["nics"]) == 1      # hot-plugged into the guest
    cluster.run("node1", "gnt-instance", "modify", "--disk", "0:remove", "--net", "0:remove", "m1")
    assert listing(cluster, "disk.sizes", "nic.count") == [["8", "0"]]
    assert len(list((cluster.root("node2") / "srv/genet/file-storage/m1").iterdir())) == 1
    proc = cluster.run("node1", "gnt-instance", "modify", "--disk", "5:remove", "m1", check=False)
    assert proc.returncode == 1 and "no disk 5" in proc.stderr
    proc = cluster.run("node1", "gnt-instance", "modify", "m1", check=False)
    assert proc.returncode == 1 and "no changes" in proc.stderr
    proc = cluster.run("node1", "gnt-instance", "modify", "-H", "bogus_param=1", "m1", check=False)
    assert proc.returncode == 1 and "bogus_param" in proc.stderr


def test_evacuating_an_offline_node_fails_its_instances_over(cluster):
    """When the node is dead and marked offline, evacuate restarts its instances elsewhere."""
    cluster.run("node1", "gnt-instance", "add", "-t", "sharedfile", "-n", "node3", "--disk", "0:size=4M", "d1")
    cluster.run("node1", "gnt-node", "modify", "-O", "yes", "node3")
    proc = cluster.run("node1", "gnt-instance", "migrate", "d1", check=False)
    assert proc.returncode == 1 and "offline; use failover" in proc.stderr
    cluster.run("node1", "gnt-node", "evacuate", "node3")
    [[pnode, status]] = listing(cluster, "pnode", "status")
    assert pnode in ("node1", "node2") and status == "running"
    proc = cluster.run("node1", "gnt-node", "evacuate", "-p", "-s", "node2", check=False)
    assert proc.returncode == 1 and "exclude each other" in proc.stderr


def test_init_refuses_a_multicast_mac_prefix_and_a_relative_shared_dir(tmp_path):
    from loopback import LoopbackCluster
    solo = LoopbackCluster(tmp_path, nodes=1)
    proc = solo.run("node1", "gnt-cluster", "init", "--mac-prefix", "01:00:00", "c", check=False)
    assert proc.returncode == 1 and "unicast" in proc.stderr
    proc = solo.run("node1", "gnt-cluster", "init", "--shared-file-storage-dir", "rel/dir", "c", check=False)
    assert proc.returncode == 1 and "must be absolute" in proc.stderr
    assert not (solo.root("node1") / "var/lib/genet/config.data").exists()


def test_os_list_info_diagnose(cluster):
    names = cluster.run("node1", "gnt-os", "list", "--no-headers").stdout.split()
    assert {"noop", "image"} <= set(names)
    info = cluster.run("node1", "gnt-os", "info").stdout
    assert "image:" in info.splitlines() and "  - hidden: False" in info
    out = cluster.run("node1", "gnt-os", "diagnose").stdout
    assert "OS: noop [global status: valid]" in out and "Node: node3, status: valid" in out


def test_image_os_writes_the_disk_and_reinstall_and_rename_run_the_scripts(cluster):
    from genet_dev import testguest
    image = testguest.ensure()["disk_raw"]
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=64M",
                "-o", "image", "-O", f"image={image}", "--no-start", "img1")
    [disk] = (cluster.root("node2") / "srv/genet/file-storage/img1").iterdir()
    assert disk.read_bytes()[:16] == b"GENET-TEST-DISK\n"
    disk.write_bytes(b"\0" * 16 + disk.read_bytes()[16:])
    cluster.run("node1", "gnt-instance", "reinstall", "-f", "img1")
    assert disk.read_bytes()[:16] == b"GENET-TEST-DISK\n"
    cluster.run("node1", "gnt-instance", "rename", "img1", "img2")
    logs = sorted(p.name for p in (cluster.root("node2") / "var/log/genet/os").iterdir())
    assert any(n.startswith("create-img1") for n in logs) and any(n.startswith("rename-img2") for n in logs)
    proc = cluster.run("node1", "gnt-instance", "add", "-t", "file", "--disk", "0:size=64M", "-o", "image",
                       "-O", "image=/nonexistent.raw", "--no-start", "img3", check=False)
    assert proc.returncode == 1 and "nonexistent" in proc.stderr
    assert [r[0] for r in listing(cluster, "name")] == ["img2"]
    proc = cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-o", "nosuchos", "x9", check=False)
    assert proc.returncode == 1 and "nosuchos" in proc.stderr


def test_node_failover_and_non_live_migration(cluster):
    cluster.run("node1", "gnt-instance", "add", "-t", "sharedfile", "-n", "node2", "--disk", "0:size=4M", "f1")
    cluster.run("node1", "gnt-instance", "add", "-t", "diskless", "-n", "node2", "--no-start", "f2")
    out = cluster.run("node1", "gnt-instance", "migrate", "--non-live", "-n", "node3", "f1").stdout
    assert "(non-live)" in out
    cluster.run("node1", "gnt-instance", "migrate", "-f", "-n", "node2", "f1")
    cluster.run("node1", "gnt-node", "failover", "-f", "-n", "node3", "node2")
    assert listing(cluster, "name", "pnode", "status") == [["f1", "node3", "running"], ["f2", "node3", "ADMIN_down"]]


def test_move_copies_file_disks_to_another_node(cluster):
    """When moved, a file instance's disks arrive byte for byte on the new node and it runs there."""
    import os
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node1", "--disk", "0:size=8M",
                "--disk", "1:size=4M,format=qcow2", "mv1")
    src_dir = cluster.root("node1") / "srv/genet/file-storage/mv1"
    raw = next(p for p in src_dir.iterdir() if p.suffix == ".raw")
    payload = os.urandom(3 << 20)
    with open(raw, "r+b") as f:
        f.seek(1 << 20)
        f.write(payload)
    before = {p.name: p.read_bytes() for p in src_dir.iterdir()}
    out = cluster.run("node1", "gnt-instance", "move", "-f", "-n", "node3", "mv1").stdout
    assert "copying disk 0 (8 MiB) to node3" in out and "copying disk 1" in out
    after = {p.name: p.read_bytes() for p in (cluster.root("node3") / "srv/genet/file-storage/mv1").iterdir()}
    assert after == before
    assert not src_dir.exists()
    assert listing(cluster, "name", "pnode", "status") == [["mv1", "node3", "running"]]
    proc = cluster.run("node1", "gnt-instance", "move", "-n", "node3", "mv1", check=False)
    assert proc.returncode == 1 and "already on node3" in proc.stderr
    cluster.run("node1", "gnt-instance", "add", "-t", "sharedfile", "--disk", "0:size=4M", "--no-start", "sh1")
    proc = cluster.run("node1", "gnt-instance", "move", "-n", "node2", "sh1", check=False)
    assert proc.returncode == 1 and "copies file disks only" in proc.stderr


def test_failover_away_from_a_primary_that_does_not_answer_needs_the_admins_word(cluster):
    """When the primary node does not answer (dead, or cut off with its VMs running), instance and
    node failover are refused and change nothing, until it is marked offline or --primary-is-down
    says it is down; the job log keeps that decision."""
    cluster.run("node1", "gnt-instance", "add", "-t", "sharedfile", "-n", "node2", "--disk", "0:size=4M", "d1")
    cluster.run("node2", "genet-daemon", "stop")
    for argv in (["gnt-instance", "failover", "-f", "--ignore-consistency", "-n", "node3", "d1"],
                 ["gnt-node", "failover", "-f", "--ignore-consistency", "-n", "node3", "node2"]):
        proc = cluster.run("node1", *argv, check=False)
        assert proc.returncode == 1 and "the primary node node2 of d1 does not answer" in proc.stderr, proc.stderr
        assert "gnt-node modify -O yes node2" in proc.stderr and "--primary-is-down" in proc.stderr
        assert listing(cluster, "name", "pnode") == [["d1", "node2"]]
    out = cluster.run("node1", "gnt-node", "failover", "-f", "--ignore-consistency", "--primary-is-down",
                      "-n", "node3", "node2").stdout
    assert "on the admin's word that it is down (--primary-is-down)" in out
    assert listing(cluster, "name", "pnode", "status") == [["d1", "node3", "running"]]
