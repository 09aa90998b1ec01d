"""Moving existing instances for the IAllocator: node evacuation, group change, relocation
and a secondary for an unmirrored instance (Ganeti's Evacuate.hs, tryChangeGroup,
processRelocate, AllocateSecondary.hs), with the jobs (opcodes) that carry the moves out.

Targets are weighed all at once (the move's arithmetic over every candidate node) and scored
afresh over the group as Ganeti scores them, so the node chosen is Ganeti's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genet.htools import alloc, moves
from genet.htools.cluster import MIRROR_INTERNAL, MIRROR_NONE
from genet.htools.metrics import ExactStats, node_metrics
from genet.htools.moves import FAILOVER, FAILOVER_TO_ANY, REPLACE_SECONDARY
from genet.htools.nodevals import FAIL_NAMES, INDEX, remove_pri
from genet.htools.state import NO_NODE, Batch, State

EVAC_PRIMARY, EVAC_SECONDARY, EVAC_ALL = "primary-only", "secondary-only", "all"
SHUTDOWN_TIMEOUT = 120          # Ganeti's default, in the failover opcodes of forthcoming instances


class EvacError(Exception):
    """An evacuation that cannot be done (the message says why, as Ganeti's)."""


@dataclass
class EvacSolution:
    """Ganeti's EvacSolution: instances moved (to which group and nodes), those that could not
    be, and the jobs, one per moved instance."""
    moved: list = field(default_factory=list)      # (instance idx, group idx, [node idx])
    failed: list = field(default_factory=list)     # (instance idx, message)
    jobs: list = field(default_factory=list)

    def result(self, st: State) -> list:
        return [[[st.instances[i].name, st.data.groups[g].name, [st.node_names[n] for n in nodes]]
                 for i, g, nodes in self.moved],
                [[st.instances[i].name, msg] for i, msg in self.failed], self.jobs]


def opcodes(st: State, inst, move: str, target: int | None) -> list[dict]:
    """Ganeti's iMoveToJob: the opcodes of one move, as Ganeti serialises them."""
    name = inst.name

    def failover(node=None) -> dict:
        if inst.forthcoming:
            op = {"OP_ID": "OP_INSTANCE_FAILOVER", "instance_name": name, "shutdown_timeout": SHUTDOWN_TIMEOUT,
                  "ignore_consistency": False}
            if node is not None:
                op["target_node"] = st.node_names[node]
            return {**op, "ignore_ipolicy": False, "cleanup": False}
        op = {"OP_ID": "OP_INSTANCE_MIGRATE", "instance_name": name}
        if node is not None:
            op["target_node"] = st.node_names[node]
        return {**op, "allow_runtime_changes": False, "ignore_ipolicy": False, "cleanup": False,
                "allow_failover": True, "ignore_hvversions": True}

    def replace(node) -> dict:
        return {"OP_ID": "OP_INSTANCE_REPLACE_DISKS", "instance_name": name, "early_release": False,
                "ignore_ipolicy": False, "mode": "replace_new_secondary", "disks": [],
                "remote_node": st.node_names[node]}
    return {FAILOVER: lambda: [failover()], FAILOVER_TO_ANY: lambda: [failover(target)],
            moves.REPLACE_PRIMARY: lambda: [failover(), replace(target), failover()],
            REPLACE_SECONDARY: lambda: [replace(target)],
            moves.REPLACE_AND_FAILOVER: lambda: [replace(target), failover()],
            moves.FAILOVER_AND_REPLACE: lambda: [failover(), replace(target)]}[move]()


def _fail_name(code) -> str:
    return FAIL_NAMES[int(np.ravel(code)[0])]


def apply_move(st: State, inst, move: str, target: int | None, force: bool) -> None:
    """Ganeti's applyMoveEx on the cluster; EvacError naming the failure if it cannot be made."""
    try:
        moves.apply(st, inst, move, target, force)
    except moves.MoveRefused as err:
        raise EvacError(FAIL_NAMES[err.code]) from None


def best_target(st: State, inst, move: str, targets: np.ndarray, force: bool, gi: int):
    """Ganeti's evacOneNodeInner folded over ``targets``: the target after which group ``gi``
    scores lowest (the later one on a tie), or the failure message of every target tried."""
    targets = np.asarray(targets, int)
    if not len(targets):
        return None, ""
    b = Batch(st, [inst])
    row = targets[None, :]
    out = moves.MOVES[move](st, b, row, force)
    fails = np.broadcast_to(np.asarray(out.fail), row.shape).reshape(-1)
    ok = np.flatnonzero(fails == 0)
    if not len(ok):
        return None, "".join(f" Node {st.node_names[t]} failed: {FAIL_NAMES[int(f)]};" for t, f in zip(targets, fails))
    stats = ExactStats(st, np.flatnonzero(st.node_group == gi))
    changes = []
    for role, (idx, vals) in out.nodes.items():
        nodes = np.broadcast_to(np.asarray(idx), row.shape).reshape(-1)[ok]
        values = node_metrics(st, None, vals, _role_conflicts(st, inst, out, role, row))
        values = np.broadcast_to(values.reshape(values.shape[0], -1), (values.shape[0], len(targets)))
        changes.append((nodes, values[:, ok]))
    pri_moves = out.pri_from is not None
    dmap = [map_change(st, stats, inst, inst.pnode if pri_moves else None, int(t) if pri_moves else None)
            for t in targets[ok]]
    best = ok[stats.best_replaced([c for c in changes if _in_group(st, c[0], gi)], dmap)]
    return int(targets[best]), None


def _in_group(st: State, nodes, gi: int) -> bool:
    return bool(len(nodes)) and st.node_group[int(nodes[0])] == gi


def _role_conflicts(st: State, inst, out, role: str, row):
    """A node's conflicting primaries after the move: the instance's exclusion tags leave the
    node its primary leaves and join the one it reaches."""
    idx = np.broadcast_to(np.asarray(out.nodes[role][0]), row.shape)
    base = st.tag_conflicts(idx)
    if not len(inst.excl) or out.pri_from is None or role not in (out.pri_from, out.pri_to):
        return base
    C = st.C[idx].astype(float)
    sign = -1 if role == out.pri_from else 1
    C[..., inst.excl] += sign
    return np.maximum(C - 1, 0).sum(axis=-1)


def map_change(st: State, stats: ExactStats, inst, source, target) -> float:
    """How the location/exclusion-tag map value changes when the instance's primary moves from
    ``source`` (None: it does not leave one) to ``target`` (None: it reaches none)."""
    if inst.forthcoming or not len(inst.excl) or not st.Lm.shape[1] or (source is None and target is None):
        return 0.0
    online = set(stats.online.tolist())
    M = stats.M.copy()
    for node, sign in ((source, -1), (target, 1)):
        if node is not None and node in online:
            M[np.ix_(np.flatnonzero(st.Lm[node]), inst.excl)] += sign
    return float(np.maximum(M - 1, 0).sum()) - stats.map_value()


def one_node_only(st: State, inst, gi: int, avail, force: bool) -> list[dict]:
    """Ganeti's evacOneNodeOnly: a new secondary (mirrored) or primary (shared storage)."""
    if inst.mirror == MIRROR_NONE:
        raise EvacError("Can't relocate/evacuate non-mirrored instances")
    move = REPLACE_SECONDARY if inst.mirror == MIRROR_INTERNAL else FAILOVER_TO_ANY
    target, why = best_target(st, inst, move, np.asarray(avail, int), force, gi)
    if target is None:
        raise EvacError(f"Can't find any good node: {why}")
    apply_move(st, inst, move, target, force)
    return opcodes(st, inst, move, target)


def _change_all(st: State, inst, gi: int, avail, force: bool) -> list[dict]:
    """Ganeti's ChangeAll for a mirrored instance: every (primary, secondary) pair tried as
    replace-secondary, failover, replace-secondary; the lowest group score wins (the later pair
    on a tie). The first two steps are made once per primary, the last weighed for every
    secondary at once."""
    avail = [int(n) for n in avail]
    best, best_score, error = None, None, "no nodes available"
    group = np.flatnonzero(st.node_group == gi)
    base = ExactStats(st, group)
    base.S, base.var, base.M                  # worked out on the cluster as it is, before any trial
    for p in avail:
        others = np.array([s for s in avail if s != p], int)
        if not len(others):
            continue
        touched = [inst.pnode, inst.snode, p]
        with st.trying(touched, [inst]) as trial:
            try:
                _first_steps(trial, inst, p, force)
            except EvacError as err:
                if best is None:
                    error = f"Allocation failed: {err}"
                continue
            b = Batch(trial, [inst])
            row = others[None, :]
            out = moves.replace_secondary(trial, b, row, force)
            fails = np.broadcast_to(np.asarray(out.fail), row.shape).reshape(-1)
            ok = np.flatnonzero(fails == 0)
            if best is None:
                bad = np.flatnonzero(fails != 0)
                before = bad[bad < (ok[0] if len(ok) else len(fails))]
                if len(before):
                    error = ("Allocation failed: Changing secondary to final secondary: "
                             f"{FAIL_NAMES[int(fails[before[-1]])]}")
            if not len(ok):
                continue
            stats = base.with_changed(touched)
            changes = []
            for role, (idx, vals) in out.nodes.items():
                nodes = np.broadcast_to(np.asarray(idx), row.shape).reshape(-1)[ok]
                values = node_metrics(trial, None, vals,
                                      trial.tag_conflicts(np.broadcast_to(np.asarray(idx), row.shape)))
                values = np.broadcast_to(values.reshape(values.shape[0], -1), (values.shape[0], len(others)))
                if _in_group(trial, nodes, gi):
                    changes.append((nodes, values[:, ok]))
            k = stats.best_replaced(changes)
            score = float(stats.replaced([(nodes[k:k + 1], values[:, k:k + 1]) for nodes, values in changes])[0])
        if best is None or not best_score < score:
            best, best_score = (p, int(others[ok[k]])), score
    if best is None:
        raise EvacError(f"Can't find any good nodes for relocation: {error}")
    return _all_inner(st, inst, best[0], best[1], force)


def _first_steps(st: State, inst, p: int, force: bool) -> list:
    """ChangeAll's moves up to the new primary: (a failover off an offline primary,) the
    secondary to ``p``, a failover to it."""
    steps = []
    if st.F[INDEX["offline"], inst.pnode]:
        _step(st, inst, FAILOVER, None, force, "Failing over to the secondary", steps)
    _step(st, inst, REPLACE_SECONDARY, p, force, "Changing secondary to new primary", steps)
    _step(st, inst, FAILOVER, None, force, "Failing over to new primary", steps)
    return steps


def _all_inner(st: State, inst, p: int, s: int, force: bool) -> list[dict]:
    steps = _first_steps(st, inst, p, force)
    _step(st, inst, REPLACE_SECONDARY, s, force, "Changing secondary to final secondary", steps)
    return [op for move, target in steps for op in opcodes(st, inst, move, target)]


def _step(st, inst, move, target, force, what, steps) -> None:
    try:
        apply_move(st, inst, move, target, force)
    except EvacError as err:
        raise EvacError(f"{what}: {err}") from None
    steps.append((move, target))


def evacuate_instance(st: State, inst, mode: str, gi: int, avail, force: bool) -> list[dict]:
    """Ganeti's nodeEvacInstance: the move(s) of one instance, made on ``st``; its job."""
    t = inst.template
    if t in ("plain", "file"):
        raise EvacError(f"Instances of type {t} cannot be relocated")
    if inst.mirror != MIRROR_INTERNAL:
        if mode == EVAC_SECONDARY:
            raise EvacError(f"Instances with disk template '{t}' can't execute change secondary")
        return one_node_only(st, inst, gi, avail, force)
    if mode == EVAC_PRIMARY:
        apply_move(st, inst, FAILOVER, None, force)
        return opcodes(st, inst, FAILOVER, None)
    if mode == EVAC_SECONDARY:
        return one_node_only(st, inst, gi, avail, force)
    return _change_all(st, inst, gi, avail, force)


def _nodes_of(inst) -> list[int]:
    return [inst.pnode, inst.snode] if inst.has_secondary else [inst.pnode]


def _offline(st: State) -> set[int]:
    return set(np.flatnonzero(st.F[INDEX["offline"]].astype(bool)).tolist())


def node_evacuate(st: State, idxs, mode: str, opts: alloc.Options) -> EvacSolution:
    """Ganeti's tryNodeEvac: each instance off the nodes being evacuated, inside its group."""
    evac = set()
    for idx in idxs:
        i = st.instances[idx]
        if mode in (EVAC_PRIMARY, EVAC_ALL):
            evac.add(i.pnode)
        if mode in (EVAC_SECONDARY, EVAC_ALL) and i.has_secondary:
            evac.add(i.snode)
    evac.discard(NO_NODE)
    excluded = evac | _offline(st)
    members = {gi: [int(n) for n in nodes] for gi, nodes in st.groups_nodes()}

    def plan(inst):
        gi = int(st.node_group[inst.pnode])
        return gi, [n for n in members[gi] if n not in excluded and n != inst.pnode], mode
    return _run(st, idxs, plan, opts)


def _run(st: State, idxs, plan, opts) -> EvacSolution:
    sol = EvacSolution()
    for idx in idxs:
        inst = st.instances[idx]
        try:
            gi, avail, mode = plan(inst)
            job = evacuate_instance(st, inst, mode, gi, avail, opts.ignore_soft_errors)
        except (EvacError, alloc.AllocError) as err:
            sol.failed.append((idx, str(err)))
            continue
        inst = st.instances[idx]
        sol.moved.append((idx, int(st.node_group[inst.pnode]), _nodes_of(inst)))
        sol.jobs.append(job)
    return sol


def change_group(st: State, idxs, targets, opts: alloc.Options) -> EvacSolution:
    """Ganeti's tryChangeGroup: each instance to the best of the target groups (any group but
    its own when none are named), moved with all of its nodes."""
    by_key = {}
    for gi, g in enumerate(st.data.groups):
        by_key[g.uuid] = by_key[g.name] = gi
    unknown = [t for t in targets if t not in by_key]
    if unknown:
        raise EvacError(f"Unknown group '{unknown[0]}'")
    evac = {int(st.node_group[st.instances[i].pnode]) for i in idxs}
    wanted = [by_key[t] for t in targets] if targets else list(range(len(st.data.groups)))
    allowed = [g for g in wanted if g not in evac]
    offline = _offline(st)
    members = {gi: [int(n) for n in nodes] for gi, nodes in st.groups_nodes()}

    def plan(inst):
        count = 2 if inst.has_secondary else 1
        gi, _, _ = alloc.find_best_group(st, inst, count, opts, allowed=allowed)
        if gi not in members:
            raise EvacError(f"Can't find group with index {gi}")
        return gi, [n for n in members[gi] if n not in offline], EVAC_ALL
    return _run(st, idxs, plan, alloc.Options())


def relocate(st: State, idx: int, count: int, relocate_from: list[str], opts: alloc.Options) -> list[str]:
    """Ganeti's processRelocate: one instance's secondary (mirrored) or primary (shared
    storage) elsewhere; the names of its new node(s)."""
    if count != 1:
        raise EvacError(f"Exchange {count} nodes mode is not implemented")
    inst = st.instances[idx]
    s_orig, p_orig = inst.snode, inst.pnode
    if inst.mirror == MIRROR_NONE:
        raise EvacError("Can't relocate non-mirrored instances")
    internal = inst.mirror == MIRROR_INTERNAL
    expected, role = (s_orig, "secondary") if internal else (p_orig, "primary")
    excluded = [st.node_index.get(n, NO_NODE) for n in relocate_from]
    if excluded != [expected]:
        raise EvacError(f"Unsupported request: excluded nodes not equal to instance's {role}({expected} versus"
                        f" [{','.join(str(n) for n in excluded)}])")
    sol = node_evacuate(st, [idx], EVAC_SECONDARY if internal else EVAC_PRIMARY, opts)
    if sol.failed:
        raise EvacError(sol.failed[0][1])
    inst = st.instances[idx]
    return [st.node_names[inst.snode if internal else inst.pnode]]


def allocate_secondary(st: State, idx: int, opts: alloc.Options):
    """Ganeti's tryAllocateSecondary: the best secondary for an unmirrored instance, as if it
    were allocated afresh as a mirrored one on its own primary."""
    inst = st.instances[idx]
    if inst.snode != NO_NODE:
        raise alloc.AllocError("Instance already has a secondary")
    p = inst.pnode
    b = Batch(st, [inst])
    st.store(p, remove_pri(st.vals(p), inst, float(np.ravel(st.dsrd(b, np.array([[p]])))[0])))
    st.C[p, inst.excl] -= 1
    if not inst.forthcoming:
        st.CM[p, inst.excl] -= 1
    inst.template, inst.mirror, inst.pnode = "drbd", MIRROR_INTERNAL, NO_NODE
    group = np.flatnonzero(st.node_group == st.node_group[p])
    sol = alloc.try_alloc(st, inst, np.arange(len(st.node_names)), group, 2, opts,
                          alloc.n1_check(st, opts, inst), primaries=np.array([p]))
    if sol.nodes is None:
        raise alloc.AllocError(", ".join(sol.log))
    alloc.place(st, inst, sol.nodes, opts.ignore_soft_errors)
    return inst, sol
