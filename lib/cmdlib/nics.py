"""Instance NICs: MAC addresses, networks and their IP pools."""
from __future__ import annotations

import random
import re
import uuid as uuidlib

from genet import errors, params
from genet.network_pool import AddressPool, find_network


NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def make_nics(data: dict, specs: list[dict], node: str | None = None, conflicts_check: bool = True) -> list[dict]:
    """NIC objects for ``specs``: MACs generated from the cluster prefix or checked for uniqueness.

    A NIC on a network takes its mode and link from the network's connection to the
    node's group, and its address from the network's pool (``ip=pool``) or as given;
    reserve_nic_ips records the addresses when the instance is written.
    """
    used = {nic["mac"] for inst in data.instances.values() for nic in inst.nics}
    prefix = data.cluster.get("mac_prefix", "aa:00:00")
    pools: dict[str, AddressPool] = {}      # working copies: two NICs never get one address
    nics = []
    for index, spec in enumerate(specs):
        mac = spec.get("mac", "auto").lower()
        if mac in ("auto", "generate"):
            mac = _new_mac(prefix, used)
        elif not MAC_RE.match(mac):
            raise errors.OpPrereqError(f"NIC {index}: invalid MAC address {mac!r}", errors.ECode.INVAL)
        elif mac in used:
            raise errors.OpPrereqError(f"NIC {index}: MAC address {mac} is already in use", errors.ECode.NOTUNIQUE)
        used.add(mac)
        net, mode, link, vlan = _nic_network(data, spec, node, index)
        ip = spec.get("ip")
        if ip and ip.lower() == "pool":
            if net is None:
                raise errors.OpPrereqError(f"NIC {index}: ip=pool needs a network (network=NAME)", errors.ECode.INVAL)
            pool = pools.setdefault(net["uuid"], AddressPool.of(net))
            ip = pool.generate_free()
            pool.reserve(ip)
        elif ip and net is not None:
            pool = pools.setdefault(net["uuid"], AddressPool.of(net))
            try:
                inside = pool.contains(ip)
            except ValueError as err:
                raise errors.OpPrereqError(f"NIC {index}: {err}", errors.ECode.INVAL) from None
            if not inside:
                raise errors.OpPrereqError(f"NIC {index}: address {ip} is not in network {net['name']}"
                                           f" ({net['network']})", errors.ECode.INVAL)
            if not pool.is_reserved(ip):
                pool.reserve(ip)
            elif conflicts_check:
                raise errors.OpPrereqError(f"NIC {index}: address {ip} of network {net['name']} is already"
                                           " taken (--no-conflicts-check to use it anyway)", errors.ECode.NOTUNIQUE)
        nics.append({"uuid": str(uuidlib.uuid4()), "mac": mac, "mode": mode, "link": link, "ip": ip,
                     "vlan": vlan, "name": spec.get("name"), "network": net["uuid"] if net else None})
    return nics


def _nic_network(data: dict, spec: dict, node: str | None, index: int) -> tuple[dict | None, str, str, str | None]:
    """The NIC's network (or None) and its mode, link and VLAN."""
    if not spec.get("network"):      # the cluster's NIC parameters (gnt-cluster modify -N) fill in
        defaults = params.nicparams(data)
        mode = spec.get("mode") or defaults["mode"]
        if "link" in spec:
            link = spec["link"]
        elif mode == defaults["mode"]:
            link = defaults["link"]
        else:
            link = params.DEFAULT_NICPARAMS["link"] if mode == "bridged" else ""
        return None, mode, link, spec.get("vlan") or defaults["vlan"] or None
    net = find_network(data, spec["network"])
    if net is None:
        raise errors.OpPrereqError(f"NIC {index}: network {spec['network']!r} does not exist", errors.ECode.NOENT)
    conn = {}
    if node is not None:
        group = data.nodegroups[data.nodes[node]["group"]]
        conn = group.get("networks", {}).get(net["uuid"])
        if conn is None:
            raise errors.OpPrereqError(f"NIC {index}: network {net['name']} is not connected to node group"
                                       f" {group['name']} of node {node}", errors.ECode.WRONG_STATE)
    mode = spec.get("mode") or conn.get("mode") or "bridged"
    if mode not in ("bridged", "routed"):
        raise errors.OpPrereqError(f"NIC {index}: network {net['name']} is connected in mode {mode}, which genet's"
                                   " hypervisors cannot plug (bridged or routed)", errors.ECode.INVAL)
    return net, mode, spec.get("link") or conn.get("link") or "", spec.get("vlan") or conn.get("vlan") or None


def reserve_nic_ips(data: dict, nics: list[dict]) -> None:
    """Record the addresses of NICs on networks in their pools (inside a config update)."""
    for nic in nics:
        net = data.get("networks", {}).get(nic.get("network") or "")
        if net is not None and nic.get("ip"):
            pool = AddressPool.of(net)
            if not pool.is_reserved(nic["ip"]):
                pool.reserve(nic["ip"])
                net.update(pool.to_config())


def release_nic_ips(data: dict, nics: list[dict]) -> None:
    """Give the addresses of NICs on networks back to their pools (inside a config update)."""
    for nic in nics:
        net = data.get("networks", {}).get(nic.get("network") or "")
        if net is not None and nic.get("ip"):
            pool = AddressPool.of(net)
            try:
                if pool.is_reserved(nic["ip"], external=False):
                    pool.release(nic["ip"])
                    net.update(pool.to_config())
            except errors.OpPrereqError:
                pass        # an address outside the network (changed since): nothing to give back


def _new_mac(prefix: str, used: set[str]) -> str:
    for _ in range(1000):
        mac = prefix + "".join(f":{random.randrange(256):02x}" for _ in range(3))
        if mac not in used:
            return mac
    raise errors.OpPrereqError("no free MAC address left in the cluster's prefix", errors.ECode.NORES)
