"""Blocks ``replace-disks[TEMPLATE]``: a mirrored instance's disks are rebuilt in every mode.

On the secondary while the guest runs (``-s``), automatically (``-a``: nothing is faulty, so
nothing may change), on the primary with the instance stopped (``-p``; genet's ``mirror``
refuses it while the guest uses that copy, Ganeti's drbd accepts both), and onto a new
secondary node (``-n``, needs three nodes). The instance must keep its nodes (or get the new
secondary) and run where it ran.
"""
from __future__ import annotations

from qa import templates as tpl
from qa.blocks.instances import RUNNING, STOPPED, wait_status
from qa.context import Context
from qa.report import Skip


def run(ctx: Context) -> None:
    mirrored = ctx.runnable_templates(tpl.is_mirrored)
    if not mirrored:
        ctx.reporter.skipped_check("replace-disks", "all", "no enabled mirrored template")
        return
    ctx.per_template("replace-disks", replace, [(template, None) for template in mirrored])


def replace(ctx: Context, block: str, template: str) -> None:
    primary, secondary = ctx.need_nodes(2, f"template {template}")[-2:]
    name = ctx.new_name(f"rd{template[:3]}")
    with ctx.check(block, f"add -t {template} on {primary}:{secondary}", required=True):
        ctx.add_instance(name, template, [primary, secondary])
        wait_status(ctx, name, RUNNING)
    try:
        with ctx.check(block, "replace-disks -s (running)"):
            ctx.gnt("gnt-instance", "replace-disks", "-s", name)
            unchanged(ctx, name, primary, secondary, RUNNING)
        with ctx.check(block, "replace-disks -a (nothing faulty)"):
            ctx.gnt("gnt-instance", "replace-disks", "-a", name)
            unchanged(ctx, name, primary, secondary, RUNNING)
        with ctx.check(block, "replace-disks -p (stopped)"):
            ctx.gnt("gnt-instance", "shutdown", name)
            ctx.gnt("gnt-instance", "replace-disks", "-p", name)
            unchanged(ctx, name, primary, secondary, STOPPED)
            ctx.gnt("gnt-instance", "startup", name)
            unchanged(ctx, name, primary, secondary, RUNNING)
        with ctx.check(block, "replace-disks -n (new secondary)"):
            others = [n for n in ctx.facts.nodes if n not in (primary, secondary)]
            if not others:
                raise Skip("a new secondary needs a third usable node")
            ctx.gnt("gnt-instance", "replace-disks", "-n", others[0], name)
            unchanged(ctx, name, primary, others[0], RUNNING)
    finally:
        with ctx.check(block, "remove"):
            ctx.remove_instance(name)


def unchanged(ctx: Context, name: str, primary: str, secondary: str, status: str) -> None:
    wait_status(ctx, name, status)
    ctx.expect(name, pnode=primary, snodes=[secondary])
