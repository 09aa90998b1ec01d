"""Block ``cluster``: the cluster answers, is healthy, and takes a parameter change both ways.

The harmless parameter is the candidate pool size: raising it by one and setting it back
changes no node's role for long and exists in every Ganeti version. It is changed once with
gnt-cluster over SSH and once through the RAPI (``PUT /2/modify``), and read back each time
through the other side, so that both paths see the same configuration.
"""
from __future__ import annotations

import re

from qa.context import Context
from qa.report import CheckFailed

BLOCK = "cluster"


def run(ctx: Context) -> None:
    facts = ctx.facts
    with ctx.check(BLOCK, "gnt-cluster info names the cluster and its master"):
        out = ctx.gnt("gnt-cluster", "info").stdout
        name = _field(out, "Cluster name")
        master = _field(out, "Master node")
        if (name, master) != (facts.name, facts.master):
            raise CheckFailed(f"gnt-cluster info says cluster {name!r}, master {master!r}; "
                              f"the RAPI says {facts.name!r}, {facts.master!r}")

    with ctx.check(BLOCK, "gnt-cluster verify"):
        ctx.gnt("gnt-cluster", "verify")

    with ctx.check(BLOCK, "RAPI /version and /2/info"):
        version = ctx.rapi.get("/version")
        if version != 2:
            raise CheckFailed(f"GET /version answered {version!r}, expected 2")
        info = ctx.rapi.get("/2/info")
        missing = [k for k in ("name", "master", "enabled_hypervisors", "candidate_pool_size") if k not in info]
        if missing:
            raise CheckFailed(f"GET /2/info lacks {missing}")

    pool = ctx.rapi.get("/2/info")["candidate_pool_size"]
    with ctx.check(BLOCK, "gnt-cluster modify -C (candidate pool size) and back"):
        try:
            ctx.gnt("gnt-cluster", "modify", "-C", str(pool + 1))
            _expect_pool(ctx, pool + 1, "after gnt-cluster modify")
        finally:
            ctx.gnt("gnt-cluster", "modify", "-C", str(pool))
        _expect_pool(ctx, pool, "after setting it back")

    with ctx.check(BLOCK, "RAPI PUT /2/modify (candidate pool size) and back"):
        try:
            ctx.rapi.run_job("PUT", "/2/modify", {"candidate_pool_size": pool + 1})
            shown = _field(ctx.gnt("gnt-cluster", "info").stdout, "candidate pool size")
            if shown != str(pool + 1):
                raise CheckFailed(f"gnt-cluster info shows candidate pool size {shown!r} after the "
                                  f"RAPI set it to {pool + 1}")
        finally:
            ctx.rapi.run_job("PUT", "/2/modify", {"candidate_pool_size": pool})
        _expect_pool(ctx, pool, "after setting it back through the RAPI")


def _expect_pool(ctx: Context, wanted: int, when: str) -> None:
    shown = ctx.rapi.get("/2/info")["candidate_pool_size"]
    if shown != wanted:
        raise CheckFailed(f"/2/info candidate_pool_size is {shown} {when}, expected {wanted}")


def _field(text: str, label: str) -> str:
    """The value after ``label:`` in gnt-cluster info's output (case-insensitive, any indent)."""
    match = re.search(rf"^\s*-?\s*{re.escape(label)}:\s*(.*)$", text, re.MULTILINE | re.IGNORECASE)
    if not match:
        raise CheckFailed(f"gnt-cluster info shows no {label!r}")
    return match.group(1).strip()
