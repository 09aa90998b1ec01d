"""Opcodes: plain records of what a user asked for, each declaring its parameters once.

From each :class:`Param` come the validation here, the gnt-* options (cli/base.py)
and the RAPI body handling, so the three cannot disagree.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar

from genet import errors
from genet.hypervisor import base as hypervisor_base
from genet.storage import base as storage_base
from genet.ptypes import (Bool, Dict, Float, Int, JobDepends, ListOf, Maybe,
                          Modification, ObjectName, OneOf, ParamType, Record, Size, String,
                          Tag)

REQUIRED = object()
POSITIONAL = "positional"

NAME = String(non_empty=True, max_len=255)
OBJECT_NAME = ObjectName()
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


class VgName(String):
    """An LVM volume group name (lvm2's rule: up to 127 of letters, digits and ``+_.-``)."""
    name = "volume group name"
    schema = {"type": "string", "pattern": r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$"}

    def __init__(self):
        super().__init__(non_empty=True, max_len=127)

    def check(self, value):
        from genet.storage.lvm import check_vg_name     # one rule, kept with the plain template
        return check_vg_name(super().check(value))


class OpClusterSetParams(OpCode):
    """Change cluster parameters (gnt-cluster modify)."""
    PARAMS = (
        Param("candidate_pool_size", Maybe(Int(1, 1000)), None,
              "Wanted number of master candidates", ("-C", "--candidate-pool-size")),
        Param("max_running_jobs", Maybe(Int(1, 1000)), None,
              "Jobs run at the same time by the master", "--max-running-jobs"),
        Param("modify_etc_hosts", Maybe(Bool()), None, "Manage /etc/hosts (recorded only)", "--modify-etc-hosts"),
        Param("vg_name", Maybe(VgName()), None, "LVM volume group of plain disks", "--vg-name", "VG"),
    )


class OpClusterVerifyDisks(OpCode):
    """Check every mirrored disk and mirror again where a secondary is back (gnt-cluster verify-disks)."""


class OpClusterRedistConf(OpCode):
    """Push the configuration and ssconf files to every node again."""


class OpClusterDestroy(OpCode):
    """Tear the cluster down; only the master remains, without cluster state."""


# --- tags -------------------------------------------------------------------

_TAG_PARAMS = (
    Param("kind", OneOf(*TAG_KINDS), REQUIRED, "Kind of object"),
    Param("name", Maybe(String()), None, "Object name (none for the cluster)"),
)
TAG = Tag()


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


# --- node groups ------------------------------------------------------------

ALLOC_POLICIES = ("preferred", "last_resort", "unallocable")
# templates of Ganeti's that genet has not (yet): a group or policy may still name them, so the
# settings of a Ganeti cluster carry over
GANETI_ONLY_TEMPLATES = ("blockdev", "rbd", "ext", "gluster")


def diskparam_templates() -> tuple[str, ...]:
    """Disk templates a group or policy may hold settings for."""
    return (*storage_base.names(), *GANETI_ONLY_TEMPLATES)


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


class DiskParams(ParamType):
    """Parameters per disk template, ``{template: {key: value}}``; CLI ``TEMPLATE:key=value,...``."""
    name = "disk parameters"
    schema = {"type": "object", "additionalProperties": {"type": "object"}}

    def check(self, value):
        if not isinstance(value, dict):
            raise ValueError(f"expected an object of disk templates, got {type(value).__name__}")
        out = {}
        for template, params in value.items():
            if template not in diskparam_templates():
                raise ValueError(f"unknown disk template {template!r} (known: {', '.join(diskparam_templates())})")
            if not isinstance(params, dict) or not all(isinstance(k, str) and k for k in params):
                raise ValueError(f"{template}: expected an object of parameters")
            for key, item in params.items():
                if not isinstance(item, (str, int, float, bool)):
                    raise ValueError(f"{template} {key}: expected a string, number or boolean")
            out[template] = dict(params)
        return out

    def parse(self, text):
        template, colon, rest = text.partition(":")
        if not colon or not template:
            raise ValueError(f"use TEMPLATE:key=value,... (got {text!r})")
        return self.check({template: Dict().parse(rest)})


NDPARAMS = ParamOverrides("ndparams", {
    "oob_program": String(), "spindle_count": Int(1, 1024), "exclusive_storage": Bool(), "ovs": Bool(),
    "ovs_name": String(), "ovs_link": String(), "ssh_port": Int(1, 65535), "cpu_speed": Float(minimum=0.0)})
IPOLICY = ParamOverrides("ipolicy", {
    "minmax": ListOf(Record("minmax", {"min": Dict(), "max": Dict()}, required=("min", "max")), 16),
    "std": Dict(), "disk-templates": ListOf(OneOf(diskparam_templates), 16),
    "vcpu-ratio": Float(minimum=0.0), "spindle-ratio": Float(minimum=0.0)})
_GROUP = Param("group_name", OBJECT_NAME, REQUIRED, "Node group name", POSITIONAL, "GROUP")
_GROUP_SETTINGS = (
    Param("alloc_policy", Maybe(OneOf(*ALLOC_POLICIES)), None,
          "Allocation policy: preferred, last_resort or unallocable", "--alloc-policy", "POLICY"),
    Param("ndparams", Maybe(NDPARAMS), None, "Node parameters", "--node-parameters", "KEY=VALUE,..."),
    Param("diskparams", Maybe(DiskParams()), None, "Parameters of one disk template",
          ("-D", "--disk-parameters"), "TEMPLATE:KEY=VALUE,..."),
    Param("ipolicy", Maybe(IPOLICY), None, "Instance policy (recorded, not enforced yet)"),
)


class OpGroupAdd(OpCode):
    """Create an empty node group."""
    SUMMARY_FIELD = "group_name"
    PARAMS = (_GROUP,) + _GROUP_SETTINGS


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
              " loses its network", "--force"),
        Param("nodes", ListOf(NAME, 10000), REQUIRED, "Nodes to move", POSITIONAL, "NODE"),
    )


# --- networks ---------------------------------------------------------------

NIC_MODES = ("bridged", "routed", "openvswitch")
CLEAR = "none"        # what a modify sets gateway, network6, gateway6 or mac_prefix to, to remove them


class Address(ParamType):
    """An IPv4 or IPv6 address or network, normalised (checked by genet.network_pool)."""

    def __init__(self, kind: str):
        self.kind = kind    # network, network6, address or address6
        self.name = {"network": "IPv4 network", "network6": "IPv6 network", "address": "IPv4 address",
                     "address6": "IPv6 address"}[kind]
        self.schema = {"type": "string"}

    def check(self, value):
        if not isinstance(value, str):
            raise ValueError(f"expected an {self.name} as a string, got {type(value).__name__}")
        from genet import network_pool     # ipaddress and bitarray only where needed
        return str(getattr(network_pool, f"parse_{self.kind}")(value))


class AddressList(ParamType):
    """IPv4 addresses; on the CLI comma-separated (Ganeti's ``--add-reserved-ips=IP,IP``)."""
    name = "list of IPv4 addresses"
    schema = {"type": "array", "items": {"type": "string"}}

    def check(self, value):
        return ListOf(Address("address"), 65536).check(value)

    def parse(self, text):
        return self.check([part.strip() for part in text.split(",") if part.strip()])


class MacPrefix(ParamType):
    name = "MAC prefix"
    schema = {"type": "string"}

    def check(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){2}", value):
            raise ValueError(f"{value!r} is not a MAC prefix of three octets (like aa:00:00)")
        return value.lower()


class Clearable(ParamType):
    """A value a modify may also set to ``none``, which removes it."""

    def __init__(self, inner: ParamType):
        self.inner = inner
        self.name = f"{inner.name} or {CLEAR}"
        self.schema = inner.schema

    def check(self, value):
        return CLEAR if value == CLEAR else self.inner.check(value)


_NETWORK = Param("network_name", OBJECT_NAME, REQUIRED, "Network name", POSITIONAL, "NETWORK_NAME")
_GROUP_OF_NETWORK = Param("group_name", OBJECT_NAME, REQUIRED, "Node group (the CLI names groups after the network)")


class OpNetworkAdd(OpCode):
    """Define an IPv4 network with its address pool (connected to no group yet)."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (
        _NETWORK,
        Param("network", Address("network"), REQUIRED, "IPv4 network in CIDR notation", "--network", "NETWORK"),
        Param("gateway", Maybe(Address("address")), None, "IPv4 gateway", "--gateway", "GATEWAY"),
        Param("network6", Maybe(Address("network6")), None, "IPv6 network in CIDR notation", "--network6",
              "NETWORK6"),
        Param("gateway6", Maybe(Address("address6")), None, "IPv6 gateway", "--gateway6", "GATEWAY6"),
        Param("mac_prefix", Maybe(MacPrefix()), None, "MAC prefix of the network's NICs", "--mac-prefix",
              "MACPREFIX"),
        Param("add_reserved_ips", Maybe(AddressList()), None, "Addresses to reserve externally",
              "--add-reserved-ips", "IP,..."),
        Param("conflicts_check", Bool(), True, "Reserve the addresses of nodes and master inside the network",
              "--no-conflicts-check"),
        Param("tags", ListOf(TAG, 4096), [], "Tags of the new network"),
    )


class OpNetworkRemove(OpCode):
    """Remove a network that no instance uses."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (
        _NETWORK,
        Param("force", Bool(), False, "Remove even if still connected to node groups", ("-f", "--force")),
    )


class OpNetworkSetParams(OpCode):
    """Change a network's gateways, IPv6 network, MAC prefix and external reservations."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (
        _NETWORK,
        Param("gateway", Maybe(Clearable(Address("address"))), None, "IPv4 gateway (none removes it)",
              "--gateway", "GATEWAY"),
        Param("network6", Maybe(Clearable(Address("network6"))), None, "IPv6 network (none removes it)",
              "--network6", "NETWORK6"),
        Param("gateway6", Maybe(Clearable(Address("address6"))), None, "IPv6 gateway (none removes it)",
              "--gateway6", "GATEWAY6"),
        Param("mac_prefix", Maybe(Clearable(MacPrefix())), None, "MAC prefix (none removes it)",
              "--mac-prefix", "MACPREFIX"),
        Param("add_reserved_ips", Maybe(AddressList()), None, "Addresses to reserve externally",
              "--add-reserved-ips", "IP,..."),
        Param("remove_reserved_ips", Maybe(AddressList()), None, "External reservations to release",
              "--remove-reserved-ips", "IP,..."),
    )


class OpNetworkConnect(OpCode):
    """Connect a network to a node group with the NIC mode, link and VLAN its instances use there."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (
        _GROUP_OF_NETWORK, _NETWORK,
        Param("network_mode", OneOf(*NIC_MODES), REQUIRED, "NIC mode in the group"),
        Param("network_link", String(max_len=255), REQUIRED, "NIC link in the group (bridge, routing table"
              " or switch)"),
        Param("network_vlan", String(max_len=255), "", "VLAN (openvswitch), e.g. .100 or :100:200"),
        Param("conflicts_check", Bool(), True, "Refuse if instances of the group have addresses in the"
              " network without using it", "--no-conflicts-check"),
    )


class OpNetworkDisconnect(OpCode):
    """Disconnect a network from a node group where no instance uses it."""
    SUMMARY_FIELD = "network_name"
    PARAMS = (_GROUP_OF_NETWORK, _NETWORK)


# --- instances --------------------------------------------------------------

INSTANCE_NAME = String(non_empty=True, max_len=63)
DISK_FIELDS = {"size": Size(), "mode": OneOf("rw", "ro"), "format": OneOf("raw", "qcow2"), "name": String()}
DISK = Record("disk", DISK_FIELDS, required=("size",))
# a new instance's disk: its size, or (plain) an existing logical volume to adopt
NEW_DISK = Record("disk", {**DISK_FIELDS, "adopt": String(non_empty=True)})
NIC = Record("nic", {"mode": OneOf("bridged", "routed"), "link": String(), "mac": String(),
                     "ip": Maybe(String()), "vlan": Maybe(String()), "name": String(),
                     "network": Maybe(String())})
BEPARAMS = Record("beparams", {"memory": Size(), "maxmem": Size(), "minmem": Size(),
                               "vcpus": Int(1, 256), "auto_balance": Bool()})
_INSTANCE = Param("instance_name", INSTANCE_NAME, REQUIRED, "Instance name", POSITIONAL, "INSTANCE")
# off by default, as in Ganeti's opcodes (Ganeti's CLI turns them on; genet's does not)
_NAME_CHECK = Param("name_check", Bool(), False, "Refuse a name that does not resolve (DNS or hosts file)",
                    "--name-check")
_IP_CHECK = Param("ip_check", Bool(), False, "Refuse if the address the name resolves to answers ping"
                  " (needs name_check)", "--ip-check")
_WAIT_FOR_SYNC = Param("wait_for_sync", Bool(), True, "Wait until the copies of mirrored disks are in sync",
                       "--no-wait-for-sync")


class HvParams(Dict):
    """Hypervisor parameters; the CLI form may name the hypervisor first (Ganeti's ``kvm:k=v``)."""

    def parse(self, text):
        head, colon, rest = text.partition(":")
        if colon and "=" not in head and "," not in head:
            if head not in hypervisor_base.names():
                raise ValueError(f"unknown hypervisor {head!r} in {text!r} (known: {', '.join(hypervisor_base.names())})")
            text = rest
        return super().parse(text)


class OpInstanceCreate(OpCode):
    """Create an instance: disks on its node, config entry, optionally started."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("disk_template", OneOf(storage_base.names), REQUIRED, "Disk template", ("-t", "--disk-template")),
        Param("disks", ListOf(NEW_DISK, 16), [], "Disks: size (MiB or with unit) or a logical volume to adopt"
              " (plain), mode, format", "--disk", "N:{size=SIZE|adopt=LV}[,mode=rw|ro][,format=raw|qcow2]"),
        Param("nics", ListOf(NIC, 8), [], "NICs: mode, link, mac, ip", "--net",
              "N:[mode=bridged|routed][,link=LINK][,mac=MAC][,ip=IP]"),
        Param("pnode", Maybe(NAME), None, "Primary node, PRIMARY:SECONDARY for mirrored templates"
              " (default: the one with most free memory)", ("-n", "--node")),
        Param("os_type", Maybe(String()), None, "Operating system definition", ("-o", "--os-type")),
        Param("osparams", Dict(), {}, "OS parameters", ("-O", "--os-parameters"), "KEY=VALUE,..."),
        Param("hypervisor", Maybe(OneOf(hypervisor_base.names)), None, "Hypervisor (default: the cluster's)",
              "--hypervisor"),
        Param("beparams", BEPARAMS, {}, "Backend parameters: memory, maxmem, minmem, vcpus",
              ("-B", "--backend-parameters"), "KEY=VALUE,..."),
        Param("hvparams", HvParams(), {}, "Hypervisor parameters", ("-H", "--hypervisor-parameters"),
              "[HV:]KEY=VALUE,..."),
        Param("start", Bool(), True, "Start the instance after creating it", "--no-start"),
        Param("no_install", Bool(), False, "Do not run the OS create script", "--no-install"),
        Param("mode", OneOf("create", "import", "remote-import"), "create",
              "create: new disks (OS create script); import: disks and defaults from an export"),
        Param("src_node", Maybe(NAME), None, "Node holding the export (import; default: search every node)",
              "--src-node", "NODE"),
        Param("src_path", Maybe(String(non_empty=True, max_len=4096)), None,
              "Export to import: its name or its directory on the source node (default: the instance name)",
              "--src-dir", "DIR"),
        Param("tags", ListOf(TAG, 4096, csv=True), [], "Tags of the new instance", "--tags", "TAG,..."),
        Param("iallocator", Maybe(String(non_empty=True)), None,
              "Pick the primary node with an allocator (genet has one: most free memory); not with pnode",
              ("-I", "--iallocator"), "NAME"),
        Param("snode", Maybe(NAME), None, "Secondary node (mirrored disk templates only)"),
        _NAME_CHECK, _IP_CHECK, _WAIT_FOR_SYNC,
        Param("conflicts_check", Bool(), True, "Refuse NIC addresses already taken in their network",
              "--no-conflicts-check"),
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


_NO_REMEMBER = Param("no_remember", Bool(), False,
                     "Do not record the new state: the watcher and verify keep expecting the old one",
                     "--no-remember")


class OpInstanceStartup(OpCode):
    """Start an instance on its primary node."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (_INSTANCE, _NO_REMEMBER)


class OpInstanceShutdown(OpCode):
    """Stop an instance (ACPI power-off, killed after the timeout)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("timeout", Int(0, 3600), 120, "Seconds to wait for the guest to power off", "--timeout"),
        _NO_REMEMBER,
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
_IALLOCATOR = Param("iallocator", Maybe(String(non_empty=True)), None,
                    "Let an allocator pick the target (genet's built-in one: most free memory); not with a"
                    " target node", ("-I", "--iallocator"), "NAME")


class OpInstanceMigrate(OpCode):
    """Move a running instance to another node without stopping it."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE, _TARGET, _IALLOCATOR,
        Param("mode", Maybe(OneOf("live", "non-live")), None, "Migration mode (default live)",
              "--migration-mode"),
        Param("live", Maybe(Bool()), None, "Ganeti's older form of mode (RAPI): false is non-live"),
        Param("non_live", Bool(), False, "Pause the guest while its memory moves", "--non-live"),
        Param("cleanup", Bool(), False, "Recover from a failed migration: keep exactly one copy running",
              "--cleanup"),
        Param("allow_failover", Bool(), False, "Fail over instead when the instance cannot migrate",
              "--allow-failover"),
    )


# a primary that does not answer may be cut off, not dead, with its VMs running: failing over
# away from it is refused unless it is marked offline or the admin says it is down
_PRIMARY_IS_DOWN = Param("primary_is_down", Bool(), False,
                         "The unreachable primary node is known to be down (powered off, fenced): fail over"
                         " without marking it offline first; a VM still running there would run twice",
                         "--primary-is-down")


class OpInstanceFailover(OpCode):
    """Stop an instance and start it on another node (shared or mirrored disks)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE, _TARGET, _IALLOCATOR,
        Param("ignore_consistency", Bool(), False, "Go ahead even if the primary node is down",
              "--ignore-consistency"),
        _PRIMARY_IS_DOWN,
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
        _TARGET, _IALLOCATOR,
    )


class OpNodeFailover(OpCode):
    """Fail over every instance whose primary is the node (shared disks), e.g. a dead node."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Node to empty", POSITIONAL, "NODE"),
        Param("ignore_consistency", Bool(), False, "Go ahead even if the node is down", "--ignore-consistency"),
        _PRIMARY_IS_DOWN,
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
        _IALLOCATOR,
        Param("early_release", Bool(), False, "Release locks as soon as possible (accepted; genet's moves"
              " keep their locks to the end)", "--early-release"),
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
        _WAIT_FOR_SYNC,
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
        _NAME_CHECK, _IP_CHECK,
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
        Param("disk_template", Maybe(OneOf(storage_base.names)), None,
              "Convert the disks to this template (file<->mirror, plain<->drbd; the instance must be stopped)",
              ("-t", "--disk-template")),
        Param("remote_node", Maybe(NAME), None, "Secondary node when converting to a mirrored template",
              ("-n", "--node")),
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


# --- instance disks, data and backups ----------------------------------------

class DiskIndices(ParamType):
    """Disk indices; on the CLI (and, as Ganeti's RAPI allows, in a body) one comma-separated string."""
    name = "list of disk indices"
    schema = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 15}}
    _INDEX = Int(0, 15)

    def check(self, value):
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, list):
            raise ValueError(f"expected a list of disk indices, got {type(value).__name__}")
        return [self._INDEX.check(v) for v in value]

    def parse(self, text):
        return self.check([self._INDEX.parse(part) for part in text.split(",") if part])


RECREATE_PARAMS = Record("disk", {"size": Size(), "name": String()})


class RecreateDisk(ParamType):
    """One disk to recreate: its index, or Ganeti's ``[index, {size, name}]``; CLI ``N[:size=SIZE]``.

    Both forms are kept as ``[index, params]``, so one list never mixes them.
    """
    name = "disk index or [index, parameters]"
    schema = {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 15},
                        {"type": "array", "items": [{"type": "integer"}, RECREATE_PARAMS.schema]}]}
    _INDEX = Int(0, 15)

    def check(self, value):
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return [self._INDEX.check(value[0]), RECREATE_PARAMS.check(value[1] or {})]
        if isinstance(value, int) and not isinstance(value, bool):
            return [self._INDEX.check(value), {}]
        raise ValueError(f"expected a disk index or [index, {{size, name}}], got {value!r}")

    def parse(self, text):
        head, colon, rest = text.partition(":")
        index = self._INDEX.parse(head)
        return self.check([index, RECREATE_PARAMS.parse(rest) if colon and rest else {}])


class ExportTarget(ParamType):
    """Ganeti's ``target_node``: a node name (local export) or the remote destination's list."""
    name = "node name or remote destination"
    schema = {"oneOf": [{"type": "string", "minLength": 1}, {"type": "array"}]}

    def check(self, value):
        if isinstance(value, str) and value:
            return NAME.check(value)
        if isinstance(value, list):
            return value
        raise ValueError(f"expected a node name (or a list for a remote export), got {value!r}")


REPLACE_MODES = ("replace_on_primary", "replace_on_secondary", "replace_new_secondary", "replace_auto")
EXPORT_NAME = String(non_empty=True, max_len=255)


class OpInstanceQueryData(OpCode):
    """Detailed information about instances: configuration and, unless static, their live state."""
    PARAMS = (
        Param("instances", ListOf(INSTANCE_NAME), [], "Instances to describe (none: all)", POSITIONAL,
              "INSTANCE"),
        Param("static", Bool(), False, "Only the configuration: do not ask the nodes", ("-s", "--static")),
        Param("use_locking", Bool(), False, "Hold the instances' locks (shared) while reading"),
    )


class OpInstanceRecreateDisks(OpCode):
    """Create the missing disks of a stopped instance again (empty), optionally on a new node."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("disks", ListOf(RecreateDisk(), 16), [], "Disks to recreate (default: all), optionally"
              " with a new size or name", "--disk", "N[:size=SIZE][,name=NAME]"),
        Param("nodes", ListOf(NAME, 2, csv=True, sep=":"), [], "New nodes of the instance, PRIMARY[:SECONDARY]"
              " (default: its nodes)", ("-n", "--node"), "PRIMARY[:SECONDARY]"),
        Param("iallocator", Maybe(String(non_empty=True)), None,
              "Choose the new node automatically (genet's allocator: most free memory)",
              ("-I", "--iallocator"), "NAME"),
    )


class OpInstanceReplaceDisks(OpCode):
    """Rebuild one side of a mirrored instance's disks or move the mirror to a new secondary node."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("mode", OneOf(*REPLACE_MODES), "replace_auto", "Replacement mode (the CLI sets it from -p, -s,"
              " -a, -n or -I)"),
        Param("disks", DiskIndices(), [], "Disk indices to replace (default: all)", "--disks", "N[,N...]"),
        Param("remote_node", Maybe(NAME), None, "New secondary node (replace_new_secondary)",
              ("-n", "--new-secondary"), "NODE"),
        Param("iallocator", Maybe(String(non_empty=True)), None,
              "Choose the new secondary automatically (replace_new_secondary)", ("-I", "--iallocator"), "NAME"),
        Param("early_release", Bool(), False, "Release locks as soon as possible", "--early-release"),
        Param("ignore_ipolicy", Bool(), False, "Ignore instance policy violations", "--ignore-ipolicy"),
    )


class OpBackupQuery(OpCode):
    """List the exports each node holds."""
    PARAMS = (
        Param("nodes", ListOf(NAME), [], "Nodes to ask (none: all)", "--node", "NODE"),
        Param("use_locking", Bool(), False, "Hold the nodes' locks (shared) while asking"),
    )


class OpBackupExport(OpCode):
    """Copy a stopped (or briefly stopped) instance's disks and configuration to a node's export directory."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        _INSTANCE,
        Param("target_node", ExportTarget(), REQUIRED, "Node to export to", ("-n", "--node"), "NODE"),
        Param("mode", OneOf("local", "remote"), "local", "Export mode (genet exports locally only)"),
        Param("shutdown", Bool(), True, "Shut the instance down while its disks are copied", "--noshutdown"),
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
        Param("remove_instance", Bool(), False, "Remove the instance once it is exported", "--remove-instance"),
        Param("ignore_remove_failures", Bool(), False, "Remove the instance even if its disks cannot be deleted",
              "--ignore-remove-failures"),
        Param("compress", OneOf("none"), "none", "Compression of the copy (none)"),
        Param("destination_x509_ca", Maybe(String(non_empty=True)), None, "Destination CA (remote export only)"),
        Param("x509_key_name", Maybe(ListOf(ParamType())), None, "Name of the X509 key (remote export only)"),
    )


class OpBackupRemove(OpCode):
    """Delete an export from every node that holds it."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (Param("instance_name", EXPORT_NAME, REQUIRED, "Name of the export (the exported instance's name)",
                    POSITIONAL, "INSTANCE"),)
