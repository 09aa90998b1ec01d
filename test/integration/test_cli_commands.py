"""Every gnt-* command of the cluster core, run as a user would, on a loopback cluster."""
import time

from ganeti_info import parsed
from genet_dev import policy


def lines(proc):
    return [line for line in proc.stdout.splitlines() if line]


def test_node_list_output_options(cluster):
    out = cluster.run("node1", "gnt-node", "list", "--separator=|", "-o", "name,pip,offline").stdout
    assert lines_of(out) == ["Node|PrimaryIP|Offline", *(f"{n}|{cluster.address(n)}|N" for n in cluster.names)]
    plus = cluster.run("node1", "gnt-node", "list", "--no-headers", "-o", "+role", "node2").stdout.split()
    assert plus[0] == "node2" and plus[-1] == "C"
    filtered = cluster.run("node1", "gnt-node", "list", "--no-headers", "-o", "name", "--filter",
                           'name =~ /[23]$/ and not offline').stdout.split()
    assert filtered == ["node2", "node3"]


def lines_of(text):
    return [line for line in text.splitlines() if line]


def test_unknown_field_exits_14_and_unknown_node_names_it(cluster):
    proc = cluster.run("node1", "gnt-node", "list", "-o", "name,bogus", check=False)
    assert proc.returncode == 14 and "bogus" in proc.stderr
    proc = cluster.run("node1", "gnt-node", "list", "nodeX", check=False)
    assert proc.returncode == 1 and "nodeX" in proc.stderr
    proc = cluster.run("node1", "gnt-node", "list", "--filter", "name ==", check=False)
    assert proc.returncode == 1 and "cannot parse filter" in proc.stderr
    proc = cluster.run("node1", "gnt-node", "list", "--filter", "bogus == 1", check=False)
    assert proc.returncode == 14 and "bogus" in proc.stderr


def test_node_list_fields_and_info(cluster):
    out = cluster.run("node1", "gnt-node", "list-fields").stdout
    assert "mfree" in out and "master_candidate" in out
    assert cluster.run("node1", "gnt-node", "list-fields", "bogus", check=False).returncode == 14
    [info] = parsed(cluster.run("node1", "gnt-node", "info", "node2").stdout)
    assert (info["Node name"], info["master candidate"], info["primary for instances"]) == ("node2", True, None)
    assert cluster.run("node1", "gnt-node", "info", "nodeX", check=False).returncode == 1


def test_node_modify_roles_and_candidate_pool_guard(cluster):
    """When demoting would leave too few candidates, modify refuses unless --auto-promote."""
    proc = cluster.run("node1", "gnt-node", "modify", "-C", "no", "node3", check=False)
    assert proc.returncode == 1 and "not enough master candidates" in proc.stderr
    cluster.run("node1", "gnt-cluster", "modify", "-C", "2")
    cluster.run("node1", "gnt-node", "modify", "-C", "no", "node3")
    assert role(cluster, "node3") == "R"
    cluster.run("node1", "gnt-node", "modify", "-D", "yes", "node3")
    assert role(cluster, "node3") == "D"
    cluster.run("node1", "gnt-node", "modify", "-D", "no", "node3")
    cluster.run("node1", "gnt-node", "modify", "--master-capable", "no", "node3")
    proc = cluster.run("node1", "gnt-node", "modify", "-C", "yes", "node3", check=False)
    assert proc.returncode == 1 and "cannot become a candidate" in proc.stderr
    cluster.run("node1", "gnt-node", "modify", "--master-capable", "yes", "--vm-capable", "no", "node3")
    out = cluster.run("node1", "gnt-node", "list", "--no-headers", "-o", "master_capable,vm_capable",
                      "node3").stdout.split()
    assert out == ["Y", "N"]
    proc = cluster.run("node1", "gnt-node", "modify", "-O", "yes", "node1", check=False)
    assert proc.returncode == 1 and "master node" in proc.stderr
    proc = cluster.run("node1", "gnt-node", "modify", "-O", "yes", "-D", "yes", "node3", check=False)
    assert proc.returncode == 1 and "only one of" in proc.stderr


def role(cluster, node):
    return cluster.run("node1", "gnt-node", "list", "--no-headers", "-o", "role", node).stdout.strip()


def test_offline_node_leaves_the_majority_and_returns(cluster):
    cluster.run("node1", "gnt-node", "modify", "-O", "yes", "node3")
    assert role(cluster, "node3") == "O"
    cluster.run("node1", "gnt-debug", "delay", "0")
    cluster.run("node1", "gnt-node", "modify", "-O", "no", "node3")
    assert role(cluster, "node3") == "C"
    serials = {cluster.stored_config(n)["serial_no"]
               for n in cluster.names}
    assert len(serials) == 1


def test_node_remove_cleans_the_node_and_it_can_join_again(cluster):
    cluster.run("node1", "gnt-node", "remove", "node3")
    assert [l.split()[0] for l in lines(cluster.run("node1", "gnt-node", "list", "--no-headers"))] == \
        ["node1", "node2"]
    time.sleep(0.5)
    assert not (cluster.root("node3") / "var/lib/genet/config.data").exists()
    proc = cluster.run("node1", "gnt-node", "remove", "node3", check=False)
    assert proc.returncode == 1 and "not in the cluster" in proc.stderr
    cluster.join("node3")
    assert role(cluster, "node3") == "C"


def test_tags_on_cluster_and_nodes(cluster):
    cluster.run("node1", "gnt-cluster", "add-tags", "a", "b")
    cluster.run("node1", "gnt-cluster", "remove-tags", "a")
    assert lines(cluster.run("node1", "gnt-cluster", "list-tags")) == ["b"]
    cluster.run("node1", "gnt-node", "add-tags", "node2", "rack:1")
    assert lines(cluster.run("node1", "gnt-node", "list-tags", "node2")) == ["rack:1"]
    cluster.run("node1", "gnt-node", "remove-tags", "node2", "rack:1")
    proc = cluster.run("node1", "gnt-node", "remove-tags", "node2", "rack:1", check=False)
    assert proc.returncode == 1 and "not found" in proc.stderr
    proc = cluster.run("node1", "gnt-cluster", "add-tags", "bad tag", check=False)
    assert proc.returncode == 1 and "invalid tag" in proc.stderr


def test_cluster_info_modify_redist_getmaster(cluster):
    cluster.run("node1", "gnt-cluster", "modify", "--candidate-pool-size", "5", "--max-running-jobs", "8")
    info = parsed(cluster.run("node1", "gnt-cluster", "info").stdout)
    assert info["Cluster parameters"]["candidate pool size"] == 5
    assert info["Cluster parameters"]["maximal number of jobs running simultaneously"] == 8
    assert info["Master node"] == "node1"
    assert cluster.run("node1", "gnt-cluster", "modify", check=False).returncode == 1
    out = cluster.run("node1", "gnt-cluster", "redist-conf").stdout
    assert "config to node2: ok" in out and "ssconf to node3: ok" in out
    assert cluster.run("node2", "gnt-cluster", "getmaster").stdout.strip() == "node1"


def test_job_commands(cluster):
    job = cluster.run("node1", "gnt-debug", "delay", "--submit", "0").stdout.split()[-1]
    cluster.run("node1", "gnt-job", "watch", job)
    info = cluster.run("node1", "gnt-job", "info", job).stdout
    assert f"Job ID: {job}" in info and "OP_TEST_DELAY" in info and "Status: success" in info
    listed = cluster.run("node1", "gnt-job", "list", "--no-headers", "--finished").stdout
    assert job in listed.split()
    blocker = cluster.run("node1", "gnt-debug", "delay", "--submit", "10").stdout.split()[-1]
    time.sleep(0.3)
    # a BGL-exclusive job waiting for the running delay's shared BGL can be canceled
    waiting = cluster.run("node1", "gnt-cluster", "add-tags", "--submit", "never").stdout.split()[-1]
    time.sleep(0.3)
    out = cluster.run("node1", "gnt-job", "cancel", waiting).stdout
    assert "will be canceled" in out
    status = lambda j: cluster.run("node1", "gnt-job", "list", "--no-headers", "-o", "status", j).stdout.strip()
    deadline = time.monotonic() + 5
    while status(waiting) != "canceled" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status(waiting) == "canceled"
    assert "never" not in cluster.run("node1", "gnt-cluster", "list-tags").stdout
    proc = cluster.run("node1", "gnt-job", "cancel", blocker, check=False)
    assert proc.returncode == 1 and "running" in proc.stdout
    cluster.run("node1", "gnt-job", "archive", job)
    assert cluster.run("node1", "gnt-job", "archive", job, check=False).returncode == 1
    assert "Archived" in cluster.run("node1", "gnt-job", "autoarchive", "all").stdout
    assert cluster.run("node1", "gnt-job", "autoarchive", "soon", check=False).returncode == 1
    assert cluster.run("node1", "gnt-job", "info", "99999", check=False).returncode == 1
    assert "status" in cluster.run("node1", "gnt-job", "list-fields").stdout
    proc = cluster.run("node1", "gnt-job", "list", "-o", "id,badfield", check=False)
    assert proc.returncode == 14 and "badfield" in proc.stderr


def test_debug_delay_on_nodes_and_bad_input(cluster):
    cluster.run("node1", "gnt-debug", "delay", "--no-master", "-n", "node2", "-n", "node3", "0.1")
    proc = cluster.run("node1", "gnt-debug", "delay", "-n", "nodeX", "0", check=False)
    assert proc.returncode == 1 and "nodeX" in proc.stderr
    proc = cluster.run("node1", "gnt-debug", "delay", "abc", check=False)
    assert proc.returncode == 2 and "expected a number" in proc.stderr


def test_commands_off_the_master_fail_clearly(cluster):
    proc = cluster.run("node2", "gnt-node", "list", check=False)
    assert proc.returncode == 11 and "the master is node1" in proc.stderr


def test_init_twice_is_refused_and_destroy_needs_confirmation(cluster):
    proc = cluster.run("node1", "gnt-cluster", "init", "again", check=False)
    assert proc.returncode == 1 and "already part of a cluster" in proc.stderr
    proc = cluster.run("node1", "gnt-cluster", "destroy", check=False)
    assert proc.returncode == 13 and "--yes-do-it" in proc.stderr
    proc = cluster.run("node1", "gnt-cluster", "destroy", "--yes-do-it", check=False)
    assert proc.returncode == 1 and "remove them first" in proc.stderr
    cluster.run("node1", "gnt-node", "remove", "node2")
    cluster.run("node1", "gnt-node", "remove", "node3")
    cluster.run("node1", "gnt-cluster", "destroy", "--yes-do-it")
    assert not (cluster.root("node1") / "var/lib/genet/config.data").exists()
    proc = cluster.run("node1", "gnt-cluster", "getmaster", check=False)
    assert proc.returncode == 5 and "not part of a cluster" in proc.stderr
    proc = cluster.run("node1", "gnt-node", "list", check=False)
    assert proc.returncode == 5


def test_master_reconnects_after_a_node_daemon_restart(cluster):
    """When a node's noded restarts, the master's kept connections to it are replaced at once."""
    ids = [cluster.run("node1", "gnt-debug", "delay", "--submit", "--no-locks", "--no-master", "-n", "node2", "0.5")
           .stdout.split()[-1] for _ in range(6)]
    for job_id in ids:      # six parallel calls leave six kept connections to node2
        cluster.run("node1", "gnt-job", "watch", job_id)
    cluster.run("node2", "genet-daemon", "stop")
    cluster.run("node2", "genet-daemon", "start")
    cluster.run("node1", "gnt-cluster", "verify")
    cluster.run("node1", "gnt-debug", "delay", "-n", "node2", "0")


def test_job_options_print_jobid_priority_and_dry_run(cluster):
    out = cluster.run("node1", "gnt-debug", "delay", "--print-jobid", "--priority", "-5", "0").stdout
    job_id = out.splitlines()[0]            # Ganeti's --print-jobid: the bare number first
    info = cluster.run("node1", "gnt-job", "info", job_id).stdout
    assert "Priority: -5" in info and "Status: success" in info
    cluster.run("node1", "gnt-cluster", "modify", "--dry-run", "-C", "3")
    assert "candidate pool size: 10" in cluster.run("node1", "gnt-cluster", "info").stdout


def test_init_with_a_file_storage_dir_puts_file_disks_there(tmp_path):
    from loopback import LoopbackCluster
    solo = LoopbackCluster(tmp_path, nodes=1)
    try:
        proc = solo.run("node1", "gnt-cluster", "init", "--noded-port", str(solo.port), "--primary-ip-version", "6",
                        "solo", check=False)
        assert proc.returncode == 1 and "is IPv4, not IPv6" in proc.stderr
        for option, why in (("--gluster-storage-dir=/srv/gluster", "genet has no gluster disk template"),
                            ("--ssh-key-type=rsa", "genet makes no SSH keys")):
            proc = solo.run("node1", "gnt-cluster", "init", "--noded-port", str(solo.port), option, "solo", check=False)
            assert proc.returncode == 1 and why in proc.stderr
        assert not (solo.root("node1") / "var/lib/genet/config.data").exists()
        solo.run("node1", "gnt-cluster", "init", "--noded-port", str(solo.port), "--file-storage-dir", "data/disks",
                 f"--shared-file-storage-dir={tmp_path / 'shared'}", "--primary-ip-version", "4", "--no-etc-hosts",
                 "--no-ssh-init", "--compression-tools", "gzip,lzop", "--user-shutdown", "yes",
                 "--zeroing-image", "/srv/zero.img", *policy.init_options(), "solo")
        info = parsed(solo.run("node1", "gnt-cluster", "info").stdout)
        assert info["Cluster parameters"]["file storage path"] == "data/disks"
        assert info["Cluster parameters"]["compression tools"] == ["gzip", "lzop"]
        assert (info["Cluster parameters"]["enabled user shutdown"], info["Cluster parameters"]["zeroing image"]) == \
            (True, "/srv/zero.img")
        solo.run("node1", "gnt-instance", "add", "-t", "file", "--disk", "0:size=4M", "--no-start", "f1")
        assert len(list((solo.root("node1") / "data/disks/f1").iterdir())) == 1
    finally:
        solo.stop()
