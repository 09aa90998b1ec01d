"""The cluster as the htools see it: groups, nodes, instances, tags and instance policies.

Plain records, filled by a backend (text.py reads Ganeti's text format) and read by
state.py, which lays them out for computation. Memory and disk are MiB, as in Ganeti.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Ganeti's instance states (Types.hs InstanceStatus) and which of them hold memory on the primary
INSTANCE_STATUSES = ("ADMIN_down", "ADMIN_offline", "ERROR_down", "ERROR_up", "ERROR_nodedown",
                     "ERROR_nodeoffline", "running", "USER_down", "ERROR_wrongnode")
MEMORY_STATUSES = frozenset({"ERROR_up", "ERROR_nodedown", "ERROR_nodeoffline", "running",
                             "ERROR_wrongnode"})
RUNNING_STATUSES = frozenset({"running", "ERROR_up"})
ALLOC_POLICIES = ("preferred", "last_resort", "unallocable")

# disk templates: how an instance's disks follow it (Ganeti's templateMirrorType; genet's
# "mirror" keeps a copy on a secondary node as drbd does), whether they use the nodes' local
# disk space, and whether hbal may move them at all (Ganeti's movableDiskTemplates)
MIRROR_NONE, MIRROR_INTERNAL, MIRROR_EXTERNAL = "none", "internal", "external"
TEMPLATES = {  # name: (mirror type, uses local storage, movable)
    "diskless": (MIRROR_EXTERNAL, False, False),
    "file": (MIRROR_NONE, False, False),
    "sharedfile": (MIRROR_EXTERNAL, False, True),
    "plain": (MIRROR_NONE, True, False),
    "blockdev": (MIRROR_EXTERNAL, False, True),
    "drbd": (MIRROR_INTERNAL, True, True),
    "mirror": (MIRROR_INTERNAL, True, True),
    "rbd": (MIRROR_EXTERNAL, False, True),
    "ext": (MIRROR_EXTERNAL, False, True),
    "gluster": (MIRROR_EXTERNAL, False, True),
}


@dataclass
class ISpec:
    """One instance spec: the bounds (or standard values) of a policy."""
    memory_size: int
    cpu_count: int
    disk_size: int
    disk_count: int
    nic_count: int
    spindle_use: int


@dataclass
class IPolicy:
    """An instance policy: min/max spec pairs, the standard spec, allowed templates, ratios."""
    minmax: list[tuple[ISpec, ISpec]]
    std: ISpec
    disk_templates: list[str]
    vcpu_ratio: float
    spindle_ratio: float


def default_ipolicy() -> IPolicy:
    """Ganeti's default policy (what htools assume where a file carries none)."""
    return IPolicy(minmax=[(ISpec(128, 1, 1024, 1, 1, 1), ISpec(32768, 8, 1024 * 1024, 16, 8, 12))],
                   std=ISpec(128, 1, 1024, 1, 1, 1), disk_templates=[t for t in TEMPLATES if t != "mirror"],
                   vcpu_ratio=4.0, spindle_ratio=32.0)


@dataclass
class Group:
    name: str
    uuid: str
    alloc_policy: str = "preferred"
    tags: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    ipolicy: IPolicy = field(default_factory=default_ipolicy)


@dataclass
class Node:
    """A node's sizes: t_ totals, f_ free (state of world), n_mem what the node itself uses."""
    name: str
    t_mem: float
    n_mem: int
    f_mem: int
    t_dsk: float
    f_dsk: int
    t_cpu: float
    group: str                      # the group's UUID
    offline: bool = False
    master: bool = False
    spindles: int = 1
    tags: list[str] = field(default_factory=list)
    excl_storage: bool = False
    free_spindles: int = 0
    n_cpu: int = 1                  # CPUs the node's own OS uses
    cpu_speed: float = 1.0


@dataclass
class Instance:
    name: str
    mem: int
    dsk: int
    vcpus: int
    status: str
    auto_balance: bool
    pnode: str
    snode: str | None
    template: str
    tags: list[str] = field(default_factory=list)
    spindle_use: int = 1
    spindles: int | None = None     # disk spindles (exclusive storage), None when unknown
    forthcoming: bool = False
    util: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)   # cpu, mem, disk, net load
    disks: list[tuple[int, int | None]] | None = None   # (size, spindles) each; None: one disk of dsk
    nics: list[str | None] = field(default_factory=list)   # the network each NIC is on, if any

    @property
    def mirror(self) -> str:
        return TEMPLATES[self.template][0]

    @property
    def disk_list(self) -> list[tuple[int, int | None]]:
        return self.disks if self.disks is not None else [(self.dsk, self.spindles)]


@dataclass
class ClusterData:
    groups: list[Group]
    nodes: list[Node]
    instances: list[Instance]
    tags: list[str] = field(default_factory=list)
    ipolicy: IPolicy = field(default_factory=default_ipolicy)
    hypervisor: str | None = None       # the cluster's (live backends); a text file does not say
    measured: object | None = None      # hbal --mond's loads (genet.htools.mond.Loads), read with the rest
    first_node_index: int = 0           # how Ganeti's backend numbered the nodes (from 1 for --simulate)
