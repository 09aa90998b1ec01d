"""The moves hbal can make with an instance (Ganeti's IMove and applyMoveEx).

Each move takes a batch of instances (state.Batch) and target nodes: ``t`` is either shared
candidates, shape (1, T), or one target per instance, shape (B, 1). It returns an ``Outcome``
whose every field is an array over (instance, target): the new numbers of each node the move
touches, why it cannot be made (0 where it can), the instance's new nodes and location score,
and where its primary went. One call weighs a move of many instances to many nodes; applying
a chosen move runs the same code for one instance and one target.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genet.htools.nodevals import FAIL_MIG, add_pri, add_sec, remove_pri, remove_sec
from genet.htools.state import Batch, State

FAILOVER, FAILOVER_TO_ANY, REPLACE_PRIMARY, REPLACE_SECONDARY, REPLACE_AND_FAILOVER, FAILOVER_AND_REPLACE = (
    "Failover", "FailoverToAny", "ReplacePrimary", "ReplaceSecondary", "ReplaceAndFailover", "FailoverAndReplace")


@dataclass
class Outcome:
    nodes: dict            # role ("p", "s", "t") -> (node indices, new Vals)
    fail: object           # 0 where the move can be made, else a nodevals.FAIL_* code
    new_p: object
    new_s: object
    loc: object
    pri_from: str | None   # the roles the primary leaves and reaches (None: it stays)
    pri_to: str | None


def first_failure(*codes):
    """The first non-zero failure code, per candidate."""
    out = 0
    for code in reversed(codes):
        out = np.where(np.asarray(code) != 0, code, out)
    return out


def _mig(ok) -> object:
    return 0 if ok is True else np.where(ok, 0, FAIL_MIG)


def _without(st: State, b: Batch):
    """The primaries without the instances and the secondaries without them (Ganeti's int_p, int_s)."""
    p, s = b.pnode, b.snode
    int_p = remove_pri(st.vals(p), b, st.dsrd(b, p))
    int_s = remove_sec(st.vals(s), b, st.P[s, p], st.peer_max_without(s, p)) if b.has_secondary else None
    return int_p, int_s


def failover(st: State, b: Batch, t=None, force=False) -> Outcome:
    p, s = b.pnode, b.snode
    int_p, int_s = _without(st, b)
    force_p = np.logical_or(st.offline(p), force)
    new_p, f1 = add_pri(int_s, b, force_p, st.tag_clash(b, s), st.dsrd(b, s))
    new_s, f2 = add_sec(int_p, b, st.P[p, s], force_p, ignore_disks=st.offline(p))
    return Outcome({"p": (p, new_s), "s": (s, new_p)}, first_failure(_mig(st.may_migrate(p, s)), f1, f2),
                   s, p, b.loc, "p", "s")


def failover_to_any(st: State, b: Batch, t, force=False) -> Outcome:
    p = b.pnode
    new_t, fail = add_pri(st.vals(t), b, np.logical_or(st.offline(p), force), st.tag_clash(b, t),
                          st.dsrd(b, t))
    old_p = remove_pri(st.vals(p), b, st.dsrd(b, p))
    return Outcome({"p": (p, old_p), "t": (t, new_t)}, first_failure(_mig(st.may_migrate(p, t)), fail),
                   t, b.snode, b.loc, "p", "t")


def replace_secondary(st: State, b: Batch, t, force=False) -> Outcome:
    p, s = b.pnode, b.snode
    int_p, int_s = _without(st, b)
    loc = st.LI[p, t]
    new_t, f1 = add_sec(st.vals(t), b, st.P[t, p], np.logical_or(st.offline(s), force))
    new_p, f2 = add_pri(int_p, b, True, dsrd=st.dsrd(b, p), loc=loc)
    return Outcome({"p": (p, new_p), "s": (s, int_s), "t": (t, new_t)}, first_failure(f1, f2),
                   p, t, loc, None, None)


def replace_primary(st: State, b: Batch, t, force=False) -> Outcome:
    p, s = b.pnode, b.snode
    int_p, int_s = _without(st, b)
    loc = st.LI[t, s]
    force_p = np.logical_or(st.offline(p), force)
    tmp_s, f1 = add_pri(int_s, b, force_p, st.tag_clash(b, s), st.dsrd(b, s), loc=loc)
    tmp_s = remove_pri(tmp_s, b, st.dsrd(b, s), loc=loc)
    new_t, f2 = add_pri(st.vals(t), b, force_p, st.tag_clash(b, t), st.dsrd(b, t), loc=loc)
    new_s, f3 = add_sec(tmp_s, b, st.P[s, t], force_p)
    mig = _mig(np.logical_and(st.may_migrate(p, s), st.may_migrate(s, t)))
    return Outcome({"p": (p, int_p), "s": (s, new_s), "t": (t, new_t)}, first_failure(mig, f1, f2, f3),
                   t, s, loc, "p", "t")


def replace_and_failover(st: State, b: Batch, t, force=False) -> Outcome:
    p, s = b.pnode, b.snode
    int_p, int_s = _without(st, b)
    loc = st.LI[t, p]
    new_t, f1 = add_pri(st.vals(t), b, force, st.tag_clash(b, t), st.dsrd(b, t), loc=loc)
    new_sec, f2 = add_sec(int_p, b, st.P[p, t], np.logical_or(st.offline(s), force))
    return Outcome({"p": (p, new_sec), "s": (s, int_s), "t": (t, new_t)},
                   first_failure(_mig(st.may_migrate(p, t)), f1, f2), t, p, loc, "p", "t")


def failover_and_replace(st: State, b: Batch, t, force=False) -> Outcome:
    p, s = b.pnode, b.snode
    int_p, int_s = _without(st, b)
    loc = st.LI[s, t]
    force_p = np.logical_or(st.offline(p), force)
    new_p, f1 = add_pri(int_s, b, force_p, st.tag_clash(b, s), st.dsrd(b, s), loc=loc)
    new_s, f2 = add_sec(st.vals(t), b, st.P[t, s], force_p)
    return Outcome({"p": (p, int_p), "s": (s, new_p), "t": (t, new_s)},
                   first_failure(_mig(st.may_migrate(p, s)), f1, f2), s, t, loc, "p", "s")


MOVES = {FAILOVER: failover, FAILOVER_TO_ANY: failover_to_any, REPLACE_PRIMARY: replace_primary,
         REPLACE_SECONDARY: replace_secondary, REPLACE_AND_FAILOVER: replace_and_failover,
         FAILOVER_AND_REPLACE: failover_and_replace}


class MoveRefused(ValueError):
    """A move the cluster does not allow; ``code`` says why (a nodevals.FAIL_* code)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _one(x):
    return float(np.asarray(x, float).reshape(-1)[0])


def apply(st: State, inst, move: str, t: int | None, force: bool = False) -> Outcome:
    """Make the move of one instance in ``st`` (it must be possible) and return its outcome."""
    b = Batch(st, [inst])
    target = None if t is None else np.array([[t]])
    out = MOVES[move](st, b, target, force)
    if _one(out.fail):
        raise MoveRefused(f"move {move} of {inst.name} is not possible (failure {_one(out.fail)})", int(_one(out.fail)))
    old_p, old_s = inst.pnode, inst.snode
    new_p, new_s = int(_one(out.new_p)), int(_one(out.new_s))
    for idx, vals in out.nodes.values():
        st.F[:, int(_one(idx))] = [_one(x) for x in vals.row()]
    if inst.has_secondary:
        peer_mem = inst.mem * (inst.uses_sec_mem and not inst.forthcoming)
        st.P[old_s, old_p] -= peer_mem
        st.P[new_s, new_p] += peer_mem
    if out.pri_from is not None:
        st.C[old_p, inst.excl] -= 1
        st.C[new_p, inst.excl] += 1
        if not inst.forthcoming:
            st.CM[old_p, inst.excl] -= 1
            st.CM[new_p, inst.excl] += 1
    inst.pnode, inst.snode, inst.loc = new_p, new_s, int(_one(out.loc))
    return out
