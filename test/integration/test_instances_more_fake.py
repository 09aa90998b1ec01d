"""Ganeti's further gnt-instance and gnt-backup commands, typed as a user would on a loopback
cluster with the fake hypervisor: offline instances, runtime memory, batch-create,
change-group, gnt-group evacuate and the export list's fields."""

import json

from test_instances_fake import listing


def gnt(cluster, *args, check=True):
    return cluster.run("node1", *args, check=check)


def test_offline_instance_cannot_start_until_it_is_online_again(cluster):
    gnt(cluster, "gnt-instance", "add", "-t", "diskless", "-n", "node2", "--no-start", "web1")
    out = gnt(cluster, "gnt-instance", "modify", "--offline", "web1").stdout
    assert out.splitlines() == ["Modified instance web1", " - admin_state -> offline"]
    assert listing(cluster, "status", "admin_state") == [["ADMIN_offline", "offline"]]
    proc = gnt(cluster, "gnt-instance", "startup", "web1", check=False)
    assert proc.returncode == 1 and "Instance 'web1' is marked to be offline" in proc.stderr
    proc = gnt(cluster, "gnt-instance", "shutdown", "web1", check=False)
    assert proc.returncode == 1 and "without --force" in proc.stderr
    gnt(cluster, "gnt-instance", "shutdown", "--force", "--timeout", "0", "web1")
    assert listing(cluster, "admin_state") == [["offline"]]
    gnt(cluster, "gnt-instance", "modify", "--online", "web1")
    gnt(cluster, "gnt-instance", "startup", "web1")
    assert listing(cluster, "status") == [["running"]]


def test_runtime_memory_balloons_the_running_instance(cluster):
    gnt(cluster, "gnt-instance", "add", "-t", "diskless", "-n", "node2", "-B", "maxmem=256,minmem=64", "web1")
    out = gnt(cluster, "gnt-instance", "modify", "-m", "96M", "web1").stdout
    assert " - runtime_memory -> 96" in out.splitlines()
    assert listing(cluster, "oper_ram", "be/maxmem") == [["96", "256"]]
    proc = gnt(cluster, "gnt-instance", "modify", "--runtime-memory", "32", "web1", check=False)
    assert proc.returncode == 1 and "must have memory between 64 and 256 MiB unless --force is given" in proc.stderr


def test_add_with_os_size_and_a_node_group_and_what_genet_refuses(cluster):
    gnt(cluster, "gnt-group", "add", "rack2")
    gnt(cluster, "gnt-group", "assign-nodes", "rack2", "node3")
    gnt(cluster, "gnt-instance", "add", "-t", "file", "-s", "8M", "-g", "rack2", "--no-start", "db1")
    assert listing(cluster, "name", "pnode", "disk.sizes") == [["db1", "node3", "8"]]
    for args, message in ((["-c"], "cannot serve instance communication"),
                          (["--file-driver", "blktap"], "loop driver only"),
                          (["--file-storage-dir", "mine"], "cannot place one instance elsewhere")):
        proc = gnt(cluster, "gnt-instance", "add", "-t", "file", "-s", "8M", *args, "x1", check=False)
        assert proc.returncode == 1 and message in proc.stderr


def test_batch_create_change_group_and_group_evacuate(cluster, tmp_path):
    spec = tmp_path / "instances.json"
    spec.write_text(json.dumps([{"instance_name": f"b{i}", "disk_template": "diskless", "os_type": "noop",
                                 "beparams": {"memory": 64}} for i in range(2)]))
    out = gnt(cluster, "gnt-instance", "batch-create", str(spec)).stdout
    assert out.splitlines()[-1] == "All instances created successfully."
    assert [row[0] for row in listing(cluster, "name", "status")] == ["b0", "b1"]
    gnt(cluster, "gnt-group", "add", "rack2")
    gnt(cluster, "gnt-group", "assign-nodes", "rack2", "node3")
    placed = dict(listing(cluster, "name", "pnode"))
    inside = sorted(name for name, node in placed.items() if node != "node3")
    out = gnt(cluster, "gnt-group", "evacuate", "--sequential", "--to", "rack2", "default").stdout
    assert out.splitlines()[-1] == "All instances evacuated successfully."
    assert listing(cluster, "pnode", "status") == [["node3", "running"], ["node3", "running"]]
    out = gnt(cluster, "gnt-instance", "change-group", "-I", "hail", inside[0]).stdout
    assert out.splitlines()[-1] == f"Instance '{inside[0]}' changed group successfully."
    assert dict(listing(cluster, "name", "pnode"))[inside[0]] in ("node1", "node2")
    proc = gnt(cluster, "gnt-instance", "change-group", "-I", "dumb", inside[0], check=False)
    assert proc.returncode == 1 and "iallocator 'dumb' is not available" in proc.stderr


def test_backup_list_fields_and_output(cluster):
    gnt(cluster, "gnt-instance", "add", "-t", "file", "-s", "8M", "-n", "node2", "--no-start", "db1")
    gnt(cluster, "gnt-backup", "export", "-n", "node3", "--transport-compression", "none", "db1")
    assert gnt(cluster, "gnt-backup", "list", "--no-headers", "-o", "export", "--node", "node3").stdout.split() == \
        ["db1"]
    fields = gnt(cluster, "gnt-backup", "list-fields", "--no-headers", "--separator=|").stdout.splitlines()
    assert sorted(line.split("|")[0] for line in fields) == ["export", "node"]
    proc = gnt(cluster, "gnt-backup", "export", "-n", "node3", "--zero-free-space", "db1", check=False)
    assert proc.returncode == 1 and "genet cannot zero an instance's free space" in proc.stderr
