"""gnt-os: the operating system definitions the nodes offer."""
from __future__ import annotations

import sys

from genet import errors, luxi, opcodes
from genet.cli import base, info
from genet.opcodes.group import HvParamsByHypervisor
from genet.ptypes import Bool, Dict


def _diagnose(ns) -> list[dict]:
    return base.submit_or_run(ns, [opcodes.OpOsDiagnose()])[0]


def cmd_list(ns) -> int:
    if not ns.no_headers:
        print("Name")
    for entry in _diagnose(ns):
        if not entry["valid"] or entry["hidden"] or entry["blacklisted"]:     # Ganeti's list leaves them out
            continue
        for name in ([f"{entry['name']}+{v}" for v in entry["variants"]] or [entry["name"]]):
            print(name)
    return 0


def cmd_info(ns) -> int:
    """Ganeti's layout: each OS reported (those named, if any) as ``NAME:`` with its facts; a name
    no node reports shows the cluster's hypervisor and OS parameters kept for it, if any."""
    wanted = list(dict.fromkeys(ns.names))
    for entry in _diagnose(ns):
        if wanted and entry["name"] not in wanted:
            continue
        if wanted:
            wanted.remove(entry["name"])
        print(f"{entry['name']}:")
        for key in ("valid", "hidden", "blacklisted"):
            print(f"  - {key}: {entry[key]}")
        if entry["valid"]:
            for title, values in (("API versions", entry["api_versions"]), ("variants", entry["variants"]),
                                  ("parameters", [f"{name}: {doc}" for name, doc in entry["parameters"]])):
                print(f"  - {title}:")
                for value in values:
                    print(f"    - {value}")
        print(f"  - trusted: {entry.get('trusted', True)}")
        print()
    cluster = luxi.Client().call("QueryClusterInfo") if wanted else {}
    for name in wanted:
        if name in cluster["os_hvp"] or name in cluster["osparams"]:
            print(info.dump([(name, [("OS-specific hypervisor parameters", cluster["os_hvp"].get(name, {})),
                                     ("OS parameters", cluster["osparams"].get(name, {}))])]))
        else:
            print(f"{name}: ")
        print()
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


def cmd_modify(ns) -> int:
    """Ganeti's gnt-os modify: the cluster's settings for one OS (a job changing the cluster)."""
    name = ns.os_name
    change: dict = {}
    if ns.hvparams:
        change["os_hvp"] = {name: ns.hvparams}
    for key in ("osparams", "osparams_private"):
        if getattr(ns, key):
            change[key] = {name: getattr(ns, key)}
    for key, flag in (("hidden_os", ns.hidden), ("blacklisted_os", ns.blacklisted)):
        if flag is not None:
            change[key] = [["add" if flag else "remove", name]]
    if not change:
        raise errors.OpPrereqError("no parameters to change given", errors.ECode.INVAL)
    base.submit_or_run(ns, [opcodes.OpClusterSetParams(**change)])
    return 0


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.command(sub, "list", "List the valid OS definitions (with variants)", cmd_list)
    p.add_argument("--no-headers", action="store_true", help="Do not print the header line")
    p = base.command(sub, "info", "Show each OS's state, API versions, variants and parameters", cmd_info)
    p.add_argument("names", nargs="*", metavar="OS", help="Only these OSes")
    base.command(sub, "diagnose", "Show each OS's status on every node", cmd_diagnose)
    p = base.command(sub, "modify", "Change the cluster's settings for one OS", cmd_modify)
    p.add_argument("-H", "--hypervisor-parameters", dest="hvparams", metavar="HYPERVISOR:KEY=VALUE,...",
                   type=base.argument_type(HvParamsByHypervisor(), "hvparams"),
                   help="Hypervisor parameters for instances of this OS")
    p.add_argument("-O", "--os-parameters", dest="osparams", metavar="KEY=VALUE,...",
                   type=base.argument_type(Dict(), "osparams"),
                   help="OS parameters every instance of this OS gets")
    p.add_argument("--os-parameters-private", dest="osparams_private", metavar="KEY=VALUE,...",
                   type=base.argument_type(Dict(), "osparams_private"), help="OS parameters shown redacted")
    for flag, helptext in (("--hidden", "Leave the OS out of gnt-os list and /2/os"),
                           ("--blacklisted", "Refuse the OS for new installations")):
        p.add_argument(flag, metavar="yes|no", type=base.argument_type(Bool(), flag[2:]), default=None, help=helptext)
    p.add_argument("os_name", metavar="OS")
    base.add_submit_options(p)


def main(argv=None) -> int:
    return base.run("gnt-os", build, argv)


if __name__ == "__main__":
    sys.exit(main())
