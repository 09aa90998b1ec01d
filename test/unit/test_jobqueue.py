"""Job queue and processor: states, persistence, replication gate, priorities, deps, cancel."""
import json
import time

import pytest

from genet import errors, opcodes
from genet.queue_store import QueueStore

from queue_ctx import Ctx


@pytest.fixture
def ctx(tmp_path):
    c = Ctx(tmp_path)
    yield c
    c.close()


def delay(seconds=0.0, **kw):
    return opcodes.OpTestDelay(duration=seconds, **kw).to_dict()


def test_job_runs_to_success_with_timestamps_and_result(ctx):
    [job_id] = ctx.processor.submit([[delay()]])
    job = ctx.wait(job_id)
    assert job["status"] == "success" and job["opstatus"] == ["success"] and job["opresult"] == [True]
    assert job["received_ts"] <= job["start_ts"] <= job["end_ts"]
    assert job["summary"] == ["TEST_DELAY(0.0)"]


def test_each_opcode_gets_the_queues_entry_in_its_reason_trail(ctx):
    user = ["gnt:user", "maintenance", 1]
    [job_id] = ctx.processor.submit([[delay(reason=[user]), delay()]])
    ops = ctx.wait(job_id)["ops"]
    assert [[entry[:2] for entry in op["reason"]] for op in ops] == [
        [user[:2], ["gnt:opcode:test_delay", f"job={job_id};index=0"]],
        [["gnt:opcode:test_delay", f"job={job_id};index=1"]]]


def test_final_state_is_stored_and_replicated_before_it_is_visible(ctx):
    """When a job is reported final, its final record was already replicated."""
    [job_id] = ctx.processor.submit([[delay()]])
    ctx.wait(job_id)
    statuses = [json.loads(text)["status"] for jid, _, text, _ in ctx.replicated if jid == job_id]
    assert statuses[-1] == "success"
    assert ctx.queue.store.get(job_id)[0]["status"] == "success"


def test_failed_prereq_records_error_in_opresult(ctx):
    op = opcodes.OpNodeRemove(node_name="ghost").to_dict()
    [job_id] = ctx.processor.submit([[op, delay()]])
    job = ctx.wait(job_id)
    assert job["status"] == "error"
    assert job["opresult"][0] == ["OpPrereqError", ["node 'ghost' is not in the cluster", "unknown_entity"]]
    assert job["opresult"][1] == ["OpExecError", ["Error in previous opcode"]]


def test_jobs_without_conflicting_locks_run_in_parallel(ctx):
    """When four 0.5 s jobs share no exclusive lock, they take about 0.5 s together (2 s in a row)."""
    start = time.monotonic()
    ids = ctx.processor.submit([[delay(0.5, no_locks=True)] for _ in range(4)])
    for job_id in ids:
        ctx.wait(job_id)
    assert time.monotonic() - start < 1.5


def test_dependency_waits_for_and_follows_the_other_job(ctx):
    ids = ctx.processor.submit([[delay(0.3)], [delay(0, depends=[[-1, ["success"]]])]])
    second = ctx.wait(ids[1])
    first = ctx.wait(ids[0])
    assert second["status"] == "success"
    assert second["start_ts"] >= first["end_ts"]


def test_dependency_with_unaccepted_status_fails_the_job(ctx):
    bad = opcodes.OpNodeRemove(node_name="ghost").to_dict()
    ids = ctx.processor.submit([[bad], [delay(0, depends=[[-1, ["success"]]])]])
    job = ctx.wait(ids[1])
    assert job["status"] == "error"
    assert "has status 'error'" in job["opresult"][0][1][0]


def test_relative_dependency_outside_the_submission_is_refused(ctx):
    with pytest.raises(errors.OpPrereqError, match="outside its submission"):
        ctx.processor.submit([[delay(0, depends=[[-1, []]])]])


def test_queued_job_can_be_canceled_and_never_runs(tmp_path):
    ctx = Ctx(tmp_path, workers=1)
    try:
        blocker, victim = ctx.processor.submit([[delay(0.5)], [delay(0)]])
        time.sleep(0.05)
        assert ctx.processor.cancel(victim) == [True, f"Job {victim} will be canceled"]
        job = ctx.wait(victim)
        assert job["status"] == "canceled" and job["start_ts"] is None
        assert ctx.wait(blocker)["status"] == "success"
        assert ctx.processor.cancel(victim) == [False, f"Job {victim} not found in queue"]
    finally:
        ctx.close()


def test_higher_priority_job_is_picked_first(tmp_path):
    ctx = Ctx(tmp_path, workers=1)
    try:
        first = ctx.processor.submit([[delay(0.3)]])[0]
        time.sleep(0.05)
        low, high = ctx.processor.submit([[delay(0, priority=10)], [delay(0, priority=-10)]])
        low_job, high_job = ctx.wait(low), ctx.wait(high)
        assert high_job["end_ts"] <= low_job["start_ts"]
        ctx.wait(first)
    finally:
        ctx.close()


def test_drained_queue_refuses_new_jobs(ctx, node_env):
    ctx.queue.set_drain(True)
    with pytest.raises(errors.JobQueueDrainError):
        ctx.processor.submit([[delay()]])
    ctx.queue.set_drain(False)
    assert ctx.processor.submit([[delay()]])


def test_wait_for_change_reports_log_entries_and_final_status(ctx):
    [job_id] = ctx.processor.submit([[delay(0.2)]])
    seen, info, serial = [], None, 0
    while True:
        change = ctx.queue.wait_for_change(job_id, ["status"], info, serial, 5)
        assert change not in (None, "nochange")
        info = change["job_info"]
        seen.append(info[0])
        if info[0] in ("success", "error"):
            break
    assert seen[-1] == "success"
    assert ctx.queue.wait_for_change(99999, ["status"], None, 0, 0.1) is None


def test_wait_for_change_answers_a_final_job_at_once_even_when_all_of_it_was_seen(ctx):
    """When a finished job is asked for again with what the caller already saw (its final
    info, the serial of its last log entry), its info comes back at once, not "nochange"
    after the timeout: Ganeti's poll loop stops only on a reply without log entries."""
    [job_id] = ctx.processor.submit([[delay(0, repeat=3)]])
    ctx.wait(job_id)
    first = ctx.queue.wait_for_change(job_id, ["status"], None, None, 5)
    assert first["job_info"] == ["success"] and len(first["log_entries"]) == 3
    last_serial = first["log_entries"][-1][0]
    start = time.monotonic()
    again = ctx.queue.wait_for_change(job_id, ["status"], ["success"], last_serial, 5)
    assert time.monotonic() - start < 1
    assert again == {"job_info": ["success"], "log_entries": []}


def test_wait_for_change_still_waits_on_a_running_job_that_did_not_change(ctx):
    """When a running job has nothing new for the caller, the call waits (here until the
    job ends) instead of answering at once."""
    [job_id] = ctx.processor.submit([[delay(0.5, repeat=1)]])
    deadline = time.monotonic() + 5
    while True:     # running, with its one log line ("Test delay iteration 0/0") published
        found = ctx.queue.get(job_id)
        if found and found[0]["status"] == "running" and found[0]["oplog"][0]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.005)
    serial = found[0]["oplog"][0][-1][0]
    start = time.monotonic()
    change = ctx.queue.wait_for_change(job_id, ["status"], ["running"], serial, 5)
    assert change["job_info"] == ["success"] and time.monotonic() - start > 0.2


def test_restart_resumes_queued_and_fails_running_jobs(tmp_path):
    """When masterd dies, queued jobs run after restart; running ones end as errors, never twice."""
    ctx = Ctx(tmp_path, workers=1)
    running, queued = ctx.processor.submit([[delay(2)], [delay(0)]])
    time.sleep(0.2)
    ctx.processor.stop()
    ctx.queue.stop()
    ctx.queue.store.close()
    again = Ctx(tmp_path, workers=2)
    try:
        again.processor.recover("node1")
        failed = again.wait(running)
        assert failed["status"] == "error"
        assert "marked failed" in failed["opresult"][0][1][0]
        assert again.wait(queued)["status"] == "success"
        assert again.processor.submit([[delay()]])[0] == queued + 1
    finally:
        again.close()


def test_archive_and_autoarchive_keep_jobs_queryable(ctx):
    ids = ctx.processor.submit([[delay()] for _ in range(3)])
    for job_id in ids:
        ctx.wait(job_id)
    assert ctx.queue.archive([ids[0]]) == [ids[0]]
    assert ctx.queue.archive([ids[0]]) == []
    assert ctx.queue.query([ids[0]], ["id", "archived"]) == [[ids[0], True]]
    assert ctx.queue.auto_archive(0, 10) == (2, 0)
    assert [r[1] for r in ctx.queue.query(ids, ["id", "archived"])] == [True, True, True]


def test_quorum_failure_blocks_publication_until_replication_succeeds(tmp_path):
    """When candidates stop acknowledging, a job's final state is not reported; once they do, it is."""
    state = {"up": True, "calls": 0}

    def replicate(records):
        state["calls"] += 1
        if not state["up"]:
            raise errors.QuorumError("no candidates")
    ctx = Ctx(tmp_path, replicate=replicate)
    try:
        [job_id] = ctx.processor.submit([[delay(0.3)]])
        state["up"] = False
        time.sleep(1.0)
        assert ctx.queue.get(job_id)[0]["status"] != "success"
        assert ctx.queue.store.get(job_id)[0]["status"] == "success"   # durable on the master
        state["up"] = True
        assert ctx.wait(job_id)["status"] == "success"
    finally:
        ctx.close()


def test_replica_never_takes_an_older_version_of_a_job(tmp_path):
    """When a late full resync carries an older version of a job, the replica keeps the newer one."""
    store = QueueStore(tmp_path / "replica.db")
    new = json.dumps({"id": 1, "status": "success", "end_ts": [1, 0]})
    old = json.dumps({"id": 1, "status": "running", "end_ts": None})
    store.write([(1, 0, new, 7)])
    store.write([(1, 0, old, 5)])
    assert store.get(1)[0]["status"] == "success"
    store.write([(1, 1, new, 8)])
    assert store.get(1)[1] is True


def test_failed_replication_refuses_the_submission_quickly_and_the_job_never_runs(tmp_path):
    """When candidates do not acknowledge a submission, the client gets QuorumError at once
    and the stored job ends as an error instead of running later."""
    def replicate(records):
        raise errors.QuorumError("acknowledged by 1 of 3")
    ctx = Ctx(tmp_path, replicate=replicate)
    try:
        for _ in range(3):      # the first and the later submissions all fail at once
            start = time.monotonic()
            with pytest.raises(errors.QuorumError, match="1 of 3"):
                ctx.processor.submit([[delay()]])
            assert time.monotonic() - start < 5
        time.sleep(0.7)
        jobs = ctx.queue.store.load()
        assert len(jobs) == 3
        for job in jobs:
            assert job["status"] == "error" and "was not accepted" in job["opresult"][0][1][0]
            assert job["start_ts"] is None
    finally:
        ctx.close()


def test_worker_pool_grows_and_shrinks(ctx):
    ctx.processor.set_workers(1)
    start = time.monotonic()
    ids = ctx.processor.submit([[delay(0.2, no_locks=True)] for _ in range(3)])
    for job_id in ids:
        ctx.wait(job_id)
    assert time.monotonic() - start >= 0.6
    ctx.processor.set_workers(3)
    start = time.monotonic()
    ids = ctx.processor.submit([[delay(0.4, no_locks=True)] for _ in range(3)])
    for job_id in ids:
        ctx.wait(job_id)
    assert time.monotonic() - start < 0.9           # one after the other would take 1.2 s
