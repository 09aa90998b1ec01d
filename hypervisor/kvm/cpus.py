"""The guest's CPU topology (-smp) and the pinning of its vCPUs to host CPUs (cpu_mask).

cpu_mask has Ganeti's syntax: ``all``; a CPU list such as ``0-2,5`` for the whole VM;
or one entry per vCPU separated by colons (``1:3``, ``1-2:all``). Pinning uses the
thread ids QEMU reports over QMP (query-cpus-fast); a whole-VM mask pins every thread
of the process, so the vCPUs and QEMU's own threads stay on those CPUs.
"""
from __future__ import annotations

import os
from typing import Any

from genet.hypervisor.base import HypervisorError

ALL = "all"
Mask = list[list[int] | None]          # per entry: host CPUs, or None for any


def _cpu_list(text: str) -> list[int] | None:
    if text == ALL:
        return None
    cpus: list[int] = []
    for part in text.split(","):
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f"{part!r} is neither a CPU number nor a range like 0-3")
        first, last = int(low), int(high) if sep else int(low)
        if first > last:
            raise ValueError(f"range {part!r} runs backwards")
        cpus.extend(range(first, last + 1))
    return cpus


def parse_mask(mask: str) -> Mask:
    """``all`` → [None]; ``0-1,3`` → [[0, 1, 3]]; ``1:all:0`` → [[1], None, [0]]."""
    if not mask:
        raise ValueError("empty (use 'all')")
    return [_cpu_list(entry) for entry in mask.split(":")]


def check_mask(mask: str, vcpus: int, host_cpus: set[int]) -> Mask:
    """The parsed mask, refused when its entries do not fit the guest or this node."""
    parsed = parse_mask(mask)
    if len(parsed) > 1 and len(parsed) != vcpus:
        raise HypervisorError(f"hvparam 'cpu_mask'={mask!r} has {len(parsed)} entries but the instance has"
                              f" {vcpus} vCPUs (one entry, or one per vCPU)")
    missing = sorted({c for entry in parsed for c in entry or ()} - host_cpus)
    if missing:
        raise HypervisorError(f"hvparam 'cpu_mask'={mask!r} names CPUs this node does not have:"
                              f" {', '.join(map(str, missing))} (usable: {_ranges(host_cpus)})")
    return parsed


def _ranges(cpus: set[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


def host_cpus() -> set[int]:
    """The CPUs this process may run on (and so QEMU)."""
    return set(os.sched_getaffinity(0))


def pins(mask: str) -> bool:
    return parse_mask(mask) != [None]


def smp_option(vcpus: int, params: dict[str, Any]) -> str:
    """``-smp``: the vCPU count and any topology given; QEMU derives what is left out."""
    parts = [str(vcpus)]
    for key in ("sockets", "cores", "threads"):
        if params[f"cpu_{key}"]:
            parts.append(f"{key}={params[f'cpu_{key}']}")
    return ",".join(parts)


def check_topology(vcpus: int, params: dict[str, Any]) -> None:
    """Refuse a topology QEMU would refuse: the given counts must multiply to ``vcpus`` when all
    three are given, and to a divisor of it otherwise."""
    given = {k: params[f"cpu_{k}"] for k in ("sockets", "cores", "threads") if params[f"cpu_{k}"]}
    product = 1
    for count in given.values():
        product *= count
    if given and (vcpus % product or (len(given) == 3 and product != vcpus)):
        shown = " x ".join(f"cpu_{k}={v}" for k, v in given.items())
        raise HypervisorError(f"hvparams {shown} do not make up the instance's {vcpus} vCPUs")


def pin(pid: int, vcpu_threads: dict[int, int], parsed: Mask) -> None:
    """Apply a checked mask: one entry to every thread of ``pid``, else entry i to vCPU i's thread."""
    if len(parsed) == 1:
        if parsed[0] is None:
            return
        targets = {int(tid): parsed[0] for tid in os.listdir(f"/proc/{pid}/task")}
    else:
        targets = {vcpu_threads[i]: entry for i, entry in enumerate(parsed) if entry is not None}
    for tid, cpus in targets.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError as err:
            raise HypervisorError(f"cannot pin thread {tid} of QEMU pid {pid} to CPUs {cpus}: {err}") from None


def vcpu_threads(query_cpus_fast: list[dict]) -> dict[int, int]:
    """vCPU index → host thread id, from QMP query-cpus-fast."""
    return {c["cpu-index"]: c["thread-id"] for c in query_cpus_fast}
