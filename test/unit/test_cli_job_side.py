"""gnt-filter, gnt-job and gnt-debug run as a user types them, against the master's real luxi
handlers, queue and processor (live_luxi): what they print and their exit codes."""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import time

from genet import opcodes
from genet.cli import base as cli_base

from live_luxi import master  # noqa: F401 (a fixture)
from test_job_scheduler import blocker, release, socket_of

DRAIN = '[["jobid", [">", "id", "watermark"]]]'


def run(*argv: str) -> tuple[int, str, str]:
    module = importlib.import_module(f"genet.cli.{argv[0].replace('-', '_')}")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_base.run(argv[0], module.build, list(argv[1:]))
        except SystemExit as exit:          # argparse refusing the command line
            code = exit.code
    return code, out.getvalue(), err.getvalue()


def quick_job(master, **params) -> int:
    return master.processor.submit([[opcodes.OpTestDelay(duration=0, no_locks=True, **params).to_dict()]])[0]


# --- gnt-filter --------------------------------------------------------------------------

def test_filter_add_list_info_replace_delete(master):
    code, out, _ = run("gnt-filter", "add", f"--predicates={DRAIN}", "--action=REJECT", "--reason", "freeze")
    uuid = out.strip()
    assert code == 0 and re.fullmatch(r"[0-9a-f-]{36}", uuid)
    code, out, _ = run("gnt-filter", "list", "--no-headers", "--separator=|", "-o", "uuid,priority,predicates,action")
    assert out == f"{uuid}|0|[['jobid', ['>', 'id', 'watermark']]]|REJECT\n"
    code, out, _ = run("gnt-filter", "info", uuid)
    lines = out.splitlines()
    assert lines[:6:5] == [f"UUID: {uuid}", lines[5]] and lines[4] == "  Action: REJECT"
    assert lines[5].startswith("  Reason trail: [['gnt:user', 'freeze', ")
    assert run("gnt-filter", "replace", "--action=RATE_LIMIT 4", "--priority=7", uuid)[1] == f"{uuid}\n"
    assert run("gnt-filter", "list", "--no-headers", "-o", "action,priority")[1].split() == ["['RATE_LIMIT',", "4]", "7"]
    assert run("gnt-filter", "delete", uuid)[0] == 0
    assert run("gnt-filter", "list", "--no-headers")[1] == ""


def test_filter_refusals_and_list_fields(master):
    code, _, err = run("gnt-filter", "add", "--action=DROP")
    assert code == 1 and "malformed filter action" in err
    code, _, err = run("gnt-filter", "delete", "8b53f7de-f8e2-4470-99bd-1efe746e434f")
    assert code == 1 and "does not exist" in err
    code, _, err = run("gnt-filter", "add", "--predicates=[not json")
    assert code == 2 and "invalid JSON" in err
    code, out, _ = run("gnt-filter", "list-fields", "--no-headers", "--separator=|")
    assert [line.split("|")[0] for line in out.splitlines()] == [
        "action", "predicates", "priority", "reason_trail", "uuid", "watermark"]
    assert run("gnt-filter", "list", "-o", "colour")[0] == 14


def test_a_paused_job_shows_queued_and_runs_once_the_rule_is_deleted(master):
    uuid = run("gnt-filter", "add", f"--predicates={DRAIN}", "--action=PAUSE")[1].strip()
    job = quick_job(master)
    assert run("gnt-job", "list", "--no-headers", "-o", "status", str(job))[1] == "queued\n"
    run("gnt-filter", "delete", uuid)
    assert run("gnt-job", "wait", str(job)) == (0, "", "")


# --- gnt-job -----------------------------------------------------------------------------

def test_job_list_prints_the_jobs_in_the_order_asked(master):
    ids = [quick_job(master) for _ in range(3)]
    for job in ids:
        master.wait(job)
    asked = [str(i) for i in reversed(ids)]
    assert run("gnt-job", "list", "--no-headers", "-o", "id", *asked)[1].split() == asked


def test_cancel_by_state_lists_the_jobs_and_needs_force(master):
    master.processor.set_workers(1)
    first = master.processor.submit([[blocker()]])[0]
    socket_of(master, first)
    second = quick_job(master)
    code, out, err = run("gnt-job", "cancel", "--queued")
    assert code == 13 and re.search(rf"^\s*{second} queued\s+TEST_DELAY\(0.0\)$", out, re.MULTILINE)
    assert "--force" in err and master.queue.get(second)[0]["status"] == "queued"
    assert run("gnt-job", "cancel", "--queued", "--force") == (0, f"Job {second} will be canceled\n", "")
    code, out, _ = run("gnt-job", "cancel", "--kill", "--yes-do-it", str(first))
    assert code == 1 and "cannot be killed" in out
    release(master, first)
    code, _, err = run("gnt-job", "cancel", "--queued", "--force")
    assert code == 1 and "No jobs with the requested status have been found" in err


def test_cancel_refuses_ids_with_a_state_and_kill_without_yes_do_it(master):
    code, _, err = run("gnt-job", "cancel", "--pending", "1")
    assert code == 1 and "Either a status filter or job ID(s) must be specified and never both" in err
    code, _, err = run("gnt-job", "cancel", "--kill", "1")
    assert code == 1 and "The --kill option must be confirmed with --yes-do-it" in err


def test_change_priority_of_a_queued_job(master):
    master.processor.set_workers(1)
    first = master.processor.submit([[blocker()]])[0]
    socket_of(master, first)
    second = quick_job(master)
    assert run("gnt-job", "change-priority", "--priority", "high", str(second)) == (
        0, f"Priorities of pending opcodes for job {second} have been changed to -10\n", "")
    assert run("gnt-job", "list", "--no-headers", "-o", "priority,oppriority", str(second))[1].split() == ["-10", "-10"]
    code, _, err = run("gnt-job", "change-priority", str(second))
    assert code == 1 and err == "--priority option must be given.\n"
    release(master, first)


def test_wait_prints_nothing_and_fails_with_the_job(master):
    good = quick_job(master)
    assert run("gnt-job", "wait", str(good)) == (0, "", "")
    bad = master.processor.submit([[opcodes.OpNodeRemove(node_name="ghost").to_dict()]])[0]
    code, out, err = run("gnt-job", "wait", str(bad))
    assert (code, out) == (1, "") and err.startswith(f"Job {bad} failed: ") and "ghost" in err


def test_watch_underlines_its_header(master):
    job = quick_job(master)
    code, out, _ = run("gnt-job", "watch", str(job))
    header, dashes = out.splitlines()[:2]
    assert (code, header, dashes) == (0, f"Output from job {job} follows", "-" * len(header))


# --- gnt-debug ---------------------------------------------------------------------------

def test_submit_job_repeats_jobs_and_opcodes_and_reports_timings(master, tmp_path):
    path = tmp_path / "ops.json"
    path.write_text(json.dumps([{"OP_ID": "OP_TEST_DELAY", "duration": 0, "no_locks": True}]))
    code, out, _ = run("gnt-debug", "submit-job", "--op-repeat", "3", "--job-repeat", "2", "--timing-stats",
                       "--verbose", "--priority", "low", str(path))
    assert code == 0
    assert re.search(r"^Submitted jobs (\d+), (\d+)$", out, re.MULTILINE)
    assert "C:op        6\nC:job       2\n" in out and "T:total" in out
    jobs = master.queue.query(None, ["ops", "status"])
    assert [(len(ops), {op["priority"] for op in ops}, status) for ops, status in jobs] == [(3, {10}, "success")] * 2


def test_submit_job_refuses_a_bad_file_before_submitting(master, tmp_path):
    path = tmp_path / "ops.json"
    path.write_text(json.dumps([{"OP_ID": "OP_NO_SUCH_THING"}]))
    code, _, err = run("gnt-debug", "submit-job", "--each", str(path))
    assert code == 1 and "unknown opcode" in err and master.queue.query(None, ["id"]) == []


def test_test_jobqueue_passes_against_the_real_queue(master):
    code, out, err = run("gnt-debug", "test-jobqueue")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "Testing job submission" and out.splitlines()[-1] == "Job queue test successful"
    assert "Testing partial job failure" in out


def test_test_osparams_logs_the_secret_parameters(master):
    code, out, _ = run("gnt-debug", "test-osparams", "--os-parameters-secret", "key=value")
    assert code == 0 and out.rstrip().endswith("Secret OS parameters: {'key': 'value'}")
    code, _, err = run("gnt-debug", "test-osparams")
    assert code == 1 and "Opcode needs secret parameters" in err


def test_locks_lists_owners_and_waiting_jobs(master):
    holder = master.processor.submit([[opcodes.OpTestDelay(duration=30, interruptible=True).to_dict()]])[0]
    socket_of(master, holder)
    waiter = master.processor.submit([[opcodes.OpTestDelay(duration=0).to_dict()]])[0]
    wanted = f"node/node1|exclusive|{holder}|exclusive:{waiter}"
    deadline = time.monotonic() + 30          # the waiter queues for the lock in a thread of its own
    while True:
        code, out, _ = run("gnt-debug", "locks", "--no-headers", "--separator=|")
        if code != 0 or wanted in out.splitlines() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert code == 0 and wanted in out.splitlines()
    assert run("gnt-debug", "locks", "-o", "name,mode")[1].splitlines()[0].split() == ["Name", "Mode"]
    release(master, holder)
    assert master.wait(waiter)["status"] == "success"


def test_metad_and_wconfd_name_what_genet_has_instead(master):
    for daemon, answer in (("metad", "genet has no metad"), ("wconfd", "genet has no WConfD")):
        code, out, err = run("gnt-debug", daemon, "echo", "hello")
        assert (code, out) == (1, "") and err.startswith(answer)
