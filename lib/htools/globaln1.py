"""Global N+1 redundancy (Ganeti's GlobalN1): whether every node of the cluster could be
emptied, its mirrored instances failed over to their secondaries, its shared-storage ones
moved to the best other node of its group, and the rest recreated elsewhere.

hail accepts an allocation only if the cluster stays redundant. For a node whose primaries
are all mirrored the answer has a closed form: each failover must fit on its own (the move's
checks, computed for all instances at once) and the memory failing over to each secondary
must fit in it together. Nodes with other instances are simulated step by step, choosing
targets by score as Ganeti does.
"""
from __future__ import annotations

import copy

import numpy as np

from genet.htools import alloc, evacuate, moves
from genet.htools.metrics import ExactStats
from genet.htools.nodevals import INDEX, unallocated_mem
from genet.htools.state import NO_NODE, State

BATCH = 4096
# templates whose instances a node's evacuation moves to another node (Ganeti's
# diskTemplateMovable); the others' instances are recreated elsewhere
EVACUABLE = frozenset({"diskless", "sharedfile", "rbd", "ext", "gluster"})


class Redundancy:
    """The redundancy check of ``st`` (or of its nodes ``members``), with options as Ganeti's."""

    def __init__(self, st: State, opts, members=None):
        self.st, self.opts = st, opts
        nodes = np.arange(len(st.node_names)) if members is None else np.asarray(members, int)
        keep = ~np.isin(st.node_group[nodes], list(opts.capacity_ignore_groups))
        if opts.accept_existing:
            keep &= ~st.F[INDEX["offline"], nodes].astype(bool)
        self.nodes = nodes[keep]
        self.members = nodes

    def passes_with(self, inst):
        """A predicate on a placement (node tuple) of the new instance ``inst``."""
        from genet.htools.alloc import place

        def passes(nodes) -> bool:
            trial = self.st.clone()
            place(trial, trial.instances[inst.idx], nodes, self.opts.ignore_soft_errors)
            return redundant(trial, self.nodes, self.members)
        return passes


def redundant(st: State, nodes, members) -> bool:
    """Ganeti's redundant: every node in ``nodes`` can be evacuated (within ``members``)."""
    nodes = set(int(n) for n in nodes)
    placed = [i for i in st.instances if i.pnode != NO_NODE]
    mirrored = [i for i in placed if i.has_secondary and i.pnode in nodes]
    others = {i.pnode for i in placed if not i.has_secondary and i.pnode in nodes}
    if not _mirrored_fail_over(st, mirrored):
        return False
    return all(_simulate(st, n, members) for n in sorted(others))


def _mirrored_fail_over(st: State, insts) -> bool:
    """Whether each node's mirrored primaries can all fail over to their secondaries."""
    for b in st.batches(insts, BATCH):
        if np.any(np.asarray(moves.failover(st, b, force=True).fail) != 0):
            return False
    real = [i for i in insts if not i.forthcoming]
    if not real:
        return True
    n = len(st.node_names)
    need = np.zeros((n, n))
    count = np.zeros((n, n), int)
    for i in real:
        need[i.pnode, i.snode] += i.mem * i.uses_mem
        count[i.pnode, i.snode] += 1
    free = unallocated_mem(st.vals(np.arange(n)))
    return not np.any((count > 0) & (free[None, :] - need <= 0))


def _simulate(st: State, node: int, members) -> bool:
    """Ganeti's canEvacuateNode for a node with instances other than mirrored ones."""
    trial = st.clone()
    group = trial.node_group[node]
    escape = np.array([m for m in np.asarray(members, int)
                       if m != node and trial.node_group[m] == group], int)
    mine = [i for i in reversed(trial.instances) if i.pnode == node]
    try:
        for i in mine:
            if i.has_secondary:
                moves.apply(trial, i, moves.FAILOVER, None, force=True)
        for i in mine:
            if not i.has_secondary and i.template in EVACUABLE:
                evacuate.one_node_only(trial, i, group, escape, True)
    except (moves.MoveRefused, evacuate.EvacError):
        return False
    stay = sorted((i for i in mine if not i.has_secondary and not i.template in EVACUABLE), key=lambda i: -i.mem)
    return all(_recreate(trial, i, escape) for i in stay)


def _recreate(st: State, inst, escape: np.ndarray) -> bool:
    """Ganeti's recreate: a copy of the instance where the cluster then scores lowest (the
    original stays where it is)."""
    if not len(escape):
        return False
    stats = ExactStats(st, np.arange(len(st.node_names)))
    sol = alloc.try_singles(st, stats, inst, escape, alloc.Options(ignore_soft_errors=True), lambda _: True)
    if sol.nodes is None:
        return False
    alloc.place(st, copy.copy(inst), sol.nodes, True)
    return True
