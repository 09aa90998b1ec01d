"""Block ``cluster-admin``: gnt-cluster's administration commands answer as Ganeti's.

Everything it changes it puts back: a tag of the run is added and removed, the cluster is renamed
and named back, a file copied to the nodes is removed again. Certificates and upgrades are left
alone (they would cut off a QA host that pinned the RAPI certificate, or need a second version).
"""
from __future__ import annotations

import uuid

from qa.context import Context
from qa.report import CheckFailed

BLOCK = "cluster-admin"
VERSION_LINES = ["Software version", "Internode protocol", "Configuration format", "OS api version",
                 "Export interface", "VCS version"]
SEPARATOR = "-" * 48


def run(ctx: Context) -> None:
    facts = ctx.facts
    with ctx.check(BLOCK, "gnt-cluster version prints Ganeti's six lines"):
        keys = [line.split(":", 1)[0] for line in ctx.gnt("gnt-cluster", "version").stdout.splitlines()]
        if keys != VERSION_LINES:
            raise CheckFailed(f"gnt-cluster version printed {keys}, expected {VERSION_LINES}")

    with ctx.check(BLOCK, "gnt-cluster master-ping exits 0 on the master"):
        ctx.gnt("gnt-cluster", "master-ping")

    tag = f"qa-admin-{uuid.uuid4().hex[:8]}"
    with ctx.check(BLOCK, "gnt-cluster search-tags finds a tag of the run, and nothing once it is gone"):
        ctx.gnt("gnt-cluster", "add-tags", tag)
        try:
            found = ctx.gnt("gnt-cluster", "search-tags", f"^{tag}$").stdout.splitlines()
            if found != [f"/cluster {tag}"]:
                raise CheckFailed(f"search-tags printed {found}, expected ['/cluster {tag}']")
        finally:
            ctx.gnt("gnt-cluster", "remove-tags", tag)
        if ctx.gnt("gnt-cluster", "search-tags", f"^{tag}$", check=False).returncode != 1:
            raise CheckFailed("search-tags of a removed tag did not exit with 1")

    with ctx.check(BLOCK, "gnt-cluster command runs on every node, the master last"):
        out = ctx.gnt("gnt-cluster", "command", "true").stdout.splitlines()
        shown = [line.removeprefix("node: ") for line in out if line.startswith("node: ")]
        if sorted(shown) != sorted(facts.all_nodes) or shown[-1] != facts.master:
            raise CheckFailed(f"gnt-cluster command ran on {shown}; the nodes are {facts.all_nodes}, master last")
        if out.count(SEPARATOR) != len(shown) or out.count("return code = 0") != len(shown):
            raise CheckFailed(f"gnt-cluster command output is not Ganeti's blocks: {out}")

    path = f"/tmp/{tag}"
    with ctx.check(BLOCK, "gnt-cluster copyfile copies a file of the master to another node"):
        others = [n for n in facts.all_nodes if n != facts.master]
        if not others:
            raise CheckFailed("needs a second node")
        try:
            ctx.gnt("gnt-cluster", "command", "-n", facts.master, f"echo {tag} > {path}")
            ctx.gnt("gnt-cluster", "copyfile", "-n", others[0], path)
            # a genet dev cluster's nodes share a machine, each below its own root (their working
            # directory, "/" on a real node): the copy is there; Ganeti's commands run in ~
            out = ctx.gnt("gnt-cluster", "command", "-n", others[0], f"cat .{path} 2>/dev/null || cat {path}").stdout
            if tag not in out:
                raise CheckFailed(f"{path} on {others[0]} does not hold what the master wrote: {out!r}")
        finally:
            ctx.gnt("gnt-cluster", "command", f"rm -f {path} .{path}", check=False)

    with ctx.check(BLOCK, "gnt-cluster rename and back"):
        ctx.gnt("gnt-cluster", "rename", "-f", f"{tag}.invalid")
        try:
            name = ctx.rapi.get("/2/info")["name"]
            if name != f"{tag}.invalid":
                raise CheckFailed(f"/2/info names the cluster {name!r} after the rename")
        finally:
            ctx.gnt("gnt-cluster", "rename", "-f", facts.name)

    with ctx.check(BLOCK, "gnt-cluster repair-disk-sizes, verify --node-group, verify-disks --no-strict"):
        ctx.gnt("gnt-cluster", "repair-disk-sizes")
        group = ctx.rapi.get("/2/groups")[0]["name"]
        ctx.gnt("gnt-cluster", "verify", "--node-group", group, "--no-nplus1-mem")
        ctx.gnt("gnt-cluster", "verify-disks", "--no-strict")
