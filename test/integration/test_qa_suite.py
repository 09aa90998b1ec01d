"""Issue 13: the QA suite (``python -m qa``) run from outside against a 3-node dev cluster.

The suite reaches the cluster as it would a real one: the RAPI on the master's address (the
cluster certificate as CA, a write user) and an SSH login as root on node1 with the dev
cluster's key. The dev cluster enables the ``mirror`` template in its instance policy so that
migration, failover, evacuation and replace-disks run on a mirrored template as well as on
the shared ones. A bystander instance shows that the suite leaves other instances alone.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from devnet import dev_cluster

ROOT = Path(__file__).resolve().parents[2]
USERS = "qa qapw write\n"
TEMPLATES = "diskless,file,sharedfile,mirror"


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    with dev_cluster(tmp_path_factory.mktemp("qa") / "cluster") as cluster:
        users = cluster.root("node1") / "var/lib/genet/rapi/users"
        users.parent.mkdir(parents=True, exist_ok=True)
        users.write_text(USERS)
        cluster.run("node1", "gnt-group", "modify", "--ipolicy-disk-templates", TEMPLATES, "default")
        cluster.run("node1", "gnt-instance", "add", "-t", "file", "-o", "noop", "--disk", "0:size=16M",
                    "-n", "node1", "bystander")
        cluster.doc = json.loads((cluster.dir / "cluster.json").read_text())
        pem = (cluster.root("node1") / "var/lib/genet/server.pem").read_text()
        cluster.ca = cluster.dir / "cluster-cert.pem"      # the certificate without the cluster's key
        cluster.ca.write_text(re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", pem,
                                        re.DOTALL).group(0))
        yield cluster


def qa(dev, *args: str, password: str = "qapw") -> subprocess.CompletedProcess:
    """python -m qa against the dev cluster, from the top of the source tree."""
    master = dev.doc["nodes"][0]["ip"]
    ssh = dev.doc["ssh"]
    argv = [sys.executable, "-m", "qa", "--rapi", f"https://{master}:5080", "--rapi-user", "qa",
            "--rapi-password", password,
            "--rapi-ca", str(dev.ca),
            "--ssh", f"{ssh['user']}@{master}", "--ssh-option", f"IdentityFile={ssh['key']}",
            "--ssh-option", f"UserKnownHostsFile={ssh['known_hosts']}", "--disk-size", "64M", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


def state(dev) -> dict:
    """What a QA run must leave as it found it."""
    def rows(*argv: str) -> list[str]:
        return dev.run("node1", *argv).stdout.splitlines()
    return {"cluster": rows("gnt-cluster", "getmaster") + rows("gnt-cluster", "info")[:1],
            "instances": rows("gnt-instance", "list", "--no-headers", "-o", "name,pnode,snodes,status,disk.sizes"),
            "nodes": rows("gnt-node", "list", "--no-headers", "-o", "name,role,drained,offline,group"),
            "tags": rows("gnt-cluster", "list-tags"),
            "pool": [line for line in rows("gnt-cluster", "info") if "candidate pool size" in line],
            "groups": rows("gnt-group", "list", "--no-headers", "-o",
                           "name,alloc_policy,custom_ipolicy,custom_ndparams"),
            "networks": rows("gnt-network", "list", "--no-headers", "-o", "name"),
            "filters": rows("gnt-filter", "list", "--no-headers", "-o", "uuid"),
            "exports": rows("gnt-backup", "list", "--no-headers"),
            "oses": rows("gnt-os", "list", "--no-headers") + [line for line in rows("gnt-cluster", "info")
                                                              if line.startswith(("Hidden OSes", "Blacklisted OSes"))]}


def job_count(dev) -> int:
    return len(dev.run("node1", "gnt-job", "list", "--no-headers", "-o", "id").stdout.split())


# blocks and how many checks each has (all must pass): the jobs and cluster administration blocks,
# and those of issue 14's command families
BLOCK_CHECKS = {"jobs": 4, "cluster-admin": 7, "groups": 13, "networks": 9, "os": 6, "backup[file]": 7,
                "filters": 7, "debug": 6, "global-options": 5}


@pytest.mark.timeout(600)        # minutes of real work, slower when the machine is busy
def test_the_whole_suite_passes_and_leaves_the_cluster_as_it_was(dev):
    """When the suite runs every block on a healthy cluster, every check passes, the summary says
    so, the operations really ran as jobs, and the cluster's name and master, the instances, nodes,
    groups, networks, filter rules, exports, OSes, tags and parameters, and the nodes' /tmp are
    afterwards what they were before."""
    before, jobs = state(dev), job_count(dev)
    proc = qa(dev, "--templates", TEMPLATES)
    out = proc.stdout
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("FAIL")] == [], out + proc.stderr
    match = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1])
    assert match and match.group(2) == "0", out
    assert int(match.group(1)) >= 130, out
    passed = [line.split(":")[0].removeprefix("PASS ") for line in lines if line.startswith("PASS")]
    assert {block: passed.count(block) for block in BLOCK_CHECKS} == BLOCK_CHECKS, out
    assert proc.returncode == 0, out + proc.stderr
    for expected in ("PASS cluster: gnt-cluster verify",
                     "PASS nodes: gnt-node modify --drained yes, then no",
                     "PASS jobs: gnt-job change-priority and cancel of delays queued behind another",
                     "PASS jobs: RAPI /2/filters: a REJECT rule cancels a job, then goes",
                     "PASS storage: list-storage[file] agrees with the RAPI",
                     "PASS storage: gnt-storage diagnose and info name the same providers",
                     "PASS instances[file]: grow-disk 0 by 128 MiB",
                     "PASS instances[mirror]: rename (stopped) and start again",
                     "PASS instances[mirror]: grow-disk 0 by 128 MiB",
                     "PASS migration[mirror]: migrate (live) node2 -> node3",
                     "PASS migration[sharedfile]: failover node2 -> node3",
                     "PASS evacuate: evacuate -s moves a mirror's secondary to another node",
                     "PASS evacuate: evacuate -p moves a primary instance off its node",
                     "PASS replace-disks[mirror]: replace-disks -n (new secondary)",
                     "PASS rapi: POST /2/instances (diskless) job, followed with /2/jobs/ID/wait",
                     "PASS groups: gnt-group assign-nodes refuses to split a mirror's nodes unless --force",
                     "PASS groups: gnt-group evacuate moves an instance to the other group",
                     "PASS networks: an instance's NIC takes a free address from the pool; disconnect refused "
                     "meanwhile",
                     "PASS os: gnt-os modify --hidden and --blacklisted (twice each) hide it and refuse it",
                     "PASS backup[file]: gnt-backup import --src-node node2 makes a running instance with the same "
                     "disks",
                     "PASS filters: a REJECT rule rejects the run's delay jobs (gnt-debug delay fails), only them; "
                     "also on reason and opcode",
                     "PASS debug: gnt-debug submit-job runs a JSON file of opcodes as one job",
                     "PASS global-options: --reason is kept in the job's reason trail, before the client's entry"):
        assert expected in lines, out
    skipped = [line.split(":")[0:2] for line in lines if line.startswith("SKIP")]
    assert skipped == [["SKIP storage[lvm]", " all"], ["SKIP instances[diskless]", " grow-disk 0 by 128 MiB"]], out
    assert state(dev) == before
    assert job_count(dev) - jobs >= 100
    assert "qa-admin-" not in dev.run("node1", "gnt-cluster", "command", "ls /tmp ./tmp").stdout


def test_templates_not_enabled_and_missing_nodes_are_skipped_not_failed(dev):
    """When a template is not enabled and the suite may use one node only, the blocks that need
    them say SKIP with the reason, count neither way, and the run exits 0."""
    proc = qa(dev, "--templates", "plain,mirror", "--node-count", "1",
              "--blocks", "instances,migration,evacuate,replace-disks")
    lines = proc.stdout.splitlines()
    assert "SKIP instances[plain]: all: template plain is not enabled on the cluster " \
           "(enabled: diskless, file, sharedfile, mirror)" in lines, proc.stdout
    assert "SKIP instances[mirror]: all: template mirror needs 2 usable nodes, the cluster has 1" in lines
    assert "SKIP replace-disks[mirror]: all: template mirror needs 2 usable nodes, the cluster has 1" in lines
    assert [line for line in lines if line.startswith(("PASS", "FAIL")) and "setup" not in line] == []
    assert lines[-1] == "1 passed, 0 failed" and proc.returncode == 0, proc.stdout


def test_a_wrong_rapi_password_fails_the_run(dev):
    """When the RAPI refuses the user, the run reports that one failure and exits 1."""
    proc = qa(dev, "--blocks", "rapi", password="wrong")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("FAIL setup: read the cluster over the RAPI: ") and "401" in lines[0], proc.stdout
    assert lines[-1] == "0 passed, 1 failed" and proc.returncode == 1
