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
from genet.htools import display, live
from genet.htools.moves import (FAILOVER, FAILOVER_AND_REPLACE, FAILOVER_TO_ANY, REPLACE_AND_FAILOVER,
                                REPLACE_PRIMARY, REPLACE_SECONDARY)

PRIORITIES = {"low": 10, "normal": 0, "high": -10}


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


def _annotate(ops: list, args) -> list[dict]:
    now = time.time_ns()
    reason = args.reason or "hbal (genet) called"
    out = []
    for op in ops:
        op.reason = [["hbal", reason, now]]
        op.comment = "rebalancing via hbal (genet)"
        if args.priority:
            op.priority = PRIORITIES[args.priority]
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


def run_jobs(args, st, steps) -> int:
    if args.luxi is None:
        print("Error: hbal: Execution of commands possible only on LUXI", file=sys.stderr)
        return 1
    sets = display.job_sets([(display.involved_nodes(s), s) for s in steps])
    if args.first_job_group:
        sets = sets[:1]
    cancel = {"requested": False}

    def on_int(signum, frame):
        cancel["requested"] = True
        print("Cancel request registered, will exit at the end of the current job set...", flush=True)

    def on_term(signum, frame):
        print("Double cancel request, exiting now...", flush=True)
        raise SystemExit(2)
    signal.signal(signal.SIGINT, on_int)
    signal.signal(signal.SIGTERM, on_term)
    client = live.client_for(args)
    for number, jobset in enumerate(sets):
        if cancel["requested"]:
            print("Exiting early due to user request, ")
            print(f"{number}jobset(s) submitted: ")
            print(f"{len(sets) - number} jobset(s) not submitted:")
            return 0
        names = ", ".join(step.inst.name for step in jobset)
        print(f"Executing jobset for instances {names}", flush=True)
        try:
            ids = [client.submit_job(_annotate(move_opcodes(step, st.node_names), args)) for step in jobset]
        except errors.GenericError as err:
            print(f"Error: hbal: Job submission error: {err}", file=sys.stderr)
            return 1
        print("Got job IDs " + ",".join(str(i) for i in ids), flush=True)
        failures = [(i, s) for i, s in _wait(client, ids) if s != "success"]
        if failures:
            print(f"Error: hbal: Not all jobs completed successfully: {failures}\nAborting.", file=sys.stderr)
            return 1
    return 0
