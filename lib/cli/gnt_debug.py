"""gnt-debug: debugging commands (delay, submit-job, test-jobqueue, test-osparams, iallocator, locks;
metad and wconfd say what stands in for those Ganeti daemons in genet)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from genet import errors, luxi, opcodes
from genet.cli import base
from genet.cli.debug_jobqueue import test_jobqueue
from genet.cli.gnt_job import parse_priority
from genet.ptypes import parse_size

LOCK_FIELDS = ["name", "mode", "owner", "pending"]
# Ganeti daemons genet does not have, and what does their work in genet
ABSENT_DAEMONS = {
    "wconfd": "genet has no WConfD: genet-masterd itself holds the configuration and the locks"
              " (gnt-debug locks lists the locks, gnt-cluster redist-conf pushes the configuration to the nodes)",
    "metad": "genet has no metad: no genet daemon serves instance metadata to the OS scripts; they get"
             " their parameters from genet-noded when they run",
}


def cmd_delay(ns) -> int:
    op = base.opcode_from_args(opcodes.OpTestDelay, ns)
    base.submit_or_run(ns, [op])
    return 0


def _load_ops(path: str, ns) -> list[dict]:
    """The opcodes of one file (a JSON list of opcodes, Ganeti's serialized form), checked here so a
    typo is reported before anything is submitted; --dry-run and --priority set on each."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        raise errors.OpPrereqError(f"cannot read opcodes from {path}: {err}", errors.ECode.INVAL) from None
    if not isinstance(data, list) or not data:
        raise errors.OpPrereqError(f"{path} must hold a non-empty JSON list of opcodes", errors.ECode.INVAL)
    ops = [opcodes.from_dict(item) for item in data]
    for op in ops:
        op.dry_run = op.dry_run or ns.dry_run
        if ns.priority is not None:
            op.priority = ns.priority
    return [op.to_dict() for op in base.prepare(ns, ops)]


def cmd_submit_job(ns) -> int:
    """One job per file (and per --job-repeat), each holding the file's opcodes --op-repeat times;
    submitted together, or one request each with --each; then waited for."""
    if ns.timing_stats:
        print("Loading...")
    jobs = [(f"file {path}/{index}", _load_ops(path, ns) * ns.rep_op)
            for index in range(ns.rep_job) for path in ns.files]
    client = luxi.Client()
    start = time.time()
    if ns.timing_stats:
        print("Submitting...")
    if ns.each:
        ids = [client.call("SubmitJob", ops) for _, ops in jobs]
    else:
        ids = [job_id for _, job_id in client.call("SubmitManyJobs", [ops for _, ops in jobs])]
    if ns.verbose:
        print(f"Submitted jobs {', '.join(map(str, ids))}")
    submitted = time.time()
    if ns.timing_stats:
        print("Executing...")
    for (name, _), job_id in zip(jobs, ids):
        if ns.verbose:
            print(f"Waiting for job {job_id} for {name} ...")
        try:
            base.poll_job(client, job_id, base.print_log_entry if ns.verbose else lambda entry: None)
        except errors.GenericError as err:
            print(f"Job {job_id} for {name} has failed: {err}", file=sys.stderr)
    done = time.time()
    if ns.timing_stats:
        print(f"C:op     {sum(len(ops) for _, ops in jobs):4d}")
        print(f"C:job    {len(jobs):4d}")
        print(f"T:submit {submitted - start:4.4f}")
        print(f"T:exec   {done - submitted:4.4f}")
        print(f"T:total  {done - start:4.4f}")
    return 0


def _disks(text: str) -> list[dict]:
    try:
        return [{"size": parse_size(size), "mode": "rw"} for size in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"invalid disks {text!r}: {err}") from None


def _nics(text: str) -> list[dict]:
    """Ganeti's mac/ip/bridge per NIC, comma-separated; what is left out is null."""
    nics = []
    for spec in text.split(","):
        parts = (spec.split("/") + [None, None, None])[:3]
        nics.append(dict(zip(("mac", "ip", "bridge"), (part or None for part in parts))))
    return nics


def cmd_iallocator(ns) -> int:
    op = base.opcode_from_args(opcodes.OpTestAllocator, ns, name=ns.names[0], instances=ns.names, disks=ns.disks,
                               nics=ns.nics, tags=[t for t in (ns.tags or "").split(",") if t])
    results = base.submit_or_run(ns, [op], feedback=lambda entry: None)
    if results is not None:
        print(results[0])
    return 0


class _LockClient(luxi.Client):
    """Shows owners and waiting jobs as Ganeti's locks command does ("-" for none)."""

    def query(self, what: str, fields: list[str], qfilter=None) -> dict:
        result = super().query(what, fields, qfilter)
        for row in result["data"]:
            for name, cell in zip(fields, row):
                if cell[0] == 0 and name == "owner":
                    cell[1] = ",".join(cell[1]) or "-"
                elif cell[0] == 0 and name == "pending":
                    cell[1] = ", ".join(f"{mode}:{','.join(owners)}" for mode, owners in cell[1]) or "-"
        return result


def cmd_locks(ns) -> int:
    ns.names, ns.use_filter, ns.units = [], False, None
    while True:
        code = base.run_list(ns, "lock", LOCK_FIELDS, client=_LockClient())
        if code or not ns.interval:
            return code
        print()
        time.sleep(ns.interval)


def absent_daemon(ns) -> int:
    print(ABSENT_DAEMONS[ns.command], file=sys.stderr)
    return 1


def build(parser) -> None:
    sub = base.subcommands(parser)
    base.opcode_command(sub, "delay", "Run a job that sleeps for DURATION seconds", opcodes.OpTestDelay,
                        cmd_delay)
    p = base.command(sub, "submit-job", "Submit jobs built from JSON files of opcodes", cmd_submit_job)
    p.add_argument("-v", "--verbose", action="store_true", help="Show the job IDs and the progress")
    p.add_argument("--op-repeat", dest="rep_op", type=int, default=1,
                   help="Repeat the opcode sequence this number of times")
    p.add_argument("--job-repeat", dest="rep_job", type=int, default=1, help="Repeat the job this number of times")
    p.add_argument("--timing-stats", action="store_true", help="Show timing stats")
    p.add_argument("--each", action="store_true", help="Submit each job separately")
    p.add_argument("--dry-run", action="store_true", help="Only check the prerequisites of every opcode")
    p.add_argument("--priority", type=parse_priority, default=None, help="Priority of the jobs: low, normal, high")
    p.add_argument("files", nargs="+", metavar="OPCODES_FILE")
    p = base.opcode_command(sub, "iallocator", "Show an allocator's input for a request, or run the allocator",
                            opcodes.OpTestAllocator, cmd_iallocator, skip=("name",))
    p.add_argument("--disks", type=_disks, default=_disks("4096,4096"),
                   help="Comma-separated disk sizes (MiB, or with a unit)")
    p.add_argument("--nics", type=_nics, default=_nics("00:11:22:33:44:55"),
                   help="Comma-separated NICs, each mac/ip/bridge (a missing part is null)")
    p.add_argument("--tags", default=None, help="Comma-separated tags")
    p.add_argument("names", nargs="+", metavar="INSTANCE")
    p = base.command(sub, "test-jobqueue", "Test the job queue (submits failing jobs on purpose)", test_jobqueue)
    p.add_argument("--priority", type=parse_priority, default=None, help="Priority of the test jobs")
    base.opcode_command(sub, "test-osparams", "Test secret OS parameter transmission", opcodes.OpTestOsParams)
    p = base.command(sub, "locks", "Show the locks of the master daemon", cmd_locks)
    p.add_argument("-o", "--output", dest="output", metavar="FIELDS",
                   help="Comma-separated fields to show; a leading + adds to the defaults")
    p.add_argument("--no-headers", action="store_true", help="Do not print column headers")
    p.add_argument("--separator", default=None, help="Separate columns with this string")
    p.add_argument("-v", "--verbose", action="store_true", help="Say why a value is missing")
    p.add_argument("--interval", type=int, default=None, help="Repeat the listing every this many seconds")
    for name in ABSENT_DAEMONS:
        p = base.command(sub, name, f"Talk to Ganeti's {name} (which genet does not have)", absent_daemon)
        p.add_argument("args", nargs="+", metavar="ARG")


def main(argv=None) -> int:
    return base.run("gnt-debug", build, argv)


if __name__ == "__main__":
    sys.exit(main())
