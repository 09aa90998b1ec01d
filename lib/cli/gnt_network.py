"""gnt-network: define IPv4 networks and their address pools, connect them to node groups."""
from __future__ import annotations

import argparse
import sys

from genet import luxi, opcodes
from genet.cli import base
from genet.ptypes import OneOf, Record, String

NETWORK_DEFAULT = ["name", "network", "gateway", "mac_prefix", "group_list", "tags"]   # Ganeti's columns
INFO_FIELDS = ["name", "uuid", "serial_no", "ctime", "mtime", "network", "gateway", "network6", "gateway6",
               "mac_prefix", "free_count", "reserved_count", "map", "external_reservations", "group_list",
               "inst_list", "tags"]
NIC_PARAMS = Record("nic parameters", {"mode": OneOf(*opcodes.CONNECTION_MODES), "link": String(max_len=255),
                                       "vlan": String(max_len=255)})
DEFAULT_BRIDGE = "gnt-br0"      # the link of bridged NICs that name none (as gnt-instance add)
MAP_WIDTH = 64


def format_connection(group: str, mode: str, link: str, vlan: str) -> str:
    return f"{group} ({mode}, {link or '-'}" + (f", vlan {vlan})" if vlan else ")")


class _ListClient(luxi.Client):
    """Shows group_list as "group (mode, link)" rather than nested lists."""

    def query(self, what, fields, qfilter=None):
        result = super().query(what, fields, qfilter)
        if "group_list" in fields:
            idx = fields.index("group_list")
            for row in result["data"]:
                if row[idx][0] == 0:
                    row[idx] = [0, [format_connection(*conn) for conn in row[idx][1]]]
        return result


def _nic_params(text: str) -> dict:
    try:
        return NIC_PARAMS.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _groups(ns, client: luxi.Client) -> list[str]:
    """The groups named on the command line, or every group."""
    if ns.groups:
        return list(ns.groups)
    return [row[0][1] for row in client.query("group", ["name"])["data"]]


def cmd_connect(ns) -> int:
    params = ns.nicparams or {}
    mode = params.get("mode", "bridged")
    link = params.get("link", DEFAULT_BRIDGE if mode == "bridged" else "")
    client = luxi.Client()
    ops = [base.opcode_from_args(opcodes.OpNetworkConnect, ns, group_name=group, network_mode=mode,
                                 network_link=link, network_vlan=params.get("vlan", ""))
           for group in _groups(ns, client)]
    base.submit_or_run(ns, ops, client)
    return 0


def cmd_disconnect(ns) -> int:
    client = luxi.Client()
    ops = [base.opcode_from_args(opcodes.OpNetworkDisconnect, ns, group_name=group) for group in _groups(ns, client)]
    base.submit_or_run(ns, ops, client)
    return 0


def cmd_info(ns) -> int:
    for n in base.query_named("network", INFO_FIELDS, ns.names, "network"):
        size = n["free_count"] + n["reserved_count"]
        print(f"Network name: {n['name']}")
        print(f"  UUID: {n['uuid']}")
        print(f"  Serial number: {n['serial_no']}")
        print(f"  Creation time: {base.format_value(n['ctime'], 'timestamp')}")
        print(f"  Modification time: {base.format_value(n['mtime'], 'timestamp')}")
        print(f"  Subnet: {n['network']}")
        print(f"  Gateway: {n['gateway'] or '-'}")
        print(f"  IPv6 subnet: {n['network6'] or '-'}")
        print(f"  IPv6 gateway: {n['gateway6'] or '-'}")
        print(f"  MAC prefix: {n['mac_prefix'] or '-'}")
        print(f"  Size: {size}")
        print(f"  Free: {n['free_count']} ({100.0 * n['free_count'] / size:.2f}%)")
        print("  Usage map (X: reserved, .: free):")
        for start in range(0, len(n["map"]), MAP_WIDTH):
            print(f"    {start:5d} {n['map'][start:start + MAP_WIDTH]}")
        print(f"  Externally reserved addresses: {n['external_reservations'] or '(none)'}")
        print("  Connected to node groups:" + ("" if n["group_list"] else " (none)"))
        for conn in n["group_list"]:
            print(f"    - {format_connection(*conn)}")
        print(f"  Used by instances: {', '.join(n['inst_list']) or '(none)'}")
        print(f"  Tags: {', '.join(n['tags']) or '(none)'}")
    return 0


def _group_command(sub, name: str, helptext: str, opclass, handler) -> argparse.ArgumentParser:
    """connect/disconnect: NETWORK [GROUP...], one opcode per group in one job."""
    p = base.opcode_command(sub, name, helptext, opclass, handler, skip=("group_name",))
    p.add_argument("groups", nargs="*", metavar="GROUP", help="Node groups (default: all)")
    return p


def build(parser) -> None:
    sub = base.subcommands(parser)
    base.opcode_command(sub, "add", "Define a network and its address pool", opcodes.OpNetworkAdd)
    base.opcode_command(sub, "remove", "Remove a network", opcodes.OpNetworkRemove)
    base.opcode_command(sub, "rename", "Give a network a new name", opcodes.OpNetworkRename)
    base.opcode_command(sub, "modify", "Change a network's gateways, MAC prefix and reservations",
                        opcodes.OpNetworkSetParams, base.modify_command(opcodes.OpNetworkSetParams, "network"))
    p = _group_command(sub, "connect", "Connect a network to node groups", opcodes.OpNetworkConnect,
                       cmd_connect)
    p.add_argument("-N", "--nic-parameters", dest="nicparams", type=_nic_params, default=None,
                   metavar="mode=MODE,link=LINK[,vlan=VLAN]",
                   help="NIC mode (bridged, routed, openvswitch), link and VLAN in the groups")
    _group_command(sub, "disconnect", "Disconnect a network from node groups", opcodes.OpNetworkDisconnect,
                   cmd_disconnect)
    base.add_object_commands(sub, "network", "network", "NETWORK_NAME", NETWORK_DEFAULT, cmd_info,
                             tag_kind="network", list_client=_ListClient)


def main(argv=None) -> int:
    return base.run("gnt-network", build, argv)


if __name__ == "__main__":
    sys.exit(main())
