"""Creating several instances at once (gnt-instance batch-create, RAPI instances-multi-alloc),
as Ganeti's OpInstanceMultiAlloc: the nodes of the instances that name none are chosen
together by the allocator (one multi-allocate request: each instance placed on the cluster as
the ones before it left it), then each instance is created by a job of its own. An instance
the allocator cannot place is listed as failed, not created."""
from __future__ import annotations

from genet import errors, opcodes, params
from genet.cmdlib import iallocator
from genet.cmdlib.allocator import allocator, check_allocator
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.group import group_by_name
from genet.cmdlib.instance_groups import submit
from genet.locking import Level
from genet.storage import base as storage


def _mirrored(request: dict) -> bool:
    """Whether the request's template keeps a second copy (it then needs a secondary node)."""
    try:
        return storage.TEMPLATES.cls(request["disk_template"]).mirrored
    except LookupError:
        return False          # an unknown template: its own job refuses it


class LUInstanceMultiAlloc(LogicalUnit):
    OPCODE = opcodes.OpInstanceMultiAlloc
    REQ_BGL = False

    def expand_names(self):
        op = self.op
        given = []
        for request in op.instances:
            if request.get("iallocator") is not None:
                raise errors.OpPrereqError("iallocator are not allowed to be set on instance objects",
                                           errors.ECode.INVAL)
            given.append(bool(request.get("pnode")))
            if _mirrored(request):
                given.append(bool(request.get("snode")) or ":" in (request.get("pnode") or ""))
        if any(given) and not all(given):
            raise errors.OpPrereqError("There are instance objects providing pnode/snode while others do not",
                                       errors.ECode.INVAL)
        names = [request["instance_name"] for request in op.instances]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise errors.OpPrereqError(f"There are duplicate instance names: {', '.join(twice)}", errors.ECode.INVAL)
        self.allocate = not any(given)
        if self.allocate:
            self.iallocator = allocator(self, op.iallocator)
        else:
            check_allocator(op.iallocator)
        self.needed_locks[Level.NODE] = []        # only the nodes' memory is read; the creations lock

    def check_prereq(self):
        self.requests = [dict(request) for request in self.op.instances]
        self.failed: list[str] = []
        if self.allocate:
            data = self.cfg.snapshot()
            request = {"type": "multi-allocate", "instances": [self._described(data, r) for r in self.requests]}
            groups = {r.get("group_name") for r in self.requests}
            if len(groups) > 1:      # Ganeti's request names one group for all of them
                raise errors.OpPrereqError("the instances of one multi-allocation are placed in one node group:"
                                           f" they name {', '.join(sorted(str(g) for g in groups))}",
                                           errors.ECode.INVAL)
            if groups != {None}:
                request["group_name"] = groups.pop()
            placed, failed = iallocator.allocate(self, self.iallocator, data, request)
            nodes = dict((name, chosen) for name, chosen in placed)
            for request in self.requests:
                if request["instance_name"] in nodes:
                    request["pnode"] = ":".join(nodes[request["instance_name"]])
            self.failed = [name for name, _ in failed]

    def _described(self, data, request: dict) -> dict:
        """One instance of the multi-allocate request."""
        hypervisor = request.get("hypervisor") or data.cluster["enabled_hypervisors"][0]
        wanted = {"hypervisor": hypervisor, "os": request.get("os_type") or "noop",
                  "beparams": params.normalised_beparams(request.get("beparams") or {})}
        be = params.beparams(data, wanted)
        out = iallocator.new_instance(request["instance_name"], request["disk_template"], request.get("disks") or [],
                                      request.get("nics") or [], int(be["maxmem"]), int(be["vcpus"]),
                                      int(be.get("spindle_use", 1)), wanted["os"], hypervisor, request.get("tags") or [])
        if request.get("group_name"):
            group_by_name(data, request["group_name"])
        return out

    def exec(self):
        placed = [request for request in self.requests if request["instance_name"] not in self.failed]
        for name in self.failed:
            self.feedback(f"Warning: the allocator could not place instance {name}; it is not created")
        result = submit(self, [[opcodes.OpInstanceCreate(**request)] for request in placed])
        return {**result, "allocatable": [request["instance_name"] for request in placed], "failed": self.failed}
