"""gnt-cluster modify's settings of Ganeti's optional features, checked as Ganeti checks them:
the compression tools of disk copies, the helper VM images, the instance communication
network, user shutdown and the data collectors."""
from __future__ import annotations

import re

from genet import collectors, compression, errors, opcodes
from genet.cmdlib.base import LogicalUnit

# Ganeti's instance communication network: link-local, between a node and its guests only
COMMUNICATION_NETWORK = {"network": "169.254.0.0/16", "network6": "fe80::/10", "mac_prefix": "52:54:00"}
COMMUNICATION_LINK = {"network_mode": "routed", "network_link": "communication_rt"}
_URL = re.compile(r"(https?|ftps?)://")


def check_image(image: str, what: str) -> str:
    """A helper VM's image is an absolute path on the nodes or a URL."""
    if not (_URL.match(image) or image.startswith("/")):
        raise errors.OpPrereqError(f"{what} image must be an absolute path or a URL", errors.ECode.INVAL)
    return image


def checked(lu: LogicalUnit, data) -> dict:
    """The cluster settings the opcode changes, checked: {config key: new value}."""
    op, cluster, values = lu.op, data.cluster, {}
    if op.compression_tools is not None:
        values["compression_tools"] = compression.check_tools(op.compression_tools)
    for key, what in (("install_image", "Install"), ("zeroing_image", "Zeroing")):
        if getattr(op, key) is not None:
            values[key] = check_image(getattr(op, key), what)
    if op.enabled_user_shutdown is not None:
        values["enabled_user_shutdown"] = op.enabled_user_shutdown
    if op.enabled_data_collectors or op.data_collector_interval:
        try:
            values["data_collectors"] = collectors.changed(cluster.data_collectors, op.enabled_data_collectors,
                                                           op.data_collector_interval)
        except ValueError as err:
            raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
    name = op.instance_communication_network
    if name is not None:
        found = [net for net in data.networks.values() if net["name"] == name]
        if found:
            check_communication_network(lu, found[0])
        values["instance_communication_network"] = name
    return values


def check_communication_network(lu: LogicalUnit, net: dict) -> None:
    """An existing network may serve instance communication; what differs from Ganeti's
    link-local one is a risk worth a warning."""
    if not net.get("network"):
        raise errors.OpPrereqError(f"Supplied instance communication network '{net['name']}' must have an IPv4"
                                   " network address.", errors.ECode.INVAL)
    for what, value, default in (("has an IPv4 gateway", net.get("gateway"), None),
                                 ("has a non-standard IPv4 network address", net.get("network"),
                                  COMMUNICATION_NETWORK["network"]),
                                 ("has an IPv6 gateway", net.get("gateway6"), None),
                                 ("has a non-standard IPv6 network address", net.get("network6"),
                                  COMMUNICATION_NETWORK["network6"]),
                                 ("has a non-standard MAC prefix", net.get("mac_prefix"),
                                  COMMUNICATION_NETWORK["mac_prefix"])):
        if value != default:
            lu.feedback(f"Warning: Supplied instance communication network '{net['name']}' {what} '{value}',"
                        f" this might pose a security risk (default is '{default}').")


def apply_communication_network(lu: LogicalUnit, old: str, data) -> dict | None:
    """After the change: say what changes for whom and, as Ganeti does, submit one job that makes
    the network (if missing) and connects it to every node group not connected yet."""
    from genet.cmdlib.instance_groups import submit
    name = lu.op.instance_communication_network
    if name == old:
        lu.feedback(f"Instance communication network already is '{name}', nothing to do.")
        return None
    if old and any(net["name"] == old for net in data.networks.values()):
        lu.feedback(f"Previous instance communication network '{old}' should be removed manually.")
    if not name:
        lu.feedback("Disabling instance communication network, only new instances will be affected.")
        return None
    lu.feedback(f"Changing instance communication network to '{name}', only new instances will be affected.")
    found = [net for net in data.networks.values() if net["name"] == name]
    ops: list[opcodes.OpCode] = [] if found else [opcodes.OpNetworkAdd(network_name=name, **COMMUNICATION_NETWORK)]
    for group in sorted(data.nodegroups.values(), key=lambda g: g["name"]):
        if not found or found[0]["uuid"] not in group.get("networks", {}):
            ops.append(opcodes.OpNetworkConnect(group_name=group["name"], network_name=name, **COMMUNICATION_LINK))
    return submit(lu, [ops]) if ops else None


def collector_fields(cluster) -> dict:
    """The data collectors as Ganeti's QueryClusterInfo shows them: whether each is active, and
    its interval in microseconds."""
    found = collectors.settings(cluster.data_collectors)
    return {"enabled_data_collectors": {name: c["active"] for name, c in found.items()},
            "data_collector_interval": {name: c["interval"] for name, c in found.items()}}
