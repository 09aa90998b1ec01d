"""gnt-backup: export instances to a node's export directory, list and remove exports, import them."""
from __future__ import annotations

import json
import sys

from genet import opcodes
from genet.cli import base
from genet.cli.gnt_instance import accept_ganeti_check_switches

# an import takes its OS from the export and runs no OS script; Ganeti's import has none of the
# other options skipped here
IMPORT_SKIP = ("mode", "os_type", "no_install", "osparams_private", "osparams_secret", "file_driver",
               "file_storage_dir", "group_name", "instance_communication", "forthcoming", "commit")


LIST_DEFAULT = ["node", "export"]


def cmd_list(ns) -> int:
    """Ganeti's: the export query, its rows filtered by node (an unknown node is named)."""
    if ns.nodes:
        base.query_named("node", ["name"], ns.nodes, "node")
    ns.names = [" or ".join(f"node == {json.dumps(node)}" for node in ns.nodes)] if ns.nodes else []
    ns.use_filter, ns.units, ns.verbose = bool(ns.nodes), None, False
    return base.run_list(ns, "export", LIST_DEFAULT, name_field="node")


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
    p.add_argument("-o", "--output", metavar="FIELDS", help="Comma-separated fields to show (node, export);"
                   " a leading + adds to the defaults")
    p = base.command(sub, "list-fields", "List the fields of list -o",
                     lambda ns: base.run_list_fields(ns, "export"))
    base.add_list_fields_options(p)
    base.opcode_command(sub, "remove", "Remove an export from every node holding it", opcodes.OpBackupRemove)


def main(argv=None) -> int:
    return base.run("gnt-backup", build, argv)


if __name__ == "__main__":
    sys.exit(main())
