"""Where a new instance goes: hail's allocation (Ganeti's tryAlloc, tryMGAlloc, tryGroupAlloc,
allocList and their AllocSolution bookkeeping).

Every candidate node (or primary/secondary pair) of a group is weighed at once: the instance
added to all of them in one array pass (nodevals), the score after each from the cluster's
statistics with Ganeti's own arithmetic (metrics.ExactStats), so the scores tie where Ganeti's
tie and the same node wins. The best candidates are then checked in order for global N+1
redundancy (globaln1), as Ganeti does, until one passes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genet.htools.cluster import ALLOC_POLICIES, Instance
from genet.htools.metrics import ExactStats, node_metrics
from genet.htools.moves import first_failure
from genet.htools.nodevals import FAIL_N1, FAIL_NAMES, FAIL_ORDER, INDEX, add_pri, add_sec
from genet.htools.policy import policy_failures
from genet.htools.state import NO_NODE, Batch, Inst, State
from genet.htools.text import hs_show

PAIR_CHUNK = 64          # primaries weighed together against all their secondaries


class AllocError(Exception):
    """A request that cannot be answered at all (Ganeti's Bad results)."""


@dataclass
class Options:
    """Ganeti's AlgorithmOptions as allocation reads them."""
    ignore_soft_errors: bool = False
    capacity: bool = True                 # global N+1 redundancy checks (--no-capacity-checks)
    accept_existing: bool = False         # --accept-existing-errors
    restrict_to: list[str] | None = None  # --restrict-allocation-to
    capacity_ignore_groups: tuple = ()
    # genet's master: no global N+1 check in a group of fewer nodes than this (a group of one
    # node can never be redundant, so Ganeti's hail refuses every allocation there); 0: Ganeti's
    capacity_min_nodes: int = 0


@dataclass
class Solution:
    """Ganeti's AllocSolution: failure reasons, how many candidates fitted, the best one
    (its nodes and score) and the log lines describing it."""
    failures: list[int] = field(default_factory=list)
    allocs: int = 0
    nodes: tuple[int, ...] | None = None
    score: float = 0.0
    log: list[str] = field(default_factory=list)

    def add(self, other: "Solution") -> None:
        """Ganeti's sumAllocs, in place: failures and counts add up, the lower score wins (the
        later on a tie). (Only the failures' counts are ever read, not their order.)"""
        if other.nodes is not None and (self.nodes is None or not self.score < other.score):
            self.nodes, self.score = other.nodes, other.score
        self.failures.extend(other.failures)
        self.allocs += other.allocs
        self.log = other.log + self.log

    def describe(self, st: State, metric=lambda score: f"{score:.8f}") -> str:
        """Ganeti's describeSolution of one group's solution (``metric`` writes its score)."""
        counts = [(code, self.failures.count(code)) for code in FAIL_ORDER]
        reasons = ", ".join(f"{FAIL_NAMES[c]}: {k}" for c, k in counts if k > 0)
        if self.nodes is None:
            return "No valid allocation solutions, failure reasons: " + (reasons or "unknown reasons")
        names = "/".join(st.node_names[n] for n in self.nodes)
        return (f"score: {metric(self.score)}, successes {self.allocs}, failures {len(self.failures)} ({reasons})"
                f" for node(s) {names}")


def online_nodes(st: State, members, opts: Options) -> np.ndarray:
    """Ganeti's genAllocNodes node list: the online nodes, restricted to the allowed ones."""
    members = np.asarray(members, int)
    members = members[~st.F[INDEX["offline"], members].astype(bool)]
    if opts.restrict_to is not None:
        allowed = set(opts.restrict_to)
        members = np.array([n for n in members if st.node_names[n] in allowed], int)
    return members


def _pick(scores: np.ndarray, fails: np.ndarray, order: np.ndarray, passes) -> tuple[int | None, int, list[int]]:
    """Ganeti's collectionToSolution over candidates tried in ``order``: the lowest score wins,
    among equal scores the one tried last; candidates that fail ``passes`` are dropped as FailN1.
    Returns the winner's position, how many fitted, and the failure codes."""
    tried = fails[order]
    fitted = order[tried == 0]
    failures = tried[tried != 0].tolist()
    if not len(fitted):
        return None, 0, failures
    ranks = scores[fitted]
    best = len(ranks) - 1 - int(np.argmin(ranks[::-1]))       # the lowest, the last on a tie
    if passes(int(fitted[best])):
        return int(fitted[best]), len(fitted), failures
    ranked = sorted(range(len(fitted)), key=lambda k: (scores[fitted[k]], -k))[1:]
    failures = [FAIL_N1] + failures
    for dropped, k in enumerate(ranked, 1):
        if passes(int(fitted[k])):
            return int(fitted[k]), len(fitted) - dropped, [FAIL_N1] * (dropped - 1) + failures
    return None, 0, [FAIL_N1] * (len(fitted) - 1) + failures


def conflicts_with(st: State, excl: np.ndarray, nodes: np.ndarray):
    """Each node's conflicting primaries once an instance with exclusion tags ``excl`` is one."""
    base = st.tag_conflicts(nodes)
    if not len(excl):
        return base
    return base + (st.C[nodes][..., excl] > 0).sum(axis=-1)


def _map_gain(st: State, stats: ExactStats, inst: Inst, nodes: np.ndarray):
    """How much the location/exclusion-tag map grows with the instance as a primary on each node."""
    if inst.forthcoming or not len(inst.excl) or not st.Lm.shape[1]:
        return np.zeros(len(nodes))
    present = (stats.M[:, inst.excl] >= 1).astype(float)             # locations x its tags
    return (st.Lm[nodes].astype(float) @ present).sum(axis=1)


def on_single(st: State, inst: Inst, nodes: np.ndarray, force: bool):
    """Ganeti's allocateOnSingle's checks: each of ``nodes`` with the instance as a new
    primary, and the failure code there (0: it fits)."""
    b, row = Batch(st, [inst]), nodes[None, :]
    new, fail = add_pri(st.vals(row), b, force, st.tag_clash(b, row), st.dsrd(b, row), loc=0)
    fails = first_failure(policy_failures(st, inst, nodes), np.ravel(np.broadcast_to(fail, row.shape)))
    return new, np.asarray(fails, int).reshape(-1)


def try_singles(st: State, stats: ExactStats, inst: Inst, nodes: np.ndarray, opts: Options, passes) -> Solution:
    """Ganeti's tryAlloc on single nodes (allocateOnSingle: compCV of the whole list); with
    ``passes`` None, only the best candidate is wanted (and scored afresh)."""
    if not len(nodes):
        raise AllocError("No online nodes")
    new, fails = on_single(st, inst, nodes, opts.ignore_soft_errors)
    ok = np.flatnonzero(fails == 0)
    if not len(ok):
        return Solution([int(f) for f in fails if f])
    values = node_metrics(st, None, new, conflicts_with(st, inst.excl, nodes[None, :])).reshape(-1, len(nodes))
    if passes is None:
        best = int(ok[stats.best_replaced([(nodes[ok], values[:, ok])], _map_gain(st, stats, inst, nodes[ok]))])
        return Solution([int(f) for f in fails if f], len(ok), (int(nodes[best]),))
    scores = np.full(len(nodes), np.inf)
    scores[ok] = stats.replaced([(nodes[ok], values[:, ok])], _map_gain(st, stats, inst, nodes[ok]))
    best, allocs, failures = _pick(scores, fails, np.arange(len(nodes)), lambda k: passes((int(nodes[k]),)))
    return Solution(failures, allocs, None if best is None else (int(nodes[best]),),
                    0.0 if best is None else float(scores[best]))


def try_pairs(st: State, stats: ExactStats, inst: Inst, nodes: np.ndarray, opts: Options, passes,
              primaries=None) -> Solution:
    """Ganeti's tryAlloc on primary/secondary pairs of the same group (allocateOnPair: the
    statistics updated for the two nodes); primaries among ``nodes`` unless given."""
    group = st.node_group[nodes]
    if primaries is None:
        has_peer = np.array([(group == g).sum() > 1 for g in group], bool)
        primaries = nodes[has_peer]
    if not len(primaries):
        raise AllocError("Not enough online nodes")
    b = Batch(st, [inst])
    pol = policy_failures(st, inst, np.union1d(nodes, primaries))
    pol = dict(zip(np.union1d(nodes, primaries).tolist(), pol.tolist()))
    total = Solution()
    for lo in range(0, len(primaries), PAIR_CHUNK):
        chunk = primaries[lo:lo + PAIR_CHUNK]
        for sol in _pairs_of(st, stats, b, inst, chunk, nodes, pol, opts, passes):
            total.add(sol)
    return total


def _pairs_of(st, stats, b, inst, primaries, nodes, pol, opts, passes) -> list[Solution]:
    p_col, s_row = primaries[:, None], nodes[None, :]
    p_row = primaries[None, :]
    clash = np.asarray(st.tag_clash(b, p_row)).T if b.has_tags else False
    dsrd = np.asarray(st.dsrd(b, p_row)).T if b.n_dsrd.any() else 0
    loc = st.LI[p_col, s_row]
    new_p, fail_p = add_pri(st.vals(p_col), b, opts.ignore_soft_errors, clash, dsrd, loc=loc)
    new_s, fail_s = add_sec(st.vals(s_row), b, st.P[s_row, p_col], False)
    pol_p = np.array([pol[p] for p in primaries.tolist()], int)
    shape = (len(primaries), len(nodes))
    fails = np.broadcast_to(np.asarray(first_failure(pol_p[:, None], fail_p, fail_s), int), shape).copy()
    same = (p_col == s_row) | (st.node_group[p_col] != st.node_group[s_row])
    if not (fails[~same] == 0).any():           # nothing fits: no scores to weigh
        return [Solution([int(f) for f in fails[k][~same[k]] if f]) for k in range(len(primaries))]
    old_p = node_metrics(st, p_col)
    conflicts_p = conflicts_with(st, inst.excl, p_col)
    new_pm = node_metrics(st, None, new_p, conflicts_p)
    old_s = node_metrics(st, s_row)
    new_sm = node_metrics(st, None, new_s, st.tag_conflicts(s_row))
    dmap = _map_gain(st, stats, inst, primaries)[:, None]
    scores = np.broadcast_to(stats.after([(old_p, new_pm), (old_s, new_sm)], dmap), shape)
    out = []
    for k, p in enumerate(primaries):
        order = np.flatnonzero(~same[k])
        best, allocs, failures = _pick(scores[k], fails[k], order,
                                       lambda j, p=p: passes((int(p), int(nodes[j]))))
        out.append(Solution(failures, allocs, None if best is None else (int(p), int(nodes[best])),
                            0.0 if best is None else float(scores[k, best])))
    return out


def try_alloc(st: State, inst: Inst, stats_nodes, candidates, count: int, opts: Options, passes,
              primaries=None) -> Solution:
    """Ganeti's tryAlloc: the best placement of ``inst`` on ``candidates`` (one or two nodes),
    scored over ``stats_nodes``, annotated with its description."""
    stats = ExactStats(st, stats_nodes)
    if count == 1:
        sol = try_singles(st, stats, inst, candidates, opts, passes)
    elif count == 2:
        sol = try_pairs(st, stats, inst, candidates, opts, passes, primaries)
    else:
        raise AllocError("Unsupported number of nodes, only one or two  supported")
    sol.log = [sol.describe(st)] + sol.log
    return sol


def _roles(st: State, nodes: tuple[int, ...]) -> tuple[int, int, int]:
    """The primary, the secondary (NO_NODE) and the locations they share."""
    p = int(nodes[0])
    s = int(nodes[1]) if len(nodes) > 1 else NO_NODE
    return p, s, int(st.LI[p, s]) if s != NO_NODE else 0


def placement(st: State, inst: Inst, nodes: tuple[int, ...], force: bool = False) -> dict[int, object]:
    """The numbers (Vals of plain floats) of the new instance's nodes once it is placed there."""
    p, s, loc = _roles(st, nodes)
    new_p, _ = add_pri(st.vals(p), inst, force, st.clashes(inst, p), st.missing_locations(inst, p), loc=loc)
    if s == NO_NODE:
        return {p: new_p}
    return {p: new_p, s: add_sec(st.vals(s), inst, float(st.P[s, p]), False)[0]}


def place(st: State, inst: Inst, nodes: tuple[int, ...], force: bool = False, changed=None) -> None:
    """Put the new instance on its chosen nodes (Ganeti's extractNl/updateIl); ``changed``:
    its placement, when already worked out."""
    for node, v in (changed or placement(st, inst, nodes, force)).items():
        st.store(node, v)
    p, s, loc = _roles(st, nodes)
    if s != NO_NODE:
        st.P[s, p] += inst.mem * (inst.uses_sec_mem and not inst.forthcoming)
    st.C[p, inst.excl] += 1
    if not inst.forthcoming:
        st.CM[p, inst.excl] += 1
    inst.pnode, inst.snode, inst.loc = p, s, loc


def n1_check(st: State, opts: Options, inst: Inst, members=None, group=None):
    """The predicate a placement of ``inst`` (in ``group``, its online nodes) must pass: global
    N+1 redundancy afterwards (within ``members``), or none with --no-capacity-checks."""
    if not opts.capacity or (group is not None and len(group) < opts.capacity_min_nodes):
        return lambda _: True
    from genet.htools.globaln1 import Redundancy
    return Redundancy(st, opts, members).passes_with(inst)


# --- groups -----------------------------------------------------------------------------------

def group_policy_rank(st: State, gi: int) -> int:
    return ALLOC_POLICIES.index(st.data.groups[gi].alloc_policy)


def has_networks(st: State, gi: int, inst: Inst) -> bool:
    """Ganeti's hasRequiredNetworks: every NIC's network is connected to the group."""
    nets = st.data.groups[gi].networks
    return all(net is None or net in nets for net in inst.nics)


def find_best_group(st: State, inst: Inst, count: int, opts: Options, allowed=None):
    """Ganeti's findBestAllocGroup: each group's best placement (scored over the whole
    cluster), the preferred policy first, then the lowest score; and every group's log."""
    groups = [(gi, members) for gi, members in st.groups_nodes() if allowed is None or gi in allowed]
    messages, results = [], []
    for gi, members in groups:
        if not has_networks(st, gi, inst):
            messages.append(f"group {st.data.groups[gi].name} is not connected to a network required by instance"
                            f" {inst.name}")
            continue
        try:
            candidates = online_nodes(st, members, opts)
            sol = try_alloc(st, inst, np.arange(len(st.node_names)), candidates, count, opts,
                            n1_check(st, opts, inst, group=candidates))
        except AllocError as err:
            results.append((gi, None, str(err)))
            continue
        results.append((gi, sol, None))
    messages += [line for gi, sol, err in results for line in group_log(st, gi, sol, err)]
    best = best_group(st, results)
    if best is None:
        if not groups:   # Ganeti's hail says nothing more when the cluster has no nodes at all
            raise AllocError("" if allowed is None else
                             f"no groups for evacuation: allowed groups was Just {hs_show(allowed)}, all groups: []")
        raise AllocError(", ".join(messages))
    return best[0], best[1], messages


def group_log(st: State, gi: int, sol: Solution | None, error: str | None) -> list[str]:
    """Ganeti's solutionDescription of one group's result (a solution, or the error)."""
    g = st.data.groups[gi]
    if sol is None:
        return [f"Group {g.name}: error {error}"]
    return [f"Group {g.name} ({g.alloc_policy}): {line}" for line in sol.log]


def best_group(st: State, results) -> tuple[int, Solution] | None:
    """Ganeti's filterMGResults and sortMGResults over (group, solution, error) results: the
    allocable group with a solution, the preferred policy first, then the lowest score."""
    good = [(gi, sol) for gi, sol, _ in reversed(results)
            if sol is not None and sol.nodes is not None and st.data.groups[gi].alloc_policy != "unallocable"]
    good.sort(key=lambda gs: (group_policy_rank(st, gs[0]), gs[1].score))
    return good[0] if good else None


def try_mg_alloc(st: State, inst: Inst, count: int, opts: Options) -> Solution:
    """Ganeti's tryMGAlloc: the best group's solution, its log led by the group chosen."""
    gi, sol, messages = find_best_group(st, inst, count, opts)
    sol.log = [f"Selected group: {st.data.groups[gi].name}"] + messages
    return sol


def try_group_alloc(st: State, inst: Inst, count: int, opts: Options, group_name: str) -> Solution:
    """Ganeti's tryGroupAlloc: allocation inside the named group only, scored over it."""
    names = [g.name for g in st.data.groups]
    if group_name not in names:
        raise AllocError(f"Wrong number of elems found with name {group_name}")
    gi = names.index(group_name)
    members = np.flatnonzero(st.node_group == gi)
    g = st.data.groups[gi]
    if not has_networks(st, gi, inst):
        raise AllocError(f"The group {g.name} is not connected to a network required by instance {inst.name}")
    candidates = online_nodes(st, members, opts)
    sol = try_alloc(st, inst, members, candidates, count, opts, n1_check(st, opts, inst, members, candidates))
    sol.log = [f"Group {g.name} ({g.alloc_policy}): {line}" for line in sol.log]
    return sol


def allocate(st: State, request: Instance, count: int, opts: Options, group: str | None = None) -> tuple[Inst, Solution]:
    """Place one new instance (Ganeti's Allocate request): the instance, on its nodes if it fits."""
    inst = st.new_instance(request)
    sol = try_mg_alloc(st, inst, count, opts) if group is None else try_group_alloc(st, inst, count, opts, group)
    return inst, sol


def allocate_list(st: State, requests, opts: Options) -> list[tuple[Inst, Solution | None, str | None]]:
    """Ganeti's allocList: each instance in turn on the cluster as the earlier ones left it."""
    out = []
    for request, count, group in requests:
        inst, sol = allocate(st, request, count, opts, group)
        if sol.nodes is not None:
            place(st, inst, sol.nodes, opts.ignore_soft_errors)
        out.append((inst, sol))
    return out
