"""Ganeti's commands on many instances (startup, shutdown, reboot, reinstall): the arguments name
instances, or nodes, or tags, as a selection option says; each selected instance gets a job
of its own, all submitted before any is waited for."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from genet import errors, luxi, qfilter
from genet.cli import base
from genet.opcodes import OpCode

# option -> (mode, help); the last one given wins, as in Ganeti
SELECTIONS = {
    "--instance": ("instance", "The arguments are instances (the default)"),
    "--node": ("node", "The instances with a node among the arguments as primary or secondary"),
    "--primary": ("primary", "The instances whose primary node is among the arguments"),
    "--secondary": ("secondary", "The instances whose secondary node is among the arguments"),
    "--all": ("all", "Every instance of the cluster (no arguments)"),
    "--tags": ("tags", "The instances with any of the tags given as arguments"),
    "--node-tags": ("node-tags", "The instances on nodes with any of the tags given as arguments"),
    "--pri-node-tags": ("pri-node-tags", "The instances whose primary node has any of the tags"),
    "--sec-node-tags": ("sec-node-tags", "The instances whose secondary node has any of the tags"),
}
# a node-tags mode picks nodes by tag, then instances as this node mode
_BY_NODE_TAGS = {"node-tags": "node", "pri-node-tags": "primary", "sec-node-tags": "secondary"}


def add_selection_options(parser: argparse.ArgumentParser, tags: bool = True) -> None:
    """The selection options (without the tag ones unless ``tags``), --force-multiple and the names."""
    for flag, (mode, helptext) in SELECTIONS.items():
        if tags or "tags" not in mode:
            parser.add_argument(flag, dest="selection", action="store_const", const=mode, help=helptext)
    parser.set_defaults(selection="instance")
    parser.add_argument("--force-multiple", action="store_true",
                        help="Do not ask before acting on more than one instance (genet never asks)")
    parser.add_argument("names", nargs="*", metavar="NAME", help="Instances, nodes or tags (see the options)")


def selected(ns: argparse.Namespace, client: luxi.Client) -> list[str]:
    """The instances the arguments select, in the order given (instances) or by name."""
    mode, names = ns.selection, ns.names
    if mode == "all":
        if names:
            raise errors.OpPrereqError("no arguments are accepted with --all", errors.ECode.INVAL)
    elif not names:
        raise errors.OpPrereqError(f"at least one {'instance' if mode == 'instance' else mode.split('-')[-1]}"
                                   " name is needed", errors.ECode.INVAL)
    if mode == "instance":
        found = {row[0][1] for row in client.query("instance", ["name"], qfilter.names_filter("name", names))["data"]}
        for name in names:
            if name not in found:      # as the opcode's own refusal says it
                raise errors.OpPrereqError(f"instance {name!r} does not exist", errors.ECode.NOENT)
        return list(dict.fromkeys(names))
    instances = _rows(client, "instance", ["name", "pnode", "snodes", "tags"])
    if mode == "all":
        return [i["name"] for i in instances]
    if mode == "tags":
        return [i["name"] for i in instances if set(i["tags"]) & set(names)]
    if mode in _BY_NODE_TAGS:
        names = [n["name"] for n in _rows(client, "node", ["name", "tags"]) if set(n["tags"]) & set(names)]
        mode = _BY_NODE_TAGS[mode]
    else:
        base.query_named("node", ["name"], names, "node", client)
    wanted = set(names)
    return [i["name"] for i in instances
            if mode in ("node", "primary") and i["pnode"] in wanted
            or mode in ("node", "secondary") and wanted & set(i["snodes"])]


def _rows(client: luxi.Client, what: str, fields: list[str]) -> list[dict]:
    return [{f: v for f, (_, v) in zip(fields, row)} for row in client.query(what, fields, None)["data"]]


def run_each(ns: argparse.Namespace, make: Callable[[str], OpCode]) -> int:
    """One job per selected instance (``make(name)`` its opcode), all submitted, then followed in
    turn, as Ganeti's JobExecutor: exit 1 if any failed."""
    client = luxi.Client()
    names = selected(ns, client)
    if not names:
        print("No instances selected", file=sys.stderr)
        return 0
    ids = [client.submit_job([op.to_dict() for op in base.prepare(ns, [make(name)])]) for name in names]
    if ns.submit or ns.print_jobid or len(names) > 1:
        print(f"Submitted jobs {', '.join(map(str, ids))}" if len(ids) > 1 else f"JobID: {ids[0]}")
    if ns.submit:
        return 0
    failed = False
    for job_id, name in zip(ids, names):
        if len(names) > 1:
            print(f"Waiting for job {job_id} for {name} ...")
        try:
            base.poll_job(client, job_id)
        except errors.GenericError as err:
            print(f"{name}: {errors.format_error(err)}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def many_command(sub, name: str, helptext: str, opclass: type[OpCode], asks: bool = False,
                 tags: bool = True, extra: Callable[[argparse.Namespace], dict] | None = None
                 ) -> argparse.ArgumentParser:
    """A subcommand running ``opclass`` on each selected instance; its options are the opcode's
    (and ``extra(ns)``'s parameters, asked once before any job: None stops the command)."""
    def handler(ns) -> int:
        more = extra(ns) if extra else {}
        if more is None:
            return 1
        return run_each(ns, lambda instance: base.opcode_from_args(opclass, ns, instance_name=instance, **more))
    parser = base.opcode_command(sub, name, helptext, opclass, handler, asks=asks, skip=("instance_name",))
    add_selection_options(parser, tags)
    return parser
