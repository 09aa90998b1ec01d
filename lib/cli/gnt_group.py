"""gnt-group: add, remove, rename and change node groups, and move nodes between them."""
from __future__ import annotations

import sys

from genet import luxi, opcodes
from genet.cli import base, ipolicy

GROUP_DEFAULT = ["name", "node_cnt", "pinst_cnt", "alloc_policy", "ndparams"]   # Ganeti's list columns
INFO_FIELDS = ["name", "uuid", "serial_no", "ctime", "mtime", "alloc_policy", "node_list", "pinst_list",
               "ndparams", "custom_ndparams", "diskparams", "custom_diskparams", "ipolicy", "custom_ipolicy",
               "tags"]
def _print_params(title: str, merged: dict, custom: dict) -> None:
    print(f"  {title}:")
    for key in sorted(merged):
        mark = " (custom)" if key in custom else ""
        print(f"    - {key}: {base.format_value(merged[key])}{mark}")


def cmd_info(ns) -> int:
    client = luxi.Client()
    node_groups = base.query_named("group", INFO_FIELDS, ns.names, "node group", client)
    connections: dict[str, list[str]] = {}
    for (_, net), (_, groups) in client.query("network", ["name", "group_list"])["data"]:
        for group, mode, link, vlan in groups:
            connections.setdefault(group, []).append(
                f"{net}: mode {mode}, link {link or '-'}" + (f", vlan {vlan}" if vlan else ""))
    for g in node_groups:
        print(f"Node group: {g['name']}")
        print(f"  UUID: {g['uuid']}")
        print(f"  Serial number: {g['serial_no']}")
        print(f"  Creation time: {base.format_value(g['ctime'], 'timestamp')}")
        print(f"  Modification time: {base.format_value(g['mtime'], 'timestamp')}")
        print(f"  Allocation policy: {g['alloc_policy']}")
        print(f"  Nodes: {', '.join(g['node_list']) or '(none)'}")
        print(f"  Primary instances: {', '.join(g['pinst_list']) or '(none)'}")
        networks = sorted(connections.get(g["name"], []))
        print("  Networks:" + ("" if networks else " (none)"))
        for line in networks:
            print(f"    - {line}")
        _print_params("Node parameters", g["ndparams"], g["custom_ndparams"])
        print("  Disk parameters:" + ("" if g["diskparams"] else " (none)"))
        for template, params in sorted(g["diskparams"].items()):
            print(f"    - {template}: {','.join(f'{k}={v}' for k, v in sorted(params.items()))}")
        _print_params("Instance policy", g["ipolicy"], g["custom_ipolicy"])
        print(f"  Tags: {', '.join(g['tags']) or '(none)'}")
    return 0


def cmd_evacuate(ns) -> int:
    from genet.cli.gnt_instance import follow_moves
    return follow_moves(ns, base.opcode_from_args(opcodes.OpGroupEvacuate, ns),
                        "All instances evacuated successfully.", "There were {} errors during the evacuation.")


def cmd_show_ispecs(ns) -> int:
    field = "ipolicy" if ns.include_defaults else "custom_ipolicy"
    for group in base.query_named("group", ["name", field], ns.names, "node group"):
        print(ipolicy.create_command("gnt-group add", group["name"], group[field], group=True))
    return 0


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.opcode_command(sub, "add", "Create an empty node group", opcodes.OpGroupAdd,
                            base.run_opcode(opcodes.OpGroupAdd, ipolicy.from_args))
    ipolicy.add_options(p)
    base.opcode_command(sub, "remove", "Remove an empty node group", opcodes.OpGroupRemove)
    base.opcode_command(sub, "rename", "Rename a node group", opcodes.OpGroupRename)
    p = base.opcode_command(sub, "modify", "Change a node group's policy and parameters", opcodes.OpGroupSetParams,
                            base.modify_command(opcodes.OpGroupSetParams, "group", "node group", ipolicy.from_args))
    ipolicy.add_options(p)
    base.opcode_command(sub, "assign-nodes", "Move nodes into a node group", opcodes.OpGroupAssignNodes)
    base.opcode_command(sub, "evacuate", "Move every instance of a node group to other groups",
                        opcodes.OpGroupEvacuate, cmd_evacuate)
    base.add_object_commands(sub, "group", "node group", "GROUP", GROUP_DEFAULT, cmd_info, tag_kind="nodegroup")
    p = base.command(sub, "show-ispecs-cmd", "Print the add commands that recreate the groups' policy specs",
                     cmd_show_ispecs)
    p.add_argument("--include-defaults", action="store_true",
                   help="The specs that apply, the cluster's included (default: the group's own)")
    p.add_argument("names", nargs="*", metavar="GROUP")


def main(argv=None) -> int:
    return base.run("gnt-group", build, argv)


if __name__ == "__main__":
    sys.exit(main())
