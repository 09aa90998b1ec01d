"""Block ``groups``: gnt-group as Ganeti's QA drives it (qa_group.py), read back through gnt-group
list and info, gnt-node list and the RAPI.

Every group it makes is named after the run and removed at the end, even after a failure; a node
moved into one is moved back to the group it came from. The group evacuation and the check of a
split mirror each use an instance of their own, removed afterwards.
"""
from __future__ import annotations

from qa import generic
from qa import templates as tpl
from qa.context import Context
from qa.report import CheckFailed, Skip

BLOCK = "groups"
LIST_FIELDS = ["name", "uuid", "node_cnt", "node_list", "pinst_cnt", "alloc_policy", "ndparams", "ipolicy",
               "custom_ipolicy", "tags"]
ISPECS = ["cpu-count", "disk-count", "disk-size", "memory-size", "nic-count", "spindle-use"]


def run(ctx: Context) -> None:
    made: list[str] = []
    try:
        _checks(ctx, made)
    finally:
        for group in made:
            ctx.gnt("gnt-group", "remove", group, check=False)


def _group(ctx: Context, made: list[str], *options: str) -> str:
    name = ctx.new_name("group")
    made.append(name)
    ctx.gnt("gnt-group", "add", *options, name)
    return name


def _rapi(ctx: Context, group: str) -> dict:
    return ctx.rapi.get(f"/2/groups/{group}")


def _node_groups(ctx: Context, nodes: list[str]) -> list[str]:
    return [row[0] for row in ctx.gnt_rows("gnt-node", ["group"], *nodes)]


def _checks(ctx: Context, made: list[str]) -> None:
    home = ctx.gnt_rows("gnt-node", ["group"], ctx.facts.master)[0][0]

    with ctx.check(BLOCK, "gnt-group add, rename and remove; taken names and a group with nodes refused"):
        first, second = _group(ctx, made), _group(ctx, made)
        generic.refused(ctx, "gnt-group", "add", second)
        generic.refused(ctx, "gnt-group", "add", home)
        generic.refused(ctx, "gnt-group", "rename", first, second)
        third = ctx.new_name("group")
        ctx.gnt("gnt-group", "rename", first, third)
        made[made.index(first)] = third
        listed = [row[0] for row in ctx.gnt_rows("gnt-group", ["name"])]
        if first in listed or not {second, third} <= set(listed):
            raise CheckFailed(f"gnt-group list shows {listed} after renaming {first} to {third}")
        generic.refused(ctx, "gnt-group", "remove", home)
        for group in (second, third):
            ctx.gnt("gnt-group", "remove", group)
            made.remove(group)
        if {second, third} & {g["name"] for g in ctx.rapi.get("/2/groups")}:
            raise CheckFailed("GET /2/groups still lists a removed group")

    with ctx.check(BLOCK, "gnt-group add --alloc-policy and --node-parameters (an invalid policy refused)"):
        made.append(ctx.new_name("group"))
        generic.refused(ctx, "gnt-group", "add", "--alloc-policy", "notvalid", made[-1])
        group = _group(ctx, made, "--alloc-policy", "last_resort", "--node-parameters", "oob_program=/bin/true")
        [[policy]] = ctx.gnt_rows("gnt-group", ["alloc_policy"], group)
        record = _rapi(ctx, group)
        if (policy, record["alloc_policy"], record["custom_ndparams"]) != \
                ("last_resort", "last_resort", {"oob_program": "/bin/true"}):
            raise CheckFailed(f"group {group}: list shows policy {policy!r}, the RAPI {record['alloc_policy']!r} "
                              f"and own node parameters {record['custom_ndparams']}")
        ctx.gnt("gnt-group", "remove", group)
        made.remove(group)

    group = _group(ctx, made)
    with ctx.check(BLOCK, "gnt-group modify --alloc-policy and --node-parameters, then default"):
        generic.refused(ctx, "gnt-group", "modify", "--alloc-policy", "notvalid", group)
        ctx.gnt("gnt-group", "modify", "--alloc-policy", "unallocable", "--node-parameters", "spindle_count=10", group)
        record = _rapi(ctx, group)
        if (record["alloc_policy"], record["custom_ndparams"], record["ndparams"].get("spindle_count")) != \
                ("unallocable", {"spindle_count": 10}, 10):
            raise CheckFailed(f"group {group} after modify: {record['alloc_policy']}, {record['custom_ndparams']}")
        ctx.gnt("gnt-group", "modify", "--alloc-policy", "preferred", "--node-parameters", "spindle_count=default",
                group)
        record = _rapi(ctx, group)
        if (record["alloc_policy"], record["custom_ndparams"]) != ("preferred", {}):
            raise CheckFailed(f"group {group} after the reset: {record['alloc_policy']}, {record['custom_ndparams']}")

    with ctx.check(BLOCK, "gnt-group modify --ipolicy-vcpu-ratio, -spindle-ratio, -disk-templates, then default"):
        before = _rapi(ctx, group)["ipolicy"]
        template = next(iter(ctx.runnable_templates()), "diskless")
        for option, value, key, wanted in (("--ipolicy-vcpu-ratio", "1.5", "vcpu-ratio", 1.5),
                                           ("--ipolicy-spindle-ratio", "1.5", "spindle-ratio", 1.5),
                                           ("--ipolicy-disk-templates", template, "disk-templates", [template])):
            ctx.gnt("gnt-group", "modify", option, value, group)
            record = _rapi(ctx, group)
            if record["custom_ipolicy"] != {key: wanted} or record["ipolicy"] != {**before, key: wanted}:
                raise CheckFailed(f"group {group} after {option} {value}: own policy {record['custom_ipolicy']}, "
                                  f"policy {record['ipolicy']}")
            ctx.gnt("gnt-group", "modify", option, "default", group)
            record = _rapi(ctx, group)
            if record["custom_ipolicy"] != {} or record["ipolicy"] != before:
                raise CheckFailed(f"group {group} after {option} default: own policy {record['custom_ipolicy']}")

    with ctx.check(BLOCK, "gnt-group modify --ipolicy-bounds-specs (min above max refused), then default"):
        before = _rapi(ctx, group)["ipolicy"]
        ctx.gnt("gnt-group", "modify", "--ipolicy-bounds-specs", _bounds(4, 4), group)
        for spec in ISPECS:
            ctx.gnt("gnt-group", "modify", "--ipolicy-bounds-specs", f"min:{spec}=8/max:{spec}=8", group)
            pair = _rapi(ctx, group)["ipolicy"]["minmax"][0]
            if (pair["min"][spec], pair["max"][spec]) != (8, 8) or \
                    any(pair["min"][s] != 4 for s in ISPECS if s != spec):
                raise CheckFailed(f"group {group}: bounds {pair} after setting {spec} to 8/8")
            generic.refused(ctx, "gnt-group", "modify", "--ipolicy-bounds-specs", f"min:{spec}=8/max:{spec}=4",
                            group)
            ctx.gnt("gnt-group", "modify", "--ipolicy-bounds-specs", _bounds(4, 4), group)
        ctx.gnt("gnt-group", "modify", "--ipolicy-bounds-specs", "default", group)
        if _rapi(ctx, group)["ipolicy"] != before:
            raise CheckFailed(f"group {group}: the policy is not the inherited one after bounds 'default'")

    with ctx.check(BLOCK, "gnt-group show-ispecs-cmd: its options set the specs it shows"):
        full = ctx.gnt("gnt-group", "show-ispecs-cmd", "--include-defaults", group).stdout.strip()
        words = full.split()
        if words[:3] != ["gnt-group", "add", "--ipolicy-bounds-specs"] or words[-1] != group:
            raise CheckFailed(f"gnt-group show-ispecs-cmd printed {full!r}")
        ctx.gnt("gnt-group", "modify", *words[2:-1], group)
        own = ctx.gnt("gnt-group", "show-ispecs-cmd", group).stdout.strip()
        ctx.gnt("gnt-group", "modify", "--ipolicy-bounds-specs", "default", group)
        if own != full:
            raise CheckFailed(f"after applying {full!r} the group's own specs are {own!r}")

    with ctx.check(BLOCK, "gnt-group info in Ganeti's layout"):
        lines = [line.rstrip() for line in ctx.gnt("gnt-group", "info", group).stdout.splitlines()]
        for wanted in (f"- Node group: {group}", "  Node parameters:", "  Disk parameters:", "  Instance policy:"):
            if wanted not in lines:
                raise CheckFailed(f"gnt-group info {group} has no line {wanted!r}: {lines[:6]}")

    with ctx.check(BLOCK, "gnt-group list and list-fields"):
        generic.check_list_fields(ctx, "gnt-group", LIST_FIELDS)
        generic.check_list(ctx, "gnt-group")
        [row] = ctx.gnt_rows("gnt-group", ["name", "node_cnt", "pinst_cnt"], group)
        if row != [group, "0", "0"]:
            raise CheckFailed(f"gnt-group list shows {row} for the empty group {group}")

    with ctx.check(BLOCK, "gnt-group add-tags, list-tags, search-tags, remove-tags"):
        generic.check_tags(ctx, "gnt-group", "nodegroup", group)

    with ctx.check(BLOCK, "RAPI /2/groups: POST, PUT modify and rename, own values put back unchanged, DELETE"):
        _rapi_checks(ctx, made)

    _assign_checks(ctx, group, home)


def _rapi_checks(ctx: Context, made: list[str]) -> None:
    """Ganeti's TestRapiNodeGroups: every step a job; a group's own parameters as GET shows them are
    what PUT modify takes, and putting them back changes nothing."""
    first, second, third = (ctx.new_name("group") for _ in range(3))
    made.extend([first, second, third])
    ctx.rapi.run_job("POST", "/2/groups", {"name": first})
    ctx.rapi.run_job("POST", "/2/groups", {"name": second, "alloc_policy": "unallocable"})
    ctx.rapi.run_job("PUT", f"/2/groups/{first}/modify", {"alloc_policy": "unallocable"})
    ctx.rapi.run_job("PUT", f"/2/groups/{second}/rename", {"new_name": third})
    policies = {row[0]: row[1] for row in ctx.gnt_rows("gnt-group", ["name", "alloc_policy"])}
    if (policies.get(first), policies.get(third), second in policies) != ("unallocable", "unallocable", False):
        raise CheckFailed(f"gnt-group list after the RAPI's jobs: {policies}")
    ctx.gnt("gnt-group", "modify", "--node-parameters", "spindle_count=3", "--ipolicy-vcpu-ratio", "2", third)
    before = _rapi(ctx, third)
    ctx.rapi.run_job("PUT", f"/2/groups/{third}/modify", {
        "alloc_policy": before["alloc_policy"], "ndparams": before["custom_ndparams"],
        "ipolicy": before["custom_ipolicy"], "diskparams": before["custom_diskparams"]})
    after = _rapi(ctx, third)
    changed = sorted(key for key in before if key not in ("mtime", "serial_no") and before[key] != after[key])
    if changed:
        raise CheckFailed(f"putting back group {third}'s own values changed {changed}")
    for group in (first, third):
        ctx.rapi.run_job("DELETE", f"/2/groups/{group}")
        made.remove(group)
    made.remove(second)
    left = {first, third} & {g["name"] for g in ctx.rapi.get("/2/groups")}
    if left:
        raise CheckFailed(f"GET /2/groups still lists {sorted(left)} after DELETE")


def _bounds(low: int, high: int) -> str:
    return f"min:{','.join(f'{s}={low}' for s in ISPECS)}/max:{','.join(f'{s}={high}' for s in ISPECS)}"


def _home_nodes(ctx: Context, home: str, count: int, why: str) -> list[str]:
    """The usable nodes in the master's group (master first), so that each goes back where it was;
    Skip if there are fewer than ``count``."""
    nodes = ctx.need_nodes(count, why)
    groups = dict(zip(nodes, _node_groups(ctx, nodes)))
    nodes = [node for node in nodes if groups[node] == home]
    if len(nodes) < count:
        raise Skip(f"{why} needs {count} usable nodes in group {home}, it has {len(nodes)}")
    return nodes


def _assign_checks(ctx: Context, group: str, home: str) -> None:
    """assign-nodes and evacuate, on the last usable nodes of the master's group (the master stays
    where it is)."""
    with ctx.check(BLOCK, "gnt-group assign-nodes a node and back"):
        node = _home_nodes(ctx, home, 2, "moving a node other than the master")[-1]
        try:
            ctx.gnt("gnt-group", "assign-nodes", group, node)
            if _node_groups(ctx, [node]) != [group] or _rapi(ctx, group)["node_list"] != [node]:
                raise CheckFailed(f"node {node} is not in group {group} after assign-nodes")
        finally:
            ctx.gnt("gnt-group", "assign-nodes", home, node)
        if _node_groups(ctx, [node]) != [home]:
            raise CheckFailed(f"node {node} is not back in group {home}")

    with ctx.check(BLOCK, "gnt-group assign-nodes refuses to split a mirror's nodes unless --force"):
        mirrored = ctx.runnable_templates(tpl.is_mirrored)
        if not mirrored:
            raise Skip("no mirrored template is exercised")
        pair = _home_nodes(ctx, home, 3, "a mirror away from the master")[-2:]
        name = ctx.new_name("split")
        ctx.add_instance(name, mirrored[0], pair, start=False)
        try:
            generic.refused(ctx, "gnt-group", "assign-nodes", group, pair[1])
            if _node_groups(ctx, pair) != [home, home]:
                raise CheckFailed(f"a refused assign-nodes moved a node: {_node_groups(ctx, pair)}")
            ctx.gnt("gnt-group", "assign-nodes", "--force", group, pair[1])
            ctx.gnt("gnt-group", "assign-nodes", group, pair[0])
            if _node_groups(ctx, pair) != [group, group]:
                raise CheckFailed(f"nodes {pair} are in groups {_node_groups(ctx, pair)}, expected {group}")
        finally:
            ctx.gnt("gnt-group", "assign-nodes", "--force", home, *pair)
            ctx.remove_instance(name)
        if _node_groups(ctx, pair) != [home, home]:
            raise CheckFailed(f"nodes {pair} are not back in group {home}")

    with ctx.check(BLOCK, "gnt-group evacuate moves an instance to the other group"):
        nodes = _home_nodes(ctx, home, 2, "evacuating a group")
        movable = ctx.runnable_templates(lambda t: tpl.can_move(t) and not tpl.is_mirrored(t))
        if not movable:
            raise Skip("no template whose instances move between any two nodes is exercised")
        node, name = nodes[-1], ctx.new_name("evac")
        ctx.gnt("gnt-group", "assign-nodes", group, node)
        try:
            ctx.add_instance(name, movable[0], [node], start=False)
            ctx.gnt("gnt-group", "evacuate", "--to", home, group)
            [[pnode]] = ctx.gnt_rows("gnt-instance", ["pnode"], name)
            if pnode == node or _node_groups(ctx, [pnode]) != [home]:
                raise CheckFailed(f"instance {name} is on {pnode} after evacuating group {group}")
            ctx.remove_instance(name)
        finally:
            ctx.gnt("gnt-group", "assign-nodes", home, node)
