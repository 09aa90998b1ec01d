"""gnt-group maintenance: rolling maintenance of a node group, in hroller's reboot groups.

For each reboot group in turn (hroller's order: nodes that share no mirrored instance together,
the master's group last), every node goes into maintenance (gnt-node modify --maintenance yes,
a job each), the site's command runs on the master once per node with the node's name as its
argument (ssh, an IPMI or OOB script: what "maintenance" means is the site's), genet waits until
each node's daemon answers again and ends its maintenance. The first failure stops it all and
names the node. The master node is left out: it cannot be emptied while it is the master.
"""
from __future__ import annotations

import shlex
import subprocess
import time

from genet import errors, luxi, opcodes
from genet.cli import base
from genet.query.common import RS_NORMAL

POLL = 5.0                 # seconds between two questions to a node that does not answer yet
DEFAULT_TIMEOUT = 1800     # seconds a node may take to answer again after the command


def secondaries_param() -> opcodes.Param:
    """gnt-node modify's --maintenance-secondaries, which the command passes on."""
    return next(p for p in opcodes.OpNodeSetParams.all_params() if p.name == "maintenance_secondaries")


def add_options(parser) -> None:
    secondaries = secondaries_param()
    parser.add_argument("group_name", metavar="GROUP", help="Node group whose nodes to maintain")
    parser.add_argument("--command", required=True, metavar="CMD",
                        help="Command run on the master for each node, with the node's name as last argument")
    parser.add_argument(secondaries.cli, dest=secondaries.name, choices=secondaries.type.choices,
                        default=secondaries.default, help=secondaries.doc)
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="How long a node may take to answer again after the command")


def cmd_maintenance(ns) -> int:
    from genet.htools import hroller, live
    client = luxi.Client()
    data = live.read(client)
    masters = {n.name for n in data.nodes if n.master}
    groups = hroller.reboot_groups(data, ns.group_name, ns.maintenance_secondaries == "move")
    left_out = sorted(masters & {n for nodes in groups for n in nodes})
    if left_out:
        print(f"Leaving out the master node {left_out[0]}: fail the master over to maintain it", flush=True)
    groups = [[n for n in nodes if n not in masters] for nodes in groups]
    groups = [nodes for nodes in groups if nodes]
    for number, nodes in enumerate(groups, 1):
        print(f"Reboot group {number} of {len(groups)}: {', '.join(nodes)}", flush=True)
        for node in nodes:
            _job(ns, client, f"putting node {node} into maintenance", opcodes.OpNodeSetParams(
                node_name=node, maintenance=True, maintenance_secondaries=ns.maintenance_secondaries))
        _run_command(ns.command, nodes)
        for node in nodes:
            _wait_answering(client, node, ns.timeout)
        for node in nodes:
            _job(ns, client, f"ending the maintenance of node {node}",
                 opcodes.OpNodeSetParams(node_name=node, maintenance=False))
    print(f"Maintenance of node group {ns.group_name} done", flush=True)
    return 0


def _job(ns, client: luxi.Client, doing: str, op: opcodes.OpNodeSetParams) -> None:
    """One gnt-node modify job, its log shown; its failure stops the command."""
    print(f"{doing[0].upper()}{doing[1:]}", flush=True)
    try:
        base.submit_or_run(ns, [op], client)
    except errors.GenericError as err:
        raise errors.OpExecError(f"{doing} failed: {err.args[0] if err.args else err}; the nodes after it are"
                                 " left as they are") from None


def _run_command(command: str, nodes: list[str]) -> None:
    """The command for each node of a reboot group, side by side (they are meant to go down
    together); every one must succeed."""
    running = {node: subprocess.Popen([*shlex.split(command), node]) for node in nodes}
    failed = {node: proc.wait() for node, proc in running.items()}
    for node, code in failed.items():
        if code:
            raise errors.OpExecError(f"the command {command!r} failed for node {node} (exit code {code});"
                                     f" {node} stays in maintenance")


def _wait_answering(client: luxi.Client, node: str, timeout: int) -> None:
    """Until the node's daemon answers the master again (its live memory field has a value)."""
    deadline = time.monotonic() + timeout
    while True:
        [[(_, _), (status, _)]] = client.query("node", ["name", "mtotal"], ["=", "name", node])["data"]
        if status == RS_NORMAL:
            return
        if time.monotonic() >= deadline:
            raise errors.OpExecError(f"node {node} did not answer within {timeout} s after the command;"
                                     f" it stays in maintenance")
        time.sleep(POLL)
