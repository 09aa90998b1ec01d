"""gnt-node modify --maintenance yes: the node is drained and emptied of its primary instances
(and, asked so, of its secondary copies) in one job, then recorded as in maintenance.

``MaintenancePlan`` is made in the prerequisites and refuses there whatever they can tell
(an instance whose disks cannot leave the node, a target without the memory, a mirror peer
that is itself in maintenance), so a refusal changes nothing; ``run`` acts, one move at a time,
each in the job's log.
"""
from __future__ import annotations

from genet import errors, params
from genet.cmdlib import iallocator
from genet.cmdlib.allocator import allocator
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.migration import MovePlan
from genet.cmdlib.replace_disks import replace_mirror
from genet.objects import Instance
from genet.storage import base as storage


def _instances(lu: LogicalUnit, on_node) -> list[Instance]:
    """The instances (parameters filled in) for which ``on_node(instance)`` holds, by name."""
    return lu.cfg.read(lambda d: sorted((params.filled(d, i) for i in d.instances.values() if on_node(i)),
                                        key=lambda i: i["name"]))


class MaintenancePlan:
    """Where each primary instance of the node goes, and each secondary copy when they move."""

    def __init__(self, lu: LogicalUnit, node: str, move_secondaries: bool):
        self.lu, self.node = lu, node
        primaries = _instances(lu, lambda i: i["primary_node"] == node)
        for inst in primaries:
            template = storage.get(inst.disk_template)
            if not (template.shared or template.mirrored):
                raise errors.OpPrereqError(
                    f"instance {inst['name']} uses disk template {inst['disk_template']!r}, whose disks are"
                    f" neither mirrored nor shared: it cannot be migrated off {node} for maintenance; move it"
                    " first (gnt-instance migrate copies its disks, gnt-instance modify -t mirror mirrors"
                    " them)", errors.ECode.WRONG_STATE)
        reserved: dict[str, int] = {}
        self.moves = [MovePlan(lu, inst, None, need_running=False, reserved=reserved) for inst in primaries]
        for plan in self.moves:
            if lu.node(plan.target)["maintenance"]:
                raise errors.OpPrereqError(f"instance {plan.inst['name']} can only move to {plan.target}, which"
                                           " is in maintenance too", errors.ECode.WRONG_STATE)
        secondaries = _instances(lu, lambda i: node in i.get("secondary_nodes", [])) if move_secondaries else []
        data = lu.cfg.snapshot()
        name = allocator(lu, None) if secondaries else None
        self.new_secondaries = [(inst, iallocator.relocate(lu, name, data, inst, node)) for inst in secondaries]

    def run(self) -> None:
        """Running instances migrate live, stopped ones change node (a failover of nothing
        running), each move saying so in the log; then the secondary copies move."""
        for plan in self.moves:
            if plan.running:
                plan.migrate()
            else:
                plan.failover(False, 120)
        for inst, new in self.new_secondaries:
            self.lu.feedback(f"* moving the secondary copy of {inst['name']} from {self.node} to {new}")
            replace_mirror(self.lu, inst, "replace_new_secondary", new, [])
