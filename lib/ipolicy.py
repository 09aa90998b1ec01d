"""Ganeti's instance policy checks: which bounds of a policy an instance (or one about to be)
breaks, in Ganeti's words ("memory-size value 64 is not in range [128, 32768]").

Pure functions over plain values: the logical units decide what a violation means (a refusal,
a warning with --ignore-ipolicy, a line of ``gnt-cluster verify``). A policy is what
``genet.params.ipolicy`` gives: ``minmax`` (one or more min/max pairs of specs),
``disk-templates`` and the ratios (which bound nodes, not instances, and are not checked here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

# the specs of an instance a min/max pair bounds (the keys of genet.opcodes.group.ISPECS)
MEMORY_SIZE, CPU_COUNT, DISK_COUNT, DISK_SIZE, NIC_COUNT, SPINDLE_USE = (
    "memory-size", "cpu-count", "disk-count", "disk-size", "nic-count", "spindle-use")
DISKLESS = "diskless"


@dataclass(frozen=True)
class InstanceSpec:
    """What a policy bounds of an instance; None where not known or not to be checked (Ganeti
    skips those). ``disk_templates`` has one entry per disk (Ganeti's disk types)."""
    memory: int | None = None
    cpus: int | None = None
    disk_sizes: tuple[int | None, ...] = ()
    nic_count: int | None = None
    spindle_use: int | None = None
    disk_templates: tuple[str, ...] = ()


def comma_join(items: Iterable[Any]) -> str:
    """Ganeti's utils.CommaJoin."""
    return ", ".join(str(item) for item in items)


def bound_violation(name: str, qualifier: str, pair: dict, value: int | None) -> str | None:
    """Ganeti's _ComputeMinMaxSpec: ``value`` of spec ``name`` outside one min/max ``pair`` (a
    bound the pair does not give holds); ``qualifier`` names the disk ("disk-size/0")."""
    if value is None:
        return None
    high = pair["max"].get(name, value)
    low = pair["min"].get(name, value)
    if low <= value <= high:
        return None
    full_name = f"{name}/{qualifier}" if qualifier else name
    return f"{full_name} value {value} is not in range [{low}, {high}]"


def violations(policy: dict, spec: InstanceSpec) -> list[str]:
    """Ganeti's ComputeIPolicySpecViolation: the disk templates the policy does not allow, then
    the bounds broken in the min/max pair the spec comes closest to (the fewest broken; the
    first such pair). Empty if the spec meets the policy."""
    allowed = sorted(set(policy.get("disk-templates", [])))
    found = []
    settings = [(MEMORY_SIZE, "", spec.memory), (CPU_COUNT, "", spec.cpus), (NIC_COUNT, "", spec.nic_count),
                (SPINDLE_USE, "", spec.spindle_use),
                *((DISK_SIZE, str(index), size) for index, size in enumerate(spec.disk_sizes))]
    if spec.disk_sizes:
        settings.append((DISK_COUNT, "", len(spec.disk_sizes)))
    elif DISKLESS not in allowed:       # (the disk count does not bound a diskless instance)
        found.append(f"Disk template {DISKLESS} is not allowed (allowed templates {comma_join(allowed)})")
    forbidden = sorted(set(spec.disk_templates) - set(allowed))
    if forbidden:
        found.append(f"Disk template {comma_join(forbidden)} is not allowed (allowed templates:"
                     f" {comma_join(allowed)})")
    closest: list[str] | None = None
    for pair in policy["minmax"]:
        broken = [text for text in (bound_violation(name, qualifier, pair, value)
                                    for name, qualifier, value in settings) if text]
        if closest is None or len(broken) < len(closest):
            closest = broken
    return found + (closest or [])


def instance_spec(inst: Any, beparams: dict, memory: str = "maxmem") -> InstanceSpec:
    """The spec of an instance as configured, with the backend parameters that apply to it
    (``memory``: which of them is its memory size; Ganeti checks maxmem, and modify minmem too)."""
    disks = list(inst["disks"])
    return InstanceSpec(memory=beparams.get(memory), cpus=beparams.get("vcpus"),
                        disk_sizes=tuple(disk.get("size") for disk in disks), nic_count=len(inst["nics"]),
                        spindle_use=beparams.get("spindle_use"),
                        disk_templates=(inst["disk_template"],) * len(disks))


def instance_violations(policy: dict, inst: Any, beparams: dict) -> list[str]:
    """Ganeti's ComputeIPolicyInstanceViolation: how a configured instance breaks ``policy``."""
    return violations(policy, instance_spec(inst, beparams))
