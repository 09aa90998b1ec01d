"""A job: a list of opcodes with Ganeti's states, per-opcode results and logs."""
from __future__ import annotations

import enum
import json
import threading
import time
from typing import Any


class JobStatus(str, enum.Enum):
    QUEUED = "queued"          # accepted, waiting for a worker
    WAITING = "waiting"        # waiting for locks or for the jobs it depends on
    CANCELING = "canceling"    # cancel requested while waiting
    RUNNING = "running"        # an opcode is executing
    CANCELED = "canceled"      # final: canceled before it ran
    SUCCESS = "success"        # final: every opcode succeeded
    ERROR = "error"            # final: an opcode failed


FINAL = frozenset({JobStatus.CANCELED, JobStatus.SUCCESS, JobStatus.ERROR})
FINAL_NAMES = frozenset(s.value for s in FINAL)


def timestamp(ts: float | None = None) -> list[int]:
    """Ganeti's [seconds, microseconds] pair."""
    ts = time.time() if ts is None else ts
    sec = int(ts)
    return [sec, int((ts - sec) * 1_000_000)]


class Job:
    """In-memory state of one job; ``to_dict`` is both the stored and the wire form."""

    def __init__(self, job_id: int, ops: list[dict], priority: int = 0):
        self.id = job_id
        self.ops = ops
        n = len(ops)
        self.opstatus = [JobStatus.QUEUED.value] * n
        self.opresult: list[Any] = [None] * n
        self.oplog: list[list] = [[] for _ in range(n)]
        self.opstart: list[Any] = [None] * n
        self.opexec: list[Any] = [None] * n
        self.opend: list[Any] = [None] * n
        self.received_ts = timestamp()
        self.start_ts = None
        self.end_ts = None
        self.priority = priority
        self.status = JobStatus.QUEUED.value
        self.summary: list[str] = []
        self.log_serial = 0
        self.archived = False
        self.cancel_requested = False
        self.lock = threading.Lock()

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_NAMES

    def add_log(self, op_index: int, message: str, kind: str = "message") -> None:
        self.log_serial += 1
        self.oplog[op_index].append([self.log_serial, timestamp(), kind, message])

    def to_dict(self) -> dict:
        return {"id": self.id, "ops": self.ops, "opstatus": self.opstatus,
                "opresult": self.opresult, "oplog": self.oplog, "opstart": self.opstart,
                "opexec": self.opexec, "opend": self.opend, "received_ts": self.received_ts,
                "start_ts": self.start_ts, "end_ts": self.end_ts, "priority": self.priority,
                "status": self.status, "summary": self.summary, "log_serial": self.log_serial}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict) -> "Job":
        job = cls(data["id"], data["ops"], data.get("priority", 0))
        for key in ("opstatus", "opresult", "oplog", "opstart", "opexec", "opend",
                    "received_ts", "start_ts", "end_ts", "status", "summary", "log_serial"):
            setattr(job, key, data.get(key, getattr(job, key)))
        return job


def requested_ids(qfilter: Any) -> list[int] | None:
    """The job ids a query filter names, in the order named, when it asks for jobs by id
    (``["|", ["=", "id", 3], ["=", "id", 1]]``, possibly and-ed with other clauses): a query for
    them answers in that order, as Ganeti's (``gnt-job list 3 2 1``). None for any other filter."""
    def ids_of(clause: Any) -> list[int] | None:
        if isinstance(clause, list) and clause[:1] == ["|"] and len(clause) > 1 and all(
                isinstance(c, list) and len(c) == 3 and c[:2] == ["=", "id"] and type(c[2]) is int
                for c in clause[1:]):
            return list(dict.fromkeys(c[2] for c in clause[1:]))
        if isinstance(clause, list) and len(clause) == 3 and clause[:2] == ["=", "id"] and type(clause[2]) is int:
            return [clause[2]]
        return None
    if isinstance(qfilter, list) and qfilter[:1] == ["&"]:
        found = [ids for ids in map(ids_of, qfilter[1:]) if ids is not None]
        return found[0] if len(found) == 1 else None
    return ids_of(qfilter)


def job_field(job: dict, name: str, archived: bool = False) -> Any:
    """Value of a Ganeti job query field from a job's dict form."""
    if name == "oppriority":
        return [op.get("priority", job.get("priority", 0)) for op in job["ops"]]
    if name == "archived":
        return archived
    if name in ("opstart", "opexec", "opend", "opstatus", "opresult", "oplog", "ops",
                "received_ts", "start_ts", "end_ts", "status", "summary", "priority", "id"):
        return job.get(name)
    raise KeyError(name)


JOB_FIELDS = {
    "id": ("ID", "number", "Job ID"),
    "status": ("Status", "text", "Job status"),
    "priority": ("Prio", "number", "Current job priority"),
    "summary": ("Summary", "other", "List of per-opcode summaries"),
    "ops": ("OpCodes", "other", "List of all opcodes"),
    "opresult": ("OpCode_result", "other", "List of opcode results"),
    "opstatus": ("OpCode_status", "other", "List of opcode status"),
    "oplog": ("OpCode_log", "other", "List of opcode output logs"),
    "opstart": ("OpCode_start", "other", "List of opcode start timestamps"),
    "opexec": ("OpCode_exec", "other", "List of opcode execution start timestamps"),
    "opend": ("OpCode_end", "other", "List of opcode end timestamps"),
    "oppriority": ("OpCode_prio", "other", "List of opcode priorities"),
    "received_ts": ("Received", "timestamp", "Timestamp of when job was received"),
    "start_ts": ("Start", "timestamp", "Timestamp of job start"),
    "end_ts": ("End", "timestamp", "Timestamp of job end"),
    "archived": ("Archived", "bool", "Whether job is archived"),
}
