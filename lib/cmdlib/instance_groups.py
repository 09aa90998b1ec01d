"""Moving instances to the nodes of other node groups (gnt-instance change-group, gnt-group
evacuate), as Ganeti does: the LU plans each instance's moves and submits them as one job per
instance; its result names those jobs, ``{"jobs": [[true, JOB_ID], ...]}``, which the CLI then
follows. The allocator (-I, else the cluster's default) picks the nodes in the target groups
for each instance, with the moves planned before it counted.

The moves per disk template: shared disks (diskless, sharedfile) migrate a running instance
and fail a stopped one over; local disks (file, plain) migrate live with their disks, and a
stopped file instance is moved (copied); mirrored disks (mirror, drbd) first get their
secondary copy on a node of the target group, then the instance migrates or fails over to it,
then the copy left behind goes to a second node of the target group (Ganeti's change-group).
"""
from __future__ import annotations

from genet import errors, opcodes, params
from genet.cmdlib import iallocator
from genet.cmdlib.allocator import allocator
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import instance_of, refuse_forthcoming
from genet.cmdlib.group import group_by_name
from genet.cmdlib.hooks_env import instance_env
from genet.locking import ALL_SET, Level
from genet.storage import base as storage


class GroupPlanner:
    """The online vm-capable nodes of the target groups, and the allocator that places each
    instance on them; the memory the moves planned so far take is counted (so the instances of
    one evacuation spread out)."""

    def __init__(self, lu: LogicalUnit, leaving: set[str], wanted: list[str], what: str, name: str):
        data = lu.cfg.snapshot()
        if wanted:
            targets = {group_by_name(data, group)["uuid"]: group for group in wanted}
            for uuid, group in targets.items():
                if uuid in leaving:
                    raise errors.OpPrereqError(f"node group {group} cannot be a target: {what} leaves it",
                                               errors.ECode.INVAL)
        else:
            targets = {uuid: g["name"] for uuid, g in data.nodegroups.items() if uuid not in leaving}
        self.targets = sorted(targets)       # the target groups' UUIDs
        self.nodes = sorted(n["name"] for n in data.nodes.values()
                            if n["group"] in targets and n["vm_capable"] and not n["offline"] and not n["drained"])
        if not self.nodes:
            raise errors.OpPrereqError(f"no online vm-capable node in the target groups"
                                       f" ({', '.join(sorted(targets.values())) or 'none'})", errors.ECode.NORES)
        self.lu, self.name = lu, name
        self.reserved: dict[str, int] = {}

    def pick(self, inst, runs: bool, exclude: frozenset[str], count: int = 1) -> list[str]:
        """``count`` nodes (primary first, not in ``exclude``) the allocator places the instance on."""
        data = self.lu.cfg.snapshot()
        candidates = [n for n in self.nodes if n not in exclude]
        chosen = iallocator.place_existing(self.lu, self.name, data, inst, candidates, count, self.reserved)
        if runs:
            self.reserved[chosen[0]] = self.reserved.get(chosen[0], 0) + int(inst.beparams["maxmem"])
        return chosen


def instance_groups(data, inst) -> set[str]:
    return {data.nodes[node]["group"] for node in inst.all_nodes if node in data.nodes}


def moves(inst, planner: GroupPlanner, force_failover: bool, early_release: bool) -> list[opcodes.OpCode]:
    """The opcodes of one instance's job (see the module's docstring)."""
    refuse_forthcoming(inst)
    name, template = inst.name, storage.TEMPLATES.cls(inst.disk_template)
    runs = inst.admin_state == "up"
    migrate = runs and not force_failover

    def go(target: str) -> opcodes.OpCode:
        if migrate:     # an instance marked up but found stopped fails over (shared and mirrored disks)
            return opcodes.OpInstanceMigrate(instance_name=name, target_node=target,
                                             allow_failover=template.shared or template.mirrored)
        if template.shared or template.mirrored:
            return opcodes.OpInstanceFailover(instance_name=name, target_node=target)
        if template.moves_by_copy:
            return opcodes.OpInstanceMove(instance_name=name, target_node=target)
        raise errors.OpPrereqError(f"instance {name}: its {inst.disk_template} disks leave {inst.primary_node}"
                                   " only with a live migration" + (", which --force-failover rules out" if runs
                                                                    else ": start it first"),
                                   errors.ECode.WRONG_STATE)
    here = frozenset(inst.all_nodes)
    if not template.mirrored:
        return [go(planner.pick(inst, runs, here)[0])]
    first, second = planner.pick(inst, runs, here, 2)

    def secondary(node: str) -> opcodes.OpCode:
        return opcodes.OpInstanceReplaceDisks(instance_name=name, mode="replace_new_secondary", remote_node=node,
                                              early_release=early_release)
    return [secondary(first), go(first), secondary(second)]


def submit(lu: LogicalUnit, jobs: list[list[opcodes.OpCode]], sequential: bool = False) -> dict:
    """One job per instance, with the request's reason and priority; ``sequential``: each
    waits for the one before to end, however it ends."""
    wire = []
    for index, ops in enumerate(jobs):
        for op in ops:
            op.reason, op.priority = list(lu.op.reason), lu.op.priority
        if sequential and index:
            ops[0].depends = [[-1, []]]
        wire.append([op.to_dict() for op in ops])
    ids = lu.ctx.submit(wire) if wire else []
    for job_id, ops in zip(ids, jobs):
        lu.feedback(f"* job {job_id}: {', '.join(op.summary() for op in ops)}")
    return {"jobs": [[True, job_id] for job_id in ids]}


class LUInstanceChangeGroup(LogicalUnit):
    OPCODE = opcodes.OpInstanceChangeGroup
    REQ_BGL = False
    HPATH = "instance-change-group"
    HTYPE = "INSTANCE"

    def hooks_env(self):
        return {"TARGET_GROUPS": " ".join(self.planner.targets), **instance_env(self, self.inst)}

    def hooks_nodes(self):
        return [self.master_node()], [self.master_node()]

    def expand_names(self):
        self.allocator = allocator(self, self.op.iallocator)
        instance_of(self, self.op.instance_name)
        self.needed_locks[Level.INSTANCE] = [self.op.instance_name]
        self.share_locks[Level.INSTANCE] = True
        self.lock_all_nodes()

    def check_prereq(self):
        inst = self.inst = instance_of(self, self.op.instance_name)
        leaving = self.cfg.read(lambda d: instance_groups(d, inst))
        planner = self.planner = GroupPlanner(self, leaving, self.op.target_groups, f"instance {inst.name}",
                                              self.allocator)
        self.jobs = [moves(inst, planner, False, self.op.early_release)]

    def exec(self):
        return submit(self, self.jobs)


class LUGroupEvacuate(LogicalUnit):
    OPCODE = opcodes.OpGroupEvacuate
    REQ_BGL = False
    HPATH = "group-evacuate"
    HTYPE = "GROUP"

    def hooks_env(self):
        return {"GROUP_NAME": self.op.group_name, "TARGET_GROUPS": " ".join(self.targets)}

    def hooks_nodes(self):
        uuid = self.group["uuid"]
        nodes = [self.master_node(), *self.cfg.read(lambda d: sorted(n for n, node in d.nodes.items()
                                                                     if node["group"] == uuid))]
        return nodes, nodes

    def expand_names(self):
        self.allocator = allocator(self, self.op.iallocator)
        self.group = self.cfg.read(lambda d: group_by_name(d, self.op.group_name))
        self.needed_locks[Level.INSTANCE] = ALL_SET
        self.share_locks[Level.INSTANCE] = True
        self.lock_all_nodes()

    def check_prereq(self):
        uuid = self.group["uuid"]

        def inside(data):
            return sorted((params.filled(data, inst) for inst in data.instances.values()
                           if uuid in instance_groups(data, inst)), key=lambda inst: inst.name)
        instances = self.cfg.read(inside)
        self.jobs, self.targets = [], []
        if not instances:
            return
        planner = GroupPlanner(self, {uuid}, self.op.target_groups, f"the evacuation of {self.op.group_name}",
                               self.allocator)
        self.targets = planner.targets
        self.jobs = [moves(inst, planner, self.op.force_failover, self.op.early_release) for inst in instances]

    def exec(self):
        if not self.jobs:
            self.feedback(f"Node group {self.op.group_name} has no instances")
        return submit(self, self.jobs, self.op.sequential)
