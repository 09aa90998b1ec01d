"""gnt-job: list, inspect, watch, cancel and archive jobs."""
from __future__ import annotations

import argparse
import sys

from genet import errors, luxi
from genet.cli import base

DEFAULT_FIELDS = ["id", "status", "summary"]


def _job_ids(names: list[str]) -> list[int]:
    try:
        return [int(n) for n in names]
    except ValueError:
        raise errors.OpPrereqError(f"job ids must be numbers, got {' '.join(names)}", errors.ECode.INVAL) from None


def cmd_list(ns) -> int:
    from genet import qfilter
    if ns.use_filter:
        try:
            return _list_with(ns, qfilter.parse_filter(" ".join(ns.names)))
        except qfilter.FilterError as err:
            raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
    clauses = []
    ids = _job_ids(ns.names)
    if ids:
        clauses.append(["|", *[["=", "id", i] for i in ids]])
    statuses = ((["running", "waiting", "canceling"] if ns.running else []) + (["queued"] if ns.pending else [])
                + (["success", "error", "canceled"] if ns.finished else []))
    if statuses:
        clauses.append(["|", *[["=", "status", s] for s in statuses]])
    if not ns.archived and not ids:
        clauses.append(["!", ["?", "archived"]])
    return _list_with(ns, ["&", *clauses] if len(clauses) > 1 else clauses[0] if clauses else None)


def _list_with(ns, qfilter_list) -> int:
    fields = base.fields_from(ns.output, DEFAULT_FIELDS)
    result = luxi.Client().query("job", fields, qfilter_list)
    defs = result["fields"]
    unknown = [d["name"] for d in defs if d["kind"] == "unknown"]
    if unknown:
        raise errors.ParameterError(f"unknown field(s): {', '.join(unknown)}")
    rows = [[base.format_value(v, d["kind"]) for (_, v), d in zip(row, defs)] for row in result["data"]]
    headers = None if ns.no_headers else [d["title"] for d in defs]
    for line in base.format_table(headers, rows, ns.separator, [d["kind"] == "number" for d in defs]):
        print(line)
    return 0


def cmd_info(ns) -> int:
    fields = ["id", "status", "received_ts", "start_ts", "end_ts", "ops", "opstatus", "opresult",
              "oplog", "opstart", "opexec", "opend", "priority"]
    rows = luxi.Client().query_jobs(_job_ids(ns.job_ids), fields)
    code = 0
    for job_id, row in zip(ns.job_ids, rows):
        if row is None:
            print(f"Job ID: {job_id} not found", file=sys.stderr)
            code = 1
            continue
        job = dict(zip(fields, row))
        print(f"- Job ID: {job['id']}")
        print(f"  Status: {job['status']}")
        print(f"  Priority: {job['priority']}")
        print(f"  Received:         {base.format_timestamp(job['received_ts'])}")
        print(f"  Processing start: {base.format_timestamp(job['start_ts'])}")
        print(f"  Processing end:   {base.format_timestamp(job['end_ts'])}")
        print("  Opcodes:")
        for idx, op in enumerate(job["ops"]):
            print(f"    - Opcode: {op['OP_ID']}")
            print(f"      Status: {job['opstatus'][idx]}")
            print(f"      Processing start: {base.format_timestamp(job['opstart'][idx])}")
            print(f"      Execution start:  {base.format_timestamp(job['opexec'][idx])}")
            print(f"      Processing end:   {base.format_timestamp(job['opend'][idx])}")
            print("      Input fields:")
            for key in sorted(op):
                if key != "OP_ID":
                    print(f"        {key}: {op[key]}")
            print(f"      Result: {job['opresult'][idx]}")
            print("      Execution log:")
            for serial, ts, kind, message in job["oplog"][idx]:
                print(f"        - Time: {base.format_timestamp(ts)}, Type: {kind}, Message: {message}")
    return code


def cmd_watch(ns) -> int:
    job_id = _job_ids([ns.job_id])[0]
    header = f"Output from job {job_id} follows"
    print(header)
    print("-" * len(header))
    return _follow(job_id, base.print_log_entry)


def cmd_wait(ns) -> int:
    """Wait for the job without printing its log; its failure is told and sets the exit code."""
    return _follow(_job_ids([ns.job_id])[0], lambda entry: None)


def _follow(job_id: int, feedback) -> int:
    try:
        base.poll_job(luxi.Client(), job_id, feedback)
    except errors.JobLost:
        raise errors.OpPrereqError(f"job {job_id} not found", errors.ECode.NOENT) from None
    except (errors.OpExecError, errors.OpPrereqError) as err:
        print(f"Job {job_id} failed: {errors.format_error(err)}", file=sys.stderr)
        return errors.exit_code(err)
    return 0


# the states --pending, --queued and --waiting select (Ganeti's JOBS_PENDING: canceling too)
STATUS_SELECTIONS = {"pending": ("queued", "waiting", "canceling"), "queued": ("queued",), "waiting": ("waiting",)}
PRIORITIES = {"low": 10, "normal": 0, "high": -10}      # Ganeti's names of job priorities


def _selected_jobs(ns, client: luxi.Client, question: str) -> list[int]:
    """The jobs named, or those in the state --pending/--queued/--waiting chose (never both). The
    jobs a state selects are listed; without --force genet does not act on them (exit 13)."""
    if bool(ns.job_ids) == (ns.status_filter is not None):
        raise errors.OpPrereqError("Either a status filter or job ID(s) must be specified and never both",
                                   errors.ECode.INVAL)
    if ns.status_filter is None:
        return _job_ids(ns.job_ids)
    fields = ["id", "status", "summary"]
    statuses = STATUS_SELECTIONS[ns.status_filter]
    result = client.query("job", fields, ["|", *[["=", "status", s] for s in statuses]])
    jobs = [row[0][1] for row in result["data"]]
    if not jobs:
        raise errors.OpPrereqError("No jobs with the requested status have been found", errors.ECode.WRONG_STATE)
    if not ns.force:
        rows = [[base.format_value(value) for _, value in row] for row in result["data"]]
        for line in base.format_table([d["title"] for d in result["fields"]], rows, None, [True, False, False]):
            print(line)
        base.confirm_or_fail(ns, "--force", question)
    return jobs


def _each(jobs: list[int], action) -> int:
    code = 0
    for job_id in jobs:
        ok, message = action(job_id)
        print(message)
        code = code or (0 if ok else 1)
    return code


def cmd_cancel(ns) -> int:
    if ns.kill and not ns.yes_do_it:
        raise errors.OpPrereqError("The --kill option must be confirmed with --yes-do-it", errors.ECode.INVAL)
    client = luxi.Client()
    jobs = _selected_jobs(ns, client, f"{'KILL' if ns.kill else 'Cancel'} job(s) listed above")
    return _each(jobs, lambda job_id: client.call("CancelJob", job_id, ns.kill))


def parse_priority(text: str) -> int:
    """Ganeti's names (low, normal, high) or a number from -20 (highest) to 19 (lowest)."""
    if text in PRIORITIES:
        return PRIORITIES[text]
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not -20 <= value <= 19:
        raise argparse.ArgumentTypeError(f"invalid priority {text!r}: use low, normal, high or -20..19")
    return value


def cmd_change_priority(ns) -> int:
    if ns.priority is None:
        print("--priority option must be given.", file=sys.stderr)
        return 1
    client = luxi.Client()
    jobs = _selected_jobs(ns, client, "Change priority of job(s) listed above")
    return _each(jobs, lambda job_id: client.call("ChangeJobPriority", job_id, ns.priority))


def _selection_options(parser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="Do not stop at the list of jobs a"
                        " state selected (without it genet lists them and exits with code 13)")
    for name, statuses in STATUS_SELECTIONS.items():
        parser.add_argument(f"--{name}", dest="status_filter", action="store_const", const=name,
                            help=f"Select the jobs in state {' or '.join(statuses)}")
    parser.add_argument("job_ids", nargs="*", metavar="JOB_ID")


def cmd_archive(ns) -> int:
    client = luxi.Client()
    code = 0
    for job_id in _job_ids(ns.job_ids):
        if not client.call("ArchiveJob", job_id):
            print(f"Job {job_id}: not archived (unknown, unfinished or archived already)", file=sys.stderr)
            code = 1
    return code


def parse_age(text: str) -> float:
    """Ganeti's ages: a number with an optional unit s, m, h, d, w; 'all' means 0."""
    if text == "all":
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number)
    except ValueError:
        raise errors.OpPrereqError(f"invalid age {text!r}: use a number with s, m, h, d or w, or 'all'",
                                   errors.ECode.INVAL) from None
    if value < 0:
        raise errors.OpPrereqError(f"invalid age {text!r}: must not be negative", errors.ECode.INVAL)
    return value * units[unit]


def cmd_autoarchive(ns) -> int:
    archived, left = luxi.Client().call("AutoArchiveJobs", parse_age(ns.age), 60.0)
    print(f"Archived {archived} jobs, {left} unchecked left")
    return 0


def build(parser) -> None:
    sub = base.subcommands(parser)
    p = base.command(sub, "list", "List jobs", cmd_list)
    base.add_list_options(p, "JOB_ID")
    p.add_argument("--running", action="store_true", help="Show only running jobs")
    p.add_argument("--pending", action="store_true", help="Show only queued jobs")
    p.add_argument("--finished", action="store_true", help="Show only finished jobs")
    p.add_argument("--archived", action="store_true", help="Include archived jobs")
    for name, helptext, handler in (("info", "Show details of jobs", cmd_info),
                                    ("archive", "Archive finished jobs", cmd_archive)):
        p = base.command(sub, name, helptext, handler)
        p.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    p = base.command(sub, "cancel", "Cancel queued or waiting jobs", cmd_cancel)
    p.add_argument("--kill", action="store_true", help="Also jobs that are running (genet refuses those: its"
                   " jobs are threads of genet-masterd, which cannot be killed)")
    p.add_argument("--yes-do-it", "--ya-rly", dest="yes_do_it", action="store_true", help="Really use --kill")
    _selection_options(p)
    p = base.command(sub, "change-priority", "Change the priority of queued or waiting jobs", cmd_change_priority)
    p.add_argument("--priority", type=parse_priority, default=None,
                   help="The new priority: low, normal, high (or -20 highest .. 19 lowest)")
    _selection_options(p)
    p = base.command(sub, "watch", "Follow a job's log until it ends", cmd_watch)
    p.add_argument("job_id", metavar="JOB_ID")
    p = base.command(sub, "wait", "Wait for a job to finish, printing nothing", cmd_wait)
    p.add_argument("job_id", metavar="JOB_ID")

    p = base.command(sub, "autoarchive", "Archive jobs older than AGE (e.g. 1d, 2h, all)", cmd_autoarchive)
    p.add_argument("age", metavar="AGE")
    p = base.command(sub, "list-fields", "List the fields gnt-job list knows",
                     lambda ns: base.run_list_fields(ns, "job"))
    base.add_list_fields_options(p)


def main(argv=None) -> int:
    return base.run("gnt-job", build, argv)


if __name__ == "__main__":
    sys.exit(main())
