"""Block ``global-options``: what every gnt-* command accepts, as Ganeti's do: ``--version``,
``--reason`` (kept in the job's reason trail), ``-d``/``--debug`` (the job's debug level), and
Ganeti's command aliases (``gnt-instance start``/``stop``/``show`` and the others).

The trail and the debug level are read back from the job itself (gnt-job info and the RAPI's
``/2/jobs/ID``). The aliases run on an instance of the run, removed afterwards, and otherwise
only read.
"""
from __future__ import annotations

import json
import re

from qa.blocks.instances import RUNNING, STOPPED, placement, wait_status
from qa.context import Context
from qa.report import CheckFailed, Skip

BLOCK = "global-options"
COMMANDS = ["gnt-cluster", "gnt-node", "gnt-instance", "gnt-group", "gnt-network", "gnt-os", "gnt-backup",
            "gnt-job", "gnt-debug", "gnt-filter", "gnt-storage"]
# Ganeti's aliases that only read: command, alias, its target, arguments
READING_ALIASES = [("gnt-cluster", "show", "info"), ("gnt-os", "show", "info")]


def _delay_job(ctx: Context, *options: str) -> dict:
    """Run ``gnt-debug delay --print-jobid OPTIONS 0``; the job as the RAPI shows it."""
    job = ctx.gnt("gnt-debug", "delay", "--print-jobid", *options, "0").stdout.split("\n", 1)[0].strip()
    if not job.isdigit():
        raise CheckFailed(f"gnt-debug delay --print-jobid did not print the job ID first: {job!r}")
    record = ctx.rapi.get(f"/2/jobs/{job}")
    record["id"] = job
    return record


def run(ctx: Context) -> None:
    with ctx.check(BLOCK, "--version of every gnt-* command names the software version"):
        version = re.search(r"^Software version:\s*(\S+)", ctx.gnt("gnt-cluster", "version").stdout, re.MULTILINE)
        for command in COMMANDS:
            line = ctx.gnt(command, "--version").stdout.strip()
            match = re.fullmatch(rf"{command} \((\w+) v?(\S+)\) (\S+)", line)
            if not match or (version and match.group(3) != version.group(1)):
                raise CheckFailed(f"{command} --version printed {line!r}, expected '{command} (PROJECT vVERSION) "
                                  f"VERSION' with the software version {version and version.group(1)}")

    reason = f"{ctx.options.prefix}reason for the delay"
    with ctx.check(BLOCK, "--reason is kept in the job's reason trail, before the client's entry"):
        job = _delay_job(ctx, f"--reason={reason}")
        trail = [entry[:2] for entry in job["ops"][0]["reason"]]
        if trail[:2] != [["gnt:user", reason], ["gnt:client:gnt-debug", "delay"]]:
            raise CheckFailed(f"job {job['id']}'s reason trail is {trail}")
        shown = ctx.gnt("gnt-job", "info", job["id"]).stdout
        if f"['gnt:user', '{reason}'," not in shown:
            raise CheckFailed(f"gnt-job info {job['id']} does not show the reason {reason!r}")

    with ctx.check(BLOCK, "-d and --debug raise the job's debug level"):
        levels = [_delay_job(ctx, *options)["ops"][0]["debug_level"] for options in ((), ("-d",), ("--debug", "-d"))]
        if levels != [0, 1, 2]:
            raise CheckFailed(f"the debug levels of delays without -d, with -d and with --debug -d are {levels}")

    with ctx.check(BLOCK, "aliases that read print what their command prints"):
        node = ctx.facts.master
        for command, alias, target, *args in [*READING_ALIASES, ("gnt-node", "show", "info", node),
                                              ("gnt-job", "show", "info", _delay_job(ctx)["id"])]:
            shown, meant = (ctx.gnt(command, sub, *args).stdout for sub in (alias, target))
            if shown != meant:
                raise CheckFailed(f"'{command} {alias}' printed other than '{command} {target}'")
        request = ["--dir", "in", "-m", "allocate", "--mem", "128", "-t", "diskless", "-o", ctx.os_name(), "x"]
        asked = [json.loads(ctx.gnt("gnt-debug", sub, *request).stdout)["request"]
                 for sub in ("allocator", "iallocator")]
        if asked[0] != asked[1]:
            raise CheckFailed(f"gnt-debug allocator asked {asked[0]}, iallocator {asked[1]}")
        if ctx.gnt("gnt-cluster", "masterfailover", "--help").returncode != 0:
            raise CheckFailed("gnt-cluster masterfailover --help failed")

    with ctx.check(BLOCK, "gnt-instance stop, start and show"):
        templates = ctx.runnable_templates()
        if not templates:
            raise Skip("no template is exercised")
        name = ctx.new_name("alias")
        ctx.add_instance(name, templates[0], placement(ctx, templates[0]))
        ctx.gnt("gnt-instance", "stop", name)
        wait_status(ctx, name, STOPPED)
        ctx.gnt("gnt-instance", "start", name)
        wait_status(ctx, name, RUNNING)
        if ctx.gnt("gnt-instance", "show", name).stdout != ctx.gnt("gnt-instance", "info", name).stdout:
            raise CheckFailed(f"gnt-instance show {name} printed other than gnt-instance info {name}")
        ctx.remove_instance(name)
