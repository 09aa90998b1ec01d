"""gnt-cluster upgrade on a loopback cluster, with a second genet version faked: each node's
versions directory gets a "0.2.0" whose bin/python3 runs this genet reporting version 0.2.0
(a real second version cannot be installed here). The switch itself is real: every node's daemons
stop and come back under the new interpreter, the master last, with the queue drained meanwhile."""
import json
import sys

FAKE_PYTHON = """#!{python}
import runpy, sys
import genet
genet.__version__ = "{version}"
sys.executable = __file__          # daemons it starts run this version too
if sys.argv[1] == "-m":
    module, sys.argv = sys.argv[2], [sys.argv[0], *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
else:                              # -c CODE ARGS
    code, sys.argv = sys.argv[2], ["-c", *sys.argv[3:]]
    exec(compile(code, "<string>", "exec"), {{"__name__": "__main__"}})
"""


def install(cluster, version, nodes):
    for node in nodes:
        python = cluster.root(node) / "usr/lib/genet/versions" / version / "bin/python3"
        python.parent.mkdir(parents=True)
        python.write_text(FAKE_PYTHON.format(python=sys.executable, version=version))
        python.chmod(0o755)


def versions(cluster):
    out = cluster.run("node1", "gnt-cluster", "command", "-M", "cat", "/dev/null").stdout      # all answer
    assert out.count("return code = 0") == 3
    return cluster.run("node1", "gnt-cluster", "version").stdout.splitlines()[0]


def test_upgrade_refuses_a_version_missing_on_a_node_then_switches_every_node(cluster):
    proc = cluster.run("node1", "gnt-cluster", "upgrade", "--to", "0.2.0", "--resume", check=False)
    assert proc.returncode == 1 and "Precisely one of the options --to and --resume" in proc.stderr
    install(cluster, "0.2.0", ["node1", "node3"])
    proc = cluster.run("node1", "gnt-cluster", "upgrade", "--to", "0.2.0", check=False)
    assert proc.returncode == 1 and "genet version 0.2.0 not installed on nodes node2" in proc.stderr
    assert not (cluster.root("node1") / "var/lib/genet/upgrade-intent").exists()
    install(cluster, "0.2.0", ["node2"])
    out = cluster.run("node1", "gnt-cluster", "upgrade", "--to", "0.2.0", timeout=300).stdout.splitlines()
    assert out == ["Verifying 0.2.0 present on all nodes", "Draining queue", "Switching node2 to 0.2.0",
                   "Switching node3 to 0.2.0", "Switching node1 to 0.2.0", "Undraining queue",
                   "Redistributing the configuration", "All nodes run genet 0.2.0"]
    assert versions(cluster) == "Software version: 0.2.0"
    cluster.run("node1", "gnt-cluster", "verify")            # every node reports the master's version
    cluster.run("node1", "gnt-debug", "delay", "0")           # the queue takes jobs again


def test_an_interrupted_upgrade_is_resumed_and_another_target_refused_meanwhile(cluster):
    install(cluster, "0.2.0", cluster.names)
    intent = cluster.root("node1") / "var/lib/genet/upgrade-intent"
    assert cluster.run("node1", "gnt-cluster", "upgrade", "--resume").stdout == ""     # nothing to resume
    intent.write_text(json.dumps({"from": "0.1.0", "to": "0.2.0"}))   # as left by an interrupted run
    cluster.run("node1", "gnt-cluster", "queue", "drain")
    proc = cluster.run("node1", "gnt-cluster", "upgrade", "--to", "0.3.0", check=False)
    assert proc.returncode == 1 and "An upgrade from 0.1.0 to 0.2.0 is in progress; use --resume" in proc.stderr
    out = cluster.run("node1", "gnt-cluster", "upgrade", "--resume", timeout=300).stdout
    assert out.endswith("All nodes run genet 0.2.0\n") and not intent.exists()
    assert "The drain flag is unset" in cluster.run("node1", "gnt-cluster", "queue", "info").stdout
    assert versions(cluster) == "Software version: 0.2.0"
