"""Network logical units: add, remove, modify, connect to and disconnect from node groups.

A network is an entry of ``data.networks`` (keyed by UUID) with its address pool
(genet.network_pool). A node group connected to it records, under
``group["networks"][network uuid]``, the NIC ``mode``, ``link`` and ``vlan`` its
instances use there. Instance NICs name their network in ``nic["network"]``.
Every LU here changes the configuration under the exclusive cluster lock.
"""
from __future__ import annotations

import ipaddress
import re
import time
import uuid as uuidlib

from genet import errors, opcodes
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.group import add_object, group_by_name, instances_in_group, touch
from genet.cmdlib.hooks_env import network_env
from genet.cmdlib.tags import _check_tags
from genet.network_pool import AddressPool, nic_users

_VLAN = re.compile(r"[.:]?\d+(:\d+)*")


def network_by_name(data: dict, name: str) -> dict:
    for net in data.networks.values():
        if net["name"] == name:
            return net
    raise errors.OpPrereqError(f"network {name!r} does not exist", errors.ECode.NOENT)


def connected_groups(data: dict, net_uuid: str) -> list[str]:
    return sorted(g["name"] for g in data.nodegroups.values() if net_uuid in g.get("networks", {}))


def _check_gateway(pool: AddressPool, gateway: str) -> None:
    if not pool.contains(gateway):
        raise errors.OpPrereqError(f"gateway {gateway} is outside network {pool.net}", errors.ECode.INVAL)
    if gateway in (str(pool.net.network_address), str(pool.net.broadcast_address)):
        raise errors.OpPrereqError(f"gateway {gateway} is the network or broadcast address of {pool.net}",
                                   errors.ECode.INVAL)


def _check_inside(pool: AddressPool, address: str, action: str) -> None:
    if not pool.contains(address):
        raise errors.OpPrereqError(f"cannot {action} {address}: it is outside network {pool.net}",
                                   errors.ECode.INVAL)


def _check_ipv6(network6: str | None, gateway6: str | None) -> None:
    if network6 and gateway6 and ipaddress.IPv6Address(gateway6) not in ipaddress.IPv6Network(network6):
        raise errors.OpPrereqError(f"IPv6 gateway {gateway6} is outside IPv6 network {network6}",
                                   errors.ECode.INVAL)


def _check_overlaps(data: dict, network: str | None, network6: str | None, skip: str | None = None) -> None:
    """Refuse a network (or IPv6 network) that shares addresses with another network's."""
    for other in sorted(data.networks.values(), key=lambda n: n["name"]):
        if other["uuid"] == skip:
            continue
        if network and ipaddress.IPv4Network(other["network"]).overlaps(ipaddress.IPv4Network(network)):
            raise errors.OpPrereqError(f"network {network} overlaps network {other['name']!r}"
                                       f" ({other['network']})", errors.ECode.NOTUNIQUE)
        if network6 and other.get("network6") and \
                ipaddress.IPv6Network(other["network6"]).overlaps(ipaddress.IPv6Network(network6)):
            raise errors.OpPrereqError(f"IPv6 network {network6} overlaps the IPv6 network of network"
                                       f" {other['name']!r} ({other['network6']})", errors.ECode.NOTUNIQUE)


class LUNetworkAdd(LogicalUnit):
    """Define a network; its pool starts with the network, broadcast and gateway addresses taken."""
    OPCODE = opcodes.OpNetworkAdd
    HPATH, HTYPE = "network-add", "NETWORK"

    def hooks_env(self):
        op = self.op
        return network_env({"name": op.network_name, "network": op.network, "gateway": op.gateway,
                            "network6": op.network6, "gateway6": op.gateway6, "mac_prefix": op.mac_prefix,
                            "tags": op.tags})

    def hooks_nodes(self):
        return self.on_master()

    def check_prereq(self):
        op = self.op
        _check_tags(op.tags)
        data = self.cfg.snapshot()
        if any(n["name"] == op.network_name for n in data.networks.values()):
            raise errors.OpPrereqError(f"network {op.network_name!r} already exists", errors.ECode.EXISTS)
        _check_overlaps(data, op.network, op.network6)
        _check_ipv6(op.network6, op.gateway6)
        pool = AddressPool.create(op.network)
        if op.gateway:
            _check_gateway(pool, op.gateway)
            pool.reserve(op.gateway, external=True)
        for address in op.add_reserved_ips or []:
            _check_inside(pool, address, "reserve")
            if pool.is_reserved(address):
                self.feedback(f"Address {address} is reserved already")
            else:
                pool.reserve(address, external=True)
        if op.conflicts_check:
            self._reserve_cluster_addresses(data, pool)
        self.pool = pool

    def _reserve_cluster_addresses(self, data: dict, pool: AddressPool) -> None:
        """Addresses of the nodes and of the master inside the network are not for instances."""
        owners = [(data.cluster["master_ip"], "the cluster's master address")]
        for node in sorted(data.nodes.values(), key=lambda n: n["name"]):
            owners += [(node["primary_ip"], f"the primary address of node {node['name']}"),
                       (node["secondary_ip"], f"the secondary address of node {node['name']}")]
        for address, owner in owners:
            try:
                inside = pool.contains(address)
            except ValueError:      # a node with an IPv6 or odd address
                continue
            if inside and not pool.is_reserved(address):
                pool.reserve(address, external=True)
                self.feedback(f"Reserved {address} ({owner}) in network {self.op.network_name}")

    def exec(self):
        op = self.op
        ts = time.time()
        net = {"name": op.network_name, "uuid": str(uuidlib.uuid4()), "network": op.network,
               "gateway": op.gateway, "network6": op.network6, "gateway6": op.gateway6,
               "mac_prefix": op.mac_prefix, **self.pool.to_config(), "tags": sorted(set(op.tags)),
               "ctime": ts, "mtime": ts, "serial_no": 1}
        return add_object(self, "networks", net, f"Network {op.network_name} ({op.network}) added")


class LUNetworkRename(LogicalUnit):
    OPCODE = opcodes.OpNetworkRename
    HPATH, HTYPE = "network-rename", "NETWORK"

    def hooks_env(self):
        return {"OLD_NAME": self.op.network_name, "NEW_NAME": self.op.new_name}

    def hooks_nodes(self):
        """The master and the nodes of the groups the network is connected to."""
        nodes = [self.master_node(), *self.cfg.read(lambda d: sorted(
            n for n, node in d.nodes.items() if self.net_uuid in d.nodegroups[node["group"]].get("networks", {})))]
        return nodes, nodes

    def check_prereq(self):
        def check(data):
            net = network_by_name(data, self.op.network_name)
            if any(n["name"] == self.op.new_name for n in data.networks.values()):
                raise errors.OpPrereqError(f"cannot rename network {net['name']!r}: a network {self.op.new_name!r}"
                                           " already exists", errors.ECode.EXISTS)
            return net["uuid"]
        self.net_uuid = self.cfg.read(check)

    def exec(self):
        def change(data):
            net = data.networks[self.net_uuid]
            net["name"] = self.op.new_name
            touch(net)
        self.cfg.update(change)
        return True


class LUNetworkRemove(LogicalUnit):
    OPCODE = opcodes.OpNetworkRemove
    HPATH, HTYPE = "network-remove", "NETWORK"

    def hooks_env(self):
        return {"NETWORK_NAME": self.op.network_name}

    def hooks_nodes(self):
        return self.on_master()

    def check_prereq(self):
        data = self.cfg.snapshot()
        net = network_by_name(data, self.op.network_name)
        users = nic_users(data, net)
        if users:
            names = sorted({name for name, _ in users})
            raise errors.OpPrereqError(f"network {net['name']!r} is used by instance(s) {', '.join(names)};"
                                       " remove their NICs from it first", errors.ECode.WRONG_STATE)
        groups = connected_groups(data, net["uuid"])
        if groups and not self.op.force:
            raise errors.OpPrereqError(f"network {net['name']!r} is still connected to node group(s)"
                                       f" {', '.join(groups)}; disconnect it first (gnt-network disconnect)"
                                       " or use --force", errors.ECode.WRONG_STATE)
        self.net_uuid, self.groups = net["uuid"], groups

    def exec(self):
        def change(data):
            for group in data.nodegroups.values():
                if group.get("networks", {}).pop(self.net_uuid, None) is not None:
                    touch(group)
            del data.networks[self.net_uuid]
        self.cfg.update(change)
        for group in self.groups:
            self.feedback(f"Disconnected network {self.op.network_name} from node group {group}")
        self.feedback(f"Network {self.op.network_name} removed")
        return True


class LUNetworkSetParams(LogicalUnit):
    """Everything but the IPv4 network itself can change; reservations move with the gateway."""
    OPCODE = opcodes.OpNetworkSetParams
    HPATH, HTYPE = "network-modify", "NETWORK"

    def hooks_env(self):
        net = self.cfg.read(lambda d: dict(d.networks[self.net_uuid]))
        return network_env({**net, **self.values})

    def hooks_nodes(self):
        return self.on_master()
    KEYS = ("gateway", "network6", "gateway6", "mac_prefix", "add_reserved_ips", "remove_reserved_ips")

    def check_prereq(self):
        op = self.op
        if all(getattr(op, key) is None for key in self.KEYS):
            raise errors.OpPrereqError(f"no changes requested: give at least one of {', '.join(self.KEYS)}",
                                       errors.ECode.INVAL)
        data = self.cfg.snapshot()
        net = network_by_name(data, op.network_name)
        pool = AddressPool.of(net)
        values = {k: net.get(k) for k in ("gateway", "network6", "gateway6", "mac_prefix")}
        for key in values:
            change = getattr(op, key)
            if change is not None:
                values[key] = None if change == opcodes.CLEAR else change
        if op.gateway is not None and values["gateway"] != net.get("gateway"):
            if net.get("gateway") and pool.is_reserved(net["gateway"], external=True):
                pool.release(net["gateway"], external=True)
            if values["gateway"]:
                _check_gateway(pool, values["gateway"])
                if pool.is_reserved(values["gateway"]):
                    raise errors.OpPrereqError(f"gateway {values['gateway']} is already reserved or used by an"
                                               f" instance in network {net['name']!r}", errors.ECode.NOTUNIQUE)
                pool.reserve(values["gateway"], external=True)
        _check_overlaps(data, None, values["network6"], skip=net["uuid"])
        _check_ipv6(values["network6"], values["gateway6"])
        for address in op.add_reserved_ips or []:
            _check_inside(pool, address, "reserve")
            if pool.is_reserved(address, external=True):
                self.feedback(f"Address {address} is reserved already")
                continue
            pool.reserve(address, external=True)      # refuses an address an instance uses
        for address in op.remove_reserved_ips or []:
            _check_inside(pool, address, "release")
            if address == values["gateway"]:
                raise errors.OpPrereqError(f"cannot release {address}: it is the gateway of network"
                                           f" {net['name']!r}; change the gateway first", errors.ECode.INVAL)
            if address in (str(pool.net.network_address), str(pool.net.broadcast_address)):
                pool.release(address, external=True)   # refuses, naming the reason
            if not pool.is_reserved(address, external=True):
                self.feedback(f"Address {address} is not reserved externally; nothing to release")
                continue
            pool.release(address, external=True)
        self.net_uuid, self.values, self.pool = net["uuid"], values, pool

    def exec(self):
        op = self.op
        changes = [[key, str(self.values[key]) if self.values[key] else "none"]
                   for key in ("gateway", "network6", "gateway6", "mac_prefix") if getattr(op, key) is not None]
        if op.add_reserved_ips:
            changes.append(["add_reserved_ips", ",".join(op.add_reserved_ips)])
        if op.remove_reserved_ips:
            changes.append(["remove_reserved_ips", ",".join(op.remove_reserved_ips)])

        def change(data):
            net = data.networks[self.net_uuid]
            net.update(self.values)
            net.update(self.pool.to_config())
            touch(net)
        self.cfg.update(change)
        return changes


class _GroupLinkLU(LogicalUnit):
    """Connect or disconnect a network and a group: check_prereq sets ``noop``, ``group_uuid`` and
    ``net_uuid``, and ``netparams`` (the link's mode, link and VLAN, None if there is none);
    ``link`` changes the group's networks and says what it did."""
    HTYPE = "NETWORK"

    def hooks_env(self):
        net = self.cfg.read(lambda d: dict(network_by_name(d, self.op.network_name)))
        env = {"GROUP_NAME": self.op.group_name, **network_env(net)}
        if self.netparams:
            env.update(GROUP_NETWORK_MODE=self.netparams["mode"], GROUP_NETWORK_LINK=self.netparams["link"],
                       GROUP_NETWORK_VLAN=self.netparams.get("vlan"))
        return env

    def hooks_nodes(self):
        """The nodes of the group."""
        nodes = self.cfg.read(lambda d: sorted(n for n, node in d.nodes.items()
                                               if node["group"] == group_by_name(d, self.op.group_name)["uuid"]))
        return nodes, nodes

    def link(self, networks: dict) -> str:
        raise NotImplementedError

    def exec(self):
        if self.noop:
            return False
        done = []

        def change(data):
            group = data.nodegroups[self.group_uuid]
            done.append(self.link(group.setdefault("networks", {})))
            touch(group)
        self.cfg.update(change)
        self.feedback(done[-1])
        return True


class LUNetworkConnect(_GroupLinkLU):
    """Record the NIC mode, link and VLAN of a network in a node group."""
    OPCODE = opcodes.OpNetworkConnect
    HPATH = "network-connect"

    def check_prereq(self):
        op = self.op
        if op.network_mode in ("bridged", "openvswitch") and not op.network_link:
            raise errors.OpPrereqError(f"NIC mode {op.network_mode} needs a link (the bridge or switch)",
                                       errors.ECode.INVAL)
        if op.network_vlan and not _VLAN.fullmatch(op.network_vlan):
            raise errors.OpPrereqError(f"invalid VLAN {op.network_vlan!r}: use .ID (untagged), :ID[:ID...]"
                                       " (tagged) or ID", errors.ECode.INVAL)
        if op.network_vlan and op.network_mode != "openvswitch":
            raise errors.OpPrereqError(f"a VLAN needs NIC mode openvswitch, not {op.network_mode}",
                                       errors.ECode.INVAL)
        data = self.cfg.snapshot()
        group = group_by_name(data, op.group_name)
        net = network_by_name(data, op.network_name)
        self.wanted = self.netparams = {"mode": op.network_mode, "link": op.network_link, "vlan": op.network_vlan}
        current = group.get("networks", {}).get(net["uuid"])
        self.noop = current == self.wanted
        if self.noop:
            self.feedback(f"Network {net['name']} is already connected to node group {group['name']}")
        elif current is not None:
            raise errors.OpPrereqError(
                f"network {net['name']!r} is already connected to node group {group['name']!r} with mode"
                f" {current['mode']}, link {current['link']!r}; disconnect it first", errors.ECode.WRONG_STATE)
        conflicts = []
        pool = AddressPool(net["network"])
        for inst in instances_in_group(data, group["uuid"]):
            for idx, nic in enumerate(inst.get("nics", [])):
                if not nic.get("network") and nic.get("ip"):
                    try:
                        inside = pool.contains(nic["ip"])
                    except ValueError:
                        continue
                    if inside:
                        conflicts.append(f"NIC {idx} of instance {inst['name']} has address {nic['ip']}")
        if conflicts and op.conflicts_check:
            raise errors.OpPrereqError(f"addresses of node group {group['name']!r} conflict with network"
                                       f" {net['name']!r} ({net['network']}): {'; '.join(conflicts)};"
                                       " use --no-conflicts-check to connect anyway", errors.ECode.WRONG_STATE)
        for conflict in conflicts:
            self.feedback(f"Warning: {conflict} in network {net['name']}, but does not use it")
        self.group_uuid, self.net_uuid = group["uuid"], net["uuid"]

    def link(self, networks: dict) -> str:
        networks[self.net_uuid] = dict(self.wanted)
        return (f"Connected network {self.op.network_name} to node group {self.op.group_name}"
                f" (mode {self.op.network_mode}, link {self.op.network_link})")


class LUNetworkDisconnect(_GroupLinkLU):
    OPCODE = opcodes.OpNetworkDisconnect
    HPATH = "network-disconnect"

    def check_prereq(self):
        data = self.cfg.snapshot()
        group = group_by_name(data, self.op.group_name)
        net = network_by_name(data, self.op.network_name)
        self.netparams = group.get("networks", {}).get(net["uuid"])
        self.noop = self.netparams is None
        if self.noop:
            self.feedback(f"Network {net['name']} is not connected to node group {group['name']}")
            return
        members = {i["name"] for i in instances_in_group(data, group["uuid"])}
        users = sorted({name for name, _ in nic_users(data, net) if name in members})
        if users:
            raise errors.OpPrereqError(f"network {net['name']!r} is used by instance(s) {', '.join(users)} in"
                                       f" node group {group['name']!r}; cannot disconnect it",
                                       errors.ECode.WRONG_STATE)
        self.group_uuid, self.net_uuid = group["uuid"], net["uuid"]

    def link(self, networks: dict) -> str:
        del networks[self.net_uuid]
        return f"Disconnected network {self.op.network_name} from node group {self.op.group_name}"
