"""Allocation on dedicated clusters (Ganeti's Dedicated): where every node of the groups an
allocation may use has exclusive storage, hail places an instance where it costs the fewest
future allocations instead of where the cluster scores best.

The metric of a placement is, for each of the group policy's minimal instances (largest disk
first), how many fewer of them its nodes could still take, then the nodes' free disk left;
the lowest wins (the later candidate on a tie), compared as Ganeti compares the pair. No
global N+1 check is made, as in Ganeti.
"""
from __future__ import annotations

from genet.htools import alloc
from genet.htools.alloc import AllocError, Options, Solution
from genet.htools.cluster import MIRROR_NONE
from genet.htools.nodevals import INDEX, add_pri, add_sec
from genet.htools.policy import violation
from genet.htools.state import NO_NODE, Inst, State

MAX_COUNT = 1 << 20      # a bound on the instances counted on one node (minimal specs of size 0)


def is_dedicated(st: State, group: str | None) -> bool:
    """Ganeti's isDedicated: every node of the groups considered (the named one, or every
    allocable one) has exclusive storage."""
    considered = {gi for gi, g in enumerate(st.data.groups)
                  if (g.name == group if group is not None else g.alloc_policy != "unallocable")}
    return all(st.F[INDEX["excl"], n] or int(st.node_group[n]) not in considered for n in range(len(st.node_names)))


def test_instances(policy) -> list[Inst]:
    """Ganeti's testInstances: an instance of each min/max pair's minimum, the largest disk
    first (a plain instance without disks of its own: no spindles)."""
    specs = sorted((pair[0] for pair in policy.minmax), key=lambda s: -s.disk_size)
    return [Inst(-1, "minimalspecinstance", s.memory_size, s.disk_size, s.cpu_count, "running", "plain",
                 MIRROR_NONE, NO_NODE, NO_NODE, False, False, False, s.spindle_use, 0, (1.0, 1.0, 1.0, 1.0), [])
            for s in specs]


def allocation_vector(tests: list[Inst], v) -> list[int]:
    """How many of each test instance the node (its numbers ``v``) could take, one after the other."""
    out = []
    for inst in tests:
        count, cur = 0, v
        while count < MAX_COUNT:
            new, fail = add_pri(cur, inst, False)
            if fail:
                break
            count, cur = count + 1, new
        out.append(count)
    return out


def _on_pair(st: State, opts: Options, inst: Inst, p: int, s: int):
    """Ganeti's allocateOnSingle (``s`` NO_NODE) and allocateOnPair: (failure code, metric)."""
    policy = st.data.groups[int(st.node_group[p])].ipolicy
    code = violation(inst, policy, bool(st.F[INDEX["excl"], p]))
    if code:
        return code, None
    tests = test_instances(policy)
    before = st.vals(p)
    after, fail = add_pri(before, inst, opts.ignore_soft_errors, st.clashes(inst, p), st.missing_locations(inst, p))
    if fail:
        return int(fail), None
    lost = [a - b for a, b in zip(allocation_vector(tests, before), allocation_vector(tests, after))]
    disk = int(after.f_dsk)
    if s != NO_NODE:
        sec_before = st.vals(s)
        sec_after, fail = add_sec(sec_before, inst, float(st.P[s, p]), False)
        if fail:
            return int(fail), None
        lost = [x + a - b for x, a, b in zip(lost, allocation_vector(tests, sec_before),
                                              allocation_vector(tests, sec_after))]
        disk += int(sec_after.f_dsk)
    return 0, (lost, disk)


def show_metric(metric) -> str:
    lost, disk = metric
    return f"([{','.join(map(str, lost))}],{disk})"


def find_allocation(st: State, opts: Options, gi: int, inst: Inst, count: int) -> Solution:
    """Ganeti's findAllocation in group ``gi``: the solution (its ``score`` the metric) with
    its description as the log."""
    group = st.data.groups[gi]
    if not alloc.has_networks(st, gi, inst):
        raise AllocError(f"The group {group.name} is not connected to a network required by instance {inst.name}")
    nodes = alloc.online_nodes(st, [n for n in range(len(st.node_names)) if st.node_group[n] == gi], opts)
    if count == 1:
        if not len(nodes):
            raise AllocError("No online nodes")
        candidates = [(int(p), NO_NODE) for p in nodes]
    elif count == 2:
        candidates = [(int(p), int(s)) for p in nodes for s in nodes if p != s]
        if not candidates:
            raise AllocError("Not enough online nodes")
    else:
        raise AllocError("Unsupported number of nodes, only one or two  supported")
    sol = Solution()
    for p, s in candidates:
        code, metric = _on_pair(st, opts, inst, p, s)
        if code:
            sol.failures.append(code)
            continue
        sol.allocs += 1
        if sol.nodes is None or not sol.score < metric:
            sol.nodes, sol.score = ((p,) if s == NO_NODE else (p, s)), metric
    sol.log = [sol.describe(st, show_metric)]
    return sol


def find_mg_allocation(st: State, opts: Options, inst: Inst, count: int) -> Solution:
    """Ganeti's findMGAllocation: every group with nodes tried, the best allocable one chosen
    (preferred policy first, then the lowest metric)."""
    results = []
    for gi, _ in st.groups_nodes():
        try:
            results.append((gi, find_allocation(st, opts, gi, inst, count), None))
        except AllocError as err:
            results.append((gi, None, str(err)))
    messages = [line for gi, sol, err in results for line in alloc.group_log(st, gi, sol, err)]
    best = alloc.best_group(st, results)
    if best is None:
        raise AllocError(", ".join(messages))
    gi, sol = best
    sol.log = [f"Selected group: {st.data.groups[gi].name}"] + messages
    return sol


def allocate(st: State, inst: Inst, count: int, opts: Options, group: str | None, prefixed: bool = True,
             groups_from: State | None = None) -> Solution:
    """One instance, in the named group (its log line ``prefixed`` with the group, as for one
    allocation) or the best one; ``groups_from``: the cluster a named group's nodes are read
    from (Ganeti's multi-allocation reads them as they were before it)."""
    if group is None:
        return find_mg_allocation(st, opts, inst, count)
    names = [g.name for g in st.data.groups]
    if group not in names:
        raise AllocError(f"Wrong number of elems found with name {group}")
    gi = names.index(group)
    sol = find_allocation(groups_from or st, opts, gi, inst, count)
    if prefixed:
        sol.log = alloc.group_log(st, gi, sol, None)
    return sol


def allocate_list(st: State, requests, opts: Options) -> list:
    """Ganeti's dedicated multi-allocation: each instance in turn on the cluster as the earlier
    ones left it; one that fits in no group fails the whole request."""
    before = st.clone() if any(group is not None for _, _, group in requests) else None
    out = []
    for request, count, group in requests:
        inst = st.new_instance(request)
        sol = allocate(st, inst, count, opts, group, prefixed=False, groups_from=before)
        if sol.nodes is not None:
            alloc.place(st, inst, sol.nodes, opts.ignore_soft_errors)
        out.append((inst, sol))
    return out
