"""What every gnt-* command shares: options derived from opcodes, job submission
and polling, table output, error reporting and exit codes.

Kept free of Twisted and TLS imports so that a command starts quickly.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import traceback
from typing import Any, Callable, Sequence

from genet import errors, luxi, opcodes, ptypes
from genet.opcodes import POSITIONAL, OpCode, Param
from genet.ptypes import Bool, Maybe

Handler = Callable[[argparse.Namespace], int]


# --- options derived from opcode parameters ---------------------------------

def add_opcode_options(parser: argparse.ArgumentParser, opclass: type[OpCode],
                       skip: Sequence[str] = ()) -> None:
    """Add one argparse option per opcode parameter that declares a CLI spelling."""
    for param in opclass.all_params():
        if param.cli is None or param.name in skip:
            continue
        if param.cli == POSITIONAL:
            many = isinstance(param.type, opcodes.ListOf)
            parser.add_argument(param.name, metavar=param.metavar or param.name.upper(),
                                nargs="+" if many and param.required else "*" if many else None,
                                type=argument_type(param.type.item if many else param.type, param.name),
                                help=param.doc)
            continue
        flags = (param.cli,) if isinstance(param.cli, str) else param.cli
        inner = param.type.inner if isinstance(param.type, Maybe) else param.type
        if isinstance(inner, Bool) and not isinstance(param.type, Maybe):
            # plain switches; "--no-master" style switches turn a default True off
            action = "store_false" if param.default is True else "store_true"
            helptext = f"Do not: {param.doc[0].lower()}{param.doc[1:]}" if param.default is True else param.doc
            parser.add_argument(*flags, dest=param.name, action=action, help=helptext)
        elif isinstance(param.type, opcodes.ListOf) and param.type.csv:
            parser.add_argument(*flags, dest=param.name, metavar=param.metavar or "VALUE,...",
                                type=argument_type(param.type, param.name), default=None, help=param.doc)
        elif isinstance(param.type, opcodes.ListOf) and not isinstance(param.type.item, opcodes.ListOf):
            parser.add_argument(*flags, dest=param.name, action="append", metavar=param.metavar or "VALUE",
                                type=argument_type(param.type.item, param.name), default=None, help=param.doc)
        else:
            parser.add_argument(*flags, dest=param.name, type=argument_type(inner, param.name),
                                metavar=param.metavar or param.name.upper(), default=None, help=param.doc)


def argument_type(ptype, name: str):
    """An argparse ``type`` from a parameter type's CLI parser; errors name ``name``."""
    def parse(text: str):
        try:
            return ptype.parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{name}: {err}") from None
    parse.__name__ = name
    return parse


def opcode_from_args(opclass: type[OpCode], ns: argparse.Namespace, **extra: Any) -> OpCode:
    """Build the opcode from parsed options; unset options keep the opcode's defaults."""
    values = {}
    for param in opclass.all_params():
        if param.cli is None or not hasattr(ns, param.name):
            continue
        value = getattr(ns, param.name)
        if value is None or value == [] and not param.required:
            continue
        if isinstance(param.type, Bool) and value == param.default:
            continue
        values[param.name] = value
    values.update(extra)
    return opclass(**values)


def add_submit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--submit", action="store_true", help="Submit the job and print its ID, do not wait")
    parser.add_argument("--print-jobid", action="store_true", help="Print the job ID before waiting")


# --- jobs -------------------------------------------------------------------

def format_timestamp(ts: Sequence[int] | None) -> str:
    if not ts:
        return "N/A"
    sec, usec = ts
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sec)) + f".{usec:06d}"


# a job log line as Ganeti's CLI prints it: time.ctime() of the entry (24 characters; the day
# of the month is padded with a space, "Sun Dec  6 ...") and the message
LOG_LINE = re.compile(r"^(?P<stamp>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}) (?P<message>.*)$")


def format_log_entry(entry: list) -> str:
    _, ts, _kind, message = entry
    return f"{time.ctime(ts[0])} {message}"


def parse_log_line(line: str) -> tuple[str, str] | None:
    """(ctime stamp, message) of a line format_log_entry made; None for any other line."""
    match = LOG_LINE.match(line)
    return (match["stamp"], match["message"]) if match else None


def print_log_entry(entry: list) -> None:
    print(format_log_entry(entry), flush=True)


def poll_job(client: luxi.Client, job_id: int, feedback: Callable[[list], None] = print_log_entry) -> list:
    """Wait for a job, streaming its log; returns the opcode results or raises its error."""
    prev_info, prev_serial = None, 0
    while True:
        change = client.wait_for_job_change(job_id, ["status"], prev_info, prev_serial, 10.0)
        if change is None:
            raise errors.JobLost(f"job {job_id} not found")
        if change == "nochange":
            continue
        for entry in change["log_entries"]:
            feedback(entry)
            prev_serial = max(prev_serial, entry[0])
        prev_info = change["job_info"]
        if prev_info[0] in ("success", "error", "canceled"):
            break
    status, results = client.query_jobs([job_id], ["status", "opresult"])[0]
    if status == "success":
        return results
    if status == "canceled":
        raise errors.OpExecError(f"job {job_id} was canceled")
    for result in results:
        if isinstance(result, list) and len(result) == 2 and isinstance(result[0], str):
            raise errors.from_wire(result)
    raise errors.OpExecError(f"job {job_id} failed: {results}")


def reason_trail(ns: argparse.Namespace) -> list[list]:
    """The start of a job's reason trail, as Ganeti's CLI makes it: the user's --reason, then
    the command that submitted it ("gnt:client:gnt-instance", "startup"); nanosecond stamps."""
    now = time.time_ns()
    trail = [["gnt:user", ns.reason, now]] if getattr(ns, "reason", None) else []
    return trail + [[f"gnt:client:{getattr(ns, 'prog', 'genet')}", getattr(ns, "invoked_as", ""), now]]


def prepare(ns: argparse.Namespace, ops: list[OpCode]) -> list[OpCode]:
    """The options every command has, set on its opcodes: the reason trail and the debug level."""
    for op in ops:
        op.reason = reason_trail(ns) + list(op.reason)
        op.debug_level = max(op.debug_level, min(getattr(ns, "debug_level", 0), 10))
    return ops


def submit_or_run(ns: argparse.Namespace, ops: list[OpCode], client: luxi.Client | None = None,
                  feedback: Callable[[list], None] = print_log_entry) -> list | None:
    """Submit one job; with --submit print its id and return None, else wait for it (showing its
    log with ``feedback``). --print-jobid prints the bare id first, as Ganeti's (which prints the
    ``JobID:`` line of --submit on standard error: a script's ``$(... --submit --print-jobid)``
    is the number alone)."""
    client = client or luxi.Client()
    job_id = client.submit_job([op.to_dict() for op in prepare(ns, ops)])
    print_jobid = getattr(ns, "print_jobid", False)
    if print_jobid:
        print(job_id, flush=True)
    if getattr(ns, "submit", False):
        print(f"JobID: {job_id}", file=sys.stderr if print_jobid else sys.stdout)
        return None
    return poll_job(client, job_id, feedback)


# --- output -----------------------------------------------------------------

def format_value(value: Any, kind: str = "text", unit: str = "m") -> str:
    """A value as list output shows it; sizes (kind "unit", in MiB) in ``unit`` (genet.cli.units)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "Y" if value else "N"
    if kind == "unit" and isinstance(value, (int, float)):
        from genet.cli.units import format_unit
        return format_unit(value, unit)
    if kind == "timestamp" and isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))     # Ganeti's utils.FormatTime
    if kind == "timestamp" and isinstance(value, list) and len(value) == 2:
        return format_timestamp(value)
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def format_table(headers: list[str] | None, rows: list[list[str]], separator: str | None,
                 numeric: Sequence[bool] = ()) -> list[str]:
    """Ganeti-style table: columns padded with one space, numbers right aligned."""
    if separator is not None:
        lines = [separator.join(headers)] if headers else []
        return lines + [separator.join(row) for row in rows]
    table = ([headers] if headers else []) + rows
    if not table:
        return []
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        cells = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            if i < len(numeric) and numeric[i]:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if last else cell.ljust(widths[i]))
        lines.append(" ".join(cells).rstrip())
    return lines


def add_list_options(parser: argparse.ArgumentParser, names_metavar: str) -> None:
    from genet.cli.units import UNITS
    parser.add_argument("-o", "--output", dest="output", metavar="FIELDS",
                        help="Comma-separated fields to show; a leading + adds to the defaults")
    parser.add_argument("--no-headers", action="store_true", help="Do not print column headers")
    parser.add_argument("--separator", default=None, help="Separate columns with this string")
    parser.add_argument("-F", "--filter", dest="use_filter", action="store_true",
                        help="Treat the arguments as a query filter expression")
    parser.add_argument("--units", default=None, choices=UNITS,
                        help="Units for sizes: h (scaled, the default), m, g or t (m with --separator)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="Say why a value is missing: (nodata), (offline), (unavail), (unknown)")
    parser.add_argument("names", nargs="*", metavar=names_metavar)


def fields_from(output: str | None, default: list[str]) -> list[str]:
    if not output:
        return list(default)
    if output.startswith("+"):
        return list(default) + [f for f in output[1:].split(",") if f]
    return [f for f in output.split(",") if f]


# a value that is not there, by its status (genet.query RS_*): (short, with --verbose), as Ganeti
_MISSING = {1: ("??", "(unknown)"), 2: ("?", "(nodata)"), 3: ("-", "(unavail)"), 4: ("*", "(offline)")}


def format_result_error(status: int, verbose: bool) -> str:
    """What stands for a value that is not there, by its status (Ganeti's FormatResultError)."""
    return _MISSING.get(status, ("?", "(nodata)"))[bool(verbose)]


def run_list(ns: argparse.Namespace, what: str, default: list[str], name_field: str = "name",
             client: luxi.Client | None = None) -> int:
    """The shared body of `gnt-* list`: query, filter, print a table. The arguments are names,
    globs or (with -F, or one that looks like it) a filter, as genet.qfilter.make_filter says. An
    unknown field is warned about, shown as ``??`` and makes the exit code 14, as in Ganeti."""
    from genet import qfilter as qf
    from genet.cli.units import default_unit
    fields = fields_from(ns.output, default)
    try:
        qfilter = qf.make_filter(ns.names, ns.use_filter, name_field)
    except qf.FilterError as err:
        raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
    names = [] if qf.is_filter(ns.names, ns.use_filter) else [n for n in ns.names if not qf.is_glob(n)]
    client = client or luxi.Client()
    result = client.query(what, fields, qfilter)
    defs = result["fields"]
    unknown = [d["name"] for d in defs if d["kind"] == "unknown"]
    if unknown:
        print(f"Warning: Queried for unknown fields {', '.join(unknown)}", file=sys.stderr)
    if names and name_field in fields:         # a name (not a glob, not a filter) nothing answers to
        found = {row[fields.index(name_field)][1] for row in result["data"]}
        missing = [n for n in names if n not in found]
        if missing:
            raise errors.OpPrereqError(f"{what}(s) not found: {', '.join(missing)}", errors.ECode.NOENT)
    data = result["data"]
    if names and names == list(ns.names) and name_field in fields:     # Ganeti keeps the order asked
        order = {name: index for index, name in reversed(list(enumerate(names)))}
        data = sorted(data, key=lambda row: order.get(row[fields.index(name_field)][1], len(order)))
    unit = ns.units or default_unit(ns.separator)
    rows = [[format_value(value, fdef["kind"], unit) if status == 0 else
             format_result_error(status, ns.verbose)
             for (status, value), fdef in zip(row, defs)] for row in data]
    headers = None if ns.no_headers else [d["title"] for d in defs]
    numeric = [d["kind"] in ("number", "float", "unit") for d in defs]
    for line in format_table(headers, rows, ns.separator, numeric):
        print(line)
    return int(errors.ExitCode.UNKNOWN_FIELD) if unknown else 0


def run_list_fields(ns: argparse.Namespace, what: str, client: luxi.Client | None = None) -> int:
    client = client or luxi.Client()
    defs = client.call("QueryFields", what, ns.names or None)["fields"]
    unknown = [d["name"] for d in defs if d["kind"] == "unknown"]
    if unknown:
        raise errors.ParameterError(f"unknown field(s): {', '.join(unknown)}")
    rows = [[d["name"], d["title"], d["doc"]] for d in defs]
    headers = None if ns.no_headers else ["Name", "Title", "Description"]
    for line in format_table(headers, rows, ns.separator):
        print(line)
    return 0


def add_list_fields_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-headers", action="store_true")
    parser.add_argument("--separator", default=None)
    parser.add_argument("names", nargs="*", metavar="FIELD")


# --- shared subcommands -----------------------------------------------------

def modify_command(opclass: type[OpCode], what: str, noun: str | None = None,
                   extra: Callable[[argparse.Namespace], dict] | None = None) -> Handler:
    """Run a modify opcode and list its changes as Ganeti does ("Modified node X", " - key -> value").

    ``what`` names the opcode's ``<what>_name`` parameter, ``noun`` the object in the message
    (default ``what``); ``extra`` gives opcode parameters that no single option carries.
    """
    def handler(ns) -> int:
        op = opcode_from_args(opclass, ns, **(extra(ns) if extra else {}))
        results = submit_or_run(ns, [op])
        if results and results[0]:          # nothing with --submit or --dry-run
            print(f"Modified {noun or what} {getattr(op, f'{what}_name')}")
            for key, value in results[0]:
                print(f" - {key} -> {value}")
        return 0
    return handler


def run_opcode(opclass: type[OpCode], extra: Callable[[argparse.Namespace], dict] | None = None) -> Handler:
    """A handler that builds the opcode from the options (and ``extra``'s parameters) and runs it as one job."""
    def handler(ns) -> int:
        submit_or_run(ns, [opcode_from_args(opclass, ns, **(extra(ns) if extra else {}))])
        return 0
    return handler


# Ganeti's command aliases ("gnt-instance start" runs startup): command -> its other names
ALIASES = {"info": ("show",), "startup": ("start",), "shutdown": ("stop",),
           "master-failover": ("masterfailover",), "iallocator": ("allocator",)}


def command(sub, name: str, helptext: str, handler: Handler) -> argparse.ArgumentParser:
    """A subcommand run by ``handler``, answering to its Ganeti aliases too, with the options every
    Ganeti command has (-d/--debug, --reason); the caller adds its own to the parser returned."""
    parser = sub.add_parser(name, help=helptext, aliases=ALIASES.get(name, ()))
    parser.set_defaults(handler=handler)
    parser.add_argument("-d", "--debug", dest="debug_level", action="count", default=0,
                        help="Increase the debug level (the jobs' debug_level; tracebacks of errors)")
    parser.add_argument("--reason", default=None, help="The reason for running the command, recorded in"
                        " the reason trail of its jobs")
    return parser


def opcode_command(sub, name: str, helptext: str, opclass: type[OpCode], handler: Handler | None = None,
                   asks: bool = False, skip: Sequence[str] = ()) -> argparse.ArgumentParser:
    """A subcommand whose options are the opcode's parameters (but those in ``skip``), plus --submit.

    ``asks``: Ganeti asks for confirmation before this command and skips the question with
    -f; genet never asks, and accepts -f so that scripts written for Ganeti run unchanged.
    """
    parser = command(sub, name, helptext, handler or run_opcode(opclass))
    add_opcode_options(parser, opclass, skip)
    add_submit_options(parser)
    if asks:
        parser.add_argument("-f", "--force", dest="no_ask", action="store_true",
                            help="Do not ask for confirmation (genet never asks; accepted for Ganeti scripts)")
    return parser


def add_object_commands(sub, what: str, noun: str, metavar: str, default: list[str], info: Handler,
                        tag_kind: str | None = None,
                        list_client: Callable[[], luxi.Client] = luxi.Client) -> argparse.ArgumentParser:
    """The commands of gnt-<what> that every kind of object has, in Ganeti's order: list, info,
    list-fields and, given the kind of its tags (``tag_kind``), list-tags, add-tags, remove-tags.

    ``noun`` is the object in the help texts ("node group"), ``default`` the columns of list,
    ``list_client`` makes the client list queries through (one that reshapes some columns).
    Returns the parser of info, for its own options.
    """
    p = command(sub, "list", f"List {noun}s",
                lambda ns: run_list(ns, what, default, client=list_client()))
    add_list_options(p, metavar)
    info_parser = command(sub, "info", f"Show {noun} details", info)
    info_parser.add_argument("names", nargs="*", metavar=metavar)
    p = command(sub, "list-fields", f"List the fields gnt-{what} list knows", lambda ns: run_list_fields(ns, what))
    add_list_fields_options(p)
    if tag_kind:
        add_tag_commands(sub, tag_kind, metavar)
    return info_parser


def add_info_options(parser: argparse.ArgumentParser) -> None:
    """The options of Ganeti's info commands."""
    parser.add_argument("--roman", dest="roman_integers", action="store_true",
                        help="Show whole numbers in Roman numerals")


def query_named(what: str, fields: list[str], names: list[str], noun: str,
                client: luxi.Client | None = None) -> list[dict]:
    """The objects ``names`` names (all of them when it names none), each a dict of ``fields``
    (which include "name"); a name nothing answers to is an error ("<noun>(s) not found")."""
    from genet import qfilter
    result = (client or luxi.Client()).query(what, fields, qfilter.names_filter("name", names))
    objects = [{f: v for f, (_, v) in zip(fields, row)} for row in result["data"]]
    found = {obj["name"] for obj in objects}
    missing = [n for n in names if n not in found]
    if missing:
        raise errors.OpPrereqError(f"{noun}(s) not found: {', '.join(missing)}", errors.ECode.NOENT)
    return objects


def add_tag_commands(sub, kind: str, name_metavar: str | None = None) -> None:
    """list-tags, add-tags and remove-tags for one kind of object (Ganeti's shape)."""
    def name_of(ns) -> str:
        return getattr(ns, "name", None) or ""

    def list_tags(ns) -> int:
        for tag in luxi.Client().call("QueryTags", kind, name_of(ns)):
            print(tag)
        return 0

    def change_tags(opclass):
        def handler(ns) -> int:
            tags = list(ns.tags) + (tags_from(ns.tags_file) if ns.tags_file else [])
            if not tags:
                raise errors.OpPrereqError("no tags given (as arguments or with --from)", errors.ECode.INVAL)
            submit_or_run(ns, [opclass(kind=kind, name=name_of(ns) or None, tags=tags)])
            return 0
        return handler

    p = command(sub, "list-tags", f"List the {kind}'s tags", list_tags)
    if name_metavar:
        p.add_argument("name", metavar=name_metavar)
    for name, opclass, verb in (("add-tags", opcodes.OpTagsSet, "Add"),
                                ("remove-tags", opcodes.OpTagsDel, "Remove")):
        p = command(sub, name, f"{verb} {kind} tags", change_tags(opclass))
        if name_metavar:
            p.add_argument("name", metavar=name_metavar)
        p.add_argument("tags", nargs="*", metavar="TAG")
        p.add_argument("--from", dest="tags_file", metavar="FILE",
                       help="Also the tags in FILE, one a line ('-': standard input)")
        add_submit_options(p)


def tags_from(path: str) -> list[str]:
    """Ganeti's --from: one tag a line, blank lines skipped, '-' reads standard input."""
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as err:
        raise errors.OpPrereqError(f"cannot read tags from {path}: {err.strerror}", errors.ECode.INVAL) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- entry point ------------------------------------------------------------

def confirm_or_fail(ns: argparse.Namespace, flag: str, message: str) -> None:
    if not getattr(ns, flag.lstrip("-").replace("-", "_"), False):
        raise errors.ConfirmationNeeded(f"{message}; add {flag} to confirm")


def run(prog: str, build: Callable[[argparse.ArgumentParser], None], argv: list[str] | None = None) -> int:
    """Parse arguments, run the chosen command, turn errors into messages and exit codes."""
    parser = argparse.ArgumentParser(prog=prog)
    build(parser)
    with ptypes.checked_by_master():      # what the backends are called is the master's to say
        return _run(parser, prog, argv)


def version_line(prog: str) -> str:
    """What ``--version`` prints, in Ganeti's shape ("gnt-node (ganeti v3.1.1) 3.1.1")."""
    from genet import __version__
    return f"{prog} (genet v{__version__}) {__version__}"


def _run(parser: argparse.ArgumentParser, prog: str, argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        print(version_line(prog))
        return 0
    ns = parser.parse_args(argv)
    if not hasattr(ns, "handler"):
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: a command is required", file=sys.stderr)
        return 2
    ns.prog, ns.invoked_as = prog, argv[0]      # the subcommand as typed (an alias too), as Ganeti records it
    try:
        return int(ns.handler(ns) or 0)
    except errors.GenericError as err:
        if ns.debug_level:
            traceback.print_exc()
        print(errors.format_error(err), file=sys.stderr)
        return errors.exit_code(err)
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 1


def subcommands(parser: argparse.ArgumentParser) -> "argparse._SubParsersAction":
    return parser.add_subparsers(dest="command", metavar="COMMAND")
