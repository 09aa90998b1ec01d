"""Whether a reboot group's instances fit elsewhere while it reboots (hroller's capacity plan).

A colour of the conflict graph (graph.py) is split further into groups whose non-redundant
instances can all move to other nodes of their node group at once, and, with
--full-evacuation, whose secondaries can all find another node once their mirrored
instances have migrated away. The moves are checked as Ganeti's hroller checks them: forced
(Node.addPriEx/addSecEx with force), so only room in memory, disk and, on nodes with
exclusive storage, spindles counts; nodes are tried in order and the first that fits is taken.

A plan is a ``Conf``: per node what a move checks and its instance lists (latest first, as
Ganeti keeps them), per instance its nodes. Each attempt works on a copy, so a failed one
leaves the plan it started from as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from genet.htools import nodevals
from genet.htools.state import NO_NODE, Inst, State


@dataclass(frozen=True)
class Room:
    """A node's room for instances: what a forced move checks."""
    name: str
    group: int
    free_mem: int           # Ganeti's unallocatedMem
    f_dsk: int
    excl: bool              # exclusive storage: spindles count
    f_sp: int
    pri: tuple[int, ...]    # primary instances, latest first (Ganeti's pList)
    sec: tuple[int, ...]    # secondary instances (sList)


def _without(items, idx: int):
    """The tuple or list less the first ``idx`` in it (Haskell's ``delete``)."""
    if idx not in items:
        return items
    k = items.index(idx)
    return items[:k] + items[k + 1:]


def _free_spindles(node: Room, inst: Inst, add: bool) -> int:
    """Ganeti's calcNewFreeSpindles (0 on nodes without exclusive storage)."""
    if not node.excl:
        return 0
    if inst.spindles is None:
        return -1 if add else node.f_sp
    return node.f_sp - inst.spindles if add else node.f_sp + inst.spindles


def add_primary(node: Room, inst: Inst) -> Room | None:
    if inst.forthcoming:
        return node
    free = node.free_mem - inst.mem * inst.uses_mem
    dsk = node.f_dsk - inst.dsk * inst.uses_disk
    sp = _free_spindles(node, inst, True)
    if free <= 0 or (inst.uses_disk and (dsk <= 0 or (node.excl and sp < 0))):
        return None
    return replace(node, free_mem=free, f_dsk=dsk, f_sp=sp, pri=(inst.idx,) + node.pri)


def remove_primary(node: Room, inst: Inst) -> Room:
    if inst.forthcoming:
        return node
    return replace(node, free_mem=node.free_mem + inst.mem * inst.uses_mem,
                   f_dsk=node.f_dsk + inst.dsk * inst.uses_disk, f_sp=_free_spindles(node, inst, False),
                   pri=_without(node.pri, inst.idx))


def add_secondary(node: Room, inst: Inst) -> Room | None:
    if inst.forthcoming:
        return node
    dsk = node.f_dsk - inst.dsk
    sp = _free_spindles(node, inst, True)
    if not inst.has_secondary or dsk <= 0 or (node.excl and sp < 0):
        return None
    return replace(node, f_dsk=dsk, f_sp=sp, sec=(inst.idx,) + node.sec)


def remove_secondary(node: Room, inst: Inst) -> Room:
    if inst.forthcoming:
        return node
    return replace(node, f_dsk=node.f_dsk + inst.dsk * inst.uses_disk, f_sp=_free_spindles(node, inst, False),
                   sec=_without(node.sec, inst.idx))


class Conf:
    """Nodes' room and instances' nodes: one state of the plan."""

    def __init__(self, insts: list[Inst], nodes: list[Room], pnode: list[int], snode: list[int]):
        self.insts, self.nodes, self.pnode, self.snode = insts, nodes, pnode, snode

    @classmethod
    def from_state(cls, st: State) -> "Conf":
        """The cluster as loaded; instance lists as Ganeti's loader fills them (an instance whose
        primary is its secondary is listed as secondary only)."""
        pri: list[list[int]] = [[] for _ in st.node_names]
        sec: list[list[int]] = [[] for _ in st.node_names]
        for inst in st.instances:
            if inst.forthcoming:
                continue
            if inst.pnode != inst.snode:
                pri[inst.pnode].insert(0, inst.idx)
            if inst.snode != NO_NODE:
                sec[inst.snode].insert(0, inst.idx)
        F = st.F
        nodes = [Room(name, int(st.node_group[k]), int(nodevals.unallocated_mem(st.vals(k))),
                      int(F[nodevals.INDEX["f_dsk"], k]), bool(F[nodevals.INDEX["excl"], k]),
                      int(F[nodevals.INDEX["f_sp"], k]), tuple(pri[k]), tuple(sec[k]))
                 for k, name in enumerate(st.node_names)]
        return cls(st.instances, nodes, [i.pnode for i in st.instances], [i.snode for i in st.instances])

    def copy(self) -> "Conf":
        return Conf(self.insts, list(self.nodes), list(self.pnode), list(self.snode))

    def non_redundant(self, node: int) -> list[int]:
        """The node's primaries without a mirror on another node."""
        return [i for i in self.nodes[node].pri if not self.insts[i].has_secondary]

    def mirrored_primaries(self, node: int) -> list[int]:
        return [i for i in self.nodes[node].pri if self.insts[i].has_secondary]

    def secondaries(self, node: int) -> list[int]:
        return list(self.nodes[node].sec)

    # --- moves, in place (on a copy) ------------------------------------------------------

    def move(self, idx: int, target: int) -> bool:
        """Move a non-redundant instance to ``target`` (Hroller.move)."""
        inst, old = self.insts[idx], self.pnode[idx]
        added = add_primary(self.nodes[target], inst)
        if added is None:
            return False
        self.nodes[target] = added
        self.nodes[old] = remove_primary(self.nodes[old], inst)
        self.pnode[idx] = target
        return True

    def migrate(self, idx: int) -> bool:
        """Swap a mirrored instance's primary and secondary."""
        inst, p, s = self.insts[idx], self.pnode[idx], self.snode[idx]
        new_s = add_primary(remove_secondary(self.nodes[s], inst), inst)
        new_p = add_secondary(remove_primary(self.nodes[p], inst), inst) if new_s is not None else None
        if new_p is None:
            return False
        self.nodes[s], self.nodes[p] = new_s, new_p
        self.pnode[idx], self.snode[idx] = s, p
        return True

    def replace_secondary(self, idx: int, target: int) -> bool:
        """Give a mirrored instance a new secondary. As Ganeti's Hroller.replaceSecondary does,
        the old secondary's place takes the primary's record less the instance."""
        inst, p, old = self.insts[idx], self.pnode[idx], self.snode[idx]
        if p == target:
            return False
        added = add_secondary(self.nodes[target], inst)
        if added is None:
            return False
        self.nodes[target] = added
        self.nodes[old] = remove_secondary(self.nodes[p], inst)
        self.snode[idx] = target
        return True


def _place_each(conf: Conf, insts: list[int], targets: list[int], step) -> Conf | None:
    """Each instance moved by ``step`` to the first target that takes it, or None."""
    new = conf.copy()
    for idx in insts:
        if not any(step(new, idx, t) for t in targets):
            return None
    return new


def relocate_non_redundant(conf: Conf, insts: list[int], targets: list[int]) -> Conf | None:
    return _place_each(conf, insts, targets, Conf.move)


def find_secondaries(conf: Conf, insts: list[int], targets: list[int]) -> Conf | None:
    return _place_each(conf, insts, targets, Conf.replace_secondary)


def greedy_clear(conf: Conf, nodes: list[int], targets: list[int], what, place) -> tuple[list[int], Conf]:
    """The nodes, in order, whose instances (``what``) can leave for other nodes of their group
    that are not cleared themselves, and the plan once they have (Ganeti's greedyClearNodes)."""
    cleared = []
    for node in nodes:
        others = _without(targets, node)
        leaving = what(conf, node)
        if leaving:         # (a node with nothing to move is cleared as it is)
            group = conf.nodes[node].group
            new = place(conf, leaving, [t for t in others if conf.nodes[t].group == group])
            if new is None:
                continue
            conf = new
        cleared.append(node)
        targets = others
    return cleared, conf


def partition(conf: Conf, nodes: list[int], targets: list[int], what, place) -> list[tuple[list[int], Conf]] | None:
    """The nodes split into groups that can each be cleared at once (each from ``conf``), or None
    when some node cannot be cleared at all (Ganeti's partitionNodes)."""
    out = []
    while nodes:
        cleared, new = greedy_clear(conf, nodes, targets, what, place)
        if not cleared:
            return None
        out.append((cleared, new))
        nodes = [n for n in nodes if n not in cleared]
    return out


def split_non_redundant(conf: Conf, nodes: list[int], targets: list[int]):
    return partition(conf, nodes, targets, Conf.non_redundant, relocate_non_redundant)


def split_secondaries(conf: Conf, nodes: list[int], targets: list[int]):
    return partition(conf, nodes, targets, Conf.secondaries, find_secondaries)


def migrate_off(conf: Conf, nodes: list[int]) -> Conf | None:
    """Every mirrored primary of the nodes migrated to its secondary, or None."""
    insts = [i for n in nodes for i in conf.mirrored_primaries(n)]
    new = conf.copy()
    return new if all(new.migrate(i) for i in insts) else None


def moves(before: Conf, after: Conf) -> list[tuple[str, str, str | None]]:
    """The instances on other nodes in ``after`` (a swap of primary and secondary is no move):
    name, primary and, for mirrored ones, secondary (Ganeti's getMoves)."""
    out = []
    changed = [i for i, (p, s, p2, s2) in enumerate(zip(before.pnode, before.snode, after.pnode, after.snode))
               if p != p2 or s != s2]
    for i in changed:
        inst = before.insts[i]
        p, s, p2, s2 = before.pnode[i], before.snode[i], after.pnode[i], after.snode[i]
        if not (p != p2 or (inst.has_secondary and s != s2)) or (p2 == s and s2 == p):
            continue
        out.append((inst.name, after.nodes[p2].name, after.nodes[s2].name if inst.has_secondary else None))
    return out
