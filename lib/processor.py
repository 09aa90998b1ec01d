"""Runs jobs: a scheduler, a pool of worker threads, locks per logical unit, dependencies.

The scheduler hands queued jobs to free workers in Ganeti's order: by priority, then id, at most
max_running_jobs at once, as the job filter rules and the reason rate limits allow
(genet.filters): a paused or rate-limited job stays queued and is looked at again whenever
something changes (a job ends, a rule or a priority changes), a rejected one is canceled. A job
whose dependencies are unfinished is parked (status waiting), giving its worker back, and queued
again when the last of them ends.
"""
from __future__ import annotations

import logging
import queue as queuelib
import threading
from typing import TYPE_CHECKING

from genet import errors, filters, opcodes
from genet.cmdlib import lu_for
from genet.hooks import POST, PRE, HooksMaster
from genet.jobs import FINAL_NAMES, Job, JobStatus, timestamp
from genet.locking import Level, LockError, LockTimeout

if TYPE_CHECKING:
    from genet.masterd import MasterContext

log = logging.getLogger("genet.processor")
LOCK_POLL = 0.2       # how often a job waiting for locks checks for cancellation
UNCLEAN_STOP = ("job was {status} when the master daemon on {node} stopped (unclean shutdown or master"
                " failover); it was marked failed and will not run again")
NO_KILL = ("Job {job_id} is running; genet runs jobs in threads of genet-masterd, which cannot be killed"
           " (Ganeti's --kill sends SIGKILL to the job's own process): wait for it to end, or restart"
           " genet-masterd, which marks it failed")


class Processor:
    def __init__(self, ctx: "MasterContext", workers: int = 20):
        self.ctx = ctx
        self._work: queuelib.SimpleQueue = queuelib.SimpleQueue()   # jobs handed to the workers
        self._queued: dict[int, Job] = {}            # waiting for the scheduler: not started, or unparked
        self._running: dict[int, Job] = {}           # handed to a worker
        self._requeue: set[int] = set()              # unparked while its worker was still returning
        self._parked: dict[int, list[Job]] = {}      # dependency id -> jobs waiting for it
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._wanted = 0
        self.set_workers(workers)

    def set_workers(self, count: int) -> None:
        """Grow or shrink the pool (gnt-cluster modify --max-running-jobs); running jobs finish."""
        with self._lock:
            self._wanted = count
            for i in range(len(self._threads), count):
                thread = threading.Thread(target=self._work_loop, name=f"worker{i}", daemon=True)
                self._threads.append(thread)
                thread.start()
            for _ in range(len(self._threads) - count):
                self._work.put(None)
        self.schedule()

    def submit(self, jobs: list[list[dict]]) -> list[int]:
        created = self.ctx.queue.submit_many(jobs)
        with self._lock:
            for job in created:
                self._queued[job.id] = job
        self.schedule()
        return [job.id for job in created]

    def recover(self, node_name: str) -> None:
        """After a restart or failover: resume queued jobs, fail those that were running."""
        for data in self.ctx.queue.store.unfinished():
            job = Job.from_dict(data)
            self.ctx.queue.adopt(job)
            if job.status == JobStatus.QUEUED.value:
                self.enqueue(job)
                continue
            reason = UNCLEAN_STOP.format(status=job.status, node=node_name)
            status = JobStatus.CANCELED if job.status == JobStatus.CANCELING.value else JobStatus.ERROR
            self._finish(job, status, errors.OpExecError(reason))
            log.warning("job %d: %s", job.id, reason)

    # --- scheduling -------------------------------------------------------------

    def schedule(self) -> None:
        """Start what may start now and cancel what a REJECT rule applies to (queued jobs, and
        jobs parked on their dependencies, as Ganeti's scheduler holds those in its queue too)."""
        rules = list(self.ctx.cfg.snapshot().get("filters", {}).values())
        with self._lock:
            if not rules and (not self._queued or len(self._running) >= self._wanted):
                return
            queued = sorted(self._queued.values(), key=lambda j: (j.priority, j.id))
            decision = filters.schedule([(j.id, j.ops) for j in queued],
                                        [(j.id, j.ops) for j in self._running.values()], rules,
                                        self._wanted - len(self._running))
            rejected = [self._queued.pop(job_id) for job_id in decision.reject]
            parked = {j.id: j for waiting in self._parked.values() for j in waiting}
            for job_id, uuid in filters.rejected([(j.id, j.ops) for j in parked.values()], rules).items():
                decision.reject[job_id] = uuid
                rejected.append(parked[job_id])
                for waiting in self._parked.values():
                    if parked[job_id] in waiting:
                        waiting.remove(parked[job_id])
            for job_id in decision.start:
                job = self._running[job_id] = self._queued.pop(job_id)
                self._work.put(job)
        for job in rejected:
            uuid = decision.reject[job.id]
            log.info("job %d canceled: rejected by filter rule %s", job.id, uuid)
            self._finish(job, JobStatus.CANCELED, None, why=f"Job rejected by filter rule {uuid}")

    def enqueue(self, job: Job) -> None:
        """Queue ``job`` for the scheduler (new, recovered, or its dependencies ended)."""
        with self._lock:
            if job.id in self._running:
                self._requeue.add(job.id)
                return
            self._queued[job.id] = job
        self.schedule()

    def _released(self, job: Job) -> None:
        """A worker is done with ``job`` (ended or parked): its slot is free."""
        with self._lock:
            self._running.pop(job.id, None)
            if job.id in self._requeue:
                self._requeue.discard(job.id)
                self._queued[job.id] = job
        self.schedule()

    def job_finished(self, job: Job) -> None:
        """Called once a job's final state is published: wake the jobs parked on it."""
        with self._lock:
            waiting = self._parked.pop(job.id, [])
        for parked in waiting:
            self.enqueue(parked)

    # --- what users ask of a job ------------------------------------------------

    def cancel(self, job_id: int, kill: bool = False) -> list:
        """Cancel a job that has not started running; returns Ganeti's [success, message].

        ``kill`` (gnt-job cancel --kill) cancels queued and waiting jobs as without it; a running
        job is refused naming why (see NO_KILL), never abandoned while its thread goes on."""
        job = self.ctx.queue.active_job(job_id)
        if job is None or job.is_final:
            return [False, f"Job {job_id} not found in queue"]
        with self._lock:
            dequeued = self._queued.pop(job_id, None) is not None
        if not dequeued:
            with job.lock:
                if job.status == JobStatus.RUNNING.value:
                    return [False, NO_KILL.format(job_id=job_id) if kill else
                            f"Job {job_id} is running, it cannot be canceled"]
                job.cancel_requested = True
                if job.status != JobStatus.CANCELING.value:
                    job.status = JobStatus.CANCELING.value
        if dequeued or self.unpark(job):
            self._finish(job, JobStatus.CANCELED, None)
        else:
            self.ctx.queue.save(job)
        return [True, f"Job {job_id} will be canceled"]

    def change_priority(self, job_id: int, priority: int) -> list:
        """Give the opcodes of a job that have not run yet ``priority``; Ganeti's [success, message].
        A queued job moves in the queue, a job waiting for locks waits with the new priority."""
        job = self.ctx.queue.active_job(job_id)
        if job is None or job.is_final:
            return [False, f"Job {job_id} not found in queue"]
        with job.lock:
            for index, op in enumerate(job.ops):
                if job.opstatus[index] in (JobStatus.QUEUED.value, JobStatus.WAITING.value):
                    op["priority"] = priority
            job.priority = priority
        self.ctx.queue.save_and_wait(job)
        self.schedule()
        return [True, f"Priorities of pending opcodes for job {job_id} have been changed to {priority}"]

    def stop(self) -> None:
        self.set_workers(0)

    def _work_loop(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                with self._lock:
                    if len(self._threads) > self._wanted:
                        self._threads.remove(threading.current_thread())
                        return
                continue
            try:
                self._run(job)
            except Exception:   # a bug must not kill the worker
                log.exception("job %s crashed the worker", job.id)
                self._finish(job, JobStatus.ERROR, errors.OpExecError("internal error, see masterd log"))
            finally:
                self._released(job)

    # --- one job --------------------------------------------------------------

    def unpark(self, job: Job) -> bool:
        """Take a job off every dependency wait list; True if it was parked."""
        with self._lock:
            found = False
            for waiting in self._parked.values():
                if job in waiting:
                    waiting.remove(job)
                    found = True
            return found

    def _run(self, job: Job) -> None:
        queue = self.ctx.queue
        with job.lock:
            if job.is_final:
                return
            cancel = job.cancel_requested
        if cancel:
            return self._finish(job, JobStatus.CANCELED, None)
        for index, opdata in enumerate(job.ops):
            if job.opstatus[index] in FINAL_NAMES:
                continue
            op = opcodes.from_dict(opdata)
            blocker = self._unmet_dependency(job, op)
            if blocker is not None:
                if isinstance(blocker, errors.GenericError):
                    return self._finish(job, JobStatus.ERROR, blocker, index)
                return
            self._set(job, index, JobStatus.WAITING, start=True)
            feedback = self._feedback(job, index)
            lu, failed = None, True
            try:
                lu = lu_for(op.OP_ID)(self.ctx, op, feedback)
                lu.owner = job.id
                lu.expand_names()
                self._acquire(job, lu)
                if job.cancel_requested:        # asked while the last lock was being granted
                    raise _Canceled()
                self._set(job, index, JobStatus.RUNNING)
                lu.check_prereq()
                result = self._exec(lu, op.dry_run)
                failed = False
            except _Canceled:
                return self._finish(job, JobStatus.CANCELED, None, index)
            except errors.GenericError as err:
                return self._finish(job, JobStatus.ERROR, err, index)
            except Exception as err:
                log.exception("job %s opcode %s failed", job.id, op.OP_ID)
                return self._finish(job, JobStatus.ERROR, errors.OpExecError(f"{type(err).__name__}: {err}"), index)
            finally:
                if lu is not None:
                    try:
                        lu.cleanup(failed)
                    except Exception:
                        log.exception("cleanup of job %s opcode %s failed", job.id, op.OP_ID)
                self.ctx.drbd_reservations.release(job.id)     # its picks are in the config, or dropped
                self.ctx.glm.release(job.id)
            with job.lock:
                job.opresult[index] = result
                job.opstatus[index] = JobStatus.SUCCESS.value
                job.opend[index] = timestamp()
            queue.save(job)
        self._finish(job, JobStatus.SUCCESS, None)

    def _exec(self, lu, dry_run: bool):
        """The LU's exec between its hooks (genet.hooks): a pre hook's veto stops it before it
        acts (a dry run stops there too, as Ganeti's); the config-update hook follows any
        change, even a failed exec's."""
        hooks = HooksMaster(lu)
        hooks.run(PRE)
        if dry_run:
            return None
        serial = self.ctx.cfg.serial
        try:
            result = lu.exec()
            return lu.hooks_result(hooks.run(POST), result)
        finally:
            if self.ctx.cfg.serial != serial:
                hooks.config_update()

    def _unmet_dependency(self, job: Job, op) -> errors.GenericError | int | None:
        """None if every dependency ended in an accepted status.

        Returns the id of a dependency still unfinished (the job is parked on it and
        re-queued by :meth:`job_finished`) or an error for a dependency that ended in
        a status the job does not accept.
        """
        for dep_id, statuses in op.depends or []:
            with self._lock:    # job_finished takes this lock too: no wake-up is lost
                parked = self.ctx.queue.active_job(dep_id) is not None
                if parked:
                    self._parked.setdefault(dep_id, []).append(job)
            if parked:
                with job.lock:
                    job.status = JobStatus.WAITING.value
                self.ctx.queue.save(job)
                return dep_id
            found = self.ctx.queue.get(dep_id)
            if found is None:
                return errors.OpExecError(f"job {job.id} depends on unknown job {dep_id}")
            status = found[0]["status"]
            if statuses and status not in statuses:
                return errors.OpExecError(
                    f"dependency job {dep_id} has status {status!r}, job {job.id} needed one of {statuses}")
        return None

    def _acquire(self, job: Job, lu) -> None:
        lu.needed_locks[Level.CLUSTER] = ["BGL"]
        lu.share_locks[Level.CLUSTER] = not lu.REQ_BGL
        for level in Level:
            if level != Level.CLUSTER:
                lu.declare_locks(level)
            names = lu.needed_locks.get(level)
            if names:
                self._acquire_level(job, level, names, lu.share_locks.get(level, False))

    def _acquire_level(self, job: Job, level: Level, names, shared: bool) -> None:
        """Wait for locks, checking now and then whether the job was canceled."""
        while True:
            if job.cancel_requested:
                raise _Canceled()
            try:
                self.ctx.glm.acquire(job.id, level, names, shared=shared, timeout=LOCK_POLL,
                                     priority=job.priority)
                return
            except LockTimeout:
                continue
            except LockError as err:
                raise errors.OpPrereqError(str(err), errors.ECode.NOENT) from None

    def _set(self, job: Job, index: int, status: JobStatus, start: bool = False) -> None:
        with job.lock:
            job.opstatus[index] = status.value
            job.status = status.value
            if start:
                job.opstart[index] = timestamp()
                if job.start_ts is None:
                    job.start_ts = job.opstart[index]
            if status == JobStatus.RUNNING:
                job.opexec[index] = timestamp()
        self.ctx.queue.save(job)

    def _feedback(self, job: Job, index: int):
        def feedback(message, kind: str = "message") -> None:
            """A log entry: text, or for the test log types (delay-test, jqueue-test) a list."""
            with job.lock:
                job.add_log(index, message if isinstance(message, list) else str(message), kind)
            self.ctx.queue.save(job)
        return feedback

    def _finish(self, job: Job, status: JobStatus, err: errors.GenericError | None,
                index: int | None = None, why: str = "Job canceled by request") -> None:
        """Record the final state; later opcodes share the failure (as in Ganeti). ``why`` is the
        result of the opcodes of a canceled job."""
        with job.lock:
            now = timestamp()
            for i in range(len(job.ops)):
                if job.opstatus[i] in FINAL_NAMES:
                    continue
                if status == JobStatus.SUCCESS:
                    job.opstatus[i] = status.value
                elif status == JobStatus.CANCELED:
                    job.opstatus[i] = status.value
                    job.opresult[i] = why
                else:
                    job.opstatus[i] = status.value
                    job.opresult[i] = (errors.to_wire(err) if index is None or i == index else
                                       errors.to_wire(errors.OpExecError("Error in previous opcode")))
                job.opend[i] = job.opend[i] or now
            job.status = status.value
            job.end_ts = now
        self.ctx.queue.save(job)


class _Canceled(Exception):
    """The job was canceled while it waited for locks."""
