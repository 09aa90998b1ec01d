"""Ganeti's cluster score: weighted spreads and counts over a node group's nodes.

The table is Ganeti's (Cluster/Metrics.hs: names, weights, how each is aggregated), so a file
scores the same in genet's htools as in Ganeti's. Spreads are population standard deviations
over the online nodes; counts are sums (over the offline nodes for the offline_* ones);
location_exclusion_score counts instances that share an exclusion tag and a location.
``GroupScore`` keeps the aggregates of a group and scores a change to a few nodes from them
without going over every node again (Ganeti's updateStatistics), for many targets at once.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from genet.htools import nodevals

STD, SUM, OFFSUM, MAP = "std", "sum", "offline sum", "map"
METRICS = [
    ("free_mem_cv", 0.5, STD), ("free_disk_cv", 0.5, STD), ("n1_cnt", 1.0, SUM),
    ("reserved_mem_cv", 1.0, STD), ("offline_all_cnt", 4.0, OFFSUM), ("offline_pri_cnt", 16.0, OFFSUM),
    ("vcpu_ratio_cv", 0.5, STD), ("cpu_load_cv", 1.0, STD), ("mem_load_cv", 1.0, STD),
    ("disk_load_cv", 1.0, STD), ("net_load_cv", 1.0, STD), ("pri_tags_score", 2.0, SUM),
    ("spindles_cv", 0.5, STD), ("free_mem_cv_forth", 0.5, STD), ("free_disk_cv_forth", 0.5, STD),
    ("vcpu_ratio_cv_forth", 0.5, STD), ("spindles_cv_forth", 0.5, STD), ("location_score", 1.0, SUM),
    ("location_exclusion_score", 1.0, MAP), ("reserved_mem_rtotal", 0.25, SUM),
]
RESERVED_MEM_RTOTAL_WEIGHT = 0.25
# the per-node values (nodevals.metric_values) are the components but the map one, in order
NODE_METRICS = [m for m in METRICS if m[2] != MAP]
KINDS = np.array([k for _, _, k in NODE_METRICS])
WEIGHTS = np.array([w for _, w, _ in NODE_METRICS])
OFF_ROWS = np.flatnonzero(KINDS == OFFSUM)          # the counts over offline nodes
TAGS_ROW = [m[0] for m in NODE_METRICS].index("pri_tags_score")
MAP_WEIGHT = dict((n, w) for n, w, _ in METRICS)["location_exclusion_score"]


def node_metrics(state, idx, v=None, conflicts=None) -> np.ndarray:
    """The per-node values of node(s) ``idx`` (rows: NODE_METRICS), from ``v`` if given."""
    v = state.vals(idx) if v is None else v
    rows = nodevals.metric_values(v)
    rows[TAGS_ROW] = state.tag_conflicts(idx) if conflicts is None else conflicts
    return np.array(np.broadcast_arrays(*rows), dtype=float)


class GroupScore:
    """The score of one node group, kept as aggregates (count, sum, variance per spread)."""

    def __init__(self, state, members: np.ndarray):
        self.state = state
        self.members = np.asarray(members)
        self.refresh()

    def refresh(self) -> None:
        st = self.state
        off = st.F[nodevals.INDEX["offline"], self.members].astype(bool)
        self.online = self.members[~off]
        self.offline_nodes = self.members[off]
        on = node_metrics(st, self.online) if len(self.online) else np.zeros((len(NODE_METRICS), 0))
        offv = node_metrics(st, self.offline_nodes) if len(self.offline_nodes) else np.zeros((len(NODE_METRICS), 0))
        self.n = float(len(self.online))
        self.S = on.sum(axis=1)
        self.S[OFF_ROWS] = offv[OFF_ROWS].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.S / self.n
            self.var = ((on - mean[:, None]) ** 2).sum(axis=1) / self.n
        # locations x exclusion tags: instances with that tag on the group's online nodes there
        self.M = st.Lm[self.online].T.astype(np.int64) @ st.CM[self.online]

    def map_value(self, M=None) -> float:
        M = self.M if M is None else M
        return float(np.maximum(M - 1, 0).sum())

    def values(self) -> list[float]:
        """Each component's value, in METRICS order (what hbal -v -v -v prints); none at all
        for a group without online nodes, as Ganeti's (its score is then 0)."""
        if not self.n:
            return []
        out = []
        node_values = iter(range(len(NODE_METRICS)))
        for _, _, kind in METRICS:
            if kind == MAP:
                out.append(self.map_value())
                continue
            k = next(node_values)
            out.append(float(np.sqrt(self.var[k])) if kind == STD else float(self.S[k]))
        return out

    def total(self) -> float:
        return sum(w * v for (_, w, _), v in zip(METRICS, self.values()))

    def score_rows(self, ds: list, dss: list, dmap):
        """The score after a change that adds ``ds[k]`` to component k's sum and ``dss[k]`` to its
        sum of squares (each a number or an array over candidates, broadcast together) and
        ``dmap`` to the map value (Ganeti's updateStatistics, for many candidates at once)."""
        n = self.n
        total = MAP_WEIGHT * (self.map_value() + dmap)
        with np.errstate(invalid="ignore", divide="ignore"):
            for k, kind in enumerate(KINDS):
                S, d = self.S[k], ds[k]
                if kind == STD:
                    var = np.maximum(0.0, self.var[k] + (n * dss[k] - 2 * S * d - d * d) / (n * n))
                    total = total + WEIGHTS[k] * np.sqrt(var)
                else:
                    total = total + WEIGHTS[k] * (S + d)
        return total


def ganeti_total(online: np.ndarray, offline: np.ndarray, map_value: float) -> float:
    """The score from the per-node values (columns in node order) with Ganeti's arithmetic:
    left-to-right sums, a two-pass variance, then the weighted sum in METRICS order. It rounds
    exactly as Ganeti's does, so where two moves tie to the last bit the same one wins."""
    n = online.shape[1]
    if not n:
        return 0.0
    node_rows = iter(range(len(NODE_METRICS)))
    total = 0.0
    for _, weight, kind in METRICS:
        if kind == MAP:
            value = map_value
        else:
            k = next(node_rows)
            values = (offline if kind == OFFSUM else online)[k].tolist()
            acc = 0.0
            for x in values:
                acc += x
            if kind == STD:
                mean = acc / n
                nvar = 0.0
                for x in values:
                    d = x - mean
                    nvar += d * d
                value = (nvar / n) ** 0.5
            else:
                value = acc
        total += weight * value
    return total


def optimal_score(state, members) -> float:
    """The lowest score N+1 reservations allow (Ganeti's optimalCVScore)."""
    members = np.asarray(members)
    if len(members) < 2:
        return 0.0
    t_mem = state.F[nodevals.INDEX["t_mem"], members]
    total = t_mem.sum()
    less_one = total - t_mem.max()
    if less_one <= 0:
        return 0.0
    drbd_mem = state.P[members].sum()
    return RESERVED_MEM_RTOTAL_WEIGHT * (drbd_mem / less_one - drbd_mem / total)


def _left_sum(rows: np.ndarray) -> np.ndarray:
    """Each row's sum added left to right, as Ganeti's folds add (numpy's sum pairs terms)."""
    if rows.shape[-1] == 0:
        return np.zeros(rows.shape[:-1])
    return np.add.accumulate(rows, axis=-1)[..., -1]


class ExactStats:
    """Ganeti's statistics of a node list (compClusterStatistics) computed with its arithmetic,
    and the score after replacing nodes' values (updateStatistics, compCVfromStats), for many
    candidates at once. Allocation compares candidates by these scores, which tie exactly
    where Ganeti's tie, so the same node wins."""

    def __init__(self, state, nodes):
        nodes = np.asarray(nodes, int)
        off = state.F[nodevals.INDEX["offline"], nodes].astype(bool)
        self.state, self.nodes = state, nodes
        self.online, self.offline = nodes[~off], nodes[off]
        self.n = float(len(self.online))

    # worked out when first asked: an allocation where nothing fits never needs them

    @cached_property
    def on_values(self) -> np.ndarray:
        return node_metrics(self.state, self.online) if len(self.online) else np.zeros((len(NODE_METRICS), 0))

    @cached_property
    def S(self) -> np.ndarray:
        off_values = (node_metrics(self.state, self.offline) if len(self.offline)
                      else np.zeros((len(NODE_METRICS), 0)))
        S = _left_sum(self.on_values)
        S[OFF_ROWS] = _left_sum(off_values[OFF_ROWS])
        return S

    @cached_property
    def var(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            d = self.on_values - (self.S / self.n)[:, None]
            return _left_sum(d * d) / self.n

    @cached_property
    def M(self) -> np.ndarray:
        """Primaries with each exclusion tag per location (counts: exact in floats, which
        multiply faster)."""
        on = self.online
        return (self.state.Lm[on].T.astype(float) @ self.state.CM[on].astype(float)).astype(np.int64)

    @cached_property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Each node's column among the online and among the offline nodes (-1: not there)."""
        out = []
        for nodes in (self.online, self.offline):
            pos = np.full(len(self.state.node_names), -1)
            pos[nodes] = np.arange(len(nodes))
            out.append(pos)
        return out[0], out[1]

    def with_changed(self, nodes) -> "ExactStats":
        """The statistics of the same nodes once the numbers of ``nodes`` changed in the state
        (none going online or offline): the other online nodes' values are reused."""
        new = ExactStats(self.state, self.nodes)
        online = np.flatnonzero(np.isin(self.online, list(nodes)))
        values = self.on_values.copy()
        if len(online):
            values[:, online] = node_metrics(self.state, self.online[online])
        new.on_values = values
        return new

    def map_value(self) -> float:
        return float(np.maximum(self.M - 1, 0).sum())

    def total(self, S=None, var=None, map_value=None) -> object:
        """compCVfromStats: the weighted values added in METRICS order."""
        S, var = (self.S if S is None else S), (self.var if var is None else var)
        out = 0.0
        rows = iter(range(len(NODE_METRICS)))
        for _, weight, kind in METRICS:
            if kind == MAP:
                value = self.map_value() if map_value is None else map_value
            else:
                k = next(rows)
                value = np.sqrt(var[k]) if kind == STD else S[k]
            out = out + weight * value
        return out if self.n else 0.0

    def after(self, changes, dmap=0.0) -> object:
        """The score after each (old values, new values) pair in ``changes`` replaces one online
        node's contribution, in order (arrays broadcast over candidates)."""
        n = self.n
        S, var = list(self.S), list(self.var)
        for k, kind in enumerate(KINDS):
            if kind == OFFSUM:
                continue
            for old, new in changes:
                x, y = old[k], new[k]
                if kind == SUM:
                    S[k] = S[k] + (y - x)
                    continue
                ds = y - x
                dss = y * y - x * x
                dnnvar = (n * dss - 2 * S[k] * ds) - ds * ds
                S[k] = S[k] + ds
                var[k] = np.maximum(0.0, var[k] + dnnvar / (n * n))
        return self.total(S, var, self.map_value() + dmap)

    def replaced(self, changes, dmap=0.0, chunk: int = 64) -> np.ndarray:
        """The score computed afresh (compCV) for each candidate j, with node ``nodes[j]`` taking
        the values ``values[:, j]`` for each (nodes, values) in ``changes`` (values: K x T)."""
        T = len(changes[0][0])
        dmap = np.broadcast_to(np.asarray(dmap, float), (T,))
        on_pos, off_pos = self.positions
        off_values = node_metrics(self.state, self.offline) if len(self.offline) else np.zeros((len(NODE_METRICS), 0))
        out = np.empty(T)
        for lo in range(0, T, chunk):
            hi = min(T, lo + chunk)
            on = np.repeat(self.on_values[:, None, :], hi - lo, axis=1)          # K x T x n
            off = np.repeat(off_values[:, None, :], hi - lo, axis=1)
            for nodes, values in changes:
                for j in range(lo, hi):
                    node = int(nodes[j])
                    if on_pos[node] >= 0:
                        on[:, j - lo, on_pos[node]] = values[:, j]
                    else:
                        off[:, j - lo, off_pos[node]] = values[:, j]
            S = _left_sum(on)
            with np.errstate(invalid="ignore", divide="ignore"):
                d = on - (S / self.n)[..., None]
                var = _left_sum(d * d) / self.n
            S[OFF_ROWS] = _left_sum(off[OFF_ROWS])
            out[lo:hi] = self.total(S, var, self.map_value() + dmap[lo:hi])
        return out

    def best_replaced(self, changes, dmap=0.0, tie: float = 1e-9) -> int:
        """The candidate Ganeti's fold picks on ``replaced``'s scores (the lowest, the last on a
        tie), without scoring every candidate afresh: all are weighed from the statistics
        (``after``), then those within ``tie`` (relative) of the best, and any that changes an
        offline node, are scored afresh."""
        T = len(changes[0][0])
        dmap = np.broadcast_to(np.asarray(dmap, float), (T,))
        on_pos = self.positions[0]
        online = np.ones(T, bool)
        pairs = []
        for nodes, values in changes:
            pos = on_pos[np.asarray(nodes, int)]
            online &= pos >= 0
            pairs.append((self.on_values[:, np.where(pos >= 0, pos, 0)], values))
        approx = np.asarray(np.broadcast_to(self.after(pairs, dmap), (T,)), float)
        best = approx[online].min() if online.any() else np.inf
        near = np.flatnonzero(~online | (approx <= best + tie * max(1.0, abs(best))))
        exact = self.replaced([(nodes[near], values[:, near]) for nodes, values in changes], dmap[near])
        winners = near[exact == exact.min()]
        return int(winners[-1])
