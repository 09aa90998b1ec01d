"""gnt-os: the operating system definitions the nodes offer."""
from __future__ import annotations

import sys

from genet import opcodes
from genet.cli import base


def _diagnose(ns) -> list[dict]:
    return base.submit_or_run(ns, [opcodes.OpOsDiagnose()])[0]


def cmd_list(ns) -> int:
    if not ns.no_headers:
        print("Name")
    for entry in _diagnose(ns):
        if not entry["valid"]:
            continue
        for name in ([f"{entry['name']}+{v}" for v in entry["variants"]] or [entry["name"]]):
            print(name)
    return 0


def cmd_info(ns) -> int:
    for entry in _diagnose(ns):
        print(f"OS: {entry['name']}")
        print(f"  - valid: {entry['valid']}")
        print(f"  - API versions: {', '.join(map(str, entry['api_versions'])) or '-'}")
        print(f"  - variants: {', '.join(entry['variants']) or '-'}")
        print("  - parameters:")
        for name, doc in entry["parameters"]:
            print(f"    - {name}: {doc}")
    return 0


def cmd_diagnose(ns) -> int:
    bad = False
    for entry in _diagnose(ns):
        status = "valid" if entry["valid"] else "invalid"
        bad |= not entry["valid"]
        print(f"OS: {entry['name']} [global status: {status}]")
        for node, (path, valid, why) in sorted(entry["node_status"].items()):
            print(f"  Node: {node}, status: {'valid' if valid else 'invalid - ' + why} (path: {path})")
    return 1 if bad else 0


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.command(sub, "list", "List the valid OS definitions (with variants)", cmd_list)
    p.add_argument("--no-headers", action="store_true", help="Do not print the header line")
    base.command(sub, "info", "Show each OS's API versions, variants and parameters", cmd_info)
    base.command(sub, "diagnose", "Show each OS's status on every node", cmd_diagnose)


def main(argv=None) -> int:
    return base.run("gnt-os", build, argv)


if __name__ == "__main__":
    sys.exit(main())
