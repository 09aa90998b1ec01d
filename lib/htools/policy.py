"""Whether an instance fits an instance policy, as the htools check it (Ganeti's
instMatchesPolicy): the first bound it breaks, as a failure code per candidate node.
"""
from __future__ import annotations

import numpy as np

from genet.htools.cluster import IPolicy, ISpec
from genet.htools.nodevals import FAIL_CPU, FAIL_DISK, FAIL_DISK_COUNT, FAIL_INTERNAL, FAIL_MEM, FAIL_SPINDLES, INDEX


def _compare(below: bool, inst, spec: ISpec, excl: bool) -> int:
    """Ganeti's instCompareISpec: with ``below`` whether the instance exceeds ``spec`` (a max),
    else whether it falls short of it (a min)."""
    def off(value, bound) -> bool:
        return value > bound if below else value < bound
    if off(inst.mem, spec.memory_size):
        return FAIL_MEM
    if any(off(size, spec.disk_size) for size, _ in inst.disks):
        return FAIL_DISK
    if off(inst.vcpus, spec.cpu_count):
        return FAIL_CPU
    if excl:
        spindles = [sp for _, sp in inst.disks]
        if None in spindles or off(sum(spindles), spec.spindle_use):
            return FAIL_SPINDLES
    elif off(inst.spindle_use, spec.spindle_use):
        return FAIL_SPINDLES
    if inst.template != "diskless" and off(len(inst.disks), spec.disk_count):
        return FAIL_DISK_COUNT
    return 0


def violation(inst, pol: IPolicy, excl: bool) -> int:
    """0 if the instance fits one of the policy's min/max pairs and its disk template is
    allowed; else the failure: the first pair's when none fits (Ganeti tries them last first)."""
    if pol.minmax:
        code = FAIL_INTERNAL
        for lo, hi in reversed(pol.minmax):
            code = _compare(False, inst, lo, excl) or _compare(True, inst, hi, excl)
            if not code:
                break
        if code:
            return code
    return 0 if inst.template in pol.disk_templates else FAIL_DISK


def policy_failures(st, inst, nodes) -> np.ndarray:
    """The policy failure of ``inst`` on each node (its group's policy, its storage), worked
    out once per (group, exclusive storage) pair among the nodes."""
    nodes = np.asarray(nodes, int)
    keys = st.node_group[nodes] * 2 + st.F[INDEX["excl"], nodes].astype(int)
    kinds, where = np.unique(keys, return_inverse=True)
    codes = np.array([violation(inst, st.data.groups[k // 2].ipolicy, bool(k % 2)) for k in kinds.tolist()], int)
    return codes[where] if len(nodes) else np.zeros(0, int)
