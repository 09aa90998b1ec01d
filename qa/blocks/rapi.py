"""Block ``rapi``: what a web manager does, through the RAPI alone.

Lists in bulk, then an instance's life as jobs (``POST /2/instances``, shutdown, startup,
a migration where one is possible, ``DELETE``), each job followed with ``/2/jobs/ID/wait``
until it ends and read back with ``/2/jobs/ID``; and a cluster tag added and removed.
gnt-instance list over SSH must see what the RAPI created.
"""
from __future__ import annotations

from qa import templates as tpl
from qa.blocks.instances import RUNNING, STOPPED, wait_status
from qa.context import Context
from qa.report import CheckFailed, Skip

BLOCK = "rapi"


def run(ctx: Context) -> None:
    with ctx.check(BLOCK, "GET /2/instances?bulk=1"):
        bulk = ctx.rapi.get("/2/instances", bulk=1)
        if not isinstance(bulk, list) or not all(isinstance(i, dict) and "name" in i and "status" in i
                                                 for i in bulk):
            raise CheckFailed(f"GET /2/instances?bulk=1 is not a list of instances: {str(bulk)[:200]}")
        missing = sorted(set(ctx.facts.instances) - {i["name"] for i in bulk})
        if missing:
            raise CheckFailed(f"GET /2/instances?bulk=1 lacks {missing}")

    with ctx.check(BLOCK, "GET /2/nodes?bulk=1 and /2/features"):
        nodes = sorted(n["name"] for n in ctx.rapi.get("/2/nodes", bulk=1))
        if nodes != ctx.facts.all_nodes:
            raise CheckFailed(f"GET /2/nodes?bulk=1 lists {nodes}, expected {ctx.facts.all_nodes}")
        if "instance-create-reqv1" not in ctx.rapi.get("/2/features"):
            raise CheckFailed("GET /2/features lacks instance-create-reqv1")

    with ctx.check(BLOCK, "a cluster tag added and removed by jobs"):
        tag = f"{ctx.options.prefix}tag"
        ctx.rapi.run_job("PUT", "/2/tags", tag=tag)
        if tag not in ctx.rapi.get("/2/tags"):
            raise CheckFailed(f"GET /2/tags lacks {tag} after adding it")
        ctx.rapi.run_job("DELETE", "/2/tags", tag=tag)
        if tag in ctx.rapi.get("/2/tags"):
            raise CheckFailed(f"GET /2/tags still shows {tag} after removing it")

    runnable = ctx.runnable_templates(lambda t: len(ctx.facts.nodes) > 1 or not tpl.is_mirrored(t))
    if not runnable:
        ctx.reporter.skipped_check(BLOCK, "instance jobs", "no enabled template the suite can create "
                                                           "on the usable nodes")
        return
    instance_jobs(ctx, runnable[0])


def instance_jobs(ctx: Context, template: str) -> None:
    node = ctx.facts.nodes[-2:] if tpl.is_mirrored(template) else ctx.facts.nodes[-1:]
    name = ctx.new_name("rapi")
    body = {"__version__": 1, "mode": "create", "name": name, "disk_template": template,
            "os": ctx.os_name(), "pnode": node[0], "nics": [], "name_check": False, "ip_check": False,
            "disks": [{"size": ctx.options.disk_size}] if tpl.has_disks(template) else []}
    if len(node) > 1:
        body["snode"] = node[1]
    with ctx.check(BLOCK, f"POST /2/instances ({template}) job, followed with /2/jobs/ID/wait",
                   required=True):
        ctx.created.append(name)
        job = ctx.rapi.run_job("POST", "/2/instances", body)
        if not job.get("ops") or job.get("opstatus") != ["success"]:
            raise CheckFailed(f"GET /2/jobs/{job.get('id')} shows ops {job.get('ops')!r}, "
                              f"opstatus {job.get('opstatus')!r}")
        wait_status(ctx, name, RUNNING)
    try:
        with ctx.check(BLOCK, "gnt-instance list sees the instance the RAPI created"):
            rows = ctx.gnt_rows("gnt-instance", ["name", "pnode"], name)
            if rows != [[name, node[0]]]:
                raise CheckFailed(f"gnt-instance list {name} shows {rows}")
        with ctx.check(BLOCK, "PUT shutdown and startup jobs"):
            ctx.rapi.run_job("PUT", f"/2/instances/{name}/shutdown")
            wait_status(ctx, name, STOPPED)
            ctx.rapi.run_job("PUT", f"/2/instances/{name}/startup")
            wait_status(ctx, name, RUNNING)
        with ctx.check(BLOCK, "PUT migrate job"):
            if not tpl.can_move(template) or len(ctx.facts.nodes) < 2:
                raise Skip(f"instances of {template} cannot move on this cluster")
            target = node[1] if len(node) > 1 else ctx.facts.nodes[-2]
            ctx.rapi.run_job("PUT", f"/2/instances/{name}/migrate", {"target_node": target})
            if ctx.instance(name)["pnode"] != target:
                raise CheckFailed(f"instance {name} is not on {target} after the migrate job")
    finally:
        with ctx.check(BLOCK, "DELETE /2/instances/NAME job"):
            ctx.rapi.run_job("DELETE", f"/2/instances/{name}")
            if ctx.instance_exists(name):
                raise CheckFailed(f"GET /2/instances/{name} still answers after the removal job")
