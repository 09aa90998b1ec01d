"""Block ``filters``: gnt-filter as Ganeti's QA drives it (qa_filters.py): add, list, info, replace
and delete, the watermark, the actions REJECT, CONTINUE, ACCEPT and RATE_LIMIT on real jobs, and
the ad-hoc rate limit a job's reason sets (``rate-limit:N:LABEL``).

Every rule that acts matches only this block's own jobs (a reason of the run), so that other users
of the cluster are not held up; the one rule without predicates is a CONTINUE, which changes
nothing. Every rule is deleted at the end, even after a failure.
"""
from __future__ import annotations

import json
import re
import time

from qa import generic
from qa.context import Context
from qa.report import CheckFailed

BLOCK = "filters"
LIST_FIELDS = ["uuid", "watermark", "priority", "predicates", "action", "reason_trail"]
FINAL = ("success", "error", "canceled")


def run(ctx: Context) -> None:
    made: list[str] = []
    try:
        _checks(ctx, made)
    finally:
        for uuid in made:
            ctx.gnt("gnt-filter", "delete", uuid, check=False)


def _add(ctx: Context, made: list[str], *options: str) -> str:
    uuid = ctx.gnt("gnt-filter", "add", *options).stdout.strip()
    if not re.fullmatch(r"[0-9a-f-]{36}", uuid):
        raise CheckFailed(f"gnt-filter add printed {uuid!r}, not a UUID")
    made.append(uuid)
    return uuid


def _delete(ctx: Context, made: list[str], uuid: str) -> None:
    ctx.gnt("gnt-filter", "delete", uuid)
    made.remove(uuid)


def _delay(ctx: Context, reason: str | None, *options: str, seconds: str = "0.01") -> str:
    """Submit ``gnt-debug delay``; its job ID (Ganeti's --print-jobid: the bare number first)."""
    argv = ["gnt-debug", "delay", "--submit", "--print-jobid", *options]
    if reason:
        argv.append(f"--reason={reason}")
    out = ctx.gnt(*argv, seconds).stdout.split()
    if not out or not out[0].isdigit():
        raise CheckFailed(f"gnt-debug delay --submit --print-jobid printed {out}")
    return out[0]


def _status(ctx: Context, job: str, final: bool = True, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        [[status]] = ctx.gnt_rows("gnt-job", ["status"], job)
        if not final or status in FINAL or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def _info(ctx: Context, uuid: str) -> dict[str, str]:
    """gnt-filter info's ``Key: value`` lines of one rule."""
    lines = ctx.gnt("gnt-filter", "info", uuid).stdout.splitlines()
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines[1:])}


def _checks(ctx: Context, made: list[str]) -> None:
    reason = f"{ctx.options.prefix}filters"
    mine = f'--predicates={json.dumps([["reason", ["=", "reason", reason]]])}'

    with ctx.check(BLOCK, "gnt-filter add, list, info; the watermark lies between the jobs before and after"):
        before = _delay(ctx, None)
        uuid = _add(ctx, made, "--reason", reason)
        after = _delay(ctx, None)
        listed = ctx.gnt("gnt-filter", "list", "--no-headers", "--output=uuid").stdout.split()
        if uuid not in listed:
            raise CheckFailed(f"gnt-filter list does not show {uuid}: {listed}")
        info = _info(ctx, uuid)
        if not int(before) <= int(info["Watermark"]) < int(after):
            raise CheckFailed(f"watermark {info['Watermark']} is not within [{before}, {after})")
        if (info["Action"], info["Priority"]) != ("CONTINUE", "0") or reason not in info["Reason trail"]:
            raise CheckFailed(f"gnt-filter info {uuid} shows {info}")
        for job in (before, after):
            _status(ctx, job)

    with ctx.check(BLOCK, "gnt-filter replace changes a rule's priority, predicates and action"):
        ctx.gnt("gnt-filter", "replace", "--priority=5", mine, "--action=PAUSE", uuid)
        info = _info(ctx, uuid)
        if (info["Action"], info["Priority"]) != ("PAUSE", "5") or reason not in info["Predicates"]:
            raise CheckFailed(f"gnt-filter info {uuid} after replace shows {info}")
        _delete(ctx, made, uuid)
        if uuid in ctx.gnt("gnt-filter", "list", "--no-headers", "--output=uuid").stdout.split():
            raise CheckFailed(f"gnt-filter list still shows {uuid} after delete")

    with ctx.check(BLOCK, "gnt-filter list and list-fields"):
        generic.check_list_fields(ctx, "gnt-filter", LIST_FIELDS)
        generic.check_list(ctx, "gnt-filter", namefield="uuid", test_unknown=False)

    with ctx.check(BLOCK, "a REJECT rule rejects the run's delay jobs (gnt-debug delay fails), only them;"
                          " also on reason and opcode"):
        rule = _add(ctx, made, mine, "--action=REJECT")
        refused = ctx.gnt("gnt-debug", "delay", f"--reason={reason}", "0.01", check=False)
        if refused.returncode == 0:
            raise CheckFailed("gnt-debug delay succeeded with a REJECT rule matching its reason")
        if _status(ctx, _delay(ctx, reason)) != "canceled" or _status(ctx, _delay(ctx, None)) != "success":
            raise CheckFailed("the REJECT rule did not cancel exactly the matching job")
        both = [["reason", ["=", "reason", reason]], ["opcode", ["=", "OP_ID", "OP_TEST_DELAY"]]]
        ctx.gnt("gnt-filter", "replace", f"--predicates={json.dumps(both)}", "--action=REJECT", rule)
        if _status(ctx, _delay(ctx, reason)) != "canceled":
            raise CheckFailed("a REJECT rule on the reason and the opcode OP_TEST_DELAY let the delay through")
        _delete(ctx, made, rule)

    with ctx.check(BLOCK, "CONTINUE passes on to the next rule; ACCEPT before a REJECT lets its jobs through"):
        cont = _add(ctx, made, mine, "--action=CONTINUE", "--priority=0")
        reject = _add(ctx, made, mine, "--action=REJECT", "--priority=1")
        if _status(ctx, _delay(ctx, reason)) != "canceled":
            raise CheckFailed("a job passed a CONTINUE rule and then a REJECT rule")
        accept = f'--predicates={json.dumps([["reason", ["=", "reason", reason + "-allow"]]])}'
        _add(ctx, made, accept, "--action=ACCEPT", "--priority=0")
        ctx.gnt("gnt-filter", "replace", "--priority=1", "--action=REJECT",
                f'--predicates={json.dumps([["reason", ["=~", "reason", "^" + re.escape(reason)]]])}', reject)
        if _status(ctx, _delay(ctx, f"{reason}-allow")) != "success":
            raise CheckFailed("the ACCEPT rule before the REJECT rule did not let its job through")
        if _status(ctx, _delay(ctx, reason)) != "canceled":
            raise CheckFailed("the REJECT rule let a job through that the ACCEPT rule does not match")
        for uuid in (cont, reject, made[-1]):
            _delete(ctx, made, uuid)

    with ctx.check(BLOCK, "a RATE_LIMIT 1 rule keeps the second of two jobs queued until the first ends"):
        rule = _add(ctx, made, mine, "--action=RATE_LIMIT 1")
        first = _delay(ctx, reason, seconds="5")
        second = _delay(ctx, reason)
        time.sleep(1)
        states = (_status(ctx, first, final=False), _status(ctx, second, final=False))
        if states[0] not in ("waiting", "running") or states[1] != "queued":
            raise CheckFailed(f"with RATE_LIMIT 1 the two jobs are {states}, expected running and queued")
        if (_status(ctx, first), _status(ctx, second)) != ("success", "success"):
            raise CheckFailed("the rate-limited jobs did not both succeed in the end")
        _delete(ctx, made, rule)

    with ctx.check(BLOCK, "an ad-hoc --reason=rate-limit:2:LABEL lets two of three jobs start, then the third"):
        limited = f"rate-limit:2:{reason}"
        jobs = [_delay(ctx, limited, "--no-locks", seconds="5") for _ in range(3)]     # in parallel but for the limit
        states = [_status(ctx, job, final=False) for job in jobs]
        if states != ["running", "running", "queued"]:
            raise CheckFailed(f"the jobs of an ad-hoc rate limit of 2 are {states}, expected two running, one queued")
        if [_status(ctx, job) for job in jobs] != ["success"] * 3:
            raise CheckFailed("the jobs of the ad-hoc rate limit did not all succeed in the end")
