"""Instance HA inside genet-masterd: genet.ha.recovery's environment over the master's config,
node RPC and job queue, and the thread that runs it.

Every step recovery takes is an ordinary job, so it is in the queue and its log for the admin:
the fence is one job (the node's out-of-band power-off, then power-status, which must say off),
setting the node offline another, each failover one more. The heartbeat (genet.masterd) tells
``heard`` which nodes answered and which mirrored instances their primaries hold in sync; the
thread ticks the recovery once per heartbeat interval. Its alerts are what gnt-cluster verify
reports as ENODEHA.
"""
from __future__ import annotations

import logging
import threading
import types
from typing import TYPE_CHECKING

from genet import errors, oob, opcodes, params
from genet.ha import recovery, settings
from genet.jobs import FINAL_NAMES
from genet.query.common import RS_NORMAL

if TYPE_CHECKING:
    from genet.masterd import MasterContext

log = logging.getLogger("genet-masterd")
JOB_TIMEOUT = 600.0     # seconds a recovery job may take (a failover waits for a slow guest)


class MasterEnv:
    """genet.ha.recovery.Env over a running master."""

    def __init__(self, ctx: "MasterContext"):
        self.ctx = ctx
        self.synced: set[str] = set()      # instances whose primary last reported their mirrors in sync

    def nodes(self) -> dict[str, recovery.NodeView]:
        from genet.cmdlib.node_oob import oob_program
        data = self.ctx.cfg.snapshot()
        return {name: recovery.NodeView(name=name, offline=node["offline"], drained=node["drained"],
                                        maintenance=bool(node.get("maintenance", False)),
                                        vm_capable=node["vm_capable"], oob=bool(oob_program(data, node)))
                for name, node in data.nodes.items()}

    def instances(self) -> dict[str, recovery.InstanceView]:
        data = self.ctx.cfg.snapshot()
        views = {}
        for name, inst in data.instances.items():
            be = params.beparams(data, inst)
            secondaries = [n for n in inst.get("secondary_nodes", []) or []]
            views[name] = recovery.InstanceView(
                name=name, primary=inst["primary_node"], secondary=secondaries[0] if secondaries else None,
                template=inst["disk_template"], memory=int(be["maxmem"]), ha=bool(be.get("ha", False)),
                priority=int(be.get("ha_priority", 0)), admin_up=inst["admin_state"] == "up")
        return views

    def master(self) -> str:
        return self.ctx.node_name

    def memory_free(self, node: str) -> int:
        hypervisor = self.ctx.cfg.read(lambda d: d.cluster["enabled_hypervisors"][0])
        res = self.ctx.rpc.hv_node_info(node, hypervisor)
        return 0 if res.failed else int(res.payload["memory_free"])

    def power_off(self, node: str) -> str | None:
        ok, job = self._run([opcodes.OpOobCommand(node_names=[node], command=oob.POWER_OFF, ignore_status=True),
                             opcodes.OpOobCommand(node_names=[node], command=oob.POWER_STATUS)])
        if not ok:
            return job
        (_, (off_status, _)), = job["opresult"][0]
        (_, (status, answer)), = job["opresult"][1]
        if off_status != RS_NORMAL or status != RS_NORMAL:
            return f"its out-of-band program failed (job {job['id']}: {_warnings(job)})"
        if answer.get(oob.POWERED, True):
            return f"its out-of-band program says it is still powered after power-off (job {job['id']})"
        return None

    def liveness_expired(self, node: str) -> bool:
        return False        # the watchdog's liveness lease lives on the etcd store (not run yet)

    def set_offline(self, node: str) -> str | None:
        ok, job = self._run([opcodes.OpNodeSetParams(node_name=node, offline=True)])
        return None if ok else job

    def copy_in_sync(self, instance: str) -> bool:
        return instance in self.synced

    def allocate(self, instance: str, exclude: set[str]) -> str | None:
        """The cluster's allocator's answer to a relocation away from the dead primary (it
        leaves out offline and drained nodes itself; a pick in ``exclude`` is refused)."""
        from genet.cmdlib import iallocator
        data = self.ctx.cfg.snapshot()
        inst = data.instances[instance]
        try:
            target = iallocator.relocate(types.SimpleNamespace(rpc=self.ctx.rpc), data.cluster["default_iallocator"],
                                         data, inst, inst["primary_node"])
        except errors.GenericError as err:
            log.warning("instance HA: no node for %s: %s", instance, err)
            return None
        return None if target in exclude else target

    def failover(self, instance: str, node: str, target: str) -> str | None:
        primary = self.ctx.cfg.read(lambda d: d.instances[instance]["primary_node"] if instance in d.instances
                                    else None)
        if primary != node:
            return f"{instance} is no longer on {node} (it is on {primary})"
        ok, job = self._run([opcodes.OpInstanceFailover(instance_name=instance, ignore_consistency=True,
                                                        target_node=target)])
        return None if ok else job

    def _run(self, ops: list) -> tuple[bool, dict | str]:
        """Submit ``ops`` as one job and wait for its end: (True, the job) or (False, why not)."""
        try:
            job_id = self.ctx.submit([[op.to_dict() for op in ops]])[0]
        except errors.GenericError as err:
            return False, f"could not submit the job: {err}"
        serial, info = None, None
        deadline = self.ctx.clock.monotonic() + JOB_TIMEOUT
        while self.ctx.clock.monotonic() < deadline:
            change = self.ctx.queue.wait_for_change(job_id, ["status"], info, serial, 10.0)
            if isinstance(change, dict):
                info = change["job_info"]
                serial = max([serial or 0] + [entry[0] for entry in change["log_entries"]])
                if info[0] in FINAL_NAMES:
                    break
        found = self.ctx.queue.get(job_id)
        job = {**found[0], "id": job_id} if found else {"id": job_id, "status": "unknown"}
        if job.get("status") != "success":
            return False, f"job {job_id} ended {job.get('status')}: {_error_of(job)}"
        return True, job


def _warnings(job: dict) -> str:
    lines = [entry[3] for log_ in job.get("oplog", []) for entry in log_]
    return "; ".join(str(line).strip(" -") for line in lines) or "no output"


def _error_of(job: dict) -> str:
    for result in job.get("opresult") or []:
        if isinstance(result, (list, tuple)) and len(result) == 2 and isinstance(result[1], (list, tuple)):
            return " ".join(str(part) for part in result[1][:1]) or str(result)
    return _warnings(job)


class MasterRecovery:
    """The recovery loop of a running master, fed by its heartbeat."""

    def __init__(self, ctx: "MasterContext"):
        self.ctx = ctx
        self.env = MasterEnv(ctx)
        timing = settings.timing(ctx.cfg.read(lambda d: d.cluster.get("ha", {})))
        self.recovery = recovery.Recovery(self.env, ctx.clock, timing, lambda text: log.warning("%s", text))
        self._lock = threading.Lock()
        self._heard: dict[str, float] = {}

    def heard(self, node: str, synced: list[str] | None) -> None:
        """A heartbeat answer of ``node`` (from the heartbeat's thread)."""
        with self._lock:
            self._heard[node] = self.ctx.clock.monotonic()
            primaries = self.ctx.cfg.read(lambda d: {i for i, inst in d.instances.items()
                                                     if inst["primary_node"] == node})
            self.env.synced = (self.env.synced - primaries) | set(synced or ())

    def alerts(self) -> dict[str, str]:
        return dict(self.recovery.alerts)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.recovery.timing.heartbeat):
            try:
                self.round()
            except Exception:       # one bad round must not end instance HA on this master
                log.exception("instance HA round failed")

    def round(self) -> None:
        """Pass on the heartbeat answers since the last round, then let the recovery act."""
        with self._lock:
            heard, self._heard = self._heard, {}
        for node, when in heard.items():
            self.recovery.heard(node, when)
        self.recovery.tick()
