"""gnt-instance modify -t: an instance's disks from one template to another, while it is down.

Each mirrored template keeps its primary's data where a single-node template does: mirror
uses the raw images of file, drbd the logical volumes of plain (``<uuid>.disk``, beside a
new meta data volume). So file → mirror and plain → drbd keep the primary's data, give
it a copy on the new secondary node and wait until that copy is in sync; mirror → file and
drbd → plain drop the secondary's copy and what the mirror added on the primary. The
configuration changes only once the disks are in their new shape, so a failure leaves the
instance as it was.
"""
from __future__ import annotations

import time

from genet import errors
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import check_node_online, check_template_enabled, storage_params
from genet.cmdlib.disks import (assemble_disks, create_disk_on, give_logical_ids, remove_disks, shutdown_disks,
                                wait_for_sync)
from genet.storage import base as storage


def conversions() -> set[tuple[str, str]]:
    """(from, to) template pairs modify -t handles: a mirrored template and the single-node one its
    data stays in (MirroredTemplate.single_node), both ways."""
    pairs = {(t.single_node, t.name) for t in storage.TEMPLATES.classes() if getattr(t, "single_node", "")}
    return pairs | {(b, a) for a, b in pairs}


def check_conversion(lu: LogicalUnit, inst: dict, template: str, remote_node: str | None) -> None:
    """Refuse what cannot be converted, before anything changes."""
    old = inst.disk_template
    if template == old:
        raise errors.OpPrereqError(f"instance {inst['name']} already uses disk template {old}", errors.ECode.INVAL)
    if (old, template) not in conversions():
        raise errors.OpPrereqError(f"converting disk template {old} to {template} is not supported (supported:"
                                   f" {', '.join(f'{a} to {b}' for a, b in sorted(conversions()))})",
                                   errors.ECode.INVAL)
    check_template_enabled(lu, template)
    if lu.op.disks or lu.op.nics:
        raise errors.OpPrereqError("a disk template conversion cannot be combined with disk or NIC changes",
                                   errors.ECode.INVAL)
    if inst.admin_state == "up":
        raise errors.OpPrereqError(f"instance {inst['name']} must be stopped (gnt-instance shutdown) for a disk"
                                   " template conversion", errors.ECode.WRONG_STATE)
    if storage.TEMPLATES.cls(template).mirrored:
        if remote_node is None:
            raise errors.OpPrereqError(f"converting to {template} needs the secondary node (-n NODE)",
                                       errors.ECode.INVAL)
        if remote_node == inst.primary_node:
            raise errors.OpPrereqError(f"the secondary node must differ from the primary ({remote_node})",
                                       errors.ECode.INVAL)
        node = check_node_online(lu, remote_node)
        if not node["vm_capable"]:
            raise errors.OpPrereqError(f"node {remote_node} is not vm capable", errors.ECode.WRONG_STATE)
        qcow2 = [i for i, d in enumerate(inst.disks) if d.get("format", "raw") != "raw"]
        if qcow2:
            raise errors.OpPrereqError(f"disk {qcow2[0]} of {inst['name']} is not raw; mirrored disks are raw"
                                       " images", errors.ECode.INVAL)
        adopted = [i for i, d in enumerate(inst.disks) if isinstance(d.get("logical_id"), list)]
        if adopted:
            raise errors.OpPrereqError(f"disk {adopted[0]} of {inst['name']} is an adopted volume"
                                       f" ({'/'.join(inst['disks'][adopted[0]]['logical_id'])}); {template} keeps"
                                       " its data in the volume named after the disk", errors.ECode.INVAL)
    elif remote_node is not None:
        raise errors.OpPrereqError(f"-n is only used when converting to a mirrored template, not to {template}",
                                   errors.ECode.INVAL)


def convert(lu: LogicalUnit, inst: dict, template: str, remote_node: str | None) -> list:
    if storage.TEMPLATES.cls(template).mirrored:
        return _to_mirrored(lu, inst, template, remote_node)
    return _to_single(lu, inst, template)


def _record(lu: LogicalUnit, name: str, template: str, secondaries: list[str], disks: list[dict]) -> None:
    def change(data):
        target = data.instances[name]
        target.update(disk_template=template, secondary_nodes=secondaries, disks=disks,
                      serial_no=target["serial_no"] + 1, mtime=time.time())
    lu.cfg.update(change)


def _to_mirrored(lu: LogicalUnit, inst: dict, template: str, secondary: str) -> list:
    sp, primary = storage_params(lu), inst.primary_node
    disks = [dict(d) for d in inst.disks]
    mirrored = inst.replace(disk_template=template, secondary_nodes=[secondary], disks=disks)
    give_logical_ids(lu, mirrored)
    created = 0                                   # disks made on the secondary, removed on failure
    try:
        for node in (primary, secondary):         # on the primary: the mirror's additions only
            for index, disk in enumerate(disks):
                create_disk_on(lu, node, inst.name, template, disk, index)
                if node == secondary:
                    created = index + 1
        lu.feedback(f"* copying the disks of {inst['name']} from {primary} to {secondary}")
        assemble_disks(lu, mirrored, force=True)  # the primary's data is the data
        wait_for_sync(lu, mirrored)
    except errors.GenericError:
        shutdown_disks(lu, mirrored, strict=False)
        lu.rpc.blockdev_shutdown(primary, inst.name, template, disks, sp, True)
        remove_disks(lu, mirrored, secondary, created)
        raise
    _record(lu, inst.name, template, [secondary], disks)
    shutdown_disks(lu, mirrored)       # the instance is down: its next start assembles them
    return [["disk_template", template], ["secondary_nodes", [secondary]]]


def _to_single(lu: LogicalUnit, inst: dict, template: str) -> list:
    primary, old_secondaries = inst.primary_node, inst.get("secondary_nodes", [])
    shutdown_disks(lu, inst)
    disks = [{k: v for k, v in d.items() if k != "logical_id"} for d in inst.disks]
    _record(lu, inst.name, template, [], disks)
    res = lu.rpc.blockdev_shutdown(primary, inst.name, inst.disk_template, inst.disks, storage_params(lu),
                                   True)
    if res.failed:
        lu.feedback(f"Warning: what the {inst['disk_template']} template added on {primary} stays: {res.fail_msg}")
    for node in old_secondaries:
        if lu.node(node)["offline"]:
            lu.feedback(f"Warning: {node} is offline; remove its copy of {inst['name']} by hand when it is back")
            continue
        for failure in remove_disks(lu, inst, node):
            lu.feedback(f"Warning: the copy on {node} stays: {failure}")
    return [["disk_template", template], ["secondary_nodes", []]]
