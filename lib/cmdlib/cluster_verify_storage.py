"""What gnt-cluster verify checks of the nodes' storage, as Ganeti's verify does: volumes of the
cluster's volume group that no disk holds (ENODEORPHANLV, a warning; the cluster's reserved_lvs
are left out), and the usermode helper the nodes' DRBD runs (ENODEDRBDHELPER)."""
from __future__ import annotations

import re
from typing import Callable

from genet import config
from genet.cmdlib.node_storage import volume_owners
from genet.storage import base as storage
from genet.storage.units import enabled_templates

Report = Callable[[str, str, str, str], None]      # (code, kind, name, message)


def verify_storage(rpc, data, reachable: dict[str, str], error: Report, warning: Report) -> None:
    """Ask the reachable nodes; report problems through ``error`` and ``warning``."""
    if not reachable:
        return
    enabled = enabled_templates(data.cluster)
    if any(storage.TEMPLATES.cls(t).in_volume_group for t in enabled if t in storage.names()):
        _orphan_volumes(rpc, data, {n: a for n, a in reachable.items() if data.nodes[n]["vm_capable"]}, warning)
    helper = data.cluster.drbd_usermode_helper
    if helper and "drbd" in enabled:
        _drbd_helper(rpc, helper, reachable, error)


def _orphan_volumes(rpc, data, nodes: dict[str, str], warning: Report) -> None:
    """Nodes that cannot list their volumes (no LVM there) are not looked at, as in Ganeti."""
    params = config.storage_params(data)
    vg = params["volume_group_name"]
    owned = set(volume_owners(data, params))
    reserved = [re.compile(f"(?:{pattern})$") for pattern in data.cluster.reserved_lvs]
    for node, res in sorted(rpc.node_volumes.on(nodes, params).items()):
        if res.failed:
            continue
        for volume in sorted({f"{v['vg']}/{v['name']}" for v in res.payload if v["vg"] == vg}):
            if (node, volume) not in owned and not any(r.match(volume) for r in reserved):
                warning("ENODEORPHANLV", "node", node, f"volume {volume} is unknown")


def _drbd_helper(rpc, helper: str, nodes: dict[str, str], error: Report) -> None:
    """A node without the DRBD module loaded has no helper to compare (its drbd template is
    unusable there, which gnt-storage diagnose tells)."""
    for node, res in sorted(rpc.drbd_helper.on(nodes).items()):
        if res.failed:
            error("ENODEDRBDHELPER", "node", node, f"drbd usermode helper check unsuccessful: {res.fail_msg}")
        elif res.payload is not None and res.payload != helper:
            error("ENODEDRBDHELPER", "node", node, f"wrong drbd usermode helper: {res.payload}")
