"""The IPv4 address pool of a network: which addresses are taken, by instances or externally.

A pool is two bit maps over the network's addresses (bit *i* = network address + *i*):
``reservations`` for addresses given to instance NICs and ``ext_reservations`` for
those taken outside genet's control (the network and broadcast addresses, the gateway,
the nodes' own addresses, whatever the administrator reserved). In the configuration
each map is stored as base64 text of its bytes (:meth:`AddressPool.to_config`).
Refusals are OpPrereqError with an ecode, so a logical unit can let them through.
"""
from __future__ import annotations

import base64
import ipaddress
from typing import Iterator

from bitarray import bitarray

from genet import errors

MIN_PREFIX = 16     # larger networks would make the bit maps (and `map`) unwieldy
MAX_PREFIX = 30     # smaller ones have no room for a host besides the gateway


def parse_network(text: str) -> ipaddress.IPv4Network:
    """An IPv4 network in CIDR notation (``192.0.2.0/24``); ValueError says what is wrong."""
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"{text!r} is not an IPv4 network in CIDR notation (like 192.0.2.0/24)")
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as err:
        raise ValueError(f"{text!r} is not a valid IPv4 network: {err}") from None
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise ValueError(f"network {text} has prefix length /{net.prefixlen}; genet supports"
                         f" /{MIN_PREFIX} to /{MAX_PREFIX}")
    return net


def parse_network6(text: str) -> ipaddress.IPv6Network:
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"{text!r} is not an IPv6 network in CIDR notation (like 2001:db8::/64)")
    try:
        return ipaddress.IPv6Network(text, strict=True)
    except ValueError as err:
        raise ValueError(f"{text!r} is not a valid IPv6 network: {err}") from None


def parse_address(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None


def parse_address6(text: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv6 address") from None


def _encode(bits: bitarray) -> str:
    return base64.b64encode(bits.tobytes()).decode()


def _decode(text: str, size: int, what: str) -> bitarray:
    bits = bitarray(endian="big")
    try:
        bits.frombytes(base64.b64decode(text, validate=True))
    except ValueError:
        raise errors.ConfigurationError(f"address pool {what} is not valid base64") from None
    if len(bits) < size:
        raise errors.ConfigurationError(f"address pool {what} holds {len(bits)} bits, the network {size}")
    return bits[:size]


class AddressPool:
    """Reservations of one IPv4 network; changes are made in place, see :meth:`to_config`."""

    def __init__(self, network: str, reservations: str | None = None, ext_reservations: str | None = None):
        self.net = parse_network(network)
        size = self.net.num_addresses
        if reservations is None:
            self.reservations = bitarray(size, endian="big")
            self.reservations.setall(0)
        else:
            self.reservations = _decode(reservations, size, "reservations")
        if ext_reservations is None:
            self.ext_reservations = bitarray(size, endian="big")
            self.ext_reservations.setall(0)
        else:
            self.ext_reservations = _decode(ext_reservations, size, "ext_reservations")

    @classmethod
    def create(cls, network: str, gateway: str | None = None) -> "AddressPool":
        """A new pool: network and broadcast addresses and the gateway are reserved externally."""
        pool = cls(network)
        pool.ext_reservations[0] = pool.ext_reservations[-1] = 1
        if gateway is not None:
            pool.reserve(gateway, external=True)
        return pool

    @classmethod
    def of(cls, network: dict) -> "AddressPool":
        """The pool stored in a network's configuration entry."""
        return cls(network["network"], network.get("reservations"), network.get("ext_reservations"))

    def to_config(self) -> dict[str, str]:
        return {"reservations": _encode(self.reservations), "ext_reservations": _encode(self.ext_reservations)}

    # --- addresses -------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.reservations)

    def contains(self, address: str) -> bool:
        return parse_address(address) in self.net

    def _index(self, address: str) -> int:
        try:
            ip = parse_address(address)
        except ValueError as err:
            raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
        if ip not in self.net:
            raise errors.OpPrereqError(f"address {address} is not in network {self.net}", errors.ECode.INVAL)
        return int(ip) - int(self.net.network_address)

    def is_reserved(self, address: str, external: bool | None = None) -> bool:
        """Taken at all (external None), by an instance (False) or externally (True)."""
        idx = self._index(address)
        if external is None:
            return bool(self.reservations[idx] or self.ext_reservations[idx])
        return bool((self.ext_reservations if external else self.reservations)[idx])

    def reserve(self, address: str, external: bool = False) -> None:
        idx = self._index(address)
        if self.reservations[idx]:
            raise errors.OpPrereqError(f"address {address} of network {self.net} is already in use by an"
                                       " instance", errors.ECode.NOTUNIQUE)
        if self.ext_reservations[idx]:
            raise errors.OpPrereqError(f"address {address} of network {self.net} is already reserved",
                                       errors.ECode.NOTUNIQUE)
        (self.ext_reservations if external else self.reservations)[idx] = 1

    def release(self, address: str, external: bool = False) -> None:
        idx = self._index(address)
        if idx in (0, self.size - 1):
            raise errors.OpPrereqError(f"address {address} is the network or broadcast address of {self.net};"
                                       " it stays reserved", errors.ECode.INVAL)
        bits = self.ext_reservations if external else self.reservations
        if not bits[idx]:
            kind = "externally reserved" if external else "reserved by an instance"
            raise errors.OpPrereqError(f"address {address} of network {self.net} is not {kind}",
                                       errors.ECode.NOENT)
        bits[idx] = 0

    def generate_free(self) -> str:
        """The lowest free address; refuses when the network is full."""
        taken = self.reservations | self.ext_reservations
        try:
            idx = taken.index(0)
        except ValueError:
            raise errors.OpPrereqError(f"network {self.net} has no free address left",
                                       errors.ECode.TEMP_NORES) from None
        return str(self.net.network_address + idx)

    # --- what queries show -----------------------------------------------------

    @property
    def reserved_count(self) -> int:
        return (self.reservations | self.ext_reservations).count(1)

    @property
    def free_count(self) -> int:
        return self.size - self.reserved_count

    def map(self) -> str:
        """One character per address: ``X`` taken, ``.`` free (Ganeti's usage map)."""
        return (self.reservations | self.ext_reservations).to01().replace("1", "X").replace("0", ".")

    def _addresses(self, bits: bitarray) -> Iterator[str]:
        base = self.net.network_address
        return (str(base + idx) for idx in bits.search(bitarray("1")))

    def external_reservations(self) -> list[str]:
        return list(self._addresses(self.ext_reservations))

    def instance_reservations(self) -> list[str]:
        return list(self._addresses(self.reservations))


# --- networks in the configuration ----------------------------------------------

def find_network(data: dict, ref: str | None) -> dict | None:
    """The network a NIC or a user names, by UUID or by name; None if there is none."""
    if not ref:
        return None
    net = data.get("networks", {}).get(ref)
    return net or next((n for n in data.get("networks", {}).values() if n["name"] == ref), None)


def nic_users(data: dict, net: dict) -> list[tuple[str, int]]:
    """(instance name, NIC index) of every NIC on the network (NICs name it by UUID or name)."""
    refs = {net["uuid"], net["name"]}
    return [(inst["name"], idx) for inst in sorted(data["instances"].values(), key=lambda i: i["name"])
            for idx, nic in enumerate(inst.get("nics", [])) if nic.get("network") in refs]
