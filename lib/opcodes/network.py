"""Opcodes of networks and their address pools."""
from __future__ import annotations

from genet.opcodes.base import OBJECT_NAME, OpCode, POSITIONAL, Param, REQUIRED
from genet.opcodes.cluster import TAG
from genet.opcodes.parameters import NIC_MODES, MacPrefix
from genet.ptypes import Bool, ListOf, Maybe, OneOf, ParamType, String


# the modes a network's connection to a group may record: genet's NICs' and Ganeti's openvswitch
CONNECTION_MODES = (*NIC_MODES, "openvswitch")
CLEAR = "none"        # what a modify sets gateway, network6, gateway6 or mac_prefix to, to remove them


class Address(ParamType):
    """An IPv4 or IPv6 address or network, normalised (checked by genet.network_pool)."""

    def __init__(self, kind: str):
        self.kind = kind    # network, network6, address or address6
        self.name = {"network": "IPv4 network", "network6": "IPv6 network", "address": "IPv4 address",
                     "address6": "IPv6 address"}[kind]
        self.schema = {"type": "string"}

    def check(self, value):
        if not isinstance(value, str):
            raise ValueError(f"expected an {self.name} as a string, got {type(value).__name__}")
        from genet import network_pool     # ipaddress and bitarray only where needed
        return str(getattr(network_pool, f"parse_{self.kind}")(value))


class AddressList(ParamType):
    """IPv4 addresses; on the CLI comma-separated (Ganeti's ``--add-reserved-ips=IP,IP``)."""
    name = "list of IPv4 addresses"
    schema = {"type": "array", "items": {"type": "string"}}

    def check(self, value):
        return ListOf(Address("address"), 65536).check(value)

    def parse(self, text):
        return self.check([part.strip() for part in text.split(",") if part.strip()])


class Clearable(ParamType):
    """A value a modify may also set to ``none``, which removes it."""

    def __init__(self, inner: ParamType):
        self.inner = inner
        self.name = f"{inner.name} or {CLEAR}"
        self.schema = inner.schema

    def check(self, value):
        return CLEAR if value == CLEAR else self.inner.check(value)


_NETWORK = Param("network_name", OBJECT_NAME, REQUIRED, "Network name", POSITIONAL, "NETWORK_NAME")
_GROUP_OF_NETWORK = Param("group_name", OBJECT_NAME, REQUIRED, "Node group (the CLI names groups after the network)")


class OpNetworkAdd(OpCode):
    """Define an IPv4 network with its address pool (connected to no group yet)."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (
        Param("network_name", OBJECT_NAME, REQUIRED, "Network name", POSITIONAL, "NETWORK_NAME", rapi="name"),
        Param("network", Address("network"), REQUIRED, "IPv4 network in CIDR notation", "--network", "NETWORK"),
        Param("gateway", Maybe(Address("address")), None, "IPv4 gateway", "--gateway", "GATEWAY"),
        Param("network6", Maybe(Address("network6")), None, "IPv6 network in CIDR notation", "--network6",
              "NETWORK6"),
        Param("gateway6", Maybe(Address("address6")), None, "IPv6 gateway", "--gateway6", "GATEWAY6"),
        Param("mac_prefix", Maybe(MacPrefix()), None, "MAC prefix of the network's NICs", "--mac-prefix",
              "MACPREFIX"),
        Param("add_reserved_ips", Maybe(AddressList()), None, "Addresses to reserve externally",
              "--add-reserved-ips", "IP,..."),
        Param("conflicts_check", Bool(), True, "Reserve the addresses of nodes and master inside the network",
              "--no-conflicts-check"),
        Param("tags", ListOf(TAG, 4096), [], "Tags of the new network"),
    )


class OpNetworkRename(OpCode):
    """Give a network a new name (its NICs and connections name it by UUID)."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (_NETWORK, Param("new_name", OBJECT_NAME, REQUIRED, "New name", POSITIONAL, "NEW_NAME"))


class OpNetworkRemove(OpCode):
    """Remove a network that no instance uses."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (
        _NETWORK,
        Param("force", Bool(), False, "Remove even if still connected to node groups", ("-f", "--force"),
              query="force"),
    )


class OpNetworkSetParams(OpCode):
    """Change a network's gateways, IPv6 network, MAC prefix and external reservations."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (
        _NETWORK,
        Param("gateway", Maybe(Clearable(Address("address"))), None, "IPv4 gateway (none removes it)",
              "--gateway", "GATEWAY"),
        Param("network6", Maybe(Clearable(Address("network6"))), None, "IPv6 network (none removes it)",
              "--network6", "NETWORK6"),
        Param("gateway6", Maybe(Clearable(Address("address6"))), None, "IPv6 gateway (none removes it)",
              "--gateway6", "GATEWAY6"),
        Param("mac_prefix", Maybe(Clearable(MacPrefix())), None, "MAC prefix (none removes it)",
              "--mac-prefix", "MACPREFIX"),
        Param("add_reserved_ips", Maybe(AddressList()), None, "Addresses to reserve externally",
              "--add-reserved-ips", "IP,..."),
        Param("remove_reserved_ips", Maybe(AddressList()), None, "External reservations to release",
              "--remove-reserved-ips", "IP,..."),
    )


class OpNetworkConnect(OpCode):
    """Connect a network to a node group with the NIC mode, link and VLAN its instances use there."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (
        _GROUP_OF_NETWORK, _NETWORK,
        Param("network_mode", OneOf(*CONNECTION_MODES), REQUIRED, "NIC mode in the group"),
        Param("network_link", String(max_len=255), REQUIRED, "NIC link in the group (bridge, routing table"
              " or switch)"),
        Param("network_vlan", String(max_len=255), "", "VLAN (openvswitch), e.g. .100 or :100:200"),
        Param("conflicts_check", Bool(), True, "Refuse if instances of the group have addresses in the"
              " network without using it", "--no-conflicts-check"),
    )


class OpNetworkDisconnect(OpCode):
    """Disconnect a network from a node group where no instance uses it."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (_GROUP_OF_NETWORK, _NETWORK)
