"""Blocks ``instances[TEMPLATE]``: an instance's whole life, once per disk template.

Each template gets its own instance: created, shown, stopped, started, rebooted, marked offline
and online again, its memory ballooned, renamed, its disk grown, removed, all with gnt-instance over SSH, each step checked through the RAPI (the
instance's status, nodes, name and disk size as the cluster records them). A template the
cluster does not enable is skipped; one that needs two nodes is skipped on a single node.
"""
from __future__ import annotations

import time

import yaml

from qa import templates as tpl
from qa.context import Context
from qa.report import CheckFailed, Skip

RUNNING, STOPPED = "running", "ADMIN_down"


def run(ctx: Context) -> None:
    ctx.per_template("instances", life, ctx.templates())


def life(ctx: Context, block: str, template: str) -> None:
    nodes = placement(ctx, template)
    name = ctx.new_name(template[:4])
    with ctx.check(block, f"add -t {template} on {':'.join(nodes)}", required=True):
        ctx.add_instance(name, template, nodes)
        wait_status(ctx, name, RUNNING)
        ctx.expect(name, disk_template=template, pnode=nodes[0], snodes=nodes[1:])
    current = {"name": name}        # the rename step changes it
    try:
        steps(ctx, block, template, current)
    finally:
        with ctx.check(block, "remove"):
            ctx.remove_instance(current["name"])


def steps(ctx: Context, block: str, template: str, current: dict) -> None:
    name = current["name"]
    with ctx.check(block, "info (Ganeti's YAML layout)"):
        [info] = yaml.safe_load(ctx.gnt("gnt-instance", "info", name).stdout)
        shown = (info["Instance name"], info["Disk template"], info["Nodes"][0]["primary"])
        if shown != (name, template, ctx.instance(name)["pnode"]):
            raise CheckFailed(f"gnt-instance info {name} shows name, template, primary {shown}")

    with ctx.check(block, "list shows it running"):
        rows = ctx.gnt_rows("gnt-instance", ["name", "status", "disk_template"], name)
        if rows != [[name, RUNNING, template]]:
            raise CheckFailed(f"gnt-instance list {name} shows {rows}")

    with ctx.check(block, "shutdown"):
        ctx.gnt("gnt-instance", "shutdown", name)
        wait_status(ctx, name, STOPPED)

    with ctx.check(block, "startup"):
        ctx.gnt("gnt-instance", "startup", name)
        wait_status(ctx, name, RUNNING)

    with ctx.check(block, "reboot"):
        ctx.gnt("gnt-instance", "reboot", name)
        wait_status(ctx, name, RUNNING)

    offline_and_memory(ctx, block, name)

    new = f"{name}r"
    with ctx.check(block, "rename (stopped) and start again"):
        ctx.unless_known_bug("rename", template)
        ctx.gnt("gnt-instance", "shutdown", name)
        ctx.gnt("gnt-instance", "rename", "--no-name-check", "--no-ip-check", name, new)
        ctx.renamed(name, new)
        current["name"] = new
        if ctx.instance_exists(name):
            raise CheckFailed(f"the RAPI still knows {name} after the rename to {new}")
        ctx.expect(new, disk_template=template)
        ctx.gnt("gnt-instance", "startup", new)
        wait_status(ctx, new, RUNNING)

    name = current["name"]
    with ctx.check(block, f"grow-disk 0 by {ctx.options.grow_by} MiB"):
        if not tpl.has_disks(template):
            raise Skip(f"template {template} has no disks")
        before = ctx.instance(name)["disk.sizes"][0]
        ctx.gnt("gnt-instance", "grow-disk", name, "0", f"{ctx.options.grow_by}M")
        after = ctx.instance(name)["disk.sizes"][0]
        if after != before + ctx.options.grow_by:
            raise CheckFailed(f"disk 0 of {name} is {after} MiB after growing {before} MiB "
                              f"by {ctx.options.grow_by}")


def offline_and_memory(ctx: Context, block: str, name: str) -> None:
    """Ganeti's offline state (a stopped instance only; it cannot start until online again) and
    the running guest's memory ballooned to its minmem."""
    with ctx.check(block, "modify --offline refuses startup, --online allows it"):
        ctx.gnt("gnt-instance", "shutdown", name)
        wait_status(ctx, name, STOPPED)
        ctx.gnt("gnt-instance", "modify", "--offline", name)
        wait_status(ctx, name, "ADMIN_offline")
        if ctx.gnt("gnt-instance", "startup", name, check=False).returncode == 0:
            raise CheckFailed(f"gnt-instance startup started {name}, which is offline")
        ctx.gnt("gnt-instance", "modify", "--online", name)
        ctx.gnt("gnt-instance", "startup", name)
        wait_status(ctx, name, RUNNING)

    with ctx.check(block, "modify -m balloons the running guest to minmem"):
        [[maxmem]] = ctx.gnt_rows("gnt-instance", ["be/maxmem"], name)
        target = int(maxmem) // 2
        if target < 64:
            raise Skip(f"maxmem {maxmem} MiB leaves nothing to balloon")
        ctx.gnt("gnt-instance", "modify", "-B", f"minmem={target}", name)
        ctx.gnt("gnt-instance", "modify", "-m", f"{target}M", name)
        deadline = time.monotonic() + 30
        while ctx.instance(name).get("oper_ram") != target:
            if time.monotonic() > deadline:
                raise CheckFailed(f"instance {name} reports {ctx.instance(name).get('oper_ram')} MiB after"
                                  f" ballooning to {target} MiB")
            time.sleep(0.5)


def placement(ctx: Context, template: str) -> list[str]:
    """Primary (and secondary) node: the last usable nodes, so the master carries less."""
    if tpl.is_mirrored(template):
        ctx.need_nodes(2, f"template {template}")
        return ctx.facts.nodes[-2:]
    return ctx.facts.nodes[-1:]


def wait_status(ctx: Context, name: str, wanted: str, timeout: float = 30) -> dict:
    """The instance's record once the RAPI shows ``wanted`` as its status (a hypervisor may
    report a guest's start or stop a moment after the job ended)."""
    deadline = time.monotonic() + timeout
    while True:
        record = ctx.instance(name)
        if record.get("status") == wanted:
            return record
        if time.monotonic() > deadline:
            raise CheckFailed(f"instance {name} is {record.get('status')!r}, expected {wanted!r}")
        time.sleep(0.5)
