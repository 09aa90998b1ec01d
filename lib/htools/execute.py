"""hbal -X: the solution carried out as jobs, one job a move, each jobset's jobs in parallel.

As Ganeti's hbal does (Jobs.execWithCancel): the jobsets run one after the other, the next
only when every job of the last succeeded; a first Ctrl-C lets the running jobset finish and
stops there, a second (or SIGTERM) exits at once. Every job carries hbal's reason and comment.
"""
from __future__ import annotations

import signal
import sys
import time

from genet import errors, opcodes
from genet.cli.gnt_job import PRIORITIES
from genet.htools import display, live
from genet.htools.moves import (FAILOVER, FAILOVER_AND_REPLACE, FAILOVER_TO_ANY, REPLACE_AND_FAILOVER,
                                REPLACE_PRIMARY, REPLACE_SECONDARY)



def move_opcodes(step, node_names: list[str]) -> list:
    """The opcodes of one move (Ganeti's iMoveToJob): migrations that may fail over, and
    replace-disks to a new secondary."""
    inst = step.inst.name

    def mig(target=None):
        if step.inst.forthcoming or not step.inst.running:
            return opcodes.OpInstanceFailover(instance_name=inst, target_node=target)
        return opcodes.OpInstanceMigrate(instance_name=inst, target_node=target, allow_failover=True,
                                         ignore_hvversions=True, allow_runtime_changes=False)

    def rep(node):
        return opcodes.OpInstanceReplaceDisks(instance_name=inst, mode="replace_new_secondary",
                                              remote_node=node_names[node])
    return {
        FAILOVER: lambda: [mig()],
        FAILOVER_TO_ANY: lambda: [mig(node_names[step.new_p])],
        REPLACE_PRIMARY: lambda: [mig(), rep(step.new_p), mig()],
        REPLACE_SECONDARY: lambda: [rep(step.new_s)],
        REPLACE_AND_FAILOVER: lambda: [rep(step.new_p), mig()],
        FAILOVER_AND_REPLACE: lambda: [mig(), rep(step.new_s)],
    }[step.move]()


class ExecutionError(Exception):
    """A job of the solution could not be submitted or did not succeed."""


def _annotated(ops: list, reason: str, comment: str, priority: int | None) -> list[dict]:
    now = time.time_ns()
    out = []
    for op in ops:
        op.reason = [["hbal", reason, now]]
        op.comment = comment
        if priority is not None:
            op.priority = priority
        out.append(op.to_dict())
    return out


def _wait(client, job_ids: list[int]) -> list[tuple[int, str]]:
    """Each job's final status, waiting on the master for every change (no polling)."""
    statuses = []
    for job_id in job_ids:
        info, serial = None, 0
        while True:
            change = client.wait_for_job_change(job_id, ["status"], info, serial, 10.0)
            if change is None:
                statuses.append((job_id, "lost"))
                break
            if change == "nochange":
                continue
            info = change["job_info"]
            serial = max([serial] + [entry[0] for entry in change["log_entries"]])
            if info[0] in ("success", "error", "canceled"):
                statuses.append((job_id, info[0]))
                break
    return statuses


def job_sets(steps, max_parallel: int | None = None) -> list[list]:
    """The moves in sets that touch no node twice (Ganeti's splitJobs), each cut into pieces of
    at most ``max_parallel`` moves."""
    sets = display.job_sets([(display.involved_nodes(s), s) for s in steps])
    if not max_parallel:
        return sets
    return [js[k:k + max_parallel] for js in sets for k in range(0, len(js), max_parallel)]


def carry_out(client, st, steps, reason: str, comment: str = "rebalancing via hbal (genet)",
              max_parallel: int | None = None, priority: int | None = None, say=print,
              first_set_only: bool = False, stop=lambda: False) -> int:
    """Run the moves as jobs, set after set; the number of moves done. ExecutionError when a job
    cannot be submitted or fails (the sets after it are not started); ``stop()`` is asked before
    each set."""
    sets = job_sets(steps, max_parallel)
    if first_set_only:
        sets = sets[:1]
    done = 0
    for number, jobset in enumerate(sets):
        if stop():
            say("Exiting early due to user request, ")
            say(f"{number}jobset(s) submitted: ")
            say(f"{len(sets) - number} jobset(s) not submitted:")
            break
        say("Executing jobset for instances " + ", ".join(step.inst.name for step in jobset))
        try:
            ids = [client.submit_job(_annotated(move_opcodes(step, st.node_names), reason, comment, priority))
                   for step in jobset]
        except errors.GenericError as err:
            raise ExecutionError(f"Job submission error: {err}") from None
        say("Got job IDs " + ",".join(str(i) for i in ids))
        failures = [(i, s) for i, s in _wait(client, ids) if s != "success"]
        if failures:
            raise ExecutionError(f"Not all jobs completed successfully: {failures}\nAborting.")
        done += len(jobset)
    return done


def run_jobs(args, st, steps) -> int:
    """hbal -X: the moves as jobs, with Ganeti's Ctrl-C handling."""
    if args.luxi is None:
        print("Error: hbal: Execution of commands possible only on LUXI", file=sys.stderr)
        return 1
    cancel = {"requested": False}

    def on_int(signum, frame):
        cancel["requested"] = True
        print("Cancel request registered, will exit at the end of the current job set...", flush=True)

    def on_term(signum, frame):
        print("Double cancel request, exiting now...", flush=True)
        raise SystemExit(2)
    signal.signal(signal.SIGINT, on_int)
    signal.signal(signal.SIGTERM, on_term)
    try:
        carry_out(live.client_for(args), st, steps, args.reason or "hbal (genet) called",
                  priority=PRIORITIES[args.priority] if args.priority else None,
                  say=lambda line: print(line, flush=True), first_set_only=args.first_job_group,
                  stop=lambda: cancel["requested"])
    except ExecutionError as err:
        print(f"Error: hbal: {err}", file=sys.stderr)
        return 1
    return 0
