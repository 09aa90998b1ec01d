"""Blocks ``migration[TEMPLATE]``: instances whose disks can follow them move between nodes.

For every enabled template that can move (mirrored: drbd, mirror; shared: sharedfile, rbd,
diskless, ...) an instance is migrated live, migrated back non-live, checked with
``migrate --cleanup`` (nothing to recover, so nothing may change), and failed over; after
each step the RAPI must show the new primary (and, mirrored, the old one as secondary) and
the instance running. Needs two usable nodes.
"""
from __future__ import annotations

from qa import templates as tpl
from qa.blocks.instances import RUNNING, wait_status
from qa.context import Context


def run(ctx: Context) -> None:
    movable = ctx.runnable_templates(tpl.can_move)
    if not movable:
        ctx.reporter.skipped_check("migration", "all", "no enabled template whose instances can move")
        return
    ctx.per_template("migration", moves, [(template, None) for template in movable])


def moves(ctx: Context, block: str, template: str) -> None:
    a, b = ctx.need_nodes(2, "migration")[-2:]
    nodes = [a, b] if tpl.is_mirrored(template) else [a]
    name = ctx.new_name(f"mig{template[:3]}")
    with ctx.check(block, f"add -t {template} on {':'.join(nodes)}", required=True):
        ctx.add_instance(name, template, nodes)
        wait_status(ctx, name, RUNNING)
    try:
        with ctx.check(block, f"migrate (live) {a} -> {b}", required=True):
            ctx.gnt("gnt-instance", "migrate", "-f", "-n", b, name)
            on(ctx, name, template, b, a)
        with ctx.check(block, f"migrate --non-live {b} -> {a}"):
            ctx.gnt("gnt-instance", "migrate", "-f", "--non-live", "-n", a, name)
            on(ctx, name, template, a, b)
        here = ctx.instance(name)["pnode"]
        there = b if here == a else a
        with ctx.check(block, "migrate --cleanup changes nothing"):
            ctx.gnt("gnt-instance", "migrate", "-f", "--cleanup", name)
            on(ctx, name, template, here, there)
        with ctx.check(block, f"failover {here} -> {there}"):
            ctx.gnt("gnt-instance", "failover", "-f", "-n", there, name)
            on(ctx, name, template, there, here)
    finally:
        with ctx.check(block, "remove"):
            ctx.remove_instance(name)


def on(ctx: Context, name: str, template: str, primary: str, secondary: str) -> None:
    """The instance runs on ``primary`` (with its mirror on ``secondary``)."""
    wait_status(ctx, name, RUNNING)
    ctx.expect(name, pnode=primary, snodes=[secondary] if tpl.is_mirrored(template) else [])
