"""SQLite storage of jobs, shared by the master's queue and the candidates' replicas.

One row per job: its id, whether it is archived, status, end time and the whole
job as JSON. WAL mode with synchronous=FULL: a committed batch survives a crash.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterable

from genet import errors

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    archived INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    end_ts REAL,
    seq INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status) WHERE archived = 0;
"""

# (id, archived, json text of the job, commit sequence number)
# The sequence number orders versions of a job: a replica never lets an older
# version (a late full resync) overwrite a newer one.
Record = tuple[int, int, str, int]


class QueueStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:
            raise errors.ConfigurationError(f"job queue {path} is unusable: {err}") from None

    def write(self, records: Iterable[Record]) -> None:
        """Insert or replace jobs in one transaction (one fsync for the whole batch)."""
        rows = []
        for job_id, archived, text, seq in records:
            job = json.loads(text)
            rows.append((job_id, archived, job["status"], _end(job), seq, text))
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO jobs(id, archived, status, end_ts, seq, data) VALUES (?,?,?,?,?,?)"
                    " ON CONFLICT(id) DO UPDATE SET archived=excluded.archived, status=excluded.status,"
                    " end_ts=excluded.end_ts, seq=excluded.seq, data=excluded.data"
                    " WHERE excluded.seq >= jobs.seq", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise errors.JobQueueFull(f"cannot write job queue {self.path}: {err}") from None

    def max_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM jobs").fetchone()
        return row[0] or 0

    def records(self, ids: list[int]) -> list[Record]:
        """Stored rows in replication form, for a full resync of a candidate."""
        if not ids:
            return []
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, archived, data, seq FROM jobs WHERE id IN ({','.join('?' * len(ids))})",
                ids).fetchall()
        return [tuple(r) for r in rows]

    def versions(self) -> dict[int, int]:
        """Every job's id and version (commit sequence number)."""
        with self._lock:
            return dict(self._db.execute("SELECT id, seq FROM jobs").fetchall())

    def max_id(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(id) FROM jobs").fetchone()
        return row[0] or 0

    def get(self, job_id: int) -> tuple[dict, bool] | None:
        with self._lock:
            row = self._db.execute("SELECT data, archived FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else (json.loads(row[0]), bool(row[1]))

    def ids(self, archived: bool | None = False) -> list[int]:
        query = "SELECT id FROM jobs" + ("" if archived is None else " WHERE archived=?") + " ORDER BY id"
        with self._lock:
            rows = self._db.execute(query, () if archived is None else (int(archived),)).fetchall()
        return [r[0] for r in rows]

    def load(self, ids: list[int] | None = None, archived: bool | None = False) -> list[dict]:
        """Jobs by id (or all jobs not archived), in id order."""
        if ids is not None:
            found = [self.get(i) for i in ids]
            return [job for job, _ in filter(None, found)]
        query = "SELECT data FROM jobs" + ("" if archived is None else " WHERE archived=?") + " ORDER BY id"
        with self._lock:
            rows = self._db.execute(query, () if archived is None else (int(archived),)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def status_counts(self) -> dict[str, int]:
        """Jobs not archived, by status (for /metrics)."""
        with self._lock:
            rows = self._db.execute("SELECT status, count(*) FROM jobs WHERE archived=0 GROUP BY status").fetchall()
        return dict(rows)

    def unfinished(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM jobs WHERE status NOT IN ('success','error','canceled') ORDER BY id"
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def archivable(self, older_than: float) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE archived=0 AND status IN ('success','error','canceled')"
                " AND end_ts IS NOT NULL AND end_ts < ? ORDER BY id", (older_than,)).fetchall()
        return [r[0] for r in rows]

    def set_archived(self, ids: list[int], seq: int) -> list[Record]:
        """Mark jobs archived as version ``seq``; returns the changed records for replication."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE jobs SET archived=1, seq=? WHERE id=?", [(seq, i) for i in ids])
            self._db.execute("COMMIT")
        return self.records(ids)

    def purge(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _end(job: dict) -> float | None:
    ts = job.get("end_ts")
    return ts[0] + ts[1] / 1e6 if ts else None
