"""gnt-instance modify -t: an instance's disks from one template to another, while it is down.

file → mirror keeps the primary's images (both templates keep raw images in the same
place) and gives them a copy on the new secondary node; mirror → file drops the
secondary's copy. The configuration changes only once the disks are in their new
shape, so a failure leaves the instance as it was.
"""
from __future__ import annotations

import time

from genet import errors
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.instance import (assemble_disks, check_node_online, give_logical_ids, node_address, node_call,
                                   remove_disks, storage_params, wait_for_sync)

CONVERSIONS = {("file", "mirror"), ("mirror", "file")}


def check_conversion(lu: LogicalUnit, inst: dict, template: str, remote_node: str | None) -> None:
    """Refuse what cannot be converted, before anything changes."""
    old = inst["disk_template"]
    if template == old:
        raise errors.OpPrereqError(f"instance {inst['name']} already uses disk template {old}", errors.ECode.INVAL)
    if (old, template) not in CONVERSIONS:
        raise errors.OpPrereqError(f"converting disk template {old} to {template} is not supported (supported:"
                                   f" {', '.join(f'{a} to {b}' for a, b in sorted(CONVERSIONS))})",
                                   errors.ECode.INVAL)
    if lu.op.disks or lu.op.nics:
        raise errors.OpPrereqError("a disk template conversion cannot be combined with disk or NIC changes",
                                   errors.ECode.INVAL)
    if inst["admin_state"] == "up":
        raise errors.OpPrereqError(f"instance {inst['name']} must be stopped (gnt-instance shutdown) for a disk"
                                   " template conversion", errors.ECode.WRONG_STATE)
    if template == "mirror":
        if remote_node is None:
            raise errors.OpPrereqError("converting to mirror needs the secondary node (-n NODE)", errors.ECode.INVAL)
        if remote_node == inst["primary_node"]:
            raise errors.OpPrereqError(f"the secondary node must differ from the primary ({remote_node})",
                                       errors.ECode.INVAL)
        node = check_node_online(lu, remote_node)
        if not node["vm_capable"]:
            raise errors.OpPrereqError(f"node {remote_node} is not vm capable", errors.ECode.WRONG_STATE)
        qcow2 = [i for i, d in enumerate(inst["disks"]) if d.get("format", "raw") != "raw"]
        if qcow2:
            raise errors.OpPrereqError(f"disk {qcow2[0]} of {inst['name']} is not raw; mirrored disks are raw"
                                       " images", errors.ECode.INVAL)
    elif remote_node is not None:
        raise errors.OpPrereqError(f"-n is only used when converting to mirror, not to {template}",
                                   errors.ECode.INVAL)


def convert(lu: LogicalUnit, inst: dict, template: str, remote_node: str | None) -> list:
    if template == "mirror":
        return _to_mirror(lu, inst, remote_node)
    return _to_file(lu, inst)


def _record(lu: LogicalUnit, name: str, template: str, secondaries: list[str], disks: list[dict]) -> None:
    def change(data):
        target = data["instances"][name]
        target.update(disk_template=template, secondary_nodes=secondaries, disks=disks,
                      serial_no=target["serial_no"] + 1, mtime=time.time())
    lu.cfg.update(change)


def _to_mirror(lu: LogicalUnit, inst: dict, secondary: str) -> list:
    sp = storage_params(lu)
    disks = [dict(d) for d in inst["disks"]]
    mirrored = dict(inst, disk_template="mirror", secondary_nodes=[secondary], disks=disks)
    lu.cfg.read(lambda data: give_logical_ids(data, mirrored))
    created = 0
    try:
        for index, disk in enumerate(disks):
            lu.feedback(f"* creating disk {index} ({disk['size']} MiB) on {secondary}")
            node_call(lu, secondary, "blockdev_create", inst["name"], "mirror", disk, index, sp, timeout=300,
                      what=f"creating disk {index} on {secondary}")
            created = index + 1
        lu.feedback(f"* copying the disks of {inst['name']} from {inst['primary_node']} to {secondary}")
        assemble_disks(lu, mirrored)
        wait_for_sync(lu, mirrored)
    except errors.GenericError:
        for node in (inst["primary_node"], secondary):
            lu.ctx.rpc.call(node, node_address(lu, node), "blockdev_shutdown",
                            [inst["name"], "mirror", disks, sp])
        remove_disks(lu, mirrored, secondary, created)
        raise
    _record(lu, inst["name"], "mirror", [secondary], disks)
    _shutdown(lu, mirrored)            # the instance is down: its next start assembles them
    return [["disk_template", "mirror"], ["secondary_nodes", [secondary]]]


def _to_file(lu: LogicalUnit, inst: dict) -> list:
    old_secondaries = inst.get("secondary_nodes", [])
    _shutdown(lu, inst)
    disks = [{k: v for k, v in d.items() if k != "logical_id"} for d in inst["disks"]]
    _record(lu, inst["name"], "file", [], disks)
    for node in old_secondaries:
        if lu.node(node)["offline"]:
            lu.feedback(f"Warning: {node} is offline; remove its copy of {inst['name']} by hand when it is back")
            continue
        for failure in remove_disks(lu, inst, node):
            lu.feedback(f"Warning: the copy on {node} stays: {failure}")
    return [["disk_template", "file"], ["secondary_nodes", []]]


def _shutdown(lu: LogicalUnit, inst: dict) -> None:
    """Stop the storage daemons of a mirrored instance on both nodes."""
    for node in [inst["primary_node"], *inst.get("secondary_nodes", [])]:
        if not lu.node(node)["offline"]:
            node_call(lu, node, "blockdev_shutdown", inst["name"], inst["disk_template"], inst["disks"],
                      storage_params(lu), what="stopping the disks' storage daemons")
