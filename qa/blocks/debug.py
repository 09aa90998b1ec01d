"""Block ``debug``: gnt-debug as Ganeti's QA and its users drive it: delay on the master and on a
node, the locks a running job holds, a job submitted from a JSON file of opcodes, the allocator's
input for a request, and the job queue's self-test.

The file of opcodes is written into a temporary file on the master and removed afterwards.
"""
from __future__ import annotations

import json
import re
import shlex
import time

from qa.context import Context
from qa.report import CheckFailed

BLOCK = "debug"


def _job_id(text: str) -> str:
    match = re.search(r"(?:JobID:|Submitted jobs) (\d+)", text) or re.match(r"(\d+)$", text.split("\n", 1)[0])
    if not match:
        raise CheckFailed(f"no job ID in {text!r}")
    return match.group(1)


def _input_fields(ctx: Context, job: str) -> str:
    """The ``Input fields`` part of gnt-job info (the opcodes' parameters)."""
    return ctx.gnt("gnt-job", "info", job).stdout


def run(ctx: Context) -> None:
    facts = ctx.facts
    with ctx.check(BLOCK, "gnt-debug delay on the master, and --no-master -n NODE on another node"):
        ctx.gnt("gnt-debug", "delay", "1")
        node = ctx.need_nodes(1, "a delay")[-1]
        job = _job_id(ctx.gnt("gnt-debug", "delay", "--print-jobid", "--no-master", "-n", node, "1").stdout)
        info = _input_fields(ctx, job)
        if "on_master: False" not in info or f"on_nodes: ['{node}']" not in info or "Status: success" not in info:
            raise CheckFailed(f"gnt-job info {job} does not show a successful delay on {node} only: {info}")

    check = "gnt-debug delay logs nothing, and --repeat 2 runs two delays (Ganeti's iterations)"
    with ctx.check(BLOCK, check):
        ctx.unless_known_bug(check, "")        # (a known bug of genet until it ran Ganeti's delays)
        out = ctx.gnt("gnt-debug", "delay", "--print-jobid", "0.01").stdout
        if not out.strip().isdigit():       # $(gnt-debug delay --print-jobid 0.01) is the job's number
            raise CheckFailed(f"gnt-debug delay --print-jobid printed more than the job ID: {out!r}")
        job = _job_id(ctx.gnt("gnt-debug", "delay", "--print-jobid", "--repeat", "2", "0.01").stdout)
        log = [line for line in _input_fields(ctx, job).splitlines() if "Message:" in line]
        if len(log) != 2 or "Test delay iteration 0/1" not in log[0] or "Test delay iteration 1/1" not in log[1]:
            raise CheckFailed(f"the log of delay --repeat 2 is {log}, expected Ganeti's iterations 0/1 and 1/1")

    with ctx.check(BLOCK, "gnt-debug locks shows the master's node lock held by a running delay"):
        job = _job_id(ctx.gnt("gnt-debug", "delay", "--submit", "5").stdout)
        try:
            deadline = time.monotonic() + 4
            while True:         # until the job has started (and taken its lock)
                rows = [line.split("|") for line in ctx.gnt("gnt-debug", "locks", "--no-headers", "--separator=|",
                                                              "-o", "name,mode,owner").stdout.splitlines()]
                held = [row for row in rows if row[0] == f"node/{facts.master}"]
                if (held and held[0][1] != "-") or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if not held or held[0][1] != "exclusive" or job not in held[0][2]:
                raise CheckFailed(f"gnt-debug locks shows {held} for node/{facts.master}, expected job {job} "
                                  f"holding it exclusively")
        finally:
            ctx.gnt("gnt-job", "wait", job)

    with ctx.check(BLOCK, "gnt-debug submit-job runs a JSON file of opcodes as one job"):
        opcodes = [{"OP_ID": "OP_TEST_DELAY", "duration": 0.25, "on_master": True},
                   {"OP_ID": "OP_TEST_DELAY", "duration": 0.5, "on_master": True}]
        path = ctx.gnt("mktemp", "/tmp/qa-opcodes.XXXXXX").stdout.strip()
        try:
            ctx.gnt("sh", "-c", f"echo {shlex.quote(json.dumps(opcodes))} > {shlex.quote(path)}")
            job = _job_id(ctx.gnt("gnt-debug", "submit-job", "--verbose", path).stdout)
        finally:
            ctx.gnt("rm", "-f", path, check=False)
        ctx.gnt("gnt-job", "wait", job)
        info = _input_fields(ctx, job)
        if info.count("Opcode: OP_TEST_DELAY") != 2 or "duration: 0.5" not in info or "Status: success" not in info:
            raise CheckFailed(f"gnt-job info {job} does not show the two delays of the file, done: {info}")

    request = ["-m", "allocate", "--mem", "128", "-t", "diskless", "-o", ctx.os_name(), f"{ctx.options.prefix}alloc"]
    with ctx.check(BLOCK, "gnt-debug iallocator --dir in shows the allocator's input for an allocation"):
        data = json.loads(ctx.gnt("gnt-debug", "iallocator", "--dir", "in", *request).stdout)
        if data["request"]["type"] != "allocate" or data["request"]["memory"] != 128:
            raise CheckFailed(f"the allocator's request is {data['request']}")
        if sorted(data["nodes"]) != facts.all_nodes or data["cluster_name"] != facts.name:
            raise CheckFailed(f"the allocator's input names nodes {sorted(data['nodes'])}, cluster "
                              f"{data['cluster_name']}")

    with ctx.check(BLOCK, "gnt-debug test-jobqueue"):
        out = ctx.gnt("gnt-debug", "test-jobqueue").stdout
        if "Job queue test successful" not in out:
            raise CheckFailed(f"gnt-debug test-jobqueue did not report success: {out[-300:]}")
