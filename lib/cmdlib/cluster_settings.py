"""The cluster settings of gnt-cluster init/modify beyond parameter defaults, each checked as
Ganeti's LUClusterSetParams checks it: the user-id pool, node health maintenance, disk wiping,
the default allocator, reserved volumes, the DRBD usermode helper and the static resource state.
"""
from __future__ import annotations

import re

from genet import errors, params, uidpool
from genet.cmdlib.allocator import check_allocator
from genet.opcodes.group import DISK_STATE_DEFAULTS, HV_STATE_DEFAULTS

DEFAULT_DRBD_HELPER = "/bin/true"          # Ganeti's, set at init when drbd is enabled
# recorded as given (None: unchanged)
_PLAIN = ("maintain_node_health", "prealloc_wipe_disks", "default_iallocator_params", "reserved_lvs")


def checked_settings(lu, data) -> dict:
    """The cluster keys the opcode changes, with their new values; refuses what Ganeti refuses."""
    op, cluster = lu.op, data.cluster
    if op.max_tracked_jobs is not None:
        raise errors.OpPrereqError("--max-tracked-jobs cannot be set: Ganeti's scheduler watches the files of at"
                                   " most that many jobs with inotify and polls the rest; genet's scheduler keeps"
                                   " its jobs in memory and is told of every change, so it tracks no job files",
                                   errors.ECode.INVAL)
    values = {key: getattr(op, key) for key in _PLAIN if getattr(op, key) is not None}
    for pattern in op.reserved_lvs or []:
        try:
            re.compile(pattern)
        except re.error as err:
            raise errors.OpPrereqError(f"reserved volume {pattern!r} is not a regular expression: {err}",
                                       errors.ECode.INVAL) from None
    if op.default_iallocator is not None:
        check_allocator(op.default_iallocator or None)
        values["default_iallocator"] = op.default_iallocator
    if op.uid_pool is not None or op.add_uids or op.remove_uids:
        # in Ganeti's order: ranges added, then removed (each must be in the pool), then a whole
        # new pool replaces the result
        pool = uidpool.removed(uidpool.added(cluster.uid_pool, op.add_uids or []), op.remove_uids or [])
        values["uid_pool"] = op.uid_pool if op.uid_pool is not None else pool
    if op.drbd_helper is not None:
        values["drbd_usermode_helper"] = _drbd_helper(lu, data, op.drbd_helper)
    # the cluster's static resource state is kept filled in, as Ganeti's (the keys checked by their type)
    for key, defaults in (("hv_state", HV_STATE_DEFAULTS), ("disk_state", DISK_STATE_DEFAULTS)):
        if getattr(op, key):
            values[key] = {name: {**defaults, **state}
                           for name, state in params.changed_per_name(cluster[key], getattr(op, key)).items()}
    return values


def drbd_enabled(lu, data) -> bool:
    """Whether drbd is (or, by this opcode, becomes) an enabled disk template."""
    from genet.storage.units import enabled_templates
    wanted = lu.op.enabled_disk_templates
    return "drbd" in (wanted if wanted is not None else enabled_templates(data.cluster))


def _drbd_helper(lu, data, helper: str) -> str:
    """Ganeti's rules: no unsetting while drbd is enabled or used; a new helper must be the one
    the nodes' DRBD calls (nodes without the module loaded have none to compare)."""
    enabled = drbd_enabled(lu, data)
    if not helper:
        if enabled:
            raise errors.OpPrereqError("Cannot disable drbd helper while DRBD is enabled.", errors.ECode.WRONG_STATE)
        if any(inst.disk_template == "drbd" for inst in data.instances.values()):
            raise errors.OpPrereqError("Cannot disable drbd helper while drbd-based instances exist",
                                       errors.ECode.INVAL)
        return ""
    if not enabled:
        lu.feedback("Note that you specified a drbd user helper, but did not enable the drbd disk template.")
        return helper
    nodes = {n["name"]: n["primary_ip"] for n in data.nodes.values() if not n["offline"]}
    for name, res in sorted(lu.rpc.drbd_helper.on(nodes).items()):
        if res.failed:
            raise errors.OpPrereqError(f"Error checking drbd helper on node '{name}': {res.fail_msg}",
                                       errors.ECode.ENVIRON)
        if res.payload is None:
            lu.feedback(f"Not checking drbd helper on node {name}: its DRBD kernel module is not loaded")
        elif res.payload != helper:
            raise errors.OpPrereqError(f"Error on node '{name}': drbd helper is {res.payload}", errors.ECode.ENVIRON)
    return helper
