"""The disk and NIC fields of instances, from one table per device kind: each per-device value
gives a list field over all devices (``disk.sizes``) and one field per index up to Ganeti's
maxima (``disk.size/0`` .. ``disk.size/15``, ``nic.mac/0`` .. ``nic.mac/7``)."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from genet.query.common import UNAVAIL, Field, Table, ordinal


class DeviceField(NamedTuple):
    list_name: str         # the list over all devices
    list_title: str
    list_doc: str
    name: str              # the per-index field is name/N
    title: str             # titled title/N
    doc: str               # with {} for the ordinal ("2nd")
    kind: str              # of the per-index field; the list field is "other"
    get: Callable[[dict, Any], Any]     # (device, context) -> value, None when it has none


def _nic_param(key: str, *modes: str) -> Callable[[dict, Any], Any]:
    """A NIC's parameter, or None when the NIC's mode is not one of ``modes`` (given any)."""
    return lambda nic, ctx: nic.get(key) if not modes or nic.get("mode") in modes else None


def _network_name(nic: dict, ctx) -> str | None:
    net = nic.get("network")
    return ctx.data.get("networks", {}).get(net, {}).get("name") if net else None


_NIC_LIST = "List containing each network interface's "

DISK_FIELDS = (
    DeviceField("disk.sizes", "Disk_sizes", "List of disk sizes", "disk.size", "Disk",
                "Disk size of {} disk", "unit", lambda d, c: d.get("size")),
    DeviceField("disk.spindles", "Disk_spindles", "List of disk spindles", "disk.spindles", "DiskSpindles",
                "Spindles of {} disk", "number", lambda d, c: d.get("spindles")),
    DeviceField("disk.names", "Disk_names", "List of disk names", "disk.name", "DiskName",
                "Name of {} disk", "text", lambda d, c: d.get("name")),
    DeviceField("disk.uuids", "Disk_UUIDs", "List of disk UUIDs", "disk.uuid", "DiskUUID",
                "UUID of {} disk", "text", lambda d, c: d.get("uuid")),
)

NIC_FIELDS = (
    DeviceField("nic.macs", "NIC_MACs", _NIC_LIST + "MAC address", "nic.mac", "NicMAC",
                "MAC address of {} network interface", "text", _nic_param("mac")),
    DeviceField("nic.ips", "NIC_IPs", _NIC_LIST + "IP address", "nic.ip", "NicIP",
                "IP address of {} network interface", "text", _nic_param("ip")),
    DeviceField("nic.names", "NIC_Names", _NIC_LIST + "name", "nic.name", "NicName",
                "Name address of {} network interface", "text", _nic_param("name")),
    DeviceField("nic.uuids", "NIC_UUIDs", _NIC_LIST + "UUID", "nic.uuid", "NicUUID",
                "UUID address of {} network interface", "text", _nic_param("uuid")),
    DeviceField("nic.modes", "NIC_modes", _NIC_LIST + "mode", "nic.mode", "NicMode",
                "Mode of {} network interface", "text", _nic_param("mode")),
    DeviceField("nic.links", "NIC_links", _NIC_LIST + "link", "nic.link", "NicLink",
                "Link of {} network interface", "text", _nic_param("link")),
    DeviceField("nic.vlans", "NIC_VLANs", _NIC_LIST + "VLAN", "nic.vlan", "NicVLAN",
                "VLAN of {} network interface", "text", _nic_param("vlan", "bridged", "openvswitch")),
    DeviceField("nic.bridges", "NIC_bridges", _NIC_LIST + "bridge", "nic.bridge", "NicBridge",
                "Bridge of {} network interface", "text", _nic_param("link", "bridged")),
    DeviceField("nic.networks", "NIC_networks", "List containing each interface's network", "nic.network",
                "NicNetwork", "Network of {} network interface", "text", _nic_param("network")),
    DeviceField("nic.networks.names", "NIC_networks_names",
                "List containing the name of each interface's network", "nic.network.name", "NicNetworkName",
                "Network name of {} network interface", "text", _network_name),
)


def _list_getter(devices: str, get: Callable) -> Callable:
    return lambda inst, ctx: [get(dev, ctx) for dev in inst.get(devices, [])]


def _index_getter(devices: str, index: int, get: Callable) -> Callable:
    def value(inst, ctx):
        items = inst.get(devices, [])
        found = get(items[index], ctx) if index < len(items) else None
        return UNAVAIL if found is None else found
    return value


def device_fields(devices: str, count: tuple[str, str, str], table: tuple[DeviceField, ...],
                  maximum: int) -> Table:
    """The count field (name, title, doc), the list fields and ``maximum`` per-index fields of each
    of ``table``'s values."""
    name, title, doc = count
    fields: Table = {name: Field(title, "number", doc, lambda inst, ctx: len(inst.get(devices, [])))}
    for f in table:
        fields[f.list_name] = Field(f.list_title, "other", f.list_doc, _list_getter(devices, f.get))
    for index in range(maximum):
        for f in table:
            fields[f"{f.name}/{index}"] = Field(f"{f.title}/{index}", f.kind, f.doc.format(ordinal(index + 1)),
                                                _index_getter(devices, index, f.get))
    return fields


def _max_items(param: str) -> int:
    """How many disks or NICs an instance may have (the creation opcode's limit, Ganeti's maxima)."""
    from genet.opcodes.instance import OpInstanceCreate
    return next(p.type.max_items for p in OpInstanceCreate.all_params() if p.name == param)


def instance_device_fields() -> Table:
    return {**device_fields("disks", ("disk.count", "Disks", "Number of disks"), DISK_FIELDS, _max_items("disks")),
            **device_fields("nics", ("nic.count", "NICs", "Number of network interfaces"), NIC_FIELDS,
                            _max_items("nics"))}
