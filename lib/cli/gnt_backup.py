"""gnt-backup: export instances to a node's export directory, list and remove exports, import them."""
from __future__ import annotations

import sys

from genet import opcodes
from genet.cli import base
from genet.cli.gnt_instance import accept_ganeti_check_switches

# an import takes its OS from the export and runs no OS script; Ganeti's import has none of the
# other options skipped here
IMPORT_SKIP = ("mode", "os_type", "no_install", "osparams_private", "osparams_secret", "file_driver",
               "file_storage_dir", "group_name", "instance_communication")


def cmd_list(ns) -> int:
    [found] = base.submit_or_run(ns, [opcodes.OpBackupQuery(nodes=ns.nodes or [])]) or [None]
    if found is None:                    # --submit
        return 0
    rows, silent = [], []
    for node in sorted(found):
        if found[node] is False:
            silent.append(node)
            continue
        rows += [[node, name] for name in found[node]]
    headers = None if ns.no_headers else ["Node", "Export"]
    for line in base.format_table(headers, rows, ns.separator):
        print(line)
    for node in silent:
        print(f"Warning: node {node} did not answer (or is offline); its exports are not listed", file=sys.stderr)
    return 0


def cmd_import(ns) -> int:
    base.submit_or_run(ns, [base.opcode_from_args(opcodes.OpInstanceCreate, ns, mode="import")])
    return 0


def build(parser) -> None:
    sub = base.subcommands(parser)
    base.opcode_command(sub, "export", "Export an instance to a node", opcodes.OpBackupExport)
    p = base.command(sub, "import", "Create an instance from an export", cmd_import)
    base.add_opcode_options(p, opcodes.OpInstanceCreate, IMPORT_SKIP)
    accept_ganeti_check_switches(p)
    base.add_submit_options(p)
    p = base.command(sub, "list", "List the exports of the nodes", cmd_list)
    p.add_argument("--node", dest="nodes", action="append", metavar="NODE", help="Only this node (repeatable)")
    p.add_argument("--no-headers", action="store_true", help="Do not print column headers")
    p.add_argument("--separator", default=None, help="Separate columns with this string")
    base.opcode_command(sub, "remove", "Remove an export from every node holding it", opcodes.OpBackupRemove)


def main(argv=None) -> int:
    return base.run("gnt-backup", build, argv)


if __name__ == "__main__":
    sys.exit(main())
