"""Creating several instances at once (gnt-instance batch-create, RAPI instances-multi-alloc),
as Ganeti's OpInstanceMultiAlloc: the nodes of the instances that name none are chosen
together (most free memory, less what the instances before took), then each instance is
created by a job of its own. An instance no node can take is listed as failed, not created."""
from __future__ import annotations

from genet import errors, opcodes, params
from genet.cmdlib.allocator import allocator, check_allocator
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.group import group_by_name
from genet.cmdlib.instance_groups import submit
from genet.locking import Level
from genet.storage import base as storage


def _mirrored(request: dict) -> bool:
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
            allocator(self, op.iallocator)
        else:
            check_allocator(op.iallocator)
        self.needed_locks[Level.NODE] = []        # only the nodes' memory is read; the creations lock

    def check_prereq(self):
        self.requests = [dict(request) for request in self.op.instances]
        self.failed: list[str] = []
        if self.allocate:
            data = self.cfg.snapshot()
            free: dict[str, dict[str, int]] = {}
            for request in self.requests:
                if not self._place(data, request, free):
                    self.failed.append(request["instance_name"])

    def _place(self, data, request: dict, free: dict[str, dict[str, int]]) -> bool:
        """Set the request's nodes: most free memory among the online vm-capable nodes (of its
        group, if it names one), the memory it needs taken off; False if none can take it."""
        hypervisor = request.get("hypervisor") or data.cluster["enabled_hypervisors"][0]
        wanted = {"hypervisor": hypervisor, "os": request.get("os_type") or "noop",
                  "beparams": params.normalised_beparams(request.get("beparams") or {})}
        need = params.beparams(data, wanted)["maxmem"]
        group = group_by_name(data, request["group_name"])["uuid"] if request.get("group_name") else None
        if hypervisor not in free:
            nodes = {n["name"]: n["primary_ip"] for n in data.nodes.values()
                     if n["vm_capable"] and not n["offline"] and not n["drained"]}
            results = self.rpc.hv_node_info.on(nodes, hypervisor)
            free[hypervisor] = {name: int(res.payload["memory_free"]) for name, res in results.items()
                                if not res.failed}
        room = free[hypervisor]
        fitting = sorted((name for name in room if room[name] >= need and group in (None, data.nodes[name]["group"])),
                         key=lambda name: (-room[name], name))
        count = 2 if _mirrored(request) else 1
        if len(fitting) < count:
            return False
        chosen = fitting[:count]
        for name in chosen:
            room[name] -= need
        request["pnode"] = ":".join(chosen)
        return True

    def exec(self):
        placed = [request for request in self.requests if request["instance_name"] not in self.failed]
        for name in self.failed:
            self.feedback(f"Warning: no node can take instance {name}; it is not created")
        result = submit(self, [[opcodes.OpInstanceCreate(**request)] for request in placed])
        return {**result, "allocatable": [request["instance_name"] for request in placed], "failed": self.failed}
