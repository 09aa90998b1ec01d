"""Opcodes: plain records of what a user asked for, each declaring its parameters once.

From each :class:`Param` come the validation here, the gnt-* options (cli/base.py)
and the RAPI body handling, so the three cannot disagree.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar

from genet import errors
from genet.ptypes import (Bool, Dict, Float, Int, JobDepends, ListOf, Maybe,
                          Modification, OneOf, ParamType, Record, Size, String)

REQUIRED = object()
POSITIONAL = "positional"

NAME = String(non_empty=True, max_len=255)
TAG_KINDS = ("cluster", "node", "instance", "nodegroup", "network")


class Param:
    """One opcode parameter: its type, default, documentation and CLI spelling.

    ``cli`` is "--opt", a tuple of spellings, POSITIONAL, or None (RAPI/luxi only).
    A plain class rather than a dataclass: gnt-* commands import this at every start.
    """
    __slots__ = ("name", "type", "default", "doc", "cli", "metavar")

    def __init__(self, name: str, type: ParamType, default: Any = REQUIRED, doc: str = "",
                 cli: str | tuple[str, ...] | None = None, metavar: str | None = None):
        self.name, self.type, self.default, self.doc, self.cli, self.metavar = \
            name, type, default, doc, cli, metavar

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


COMMON_PARAMS = (
    Param("dry_run", Bool(), False, "Only check prerequisites, change nothing", "--dry-run"),
    Param("debug_level", Int(0, 10), 0, "Debug level"),
    Param("priority", Int(-20, 19), 0, "Job priority (-20 highest .. 19 lowest)", "--priority"),
    Param("depends", Maybe(JobDepends()), None, "Jobs this one waits for: [[job id, [statuses]]]"),
    Param("comment", Maybe(String()), None, "Free-form comment stored with the opcode"),
    Param("reason", ListOf(ListOf(ParamType()), 100), [],
          "Trail of reasons: [[source, reason, timestamp]]"),
)

_REGISTRY: dict[str, type["OpCode"]] = {}


def _op_id(class_name: str) -> str:
    return "OP_" + re.sub(r"(?<!^)(?=[A-Z])", "_", class_name[2:]).upper()


class OpCode:
    """Base class; subclasses set PARAMS and a docstring whose first line is the summary."""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    OP_ID: ClassVar[str] = ""
    SUMMARY_FIELD: ClassVar[str | None] = None   # parameter shown in job summaries
    WITH_LU: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.OP_ID = _op_id(cls.__name__)
        _REGISTRY[cls.OP_ID] = cls

    @classmethod
    def all_params(cls) -> tuple[Param, ...]:
        return cls.PARAMS + COMMON_PARAMS

    def __init__(self, **kwargs: Any):
        params = {p.name: p for p in self.all_params()}
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise errors.OpPrereqError(
                f"{self.OP_ID}: unknown parameter(s) {', '.join(unknown)}", errors.ECode.INVAL)
        for name, param in params.items():
            value = kwargs.get(name)
            if value is None and not isinstance(param.type, Maybe):
                value = REQUIRED   # a null from RAPI means "use the default"
            if name in kwargs and value is not REQUIRED:
                try:
                    value = param.type.check(value)
                except ValueError as err:
                    raise errors.OpPrereqError(
                        f"{self.OP_ID}: parameter {name!r}: {err}", errors.ECode.INVAL) from None
            elif param.required:
                raise errors.OpPrereqError(
                    f"{self.OP_ID}: missing required parameter {name!r}", errors.ECode.INVAL)
            else:
                value = _copy_default(param.default)
            setattr(self, name, value)

    def to_dict(self) -> dict:
        data = {p.name: getattr(self, p.name) for p in self.all_params()}
        data["OP_ID"] = self.OP_ID
        return data

    def summary(self) -> str:
        """Ganeti's job summary: ``OP_ID`` without the prefix, with its main field."""
        text = self.OP_ID.removeprefix("OP_")
        if self.SUMMARY_FIELD:
            text += f"({getattr(self, self.SUMMARY_FIELD)})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


def _copy_default(value: Any) -> Any:
    return [*value] if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


def from_dict(data: Any) -> OpCode:
    """Build and validate an opcode from its wire form; OpPrereqError names what is wrong."""
    if not isinstance(data, dict):
        raise errors.OpPrereqError(f"an opcode must be an object, got {type(data).__name__}")
    data = dict(data)
    op_id = data.pop("OP_ID", None)
    cls = _REGISTRY.get(op_id) if isinstance(op_id, str) else None
    if cls is None:
        raise errors.OpPrereqError(f"unknown opcode {op_id!r}", errors.ECode.INVAL)
    return cls(**data)


def registry() -> dict[str, type[OpCode]]:
    return dict(_REGISTRY)


# --- test / debug -----------------------------------------------------------

class OpTestDelay(OpCode):
    """Sleep for a while on the master and/or some nodes (gnt-debug delay)."""
    SUMMARY_FIELD = "duration"
    PARAMS = (
        Param("duration", Float(minimum=0.0), REQUIRED, "Seconds to sleep", POSITIONAL, "DURATION"),
        Param("on_master", Bool(), True, "Sleep on the master", "--no-master"),
        Param("on_nodes", ListOf(NAME), [], "Nodes to sleep on as well", ("-n", "--node")),
        Param("repeat", Int(0, 1000), 0, "Repeat the sleep this many times", ("-r", "--repeat")),
    )


# --- cluster ----------------------------------------------------------------

class OpClusterQuery(OpCode):
    """Return the cluster's information (gnt-cluster info)."""


class OpClusterVerify(OpCode):
    """Check the whole cluster and report every problem with a code."""
    PARAMS = (
        Param("error_codes", Bool(), False, "Print errors in a machine-readable form", "--error-codes"),
        Param("ignore_errors", ListOf(String()), [], "Error codes to ignore", ("-I", "--ignore-errors")),
        Param("verbose", Bool(), False, "Show details", ("-v", "--verbose")),
        Param("max_clock_skew", Float(minimum=0.0), 150.0, "Tolerated clock skew in seconds"),
    )


class OpClusterSetParams(OpCode):
    """Change cluster parameters (gnt-cluster modify)."""
    PARAMS = (
        Param("candidate_pool_size", Maybe(Int(1, 1000)), None,
              "Wanted number of master candidates", ("-C", "--candidate-pool-size")),
        Param("max_running_jobs", Maybe(Int(1, 1000)), None,
              "Jobs run at the same time by the master", "--max-running-jobs"),
        Param("modify_etc_hosts", Maybe(Bool()), None, "Manage /etc/hosts (recorded only)", "--modify-etc-hosts"),
    )


class OpClusterRedistConf(OpCode):
    """Push the configuration and ssconf files to every node again."""


class OpClusterDestroy(OpCode):
    """Tear the cluster down; only the master remains, without cluster state."""


# --- tags -------------------------------------------------------------------

_TAG_PARAMS = (
    Param("kind", OneOf(*TAG_KINDS), REQUIRED, "Kind of object"),
    Param("name", Maybe(String()), None, "Object name (none for the cluster)"),
)
TAG = String(non_empty=True, max_len=128)


class OpTagsGet(OpCode):
    """List the tags of an object."""
    PARAMS = _TAG_PARAMS


class OpTagsSet(OpCode):
    """Add tags to an object."""
    PARAMS = _TAG_PARAMS + (Param("tags", ListOf(TAG, 4096), REQUIRED, "Tags to add", POSITIONAL, "TAG"),)


class OpTagsDel(OpCode):
    """Remove tags from an object."""
    PARAMS = _TAG_PARAMS + (Param("tags", ListOf(TAG, 4096), REQUIRED, "Tags to remove", POSITIONAL, "TAG"),)


# --- nodes ------------------------------------------------------------------

class OpNodeAdd(OpCode):
    """Add a prepared node (noded running, certificate in place) to the cluster."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Name of the new node", POSITIONAL, "NODE"),
        Param("primary_ip", Maybe(String()), None, "Primary address (default: resolved name)"),
        Param("secondary_ip", Maybe(String()), None, "Replication address", ("-s", "--secondary-ip")),
        Param("readd", Bool(), False, "Re-add a node that was in the cluster", "--readd"),
        Param("group", Maybe(String()), None, "Node group", ("-g", "--node-group")),
        Param("master_capable", Maybe(Bool()), None, "May become master or candidate", "--master-capable"),
        Param("vm_capable", Maybe(Bool()), None, "May run instances", "--vm-capable"),
    )


class OpNodeRemove(OpCode):
    """Remove a node from the cluster."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (Param("node_name", NAME, REQUIRED, "Node to remove", POSITIONAL, "NODE"),)


class OpNodeSetParams(OpCode):
    """Change a node's role flags (gnt-node modify)."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Node to change", POSITIONAL, "NODE"),
        Param("force", Bool(), False, "Force the change", ("-f", "--force")),
        Param("master_candidate", Maybe(Bool()), None, "Master candidate flag", ("-C", "--master-candidate")),
        Param("offline", Maybe(Bool()), None, "Offline flag", ("-O", "--offline")),
        Param("drained", Maybe(Bool()), None, "Drained flag", ("-D", "--drained")),
        Param("auto_promote", Bool(), False, "Promote other nodes to keep the candidate pool full", "--auto-promote"),
        Param("master_capable", Maybe(Bool()), None, "May become master or candidate", "--master-capable"),
        Param("vm_capable", Maybe(Bool()), None, "May run instances", "--vm-capable"),
        Param("secondary_ip", Maybe(String()), None, "Replication address", ("-s", "--secondary-ip")),
    )


# --- instances --------------------------------------------------------------

DISK_TEMPLATES = ("diskless", "file", "sharedfile")
HYPERVISORS = ("fake", "kvm")
INSTANCE_NAME = String(non_empty=True, max_len=63)
DISK = Record("disk", {"size": Size(), "mode": OneOf("rw", "ro"), "format": OneOf("raw", "qcow2"),
                       "name": String()}, required=("size",))
NIC = Record("nic", {"mode": OneOf("bridged", "routed"), "link": String(), "mac": String(),
                     "ip": Maybe(String()), "vlan": Maybe(String()), "name": String()})
BEPARAMS = Record("beparams", {"memory": Size(), "maxmem": Size(), "minmem": Size(),
                               "vcpus": Int(1, 256), "auto_balance": Bool()})
_INSTANCE = Param("instance_name", INSTANCE_NAME, REQUIRED, "Instance name", POSITIONAL, "INSTANCE")


class HvParams(Dict):
    """Hypervisor parameters; the CLI form may name the hypervisor first (Ganeti's ``kvm:k=v``)."""

    def parse(self, text):
        head, colon, rest = text.partition(":")
        if colon and "=" not in head and "," not in head:
            if head not in HYPERVISORS:
                raise ValueError(f"unknown hypervisor {head!r} in {text!r} (known: {', '.join(HYPERVISORS)})")
            text = rest
        return super().parse(text)


class OpInstanceCreate(OpCode):
    """Create an instance: disks on its node, config entry, optionally started."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("disk_template", OneOf(*DISK_TEMPLATES), REQUIRED, "Disk template", ("-t", "--disk-template")),
        Param("disks", ListOf(DISK, 16), [], "Disks: size (MiB or with unit), mode, format", "--disk",
              "N:size=SIZE[,mode=rw|ro][,format=raw|qcow2]"),
        Param("nics", ListOf(NIC, 8), [], "NICs: mode, link, mac, ip", "--net",
              "N:[mode=bridged|routed][,link=LINK][,mac=MAC][,ip=IP]"),
        Param("pnode", Maybe(NAME), None, "Primary node (default: the one with most free memory)",
              ("-n", "--node")),
        Param("os_type", Maybe(String()), None, "Operating system definition", ("-o", "--os-type")),
        Param("osparams", Dict(), {}, "OS parameters", ("-O", "--os-parameters"), "KEY=VALUE,..."),
        Param("hypervisor", Maybe(OneOf(*HYPERVISORS)), None, "Hypervisor (default: the cluster's)",
              "--hypervisor"),
        Param("beparams", BEPARAMS, {}, "Backend parameters: memory, maxmem, minmem, vcpus",
              ("-B", "--backend-parameters"), "KEY=VALUE,..."),
        Param("hvparams", HvParams(), {}, "Hypervisor parameters", ("-H", "--hypervisor-parameters"),
              "[HV:]KEY=VALUE,..."),
        Param("start", Bool(), True, "Start the instance after creating it", "--no-start"),
        Param("no_install", Bool(), False, "Do not run the OS create script", "--no-install"),
    )


class OpInstanceRemove(OpCode):
    """Stop an instance and remove its disks and config entry."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
        Param("ignore_failures", Bool(), False, "Remove from the config even if the node fails",
              "--ignore-failures"),
    )


class OpInstanceStartup(OpCode):
    """Start an instance on its primary node."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (_INSTANCE,)


class OpInstanceShutdown(OpCode):
    """Stop an instance (ACPI power-off, killed after the timeout)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("timeout", Int(0, 3600), 120, "Seconds to wait for the guest to power off", "--timeout"),
    )


class OpInstanceReboot(OpCode):
    """Reboot an instance: soft (ACPI), hard (reset) or full (stop and start)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("reboot_type", OneOf("soft", "hard", "full"), "soft", "Kind of reboot", "--type"),
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
    )


class OpInstanceConsole(OpCode):
    """How to reach a running instance's console (gnt-instance console)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (_INSTANCE,)


_TARGET = Param("target_node", Maybe(NAME), None, "Target node (default: the one with most free memory)",
                ("-n", "--target-node"))


class OpInstanceMigrate(OpCode):
    """Move a running instance to another node without stopping it."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE, _TARGET,
        Param("mode", Maybe(OneOf("live", "non-live")), None, "Migration mode (default live)",
              "--migration-mode"),
        Param("live", Maybe(Bool()), None, "Ganeti's older form of mode (RAPI): false is non-live"),
        Param("non_live", Bool(), False, "Pause the guest while its memory moves", "--non-live"),
        Param("cleanup", Bool(), False, "Recover from a failed migration: keep exactly one copy running",
              "--cleanup"),
        Param("allow_failover", Bool(), False, "Fail over instead when the instance cannot migrate",
              "--allow-failover"),
    )


class OpInstanceFailover(OpCode):
    """Stop an instance and start it on another node (shared or mirrored disks)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE, _TARGET,
        Param("ignore_consistency", Bool(), False, "Go ahead even if the primary node is down",
              "--ignore-consistency"),
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
    )


class OpNodeMigrate(OpCode):
    """Live-migrate every instance off a node."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Node to empty", POSITIONAL, "NODE"),
        Param("mode", Maybe(OneOf("live", "non-live")), None, "Migration mode (default live)",
              "--migration-mode"),
        _TARGET,
    )


class OpNodeFailover(OpCode):
    """Fail over every instance whose primary is the node (shared disks), e.g. a dead node."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Node to empty", POSITIONAL, "NODE"),
        Param("ignore_consistency", Bool(), False, "Go ahead even if the node is down", "--ignore-consistency"),
        _TARGET,
    )


class OpNodeEvacuate(OpCode):
    """Move every primary instance off a node (migrate running ones, fail over the others)."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Node to empty", POSITIONAL, "NODE"),
        Param("primary_only", Bool(), False, "Move only the instances whose primary is the node",
              ("-p", "--primary-only")),
        Param("secondary_only", Bool(), False, "Move only the mirrors whose secondary is the node",
              ("-s", "--secondary-only")),
        Param("remote_node", Maybe(NAME), None, "Target node (default: most free memory)",
              ("-n", "--new-secondary")),
    )



class OpInstanceGrowDisk(OpCode):
    """Grow one disk of an instance (the guest sees it after its next boot)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("disk", Int(0, 15), REQUIRED, "Index of the disk", POSITIONAL, "DISK"),
        Param("amount", Size(), REQUIRED, "How much to add (or the new size with --absolute)",
              POSITIONAL, "AMOUNT"),
        Param("absolute", Bool(), False, "AMOUNT is the new size, not an increase", "--absolute"),
    )


class OpInstanceActivateDisks(OpCode):
    """Make an instance's disks usable on its primary node; reports where they are."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (_INSTANCE,)


class OpInstanceDeactivateDisks(OpCode):
    """Release an instance's disks on its nodes (the instance must be stopped)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (_INSTANCE, Param("force", Bool(), False, "Deactivate even if the instance runs", ("-f", "--force")))


class OpInstanceRename(OpCode):
    """Give a stopped instance a new name (its disks follow)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("new_name", INSTANCE_NAME, REQUIRED, "New name", POSITIONAL, "NEW_NAME"),
    )


class OpInstanceSetParams(OpCode):
    """Change an instance: parameters, and disks or NICs added or removed (hot-plugged when running)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("beparams", BEPARAMS, {}, "Backend parameters to change", ("-B", "--backend-parameters"),
              "KEY=VALUE,..."),
        Param("hvparams", HvParams(), {}, "Hypervisor parameters to change",
              ("-H", "--hypervisor-parameters"), "[HV:]KEY=VALUE,..."),
        Param("disks", ListOf(Modification(DISK), 16), [], "Disks to add or remove", "--disk",
              "add:size=SIZE[,...]|N:remove"),
        Param("nics", ListOf(Modification(NIC), 8), [], "NICs to add or remove", "--net",
              "add:[mode=...,link=...,mac=...]|N:remove"),
        Param("hotplug", Bool(), True, "Apply disk and NIC changes to the running guest", "--no-hotplug"),
    )



class OpInstanceReinstall(OpCode):
    """Run the OS create script again on a stopped instance's disks (optionally another OS)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("os_type", Maybe(String()), None, "Install this OS instead", ("-o", "--os-type")),
        Param("osparams", Maybe(Dict()), None, "New OS parameters", ("-O", "--os-parameters"), "KEY=VALUE,..."),
    )


class OpOsDiagnose(OpCode):
    """Report the OS definitions on every node (gnt-os list, info, diagnose)."""



class OpInstanceMove(OpCode):
    """Move a file-disk instance to another node: stop, copy its disks, start there."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("target_node", NAME, REQUIRED, "Node to move to", ("-n", "--target-node")),
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
    )
