"""Block ``evacuate``: gnt-node evacuate empties a node of the suite's own instances.

Two cases, each where it applies: the secondaries of a mirrored instance move to a third node
(``-s -n NODE``, needs three nodes), and a movable instance's primary leaves its node (``-p``,
needs two). Evacuation moves everything on the node, so a node that holds any instance the
suite did not create is not evacuated: the check is skipped and says which instances.
"""
from __future__ import annotations

from qa import templates as tpl
from qa.blocks.instances import RUNNING, wait_status
from qa.context import Context
from qa.report import CheckFailed, Skip

BLOCK = "evacuate"


def run(ctx: Context) -> None:
    secondaries(ctx)
    primaries(ctx)


def secondaries(ctx: Context) -> None:
    mirrored = ctx.runnable_templates(tpl.is_mirrored)
    with ctx.check(BLOCK, "evacuate -s moves a mirror's secondary to another node"):
        if not mirrored:
            raise Skip("no enabled mirrored template")
        third, primary, secondary = ctx.need_nodes(3, "moving a secondary")[-3:]
        foreign(ctx, secondary, "sinst_list")
        name = ctx.new_name("evs")
        ctx.add_instance(name, mirrored[0], [primary, secondary])
        try:
            ctx.gnt("gnt-node", "evacuate", "-f", "-s", "-n", third, secondary)
            wait_status(ctx, name, RUNNING)
            ctx.expect(name, pnode=primary, snodes=[third])
        finally:
            ctx.remove_instance(name)


def primaries(ctx: Context) -> None:
    movable = ctx.runnable_templates(tpl.can_move)
    with ctx.check(BLOCK, "evacuate -p moves a primary instance off its node"):
        if not movable:
            raise Skip("no enabled template whose instances can move")
        template = movable[0]
        nodes = ctx.need_nodes(2, "moving a primary instance")
        node = nodes[-1]
        foreign(ctx, node, "pinst_list")
        name = ctx.new_name("evp")
        ctx.add_instance(name, template, nodes[-2:] if tpl.is_mirrored(template) else [node])
        try:
            ctx.gnt("gnt-node", "evacuate", "-f", "-p", node)
            record = wait_status(ctx, name, RUNNING)
            if record["pnode"] == node:
                raise CheckFailed(f"instance {name} is still on {node} after evacuate -p")
        finally:
            ctx.remove_instance(name)


def foreign(ctx: Context, node: str, field: str) -> None:
    """Skip unless every instance in ``field`` of ``node`` is one the suite created."""
    others = sorted(set(ctx.rapi.get(f"/2/nodes/{node}").get(field) or []) - set(ctx.created))
    if others:
        raise Skip(f"node {node} holds instances the suite did not create: {', '.join(others)}")
