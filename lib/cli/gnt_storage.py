"""gnt-storage: the state of genet's storage backends on every node.

Ganeti's gnt-storage reports its ExtStorage providers; genet has none, and its storage
backends are its disk templates, so this reports them in Ganeti's shape: a template is valid on
a node where that node can hold its disks (its volume group, directory, kernel module or
programs are there), and valid for a node group when it is valid on every node of the group.
Its parameters are the cluster settings it reads.
"""
from __future__ import annotations

import sys

from genet import opcodes
from genet.cli import base
from genet.query.common import nice_key


def _diagnose(ns, fields: list[str]) -> list[list]:
    return base.submit_or_run(ns, [opcodes.OpExtStorageDiagnose(output_fields=fields)])[0]


def node_line(node: str, reports: list) -> tuple[bool, str]:
    """(valid, what Ganeti prints after "Node: NODE, status: ") for one node's report."""
    if not reports:
        return False, "no report from the node"
    where, valid, why, params = reports[0]
    status = "valid" if valid else f"invalid - {why}"
    listed = f"[parameters: {', '.join(p[0] for p in params)}]" if params else "[no parameters]"
    return valid, f"{status} (path: {where}) {listed}"


def cmd_diagnose(ns) -> int:
    for name, node_status, group_status in _diagnose(ns, ["name", "node_status", "nodegroup_status"]):
        print(f"Provider: {name}")
        print("---")
        lines = {node: node_line(node, reports) for node, reports in node_status.items()}
        for wanted in (True, False):
            for node in sorted((n for n, (valid, _) in lines.items() if valid is wanted), key=nice_key):
                print(f"  Node: {node}, status: {lines[node][1]}")
        print("  --")
        for wanted in (True, False):
            for group in sorted((g for g, valid in group_status.items() if valid is wanted), key=nice_key):
                print(f"  For nodegroup: {group} --> {'valid' if wanted else 'invalid'}")
        print()
    return 0


def cmd_info(ns) -> int:
    wanted = list(ns.names)
    for name, group_status, parameters in _diagnose(ns, ["name", "nodegroup_status", "parameters"]):
        if wanted and name not in wanted:
            continue
        if name in wanted:
            wanted.remove(name)
        print(f"{name}:")
        valid = sorted((g for g, ok in group_status.items() if ok), key=nice_key)
        if valid:
            print("  - Valid for nodegroups:")
            for group in valid:
                print(f"      {group}")
            print("  - Supported parameters:")
            for pname, doc in parameters:
                print(f"      {pname}: {doc}")
        else:
            print("  - Invalid for all nodegroups")
        print()
    for name in wanted:
        print(f"{name}: Not Found")
        print()
    return 0


def build(parser) -> None:
    sub = base.subcommands(parser)
    base.command(sub, "diagnose", "Show each storage backend's state on every node", cmd_diagnose)
    p = base.command(sub, "info", "Show the node groups each storage backend is valid for, and its parameters",
                     cmd_info)
    p.add_argument("names", nargs="*", metavar="PROVIDER")


def main(argv=None) -> int:
    return base.run("gnt-storage", build, argv)


if __name__ == "__main__":
    sys.exit(main())
