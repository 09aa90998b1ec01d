"""hbal's algorithm: repeat the single move that lowers the group's score most (Ganeti's tryBalance).

Every candidate move of every movable instance to every online node of the group is weighed
from the score's aggregates (metrics.GroupScore), each move kind to all targets at once
(moves.py), so a round costs a few array passes per instance instead of a full rescoring per
candidate. The choice, its tie-breaking and the stopping rules are Ganeti's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genet.htools import metrics, moves
from genet.htools.cluster import MIRROR_EXTERNAL, MIRROR_INTERNAL
from genet.htools.metrics import OFF_ROWS, GroupScore, node_metrics
from genet.htools.moves import (FAILOVER, FAILOVER_AND_REPLACE, FAILOVER_TO_ANY, REPLACE_AND_FAILOVER,
                                REPLACE_PRIMARY, REPLACE_SECONDARY)
from genet.htools.state import NO_NODE, Inst, State

ONLINE_ROWS = np.ones(len(metrics.NODE_METRICS), bool)
ONLINE_ROWS[OFF_ROWS] = False


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


def move_kinds(inst: Inst, use_secondary: bool, opts: Options, primary_offline: bool) -> list[str]:
    """The moves to weigh for an instance to another node (Ganeti's possibleMoves)."""
    if inst.mirror == MIRROR_EXTERNAL:
        return [FAILOVER_TO_ANY] if opts.instance_moves else []
    if inst.mirror != MIRROR_INTERNAL or not opts.disk_moves:
        return []
    if not opts.instance_moves:
        return [REPLACE_SECONDARY]
    if opts.restricted_migration and not primary_offline:
        return [REPLACE_SECONDARY]
    if use_secondary and not opts.restricted_migration:
        return [REPLACE_SECONDARY, REPLACE_AND_FAILOVER, REPLACE_PRIMARY, FAILOVER_AND_REPLACE]
    if use_secondary:
        return [REPLACE_SECONDARY, REPLACE_AND_FAILOVER, FAILOVER_AND_REPLACE]
    return [REPLACE_SECONDARY, REPLACE_AND_FAILOVER]


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
        self.online = set(self.score.online.tolist())
        self.online_arr = np.array(sorted(self.online), int)
        self.conf = self.st.tag_conflicts()

    # --- weighing moves ------------------------------------------------------------------

    def _conflicts(self, out, role, idx, inst):
        conf = self.conf[idx]
        if not len(inst.excl) or out.pri_from is None:
            return conf
        C = self.st.C[idx][..., inst.excl]
        if role == out.pri_from:
            return conf - (C >= 2).sum(axis=-1)
        if role == out.pri_to:
            return conf + (C >= 1).sum(axis=-1)
        return conf

    def _map_delta(self, out, inst):
        st, M = self.st, self.score.M
        if out.pri_from is None or inst.forthcoming or not len(inst.excl) or not M.size:
            return 0.0
        a = out.nodes[out.pri_from][0]
        b = out.nodes[out.pri_to][0]
        cols = inst.excl
        Mx = M[:, cols].copy()
        delta = 0.0
        if a in self.online:
            rows = st.Lm[a]
            delta -= float((Mx[rows] >= 2).sum())
            Mx[rows] -= 1
        present = (Mx >= 1).sum(axis=1).astype(float)          # per location
        gain = st.Lm[b].astype(float) @ present
        if isinstance(b, np.ndarray):
            return delta + gain                                 # targets are online
        return delta + (gain if b in self.online else 0.0)

    def outcome_score(self, out, inst) -> np.ndarray:
        """The group's score after each candidate of ``out`` (inf where it cannot be made)."""
        ds = dss = 0.0
        for role, (idx, v) in out.nodes.items():
            new = node_metrics(self.st, idx, v, self._conflicts(out, role, idx, inst))
            old = self.NM[:, idx]
            if isinstance(idx, np.ndarray):
                mask = ONLINE_ROWS
            else:
                mask = ONLINE_ROWS if idx in self.online else ~ONLINE_ROWS
            new, old = new.reshape(len(new), -1), old.reshape(len(old), -1)
            ds = ds + np.where(mask[:, None], new - old, 0.0)
            dss = dss + np.where(mask[:, None], new * new - old * old, 0.0)
        scores = self.score.score_with(ds, dss, self._map_delta(out, inst))
        return np.where(np.asarray(out.fail) != 0, np.inf, scores)

    def best_move(self, inst: Inst, current: float):
        """The best move of ``inst`` that scores below ``current``: (score, move, target) or None,
        ties going to Ganeti's order (failover, then by target, then by move kind)."""
        st, opts = self.st, self.opts
        force = opts.ignore_soft_errors
        p, s = inst.pnode, inst.snode
        use_secondary = s in self.online and opts.instance_moves
        best = None
        if inst.mirror == MIRROR_INTERNAL and use_secondary:
            score = float(self.outcome_score(moves.failover(st, inst, None, force), inst)[0])
            if score < current:
                best, current = (score, FAILOVER, None), score
        kinds = move_kinds(inst, use_secondary, opts, st.offline(p))
        targets = self.online_arr[(self.online_arr != p) & (self.online_arr != s)]
        if not kinds or not len(targets):
            return best
        table = np.vstack([self.outcome_score(moves.MOVES[k](st, inst, targets, force), inst) for k in kinds])
        flat = table.T.ravel()                          # by target, then by move kind
        pos = int(np.argmin(flat))
        if flat[pos] < current:
            best = (float(flat[pos]), kinds[pos % len(kinds)], int(targets[pos // len(kinds)]))
        return best

    # --- applying ---------------------------------------------------------------------------

    def apply(self, inst: Inst, move: str, target: int | None) -> Step:
        old_p, old_s = inst.pnode, inst.snode
        out = moves.apply(self.st, inst, move, target, self.opts.ignore_soft_errors)
        touched = [int(idx) for idx, _ in out.nodes.values()]
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
                    n != NO_NODE and n not in self.online for n in (inst.pnode, inst.snode)):
                continue
            out.append(inst)
        return out

    def step(self) -> Step | None:
        """One round of Ganeti's tryBalance: the best move over all instances, if it gains enough."""
        ini = self.score.total()
        best = None
        current = ini
        for inst in self.victims():
            found = self.best_move(inst, current)
            if found is not None:
                best, current = (inst, found), found[0]
        if best is None:
            return None
        inst, (score, move, target) = best
        if not (score < ini and (ini > self.opts.min_gain_limit or ini - score >= self.opts.min_gain)):
            return None
        return self.apply(inst, move, target)

    def run(self, max_length: int = -1, min_score: float = 0.0, on_step=None) -> list[Step]:
        """Balance until no move gains enough, ``max_length`` moves are made or the score is at
        ``min_score`` (Ganeti's iterateDepth and doNextBalance)."""
        steps: list[Step] = []
        while (max_length < 0 or len(steps) < max_length) and self.score.total() > min_score:
            step = self.step()
            if step is None:
                break
            steps.append(step)
            if on_step:
                on_step(step, len(steps))
        return steps
