"""gnt-group: add, remove, rename and change node groups, and move nodes between them."""
from __future__ import annotations

import sys

from genet import luxi, opcodes
from genet.cli import base, group_maintenance, info, ipolicy

GROUP_DEFAULT = ["name", "node_cnt", "pinst_cnt", "alloc_policy", "ndparams"]   # Ganeti's list columns
INFO_FIELDS = ["name", "uuid", "serial_no", "ctime", "mtime", "alloc_policy", "node_list", "pinst_list",
               "ndparams", "custom_ndparams", "diskparams", "custom_diskparams", "ipolicy", "custom_ipolicy",
               "tags"]
def policy_entries(own: dict, actual: dict) -> list:
    """A group's instance policy as Ganeti's gnt-group info shows it: its own values as they are,
    inherited ones as ``default (value)``."""
    pairs = own.get("minmax") or actual["minmax"]
    bounds = [{f"{bound}/{index}": info.params(pair[bound] if own.get("minmax") else {}, pair[bound])
               for bound in ("max", "min")} for index, pair in enumerate(pairs)]
    templates = ", ".join(actual["disk-templates"])
    return [("bounds specs", bounds),
            ("allowed disk templates", templates if "disk-templates" in own else f"default ({templates})"),
            *[(key, str(own.get(key, f"default ({actual[key]})"))) for key in ("vcpu-ratio", "spindle-ratio")]]


def entries(group: dict, networks: list[str]) -> list:
    """Ganeti's four entries (name, node and disk parameters, policy), then what genet adds."""
    return [("Node group", group["name"]),
            ("Node parameters", info.params(group["custom_ndparams"], group["ndparams"])),
            ("Disk parameters", info.params(group["custom_diskparams"], group["diskparams"])),
            ("Instance policy", policy_entries(group["custom_ipolicy"], group["ipolicy"])),
            ("UUID", group["uuid"]), ("Serial number", group["serial_no"]),
            ("Creation time", info.timestamp(group["ctime"])), ("Modification time", info.timestamp(group["mtime"])),
            ("Allocation policy", group["alloc_policy"]),
            ("Nodes", ", ".join(group["node_list"]) or "(none)"),
            ("Primary instances", ", ".join(group["pinst_list"]) or "(none)"),
            ("Networks", networks or "(none)"), ("Tags", ", ".join(group["tags"]) or "(none)")]


def cmd_info(ns) -> int:
    """Ganeti's layout: a YAML list, one entry per group (genet.cli.info)."""
    client = luxi.Client()
    node_groups = base.query_named("group", INFO_FIELDS, ns.names, "node group", client)
    connections: dict[str, list[str]] = {}
    for (_, net), (_, groups) in client.query("network", ["name", "group_list"])["data"]:
        for group, mode, link, vlan in groups:
            connections.setdefault(group, []).append(
                f"{net}: mode {mode}, link {link or '-'}" + (f", vlan {vlan}" if vlan else ""))
    print(info.dump([entries(g, sorted(connections.get(g["name"], []))) for g in node_groups]))
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
    group_maintenance.add_options(base.command(sub, "maintenance", "Put the group's nodes into maintenance in"
                                               " hroller's reboot groups, run a command for each, bring them back",
                                               group_maintenance.cmd_maintenance))
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
