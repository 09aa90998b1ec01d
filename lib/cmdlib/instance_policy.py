"""Enforcing instance policies in the logical units, with Ganeti's messages: an instance to
create or change must meet the policy of its primary node's group, one moving to a node of
another group that group's. Each check is made in check_prereq, before anything changes;
``ignore`` (--ignore-ipolicy) turns a refusal into a warning."""
from __future__ import annotations

from typing import Any

from genet import errors, ipolicy, params
from genet.cmdlib.base import LogicalUnit


def group_policy(data: Any, group_uuid: str) -> dict:
    """The policy that applies in a group (Ganeti's CalculateGroupIPolicy)."""
    return params.ipolicy(data, data.nodegroups[group_uuid])


def refuse_or_warn(lu: LogicalUnit, message: str, ignore: bool) -> None:
    """Ganeti's: a violation refuses the operation (wrong input), or with ``ignore`` is a warning."""
    if not ignore:
        raise errors.OpPrereqError(message, errors.ECode.INVAL)
    lu.feedback(f"WARNING: {message}")


def check_allocation(lu: LogicalUnit, data: Any, node: str, specs: list[ipolicy.InstanceSpec],
                     ignore: bool) -> None:
    """Ganeti's check of an instance created or changed on ``node``: each of ``specs`` (modify
    checks its maxmem and its minmem) meets the policy of the node's group."""
    group_uuid = data.nodes[node]["group"]
    policy = group_policy(data, group_uuid)
    found: list[str] = []
    for spec in specs:
        found += [text for text in ipolicy.violations(policy, spec) if text not in found]
    if found:
        refuse_or_warn(lu, f"Instance allocation to group {group_uuid} ({data.nodegroups[group_uuid]['name']})"
                       f" violates policy: {ipolicy.comma_join(found)}", ignore)


def check_target_node(lu: LogicalUnit, data: Any, inst: Any, target: str, ignore: bool) -> None:
    """Ganeti's CheckTargetNodeIPolicy: an instance going to ``target`` (a new primary or
    secondary) in another group than its primary's must meet that group's policy."""
    target_group = data.nodes[target]["group"]
    if data.nodes[inst["primary_node"]]["group"] == target_group:
        return
    found = ipolicy.instance_violations(group_policy(data, target_group), inst, params.beparams(data, inst))
    if found:
        refuse_or_warn(lu, f"Instance does not meet target node group's ({target_group}) instance policy:"
                       f" {ipolicy.comma_join(found)}", ignore)


def check_template_allowed(data: Any, node: str, template: str) -> None:
    """Ganeti's check of a disk template conversion: the primary's group must allow the new
    template (refused even with --ignore-ipolicy, as in Ganeti; its wording, "in not", kept)."""
    allowed = group_policy(data, data.nodes[node]["group"]).get("disk-templates", [])
    if template not in allowed:
        raise errors.OpPrereqError(f"Disk template '{template}' in not allowed (allowed templates:"
                                   f" {ipolicy.comma_join(allowed)})", errors.ECode.WRONG_STATE)


def newly_violating(before: Any, after: Any) -> list[str]:
    """Ganeti's ComputeNewInstanceViolations for a policy change: the instances (with a node in
    a group) that break the group's policy in config ``after`` but did not in ``before``."""
    found = set()
    for uuid in after.nodegroups:
        members = {name for name, node in after.nodes.items() if node["group"] == uuid}
        old, new = group_policy(before, uuid), group_policy(after, uuid)
        for name, inst in after.instances.items():
            if members & {inst["primary_node"], *inst.get("secondary_nodes", [])}:
                be = params.beparams(after, inst)
                if ipolicy.instance_violations(new, inst, be) and not ipolicy.instance_violations(old, inst, be):
                    found.add(name)
    return sorted(found)


def warn_of_new_violations(lu: LogicalUnit, before: Any, after: Any) -> None:
    """Ganeti's warning when a cluster's or group's policy changes under instances (they stay)."""
    found = newly_violating(before, after)
    if found:
        lu.feedback(f"WARNING: After the ipolicy change the following instances violate them:"
                    f" {ipolicy.comma_join(found)}")
