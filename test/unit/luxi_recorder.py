"""A stand-in for the master daemon's luxi, for tests that run gnt-* commands as a user types them:
it records the jobs they submit and answers that each succeeded."""
from __future__ import annotations

import pytest

from genet import luxi


class Luxi:
    """Stands in for the master daemon: records submitted jobs, answers that they succeeded; a
    query for objects by name finds each name asked for (its other fields are empty)."""

    def __init__(self):
        self.jobs: list[list[dict]] = []

    def call(self, method, *args):
        if method == "SubmitJob":
            self.jobs.append(args[0])
            return len(self.jobs)
        if method == "QueryJobs":
            return [["success", [None] * len(self.jobs[-1])] for _ in args[0] or [0]]
        if method == "WaitForJobChange":
            return {"job_info": ["success"], "log_entries": []}
        if method == "Query":
            _what, fields, qfilter = args[:3]
            names = [clause[2] for clause in (qfilter or ["|"])[1:] if clause[:2] == ["=", "name"]]
            return {"fields": [{"name": f, "title": f, "kind": "other", "doc": ""} for f in fields],
                    "data": [[[0, name if f == "name" else None] for f in fields] for name in names]}
        raise AssertionError(f"unexpected luxi call {method}")


@pytest.fixture
def recorder(monkeypatch):
    recorded = Luxi()
    monkeypatch.setattr(luxi.Client, "call", lambda self, method, *args: recorded.call(method, *args))
    return recorded
