"""DRBD minors (per node) and ports (per cluster): which are taken, and the next free ones.

Nothing of this is stored on its own: the configuration already says it. Every disk of a
``drbd`` instance carries a ``logical_id`` (``{"nodes": [a, b], "addresses": [...],
"port": p, "minors": [ma, mb], "secret": s}``; a ``mirror`` disk's has no minors and no
secret but takes its port from the same range), so :meth:`DrbdPool.from_config` rebuilds
two kinds of bit maps from the instances: one per node over its minors (bit *m* = minor
*m* in use there) and one over the cluster's port range (bit *i* = port ``first + i``).
A job that creates disks takes minors and ports from the pool before its config write;
:class:`Reservations` keeps those picks visible to jobs running at the same time until
the job's config write is done (Ganeti's temporary reservations), so two concurrent
creations never pick the same minor.

Duplicates found in the config (two disks on one minor of one node, two disks on one
port) are listed in :attr:`DrbdPool.conflicts` for cluster verify instead of failing the
read: a broken config must still be repairable.
"""
from __future__ import annotations

import secrets
import threading
from typing import Iterable, Iterator

from bitarray import bitarray

from genet import errors

FIRST_PORT = 11000          # Ganeti's default DRBD port range (constants.FIRST_DRBD_PORT)
LAST_PORT = 14999
MINOR_COUNT = 1024          # minors per node the pool hands out (DRBD allows up to 2**20)
SECRET_BYTES = 20           # shared secret: 40 hex digits (DRBD's limit is 64 characters)

Owner = tuple[str, int]     # (instance name, disk index)


def _bits(size: int) -> bitarray:
    bits = bitarray(size, endian="little")
    bits.setall(0)
    return bits


def drbd_disks(data: dict) -> Iterator[tuple[str, int, dict]]:
    """(instance name, disk index, logical_id) of every disk that holds a replication port
    (drbd and mirror; the minors only drbd disks have)."""
    for inst in sorted(data.get("instances", {}).values(), key=lambda i: i["name"]):
        for index, disk in enumerate(inst.get("disks", [])):
            lid = disk.get("logical_id")
            if isinstance(lid, dict) and "port" in lid:
                yield inst["name"], index, lid


def port_range(data: dict) -> tuple[int, int]:
    """The cluster's DRBD port range: ``cluster["drbd_port_range"]`` ("11000-14999") or Ganeti's default."""
    text = data.get("cluster", {}).get("drbd_port_range")
    if not text:
        return FIRST_PORT, LAST_PORT
    try:
        first, last = (int(part) for part in str(text).split("-"))
    except ValueError:
        raise errors.ConfigurationError(f"drbd_port_range {text!r} is not FIRST-LAST") from None
    if not 0 < first <= last < 65536:
        raise errors.ConfigurationError(f"drbd_port_range {text!r} is not a range of TCP ports")
    return first, last


def generate_secret() -> str:
    """A new shared secret for one DRBD resource (hex, so it needs no quoting anywhere)."""
    return secrets.token_hex(SECRET_BYTES)


class DrbdPool:
    """Minors taken per node and ports taken in the cluster; changes are made in place."""

    def __init__(self, first_port: int = FIRST_PORT, last_port: int = LAST_PORT,
                 minor_count: int = MINOR_COUNT):
        if not 0 < first_port <= last_port < 65536:
            raise errors.ProgrammerError(f"bad DRBD port range {first_port}-{last_port}")
        self.first_port, self.last_port = first_port, last_port
        self.minor_count = minor_count
        self.ports = _bits(last_port - first_port + 1)
        self.minors: dict[str, bitarray] = {}
        self.minor_owners: dict[tuple[str, int], Owner] = {}
        self.port_owners: dict[int, Owner] = {}
        self.conflicts: list[str] = []

    @classmethod
    def from_config(cls, data: dict, reservations: "Reservations | None" = None) -> "DrbdPool":
        """The pool as the config (plus other jobs' pending reservations) leaves it."""
        first, last = port_range(data)
        pool = cls(first, last, int(data.get("cluster", {}).get("drbd_minor_count", MINOR_COUNT)))
        for name, index, lid in drbd_disks(data):
            owner = (name, index)
            for node, minor in zip(lid.get("nodes", []), lid.get("minors", [])):
                pool._take_minor(node, int(minor), owner, strict=False)
            if "port" in lid:
                pool._take_port(int(lid["port"]), owner, strict=False)
        if reservations is not None:
            for kind, key, owner in reservations.items():
                if kind == "minor":
                    pool._take_minor(key[0], key[1], owner, strict=False)
                else:
                    pool._take_port(key, owner, strict=False)
        return pool

    def _conflict(self, what: str, holder: Owner, owner: Owner, strict: bool) -> None:
        """Two disks want one minor or port: refused (``strict``), or noted in ``conflicts`` (a
        config read as it is, to be reported by verify)."""
        text = f"{what} is used by disk {holder[1]} of {holder[0]} and by disk {owner[1]} of {owner[0]}"
        if strict:
            raise errors.OpPrereqError(text, errors.ECode.NOTUNIQUE)
        self.conflicts.append(text)

    # --- minors ------------------------------------------------------------------

    def _node_bits(self, node: str) -> bitarray:
        if node not in self.minors:
            self.minors[node] = _bits(self.minor_count)
        return self.minors[node]

    def _take_minor(self, node: str, minor: int, owner: Owner, strict: bool = True) -> None:
        bits = self._node_bits(node)
        if minor < 0:
            raise errors.ConfigurationError(f"disk {owner[1]} of {owner[0]} has a negative DRBD minor on {node}")
        if minor >= len(bits):          # a minor beyond the pool, set by hand: still taken
            bits.extend(_bits(minor + 1 - len(bits)))
        if bits[minor]:
            self._conflict(f"DRBD minor {minor} on node {node}", self.minor_owners.get((node, minor)), owner,
                           strict)
            return
        bits[minor] = 1
        self.minor_owners[(node, minor)] = owner

    def minor_owner(self, node: str, minor: int) -> Owner | None:
        """Which disk holds this minor on this node."""
        return self.minor_owners.get((node, minor))

    def used_minors(self, node: str) -> list[int]:
        return list(self._node_bits(node).search(bitarray("1")))

    def reserve_minor(self, node: str, minor: int, owner: Owner) -> None:
        """Take a minor the caller chose; refused when another disk holds it."""
        self._take_minor(node, minor, owner)

    def release_minor(self, node: str, minor: int) -> None:
        bits = self._node_bits(node)
        if minor < len(bits):
            bits[minor] = 0
        self.minor_owners.pop((node, minor), None)

    def allocate_minors(self, nodes: Iterable[str], owner: Owner) -> list[int]:
        """The lowest free minor on each node (a node named twice gets two minors), now taken."""
        picked: list[int] = []
        for node in nodes:
            bits = self._node_bits(node)
            try:
                minor = bits.index(0, 0, self.minor_count)
            except ValueError:
                raise errors.OpPrereqError(f"node {node} has no free DRBD minor left (all {self.minor_count}"
                                           " in use)", errors.ECode.TEMP_NORES) from None
            self._take_minor(node, minor, owner)
            picked.append(minor)
        return picked

    # --- ports -------------------------------------------------------------------

    def _take_port(self, port: int, owner: Owner, strict: bool = True) -> None:
        if not self.first_port <= port <= self.last_port:
            if strict:
                raise errors.OpPrereqError(f"port {port} is outside the DRBD port range"
                                           f" {self.first_port}-{self.last_port}", errors.ECode.INVAL)
            holder = self.port_owners.get(port)      # outside the range: only duplicates matter
            if holder is not None:
                self._conflict(f"DRBD port {port}", holder, owner, strict=False)
            else:
                self.port_owners[port] = owner
            return
        idx = port - self.first_port
        if self.ports[idx]:
            self._conflict(f"DRBD port {port}", self.port_owners.get(port), owner, strict)
            return
        self.ports[idx] = 1
        self.port_owners[port] = owner

    def port_owner(self, port: int) -> Owner | None:
        return self.port_owners.get(port)

    def reserve_port(self, port: int, owner: Owner) -> None:
        self._take_port(port, owner)

    def release_port(self, port: int) -> None:
        if self.first_port <= port <= self.last_port:
            self.ports[port - self.first_port] = 0
        self.port_owners.pop(port, None)

    def allocate_port(self, owner: Owner) -> int:
        """The lowest free port of the range, now taken."""
        try:
            idx = self.ports.index(0)
        except ValueError:
            raise errors.OpPrereqError(f"no free DRBD port left in {self.first_port}-{self.last_port}",
                                       errors.ECode.TEMP_NORES) from None
        port = self.first_port + idx
        self._take_port(port, owner)
        return port

    @property
    def free_ports(self) -> int:
        return self.ports.count(0)

    # --- whole disks -------------------------------------------------------------

    def allocate_logical_id(self, nodes: list[str], addresses: list[str], owner: Owner) -> dict:
        """A complete logical_id for a new DRBD disk between two nodes (primary first)."""
        if len(nodes) != 2 or nodes[0] == nodes[1]:
            raise errors.OpPrereqError(f"a DRBD disk needs two different nodes, not {nodes}", errors.ECode.INVAL)
        if len(addresses) != 2:
            raise errors.ProgrammerError("a DRBD disk needs one replication address per node")
        minors = self.allocate_minors(nodes, owner)
        port = self.allocate_port(owner)
        return {"nodes": list(nodes), "addresses": list(addresses), "port": port, "minors": minors,
                "secret": generate_secret()}

    def release_logical_id(self, lid: dict) -> None:
        for node, minor in zip(lid["nodes"], lid["minors"]):
            self.release_minor(node, int(minor))
        self.release_port(int(lid["port"]))


class Reservations:
    """Minors and ports picked by running jobs and not yet in the config (thread-safe).

    A job reserves what it allocated (:meth:`add_logical_id`) and calls :meth:`release`
    once its config write is done or it failed; :meth:`DrbdPool.from_config` counts the
    pending picks of every job as taken.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, list[tuple[str, object, Owner]]] = {}

    def add_logical_id(self, job: str, lid: dict, owner: Owner) -> None:
        with self._lock:
            held = self._held.setdefault(job, [])
            held.extend(("minor", (node, int(minor)), owner)
                        for node, minor in zip(lid["nodes"], lid.get("minors", [])))
            held.append(("port", int(lid["port"]), owner))

    def release(self, job: str) -> None:
        with self._lock:
            self._held.pop(job, None)

    def items(self) -> list[tuple[str, object, Owner]]:
        with self._lock:
            return [item for held in self._held.values() for item in held]
