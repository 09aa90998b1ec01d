"""gnt-node restricted-command: run one of the nodes' restricted commands (genet.restricted_commands)
on the online nodes named or of a group, and print each node's output in Ganeti's layout."""
from __future__ import annotations

import sys

from genet import errors, luxi, opcodes
from genet.cli import base

SEPARATOR = "-" * 48


def online_nodes(client: luxi.Client, names: list[str], group: str | None) -> list[str]:
    """Ganeti's GetOnlineNodes: the nodes named (in their order; one not in the cluster is left for
    the job to refuse), or those of the group (by name or UUID), without the offline ones."""
    rows = client.query("node", ["name", "offline", "group", "group.uuid"])["data"]
    found = {name: (offline, (group_name, uuid)) for (_, name), (_, offline), (_, group_name), (_, uuid) in rows}
    chosen = names or sorted(n for n, (_, groups) in found.items() if group in groups)
    if group is not None:
        chosen = [n for n in chosen if n in found and group in found[n][1]]
    offline = [n for n in chosen if n in found and found[n][0]]
    if offline:
        print(f"Note: skipping offline node(s): {', '.join(offline)}", file=sys.stderr)
    return [n for n in chosen if n not in offline]


def cmd_restricted_command(ns) -> int:
    if not ns.nodes and ns.nodegroup is None:
        raise errors.OpPrereqError("Node group or node names must be given", errors.ECode.INVAL)
    client = luxi.Client()
    nodes = online_nodes(client, ns.nodes, ns.nodegroup)
    results = base.submit_or_run(ns, [base.opcode_from_args(opcodes.OpRestrictedCommand, ns, nodes=nodes)], client)
    if not results or results[0] is None:      # --submit, --dry-run
        return 0
    code = 0
    for node, (ok, text) in zip(nodes, results[0]):
        print(SEPARATOR)
        if not ok:
            code = 1
            print(text)
        elif ns.show_machine_names:
            for line in text.splitlines():
                print(f"{node}: {line}")
        else:
            print(f"Node: {node}")
            print(text)
    return code


def build(sub) -> None:
    p = base.opcode_command(sub, "restricted-command", "Run a restricted command on nodes", opcodes.OpRestrictedCommand,
                            cmd_restricted_command, skip=["nodes"])
    p.add_argument("-M", "--show-machine-names", dest="show_machine_names", action="store_true",
                   help="Prefix every output line with the node's name")
    p.add_argument("-g", "--node-group", dest="nodegroup", metavar="GROUP",
                   help="Run on the online nodes of this group (name or UUID)")
    p.add_argument("nodes", nargs="*", metavar="NODE")
