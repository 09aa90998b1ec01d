"""Starting and stopping an instance on its primary node (mirrored disks assembled first)."""
from __future__ import annotations

from genet import errors
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import applied, storage_params
from genet.cmdlib.disks import assemble_disks


def start_instance(lu: LogicalUnit, inst: dict, force: bool = False,
                   unreachable: frozenset[str] = frozenset(), paused: bool = False) -> dict:
    """Start on the primary node (mirrored disks assembled first, ``force`` and ``unreachable``
    as there; ``paused``: the guest's CPUs wait); raises OpExecError with the node's reason."""
    assemble_disks(lu, inst, force, unreachable=unreachable)
    res = lu.rpc.instance_start(inst.primary_node, applied(lu, inst), storage_params(lu), paused)
    if res.failed:
        raise errors.OpExecError(f"could not start instance {inst['name']} on {inst['primary_node']}:"
                                 f" {res.fail_msg}")
    return res.payload


def stop_instance(lu: LogicalUnit, inst: dict, timeout: float, force: bool = False) -> None:
    res = lu.rpc.instance_stop(inst.primary_node, inst.name, inst.hypervisor, timeout, force)
    if res.failed:
        raise errors.OpExecError(f"could not stop instance {inst['name']} on {inst['primary_node']}:"
                                 f" {res.fail_msg}")


def clear_leftover(lu: LogicalUnit, inst: dict) -> None:
    """A guest that powered itself off leaves its process; remove it before touching the disks."""
    info = lu.rpc.instance_info(inst.primary_node, inst.name, inst.hypervisor).raise_on_error()
    if info and info.get("state") != "running":
        stop_instance(lu, inst, 0, force=True)
