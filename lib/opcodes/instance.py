"""Opcodes of instances: create, remove, power, move (migrate, failover, evacuate), modify."""
from __future__ import annotations

from genet import errors
from genet.opcodes.base import NAME, OpCode, POSITIONAL, Param, REQUIRED, disk_templates, hypervisors
from genet.opcodes.cluster import TAG
from genet.opcodes.group import GROUP_ALLOCATOR, GROUP_EARLY_RELEASE, TARGET_GROUPS, ParamOverrides
from genet.opcodes.parameters import BEPARAMS, NIC_MODES
from genet.ptypes import Bool, Dict, Int, ListOf, Maybe, Modification, OneOf, Record, Size, String


INSTANCE_NAME = String(non_empty=True, max_len=63)
DISK_FIELDS = {"size": Size(), "mode": OneOf("rw", "ro"), "format": OneOf("raw", "qcow2"), "name": String()}
DISK = Record("disk", DISK_FIELDS, required=("size",))
# a new instance's disk: its size, or (plain) an existing logical volume to adopt
NEW_DISK = Record("disk", {**DISK_FIELDS, "adopt": String(non_empty=True)})
NIC = Record("nic", {"mode": OneOf(*NIC_MODES), "link": String(), "mac": String(),
                     "ip": Maybe(String()), "vlan": Maybe(String()), "name": String(),
                     "network": Maybe(String())})
# a change of backend parameters: a value, or "default" to inherit the cluster's again
BEPARAMS_CHANGE = ParamOverrides("beparams", BEPARAMS.fields)
INSTANCE_ARG = Param("instance_name", INSTANCE_NAME, REQUIRED, "Instance name", POSITIONAL, "INSTANCE")
# off by default, as in Ganeti's opcodes (Ganeti's CLI turns them on; genet's does not)
_NAME_CHECK = Param("name_check", Bool(), False, "Refuse a name that does not resolve (DNS or hosts file)",
                    "--name-check")
_IP_CHECK = Param("ip_check", Bool(), False, "Refuse if the address the name resolves to answers ping"
                  " (needs name_check)", "--ip-check")
_WAIT_FOR_SYNC = Param("wait_for_sync", Bool(), True, "Wait until the copies of mirrored disks are in sync",
                       "--no-wait-for-sync")
_OSPARAMS_PRIVATE = Param("osparams_private", Maybe(Dict()), None, "Private OS parameters: stored, given to the"
                          " OS scripts, shown redacted", "--os-parameters-private", "KEY=VALUE,...")
_OSPARAMS_SECRET = Param("osparams_secret", Maybe(Dict()), None, "Secret OS parameters: given to the OS scripts"
                         " of this job only, never stored", "--os-parameters-secret", "KEY=VALUE,...")
# Ganeti's compression of disk copies: none or a tool the cluster allows (genet.compression)
COMPRESS = Param("compress", String(non_empty=True, max_len=255), "none", "Compression of the disk copy: none or"
                 " one of the cluster's compression tools", "--compress", "TOOL")
# Ganeti's switch: an instance that would break the instance policy (of its group, or of the
# group it moves to) is only warned about, not refused (genet.cmdlib.instance_policy)
IGNORE_IPOLICY = Param("ignore_ipolicy", Bool(), False, "Ignore instance policy violations (warn instead of"
                       " refusing)", "--ignore-ipolicy")
# Ganeti's file drivers: genet reaches file disks as images, Ganeti's "loop" meaning; no blktap
FILE_DRIVER = Param("file_driver", Maybe(OneOf("loop", "blktap", "blktap2")), None,
                    "Driver of file disks (genet has loop only)", "--file-driver")
FILE_STORAGE_DIR = Param("file_storage_dir", Maybe(String(non_empty=True)), None,
                         "Directory of the file disks below the cluster's (genet: refused, see the man page)",
                         "--file-storage-dir", "DIR")


class HvParams(Dict):
    """Hypervisor parameters; the CLI form may name the hypervisor first (Ganeti's ``kvm:k=v``)."""

    def parse(self, text):
        head, colon, rest = text.partition(":")
        if colon and "=" not in head and "," not in head:
            if head not in hypervisors():
                raise ValueError(f"unknown hypervisor {head!r} in {text!r} (known: {', '.join(hypervisors())})")
            text = rest
        return super().parse(text)


class OpInstanceCreate(OpCode):
    """Create an instance: disks on its node, config entry, optionally started."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        Param("instance_name", INSTANCE_NAME, REQUIRED, "Instance name", POSITIONAL, "INSTANCE", rapi="name"),
        Param("disk_template", OneOf(disk_templates), REQUIRED, "Disk template", ("-t", "--disk-template")),
        Param("disks", ListOf(NEW_DISK, 16), [], "Disks: size (MiB or with unit) or a logical volume to adopt"
              " (plain), mode, format", "--disk", "N:{size=SIZE|adopt=LV}[,mode=rw|ro][,format=raw|qcow2]"),
        Param("nics", ListOf(NIC, 8), [], "NICs: mode, link, mac, ip", "--net",
              "N:[mode=bridged|routed][,link=LINK][,mac=MAC][,ip=IP]"),
        Param("pnode", Maybe(NAME), None, "Primary node, PRIMARY:SECONDARY for mirrored templates"
              " (default: the one with most free memory)", ("-n", "--node")),
        Param("os_type", Maybe(String()), None, "Operating system definition", ("-o", "--os-type"), rapi="os"),
        Param("osparams", Dict(), {}, "OS parameters", ("-O", "--os-parameters"), "KEY=VALUE,..."),
        Param("hypervisor", Maybe(OneOf(hypervisors)), None, "Hypervisor (default: the cluster's)",
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
        _OSPARAMS_PRIVATE, _OSPARAMS_SECRET, IGNORE_IPOLICY, FILE_DRIVER, FILE_STORAGE_DIR, COMPRESS,
        Param("no_nics", Bool(), False, "No NICs: none of the cluster's (gnt-instance add's default), none of"
              " an export's (import)", "--no-nics"),
        Param("identify_defaults", Bool(), False, "Record no backend or hypervisor parameter equal to the"
              " cluster's default (it then follows the default)", "--identify-defaults"),
        Param("forthcoming", Bool(), False, "Only reserve the instance in the configuration (name, nodes, NIC"
              " addresses): nothing is created on the nodes", "--forthcoming"),
        Param("commit", Bool(), False, "Create for real an instance reserved with forthcoming", "--commit"),
        Param("group_name", Maybe(NAME), None, "Place the instance on a node of this group",
              ("-g", "--node-group"), "GROUP"),
        Param("instance_communication", Bool(), False, "Ganeti's instance communication NIC (genet has no"
              " metadata daemon to answer on it: refused)", ("-c", "--communication")),
    )


class OpInstanceRemove(OpCode):
    """Stop an instance and remove its disks and config entry."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout", query="shutdown_timeout"),
        Param("ignore_failures", Bool(), False, "Remove from the config even if the node fails",
              "--ignore-failures"),
    )


_NO_REMEMBER = Param("no_remember", Bool(), False,
                     "Do not record the new state: the watcher and verify keep expecting the old one",
                     "--no-remember", query="no_remember")


_IGNORE_OFFLINE = Param("ignore_offline_nodes", Bool(), False,
                        "With the primary node offline, only record the new state (nothing is started or stopped)",
                        "--ignore-offline")


class OpInstanceStartup(OpCode):
    """Start an instance on its primary node."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("force", Bool(), False, "Start even if the disks' mirror secondary is failing", "--force",
              query="force"),
        _IGNORE_OFFLINE, _NO_REMEMBER,
        Param("hvparams", HvParams(), {}, "Hypervisor parameters for this start only (not recorded)",
              ("-H", "--hypervisor-parameters"), "KEY=VALUE,..."),
        Param("beparams", BEPARAMS, {}, "Backend parameters for this start only (not recorded)",
              ("-B", "--backend-parameters"), "KEY=VALUE,..."),
        Param("startup_paused", Bool(), False, "Start with the guest's CPUs paused", "--paused"),
    )


class OpInstanceShutdown(OpCode):
    """Stop an instance (ACPI power-off, killed after the timeout)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("timeout", Int(0, 3600), 120, "Seconds to wait for the guest to power off", "--timeout"),
        _IGNORE_OFFLINE, _NO_REMEMBER,
        Param("force", Bool(), False, "Shut down an instance even if it is marked offline", "--force"),
    )


class OpInstanceReboot(OpCode):
    """Reboot an instance: soft (ACPI), hard (reset) or full (stop and start); a stopped one is started."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("reboot_type", OneOf("soft", "hard", "full"), "hard", "Kind of reboot", ("-t", "--type"),
              query="type"),
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
        Param("ignore_secondaries", Bool(), False,
              "Start even if the disks' mirror secondary is failing (when the reboot starts the instance)",
              "--ignore-secondaries", query="ignore_secondaries"),
    )


class OpInstanceConsole(OpCode):
    """How to reach a running instance's console (gnt-instance console)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (INSTANCE_ARG,)


_TARGET = Param("target_node", Maybe(NAME), None, "Target node (default: the one with most free memory)",
                ("-n", "--target-node"))
_IALLOCATOR = Param("iallocator", Maybe(String(non_empty=True)), None,
                    "Let an allocator pick the target (genet's built-in one: most free memory); not with a"
                    " target node", ("-I", "--iallocator"), "NAME")


class OpInstanceMigrate(OpCode):
    """Move a running instance to another node without stopping it."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG, _TARGET, _IALLOCATOR,
        Param("mode", Maybe(OneOf("live", "non-live")), None, "Migration mode (default live)",
              "--migration-mode"),
        Param("live", Maybe(Bool()), None, "Ganeti's older form of mode (RAPI): false is non-live"),
        Param("non_live", Bool(), False, "Pause the guest while its memory moves", "--non-live"),
        Param("cleanup", Bool(), False, "Recover from a failed migration: keep exactly one copy running",
              "--cleanup"),
        Param("allow_failover", Bool(), False, "Fail over instead when the instance cannot migrate",
              "--allow-failover"),
        Param("ignore_hvversions", Bool(), False, "Only warn when the nodes' hypervisor versions differ",
              "--ignore-hvversions"),
        Param("allow_runtime_changes", Bool(), True, "Let the migration change the instance's runtime (genet's"
              " never does)", "--no-runtime-changes"),
        IGNORE_IPOLICY,
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
        INSTANCE_ARG, _TARGET, _IALLOCATOR,
        Param("ignore_consistency", Bool(), False, "Go ahead even if the primary node is down",
              "--ignore-consistency"),
        _PRIMARY_IS_DOWN,
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
        Param("cleanup", Bool(), False, "Recover from a failed failover: keep the instance where it runs",
              "--cleanup"),
        IGNORE_IPOLICY,
    )


class OpNodeMigrate(OpCode):
    """Live-migrate every instance off a node."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Node to empty", POSITIONAL, "NODE"),
        Param("mode", Maybe(OneOf("live", "non-live")), None, "Migration mode (default live)",
              "--migration-mode", query="mode"),
        _TARGET, _IALLOCATOR, IGNORE_IPOLICY,
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
        Param("ignore_soft_errors", Bool(), False, "Leave instances that have nowhere to go, move the others",
              "--ignore-soft-errors"),
    )



class OpInstanceGrowDisk(OpCode):
    """Grow one disk of an instance (the guest sees it after its next boot)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("disk", Int(0, 15), REQUIRED, "Index of the disk", POSITIONAL, "DISK"),
        Param("amount", Size(), REQUIRED, "How much to add (or the new size with --absolute)",
              POSITIONAL, "AMOUNT"),
        Param("absolute", Bool(), False, "AMOUNT is the new size, not an increase", "--absolute"),
        _WAIT_FOR_SYNC, IGNORE_IPOLICY,
    )


class OpInstanceActivateDisks(OpCode):
    """Make an instance's disks usable on its primary node; reports where they are."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("ignore_size", Bool(), False, "Ganeti's: do not hold the disks to their recorded sizes while"
              " activating them (genet's activation never compares sizes, so both values act the same)",
              "--ignore-size", query="ignore_size"),
        Param("wait_for_sync", Bool(), False, "Wait until the copies of mirrored disks are in sync",
              "--wait-for-sync"),
    )


class OpInstanceDeactivateDisks(OpCode):
    """Release an instance's disks on its nodes (the instance must be stopped)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (INSTANCE_ARG, Param("force", Bool(), False, "Deactivate even if the instance runs", ("-f", "--force"),
                                  query="force"))


class OpInstanceRename(OpCode):
    """Give a stopped instance a new name (its disks follow)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("new_name", INSTANCE_NAME, REQUIRED, "New name", POSITIONAL, "NEW_NAME"),
        _NAME_CHECK, _IP_CHECK,
    )


class OpInstanceSetParams(OpCode):
    """Change an instance: parameters, and disks or NICs added or removed (hot-plugged when running)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("beparams", BEPARAMS_CHANGE, {}, "Backend parameters to change (default: inherit the cluster's)",
              ("-B", "--backend-parameters"), "KEY=VALUE,..."),
        Param("hvparams", HvParams(), {}, "Hypervisor parameters to change (default: inherit the cluster's)",
              ("-H", "--hypervisor-parameters"), "[HV:]KEY=VALUE,..."),
        Param("disks", ListOf(Modification(DISK), 16), [], "Disks to add or remove", "--disk",
              "add:size=SIZE[,...]|N:remove"),
        Param("nics", ListOf(Modification(NIC), 8), [], "NICs to add or remove", "--net",
              "add:[mode=...,link=...,mac=...]|N:remove"),
        Param("hotplug", Bool(), True, "Apply disk and NIC changes to the running guest", "--no-hotplug"),
        Param("disk_template", Maybe(OneOf(disk_templates)), None,
              "Convert the disks to this template (file<->mirror, plain<->drbd; the instance must be stopped)",
              ("-t", "--disk-template")),
        Param("remote_node", Maybe(NAME), None, "Secondary node when converting to a mirrored template",
              ("-n", "--node")),
        _WAIT_FOR_SYNC,
        Param("offline", Maybe(Bool()), None, "Mark the stopped instance offline (true) or online again (false)"),
        Param("runtime_mem", Maybe(Size()), None, "Balloon the running instance's memory to this size",
              ("-m", "--runtime-memory"), "SIZE"),
        Param("pnode", Maybe(NAME), None, "New primary node of a stopped file or sharedfile instance whose"
              " disks were moved there", "--new-primary", "NODE"),
        Param("os_name", Maybe(String(non_empty=True)), None, "Change the recorded OS (no reinstall)",
              ("-o", "--os-type"), "OS_TYPE"),
        Param("force_variant", Bool(), False, "Accept an OS variant the OS does not list", "--force-variant"),
        Param("osparams", Maybe(Dict()), None, "OS parameters to change (default: drop one)",
              ("-O", "--os-parameters"), "KEY=VALUE,..."),
        _OSPARAMS_PRIVATE, IGNORE_IPOLICY, FILE_DRIVER, FILE_STORAGE_DIR,
        Param("ext_params", Dict(), {}, "ExtStorage parameters (genet has no ExtStorage: refused)",
              ("-e", "--ext-params"), "KEY=VALUE,..."),
        Param("force", Bool(), False, "Runtime memory outside minmem..maxmem; a new primary without asking"
              " the old one; an OS the node does not have", ("-f", "--force")),
    )



class OpInstanceReinstall(OpCode):
    """Run the OS create script again on a stopped instance's disks (optionally another OS)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("os_type", Maybe(String()), None, "Install this OS instead", ("-o", "--os-type"), rapi="os", query="os"),
        Param("osparams", Maybe(Dict()), None, "New OS parameters", ("-O", "--os-parameters"), "KEY=VALUE,..."),
        _OSPARAMS_PRIVATE, _OSPARAMS_SECRET,
    )


class OpOsDiagnose(OpCode):
    """Report the OS definitions on every node (gnt-os list, info, diagnose)."""



class OpInstanceMove(OpCode):
    """Move a file-disk instance to another node: stop, copy its disks, start there."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("target_node", NAME, REQUIRED, "Node to move to", ("-n", "--target-node")),
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
        Param("ignore_consistency", Bool(), False, "Copy the disks even if the instance cannot be shut down"
              " on its node", "--ignore-consistency"),
        COMPRESS, IGNORE_IPOLICY,
    )


class OpInstanceChangeGroup(OpCode):
    """Move an instance to the nodes of another node group (one job of moves)."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (INSTANCE_ARG, GROUP_EARLY_RELEASE, GROUP_ALLOCATOR, TARGET_GROUPS)


class CreateRequests(ListOf):
    """Ganeti's ``instances`` of a multi-allocation: OpInstanceCreate parameters per instance,
    each checked as that opcode checks them (an ``OP_ID`` of its own is allowed)."""
    name = "list of instance creations"

    def __init__(self):
        super().__init__(Dict(), 1000)

    def check(self, value):
        out = []
        for index, item in enumerate(super().check(value)):
            fields = {k: v for k, v in item.items() if k != "OP_ID"}
            if item.get("OP_ID", OpInstanceCreate.OP_ID) != OpInstanceCreate.OP_ID:
                raise ValueError(f"instance {index}: expected {OpInstanceCreate.OP_ID}, got {item['OP_ID']}")
            unknown = sorted(set(fields) - {p.name for p in OpInstanceCreate.all_params()})
            if unknown:
                raise ValueError(f"Unknown fields in definition {index}: {', '.join(unknown)}")
            try:
                OpInstanceCreate(**fields)
            except errors.OpPrereqError as err:
                raise ValueError(f"instance {index}: {err.args[0]}") from None
            out.append(fields)
        return out


class OpInstanceMultiAlloc(OpCode):
    """Create several instances, their nodes chosen together: one creation job per instance."""
    PARAMS = (
        Param("instances", CreateRequests(), REQUIRED, "The instances: OpInstanceCreate parameters each"),
        Param("iallocator", Maybe(String(non_empty=True)), None, "Allocator choosing the nodes of instances"
              " given none: hail, for which genet's built-in choice (most free memory) stands in",
              ("-I", "--iallocator"), "NAME"),
        Param("opportunistic_locking", Bool(), False, "Ganeti's: allocate among the nodes whose locks are free"
              " (genet's allocation only reads the nodes and locks none, so every node counts)"),
    )
