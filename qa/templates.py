"""What the suite knows about disk templates: which can move, which need a second node.

A cluster does not say over the RAPI what its templates can do, so the suite keeps Ganeti's
classification (genet's templates fit it: ``mirror`` is internally mirrored like ``drbd``).
A template unknown here is treated as one whose disks stay on their node, which only means
fewer blocks run for it.
"""
from __future__ import annotations

# disks on two nodes, kept in sync by the cluster: created with -n PRIMARY:SECONDARY; they
# migrate, fail over and have their disks replaced
MIRRORED = frozenset({"drbd", "mirror"})
# disks every node reaches (or none): instances migrate and fail over to any node
SHARED = frozenset({"diskless", "sharedfile", "rbd", "gluster", "ext", "blockdev"})
# templates whose instances the suite cannot create from nothing, and why
NOT_CREATABLE = {
    "blockdev": "instances of template blockdev can only adopt existing block devices",
    "ext": "template ext needs an ExtStorage provider for each disk",
}
# the order in which templates are exercised: cheapest first
CHEAPEST_FIRST = ("diskless", "file", "sharedfile", "plain", "mirror", "drbd", "rbd", "gluster")


def has_disks(template: str) -> bool:
    return template != "diskless"


def is_mirrored(template: str) -> bool:
    return template in MIRRORED


def can_move(template: str) -> bool:
    """Whether an instance of this template can migrate and fail over to another node."""
    return template in MIRRORED or template in SHARED


def ordered(templates) -> list[str]:
    """``templates`` cheapest first, unknown ones last in name order."""
    rank = {name: i for i, name in enumerate(CHEAPEST_FIRST)}
    return sorted(set(templates), key=lambda t: (rank.get(t, len(rank)), t))


def enabled_templates(info: dict, groups: list[dict]) -> list[str] | None:
    """The templates the cluster lets instances use, or None if it does not say.

    Ganeti lists them in the cluster's ``enabled_disk_templates``; genet, which has no such
    list, in the instance policy of its node groups (``ipolicy["disk-templates"]``; a template
    any group allows counts). Where both exist, a template must be in both."""
    enabled = info.get("enabled_disk_templates")
    allowed = None
    for group in groups:
        policy = group.get("ipolicy") or {}
        if isinstance(policy.get("disk-templates"), list):
            names = set(policy["disk-templates"])
            allowed = names if allowed is None else allowed | names
    if enabled is None and allowed is None:
        return None
    if enabled is None:
        return ordered(allowed)
    return ordered(set(enabled) & allowed if allowed is not None else enabled)
