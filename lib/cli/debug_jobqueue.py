"""gnt-debug test-jobqueue: the job queue's self-test, run against the live master as Ganeti's is.

It checks that bad submissions are refused whole, that dependencies (relative ones included) are
resolved and honoured, and, with OpTestJqueue jobs that stop at each phase until this client has
looked at them, that a job is "waiting" while it takes its locks and "running" while it executes,
that its log messages arrive in order, and that a failing opcode fails the rest of its job.
"""
from __future__ import annotations

import socket

from genet import errors, luxi, opcodes
from genet.cli import base
from genet.opcodes.test import (ELOG_JQUEUE_TEST, JQT_EXEC, JQT_EXPANDNAMES, JQT_LOGMSG, JQT_MSGPREFIX,
                                 JQT_STARTMSG)

# statuses a job must be in when the opcode reports each phase
PHASE_STATUS = {JQT_EXPANDNAMES: "waiting", JQT_EXEC: "running", JQT_LOGMSG: "running"}
TEST_MESSAGES = ["Hello World", "A", "", "B", "Foo|bar|baz"]


def _delay(seconds: float = 0, **params) -> dict:
    return opcodes.OpTestDelay(duration=seconds, no_locks=True, **params).to_dict()


def _refused(client: luxi.Client, method: str, *args) -> None:
    try:
        client.call(method, *args)
    except errors.GenericError:
        return
    raise errors.OpExecError(f"{method} of an invalid submission did not fail as it should")


def _submission(client: luxi.Client) -> None:
    """An opcode with a priority out of range makes its whole job refused, and a submission of
    several jobs is refused whole when one of them is."""
    print("Testing job submission")
    for priority in (-21, 20):
        for before, after in ((0, 0), (3, 0), (0, 3), (4, 2)):
            bad = {**_delay(), "priority": priority}
            ops = [_delay()] * before + [bad] + [_delay()] * after
            _refused(client, "SubmitJob", ops)
            _refused(client, "SubmitManyJobs", [[_delay(), _delay(dry_run=True)], ops])
    print("Job submission tests were successful")


def _dependencies(client: luxi.Client) -> None:
    """Relative dependencies resolve to the jobs of the same submission and order their runs."""
    print("Testing job dependencies")
    _refused(client, "SubmitJob", [_delay(depends=[[-1, []]])])
    jobs = [[_delay(1)], [_delay(1, depends=[[-1, []]])], [_delay(1, depends=[[-2, ["success"]]])],
            [_delay(1, depends=[])], [_delay(1, depends=[[-2, ["success"]]])]]
    ids = [job_id for _, job_id in client.call("SubmitManyJobs", jobs)]
    for job_id in ids:
        base.poll_job(client, job_id, lambda entry: None)
    rows = client.query_jobs(ids, ["id", "opexec", "ops"])
    for index, target in ((1, ids[0]), (2, ids[0]), (4, ids[2])):
        if rows[index][2][0]["depends"][0][0] != target:
            raise errors.OpExecError(f"Job {ids[index]}'s opcode doesn't depend on the correct job ID ({target})")
    start = [row[1][0] for row in rows]
    if not (start[0] <= start[1] and start[0] <= start[2] and start[2] <= start[4]):
        raise errors.OpExecError(f"Jobs did not run in correct order: {rows}")
    print("Job dependency tests were successful")


class _Reporter:
    """Follows a test job's log: answers its notifications after checking the job's status, and
    collects the test messages."""

    def __init__(self, client: luxi.Client, job_id: int):
        self.client, self.job_id = client, job_id
        self.messages: list[str] = []
        self.current: list[str] | None = None     # the messages since the last start message

    def __call__(self, entry: list) -> None:
        _, _, kind, message = entry
        if kind == ELOG_JQUEUE_TEST:
            self._notified(*message)
        elif isinstance(message, str) and message.startswith(JQT_MSGPREFIX):
            if self.current is None:
                raise errors.OpExecError("Received test message without a preceding start message")
            self.current.append(message[len(JQT_MSGPREFIX):])
            self.messages.append(message[len(JQT_MSGPREFIX):])

    def _notified(self, path: str, test: str, arg) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30.0)
            sock.connect(path)
            [[status]] = self.client.query_jobs([self.job_id], ["status"])
            wanted = PHASE_STATUS.get(test)
            if wanted is not None and status != wanted:
                raise errors.OpExecError(f"Job status during {test} is '{status}', not '{wanted}' as expected")
            if test == JQT_STARTMSG:
                self.current = []
            elif test == JQT_LOGMSG and len(self.current or []) != arg:
                raise errors.OpExecError(f"Received {len(self.current or [])} test messages when {arg} are expected")


def _phases(client: luxi.Client, ns) -> None:
    """Jobs of OpTestJqueue opcodes: one succeeding, two succeeding, one failing, and four whose
    third fails (the fourth then fails with it)."""
    modes = (("Testing job success", [False], ["success"]),
             ("Testing multiple successful opcodes", [False, False], ["success", "success"]),
             ("Testing job failure", [True], ["error"]),
             ("Testing partial job failure", [False, False, True, False], ["success", "success", "error", "error"]))
    for title, fails, expect_opstatus in modes:
        print(title)
        ops = [opcodes.OpTestJqueue(notify_waitlock=True, notify_exec=True, log_messages=TEST_MESSAGES, fail=fail)
               for fail in fails]
        if ns.priority is not None:
            for op in ops:
                op.priority = ns.priority
        job_id = client.submit_job([op.to_dict() for op in base.prepare(ns, ops)])
        reporter = _Reporter(client, job_id)
        failed = any(fails)
        try:
            results = base.poll_job(client, job_id, reporter)
        except errors.OpExecError as err:
            if not failed:
                raise
            print(f"Ignoring error for 'job fail' test: {err}")
        else:
            if failed:
                raise errors.OpExecError("Job didn't fail when it should")
            if len(results) != len(ops):
                raise errors.OpExecError(f"Received {len(results)} results ({results}), expected {len(ops)}")
        ran = fails[:fails.index(True) + 1] if failed else fails
        if reporter.messages != TEST_MESSAGES * len(ran):
            raise errors.OpExecError(f"Received test messages don't match input (input {TEST_MESSAGES * len(ran)!r},"
                                     f" received {reporter.messages!r})")
        [[status, opstatus]] = client.query_jobs([job_id], ["status", "opstatus"])
        if status != ("error" if failed else "success") or opstatus != expect_opstatus:
            raise errors.OpExecError(f"Job {job_id} ended {status} with opcode statuses {opstatus},"
                                     f" expected {expect_opstatus}")


def test_jobqueue(ns) -> int:
    client = luxi.Client()
    _submission(client)
    _dependencies(client)
    _phases(client, ns)
    print("Job queue test successful")
    return 0
