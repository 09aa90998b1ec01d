"""The cluster laid out for computation: one numpy row per node quantity, instances as records.

Built from a backend's ClusterData the way Ganeti's loader merges it (Loader.mergeData,
updateMissing, the CLI's node status options), so the numbers every later step reads are the
ones real htools read. Matrices hold what relates nodes to each other: the memory a node
reserves for each other node's instances (N+1), the exclusion tags of its primaries, its
location tags and which nodes it may migrate to.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from genet.htools import nodevals
from genet.htools.cluster import MEMORY_STATUSES, MIRROR_INTERNAL, RUNNING_STATUSES, TEMPLATES, ClusterData, Instance
from genet.htools.nodevals import FIELDS, INDEX, Vals

EXCLUSION_PREFIX = "htools:iextags:"
LOCATION_PREFIX = "htools:nlocation:"
DESIRED_LOCATION_PREFIX = "htools:desiredlocation:"
MIGRATION_PREFIX = "htools:migration:"
ALLOW_MIGRATION_PREFIX = "htools:allowmigration:"
NO_NODE = -1


@dataclass
class Inst:
    """An instance as the algorithms use it: its sizes, what it uses, and where it is."""
    idx: int
    name: str
    mem: int
    dsk: int
    vcpus: int
    status: str
    template: str
    mirror: str
    pnode: int
    snode: int
    auto_balance: bool
    movable: bool
    forthcoming: bool
    spindle_use: int
    spindles: int | None
    util: tuple
    tags: list
    excl: np.ndarray = field(default_factory=lambda: np.zeros(0, int))   # exclusion tag columns
    dsrd: np.ndarray = field(default_factory=lambda: np.zeros(0, int))   # desired location columns
    n_dsrd: int = 0                                                      # desired locations, known or not
    loc: int = 0                                                         # locations shared by its nodes
    disks: list = field(default_factory=list)                            # (size, spindles) of each disk
    nics: list = field(default_factory=list)                             # the network of each NIC

    @property
    def uses_mem(self) -> bool:
        return not self.forthcoming and self.status in MEMORY_STATUSES

    @property
    def not_offline(self) -> bool:
        return self.status != "ADMIN_offline"

    @property
    def running(self) -> bool:
        return self.status in RUNNING_STATUSES

    @property
    def uses_sec_mem(self) -> bool:
        return self.not_offline and self.auto_balance

    @property
    def uses_disk(self) -> bool:
        return TEMPLATES[self.template][1]

    @property
    def has_secondary(self) -> bool:
        return self.mirror == MIRROR_INTERNAL

def _prefixed(tags, prefix: str) -> list[str]:
    return [t[len(prefix):] for t in tags if t.startswith(prefix) and t[len(prefix):]]


def _tags_under(prefixes, tags) -> set[str]:
    """Ganeti's getTags: the node tags "P:..." for each P the cluster tags name."""
    return {t for p in prefixes for t in tags if t.startswith(p + ":")}


class State:
    """Nodes as rows of ``F`` (one per quantity in nodevals.FIELDS), instances as ``Inst``."""

    def __init__(self, data: ClusterData, *, min_disk: float = 0.0, max_cpu: float | None = None,
                 exclusion_tags=None, select=(), exclude=(), util: dict | None = None, static_node_mem: int = 0):
        self.data = data
        nodes = data.nodes
        self.node_names = [n.name for n in nodes]
        self.node_index = {n: i for i, n in enumerate(self.node_names)}
        n_nodes = len(nodes)
        group_of = {g.uuid: gi for gi, g in enumerate(data.groups)}
        self.node_group = np.array([group_of[n.group] for n in nodes], int)
        self.master = [n.master for n in nodes]
        self.node_tags = [list(n.tags) for n in nodes]
        F = np.zeros((len(FIELDS), n_nodes))
        col = {name: F[INDEX[name]] for name in FIELDS}
        self.F = F
        for i, n in enumerate(nodes):
            col["t_mem"][i], col["n_mem"][i], col["f_mem_forth"][i] = n.t_mem, n.n_mem, n.f_mem
            col["t_dsk"][i], col["f_dsk"][i], col["f_dsk_forth"][i] = n.t_dsk, n.f_dsk, n.f_dsk
            col["t_cpu"][i], col["speed"][i] = n.t_cpu, n.cpu_speed
            col["u_cpu"][i] = col["u_cpu_forth"][i] = n.n_cpu
            col["t_sp"][i], col["f_sp"][i], col["f_sp_forth"][i] = n.spindles, n.free_spindles, n.free_spindles
            col["excl"][i], col["offline"][i], col["fail_n1"][i] = n.excl_storage, n.offline, True
        f_mem = np.array([n.f_mem for n in nodes], float)

        # tags: exclusion (cluster tags and -G/--exclusion-tags), locations, desired locations, migration
        ctags = data.tags
        ex_prefixes = list(exclusion_tags or []) + _prefixed(ctags, EXCLUSION_PREFIX)
        loc_prefixes = _prefixed(ctags, LOCATION_PREFIX)
        dsrd_prefixes = _prefixed(ctags, DESIRED_LOCATION_PREFIX)
        node_locs = [_tags_under(loc_prefixes, n.tags) for n in nodes]
        self.locations = sorted(set().union(*node_locs)) if node_locs else []
        loc_col = {t: j for j, t in enumerate(self.locations)}
        self.Lm = np.zeros((n_nodes, len(self.locations)), bool)
        for i, locs in enumerate(node_locs):
            self.Lm[i, [loc_col[t] for t in locs]] = True
        self.LI = (self.Lm.astype(np.int32) @ self.Lm.T.astype(np.int32)).astype(float)
        self.migration_ok = self._migration_matrix(ctags, nodes)

        excl_names: dict[str, int] = {}
        self.excl_names = excl_names
        self.ex_prefixes, self.dsrd_prefixes = ex_prefixes, dsrd_prefixes
        self.instances: list[Inst] = []
        selected, excluded = set(select), set(exclude)
        for idx, i in enumerate(data.instances):
            p = self.node_index[i.pnode]
            s = self.node_index[i.snode] if i.snode else NO_NODE
            excl = [t for t in i.tags if any(t.startswith(pfx) for pfx in ex_prefixes)]
            dsrd = [t for t in i.tags if any(t.startswith(pfx) for pfx in dsrd_prefixes)]
            movable = TEMPLATES[i.template][2] and i.name not in excluded and (not selected or i.name in selected)
            if s != NO_NODE and self.node_group[p] != self.node_group[s]:
                movable = False       # split across groups: never moved (Ganeti's disableSplitMoves)
            inst = Inst(idx, i.name, i.mem, i.dsk, i.vcpus, i.status, i.template, TEMPLATES[i.template][0], p, s,
                        i.auto_balance, movable, i.forthcoming, i.spindle_use, i.spindles,
                        tuple((util or {}).get(i.name, i.util)), list(i.tags),
                        np.array([excl_names.setdefault(t, len(excl_names)) for t in excl], int),
                        np.array([loc_col[t] for t in dsrd if t in loc_col], int), len(dsrd),
                        int(self.LI[p, s]) if s != NO_NODE else 0, list(i.disk_list), list(i.nics))
            self.instances.append(inst)
        self.instance_index = {inst.name: inst.idx for inst in self.instances}
        self.excl_tags = list(excl_names)
        self.C = np.zeros((n_nodes, len(excl_names)), np.int64)     # exclusion tags of primaries
        self.CM = np.zeros((n_nodes, len(excl_names)), np.int64)    # the same, real instances only
        self.P = np.zeros((n_nodes, n_nodes))                       # memory reserved for each primary

        # Ganeti's fixNodes (setPri/setSec on every instance), buildPeers, then updateMissing
        for inst in self.instances:
            p = inst.pnode
            if inst.snode == p:
                # Ganeti's fixNodes updates the secondary from the node as it was before the
                # primary's update, which is lost when both are the same node: do the same
                self._add_secondary(inst)
                continue
            v = self.vals(p)
            v.f_mem_forth -= inst.mem * (not inst.uses_mem)
            v.inst_sp_forth = nodevals._inst_spindles(v, inst, True, True)
            v.u_cpu_forth += inst.vcpus * inst.not_offline
            if inst.forthcoming:
                v.f_dsk_forth -= inst.dsk * inst.uses_disk
                v.f_sp_forth = nodevals._free_spindles(v, inst, True, True)
            else:
                v.u_cpu += inst.vcpus * inst.not_offline
                v.load_c, v.load_m, v.load_d, v.load_n = (a + b for a, b in zip(
                    (v.load_c, v.load_m, v.load_d, v.load_n), inst.util))
                v.inst_sp = nodevals._inst_spindles(v, inst, True, False)
                v.loc += inst.loc + inst.n_dsrd - int(self.Lm[p, inst.dsrd].sum())
                v.n_pri += 1
                v.i_mem += inst.mem * inst.uses_mem
                self.CM[p, inst.excl] += 1
            self.C[p, inst.excl] += 1
            self.store(p, v)
            if inst.snode != NO_NODE:
                self._add_secondary(inst)
        col["r_mem"][:] = self.P.max(axis=1) if n_nodes else 0
        col["fail_n1"][:] = f_mem < col["r_mem"]
        if static_node_mem > 0 and data.hypervisor == "kvm":     # Ganeti's setStaticKvmNodeMem
            col["n_mem"][:] = static_node_mem
        col["x_mem"][:] = np.trunc(col["t_mem"]) - col["n_mem"] - col["i_mem"] - f_mem

        # policies of the nodes' groups, then the command line's node options
        for gi, g in enumerate(data.groups):
            members = self.node_group == gi
            col["l_cpu"][members] = g.ipolicy.vcpu_ratio
            col["hi_sp"][members] = g.ipolicy.spindle_ratio * col["t_sp"][members]
        col["lo_dsk"][:] = np.floor(min_disk * col["t_dsk"])
        if max_cpu is not None:
            col["l_cpu"][:] = max_cpu

    def new_instance(self, i: Instance) -> Inst:
        """``i`` as an instance of this cluster that is on no node yet (a request to allocate):
        its exclusion tags and desired locations read as the loaded instances' were."""
        for t in i.tags:
            if any(t.startswith(pfx) for pfx in self.ex_prefixes) and t not in self.excl_names:
                self.excl_names[t] = len(self.excl_names)
                self.excl_tags.append(t)
                self.C = np.hstack([self.C, np.zeros((len(self.node_names), 1), np.int64)])
                self.CM = np.hstack([self.CM, np.zeros((len(self.node_names), 1), np.int64)])
        excl = [self.excl_names[t] for t in i.tags if t in self.excl_names]
        loc_col = {t: j for j, t in enumerate(self.locations)}
        dsrd = [t for t in i.tags if any(t.startswith(pfx) for pfx in self.dsrd_prefixes)]
        inst = Inst(len(self.instances), i.name, i.mem, i.dsk, i.vcpus, i.status, i.template,
                    TEMPLATES[i.template][0], NO_NODE, NO_NODE, i.auto_balance, TEMPLATES[i.template][2],
                    i.forthcoming, i.spindle_use, i.spindles, tuple(i.util), list(i.tags), np.array(excl, int),
                    np.array([loc_col[t] for t in dsrd if t in loc_col], int), len(dsrd), 0,
                    list(i.disk_list), list(i.nics))
        self.instances.append(inst)
        self.instance_index[inst.name] = inst.idx
        return inst

    def clone(self, moving=None) -> "State":
        """A copy whose numbers and placements can change without touching this one; only the
        instances ``moving`` (indices; all when None) may be moved in it."""
        new = copy.copy(self)
        for name in ("F", "P", "C", "CM"):
            setattr(new, name, getattr(self, name).copy())
        new.instances = list(self.instances)
        for k in range(len(self.instances)) if moving is None else moving:
            new.instances[k] = copy.copy(self.instances[k])
        new.instance_index = dict(self.instance_index)
        new.excl_names, new.excl_tags = dict(self.excl_names), list(self.excl_tags)
        return new

    @contextmanager
    def trying(self, nodes, insts: list[Inst]):
        """Moves of ``insts`` among ``nodes`` made inside are undone on leaving: a trial without
        the copy a clone makes of every matrix."""
        nodes = sorted({int(n) for n in nodes} - {NO_NODE})
        f_cols, p_rows, p_cols = self.F[:, nodes].copy(), self.P[nodes].copy(), self.P[:, nodes].copy()
        c_rows, cm_rows = self.C[nodes].copy(), self.CM[nodes].copy()
        where = [(i, i.pnode, i.snode, i.loc) for i in insts]
        try:
            yield self
        finally:
            self.F[:, nodes] = f_cols
            self.P[nodes] = p_rows
            self.P[:, nodes] = p_cols
            self.C[nodes], self.CM[nodes] = c_rows, cm_rows
            for i, pnode, snode, loc in where:
                i.pnode, i.snode, i.loc = pnode, snode, loc

    def set_offline(self, names) -> None:
        """Mark nodes offline (-O): no instance may move there, and instances leave them."""
        for name in names:
            self.F[INDEX["offline"], self.node_index[name]] = True

    def _add_secondary(self, inst: Inst) -> None:
        """Ganeti's setSec while loading: the instance counted on its secondary node."""
        v = self.vals(inst.snode)
        v.inst_sp_forth = nodevals._inst_spindles(v, inst, True, True)
        if inst.forthcoming:
            v.f_dsk_forth -= inst.dsk * inst.uses_disk
            v.f_sp_forth = nodevals._free_spindles(v, inst, True, True)
        else:
            v.load_d += inst.util[2]
            v.inst_sp = nodevals._inst_spindles(v, inst, True, False)
            v.n_sec += 1
            self.P[inst.snode, inst.pnode] += inst.mem * (inst.uses_sec_mem and not inst.forthcoming)
        self.store(inst.snode, v)

    # --- nodes ------------------------------------------------------------------------------

    def _migration_matrix(self, ctags, nodes) -> np.ndarray | None:
        """Which node may migrate to which (Ganeti's migration tags); None: any to any."""
        prefixes = _prefixed(ctags, MIGRATION_PREFIX)
        if not prefixes:
            return None
        allowed = []
        for t in _prefixed(ctags, ALLOW_MIGRATION_PREFIX):
            src, sep, dst = t.partition("::")
            if sep and "::" not in dst:
                allowed.append((src, dst))
        mig = [_tags_under(prefixes, n.tags) for n in nodes]
        rmig = [m | {src for m_tag in m for src, dst in allowed if dst == m_tag} for m in mig]
        return np.array([[mig[a] <= rmig[b] for b in range(len(nodes))] for a in range(len(nodes))], bool)

    def vals(self, idx) -> Vals:
        """The quantities of node ``idx`` (Python numbers) or of nodes ``idx`` (arrays)."""
        if isinstance(idx, (int, np.integer)):
            return Vals(*self.F[:, idx].tolist())
        return Vals(*self.F[:, idx])

    def store(self, idx: int, v: Vals) -> None:
        self.F[:, idx] = [float(x) for x in v.row()]

    def groups_nodes(self) -> list[tuple[int, np.ndarray]]:
        """(group index, its node indices) for every group that has nodes, in group order."""
        return [(g, np.flatnonzero(self.node_group == g)) for g in range(len(self.data.groups))
                if (self.node_group == g).any()]

    def group_instances(self, members: np.ndarray) -> list[Inst]:
        inside = set(members.tolist())
        return [i for i in self.instances if i.pnode in inside]

    def n1_failures(self, online) -> tuple[list[int], set[int]]:
        """The nodes among ``online`` that fail N+1 and the instances on them (Ganeti's
        computeBadItems)."""
        bad = [int(n) for n in online if self.F[INDEX["fail_n1"], n]]
        insts = {i.idx for i in self.instances if i.pnode in bad or (i.snode != NO_NODE and i.snode in bad)}
        return bad, insts

    def tag_conflicts(self, idx=slice(None)) -> np.ndarray:
        """Primaries sharing an exclusion tag with another primary of the node, per node."""
        C = self.C[idx]
        return np.maximum(C - 1, 0).sum(axis=-1).astype(float) if C.shape[-1] else np.zeros(C.shape[:-1])



    # --- what the moves read, for a batch of instances ------------------------------------
    # ``node`` is one node per instance, shape (B, 1), or candidate targets shared by all, (1, T)

    def batches(self, insts: list[Inst], size: int) -> list["Batch"]:
        """The instances in batches of at most ``size`` that share a code path."""
        groups: dict[tuple, list[Inst]] = {}
        for inst in insts:
            groups.setdefault((inst.template, inst.forthcoming, inst.spindles is None), []).append(inst)
        return [Batch(self, g[k:k + size]) for g in groups.values() for k in range(0, len(g), size)]

    def dsrd(self, b: "Batch", node: np.ndarray):
        """Per instance, how many of its desired locations the node(s) lack (Ganeti's desired
        location score)."""
        if not b.n_dsrd.any():
            return 0.0
        if _per_instance(b, node):
            have = (b.D * self.Lm[node[:, 0]]).sum(axis=1)[:, None]
        else:
            have = b.D @ self.Lm[node[0]].T.astype(float)
        return b.n_dsrd - have

    def tag_clash(self, b: "Batch", node: np.ndarray):
        """Whether the node(s) already hold a primary with one of the instance's exclusion tags."""
        if not b.has_tags:
            return False
        if _per_instance(b, node):
            return ((self.C[node[:, 0]] > 0) & b.X).any(axis=1)[:, None]
        return (b.X.astype(float) @ (self.C[node[0]] > 0).T.astype(float)) > 0

    def clashes(self, inst: Inst, node: int) -> bool:
        """tag_clash for one instance and one node."""
        return bool(len(inst.excl)) and bool((self.C[node, inst.excl] > 0).any())

    def missing_locations(self, inst: Inst, node: int) -> float:
        """dsrd for one instance and one node."""
        return float(inst.n_dsrd - self.Lm[node, inst.dsrd].sum()) if inst.n_dsrd else 0.0

    def offline(self, node: np.ndarray) -> np.ndarray:
        return self.F[INDEX["offline"], node].astype(bool)

    def may_migrate(self, src, dst):
        """Whether instances may migrate from src to dst (Ganeti's migration tags)."""
        if self.migration_ok is None:
            return True
        return self.migration_ok[src, dst]

    def peer_max_without(self, node: np.ndarray, primary: np.ndarray) -> np.ndarray:
        """Per row, the most ``node`` reserves for any primary but ``primary`` (0 when none)."""
        rows = self.P[node[:, 0]]
        top = rows.argmax(axis=1)
        best = rows[np.arange(len(rows)), top]
        second = np.partition(rows, -2, axis=1)[:, -2] if rows.shape[1] > 1 else np.zeros(len(rows))
        return np.maximum(np.where(top == primary[:, 0], second, best), 0.0)[:, None]


def _per_instance(b: "Batch", node: np.ndarray) -> bool:
    """Whether ``node`` holds one node per instance (B, 1) rather than shared targets (1, T)."""
    return node.shape == (len(b), 1)


class Batch:
    """Instances weighed together: their numbers as (B, 1) columns, so a move's arithmetic runs
    for every instance and every target node at once. All share what decides the code path
    (template, forthcoming, whether their spindles are known); ``State.batches`` groups them."""

    def __init__(self, st: State, insts: list[Inst]):
        self.insts = insts
        first = insts[0]
        col = lambda values: np.array(values, float)[:, None]  # noqa: E731
        self.mem, self.dsk, self.vcpus = (col([getattr(i, a) for i in insts]) for a in ("mem", "dsk", "vcpus"))
        self.spindle_use = col([i.spindle_use for i in insts])
        self.spindles = None if first.spindles is None else col([i.spindles for i in insts])
        self.uses_mem = col([i.uses_mem for i in insts])
        self.not_offline = col([i.not_offline for i in insts])
        self.uses_sec_mem = col([i.uses_sec_mem for i in insts])
        self.util = tuple(col([i.util[k] for i in insts]) for k in range(4))
        self.loc = col([i.loc for i in insts])
        self.pnode = np.array([i.pnode for i in insts], int)[:, None]
        self.snode = np.array([i.snode for i in insts], int)[:, None]
        self.uses_disk, self.has_secondary = first.uses_disk, first.has_secondary
        self.forthcoming, self.mirror = first.forthcoming, first.mirror
        self.X = np.zeros((len(insts), len(st.excl_tags)), bool)     # exclusion tags
        self.D = np.zeros((len(insts), len(st.locations)))           # desired locations
        for k, i in enumerate(insts):
            self.X[k, i.excl] = True
            self.D[k, i.dsrd] = 1.0
        self.n_dsrd = col([i.n_dsrd for i in insts])
        self.has_tags = bool(self.X.any())

    def __len__(self) -> int:
        return len(self.insts)
