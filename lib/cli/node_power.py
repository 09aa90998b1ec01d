"""gnt-node's power commands: power (through each node's out-of-band program, genet.oob),
health, and powercycle (the node's own daemon restarts it), with Ganeti's output and exit codes.

Ganeti asks before power off, power cycle and powercycle; genet never asks: without --force
(--yes for powercycle) it lists what would be affected and stops with exit code 13.
"""
from __future__ import annotations

import sys

from genet import errors, luxi, oob, opcodes
from genet.cli import base
from genet.query.common import RS_NORMAL

POWER_COMMANDS = ("on", "off", "cycle", "status")      # gnt-node power's words for power-on ...
CONFIRMED = (oob.POWER_OFF, oob.POWER_CYCLE)
HEADERS = ["Node", "Status"]


def oob_nodes(names: list[str], client: luxi.Client, all_nodes: bool, skip_master: bool) -> list[str]:
    """The nodes named (each must have an OOB program), or with ``all_nodes`` every node that has
    one (but the master when ``skip_master``)."""
    nodes = base.query_named("node", ["name", "master", "powered"], names, "node", client)
    if all_nodes:
        return [n["name"] for n in nodes if n["powered"] is not None and not (skip_master and n["master"])]
    for node in nodes:
        if node["powered"] is None:
            raise errors.OpPrereqError(oob.unsupported(node["name"]), errors.ECode.WRONG_STATE)
    return names


def print_rows(ns, rows: list[list[str]]) -> None:
    for line in base.format_table(None if ns.no_headers else HEADERS, rows, ns.separator):
        print(line)


def cmd_power(ns) -> int:
    command = f"power-{ns.power_command}"
    if ns.all and ns.names:
        print("Arguments in combination with --all are not allowed", file=sys.stderr)
        return 1
    client = luxi.Client()
    names = list(ns.names)
    if command in CONFIRMED:
        if ns.all:
            names = oob_nodes([], client, True, skip_master=True)
        if not names:
            print("Please provide at least one node for this command", file=sys.stderr)
            return 1
        if command == oob.POWER_OFF and not ns.ignore_status:   # before marking any offline
            oob_nodes(names, client, False, skip_master=False)
        if not ns.force:
            print("Affected nodes:\n" + "\n".join(f"  {name}" for name in names))
            base.confirm_or_fail(ns, "--force", f"The power {ns.power_command} will operate on {len(names)} nodes")
    ops = []
    if command == oob.POWER_OFF and not ns.ignore_status:
        ops += [opcodes.OpNodeSetParams(node_name=name, offline=True, auto_promote=ns.auto_promote) for name in names]
    ops.append(base.opcode_from_args(opcodes.OpOobCommand, ns, node_names=names, command=command))
    results = base.submit_or_run(ns, ops, client)
    if not results or results[-1] is None:        # --submit, --dry-run
        return 0
    errs, rows = 0, []
    for (_, name), (status, answer) in results[-1]:
        if status != RS_NORMAL:
            errs += 1
            rows.append([name, base.format_result_error(status, True)])
        elif command == oob.POWER_STATUS:
            rows.append([name, "powered" if answer[oob.POWERED] else "unpowered"])
        else:
            rows.append([name, "invoked"])
    print_rows(ns, rows)
    return 1 if errs else 0


def cmd_health(ns) -> int:
    results = base.submit_or_run(ns, [base.opcode_from_args(opcodes.OpOobCommand, ns, node_names=ns.names,
                                                            command=oob.HEALTH)])
    if not results or results[0] is None:
        return 0
    errs, rows = 0, []
    for (_, name), (status, answer) in results[0]:
        if status != RS_NORMAL:
            errs += 1
            rows.append([name, base.format_result_error(status, True)])
            continue
        items = [f"{item}={state}" for item, state in answer] or [""]
        rows += [[name if index == 0 else "", text] for index, text in enumerate(items)]
    print_rows(ns, rows)
    return 1 if errs else 0


def cmd_powercycle(ns) -> int:
    op = base.opcode_from_args(opcodes.OpNodePowercycle, ns)
    base.confirm_or_fail(ns, "--yes", f"hard powercycling node {op.node_name} restarts it at once")
    results = base.submit_or_run(ns, [op])
    if results and results[0]:
        print(results[0], file=sys.stderr)
    return 0


def _table_options(parser) -> None:
    parser.add_argument("--no-headers", action="store_true", help="Do not print the header line")
    parser.add_argument("--separator", default=None, help="Separate columns with this string")


def build(sub) -> None:
    skip = ("node_names", "command", "dry_run")
    p = base.command(sub, "power", "Change or ask the power state of nodes through their out-of-band program",
                     cmd_power)
    base.add_opcode_options(p, opcodes.OpOobCommand, skip)
    base.add_submit_options(p)
    p.add_argument("-f", "--force", action="store_true", help="Do not ask for confirmation (off, cycle)")
    p.add_argument("--all", action="store_true", help="Every node with an out-of-band program (off, cycle;"
                   " the master is left out)")
    p.add_argument("--auto-promote", action="store_true",
                   help="Promote other nodes to keep the candidate pool full (off marks the nodes offline first)")
    _table_options(p)
    p.add_argument("power_command", choices=POWER_COMMANDS, metavar="{on,off,cycle,status}",
                   help="What to do: power-on, power-off, power-cycle or power-status")
    p.add_argument("names", nargs="*", metavar="NODE")

    p = base.opcode_command(sub, "powercycle", "Hard-restart a node from its own node daemon",
                            opcodes.OpNodePowercycle, cmd_powercycle)
    p.add_argument("--yes", action="store_true", help="Do not ask for confirmation")

    p = base.command(sub, "health", "Show the health of nodes as their out-of-band program reports it",
                     cmd_health)
    base.add_opcode_options(p, opcodes.OpOobCommand, skip + ("ignore_status", "power_delay"))
    _table_options(p)
    p.add_argument("names", nargs="*", metavar="NODE")
