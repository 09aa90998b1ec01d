"""The master's persistent job queue.

Every change of a job goes through one committer thread that batches updates
(group commit): a batch is written to SQLite in one transaction and pushed to the
master candidates; only then is it *published*, i.e. visible to queries and
waiters. A final state is therefore reported only once it is durable on the
master and held by a majority of the candidates.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Iterable

from genet import errors, opcodes, paths
from genet.jobs import FINAL_NAMES, Job, job_field, timestamp
from genet.queue_store import QueueStore, Record

log = logging.getLogger("genet.jobqueue")

# replicate(records) -> None, raises QuorumError when too few candidates acknowledged
Replicator = Callable[[list[Record]], None]
MAX_UNFINISHED = 10000
REPLICATION_RETRY = 0.5
LAZY_DELAY = 0.01       # longest wait before progress updates are committed


def opcode_reason(op: opcodes.OpCode, job_id: int, index: int) -> list:
    """The entry the queue adds to each opcode's reason trail, as Ganeti's does:
    ("gnt:opcode:instance_startup", "job=12;index=0", nanoseconds)."""
    name = op.OP_ID.removeprefix("OP_").lower()
    return [f"gnt:opcode:{name}", f"job={job_id};index={index}", time.time_ns()]


class _Waiter:
    """Someone waiting for a job update to become durable and replicated."""
    __slots__ = ("event", "error")

    def __init__(self):
        self.event = threading.Event()
        self.error: errors.GenericError | None = None

    def wait(self, timeout: float = 60.0) -> None:
        if not self.event.wait(timeout):
            raise errors.QuorumError("job update not acknowledged by the master candidates in time")
        if self.error is not None:
            raise self.error


class _Pending:
    """The newest unwritten state of one job and everyone waiting for it."""
    __slots__ = ("text", "archived", "waiters")

    def __init__(self, text: str, archived: bool, waiters: list[_Waiter]):
        self.text, self.archived, self.waiters = text, archived, waiters

    def finish(self, error: errors.GenericError | None = None) -> None:
        for waiter in self.waiters:
            waiter.error = error
            waiter.event.set()


class JobQueue:
    def __init__(self, store: QueueStore, replicate: Replicator | None = None,
                 on_final: Callable[[Job], None] | None = None):
        self.store = store
        self._replicate = replicate
        self._on_final = on_final or (lambda job: None)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._active: dict[int, Job] = {}            # unfinished jobs, and final ones until published
        self._published: dict[int, dict] = {}         # last durable+replicated form of active jobs
        self._next_id = store.max_id() + 1
        self._seq = store.max_seq()               # version of the last committed batch
        self._pending: dict[int, _Pending] = {}
        self._commit_cv = threading.Condition(self._lock)
        self._urgent = False                      # an update someone waits for is pending
        self._lazy_deadline: float | None = None  # when pending progress updates are due
        self._stopping = False
        self._committer = threading.Thread(target=self._commit_loop, name="committer", daemon=True)
        self._committer.start()

    # --- submission ---------------------------------------------------------

    def drained(self) -> bool:
        return paths.queue_drain_file().exists()

    def set_drain(self, flag: bool) -> None:
        drain = paths.queue_drain_file()
        if flag:
            drain.parent.mkdir(parents=True, exist_ok=True)
            drain.touch()
        else:
            drain.unlink(missing_ok=True)

    def submit_many(self, jobs: list[list[dict]]) -> list[Job]:
        """Validate, store and replicate new jobs; all are accepted or none.

        Negative ids in ``depends`` refer to earlier jobs of the same submission.
        """
        if self.drained():
            raise errors.JobQueueDrainError("job queue is drained, refusing new jobs")
        if not isinstance(jobs, list) or not jobs:
            raise errors.OpPrereqError("a submission needs at least one job")
        parsed = []
        for ops in jobs:
            if not isinstance(ops, list) or not ops:
                raise errors.OpPrereqError("a job needs a non-empty list of opcodes")
            parsed.append([opcodes.from_dict(op) for op in ops])
        with self._lock:
            unfinished = sum(1 for j in self._active.values() if not j.is_final)
            if unfinished + len(parsed) > MAX_UNFINISHED:
                raise errors.JobQueueFull(f"job queue is full ({unfinished} unfinished jobs)")
            first = self._next_id
            self._next_id += len(parsed)
        created = []
        for offset, ops in enumerate(parsed):
            job_id = first + offset
            for index, op in enumerate(ops):
                if op.depends:
                    op.depends = [[_absolute(dep, job_id, first), st] for dep, st in op.depends]
                op.reason = op.reason + [opcode_reason(op, job_id, index)]
            job = Job(job_id, [op.to_dict() for op in ops], priority=min(op.priority for op in ops))
            job.summary = [op.summary() for op in ops]
            created.append(job)
        with self._lock:
            for job in created:
                self._active[job.id] = job
        try:
            for waiter in [self.save(job) for job in created]:
                waiter.wait()
        except errors.GenericError as err:
            # The client gets no job id; the jobs end as errors, so none runs later by surprise.
            for job in created:
                _refuse(job, err)
                self.save(job)
            raise
        return created

    # --- persistence --------------------------------------------------------

    def save(self, job: Job, archived: bool = False, urgent: bool | None = None) -> _Waiter:
        """Queue the job's current state for the next commit batch.

        New and final states are committed at once; progress (waiting, running, log
        lines) may wait up to LAZY_DELAY, so a quick job costs two commits, not four.
        """
        with job.lock:
            text = job.to_json()
            if urgent is None:
                urgent = job.is_final or job.status == "queued"
        waiter = _Waiter()
        with self._lock:
            old = self._pending.get(job.id)
            # a newer state supersedes an unwritten older one; its waiters wait for this one
            self._pending[job.id] = _Pending(text, archived, (old.waiters if old else []) + [waiter])
            if urgent:
                self._urgent = True
            elif self._lazy_deadline is None:
                self._lazy_deadline = time.monotonic() + LAZY_DELAY
            self._commit_cv.notify()
        return waiter

    def save_and_wait(self, job: Job, timeout: float = 60.0) -> None:
        self.save(job).wait(timeout)

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _next_batch(self) -> dict[int, _Pending]:
        with self._lock:
            while not self._stopping and not self._urgent:
                if self._lazy_deadline is None:
                    self._commit_cv.wait()
                    continue
                remaining = self._lazy_deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._commit_cv.wait(remaining)
            batch, self._pending = self._pending, {}
            self._urgent, self._lazy_deadline = False, None
            return batch

    def _commit_loop(self) -> None:
        while not self._stopping:
            batch = self._next_batch()
            if not batch:
                continue
            seq = self._next_seq()
            records = [(job_id, int(p.archived), p.text, seq) for job_id, p in batch.items()]
            try:
                self.store.write(records)
            except errors.GenericError as err:
                log.error("cannot store %d job updates: %s", len(records), err)
                for p in batch.values():
                    p.finish(err)
                self._retry_later(batch)
                continue
            while True:
                try:
                    if self._replicate is not None:
                        self._replicate(records)
                    break
                except Exception as err:   # keep committing whatever failed
                    log.warning("job queue replication failed, retrying: %s", err)
                    # whoever waits (a submitter) learns it now, not after a timeout
                    quorum = err if isinstance(err, (errors.QuorumError, errors.NotMasterError)) \
                        else errors.QuorumError(str(err))
                    for pending in batch.values():
                        pending.finish(quorum)
                        pending.waiters = []
                    if self._stopping:
                        return
                    time.sleep(REPLICATION_RETRY)
                    with self._lock:   # newer states (of any job) join and supersede the retry
                        batch.update(self._pending)
                        self._pending = {}
                    seq = self._next_seq()
                    records = [(job_id, int(p.archived), p.text, seq) for job_id, p in batch.items()]
                    try:
                        self.store.write(records)
                    except errors.GenericError as store_err:
                        log.error("cannot store job updates: %s", store_err)
            self._publish(batch)

    def _retry_later(self, batch: dict[int, _Pending]) -> None:
        """Keep unstored states of live jobs (not newer ones) for the next batch."""
        time.sleep(REPLICATION_RETRY)
        with self._lock:
            for job_id, pending in batch.items():
                if job_id in self._active and job_id not in self._pending:
                    self._pending[job_id] = _Pending(pending.text, pending.archived, [])
            self._urgent = True
            self._commit_cv.notify()

    def _publish(self, batch: dict[int, _Pending]) -> None:
        finals = []
        with self._lock:
            for job_id, pending in batch.items():
                data = json.loads(pending.text)
                job = self._active.get(job_id)
                if job is None:
                    continue
                if data["status"] in FINAL_NAMES and job.is_final and self._pending.get(job_id) is None:
                    del self._active[job_id]
                    self._published.pop(job_id, None)
                    finals.append(job)
                else:
                    self._published[job_id] = data
            self._changed.notify_all()
        for pending in batch.values():
            pending.finish()
        for job in finals:
            self._on_final(job)

    # --- reading ------------------------------------------------------------

    def get(self, job_id: int) -> tuple[dict, bool] | None:
        """The published form of a job and whether it is archived."""
        with self._lock:
            data = self._published.get(job_id)
            if data is not None:
                return data, False
            if job_id in self._active:   # submitted, first write not published yet
                return None
        return self.store.get(job_id)

    def last_id(self) -> int:
        """The highest job id handed out so far (a filter rule's watermark)."""
        with self._lock:
            return self._next_id - 1

    def adopt(self, job: Job) -> None:
        """Take over an unfinished job read back from the store (restart, failover)."""
        with self._lock:
            self._active[job.id] = job
            self._published[job.id] = job.to_dict()

    def active_job(self, job_id: int) -> Job | None:
        with self._lock:
            return self._active.get(job_id)

    def query(self, ids: list[int] | None, fields: list[str], archived: bool = False) -> list[list]:
        if ids is None:
            all_ids = set(self.store.ids(None if archived else False))
            with self._lock:
                all_ids.update(self._published)
            ids = sorted(all_ids)
        rows = []
        for job_id in ids:
            found = self.get(job_id)
            if found is None:
                rows.append(None)
            else:
                data, is_archived = found
                rows.append([job_field(data, f, is_archived) for f in fields])
        return rows

    def wait_for_change(self, job_id: int, fields: list[str], prev_info: list | None,
                        prev_serial: int | None, timeout: float) -> dict | str | None:
        """Block until the job's fields or log move past what the caller saw.

        Returns ``{"job_info", "log_entries"}``, ``"nochange"`` on timeout, None if unknown.
        A job in a final status is answered at once, even if the caller saw all of it
        (as Ganeti does): it will not change again, and pollers that stop only at a
        final status without log entries (Ganeti's own) would otherwise ask forever.
        """
        deadline = time.monotonic() + max(0.0, min(timeout, 60.0))
        prev_serial = prev_serial or 0
        with self._lock:
            while True:
                data = self._published.get(job_id)
                if data is None and job_id not in self._active:
                    break
                if data is not None:
                    result = _change(data, fields, prev_info, prev_serial)
                    if result is not None:
                        return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "nochange"
                self._changed.wait(remaining)
        found = self.store.get(job_id)
        if found is None:
            return None
        return _change(found[0], fields, prev_info, prev_serial) or "nochange"

    # --- archive ------------------------------------------------------------

    def archive(self, job_ids: Iterable[int]) -> list[int]:
        """Archive finished jobs; returns the ids archived."""
        ids = []
        for job_id in job_ids:
            found = self.store.get(job_id)
            if found is not None and found[0]["status"] in FINAL_NAMES and not found[1]:
                ids.append(job_id)
        if ids:
            records = self.store.set_archived(ids, self._next_seq())
            if self._replicate is not None:
                self._replicate(records)
        return ids

    def auto_archive(self, age: float, timeout: float) -> tuple[int, int]:
        """Archive jobs that ended more than ``age`` seconds ago; returns (archived, left)."""
        candidates = self.store.archivable(time.time() - age)
        deadline = time.monotonic() + timeout
        done = 0
        for start in range(0, len(candidates), 500):
            if time.monotonic() > deadline:
                break
            done += len(self.archive(candidates[start:start + 500]))
        return done, len(candidates) - done

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._commit_cv.notify()
        self._committer.join(timeout=5)


def _refuse(job: Job, err: errors.GenericError) -> None:
    reason = errors.to_wire(errors.OpExecError(f"job {job.id} was not accepted: {err}"))
    with job.lock:
        job.status = "error"
        job.opstatus = ["error"] * len(job.ops)
        job.opresult = [reason] * len(job.ops)
        job.end_ts = timestamp()
        job.cancel_requested = True


def _absolute(dep: int, job_id: int, first_of_batch: int) -> int:
    if dep >= 0:
        return dep
    target = job_id + dep
    if target < first_of_batch:
        raise errors.OpPrereqError(f"relative dependency {dep} of job {job_id} points outside its submission")
    return target


def _change(data: dict, fields: list[str], prev_info: list | None, prev_serial: int) -> dict | None:
    """What the caller has not seen yet; None (wait on) only while the job can still change.

    A canceling job is still waiting to become canceled, so it is waited on like a queued one.
    """
    info = [job_field(data, f) for f in fields]
    entries = [entry for op_log in data["oplog"] for entry in op_log if entry[0] > prev_serial]
    if entries or info != prev_info or data["status"] in FINAL_NAMES:
        return {"job_info": info, "log_entries": sorted(entries)}
    return None

