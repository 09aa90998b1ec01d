"""hbal's algorithm: moves that lower the group's score most, until none gains enough.

Every candidate move of every movable instance to every online node of the group is weighed
from the score's aggregates (metrics.GroupScore), a batch of instances against all targets in
one array pass per move kind (moves.py), instead of a full rescoring per candidate as Ganeti
does. On small groups each round makes the single best move, with Ganeti's choice,
tie-breaking and stopping rules, so the solution is hbal's. On large groups a round makes the
best moves of many instances that touch different nodes, each checked again against the
score as it is then, which reaches as good a balance in far fewer rounds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genet.htools import metrics, moves, nodevals
from genet.htools.cluster import MIRROR_EXTERNAL, MIRROR_INTERNAL
from genet.htools.metrics import OFF_ROWS, GroupScore, node_metrics
from genet.htools.moves import (FAILOVER, FAILOVER_AND_REPLACE, FAILOVER_TO_ANY, REPLACE_AND_FAILOVER,
                                REPLACE_PRIMARY, REPLACE_SECONDARY)
from genet.htools.state import NO_NODE, Batch, Inst, State

ONLINE_ROWS = np.ones(len(metrics.NODE_METRICS), bool)
ONLINE_ROWS[OFF_ROWS] = False
# +1 where an instance placed on a node raises the node's value of a spread, -1 where it lowers
# it (free memory and disk), 0 where it does neither or the component is a count
LOAD_SIGN = np.array([{"free_mem_cv": -1, "free_disk_cv": -1, "reserved_mem_cv": 1, "vcpu_ratio_cv": 1,
                       "cpu_load_cv": 1, "mem_load_cv": 1, "disk_load_cv": 1, "net_load_cv": 1,
                       "spindles_cv": 1, "free_mem_cv_forth": -1, "free_disk_cv_forth": -1,
                       "vcpu_ratio_cv_forth": 1, "spindles_cv_forth": 1}.get(name, 0)
                      for name, _, _ in metrics.NODE_METRICS], float)
TARGET_KINDS = [REPLACE_SECONDARY, REPLACE_AND_FAILOVER, REPLACE_PRIMARY, FAILOVER_AND_REPLACE]
EXACT_LIMIT = 50_000       # instances x nodes up to which every round makes the single best move
BATCH_CELLS = 200_000      # instances x nodes weighed in one array pass
TIE = 1e-9                 # moves this close (relative) to the best are scored again as Ganeti does
NOISE = 1e-11              # relative rounding noise of a score weighed from the aggregates
LAZY_TARGETS = 64          # nodes they are weighed against (the most promising ones)
LAZY_BATCH = 8             # instances weighed again together on a large group


@dataclass
class Options:
    """Ganeti's AlgorithmOptions for balancing, with hbal's defaults."""
    disk_moves: bool = True
    instance_moves: bool = True
    restricted_migration: bool = False
    ignore_soft_errors: bool = False
    evac_mode: bool = False
    min_gain: float = 0.01
    min_gain_limit: float = 0.1


@dataclass
class Step:
    """One move of the solution: which instance, how, where it ends, the score after it."""
    inst: Inst
    move: str
    target: int | None
    old_p: int
    old_s: int
    new_p: int
    new_s: int
    score: float


def allowed_kinds(mirror: str, use_secondary, opts: Options, primary_offline) -> dict:
    """Which target moves each instance may make (Ganeti's possibleMoves), per kind."""
    if mirror == MIRROR_EXTERNAL:
        return {FAILOVER_TO_ANY: opts.instance_moves}
    if mirror != MIRROR_INTERNAL or not opts.disk_moves:
        return {}
    if not opts.instance_moves:
        return {REPLACE_SECONDARY: True}
    restricted = opts.restricted_migration & ~primary_offline if opts.restricted_migration else False
    full = np.logical_and(use_secondary, np.logical_not(restricted))
    return {REPLACE_SECONDARY: True,
            REPLACE_AND_FAILOVER: np.logical_not(restricted),
            REPLACE_PRIMARY: np.logical_and(full, not opts.restricted_migration),
            FAILOVER_AND_REPLACE: full}


class Balancer:
    """Balances one node group of a State in place."""

    def __init__(self, state: State, members, opts: Options | None = None):
        self.st = state
        self.opts = opts or Options()
        self.members = np.asarray(members)
        self.score = GroupScore(state, self.members)
        self.NM = np.zeros((len(metrics.NODE_METRICS), len(state.node_names)))
        self.NM[:, self.members] = node_metrics(state, self.members)
        self._sync()

    def _sync(self) -> None:
        self.online_flag = np.zeros(len(self.st.node_names), bool)
        self.online_flag[self.score.online] = True
        self.online_arr = np.sort(self.score.online)
        self.conf = self.st.tag_conflicts()

    # --- weighing moves ------------------------------------------------------------------

    def _conflicts(self, out, role, idx, b: Batch):
        conf = self.conf[idx]
        if not b.has_tags or out.pri_from is None or role not in (out.pri_from, out.pri_to):
            return conf
        at_least = 2 if role == out.pri_from else 1
        sign = -1 if role == out.pri_from else 1
        if idx.shape == (len(b), 1):
            hits = ((self.st.C[idx[:, 0]] >= at_least) & b.X).sum(axis=1)[:, None]
        else:
            hits = b.X.astype(float) @ (self.st.C[idx[0]] >= at_least).T.astype(float)
        return conf + sign * hits

    def _map_delta(self, out, b: Batch):
        st, M = self.st, self.score.M
        if out.pri_from is None or b.forthcoming or not b.has_tags or not M.size:
            return 0.0
        a = out.nodes[out.pri_from][0][:, 0]
        dest = out.nodes[out.pri_to][0]
        X = b.X.astype(float)
        from_here = st.Lm[a] * self.online_flag[a][:, None]                     # (B, L)
        dec = -((X @ (M >= 2).T) * from_here).sum(axis=1)[:, None]
        gain = X @ (M >= 1).T - (X @ (M == 1).T) * from_here                    # (B, L)
        if dest.shape == (len(b), 1):
            inc = ((gain * st.Lm[dest[:, 0]]).sum(axis=1) * self.online_flag[dest[:, 0]])[:, None]
        else:
            inc = gain @ st.Lm[dest[0]].T.astype(float)
        return dec + inc

    def outcome_score(self, out, b: Batch) -> np.ndarray:
        """The group's score after each candidate of ``out`` (inf where it cannot be made).

        Works row by row (one score component at a time) so a component that a role's node
        keeps per instance stays (B, 1) and only what depends on the target is (B, T)."""
        rows = len(metrics.NODE_METRICS)
        ds: list = [0.0] * rows
        dss: list = [0.0] * rows
        for role, (idx, v) in out.nodes.items():
            new = nodevals.metric_values(v)
            new[metrics.TAGS_ROW] = self._conflicts(out, role, idx, b)
            online = self.online_flag[idx]
            targets = role == "t"            # targets are online nodes: no mask needed
            for k in range(rows):
                if targets and not ONLINE_ROWS[k]:
                    continue
                old = self.NM[k, idx]
                delta = new[k] - old
                square = delta * (new[k] + old)
                if not targets:
                    keep = online if ONLINE_ROWS[k] else ~online
                    delta, square = np.where(keep, delta, 0.0), np.where(keep, square, 0.0)
                ds[k] = ds[k] + delta
                dss[k] = dss[k] + square
        scores = self.score.score_rows(ds, dss, self._map_delta(out, b))
        return np.where(np.asarray(out.fail) != 0, np.inf, scores)

    def best_moves(self, b: Batch, targets: np.ndarray, ties: list | None = None):
        """Each instance's best move: (score, kind, target) arrays, inf where it has none;
        ties go to Ganeti's order (failover, then by target, then by move kind). With ``ties``,
        every move within rounding noise of its instance's best is added to it, as (score,
        Ganeti's order, instance, kind, target)."""
        st, opts, force = self.st, self.opts, self.opts.ignore_soft_errors
        p, s = b.pnode, b.snode
        use_secondary = (self.online_flag[s] if b.has_secondary else np.zeros_like(p, bool)) & opts.instance_moves
        best = np.full(len(b), np.inf)
        kind = np.full(len(b), None, object)
        target = np.full(len(b), NO_NODE)
        targets = np.asarray(targets)[None, :]
        kinds = allowed_kinds(b.mirror, use_secondary, opts, st.offline(p))
        if kinds and targets.size:
            valid = (targets != p) & (targets != s)
            table = []
            for k, ok in kinds.items():
                sc = self.outcome_score(moves.MOVES[k](st, b, targets, force), b)
                table.append(np.where(valid & np.asarray(ok, bool), sc, np.inf))
            table = np.stack(table, axis=2).reshape(len(b), -1)      # by target, then by kind
            pos = table.argmin(axis=1)
            best = table[np.arange(len(b)), pos]
            names = list(kinds)
            kind = np.array([names[q % len(names)] for q in pos], object)
            target = targets[0, pos // len(names)]
        fo = np.full(len(b), np.inf)
        if b.mirror == MIRROR_INTERNAL and use_secondary.any():
            fo = self.outcome_score(moves.failover(st, b, None, force), b)[:, 0]
            fo = np.where(use_secondary[:, 0], fo, np.inf)
            take = fo <= best
            best = np.where(take, fo, best)
            kind = np.where(take, FAILOVER, kind)
            target = np.where(take, NO_NODE, target)
        if ties is not None:
            for r, inst in enumerate(b.insts):
                if not np.isfinite(best[r]):
                    continue
                bar = best[r] + TIE * max(1.0, abs(best[r]))
                if fo[r] <= bar:
                    ties.append((float(fo[r]), (inst.idx, 0, 0, 0), inst, FAILOVER, NO_NODE))
                if kinds and targets.size:
                    for q in np.flatnonzero(table[r] <= bar):
                        pos, k = divmod(int(q), len(names))
                        ties.append((float(table[r, q]), (inst.idx, 1, pos, k), inst, names[k],
                                     int(targets[0, pos])))
        return best, kind, target

    def promising_targets(self, count: int) -> np.ndarray:
        """The ``count`` online nodes where added load lowers the score most, to a first order:
        each spread's gradient at the node, signed by whether an instance raises or lowers the
        node's value there. Used to narrow the targets weighed again on large groups."""
        online = self.online_arr
        if len(online) <= count:
            return online
        sd = np.sqrt(self.score.var)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (self.NM[:, online] - (self.score.S / self.score.n)[:, None]) / sd[:, None]
        z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
        load = (metrics.WEIGHTS * LOAD_SIGN)[:, None] * z
        return np.sort(online[np.argsort(load.sum(axis=0), kind="stable")[:count]])

    def score_of(self, inst: Inst, kind: str, target: int) -> float:
        """The group's score after one given move (inf if it cannot be made now)."""
        b = Batch(self.st, [inst])
        t = None if kind == FAILOVER else np.array([[target]])
        if kind != FAILOVER and (target in (inst.pnode, inst.snode) or not self.online_flag[target]):
            return np.inf
        return float(self.outcome_score(moves.MOVES[kind](self.st, b, t, self.opts.ignore_soft_errors), b)
                     .reshape(-1)[0])

    # --- applying ---------------------------------------------------------------------------

    def apply(self, inst: Inst, move: str, target: int | None) -> Step:
        old_p, old_s = inst.pnode, inst.snode
        out = moves.apply(self.st, inst, move, None if move == FAILOVER else target, self.opts.ignore_soft_errors)
        touched = sorted({int(np.asarray(idx).reshape(-1)[0]) for idx, _ in out.nodes.values()})
        self.NM[:, touched] = node_metrics(self.st, np.array(touched))
        self.score.refresh()
        self._sync()
        return Step(inst, move, target, old_p, old_s, inst.pnode, inst.snode, self.score.total())

    def victims(self) -> list[Inst]:
        """The instances hbal may move: movable, auto-balanced, in the group (in evacuation mode
        only those with a node offline)."""
        inside = set(self.members.tolist())
        out = []
        for inst in self.st.instances:
            if inst.pnode not in inside or not (inst.movable and inst.auto_balance):
                continue
            if self.opts.evac_mode and not any(
                    n != NO_NODE and not self.online_flag[n] for n in (inst.pnode, inst.snode)):
                continue
            out.append(inst)
        return out

    def candidates(self, victims: list[Inst], targets: np.ndarray | None = None, ties: list | None = None):
        """Every victim's best move (to ``targets``, default every online node of the group), as
        (score, instance, kind, target), in instance order."""
        targets = self.online_arr if targets is None else targets
        size = max(1, BATCH_CELLS // max(1, len(targets)))
        found = []
        for b in self.st.batches(victims, size):
            best, kind, target = self.best_moves(b, targets, ties)
            found += [(float(sc), inst, k, int(t)) for sc, inst, k, t in zip(best, b.insts, kind, target)
                      if np.isfinite(sc)]
        found.sort(key=lambda c: c[1].idx)
        return found

    def _gains_enough(self, before: float, after: float) -> bool:
        """Ganeti's acceptance of a move; a gain within rounding noise of the incremental score
        (NOISE) is no gain, or two equal placements could be swapped back and forth."""
        opts = self.opts
        return (after < before - NOISE * max(1.0, abs(before))
                and (before > opts.min_gain_limit or before - after >= opts.min_gain))

    def step(self) -> Step | None:
        """One round of Ganeti's tryBalance: the best move over all instances, if it gains enough.
        Moves that tie with the best to rounding noise are scored again with Ganeti's arithmetic
        (ganeti_score), so the one Ganeti's hbal makes is the one made."""
        ini = self.score.total()
        ties: list = []
        found = self.candidates(self.victims(), ties=ties)
        if not found:
            return None
        best = min(found, key=lambda c: c[0])
        bar = best[0] + TIE * max(1.0, abs(best[0]))
        near = [t for t in ties if t[0] <= bar]
        if len(near) > 1:
            ini = self.ganeti_score()
            exact, _, inst, kind, target = min(((self.ganeti_score(t[2], t[3], t[4]), t[1], t[2], t[3], t[4])
                                                for t in near), key=lambda e: (e[0], e[1]))
            best = (exact, inst, kind, target)
        if not self._gains_enough(ini, best[0]):
            return None
        return self.apply(best[1], best[2], best[3])

    def ganeti_score(self, inst: Inst | None = None, kind: str | None = None, target: int | None = None) -> float:
        """The group's score (after a move, if one is given) computed as Ganeti computes it."""
        online, offline = self.score.online, self.score.offline_nodes
        cols = {int(n): self.NM[:, n].copy() for n in np.concatenate([online, offline])}
        dmap = 0.0
        if inst is not None:
            b = Batch(self.st, [inst])
            out = moves.MOVES[kind](self.st, b, None if kind == FAILOVER else np.array([[target]]),
                                    self.opts.ignore_soft_errors)
            for role, (idx, v) in out.nodes.items():
                new = nodevals.metric_values(v)
                new[metrics.TAGS_ROW] = self._conflicts(out, role, idx, b)
                cols[int(np.asarray(idx).reshape(-1)[0])] = np.array([float(np.asarray(x).reshape(-1)[0])
                                                                     for x in new])
            dmap = float(np.asarray(self._map_delta(out, b)).reshape(-1)[0])

        def matrix(nodes):
            return np.array([cols[int(n)] for n in sorted(nodes)]).T.reshape(len(metrics.NODE_METRICS), -1)
        return metrics.ganeti_total(matrix(online), matrix(offline), self.score.map_value() + dmap)

    def lazy_rounds(self, limit: int, min_score: float = 0.0, on_step=None) -> list[Step]:
        """Balancing a large group: every instance's best move is weighed once, then the
        instances are taken best gain first, their move weighed again against the cluster as it
        is now (a few at a time), and made when it still beats every other instance's last known
        gain (a lazy greedy: gains mostly only shrink as the cluster evens out). When no known
        move is left, everything is weighed again; the balancing ends when nothing gains enough."""
        import heapq
        steps: list[Step] = []
        narrow = True               # weigh against the promising targets until that finds nothing
        while len(steps) < limit and self.score.total() > min_score:
            now = self.score.total()
            targets = self.promising_targets(LAZY_TARGETS) if narrow else None
            heap = [(c[0] - now, c[1].idx, c[1]) for c in self.candidates(self.victims(), targets) if c[0] < now]
            if not heap:
                if narrow:
                    narrow = False
                    continue
                break
            heapq.heapify(heap)
            made_before = len(steps)
            while heap and len(steps) < limit and self.score.total() > min_score:
                popped = [heapq.heappop(heap) for _ in range(min(LAZY_BATCH, len(heap)))]
                insts = [e[2] for e in popped]
                fresh = self.candidates(insts, self.promising_targets(LAZY_TARGETS))
                now = self.score.total()
                bar = heap[0][0] if heap else -np.inf
                fresh.sort(key=lambda c: (c[0], c[1].idx))
                touched: set[int] = set()
                for score, inst, kind, target in fresh:
                    if self.score.total() <= min_score:
                        break
                    nodes = {inst.pnode, inst.snode, target} - {NO_NODE}
                    if nodes & touched:
                        heapq.heappush(heap, (score - now, inst.idx, inst))
                        continue
                    current = self.score.total()
                    after = self.score_of(inst, kind, target) if touched else score
                    if not self._gains_enough(current, after):
                        continue
                    if after - current > bar and touched:
                        heapq.heappush(heap, (after - current, inst.idx, inst))
                        continue
                    step = self.apply(inst, kind, target)
                    steps.append(step)
                    if on_step:
                        on_step(step, len(steps))
                    touched |= nodes
                    if len(steps) >= limit:
                        break
            if len(steps) == made_before:
                if narrow:
                    narrow = False
                    continue
                break
            narrow = True
        return steps

    def run(self, max_length: int = -1, min_score: float = 0.0, on_step=None) -> list[Step]:
        """Balance until no move gains enough, ``max_length`` moves are made or the score is at
        ``min_score`` (Ganeti's iterateDepth and doNextBalance)."""
        limit = max_length if max_length >= 0 else 1 << 62
        if len(self.victims()) * len(self.online_arr) > EXACT_LIMIT:
            return self.lazy_rounds(limit, min_score, on_step)
        steps: list[Step] = []
        while len(steps) < limit and self.score.total() > min_score:
            step = self.step()
            if step is None:
                break
            steps.append(step)
            if on_step:
                on_step(step, len(steps))
        return steps
