"""The master's job scheduler: filter rules (PAUSE, REJECT, RATE_LIMIT, ACCEPT, CONTINUE), reason
rate limits, max_running_jobs, priority changes and cancellation, on the real queue and processor.

Long jobs are interruptible delays: each waits on a socket its log names until the test lets it go.
"""
from __future__ import annotations

import socket
import time

import pytest

from genet import errors, opcodes
from genet.masterd import LuxiHandlers

from queue_ctx import Ctx

OP_ID = "OP_TEST_DELAY"


@pytest.fixture
def ctx(tmp_path):
    c = Ctx(tmp_path, workers=4)
    yield c
    for job_id in list(c.queue._active):       # let every blocker go, so the workers end
        c.processor.cancel(job_id)
        path = socket_of(c, job_id, timeout=0)
        if path:
            interrupt(path)
    c.close()


def blocker(reason: str | None = None, **params) -> dict:
    """A job that runs until released (at most 30 s), locking nothing."""
    op = opcodes.OpTestDelay(duration=30, interruptible=True, no_locks=True, **params)
    if reason:
        op.reason = [["gnt:user", reason, 1]]
    return op.to_dict()


def quick(**params) -> dict:
    return opcodes.OpTestDelay(duration=0, no_locks=True, **params).to_dict()


def status(ctx, job_id) -> str:
    return ctx.queue.get(job_id)[0]["status"]


def wait_status(ctx, job_id, wanted: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while status(ctx, job_id) != wanted:
        assert time.monotonic() < deadline, f"job {job_id} is {status(ctx, job_id)}, not {wanted}"
        time.sleep(0.01)


def socket_of(ctx, job_id, timeout: float = 10) -> str | None:
    """The socket a running blocker waits on (None once the job ended or, after ``timeout``, if
    it has not started: with a timeout of 0 that is no failure)."""
    deadline = time.monotonic() + timeout
    while True:
        found = ctx.queue.get(job_id)
        if found is None or found[0]["status"] in ("success", "error", "canceled"):
            return None
        paths = [e[3][0] for log in found[0]["oplog"] for e in log if e[2] == "delay-test"]
        if paths:
            return paths[-1]
        if time.monotonic() >= deadline:
            assert timeout == 0, f"job {job_id} never started its delay"
            return None
        time.sleep(0.01)


def interrupt(path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
            sock.sendall(b"x")
        except OSError:         # the delay ended meanwhile
            pass


def release(ctx, job_id) -> None:
    """Let a blocker go and wait for it to succeed."""
    interrupt(socket_of(ctx, job_id))
    wait_status(ctx, job_id, "success")


def add_rule(ctx, predicates, action, priority=0, uuid=None) -> str:
    return LuxiHandlers(ctx).ReplaceFilter(uuid, priority, predicates, action, [])


def test_a_job_behind_a_busy_one_stays_queued_and_can_be_canceled(ctx):
    """When max_running_jobs slots are all taken, the next job is queued, a cancel dequeues it
    and it never runs (Ganeti's gnt-job cancel QA test)."""
    ctx.processor.set_workers(1)
    first, second = ctx.processor.submit([[blocker()], [quick()]])
    socket_of(ctx, first)
    assert status(ctx, second) == "queued"
    assert ctx.processor.cancel(second) == [True, f"Job {second} will be canceled"]
    assert ctx.wait(second)["start_ts"] is None and status(ctx, second) == "canceled"
    release(ctx, first)


def test_a_running_job_is_not_canceled_and_kill_says_why(ctx):
    """When a job runs, cancel refuses; with kill the refusal names genet's threads."""
    [job] = ctx.processor.submit([[blocker()]])
    socket_of(ctx, job)
    assert ctx.processor.cancel(job) == [False, f"Job {job} is running, it cannot be canceled"]
    ok, message = ctx.processor.cancel(job, kill=True)
    assert not ok and "threads of genet-masterd" in message
    release(ctx, job)


def test_pause_keeps_new_jobs_queued_until_the_rule_goes(ctx):
    """When a PAUSE rule matches jobs above its watermark, they wait; deleting it starts them."""
    [old] = ctx.processor.submit([[quick()]])
    ctx.wait(old)
    uuid = add_rule(ctx, [["jobid", [">", "id", "watermark"]]], "PAUSE")
    [paused] = ctx.processor.submit([[quick()]])
    time.sleep(0.2)
    assert status(ctx, paused) == "queued"
    LuxiHandlers(ctx).DeleteFilter(uuid)
    assert ctx.wait(paused)["status"] == "success"


def test_reject_cancels_queued_jobs_naming_the_rule(ctx):
    """When a REJECT rule applies to a queued job, the job is canceled and says by which rule."""
    uuid = add_rule(ctx, [["opcode", ["=", "OP_ID", OP_ID]]], "REJECT")
    [job] = ctx.processor.submit([[quick()]])
    record = ctx.wait(job)
    assert record["status"] == "canceled" and record["opresult"] == [f"Job rejected by filter rule {uuid}"]


def test_reject_cancels_a_job_waiting_for_its_dependency(ctx):
    """When a REJECT rule comes while a job waits for the job it depends on, it is canceled."""
    first, second = ctx.processor.submit([[blocker()], [quick(depends=[[-1, []]], reason=[["gnt:user", "late", 1]])]])
    wait_status(ctx, second, "waiting")
    uuid = add_rule(ctx, [["reason", ["=", "reason", "late"]]], "REJECT")
    record = ctx.wait(second)
    assert record["status"] == "canceled" and record["opresult"] == [f"Job rejected by filter rule {uuid}"]
    release(ctx, first)


def test_accept_before_reject_lets_the_maintenance_through(ctx):
    """When an ACCEPT rule of a better priority matches the reason, REJECT does not apply."""
    add_rule(ctx, [["reason", ["=~", "reason", "pink bunny"]]], "ACCEPT", priority=0)
    add_rule(ctx, [], "REJECT", priority=1)
    ours, other = ctx.processor.submit([[blocker("maintenance pink bunny")], [quick()]])
    assert ctx.wait(other)["status"] == "canceled"
    release(ctx, ours)


def test_continue_rules_are_skipped(ctx):
    """When the first matching rule says CONTINUE, the next one applies."""
    add_rule(ctx, [], "CONTINUE", priority=0)
    add_rule(ctx, [], "REJECT", priority=5)
    [job] = ctx.processor.submit([[quick()]])
    assert ctx.wait(job)["status"] == "canceled"


def test_rate_limit_lets_n_matching_jobs_run_at_once(ctx):
    """When RATE_LIMIT 2 applies, a third matching job waits until one of the two ends."""
    add_rule(ctx, [["opcode", ["=", "OP_ID", OP_ID]]], ["RATE_LIMIT", 2])
    a, b, c = ctx.processor.submit([[blocker()], [blocker()], [blocker()]])
    socket_of(ctx, a), socket_of(ctx, b)
    time.sleep(0.2)
    assert status(ctx, c) == "queued"
    release(ctx, a)
    socket_of(ctx, c)
    release(ctx, b), release(ctx, c)


def test_reason_rate_limit_buckets(ctx):
    """When jobs carry rate-limit:1:evac in their reason, one runs at a time; others don't wait."""
    a, b, free = ctx.processor.submit([[blocker("rate-limit:1:evac")], [blocker("rate-limit:1:evac")], [quick()]])
    socket_of(ctx, a)
    assert ctx.wait(free)["status"] == "success"
    assert status(ctx, b) == "queued"
    release(ctx, a)
    release(ctx, b)


def test_change_priority_moves_a_queued_job_ahead(ctx):
    """When a queued job's priority is raised, it starts before the ones submitted earlier."""
    ctx.processor.set_workers(1)
    first, low, raised = ctx.processor.submit([[blocker()], [blocker()], [blocker()]])
    socket_of(ctx, first)
    assert ctx.processor.change_priority(raised, -10) == [
        True, f"Priorities of pending opcodes for job {raised} have been changed to -10"]
    record = ctx.queue.get(raised)[0]
    assert record["priority"] == -10 and record["ops"][0]["priority"] == -10
    release(ctx, first)
    socket_of(ctx, raised)
    assert status(ctx, low) == "queued"
    release(ctx, raised), release(ctx, low)
    assert ctx.processor.change_priority(raised, 0) == [False, f"Job {raised} not found in queue"]


def test_malformed_rules_are_refused_and_nothing_is_stored(ctx):
    before = ctx.cfg.content()
    for predicates, action, message in (([["jobid", [">", "name", 1]]], "ACCEPT", "unknown field 'name'"),
                                        ([["color", ["=", "id", 1]]], "ACCEPT", "unknown filter predicate"),
                                        ([], ["RATE_LIMIT", 0], "positive integer"),
                                        ([], "DROP", "malformed filter action")):
        with pytest.raises(errors.OpPrereqError, match=message):
            add_rule(ctx, predicates, action)
    with pytest.raises(errors.OpPrereqError, match="Unable to parse UUID"):
        add_rule(ctx, [], "ACCEPT", uuid="not-a-uuid")
    assert ctx.cfg.content() == before


def test_replace_keeps_the_uuid_and_renews_the_watermark(ctx):
    uuid = add_rule(ctx, [], "CONTINUE")
    [job] = ctx.processor.submit([[quick()]])
    ctx.wait(job)
    assert add_rule(ctx, [], "ACCEPT", priority=3, uuid=uuid) == uuid
    rule = ctx.cfg.snapshot().filters[uuid]
    assert (rule["watermark"], rule["priority"], rule["action"]) == (job, 3, "ACCEPT")
    assert rule["reason_trail"][-1][:2] == ["luxid", ""]
