"""A node's numbers, and what adding or removing an instance does to them (Ganeti's Node.hs).

``Vals`` holds each quantity either as a Python number (one node) or as a numpy array (the
same quantity for many candidate nodes at once): the functions here are written once and
broadcast, so the balancer evaluates a move to every target node in one pass and applies the
chosen one with the same code. The rules, checks and their order are Ganeti's, so scores and
refusals come out as real htools compute them.
"""
from __future__ import annotations

import numpy as np

FIELDS = ("t_mem", "n_mem", "i_mem", "x_mem", "f_mem_forth",
          "t_dsk", "f_dsk", "f_dsk_forth", "lo_dsk",
          "t_cpu", "speed", "u_cpu", "u_cpu_forth", "l_cpu",
          "t_sp", "f_sp", "f_sp_forth", "inst_sp", "inst_sp_forth", "hi_sp", "excl",
          "n_pri", "n_sec", "fail_n1", "r_mem",
          "load_c", "load_m", "load_d", "load_n", "loc", "offline")
INDEX = {name: i for i, name in enumerate(FIELDS)}

# why an instance does not fit (Ganeti's FailMode), in the order Ganeti checks them
FAIL_MEM, FAIL_DISK, FAIL_CPU, FAIL_SPINDLES, FAIL_TAGS, FAIL_MIG, FAIL_N1, FAIL_DISK_COUNT, FAIL_INTERNAL = range(1, 10)
FAIL_NAMES = {FAIL_MEM: "FailMem", FAIL_DISK: "FailDisk", FAIL_CPU: "FailCPU",
              FAIL_SPINDLES: "FailSpindles", FAIL_TAGS: "FailTags", FAIL_MIG: "FailMig", FAIL_N1: "FailN1",
              FAIL_DISK_COUNT: "FailDiskCount", FAIL_INTERNAL: "FailInternal"}
# the order Ganeti's FailMode declares them in, which is the order its failure counts are listed in
FAIL_ORDER = (FAIL_MEM, FAIL_DISK, FAIL_CPU, FAIL_N1, FAIL_TAGS, FAIL_MIG, FAIL_DISK_COUNT, FAIL_SPINDLES,
              FAIL_INTERNAL)


class Vals:
    """One node's (or many nodes') quantities, by the names in FIELDS."""
    __slots__ = FIELDS

    def __init__(self, *values):
        for name, value in zip(FIELDS, values):
            setattr(self, name, value)

    def copy(self, **changes) -> "Vals":
        new = Vals(*(getattr(self, f) for f in FIELDS))
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    def row(self) -> list:
        return [getattr(self, f) for f in FIELDS]


def _first_failure(checks) -> object:
    """The first failing check's code, per node: checks are (condition, code) in Ganeti's order."""
    code = 0
    for cond, fail in reversed(checks):
        if cond is False or cond is None:
            continue
        if isinstance(cond, np.ndarray) or isinstance(fail, np.ndarray) or isinstance(code, np.ndarray):
            code = np.where(cond, fail, code)
        elif cond:
            code = fail
    return code


def unallocated_mem(v: Vals, i_mem=None):
    """Free memory by the records, less what is missing on the node (Ganeti's unallocatedMem)."""
    i_mem = v.i_mem if i_mem is None else i_mem
    return np.trunc(v.t_mem) - v.n_mem - i_mem - np.maximum(0, v.x_mem)


def _free_spindles(v: Vals, inst, add: bool, forth: bool):
    """Ganeti's calcNewFreeSpindles: only nodes with exclusive storage count spindles."""
    free = v.f_sp_forth if forth else v.f_sp
    if inst.spindles is None:
        changed = -1.0 if add else free
    else:
        changed = free - inst.spindles if add else free + inst.spindles
    return np.where(v.excl, changed, 0.0) if isinstance(v.excl, np.ndarray) else (changed if v.excl else 0.0)


def _inst_spindles(v: Vals, inst, add: bool, forth: bool):
    """Ganeti's calcSpindleUse: spindle use of instances on nodes without exclusive storage."""
    used = v.inst_sp_forth if forth else v.inst_sp
    delta = inst.spindle_use if inst.uses_disk else 0
    changed = used + delta if add else used - delta
    return np.where(v.excl, 0.0, changed) if isinstance(v.excl, np.ndarray) else (0.0 if v.excl else changed)


def remove_pri(v: Vals, inst, dsrd: object = 0, loc: object = None) -> Vals:
    """The node without ``inst`` as a primary (``dsrd``: its desired-location score there,
    ``loc``: its location score if not the one it has now)."""
    new = v.copy(f_mem_forth=v.f_mem_forth + inst.mem,
                 f_dsk_forth=v.f_dsk_forth + inst.dsk * inst.uses_disk,
                 f_sp_forth=_free_spindles(v, inst, False, True),
                 inst_sp_forth=_inst_spindles(v, inst, False, True),
                 u_cpu_forth=v.u_cpu_forth - inst.vcpus * inst.not_offline)
    if inst.forthcoming:
        return new
    new.i_mem = v.i_mem - inst.mem * inst.uses_mem
    new.fail_n1 = unallocated_mem(new) <= v.r_mem
    new.f_dsk = v.f_dsk + inst.dsk * inst.uses_disk
    new.f_sp = _free_spindles(v, inst, False, False)
    new.inst_sp = _inst_spindles(v, inst, False, False)
    new.u_cpu = v.u_cpu - inst.vcpus * inst.not_offline
    c, m, d, n = inst.util
    new.load_c, new.load_m, new.load_d, new.load_n = v.load_c - c, v.load_m - m, v.load_d - d, v.load_n - n
    new.loc = v.loc - (inst.loc if loc is None else loc) - dsrd
    new.n_pri = v.n_pri - 1
    return new


def _and(*conds):
    """All conditions, for one node or per candidate (False stays a plain False)."""
    out = True
    for c in conds:
        if c is False:
            return False
        out = c if out is True else np.logical_and(out, c)
    return out


def add_pri(v: Vals, inst, force, tag_clash=False, dsrd: object = 0, loc: object = None):
    """The node with ``inst`` as a new primary, and why it does not fit (0: it fits).

    ``force`` skips the soft checks (N+1, CPU ratio, reserved disk, tags), as Ganeti does when
    the instance comes from an offline node; ``tag_clash`` tells which nodes already hold a
    primary with one of its exclusion tags; ``loc`` is the instance's location score there.
    """
    strict = np.logical_not(force)
    disk = inst.uses_disk
    mem_forth = v.f_mem_forth - inst.mem
    dsk_forth = v.f_dsk_forth - inst.dsk * disk
    sp_forth = _free_spindles(v, inst, True, True)
    inst_sp_forth = _inst_spindles(v, inst, True, True)
    ucpu_forth = v.u_cpu_forth + inst.vcpus * inst.not_offline
    forth_fail = _first_failure([
        (_and(strict, mem_forth <= 0), FAIL_MEM),
        (_and(strict, disk, dsk_forth <= 0), FAIL_DISK),
        (_and(strict, disk, dsk_forth < v.lo_dsk), FAIL_DISK),
        (_and(strict, disk, v.excl, sp_forth < 0), FAIL_SPINDLES),
        (_and(strict, disk, inst_sp_forth > v.hi_sp), FAIL_DISK),
        (_and(strict, v.l_cpu >= 0, v.l_cpu < ucpu_forth / v.t_cpu), FAIL_CPU),
    ])
    new = v.copy(f_mem_forth=mem_forth, f_dsk_forth=dsk_forth, f_sp_forth=sp_forth,
                 inst_sp_forth=inst_sp_forth, u_cpu_forth=ucpu_forth)
    if inst.forthcoming:
        return new, forth_fail
    i_mem = v.i_mem + inst.mem * inst.uses_mem
    free_mem = unallocated_mem(v, i_mem)
    fail_n1 = free_mem <= v.r_mem
    dsk = v.f_dsk - inst.dsk * disk
    free_sp = _free_spindles(v, inst, True, False)
    inst_sp = _inst_spindles(v, inst, True, False)
    ucpu = v.u_cpu + inst.vcpus * inst.not_offline
    fail = _first_failure([
        (free_mem <= 0, FAIL_MEM),
        (_and(disk, dsk <= 0), FAIL_DISK),
        (_and(strict, disk, dsk < v.lo_dsk), FAIL_DISK),
        (_and(disk, v.excl, free_sp < 0), FAIL_SPINDLES),
        (_and(strict, disk, inst_sp > v.hi_sp), FAIL_DISK),
        (_and(strict, fail_n1, np.logical_not(v.fail_n1)), FAIL_MEM),
        (_and(strict, v.l_cpu >= 0, v.l_cpu < ucpu / v.t_cpu), FAIL_CPU),
        (_and(strict, tag_clash), FAIL_TAGS),
        (forth_fail, forth_fail),
    ])
    c, m, d, n = inst.util
    new.i_mem, new.fail_n1, new.f_dsk, new.f_sp, new.inst_sp, new.u_cpu = i_mem, fail_n1, dsk, free_sp, inst_sp, ucpu
    new.load_c, new.load_m, new.load_d, new.load_n = v.load_c + c, v.load_m + m, v.load_d + d, v.load_n + n
    new.loc = v.loc + (inst.loc if loc is None else loc) + dsrd
    new.n_pri = v.n_pri + 1
    return new, fail


def remove_sec(v: Vals, inst, peer_mem, other_peers_max) -> Vals:
    """The node without ``inst`` as a secondary; ``peer_mem`` is what the node reserves for the
    instance's primary, ``other_peers_max`` the most it reserves for any other node."""
    new = v.copy(f_dsk_forth=v.f_dsk_forth + inst.dsk * inst.uses_disk,
                 f_sp_forth=_free_spindles(v, inst, False, True),
                 inst_sp_forth=_inst_spindles(v, inst, False, True))
    if inst.forthcoming:
        return new
    new_peer = peer_mem - inst.mem * inst.uses_sec_mem
    new.r_mem = np.where(peer_mem < v.r_mem, v.r_mem, np.maximum(other_peers_max, new_peer))
    new.f_dsk = v.f_dsk + inst.dsk * inst.uses_disk
    new.f_sp = _free_spindles(v, inst, False, False)
    new.inst_sp = _inst_spindles(v, inst, False, False)
    new.fail_n1 = unallocated_mem(v) <= new.r_mem
    new.load_d = v.load_d - inst.util[2]
    new.n_sec = v.n_sec - 1
    return new


def add_sec(v: Vals, inst, peer_mem, force, ignore_disks=False):
    """The node with ``inst`` as a new secondary, and why it does not fit (0: it fits);
    ``peer_mem`` is what the node already reserves for the instance's (new) primary."""
    strict = np.logical_not(force)
    sec_mem = inst.mem * inst.uses_sec_mem
    new_peer = peer_mem + sec_mem
    dsk_forth = v.f_dsk_forth - inst.dsk
    sp_forth = _free_spindles(v, inst, True, True)
    inst_sp_forth = _inst_spindles(v, inst, True, True)
    forth_fail = _first_failure([
        (_and(strict, not inst.has_secondary), FAIL_DISK),
        (_and(strict, dsk_forth <= 0), FAIL_DISK),
        (_and(strict, dsk_forth < v.lo_dsk), FAIL_DISK),
        (_and(strict, v.excl, sp_forth < 0), FAIL_SPINDLES),
        (_and(strict, inst_sp_forth > v.hi_sp), FAIL_DISK),
        (_and(strict, sec_mem >= v.f_mem_forth), FAIL_MEM),
    ])
    new = v.copy(f_dsk_forth=dsk_forth, f_sp_forth=sp_forth, inst_sp_forth=inst_sp_forth)
    if inst.forthcoming:
        return new, forth_fail
    old_mem = unallocated_mem(v)
    dsk = v.f_dsk - inst.dsk
    free_sp = _free_spindles(v, inst, True, False)
    inst_sp = _inst_spindles(v, inst, True, False)
    r_mem = np.maximum(v.r_mem, new_peer)
    fail_n1 = old_mem <= r_mem
    fail = _first_failure([
        (not inst.has_secondary, FAIL_DISK),
        (_and(np.logical_not(ignore_disks), dsk <= 0), FAIL_DISK),
        (_and(strict, dsk < v.lo_dsk), FAIL_DISK),
        (_and(v.excl, free_sp < 0), FAIL_SPINDLES),
        (_and(strict, inst_sp > v.hi_sp), FAIL_DISK),
        (_and(strict, sec_mem >= old_mem), FAIL_MEM),
        (_and(strict, fail_n1, np.logical_not(v.fail_n1)), FAIL_MEM),
        (forth_fail, forth_fail),
    ])
    new.f_dsk, new.f_sp, new.inst_sp, new.r_mem, new.fail_n1 = dsk, free_sp, inst_sp, r_mem, fail_n1
    new.load_d = v.load_d + inst.util[2]
    new.n_sec = v.n_sec + 1
    return new, fail


# --- the per-node values the cluster score aggregates (Ganeti's compDetailedCVNode) -------------

def _ratio_or_one(free, total):
    """Ganeti's computePDsk: a node without local storage counts as all free."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total == 0, 1.0, free / np.where(total == 0, 1.0, total))


def metric_values(v: Vals) -> list:
    """The node's value for each component of the score but the map one, in METRICS order."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p_mem = unallocated_mem(v) / v.t_mem
        p_dsk = np.where(v.excl, _ratio_or_one(v.f_sp, v.t_sp), _ratio_or_one(v.f_dsk, v.t_dsk))
        p_dsk_forth = np.where(v.excl, _ratio_or_one(v.f_sp_forth, v.t_sp), _ratio_or_one(v.f_dsk_forth, v.t_dsk))
        n1 = np.where(v.fail_n1, v.n_pri + v.n_sec, 0.0)
        p_rem = v.r_mem / v.t_mem
        cpu = v.u_cpu / v.t_cpu / v.speed
        cpu_forth = v.u_cpu_forth / v.t_cpu / v.speed
        spindles = v.inst_sp / v.hi_sp
        spindles_forth = v.inst_sp_forth / v.hi_sp
        mem_forth = v.f_mem_forth / v.t_mem
    return [p_mem, p_dsk, n1, p_rem, v.n_pri + v.n_sec, v.n_pri, cpu, v.load_c, v.load_m, v.load_d, v.load_n,
            0.0, spindles, mem_forth, p_dsk_forth, cpu_forth, spindles_forth, v.loc, p_rem]
