"""Ganeti's cluster score: weighted spreads and counts over a node group's nodes.

The table is Ganeti's (Cluster/Metrics.hs: names, weights, how each is aggregated), so a file
scores the same in genet's htools as in Ganeti's. Spreads are population standard deviations
over the online nodes; counts are sums (over the offline nodes for the offline_* ones);
location_exclusion_score counts instances that share an exclusion tag and a location.
``GroupScore`` keeps the aggregates of a group and scores a change to a few nodes from them
without going over every node again (Ganeti's updateStatistics), for many targets at once.
"""
from __future__ import annotations

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
