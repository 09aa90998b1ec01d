"""gnt-cluster upgrade: a rolling switch of every node to another installed genet version.

Run on the master, outside the job queue (the master daemon restarts during it, as Ganeti's).
The intent file on the master records the versions, so that ``--resume`` continues after an
interruption; which nodes are done is what their noded reports. See gnt-cluster(8), UPGRADE.
"""
from __future__ import annotations

import json
import re
import sys
import time

from genet import __version__, config, errors, luxi, opcodes, paths
from genet.cli import base
from genet.cli.cluster_admin import natural_key

VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
SWITCH_WAIT = 60.0           # seconds a node may take to come back with the new version
JOBS_WAIT = 3600.0           # seconds the running jobs may take to finish


def intent_file():
    return paths.data_dir() / "upgrade-intent"


def read_intent() -> dict | None:
    try:
        return json.loads(intent_file().read_text())
    except (OSError, ValueError):
        return None


def write_intent(intent: dict) -> None:
    config.write_atomic(intent_file(), json.dumps(intent).encode())


def cmd_upgrade(ns) -> int:
    if ns.resume == (ns.to is not None):
        print("Precisely one of the options --to and --resume has to be given", file=sys.stderr)
        return 1
    intent = read_intent()
    if not ns.resume and intent is not None:
        if intent["to"] != ns.to:
            print(f"An upgrade from {intent['from']} to {intent['to']} is in progress; use --resume to finish"
                  " it first", file=sys.stderr)
            return 1
        print("An upgrade is already in progress. Target version matches, resuming.", file=sys.stderr)
    if ns.resume and intent is None:
        return 0                       # nothing to resume (Ganeti's: silently)
    target = intent["to"] if intent else ns.to
    if not VERSION_RE.match(target):
        print(f"Could not parse version string {target}", file=sys.stderr)
        return 1
    data = config.load(paths.config_file())
    master = data.cluster["master_node"]
    if paths.node_name() != master:
        raise errors.OpPrereqError(f"gnt-cluster upgrade runs on the master ({master})", errors.ECode.WRONG_STATE)
    nodes = sorted((n["name"] for n in data.nodes.values() if not n["offline"]),
                   key=lambda n: (n == master, natural_key(n)))
    rpc = _rpc(data)
    print(f"Verifying {target} present on all nodes")
    answers = rpc.installed_versions.on(nodes)
    missing = sorted(n for n, r in answers.items() if r.failed or target not in r.payload)
    if missing:
        print(f"genet version {target} not installed on nodes {', '.join(missing)}", file=sys.stderr)
        return 1
    write_intent(intent or {"from": __version__, "to": target})
    client = luxi.Client()
    print("Draining queue")
    client.call("SetDrainFlag", True)
    _wait_for_running_jobs(client)
    for node in nodes:
        if _running_version(rpc, node) == target:
            continue
        print(f"Switching {node} to {target}")
        rpc.version_switch(node, target).raise_on_error(f"switching {node} to {target}")
        _wait_for_version(rpc, node, target)
    if not luxi.wait_for_socket(paths.master_socket(), timeout=SWITCH_WAIT):
        raise errors.CommandError("genet-masterd did not come back on the master; run gnt-cluster upgrade --resume")
    client = luxi.Client()
    print("Undraining queue")
    client.call("SetDrainFlag", False)
    print("Redistributing the configuration")     # the ssconf files carry the release version
    base.submit_or_run(ns, [opcodes.OpClusterRedistConf()], client, feedback=lambda entry: None)
    intent_file().unlink()
    print(f"All nodes run genet {target}")
    return 0


def _rpc(data):
    from genet.rpc import NodeRpc, RpcClient
    addresses = {n["name"]: n["primary_ip"] for n in data.nodes.values()}
    return NodeRpc(RpcClient(paths.cluster_cert(), data.cluster["noded_port"]), addresses.__getitem__)


def _wait_for_running_jobs(client: luxi.Client) -> None:
    deadline = time.monotonic() + JOBS_WAIT
    while True:
        running = [row for row in client.call("QueryJobs", None, ["id", "status"]) if row[1] == "running"]
        if not running:
            return
        if time.monotonic() > deadline:
            raise errors.OpExecError(f"{len(running)} job(s) still running after {JOBS_WAIT:.0f}s; the queue stays"
                                     " drained, run gnt-cluster upgrade --resume later")
        print(f"Waiting for {len(running)} running job(s) to finish")
        time.sleep(2)


def _running_version(rpc, node: str) -> str | None:
    res = rpc.version(node, timeout=5)
    return None if res.failed else res.payload.version


def _wait_for_version(rpc, node: str, target: str) -> None:
    """Until the node's new noded answers with ``target`` (the old one answers until it stops)."""
    deadline = time.monotonic() + SWITCH_WAIT
    while time.monotonic() < deadline:
        rpc.client.reload_certificate()      # drops the connection to the stopped noded
        if _running_version(rpc, node) == target:
            return
        time.sleep(0.5)
    raise errors.OpExecError(f"{node} did not come back with genet {target} within {SWITCH_WAIT:.0f}s;"
                             " see its genet-noded log, then run gnt-cluster upgrade --resume")


def build(sub) -> None:
    p = base.command(sub, "upgrade", "Switch every node to another installed genet version", cmd_upgrade)
    p.add_argument("--to", metavar="VERSION", default=None, help="The installed version to switch to")
    p.add_argument("--resume", action="store_true", help="Continue an interrupted upgrade")
