"""gnt-network: define IPv4 networks and their address pools, connect them to node groups."""
from __future__ import annotations

import argparse
import sys
import textwrap

from genet import luxi, opcodes
from genet.cli import base
from genet.ptypes import OneOf, Record, String

NETWORK_DEFAULT = ["name", "network", "gateway", "mac_prefix", "group_list", "tags"]   # Ganeti's columns
INFO_FIELDS = ["name", "uuid", "serial_no", "network", "gateway", "network6", "gateway6", "mac_prefix", "free_count",
               "reserved_count", "map", "external_reservations", "group_list", "inst_list"]
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
    """Ganeti's layout, line for line (scripts read it): the pool's usage map 64 addresses a line,
    the reservations, the groups with their NIC parameters, each instance with its addresses here."""
    client = luxi.Client()
    for n in base.query_named("network", INFO_FIELDS, ns.names, "network", client):
        size = n["free_count"] + n["reserved_count"]
        print(f"Network name: {n['name']}")
        print(f"UUID: {n['uuid']}")
        print(f"Serial number: {n['serial_no']}")
        for title, key in (("Subnet", "network"), ("Gateway", "gateway"), ("IPv6 Subnet", "network6"),
                           ("IPv6 Gateway", "gateway6"), ("Mac Prefix", "mac_prefix")):
            print(f"  {title}: {n[key]}")
        print(f"  Size: {size}")
        print(f"  Free: {n['free_count']} ({100.0 * n['free_count'] / size:.2f}%)")
        print("  Usage map:")
        for start in range(0, len(n["map"]), MAP_WIDTH):
            print(f"     {start:>4} {n['map'][start:start + MAP_WIDTH]:<{MAP_WIDTH}} {start + MAP_WIDTH - 1}")
        print("         (X) used    (.) free")
        if n["external_reservations"]:
            print("  externally reserved IPs:")
            for line in textwrap.wrap(n["external_reservations"], width=MAP_WIDTH):
                print(f"    {line}")
        if n["group_list"]:
            print("  connected to node groups:")
            for group, mode, link, vlan in n["group_list"]:
                print(f"    {group} (mode:{mode} link:{link} vlan:{vlan})")
        else:
            print("  not connected to any node group")
        if n["inst_list"]:
            print(f"  used by {len(n['inst_list'])} instances:")
            for name, ips, networks in _instance_nics(client, n["inst_list"]):
                shown = ", ".join(f"{index}:{ip}" for index, (ip, net) in enumerate(zip(ips, networks))
                                  if net == n["uuid"])
                print(f"    {name}: {shown}")
        else:
            print("  not used by any instances")
    return 0


def _instance_nics(client: luxi.Client, names: list[str]) -> list[tuple[str, list, list]]:
    rows = base.query_named("instance", ["name", "nic.ips", "nic.networks"], names, "instance", client)
    return [(row["name"], row["nic.ips"], row["nic.networks"]) for row in rows]


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
