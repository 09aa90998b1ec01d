"""The hooks' variables Ganeti gives every opcode on an instance or a network (doc/hooks.rst),
built once here for the logical units (genet.hooks adds the prefixes)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genet import config, params
from genet.storage import base as storage

if TYPE_CHECKING:
    from genet.cmdlib.base import LogicalUnit

# Ganeti's names of the parts of a disk's logical_id, per template (the others: driver and path)
_LOGICAL_ID_PARTS = {"plain": ("VG", "ID"), "ext": ("PROVIDER", "ID"), "diskless": (),
                     "drbd": ("PNODE", "SNODE", "PORT", "PMINOR", "SMINOR")}


def network_env(net: dict, prefix: str = "") -> dict[str, Any]:
    """A network's variables (Ganeti's Network.HooksDict): the unset addresses are left out."""
    env = {f"{prefix}NETWORK_NAME": net["name"], f"{prefix}NETWORK_UUID": net.get("uuid", ""),
           f"{prefix}NETWORK_TAGS": " ".join(net.get("tags", []))}
    for key, var in (("network", "SUBNET"), ("gateway", "GATEWAY"), ("network6", "SUBNET6"),
                     ("gateway6", "GATEWAY6"), ("mac_prefix", "MAC_PREFIX")):
        if net.get(key):
            env[f"{prefix}NETWORK_{var}"] = net[key]
    return env


def instance_env(lu: "LogicalUnit", inst, **override) -> dict[str, Any]:
    """Every instance variable of Ganeti's hooks for ``inst`` (a config record, as recorded or
    filled); ``override`` replaces parts for what an opcode is about to make (modify's new NICs
    and memory, add's whole instance): name, primary, secondaries, status, nics, disks, beparams,
    hvparams, tags."""
    data = lu.cfg.snapshot()
    parts: dict[str, Any] = {
        "name": inst.name, "primary": inst.primary_node, "secondaries": list(inst.get("secondary_nodes", [])),
        "os": inst.os, "status": inst.admin_state, "template": inst.disk_template, "hypervisor": inst.hypervisor,
        "nics": list(inst.nics), "disks": list(inst.disks), "tags": list(inst.get("tags", [])),
        "beparams": params.beparams(data, inst), "hvparams": params.hvparams(data, inst)}
    return instance_env_of(data, {**parts, **override})


def instance_env_of(data, parts: dict[str, Any]) -> dict[str, Any]:
    """The instance variables from their parts (see instance_env), for an instance that is not
    in the config yet (gnt-instance add)."""
    be = parts["beparams"]
    env: dict[str, Any] = {
        "OP_TARGET": parts["name"], "INSTANCE_NAME": parts["name"], "INSTANCE_PRIMARY": parts["primary"],
        "INSTANCE_SECONDARIES": " ".join(parts["secondaries"]), "INSTANCE_OS_TYPE": parts["os"],
        "INSTANCE_STATUS": parts["status"], "INSTANCE_MINMEM": be.get("minmem"),
        "INSTANCE_MAXMEM": be.get("maxmem"), "INSTANCE_MEMORY": be.get("maxmem"),
        "INSTANCE_VCPUS": be.get("vcpus"), "INSTANCE_DISK_TEMPLATE": parts["template"],
        "INSTANCE_HYPERVISOR": parts["hypervisor"], "INSTANCE_NIC_COUNT": len(parts["nics"]),
        "INSTANCE_DISK_COUNT": len(parts["disks"]), "INSTANCE_TAGS": " ".join(parts["tags"])}
    networks = data.get("networks", {})
    for index, nic in enumerate(parts["nics"]):
        env.update(_nic_env(index, nic, networks))
    template = storage.get(parts["template"], config.storage_params(data)) if parts["disks"] else None
    for index, disk in enumerate(parts["disks"]):
        env.update(_disk_env(index, disk, parts, template))
    env.update({f"INSTANCE_BE_{key}": value for key, value in be.items()})
    env.update({f"INSTANCE_HV_{key}": value for key, value in parts["hvparams"].items()})
    return env


def _nic_env(index: int, nic: dict, networks: dict) -> dict[str, Any]:
    prefix = f"INSTANCE_NIC{index}_"
    env: dict[str, Any] = {}
    if nic.get("name"):
        env[f"{prefix}NAME"] = nic["name"]
    env.update({f"{prefix}UUID": nic.get("uuid"), f"{prefix}IP": nic.get("ip") or "",
                f"{prefix}MAC": nic.get("mac"), f"{prefix}MODE": nic.get("mode"),
                f"{prefix}LINK": nic.get("link"), f"{prefix}VLAN": nic.get("vlan")})
    net = networks.get(nic.get("network")) if nic.get("network") else None
    if net is not None:
        env.update(network_env(net, prefix))
    elif nic.get("network"):
        env[f"{prefix}NETWORK_NAME"] = nic["network"]
    if nic.get("mode") in ("bridged", "openvswitch"):
        env[f"{prefix}BRIDGE"] = nic.get("link")
    return env


def _disk_env(index: int, disk: dict, parts: dict, template) -> dict[str, Any]:
    prefix = f"INSTANCE_DISK{index}_"
    env: dict[str, Any] = {}
    if disk.get("logical_id") is not None and template is not None:
        logical_id = template.ganeti_logical_id(parts["name"], disk, index)
        names = _LOGICAL_ID_PARTS.get(parts["template"], ("DRIVER", "ID"))
        env.update({f"{prefix}{name}": value for name, value in zip(names, logical_id)})
        env[f"{prefix}DEV_TYPE"] = parts["template"]
    if disk.get("name"):
        env[f"{prefix}NAME"] = disk["name"]
    env.update({f"{prefix}UUID": disk.get("uuid", ""), f"{prefix}SIZE": disk.get("size", ""),
                f"{prefix}MODE": disk.get("mode") or "rw"})
    return env


def instance_nodes(lu: "LogicalUnit", inst) -> tuple[list[str], list[str]]:
    """Ganeti's usual hooks nodes of an instance opcode: the master and the instance's nodes."""
    nodes = [lu.master_node(), inst.primary_node, *inst.get("secondary_nodes", [])]
    return nodes, nodes
