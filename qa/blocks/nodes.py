"""Block ``nodes``: the node commands agree with the RAPI, and a node drains and comes back.

Draining is the harmless node change: it only stops new instances from being placed on the
node. A node that loses its master candidate role on the way (Ganeti demotes drained nodes) is
made a candidate again, so the node ends as it started.
"""
from __future__ import annotations

from qa.context import Context
from qa.report import CheckFailed, Skip

BLOCK = "nodes"
LIST_FIELDS = ["name", "pinst_cnt", "sinst_cnt", "mtotal", "dtotal", "master_candidate", "drained", "offline"]


def run(ctx: Context) -> None:
    facts = ctx.facts
    rapi_nodes = {n["name"]: n for n in ctx.rapi.get("/2/nodes", bulk=1)}

    with ctx.check(BLOCK, "gnt-node list shows every node the RAPI knows"):
        listed = sorted(row[0] for row in ctx.gnt_rows("gnt-node", ["name"]))
        if listed != sorted(rapi_nodes):
            raise CheckFailed(f"gnt-node list shows {listed}, the RAPI {sorted(rapi_nodes)}")

    with ctx.check(BLOCK, "gnt-node list -o fields agree with the RAPI"):
        rows = ctx.gnt_rows("gnt-node", LIST_FIELDS)
        for row in rows:
            if len(row) != len(LIST_FIELDS):
                raise CheckFailed(f"gnt-node list row {row} does not have {len(LIST_FIELDS)} fields")
            name, pinst, sinst = row[0], int(row[1]), int(row[2])
            node = rapi_nodes[name]
            if (pinst, sinst) != (node["pinst_cnt"], node["sinst_cnt"]):
                raise CheckFailed(f"node {name}: gnt-node list counts {pinst}/{sinst} instances, "
                                  f"the RAPI {node['pinst_cnt']}/{node['sinst_cnt']}")
            if _flag(row[5]) != bool(node["master_candidate"]) or _flag(row[6]) != bool(node["drained"]):
                raise CheckFailed(f"node {name}: gnt-node list flags {row[5:]} differ from the RAPI's")

    with ctx.check(BLOCK, "gnt-node list-fields names the fields used"):
        known = {line.split()[0] for line in ctx.gnt("gnt-node", "list-fields").stdout.splitlines()[1:]
                 if line.strip()}
        missing = [f for f in LIST_FIELDS if f not in known]
        if missing:
            raise CheckFailed(f"gnt-node list-fields lacks {missing}")

    with ctx.check(BLOCK, "gnt-node info of every node"):
        for name in facts.all_nodes:
            out = ctx.gnt("gnt-node", "info", name).stdout
            if name not in out:
                raise CheckFailed(f"gnt-node info {name} does not name the node")

    with ctx.check(BLOCK, "gnt-node modify --drained yes, then no"):
        others = [n for n in facts.nodes if n != facts.master]
        if not others:
            raise Skip("the only usable node is the master, which cannot be drained")
        node = others[-1]
        candidate = bool(rapi_nodes[node]["master_candidate"])
        try:
            ctx.gnt("gnt-node", "modify", "-D", "yes", node)
            if not ctx.rapi.get(f"/2/nodes/{node}")["drained"]:
                raise CheckFailed(f"node {node} is not drained after gnt-node modify -D yes")
        finally:
            ctx.gnt("gnt-node", "modify", "-D", "no", node)
        after = ctx.rapi.get(f"/2/nodes/{node}")
        if after["drained"]:
            raise CheckFailed(f"node {node} is still drained after gnt-node modify -D no")
        if candidate and not after["master_candidate"]:
            ctx.gnt("gnt-node", "modify", "-C", "yes", node)
            if not ctx.rapi.get(f"/2/nodes/{node}")["master_candidate"]:
                raise CheckFailed(f"node {node} is no master candidate again")


def _flag(text: str) -> bool:
    return text.strip().upper() in ("Y", "YES", "TRUE")
