"""Ganeti's hooks on a loopback cluster, as a site uses them: scripts in each node's
/etc/genet/hooks, run by each node's genet-noded over TLS for the commands users type."""
from pathlib import Path

import pytest

from loopback import LoopbackCluster

RECORD = """#!/bin/sh
env | sort > "{out}/$GANETI_HOOKS_PATH-$GANETI_HOOKS_PHASE-{node}"
"""


def install(root: Path, directory: str, name: str, text: str) -> None:
    folder = root / "etc/genet/hooks" / directory
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    (folder / name).chmod(0o755)


def env_of(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.fixture(scope="module")
def hooked(tmp_path_factory):
    """A 3-node loopback cluster whose nodes record every run of some hooks, the scripts in place
    before init (so cluster-init runs too); the tests run on it in turn."""
    base = tmp_path_factory.mktemp("hooks")
    out = base / "ran"
    out.mkdir()
    c = LoopbackCluster(base)
    for node in c.names:
        for directory in ("cluster-init-post.d", "node-add-pre.d", "node-add-post.d", "instance-add-pre.d",
                          "instance-add-post.d", "instance-stop-post.d"):
            install(c.root(node), directory, "50-record", RECORD.format(out=out, node=node))
    try:
        c.start()
        yield c, out
    finally:
        c.stop()


def test_commands_run_the_sites_hooks_on_the_nodes_ganeti_names(hooked):
    cluster, out = hooked
    ran = sorted(p.name for p in out.iterdir())
    # init: post on the new master; each node add: pre on the nodes already in, post also on the new one
    assert ran == ["cluster-init-post-node1", "node-add-post-node1", "node-add-post-node2", "node-add-post-node3",
                   "node-add-pre-node1", "node-add-pre-node2"]
    env = env_of(out / "node-add-post-node3")
    assert (env["GANETI_NODE_NAME"], env["GANETI_NODE_PIP"], env["GENET_OP_CODE"], env["GANETI_OBJECT_TYPE"],
            env["GANETI_CLUSTER"], env["GANETI_MASTER"]) == ("node3", cluster.address("node3"), "OP_NODE_ADD",
                                                            "NODE", cluster.CLUSTER_NAME, "node1")
    assert env["GANETI_DATA_DIR"] == str(cluster.root("node3") / "var/lib/genet")
    for path in out.iterdir():
        path.unlink()
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M", "--no-start",
                "-o", "noop", "--net", "0:mac=aa:00:00:11:22:33", "web1")
    assert sorted(p.name for p in out.iterdir()) == ["instance-add-post-node1", "instance-add-post-node2",
                                                     "instance-add-pre-node1", "instance-add-pre-node2"]
    env = env_of(out / "instance-add-pre-node2")
    assert (env["GANETI_INSTANCE_NAME"], env["GANETI_INSTANCE_PRIMARY"], env["GANETI_INSTANCE_NIC0_MAC"],
            env["GANETI_INSTANCE_DISK0_SIZE"], env["GANETI_INSTANCE_STATUS"]) == ("web1", "node2", "aa:00:00:11:22:33",
                                                                                  "4", "False")


def test_a_failing_pre_hook_stops_the_command_with_ganetis_message(hooked):
    cluster, _ = hooked
    install(cluster.root("node1"), "instance-add-pre.d", "10-owner",
            "#!/bin/sh\ncase \" $GANETI_INSTANCE_TAGS \" in *\" owner:\"*) exit 0;; esac\n"
            "echo \"instance $GANETI_INSTANCE_NAME has no owner tag\"; exit 1\n")
    proc = cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M",
                       "--no-start", "-o", "noop", "web2", check=False)
    assert proc.returncode == 1
    assert ("Failure: hooks execution failed:\n  node: node1, script: instance-add-pre.d/10-owner, output: instance"
            " web2 has no owner tag") in proc.stderr
    assert cluster.run("node1", "gnt-instance", "list", "--no-headers", "-o", "name").stdout.split() == ["web1"]
    assert not (cluster.root("node2") / "srv/genet/file-storage/web2").exists()
    cluster.run("node1", "gnt-instance", "add", "-t", "file", "-n", "node2", "--disk", "0:size=4M", "--no-start",
                "-o", "noop", "--tags", "owner:ann", "web2")
    assert cluster.run("node1", "gnt-instance", "list", "--no-headers", "-o", "name").stdout.split() == ["web1",
                                                                                                       "web2"]


def test_verify_reports_a_failing_verify_hook(hooked):
    cluster, _ = hooked
    assert cluster.run("node1", "gnt-cluster", "verify").returncode == 0
    install(cluster.root("node3"), "cluster-verify-post.d", "20-raid", "#!/bin/sh\necho md0 degraded\nexit 1\n")
    proc = cluster.run("node1", "gnt-cluster", "verify", "--error-codes", check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()      # each after the time it was logged at
    [at] = [i for i, line in enumerate(lines)
            if line.endswith(" - ERROR:ENODEHOOKS:node:node3:Script cluster-verify-post.d/20-raid failed, output:")]
    assert lines[at + 1].endswith("       md0 degraded") and lines[at - 1].endswith(" * Hooks Results")
