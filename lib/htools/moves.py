"""The moves hbal can make with an instance (Ganeti's IMove and applyMoveEx).

Each move returns an ``Outcome``: the new numbers of every node it touches, why it cannot be
made (0 where it can), the instance's new nodes and location score, and where its primary
went. The target ``t`` is one node or an array of candidate nodes; with an array every field
of the outcome is an array over the candidates, so one call weighs the move to every node.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genet.htools.nodevals import FAIL_MIG, add_pri, add_sec, remove_pri, remove_sec
from genet.htools.state import NO_NODE, Inst, State

FAILOVER, FAILOVER_TO_ANY, REPLACE_PRIMARY, REPLACE_SECONDARY, REPLACE_AND_FAILOVER, FAILOVER_AND_REPLACE = (
    "Failover", "FailoverToAny", "ReplacePrimary", "ReplaceSecondary", "ReplaceAndFailover", "FailoverAndReplace")


@dataclass
class Outcome:
    nodes: dict            # role ("p", "s", "t") -> (node index or the targets, new Vals)
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
        if isinstance(code, np.ndarray) or isinstance(out, np.ndarray):
            out = np.where(np.asarray(code) != 0, code, out)
        elif code:
            out = code
    return out


def _mig(ok) -> object:
    if ok is True:
        return 0
    return np.where(ok, 0, FAIL_MIG) if isinstance(ok, np.ndarray) else (0 if ok else FAIL_MIG)


def _without(st: State, inst: Inst):
    """The primary without the instance and the secondary without it (Ganeti's int_p, int_s)."""
    p, s = inst.pnode, inst.snode
    int_p = remove_pri(st.vals(p), inst, st.dsrd(inst, p))
    int_s = remove_sec(st.vals(s), inst, st.P[s, p], st.peer_max_without(s, p)) if s != NO_NODE else None
    return int_p, int_s


def failover(st: State, inst: Inst, t=None, force=False) -> Outcome:
    p, s = inst.pnode, inst.snode
    int_p, int_s = _without(st, inst)
    force_p = st.offline(p) or force
    new_p, f1 = add_pri(int_s, inst, force_p, st.tag_clash(inst, s), st.dsrd(inst, s))
    new_s, f2 = add_sec(int_p, inst, st.P[p, s], force_p, ignore_disks=st.offline(p))
    return Outcome({"p": (p, new_s), "s": (s, new_p)}, first_failure(_mig(st.may_migrate(p, s)), f1, f2),
                   s, p, inst.loc, "p", "s")


def failover_to_any(st: State, inst: Inst, t, force=False) -> Outcome:
    p = inst.pnode
    new_t, fail = add_pri(st.vals(t), inst, st.offline(p) or force, st.tag_clash(inst, t), st.dsrd(inst, t))
    old_p = remove_pri(st.vals(p), inst, st.dsrd(inst, p))
    return Outcome({"p": (p, old_p), "t": (t, new_t)}, first_failure(_mig(st.may_migrate(p, t)), fail),
                   t, inst.snode, inst.loc, "p", "t")


def replace_secondary(st: State, inst: Inst, t, force=False) -> Outcome:
    p, s = inst.pnode, inst.snode
    int_p, int_s = _without(st, inst)
    loc = st.LI[p, t]
    new_t, f1 = add_sec(st.vals(t), inst, st.P[t, p], st.offline(s) or force)
    new_p, f2 = add_pri(int_p, inst, True, dsrd=st.dsrd(inst, p), loc=loc)
    return Outcome({"p": (p, new_p), "s": (s, int_s), "t": (t, new_t)}, first_failure(f1, f2),
                   p, t, loc, None, None)


def replace_primary(st: State, inst: Inst, t, force=False) -> Outcome:
    p, s = inst.pnode, inst.snode
    int_p, int_s = _without(st, inst)
    loc = st.LI[t, s]
    force_p = st.offline(p) or force
    tmp_s, f1 = add_pri(int_s, inst, force_p, st.tag_clash(inst, s), st.dsrd(inst, s), loc=loc)
    tmp_s = remove_pri(tmp_s, inst, st.dsrd(inst, s), loc=loc)
    new_t, f2 = add_pri(st.vals(t), inst, force_p, st.tag_clash(inst, t), st.dsrd(inst, t), loc=loc)
    new_s, f3 = add_sec(tmp_s, inst, st.P[s, t], force_p)
    mig = _mig(np.logical_and(st.may_migrate(p, s), st.may_migrate(s, t)))
    return Outcome({"p": (p, int_p), "s": (s, new_s), "t": (t, new_t)}, first_failure(mig, f1, f2, f3),
                   t, s, loc, "p", "t")


def replace_and_failover(st: State, inst: Inst, t, force=False) -> Outcome:
    p, s = inst.pnode, inst.snode
    int_p, int_s = _without(st, inst)
    loc = st.LI[t, p]
    new_t, f1 = add_pri(st.vals(t), inst, force, st.tag_clash(inst, t), st.dsrd(inst, t), loc=loc)
    new_sec, f2 = add_sec(int_p, inst, st.P[p, t], st.offline(s) or force)
    return Outcome({"p": (p, new_sec), "s": (s, int_s), "t": (t, new_t)},
                   first_failure(_mig(st.may_migrate(p, t)), f1, f2), t, p, loc, "p", "t")


def failover_and_replace(st: State, inst: Inst, t, force=False) -> Outcome:
    p, s = inst.pnode, inst.snode
    int_p, int_s = _without(st, inst)
    loc = st.LI[s, t]
    force_p = st.offline(p) or force
    new_p, f1 = add_pri(int_s, inst, force_p, st.tag_clash(inst, s), st.dsrd(inst, s), loc=loc)
    new_s, f2 = add_sec(st.vals(t), inst, st.P[t, s], force_p)
    return Outcome({"p": (p, int_p), "s": (s, new_p), "t": (t, new_s)},
                   first_failure(_mig(st.may_migrate(p, s)), f1, f2), s, t, loc, "p", "s")


MOVES = {FAILOVER: failover, FAILOVER_TO_ANY: failover_to_any, REPLACE_PRIMARY: replace_primary,
         REPLACE_SECONDARY: replace_secondary, REPLACE_AND_FAILOVER: replace_and_failover,
         FAILOVER_AND_REPLACE: failover_and_replace}


def apply(st: State, inst: Inst, move: str, t: int | None, force: bool = False) -> Outcome:
    """Make the move in ``st`` (it must be possible: ``fail`` is 0) and return its outcome."""
    out = MOVES[move](st, inst, t, force)
    if out.fail:
        raise ValueError(f"move {move} of {inst.name} is not possible (failure {out.fail})")
    old_p, old_s = inst.pnode, inst.snode
    for idx, vals in out.nodes.values():
        st.store(int(idx), vals)
    peer_mem = inst.mem * (inst.uses_sec_mem and not inst.forthcoming)
    if old_s != NO_NODE:
        st.P[old_s, old_p] -= peer_mem
        st.P[int(out.new_s), int(out.new_p)] += peer_mem
    if out.pri_from is not None:
        st.C[old_p, inst.excl] -= 1
        st.C[int(out.new_p), inst.excl] += 1
        if not inst.forthcoming:
            st.CM[old_p, inst.excl] -= 1
            st.CM[int(out.new_p), inst.excl] += 1
    inst.pnode, inst.snode, inst.loc = int(out.new_p), int(out.new_s), int(out.loc)
    return out
