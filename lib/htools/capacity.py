"""How many instances still fit: Ganeti's capacity planning (iterateAlloc, tieredAlloc and
their statistics, from Ganeti's Cluster.hs), on top of hail's allocator.

Every placement is alloc.try_alloc over the whole cluster, as Ganeti's hspace does it: the
candidates are the online nodes of allocable groups (pairs within a group for mirrored
templates), scored over all nodes, global N+1 redundancy checked where Ganeti checks it.
The state is changed in place: a plan only ever goes back (Ganeti's big steps that turn out
not redundant) from a clone taken before it.
"""
from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, field, replace

import numpy as np

from genet.htools import alloc, globaln1
from genet.htools.cluster import Instance
from genet.htools.metrics import GroupScore
from genet.htools.nodevals import FAIL_CPU, FAIL_DISK, FAIL_MEM, FAIL_ORDER, FAIL_SPINDLES, INDEX, unallocated_mem
from genet.htools.state import NO_NODE, State

UNIT = {FAIL_MEM: 64, FAIL_DISK: 256, FAIL_CPU: 1, FAIL_SPINDLES: 1}   # Ganeti's unitMem, unitDsk, ...
SMALL_BIG_STEP = 10
DEEP_STACK = 1 << 30        # bytes of stack for tiered allocation's recursion


@dataclass(frozen=True)
class Spec:
    """Ganeti's RSpec: the size of the instances to place."""
    cpu: int
    mem: int
    dsk: int
    spn: int

    def shrunk(self, mode: int) -> "Spec | None":
        """Ganeti's shrinkByType: one unit less of the resource that failed, None when it
        cannot shrink (below one unit, or a failure no resource explains)."""
        unit = UNIT.get(mode)
        if unit is None:
            return None
        name = {FAIL_MEM: "mem", FAIL_DISK: "dsk", FAIL_CPU: "cpu", FAIL_SPINDLES: "spn"}[mode]
        value = getattr(self, name) - unit
        return replace(self, **{name: value}) if value >= unit else None


@dataclass
class Template:
    """What every planned instance shares: its disk template and spindle use."""
    disk_template: str
    spindle_use: int

    def instance(self, spec: Spec, name: str) -> Instance:
        """Ganeti's instFromSpec: a running instance with one disk of the spec's size."""
        return Instance(name, spec.mem, spec.dsk, spec.cpu, "running", True, "", None, self.disk_template, [],
                        self.spindle_use, spec.spn, disks=[(spec.dsk, spec.spn)])

    @property
    def nodes(self) -> int:
        return 2 if self.disk_template == "drbd" else 1


@dataclass
class Result:
    """Ganeti's AllocResult: the failure counts of the last attempt and the instances placed
    (their specs, in order)."""
    failures: list[tuple[int, int]]
    placed: list[Spec] = field(default_factory=list)


def collapse(codes: list[int]) -> list[tuple[int, int]]:
    """Ganeti's collapseFailures: each failure mode with its count, in FailMode order."""
    return [(mode, codes.count(mode)) for mode in FAIL_ORDER]


class Planner:
    """Places instances on ``st`` (changed in place) the way Ganeti's hspace does."""

    def __init__(self, st: State, opts: alloc.Options, candidates: np.ndarray, template: Template):
        self.st, self.opts, self.template = st, opts, template
        self.candidates = candidates
        self.names: list[str] = []           # the instances placed, in order
        self.answers: dict = {}              # (spec, capacity): (failures, nodes) on the cluster as it is
        self._redundancy = None              # the N+1 check of the cluster as it is

    # --- one placement ------------------------------------------------------------------------

    def try_alloc(self, spec: Spec, capacity: bool):
        """Ganeti's tryAlloc of one instance of ``spec`` on the whole cluster: the solution;
        the instance stays in the state (unplaced) until ``keep`` or ``drop``."""
        st = self.st
        inst = st.new_instance(self.template.instance(spec, f"new-{len(self.names)}"))
        opts = replace(self.opts, capacity=capacity)
        passes = (lambda nodes: self.redundancy().passes_with(inst)(nodes)) if capacity else None
        try:
            sol = alloc.try_alloc(st, inst, np.arange(len(st.node_names)), self.candidates, self.template.nodes,
                                  opts, passes or alloc.n1_check(st, opts, inst))
        except alloc.AllocError:
            self._drop(inst)
            raise
        return inst, sol

    def redundancy(self) -> globaln1.Redundancy:
        """The global N+1 check of the cluster as it is, kept (with what it worked out) until
        the cluster changes."""
        if self._redundancy is None:
            self._redundancy = globaln1.Redundancy(self.st, self.opts)
        return self._redundancy

    def changed(self) -> None:
        """Forget what was worked out on the cluster as it was."""
        self.answers, self._redundancy = {}, None

    def _drop(self, inst) -> None:
        st = self.st
        st.instances.pop()
        del st.instance_index[inst.name]

    def attempt(self, spec: Spec, capacity: bool, place: bool):
        """One tryAlloc; the instance placed when it fits and ``place``. Failures and success.

        Ganeti's tiered allocation asks the same question of an unchanged cluster many times
        over (a failing candidate costs it next to nothing): the answers are kept until the
        cluster changes."""
        key = (spec, capacity)
        if key not in self.answers:
            inst, sol = self.try_alloc(spec, capacity)
            self._drop(inst)
            self.answers[key] = (sol.failures, sol.nodes)
        failures, nodes = self.answers[key]
        if nodes is not None and place:
            inst = self.st.new_instance(self.template.instance(spec, f"new-{len(self.names)}"))
            alloc.place(self.st, inst, nodes, self.opts.ignore_soft_errors)
            self.names.append(inst.name)
            self.changed()
        return failures, nodes is not None

    # --- standard allocation ------------------------------------------------------------------

    def small_steps(self, spec: Spec, limit: int | None, capacity: bool, placed: list[Spec]) -> Result:
        """Ganeti's iterateAllocSmallStep: instances of ``spec`` one after the other until one
        does not fit or ``limit`` are placed (mirrored ones without the capacity checks)."""
        if self.template.disk_template == "drbd":
            capacity = False
        while True:
            failures, fits = self.attempt(spec, capacity, place=limit != 0)
            if not fits or limit == 0:
                return Result(collapse(failures), placed)
            placed.append(spec)
            if limit is not None:
                limit -= 1

    def iterate(self, spec: Spec, limit: int | None, placed: list[Spec]) -> Result:
        """Ganeti's iterateAlloc: big steps without the capacity checks, kept when the cluster
        is still redundant after them, else smaller ones, else one instance at a time."""
        if not self.opts.capacity or self.template.disk_template == "drbd":
            # mirrored instances are placed without the checks in every variant: the same result
            return self.small_steps(spec, limit, False, placed)
        huge = True
        while True:
            size = self.big_step(spec) if huge else SMALL_BIG_STEP
            step_limit, rest = (size, None) if limit is None else (min(size, limit), max(0, limit - size))
            saved, saved_names, before = self.st.clone(), list(self.names), len(placed)
            res = self.small_steps(spec, step_limit, False, list(placed))
            if self.redundant():
                if rest == 0 or len(res.placed) == before:
                    return res
                placed, limit = res.placed, rest
                continue
            self.st, self.names = saved, saved_names
            self.changed()
            if huge:
                huge = False
                continue
            return self.small_steps(spec, limit, True, placed)

    def big_step(self, spec: Spec) -> int:
        """Ganeti's guessBigstepSize: the instances the free memory holds, less one per node."""
        st = self.st
        v = st.vals(np.arange(len(st.node_names)))
        avail = np.maximum(0, unallocated_mem(v) - v.r_mem).astype(np.int64)
        guess = int(avail.sum()) // spec.mem - len(st.node_names)
        return max(guess, 20)

    def redundant(self) -> bool:
        red = self.redundancy()
        return globaln1.redundant(self.st, red.nodes, red.members)

    # --- tiered allocation --------------------------------------------------------------------

    def tiered(self, spec: Spec, limit: int | None, placed: list[Spec]) -> Result:
        """Ganeti's tieredAlloc: as many as fit, then the spec shrunk by the resource that
        failed most, one unit, or as many units as make it fit, and so on. It recurses once
        per unit shrunk (thousands of levels for disk): run in a thread with a deep stack."""
        out: list = []
        errors: list = []

        def run():
            old = sys.getrecursionlimit()
            sys.setrecursionlimit(max(old, 200_000))
            try:
                out.append(self._tiered(spec, limit, placed))
            except BaseException as err:       # handed to the caller's thread
                errors.append(err)
            finally:
                sys.setrecursionlimit(old)
        size = threading.stack_size()
        threading.stack_size(DEEP_STACK)
        try:
            worker = threading.Thread(target=run)
            worker.start()
        finally:
            threading.stack_size(size)
        worker.join()
        if errors:
            raise errors[0]
        return out[0]

    def _tiered(self, spec: Spec, limit: int | None, placed: list[Spec]) -> Result:
        res = self.iterate(spec, limit, placed)
        count = len(res.placed)
        stop, rest = (False, None) if limit is None else (limit <= count, limit - count)
        if stop:
            return res
        ordered = [mode for mode, _ in sorted(res.failures, key=lambda mc: mc[1])]
        smaller = spec.shrunk(ordered[-1])
        if smaller is not None:
            deeper = self._tiered(smaller, rest, list(res.placed))
            if len(deeper.placed) > count:
                return deeper
        for mode in reversed(ordered):
            fitting = self._suffices_shrinking(spec, mode)
            if fitting is not None:
                return self._tiered(fitting, rest, list(res.placed))
        return res

    def _suffices_shrinking(self, spec: Spec, mode: int) -> Spec | None:
        """Ganeti's sufficesShrinking: the spec shrunk by ``mode`` until it fits, as long as
        ``mode`` is among the reasons it does not (with the capacity checks)."""
        current: Spec | None = spec
        while current is not None:
            try:
                failures, fits = self.attempt(current, self.opts.capacity, place=False)
            except alloc.AllocError:
                failures, fits = [], False         # Ganeti's fromMaybe emptyAllocSolution
            if fits:
                return current
            if mode not in failures:
                return None
            current = current.shrunk(mode)
        return None


# --- statistics -------------------------------------------------------------------------------

@dataclass
class Stats:
    """Ganeti's CStats: the cluster's totals (integers as Ganeti's Integer, doubles summed
    left to right as its fold does)."""
    fmem: int = 0
    fdsk: int = 0
    fspn: int = 0
    amem: int = 0
    adsk: int = 0
    acpu: int = 0
    mmem: int = 0
    mdsk: int = 0
    mcpu: int = 0
    imem: int = 0
    idsk: int = 0
    ispn: int = 0
    icpu: int = 0
    tmem: float = 0.0
    tdsk: float = 0.0
    tspn: float = 0.0
    tcpu: float = 0.0
    vcpu: int = 0
    ncpu: float = 0.0
    xmem: int = 0
    nmem: int = 0
    score: float = 0.0
    ninst: int = 0


def totals(st: State) -> Stats:
    """Ganeti's totalResources over every node of ``st``."""
    s = Stats()
    F = st.F
    npri = np.zeros(len(st.node_names), int)
    for inst in st.instances:
        if inst.pnode != NO_NODE and not inst.forthcoming:     # Ganeti's pList: real instances
            npri[inst.pnode] += 1
    for k in range(len(st.node_names)):
        v = st.vals(k)
        unalloc = int(unallocated_mem(v))
        amem = max(0, unalloc - int(v.r_mem))
        adsk = max(0, int(v.f_dsk) - int(v.lo_dsk))
        hi_cpu = math.floor(v.l_cpu * v.t_cpu)
        acpu = max(0, hi_cpu - int(v.u_cpu))
        s.fmem += unalloc
        s.fdsk += int(v.f_dsk)
        s.fspn += int(v.f_sp)
        s.amem += amem
        s.adsk += adsk
        s.acpu += acpu
        s.mmem, s.mdsk, s.mcpu = max(s.mmem, amem), max(s.mdsk, adsk), max(s.mcpu, acpu)
        s.imem += int(v.i_mem)
        s.idsk += math.trunc(v.t_dsk) - int(v.f_dsk)
        s.ispn += int(v.t_sp) - int(v.f_sp)
        s.icpu += int(v.u_cpu)
        s.tmem += v.t_mem
        s.tdsk += v.t_dsk
        s.tspn += float(int(v.t_sp))
        s.tcpu += v.t_cpu
        s.vcpu += hi_cpu
        s.ncpu += v.u_cpu / v.l_cpu
        s.xmem += int(v.x_mem)
        s.nmem += int(v.n_mem)
        s.ninst += int(npri[k])
    s.score = GroupScore(st, np.arange(len(st.node_names))).total() if len(st.node_names) else 0.0
    del F
    return s


def have_excl_storage(st: State) -> bool:
    return bool(st.F[INDEX["excl"]].any())
