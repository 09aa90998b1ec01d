"""Network fields and the network query (the address pool is built once per stored state)."""
from __future__ import annotations

import functools
from typing import Any

from genet.query.common import Field, Table, attr, build_rows, common_fields


class NetworkContext:
    def __init__(self, data: dict):
        self.data = data


def _pool(net: dict):
    return _cached_pool(net["network"], net.get("reservations"), net.get("ext_reservations"))


@functools.lru_cache(maxsize=64)
def _cached_pool(network: str, reservations: str | None, ext_reservations: str | None):
    from genet.network_pool import AddressPool
    return AddressPool(network, reservations, ext_reservations)


def _groups(n: dict, c: NetworkContext) -> list[list[str]]:
    """Ganeti's group_list: [group name, NIC mode, NIC link, VLAN] per connected group."""
    return [[g["name"], p["mode"], p["link"], p.get("vlan", "")]
            for g in sorted(c.data.nodegroups.values(), key=lambda g: g["name"])
            for u, p in g.get("networks", {}).items() if u == n["uuid"]]


def _instances(n: dict, c: NetworkContext) -> list[str]:
    from genet.network_pool import nic_users
    return sorted({name for name, _ in nic_users(c.data, n)})


NETWORK_FIELDS: Table = {
    "name": Field("Network", "text", "Name", attr("name")),
    "network": Field("Subnet", "text", "IPv4 subnet", attr("network")),
    "gateway": Field("Gateway", "other", "IPv4 gateway", attr("gateway")),
    "network6": Field("IPv6Subnet", "other", "IPv6 subnet", attr("network6")),
    "gateway6": Field("IPv6Gateway", "other", "IPv6 gateway", attr("gateway6")),
    "mac_prefix": Field("MacPrefix", "other", "MAC address prefix", attr("mac_prefix")),
    "free_count": Field("FreeCount", "number", "Number of available addresses", lambda n, c: _pool(n).free_count),
    "reserved_count": Field("ReservedCount", "number", "Number of reserved addresses",
                            lambda n, c: _pool(n).reserved_count),
    "map": Field("Map", "text", "Actual mapping", lambda n, c: _pool(n).map()),
    "external_reservations": Field("ExternalReservations", "text", "External reservations",
                                   lambda n, c: ", ".join(_pool(n).external_reservations())),
    "group_list": Field("GroupList", "other", "List of nodegroups (group name, NIC mode, NIC link)", _groups),
    "group_cnt": Field("NodeGroups", "number", "Number of nodegroups", lambda n, c: len(_groups(n, c))),
    "inst_list": Field("InstanceList", "other", "List of instances", _instances),
    "inst_cnt": Field("Instances", "number", "Number of instances", lambda n, c: len(_instances(n, c))),
    **common_fields("Network"),
}


def query_networks(data: dict, fields: list[str], qfilter_list: Any) -> dict:
    networks = sorted(data.get("networks", {}).values(), key=lambda n: n["name"])
    return build_rows("network", NETWORK_FIELDS, networks, NetworkContext(data), fields, qfilter_list)
