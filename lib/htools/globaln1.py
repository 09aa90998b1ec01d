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
from functools import cached_property

import numpy as np

from genet.htools import alloc, evacuate, moves
from genet.htools.metrics import ExactStats
from genet.htools.nodevals import INDEX, unallocated_mem
from genet.htools.policy import policy_failures
from genet.htools.state import NO_NODE, State

BATCH = 4096
# templates whose instances a node's evacuation moves to another node (Ganeti's
# diskTemplateMovable); the others' instances are recreated elsewhere
EVACUABLE = frozenset({"diskless", "sharedfile", "rbd", "ext", "gluster"})


class Redundancy:
    """The redundancy check of ``st`` with one more instance placed (or of its nodes
    ``members``), with options as Ganeti's. What the new instance cannot change is worked out
    once: each mirrored instance's own failover, the memory each node's mirrored primaries need
    on each of their secondaries and where that does not fit, each node's instances; a
    placement then recomputes only what touches its nodes."""

    def __init__(self, st: State, opts, members=None):
        self.st, self.opts = st, opts
        nodes = np.arange(len(st.node_names)) if members is None else np.asarray(members, int)
        keep = ~np.isin(st.node_group[nodes], list(opts.capacity_ignore_groups))
        if opts.accept_existing:
            keep &= ~st.F[INDEX["offline"], nodes].astype(bool)
        self.nodes = nodes[keep]
        self.checked = set(self.nodes.tolist())
        self.members = nodes
        self._critical: dict[int, list] = {}

    # what a placement cannot change, worked out when a placement is first checked

    @cached_property
    def mirrored(self) -> list:
        return [i for i in self.st.instances if i.pnode != NO_NODE and i.pnode in self.checked and i.has_secondary]

    @cached_property
    def touching(self) -> dict[int, list]:
        """node -> the mirrored instances on it"""
        out: dict[int, list] = {}
        for i in self.mirrored:
            for n in {i.pnode, i.snode}:
                out.setdefault(n, []).append(i)
        return out

    @cached_property
    def primaries(self) -> dict[int, list]:
        """node -> its primaries, the latest first"""
        out: dict[int, list] = {}
        for i in reversed(self.st.instances):
            if i.pnode != NO_NODE:
                out.setdefault(i.pnode, []).append(i)
        return out

    @cached_property
    def others(self) -> list[int]:
        """the checked nodes with primaries that are not mirrored: their evacuation is simulated"""
        return sorted({i.pnode for i in self.st.instances
                       if i.pnode != NO_NODE and i.pnode in self.checked and not i.has_secondary})

    @cached_property
    def takers(self) -> dict[int, list]:
        """For each of ``others``, a few nodes that could take all its other instances at once:
        as long as a placement leaves one of them (and the node) alone, it stays evacuable."""
        st = self.st
        return {n: _takers(st, n, _escape(st, n, self.members), self.primaries[n])[:3].tolist()
                for n in self.others}

    def critical(self, n: int) -> list[tuple[object, np.ndarray, np.ndarray]]:
        """The instances of node ``n`` (one of ``others``) to be recreated when it is emptied
        that fit, on their own, on at most two nodes of its group once its mirrored primaries
        failed over: (instance, those nodes, their quantities then). A placement that takes
        that room makes the node's evacuation certain to fail, with no simulation: nodes only
        fill up while a node is emptied (failovers, moves, recreated copies). Worked out for a
        node the first time it must be simulated."""
        if n not in self._critical:
            self._critical[n] = out = []
            mine = self.primaries[n]
            stay = [i for i in mine if not i.has_secondary and i.template not in EVACUABLE]
            mirrored = [i for i in mine if i.has_secondary]
            escape = _escape(self.st, n, self.members)
            with self.st.trying([n] + [i.snode for i in mirrored], mirrored) as after:
                try:
                    _fail_over(after, mirrored)
                except moves.MoveRefused:
                    stay = []
                for i in stay:
                    fit = _fitting(after, i, escape)
                    if len(fit) <= 2:
                        out.append((i, fit, after.F[:, fit].copy()))
        return self._critical[n]

    @cached_property
    def failing(self) -> set[int]:
        return _failing(self.st, self.mirrored)

    @cached_property
    def needs(self):
        """The memory each node's mirrored primaries need on each secondary, how many, and the
        failovers that do not fit."""
        need, count = _needs(self.st, self.mirrored)
        free = unallocated_mem(self.st.vals(np.arange(len(self.st.node_names))))
        return need, count, free, (count > 0) & (free[None, :] - need <= 0)

    def passes_with(self, inst):
        """A predicate on a placement (node tuple) of the new instance ``inst``."""
        def passes(nodes) -> bool:
            touched = set(nodes)
            simulated = self._simulated(inst, nodes[0], touched)
            changed = alloc.placement(self.st, inst, nodes, self.opts.ignore_soft_errors)
            # screened first: the nodes whose every taker the placement fills, and those whose
            # critical instances are known; the others once no node could take their
            # instances at once any more (working their critical instances out costs a
            # simulation of failovers, which most placements never need)
            early = [n for n in simulated if n in self.primaries and (n not in touched or n in self._critical)]
            if any(self._room_taken(n, changed) for n in early):
                return False
            trial = self.st.clone(moving=[inst.idx])
            new = trial.instances[inst.idx]
            alloc.place(trial, new, nodes, changed=changed)
            if not self._mirrored_ok(trial, new, touched):
                return False
            for n in simulated:
                mine = ([new] if new.pnode == n else []) + self.primaries.get(n, [])
                if len(_takers(trial, n, _escape(trial, n, self.members), mine)):
                    continue
                if n in self.primaries and n not in early and self._room_taken(n, changed):
                    return False
                if not _emptied(trial, n, self.members, mine):
                    return False
            return True
        return passes

    def _simulated(self, inst, pnode: int, touched: set[int]) -> list[int]:
        """The nodes whose evacuation a placement (primary ``pnode``) must be simulated for:
        those of ``others`` (and the new primary, for an unmirrored instance) it touches or
        whose every taker it touches."""
        nodes = set(self.others)
        if not inst.has_secondary and pnode in self.checked:
            nodes.add(pnode)
        return [n for n in sorted(nodes) if n in touched or not set(self.takers.get(n, [])) - touched]

    def _room_taken(self, n: int, changed: dict) -> bool:
        """Whether the placement (its nodes' new numbers) took the last room of an instance
        of node ``n``, which could then not be emptied (see ``critical``). The checks a
        recreated copy must pass read only quantities a placement adds to, so the placement's
        change to a node adds to what the failovers left there."""
        view = None
        for i, fit, after in self.critical(n):
            if set(fit.tolist()) <= changed.keys():
                if view is None:
                    view = copy.copy(self.st)
                    view.F = self.st.F.copy()
                    for node, v in changed.items():
                        view.F[:, node] = v.row()
                placed = view.F[:, fit]
                view.F[:, fit] = placed + after - self.st.F[:, fit]
                fits = len(_fitting(view, i, fit))
                view.F[:, fit] = placed
                if not fits:
                    return True
        return False

    def _mirrored_ok(self, trial: State, new, touched: set[int]) -> bool:
        """Every mirrored failover fits, the ones near the placement checked again, and so
        does the memory failing over to each node (the new primary's free memory is less)."""
        near = {i.idx: i for n in touched for i in self.touching.get(n, [])}
        if self.failing - set(near):
            return False
        mine = [trial.instances[k] for k in near]
        counted = new.has_secondary and new.pnode in self.checked
        if counted:
            mine.append(new)
        if mine and _failing(trial, mine):
            return False
        p = new.pnode
        need, count, free, short = self.needs
        free_p = float(np.ravel(unallocated_mem(trial.vals(p)))[0])
        if short.sum() - short[:, p].sum() or ((count[:, p] > 0) & (free_p - need[:, p] <= 0)).any():
            return False
        if counted and not new.forthcoming:
            s = new.snode
            return bool(free[s] - (need[p, s] + new.mem * new.uses_mem) > 0)
        return True


def redundant(st: State, nodes, members) -> bool:
    """Ganeti's redundant: every node of ``nodes`` can be evacuated, each within its group
    among ``members``."""
    members = [int(m) for m in members]
    checked = set(int(n) for n in nodes)
    for gi in sorted({int(st.node_group[m]) for m in members}):
        inside = [m for m in members if st.node_group[m] == gi]
        if not all(ok for n, ok in zip(inside, evacuable(st, inside)) if n in checked):
            return False
    return True


def evacuable(st: State, members) -> list[bool]:
    """Ganeti's canEvacuateNode for each node of ``members`` (a node group), escaping within
    the group: what hcheck counts as "not directly evacuateable". A node fails when one of its
    mirrored primaries cannot fail over, or they do not fit in a secondary together, or its
    other instances cannot go elsewhere."""
    members = [int(n) for n in members]
    inside = set(members)
    mine: dict[int, list] = {}
    for i in reversed(st.instances):
        if i.pnode in inside:
            mine.setdefault(i.pnode, []).append(i)
    mirrored = [i for insts in mine.values() for i in insts if i.has_secondary]
    blocked = {st.instances[k].pnode for k in _failing(st, mirrored)}
    need, count = _needs(st, mirrored)
    free = unallocated_mem(st.vals(np.arange(len(st.node_names))))
    blocked |= set(np.flatnonzero(((count > 0) & (free[None, :] - need <= 0)).any(axis=1)).tolist())
    others = {n for n, insts in mine.items() if any(not i.has_secondary for i in insts)}
    return [n not in blocked and (n not in others or _simulate(st, n, members, mine[n])) for n in members]


def _failing(st: State, insts) -> set[int]:
    """The mirrored instances that cannot fail over on their own (soft limits ignored)."""
    out = set()
    for b in st.batches(insts, BATCH):
        fail = np.broadcast_to(np.asarray(moves.failover(st, b, force=True).fail), (len(b), 1)).reshape(-1)
        out |= {i.idx for i, f in zip(b.insts, fail) if f}
    return out


def _needs(st: State, insts):
    """The memory each node's running mirrored primaries take on each secondary, and how many."""
    n = len(st.node_names)
    need, count = np.zeros((n, n)), np.zeros((n, n), int)
    for i in insts:
        if not i.forthcoming:
            need[i.pnode, i.snode] += i.mem * i.uses_mem
            count[i.pnode, i.snode] += 1
    return need, count


def _simulate(st: State, node: int, members, mine) -> bool:
    """Ganeti's canEvacuateNode for a node with instances other than mirrored ones (its
    mirrored ones are known to fail over); ``mine``: its primaries, the latest first."""
    return bool(len(_takers(st, node, _escape(st, node, members), mine))) or _emptied(st, node, members, mine)


def _emptied(st: State, node: int, members, mine) -> bool:
    """The step-by-step simulation of emptying the node: its mirrored primaries failed over,
    its shared-storage ones moved, the rest recreated elsewhere, the largest first."""
    group = st.node_group[node]
    escape = _escape(st, node, members)
    trial = st.clone(moving=[i.idx for i in mine])
    mine = [trial.instances[i.idx] for i in mine]
    try:
        _fail_over(trial, mine)
        for i in mine:
            if not i.has_secondary and i.template in EVACUABLE:
                evacuate.one_node_only(trial, i, group, escape, True)
    except (moves.MoveRefused, evacuate.EvacError):
        return False
    stay = sorted((i for i in mine if not i.has_secondary and not i.template in EVACUABLE), key=lambda i: -i.mem)
    return all(_recreate(trial, i, escape) for i in stay)


def _fail_over(st: State, mine) -> None:
    """Fail the mirrored ones of ``mine`` over to their secondaries (in ``st``)."""
    for i in mine:
        if i.has_secondary:
            moves.apply(st, i, moves.FAILOVER, None, force=True)


def _escape(st: State, node: int, members) -> np.ndarray:
    """Where a node's instances may go: the other nodes of its group among ``members``."""
    members = np.asarray(members, int)
    return members[(st.node_group[members] == st.node_group[node]) & (members != node)]


def _takers(st: State, node: int, escape: np.ndarray, mine) -> np.ndarray:
    """The nodes of ``escape`` each of which could take every instance of the node but its
    mirrored ones (which fail over to their secondaries first) at once. With one, the
    evacuation cannot fail, whichever nodes Ganeti's fold picks for them one by one (each pick
    leaves that node able to take the next), and the step-by-step simulation is not needed."""
    moving = [i for i in mine if not i.has_secondary and not i.forthcoming]
    v = st.vals(escape)
    excl = np.asarray(v.excl, bool)
    if not len(escape) or (excl.any() and any(i.spindles is None for i in moving)):
        return escape[:0]
    failing_over = np.zeros(len(st.node_names))
    for i in mine:
        if i.has_secondary and not i.forthcoming:
            failing_over[i.snode] += i.mem * i.uses_mem
    free = unallocated_mem(v) - failing_over[escape] - sum(i.mem * i.uses_mem for i in moving)
    fits = free > 0
    disk = [i for i in moving if i.uses_disk]
    if disk:
        fits &= v.f_dsk - sum(i.dsk for i in disk) > 0
        if excl.any():
            fits &= ~excl | (v.f_sp - sum(i.spindles for i in disk) >= 0)
    for i in moving:
        if i.template in EVACUABLE:
            fits &= np.asarray(st.may_migrate(node, escape), bool)
        else:
            fits &= policy_failures(st, i, escape) == 0
    return escape[np.asarray(fits, bool)]


def _fitting(st: State, inst, nodes: np.ndarray) -> np.ndarray:
    """The nodes of ``nodes`` a copy of ``inst`` fits on by itself, as recreating it checks."""
    return nodes[alloc.on_single(st, inst, nodes, True)[1] == 0] if len(nodes) else nodes


def _recreate(st: State, inst, escape: np.ndarray) -> bool:
    """Ganeti's recreate: a copy of the instance where the cluster then scores lowest (the
    original stays where it is)."""
    if not len(escape):
        return False
    stats = ExactStats(st, np.arange(len(st.node_names)))
    sol = alloc.try_singles(st, stats, inst, escape, alloc.Options(ignore_soft_errors=True), None)
    if sol.nodes is None:
        return False
    alloc.place(st, copy.copy(inst), sol.nodes, True)
    return True
