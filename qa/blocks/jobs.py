"""Block ``jobs``: the job queue as Ganeti's QA and scripts use it, and the job filter rules.

Delays on the master queue behind one another (each locks the master's node), so a job behind a
busy one can be re-prioritised and canceled before it starts (Ganeti's gnt-job cancel QA test).
The filter rules this block adds match only its own jobs (by a reason of the run's prefix), so
other users of the cluster are not held up, and are removed even when a check fails.
"""
from __future__ import annotations

import re
import time

from qa.context import Context
from qa.report import CheckFailed

BLOCK = "jobs"
FINAL = ("success", "error", "canceled")


def run(ctx: Context) -> None:
    with ctx.check(BLOCK, "gnt-job change-priority and cancel of delays queued behind another"):
        first = _submit(ctx, "10")        # still running while the others are handled, on a busy machine too
        second, third = _submit(ctx, "2"), _submit(ctx, "0")
        out = ctx.gnt("gnt-job", "change-priority", "--priority", "high", third).stdout
        if f"job {third}" not in out:
            raise CheckFailed(f"gnt-job change-priority answered {out!r}")
        ctx.gnt("gnt-job", "cancel", second)
        if ctx.gnt("gnt-job", "watch", second, check=False).returncode == 0:
            raise CheckFailed(f"gnt-job watch of the canceled job {second} succeeded")
        _expect(ctx, second, "canceled")
        for job in (third, first):
            ctx.gnt("gnt-job", "wait", job)
            _expect(ctx, job, "success")

    with ctx.check(BLOCK, "gnt-job list -o id prints the jobs in the order asked"):
        rows = ctx.gnt_rows("gnt-job", ["id"], third, first, second)
        if rows != [[third], [first], [second]]:
            raise CheckFailed(f"gnt-job list {third} {first} {second} printed {rows}")

    reason = f"{ctx.options.prefix}jobs"
    mine = f'--predicates=[["reason", ["=", "reason", "{reason}"]]]'
    with ctx.check(BLOCK, "gnt-filter: a PAUSE rule holds a job until it is deleted"):
        uuid = ctx.gnt("gnt-filter", "add", mine, "--action=PAUSE").stdout.strip()
        try:
            held = _submit(ctx, "0", reason=reason)
            time.sleep(2)
            _expect(ctx, held, "queued", wait=False)
            if uuid not in ctx.gnt("gnt-filter", "list", "--no-headers", "-o", "uuid").stdout.split():
                raise CheckFailed(f"gnt-filter list does not show the rule {uuid}")
        finally:
            ctx.gnt("gnt-filter", "delete", uuid)
        ctx.gnt("gnt-job", "wait", held)

    with ctx.check(BLOCK, "RAPI /2/filters: a REJECT rule cancels a job, then goes"):
        uuid = ctx.rapi.post("/2/filters", {"priority": 0, "predicates": [["reason", ["=", "reason", reason]]],
                                            "action": "REJECT", "reason": []})
        try:
            if ctx.rapi.get(f"/2/filters/{uuid}")["action"] != "REJECT":
                raise CheckFailed(f"GET /2/filters/{uuid} does not show the REJECT rule")
            _expect(ctx, _submit(ctx, "0", reason=reason), "canceled")
        finally:
            ctx.rapi.delete(f"/2/filters/{uuid}")
        if uuid in [f["uuid"] for f in ctx.rapi.get("/2/filters")]:
            raise CheckFailed(f"GET /2/filters still lists {uuid} after DELETE")


def _submit(ctx: Context, seconds: str, reason: str | None = None) -> str:
    out = ctx.gnt("gnt-debug", "delay", "--submit", *(["--reason", reason] if reason else []), seconds).stdout
    match = re.search(r"JobID: (\d+)", out)
    if not match:
        raise CheckFailed(f"gnt-debug delay --submit printed no job ID: {out!r}")
    return match.group(1)


def _expect(ctx: Context, job: str, wanted: str, wait: bool = True, timeout: float = 60) -> None:
    """The job's status is ``wanted`` (once it is final, with ``wait``)."""
    deadline = time.monotonic() + timeout
    while True:
        [[status]] = ctx.gnt_rows("gnt-job", ["status"], job)
        if status == wanted or not wait or status in FINAL or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if status != wanted:
        raise CheckFailed(f"job {job} is {status}, expected {wanted}")
