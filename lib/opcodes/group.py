"""Opcodes of node groups, and the parameters groups override."""
from __future__ import annotations

from genet.opcodes.base import NAME, OBJECT_NAME, OpCode, POSITIONAL, Param, REQUIRED, disk_templates, hypervisors
from genet.ptypes import Bool, Dict, Float, Int, ListOf, Maybe, OneOf, ParamType, Record, Size, String


ALLOC_POLICIES = ("preferred", "last_resort", "unallocable")
# templates of Ganeti's that genet has not (yet): a group or policy may still name them, so the
# settings of a Ganeti cluster carry over
GANETI_ONLY_TEMPLATES = ("blockdev", "rbd", "ext", "gluster")


def diskparam_templates() -> tuple[str, ...]:
    """Disk templates a group or policy may hold settings for."""
    return (*disk_templates(), *GANETI_ONLY_TEMPLATES)


RESET = "default"     # a group parameter set to this goes back to the cluster's value


class ParamOverrides(Record):
    """Parameters a group sets over the cluster's; the value ``default`` drops one again."""

    def check(self, value):
        if not isinstance(value, dict):
            return super().check(value)
        resets = {k: v for k, v in value.items() if v == RESET and k in self.fields}
        return {**super().check({k: v for k, v in value.items() if k not in resets}), **resets}

    def parse(self, text):
        typed = {}
        for key, value in Dict().parse(text).items():
            field = self.fields.get(key)
            plain = field is None or not isinstance(value, str) or value == RESET
            typed[key] = value if plain else field.parse(value)
        return self.check(typed)


class PerName(ParamType):
    """Parameters per name of something (``{name: {key: value}}``); CLI ``NAME:key=value,...``.
    A subclass says what the names are (``what``) and where they come from (``names``, a
    registry: gnt-* commands leave the check to the master, see ptypes.checked_by_master)."""
    what = "name"

    @staticmethod
    def names() -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return f"{self.what} parameters"

    schema = {"type": "object", "additionalProperties": {"type": "object"}}

    def check(self, value):
        if not isinstance(value, dict):
            raise ValueError(f"expected an object of {self.what}s, got {type(value).__name__}")
        known = OneOf(self.names)
        out = {}
        for name, params in value.items():
            try:
                known.check(name)
            except ValueError:
                raise ValueError(f"unknown {self.what} {name!r} (known: {', '.join(self.names())})") from None
            if not isinstance(params, dict) or not all(isinstance(k, str) and k for k in params):
                raise ValueError(f"{name}: expected an object of parameters")
            for key, item in params.items():
                if not isinstance(item, (str, int, float, bool)):
                    raise ValueError(f"{name} {key}: expected a string, number or boolean")
            out[name] = dict(params)
        return out

    def parse(self, text):
        name, colon, rest = text.partition(":")
        if not colon or not name:
            raise ValueError(f"use {self.what.upper().replace(' ', '_')}:key=value,... (got {text!r})")
        return self.check({name: Dict().parse(rest)})


class DiskParams(PerName):
    """Parameters per disk template (a group's or the cluster's diskparams)."""
    what = "disk template"
    names = staticmethod(diskparam_templates)


class HvParamsByHypervisor(PerName):
    """Parameters per hypervisor (the cluster's hvparams; an OS's, os_hvp)."""
    what = "hypervisor"
    names = staticmethod(hypervisors)


NDPARAMS = ParamOverrides("ndparams", {
    "oob_program": String(), "spindle_count": Int(1, 1024), "exclusive_storage": Bool(), "ovs": Bool(),
    "ovs_name": String(), "ovs_link": String(), "ssh_port": Int(1, 65535), "cpu_speed": Float(minimum=0.0)})
# the specs an instance policy bounds, each with its type (sizes take units: 4G)
ISPECS = {"memory-size": Size(), "cpu-count": Int(0), "disk-count": Int(0), "disk-size": Size(),
          "nic-count": Int(0), "spindle-use": Int(0)}
IPOLICY = ParamOverrides("ipolicy", {
    "minmax": ListOf(Record("minmax", {"min": Dict(), "max": Dict()}, required=("min", "max")), 16),
    "std": Dict(), "disk-templates": ListOf(OneOf(diskparam_templates), 16),
    "vcpu-ratio": Float(minimum=0.0), "spindle-ratio": Float(minimum=0.0)})


def storage_types() -> tuple[str, ...]:
    """The storage types that report their units (imported when asked, as disk_templates)."""
    from genet.storage import units
    return units.names()


class PerStorageType(PerName):
    """Values per storage type (lvm-vg, file, ...): a node's or group's disk state."""
    what = "storage type"

    @staticmethod
    def names() -> tuple[str, ...]:
        return storage_types()


# Ganeti's static resource states (what a node, group or the cluster offers an allocator, set by
# hand): its keys, each with the value the cluster's state takes when the key is left out
HV_STATE_DEFAULTS = {"cpu_node": 1, "cpu_total": 1, "mem_hv": 0, "mem_node": 0, "mem_total": 0}
DISK_STATE_DEFAULTS = {"disk_total": 0, "disk_reserved": 0, "disk_overhead": 0}


class ResourceState(PerName):
    """A static resource state per name: whole numbers for Ganeti's keys only (``default``
    drops a key again, as for parameters)."""
    DEFAULTS: dict[str, int] = {}

    def check(self, value):
        out = super().check(value)
        for name, values in out.items():
            unknown = sorted(set(values) - set(self.DEFAULTS))
            if unknown:
                raise ValueError(f"{name}: unknown key(s) {', '.join(unknown)} (known: {', '.join(self.DEFAULTS)})")
            try:
                out[name] = {k: v if v == RESET else int(v) for k, v in values.items()}
            except ValueError:
                raise ValueError(f"{name}: the values must be whole numbers, got {values}") from None
        return out


class HvState(ResourceState, HvParamsByHypervisor):
    DEFAULTS = HV_STATE_DEFAULTS


class DiskState(ResourceState, PerStorageType):
    DEFAULTS = DISK_STATE_DEFAULTS


# recorded and shown
HV_STATE = Param("hv_state", Maybe(HvState()), None,
                  "Hypervisor resource state: HYPERVISOR:mem_total=...,cpu_total=...", "--hypervisor-state",
                  "HYPERVISOR:KEY=VALUE,...")
DISK_STATE = Param("disk_state", Maybe(DiskState()), None,
                    "Disk resource state: STORAGE_TYPE:KEY=VALUE,...", "--disk-state", "STORAGE_TYPE:KEY=VALUE,...")
_GROUP = Param("group_name", OBJECT_NAME, REQUIRED, "Node group name", POSITIONAL, "GROUP")
_GROUP_SETTINGS = (
    Param("alloc_policy", Maybe(OneOf(*ALLOC_POLICIES)), None,
          "Allocation policy: preferred, last_resort or unallocable", "--alloc-policy", "POLICY"),
    Param("ndparams", Maybe(NDPARAMS), None, "Node parameters", "--node-parameters", "KEY=VALUE,..."),
    Param("diskparams", Maybe(DiskParams()), None, "Parameters of one disk template",
          ("-D", "--disk-parameters"), "TEMPLATE:KEY=VALUE,..."),
    Param("ipolicy", Maybe(IPOLICY), None, "Instance policy (the --ipolicy-* options)"),
    HV_STATE, DISK_STATE,
)


class OpGroupAdd(OpCode):
    """Create an empty node group."""
    SUMMARY_FIELD = "group_name"
    PARAMS = (Param("group_name", OBJECT_NAME, REQUIRED, "Node group name", POSITIONAL, "GROUP", rapi="name"),
              ) + _GROUP_SETTINGS


class OpGroupRemove(OpCode):
    """Remove an empty node group (never the last one)."""
    SUMMARY_FIELD = "group_name"
    PARAMS = (_GROUP,)


class OpGroupRename(OpCode):
    """Give a node group a new name."""
    SUMMARY_FIELD = "group_name"
    PARAMS = (_GROUP, Param("new_name", OBJECT_NAME, REQUIRED, "New name", POSITIONAL, "NEW_NAME"))


class OpGroupSetParams(OpCode):
    """Change a node group's allocation policy and parameters (gnt-group modify)."""
    SUMMARY_FIELD = "group_name"
    PARAMS = (_GROUP,) + _GROUP_SETTINGS


class OpGroupAssignNodes(OpCode):
    """Move nodes into a node group."""
    SUMMARY_FIELD = "group_name"
    PARAMS = (
        _GROUP,
        Param("force", Bool(), False, "Move even if an instance ends up split between groups or"
              " loses its network", "--force", query="force"),
        Param("nodes", ListOf(NAME, 10000), REQUIRED, "Nodes to move", POSITIONAL, "NODE"),
    )


# moving instances to other groups (gnt-instance change-group, gnt-group evacuate)
TARGET_GROUPS = Param("target_groups", ListOf(NAME, 1000), [], "Node groups to move to (default: every other"
                      " group)", "--to", "GROUP")
GROUP_ALLOCATOR = Param("iallocator", Maybe(String(non_empty=True)), None, "Allocator choosing the target nodes:"
                        " hail, for which genet's built-in choice (most free memory) stands in",
                        ("-I", "--iallocator"), "NAME")
GROUP_EARLY_RELEASE = Param("early_release", Bool(), False, "Release the locks of a mirrored instance's"
                            " replace-disks steps as soon as possible (genet's keep them to the end)")


class OpGroupEvacuate(OpCode):
    """Move every instance off a node group's nodes to other groups: one job per instance."""
    SUMMARY_FIELD = "group_name"
    PARAMS = (
        _GROUP, GROUP_EARLY_RELEASE, GROUP_ALLOCATOR, TARGET_GROUPS,
        Param("sequential", Bool(), False, "Run the instances' moves one after another", "--sequential"),
        Param("force_failover", Bool(), False, "Fail over (stop and start) instead of migrating running"
              " instances", "--force-failover"),
    )
