"""Block ``backup``: gnt-backup as Ganeti's QA drives it (export, list, import, remove): an instance
exported to another node, listed there, imported as a new instance with the same disks, exported
again with --remove-instance, and its exports removed.

It uses the cheapest exercised template with disks; its instances and exports are named after
the run, and the exports are removed even after a failure.
"""
from __future__ import annotations

from qa import generic
from qa import templates as tpl
from qa.context import Context
from qa.report import CheckFailed, Skip

BLOCK = "backup"
LIST_FIELDS = ["node", "export"]


def _exports(ctx: Context, node: str | None = None) -> list[list[str]]:
    """(node, export) rows of gnt-backup list, of one node or all."""
    argv = ["gnt-backup", "list", "--no-headers", "--separator=|", "-o", "node,export"]
    if node:
        argv.append(f"--node={node}")
    return [line.split("|") for line in ctx.gnt(*argv).stdout.splitlines() if line.strip()]


def run(ctx: Context) -> None:
    templates = ctx.runnable_templates(tpl.has_disks)
    if not templates:
        raise Skip("no template with disks is exercised")
    template = templates[0]
    nodes = ctx.need_nodes(2, "an export to another node")
    name, copy = ctx.new_name("export"), ctx.new_name("import")
    try:
        _checks(ctx, f"{BLOCK}[{template}]", template, nodes, name, copy)
    finally:
        for export in (name, copy):
            if any(row[1] == export for row in _exports(ctx)):
                ctx.gnt("gnt-backup", "remove", export, check=False)


def _checks(ctx: Context, block: str, template: str, nodes: list[str], name: str, copy: str) -> None:
    primary, target = nodes[-1], nodes[-2]
    with ctx.check(block, "gnt-backup export without a target node is refused", True):
        ctx.add_instance(name, template, [primary])
        generic.refused(ctx, "gnt-backup", "export", name)

    with ctx.check(block, f"gnt-backup export -n {target}; list --node shows it; the instance runs again", True):
        ctx.gnt("gnt-backup", "export", "-n", target, name)
        if [target, name] not in _exports(ctx, target):
            raise CheckFailed(f"gnt-backup list --node={target} does not show {name}: {_exports(ctx, target)}")
        ctx.expect(name, status="running")

    with ctx.check(block, "gnt-backup list -o and list-fields"):
        generic.check_list_fields(ctx, "gnt-backup", LIST_FIELDS)
        generic.check_list(ctx, "gnt-backup", namefield=None, test_unknown=False)

    with ctx.check(block, f"gnt-backup import --src-node {target} makes a running instance with the same disks",
                   True):
        ctx.created.append(copy)
        ctx.gnt("gnt-backup", "import", "-t", template, f"--src-node={target}", f"--src-dir={name}",
                f"--node={primary}", "--no-name-check", "--no-ip-check", copy)
        original = ctx.instance(name)
        ctx.expect(copy, status="running", pnode=primary, os=original["os"], disk__sizes=original["disk.sizes"])

    with ctx.check(block, "RAPI PUT /2/instances/NAME/export to the master replaces the export on the other node"):
        master = ctx.facts.master
        ctx.rapi.run_job("PUT", f"/2/instances/{name}/export", {"mode": "local", "destination": master})
        listed = [row for row in _exports(ctx) if row[1] == name]
        if listed != [[master, name]]:         # Ganeti removes an instance's exports on other nodes
            raise CheckFailed(f"gnt-backup list shows {listed} for {name}, expected it on {master} only")
        ctx.expect(name, status="running")

    with ctx.check(block, "gnt-backup export --remove-instance removes the instance, keeps the export"):
        ctx.gnt("gnt-backup", "export", "-n", target, "--remove-instance", copy)
        if ctx.instance_exists(copy):
            raise CheckFailed(f"instance {copy} still exists after export --remove-instance")
        if [target, copy] not in _exports(ctx, target):
            raise CheckFailed(f"gnt-backup list does not show the export {copy}")

    with ctx.check(block, "gnt-backup remove"):
        for export in (name, copy):
            ctx.gnt("gnt-backup", "remove", export)
        left = [row for row in _exports(ctx) if row[1] in (name, copy)]
        if left:
            raise CheckFailed(f"gnt-backup list still shows {left} after remove")
        ctx.remove_instance(name)
