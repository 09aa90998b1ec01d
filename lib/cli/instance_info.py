"""gnt-instance info: an instance's details (OpInstanceQueryData's answer) in Ganeti's layout and
with Ganeti's key names, which its QA and admins' scripts read as YAML."""
from __future__ import annotations

from genet.cli import info

VNC_BASE_PORT = 5900


def nodes(inst: dict) -> list:
    secondaries = ", ".join(f"{name} (group {group}, group UUID {uuid})" for name, group, uuid in
                            zip(inst["snodes"], inst["snodes_group_names"], inst["snodes_group_uuids"]))
    return [[("primary", inst["pnode"]), ("group", f"{inst['pnode_group_name']} (UUID {inst['pnode_group_uuid']})")],
            [("secondaries", secondaries)]]


def console(inst: dict) -> str | None:
    """Where the VNC console listens, as Ganeti words it; None without VNC."""
    address = inst["hv_actual"].get("vnc_bind_address")
    port = inst.get("network_port")
    if not address or port is None:
        return None
    display = int(port) - VNC_BASE_PORT
    if address == "0.0.0.0":
        return f"vnc to {inst['pnode']}:{port} (display {display})"
    if address.startswith("/"):
        return f"vnc to {inst['pnode']}:{address}"
    return f"vnc to {address}:{port} (node {inst['pnode']}) (display {display})"


def nic(index: int, nic: list, roman: bool) -> list:
    name, uuid, ip, mac, mode, link, vlan, _network, netinfo = nic
    return [(f"nic/{info.number(index, roman)}", ""), ("MAC", str(mac)), ("IP", str(ip)), ("mode", str(mode)),
            ("link", str(link)), ("vlan", str(info.number(vlan, roman) if vlan is not None else "")),
            ("network", str(netinfo["name"] if netinfo else None)), ("UUID", str(uuid)), ("name", str(name))]


def device_status(disk: dict, status: list | None, roman: bool) -> str:
    """One side of a disk: its device, and for a mirror whether it is in sync (Ganeti's words)."""
    if not status:
        return "not active"
    path, major, minor, sync_percent, eta, degraded, ldisk = status
    text = f"{path} ({'N/A' if major is None else info.number(major, roman)}:" \
           f"{'N/A' if minor is None else info.number(minor, roman)})"
    if disk.get("drbd_info") is not None or disk.get("mirror") is not None:
        if sync_percent is None:
            sync = "in sync"
        else:
            sync = f"*RECOVERING* {sync_percent:5.2f}%, ETA " + (f"{info.number(eta, roman)}s" if eta else "unknown")
        text += f" {sync}, status {'*DEGRADED*' if degraded else 'ok'}"
        text += {3: " *MISSING DISK*", 2: " *UNCERTAIN STATE*"}.get(ldisk, "")
    elif ldisk == 3:
        text += " *FAILED* (failed drive?)"
    return text


def disk(index: int, disk: dict, roman: bool) -> list:
    entries = [(disk["iv_name"] or f"disk {info.number(index, roman)}",
                f"{disk['dev_type']}, size {info.size(disk['size'], roman)}")]
    if disk.get("spindles") is not None:
        entries.append(("spindles", disk["spindles"]))
    entries.append(("access mode", disk["mode"]))
    drbd = disk.get("drbd_info")
    if drbd:
        entries += [("nodeA", f"{drbd['primary_node']}, minor={info.number(drbd['primary_minor'], roman)}"),
                    ("nodeB", f"{drbd['secondary_node']}, minor={info.number(drbd['secondary_minor'], roman)}"),
                    ("port", str(info.number(drbd["port"], roman)))]
    elif disk.get("logical_id") is not None:
        logical_id = disk["logical_id"]
        # Ganeti's logical ids are tuples: plain's (vg, lv) shows as vg/lv, others as Python writes them
        entries.append(("logical_id", "/".join(logical_id) if disk["dev_type"] == "plain"
                        else str(tuple(logical_id)) if isinstance(logical_id, list) else str(logical_id)))
    if disk.get("pstatus"):
        entries.append(("on primary", device_status(disk, disk["pstatus"], roman)))
    if disk.get("sstatus"):
        entries.append(("on secondary", device_status(disk, disk["sstatus"], roman)))
    if disk.get("mirror") is not None:          # genet's word for the mirror, beside Ganeti's
        entries.append(("mirror state", mirror_state(disk["mirror"])))
    entries += [("name", disk.get("name")), ("UUID", disk["uuid"])]
    return entries


def mirror_state(mirror: dict) -> str:
    """What the primary says of a mirrored disk: in sync, syncing 45%, degraded, stale."""
    from genet.rpc_defs import MirrorStatus
    from genet.storage.base import sync_label
    return sync_label(MirrorStatus.from_wire(mirror))


def entries(inst: dict, roman: bool = False) -> list:
    """One instance's info entries, in Ganeti's order."""
    state = f"configured to be {inst['config_state']}"
    if inst["run_state"]:
        state += f", actual state is {inst['run_state']}"
    shown = [("Instance name", inst["name"]), ("UUID", inst["uuid"]),
             ("Serial number", str(info.number(inst["serial_no"], roman))),
             ("Creation time", info.timestamp(inst["ctime"])),
             ("Modification time", info.timestamp(inst["mtime"])),
             ("State", state), ("Nodes", nodes(inst)), ("Operating system", inst["os"]),
             ("Operating system parameters", info.params(inst["os_instance"], inst["os_actual"], roman)),
             ("Allocated network port", str(info.number(inst.get("network_port"), roman))),
             ("Hypervisor", inst["hypervisor"])]
    if (vnc := console(inst)) is not None:
        shown.append(("console connection", vnc))
    backend = dict(inst["be_actual"], memory=inst["be_actual"].get("maxmem"))   # Ganeti still shows "memory"
    shown += [("Hypervisor parameters", info.params(inst["hv_instance"], inst["hv_actual"], roman)),
              ("Back-end parameters", info.params(inst["be_instance"], backend, roman)),
              ("NICs", [nic(i, n, roman) for i, n in enumerate(inst["nics"])]),
              ("Disk template", inst["disk_template"]),
              ("Disks", [disk(i, d, roman) for i, d in enumerate(inst["disks"])])]
    return shown
