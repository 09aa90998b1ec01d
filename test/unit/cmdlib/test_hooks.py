"""Ganeti's hooks, run in-process (conftest.Cluster): real scripts in each node's hooks directory,
run by the node's own procedures, with the environment the master built."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from genet import errors, hooks_runner, master_ip
from genet.cmdlib import base
from genet.opcodes import (OpClusterVerify, OpGroupAdd, OpInstanceCreate, OpInstanceMigrate, OpInstanceSetParams,
                           OpInstanceShutdown, OpNetworkAdd, OpNodeSetParams, OpTagsSet)

MAN = Path(__file__).resolve().parents[3] / "man"
RECORD = """#!/bin/sh
env | sort > "{out}/$(basename "$0")-$GANETI_HOOKS_PHASE-{node}"
"""


def script(cluster, node: str, directory: str, name: str, text: str, mode: int = 0o755) -> Path:
    folder = cluster.nodes[node].root / "etc/genet/hooks" / directory
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(mode)
    return path


def recorder(cluster, tmp_path, directory: str, nodes=("node1", "node2", "node3")) -> Path:
    """A script on each node that writes the environment it got to OUT/NAME-PHASE-NODE."""
    out = tmp_path / "hook-env"
    out.mkdir(exist_ok=True)
    for node in nodes:
        script(cluster, node, directory, "50-record", RECORD.format(out=out, node=node))
    return out


def env_of(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def create(cluster, name="web1", node="node2", **extra):
    return cluster.run(OpInstanceCreate(instance_name=name, disk_template="file", pnode=node, os_type="noop",
                                        disks=[{"size": 8}], beparams={"memory": 128}, tags=["owner:ann"], **extra))


def test_a_failing_pre_hook_refuses_the_opcode_with_its_output_and_nothing_is_made(cluster):
    script(cluster, "node1", "instance-add-pre.d", "10-owner", "#!/bin/sh\necho no owner for $GANETI_INSTANCE_NAME\n"
           "exit 3\n")
    before = cluster.node_state()
    with pytest.raises(errors.HooksAbort) as info:
        create(cluster)
    assert info.value.args[0] == [["node1", "instance-add-pre.d/10-owner", "no owner for web1"]]
    assert errors.format_error(info.value) == ("Failure: hooks execution failed:\n"
                                               "  node: node1, script: instance-add-pre.d/10-owner,"
                                               " output: no owner for web1")
    assert cluster.instance("web1") is None and cluster.node_state() == before


def test_pre_and_post_scripts_get_ganetis_environment_under_both_prefixes_on_the_opcodes_nodes(cluster, tmp_path):
    out = recorder(cluster, tmp_path, "instance-add-pre.d")
    recorder(cluster, tmp_path, "instance-add-post.d")
    create(cluster, node="node2")
    # the master and the primary, not node3
    assert sorted(p.name for p in out.iterdir()) == ["50-record-post-node1", "50-record-post-node2",
                                                     "50-record-pre-node1", "50-record-pre-node2"]
    pre, post = env_of(out / "50-record-pre-node2"), env_of(out / "50-record-post-node2")
    for brand in ("GANETI", "GENET"):
        assert {key: pre[f"{brand}_{key}"] for key in (
            "HOOKS_VERSION", "HOOKS_PHASE", "HOOKS_PATH", "OP_CODE", "OBJECT_TYPE", "CLUSTER", "MASTER",
            "INSTANCE_NAME", "INSTANCE_PRIMARY", "INSTANCE_SECONDARIES", "INSTANCE_DISK_TEMPLATE",
            "INSTANCE_DISK_COUNT", "INSTANCE_DISK0_SIZE", "INSTANCE_DISK0_MODE", "INSTANCE_NIC_COUNT",
            "INSTANCE_MAXMEM", "INSTANCE_BE_maxmem", "INSTANCE_TAGS", "INSTANCE_STATUS", "ADD_MODE")} == {
            "HOOKS_VERSION": "2", "HOOKS_PHASE": "pre", "HOOKS_PATH": "instance-add",
            "OP_CODE": "OP_INSTANCE_CREATE", "OBJECT_TYPE": "INSTANCE", "CLUSTER": "c1", "MASTER": "node1",
            "INSTANCE_NAME": "web1", "INSTANCE_PRIMARY": "node2", "INSTANCE_SECONDARIES": "",
            "INSTANCE_DISK_TEMPLATE": "file", "INSTANCE_DISK_COUNT": "1", "INSTANCE_DISK0_SIZE": "8",
            "INSTANCE_DISK0_MODE": "rw", "INSTANCE_NIC_COUNT": "0", "INSTANCE_MAXMEM": "128",
            "INSTANCE_BE_maxmem": "128", "INSTANCE_TAGS": "owner:ann", "INSTANCE_STATUS": "True",
            "ADD_MODE": "create"}
    assert pre["PATH"] == "/sbin:/bin:/usr/sbin:/usr/bin"
    assert pre["GANETI_DATA_DIR"] == str(cluster.nodes["node2"].root / "var/lib/genet")
    assert not [key for key in pre if not key.startswith(("GANETI_", "GENET_")) and key not in ("PATH", "PWD", "SHLVL", "_")]
    assert not [key for key in pre if "_POST_" in key]
    assert post["GANETI_HOOKS_PHASE"] == "post" and post["GANETI_POST_INSTANCE_NAME"] == "web1"
    assert post["GENET_POST_INSTANCE_PRIMARY"] == "node2" and post["GANETI_INSTANCE_NAME"] == "web1"


def test_a_failing_post_hook_is_a_warning_and_the_opcode_stands(cluster):
    script(cluster, "node2", "instance-stop-post.d", "10-notify", "#!/bin/sh\necho mail server down >&2\nexit 1\n")
    create(cluster)
    cluster.run(OpInstanceShutdown(instance_name="web1"))
    assert cluster.instance("web1")["admin_state"] == "down"
    assert " - WARNING: On node2 script instance-stop-post.d/10-notify failed, output: mail server down" in cluster.log


def test_only_executables_named_as_run_parts_wants_run_in_lexicographic_order(cluster, tmp_path):
    order = tmp_path / "order"
    for name, mode in (("20-second", 0o755), ("10-first", 0o755), ("05-off", 0o644), ("30-x.sh", 0o755)):
        script(cluster, "node1", "group-add-pre.d", name, f"#!/bin/sh\necho {name} >> {order}\n", mode)
    cluster.run(OpGroupAdd(group_name="rack2"))
    assert order.read_text().split() == ["10-first", "20-second"]
    results = hooks_runner.run_hooks("group-add", "pre", {}, cluster.nodes["node1"].root / "etc/genet/hooks")
    assert [(name, status) for name, status, _ in results] == [
        ("group-add-pre.d/05-off", hooks_runner.HKR_SKIP), ("group-add-pre.d/10-first", hooks_runner.HKR_SUCCESS),
        ("group-add-pre.d/20-second", hooks_runner.HKR_SUCCESS), ("group-add-pre.d/30-x.sh", hooks_runner.HKR_SKIP)]


def test_a_script_that_runs_too_long_is_killed_with_what_it_started_and_counts_as_failed(cluster, monkeypatch,
                                                                                         tmp_path):
    monkeypatch.setattr(hooks_runner, "SCRIPT_TIMEOUT", 0.5)
    pid = tmp_path / "child.pid"
    script(cluster, "node1", "group-add-pre.d", "10-hang", f"#!/bin/sh\nsleep 30 &\necho $! > {pid}\nwait\n")
    with pytest.raises(errors.HooksAbort, match="timed out after 0 s|timed out after 1 s"):
        cluster.run(OpGroupAdd(group_name="rack2"))
    child = int(pid.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_an_unreachable_node_does_not_veto(cluster):
    script(cluster, "node3", "node-modify-pre.d", "10-no", "#!/bin/sh\nexit 1\n")
    cluster.nodes["node3"].reachable = False
    cluster.run(OpNodeSetParams(node_name="node3", drained=True))
    assert cluster.data()["nodes"]["node3"]["drained"] is True
    assert any(line.startswith(" - WARNING: Communication failure to node node3") for line in cluster.log)


def test_a_dry_run_runs_the_pre_hooks_only(cluster, tmp_path):
    out = recorder(cluster, tmp_path, "network-add-pre.d", nodes=("node1",))
    recorder(cluster, tmp_path, "network-add-post.d", nodes=("node1",))
    cluster.run(OpNetworkAdd(network_name="lan", network="10.9.0.0/24", gateway="10.9.0.1", dry_run=True))
    assert sorted(p.name for p in out.iterdir()) == ["50-record-pre-node1"]
    env = env_of(out / "50-record-pre-node1")
    assert (env["GANETI_NETWORK_NAME"], env["GANETI_NETWORK_SUBNET"], env["GANETI_NETWORK_GATEWAY"]) == \
        ("lan", "10.9.0.0/24", "10.9.0.1")
    assert "GANETI_NETWORK_SUBNET6" not in env and env["GANETI_OBJECT_TYPE"] == "NETWORK"


def test_config_update_runs_on_the_master_after_a_change_only(cluster, tmp_path):
    out = recorder(cluster, tmp_path, "config-update-post.d")
    cluster.run(OpClusterVerify())
    assert list(out.iterdir()) == []
    cluster.run(OpTagsSet(kind="cluster", tags=["site:paris"]))
    assert sorted(p.name for p in out.iterdir()) == ["50-record-post-node1"]
    assert env_of(out / "50-record-post-node1")["GANETI_HOOKS_PATH"] == "config-update"


def test_verify_reports_a_failing_verify_hook_as_an_error_with_its_output_indented(cluster):
    script(cluster, "node2", "cluster-verify-post.d", "10-raid", "#!/bin/sh\necho disk sdb failed\n"
           "echo array degraded\nexit 1\n")
    create(cluster)            # (as the verify tests do: the nodes have their ssconf once a job ran)
    result = cluster.run(OpClusterVerify())
    assert result["ok"] is False
    assert [e[:3] for e in result["errors"]] == [["ENODEHOOKS", "node", "node2"]]
    assert "  - ERROR: node node2: Script cluster-verify-post.d/10-raid failed, output:" in cluster.log
    assert "      disk sdb failed\n      array degraded" in cluster.log


def test_migrate_tells_where_the_instance_goes(cluster, tmp_path):
    out = recorder(cluster, tmp_path, "instance-migrate-pre.d")
    create(cluster, node="node2")
    cluster.run(OpInstanceMigrate(instance_name="web1", target_node="node3"))
    env = env_of(out / "50-record-pre-node3")
    assert (env["GANETI_OLD_PRIMARY"], env["GANETI_NEW_PRIMARY"], env["GANETI_MIGRATE_LIVE"],
            env["GANETI_MIGRATE_CLEANUP"], env["GANETI_OLD_SECONDARY"]) == ("node2", "node3", "True", "False", "")
    assert sorted(p.name.rsplit("-", 1)[1] for p in out.iterdir()) == ["node1", "node2", "node3"]


def test_the_manual_lists_every_hooks_directory_with_its_command():
    """genet-hooks(7)'s OPERATIONS list is the LUs' HPATHs and the master IP's local hooks."""
    declared = {lu.HPATH for lu in base._LUS.values() if lu.HPATH} | {h for h, _ in master_ip.TURN_HOOKS.values()}
    text = (MAN / "genet-hooks.rst").read_text()
    operations = text[text.index("\nOPERATIONS\n"):text.index("\nEXAMPLE\n")]
    listed = set(re.findall(r"^``([a-z-]+)``", operations, re.M)) | set(re.findall(r"^``[a-z-]+``, ``([a-z-]+)``",
                                                                                   operations, re.M))
    assert listed == declared
    assert all(lu.HTYPE in ("CLUSTER", "NODE", "GROUP", "INSTANCE", "NETWORK") for lu in base._LUS.values() if lu.HPATH)


def test_modify_tells_the_nics_and_memory_as_they_will_be(cluster, tmp_path):
    """A NIC added and one removed: the hooks see the list after the change, before and after it."""
    out = recorder(cluster, tmp_path, "instance-modify-pre.d", nodes=("node1",))
    recorder(cluster, tmp_path, "instance-modify-post.d", nodes=("node1",))
    create(cluster, nics=[{"mac": "aa:00:00:00:00:01"}, {"mac": "aa:00:00:00:00:02"}])
    cluster.run(OpInstanceSetParams(instance_name="web1", beparams={"maxmem": 256},
                                    nics=[["remove", 0, {}], ["add", -1, {"mac": "aa:00:00:00:00:03"}]]))
    for phase in ("pre", "post"):
        env = env_of(out / f"50-record-{phase}-node1")
        assert (env["GANETI_INSTANCE_NIC_COUNT"], env["GANETI_INSTANCE_NIC0_MAC"], env["GANETI_INSTANCE_NIC1_MAC"],
                env["GANETI_INSTANCE_MAXMEM"]) == ("2", "aa:00:00:00:00:02", "aa:00:00:00:00:03", "256")
    assert env["GANETI_POST_INSTANCE_NIC1_MAC"] == "aa:00:00:00:00:03"


def test_a_post_environment_that_cannot_be_built_is_a_warning_and_the_done_opcode_stands(cluster, tmp_path,
                                                                                         monkeypatch):
    from genet.cmdlib.group import LUGroupAdd
    out = recorder(cluster, tmp_path, "group-add-post.d", nodes=("node1",))
    calls = []

    def env_once(lu):
        calls.append(lu)
        if len(calls) > 1:
            raise KeyError("gone")
        return {"GROUP_NAME": lu.op.group_name}
    monkeypatch.setattr(LUGroupAdd, "hooks_env", env_once)
    cluster.run(OpGroupAdd(group_name="rack2"))
    assert any(g["name"] == "rack2" for g in cluster.data()["nodegroups"].values())
    assert " - WARNING: the post hooks get no POST_ variables: KeyError: 'gone'" in cluster.log
    env = env_of(out / "50-record-post-node1")
    assert env["GANETI_GROUP_NAME"] == "rack2" and "GANETI_POST_GROUP_NAME" not in env
