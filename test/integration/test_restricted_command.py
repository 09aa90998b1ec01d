"""gnt-node restricted-command as a user runs it on a loopback cluster: each node's own
executable of its restricted-commands directory answers through genet-noded, printed in Ganeti's
layout; a node without the command fails alone, after the delay, without saying why."""
import os
import time

SEPARATOR = "-" * 48


def install(cluster, node: str, name: str, body: str) -> None:
    directory = cluster.root(node) / "etc/genet/restricted-commands"
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    (directory / name).write_text(f"#!/bin/sh\n{body}\n")
    os.chmod(directory / name, 0o755)


def test_each_node_runs_its_own_restricted_command(cluster):
    for node in ("node1", "node2"):
        install(cluster, node, "report", f"echo report of {node}; echo \"env: $(env | grep -c GENET)\"")
    out = cluster.run("node1", "gnt-node", "restricted-command", "report", "node2", "node1").stdout
    assert out.splitlines() == [SEPARATOR, "Node: node2", "report of node2", "env: 0", "",
                                SEPARATOR, "Node: node1", "report of node1", "env: 0", ""]
    out = cluster.run("node1", "gnt-node", "restricted-command", "-M", "--sync", "report", "node2").stdout
    assert out.splitlines() == [SEPARATOR, "node2: report of node2", "node2: env: 0"]

    started = time.monotonic()
    proc = cluster.run("node1", "gnt-node", "restricted-command", "-M", "-g", "default", "report", check=False)
    assert proc.returncode == 1 and time.monotonic() - started >= 10
    assert proc.stdout.splitlines() == [
        SEPARATOR, "node1: report of node1", "node1: env: 0", SEPARATOR, "node2: report of node2", "node2: env: 0",
        SEPARATOR, "Command 'report' on node 'node3' failed: Executing command 'report' failed"]
    assert "restricted command 'report' refused: Can't stat(2)" in \
        (cluster.root("node3") / "var/log/genet/genet-noded.log").read_text()

    proc = cluster.run("node1", "gnt-node", "restricted-command", "report", check=False)
    assert proc.returncode == 1 and "Node group or node names must be given" in proc.stderr
