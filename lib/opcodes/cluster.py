"""Opcodes of the cluster and its tags."""
from __future__ import annotations

from genet import autobalance
from genet.ha import settings as ha_settings
from genet.collectors import CollectorFlags, CollectorIntervals
from genet.opcodes.base import NAME, OpCode, POSITIONAL, Param, REQUIRED, TAG_KINDS, disk_templates, hypervisors
from genet.opcodes.group import DISK_STATE, HV_STATE, IPOLICY, NDPARAMS, DiskParams, HvParamsByHypervisor, ParamOverrides
from genet.opcodes.parameters import BEPARAMS, NICPARAMS, MacPrefix
from genet.ptypes import Bool, Constrained, Dict, Float, Int, ListOf, Maybe, OneOf, ParamType, String, Tag
from genet.uidpool import UID_POOL


# --- cluster ----------------------------------------------------------------

class OpClusterQuery(OpCode):
    """Return the cluster's information (gnt-cluster info)."""


VERIFY_OPTIONAL_CHECKS = ("nplusone_mem", "hvparam_assessment")     # Ganeti's VERIFY_OPTIONAL_CHECKS


class OpClusterVerify(OpCode):
    """Check the whole cluster and report every problem with a code."""
    PARAMS = (
        Param("error_codes", Bool(), False, "Print errors in a machine-readable form", "--error-codes"),
        Param("ignore_errors", ListOf(String()), [], "Error codes to ignore", ("-I", "--ignore-errors")),
        Param("verbose", Bool(), False, "Show details", ("-v", "--verbose")),
        Param("max_clock_skew", Float(minimum=0.0), 150.0, "Tolerated clock skew in seconds"),
        # Ganeti's optional checks; genet's verify has neither yet (N+1 memory is issue 15)
        Param("skip_checks", ListOf(OneOf(*VERIFY_OPTIONAL_CHECKS)), [], "Optional checks not to run"),
        Param("group_name", Maybe(NAME), None, "Verify only this node group's nodes and instances",
              "--node-group", "GROUP"),
        Param("verify_clutter", Bool(), False, "Look for several SSH keys of one user@host in authorized_keys",
              "--verify-ssh-clutter"),
    )


class VgName(Constrained):
    """An LVM volume group name (lvm2's rule: up to 127 of letters, digits and ``+_.-``)."""
    name = "volume group name"
    schema = {"type": "string", "pattern": r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$"}
    MAX_LEN = 127

    def rule(self, value):
        from genet.storage.lvm import check_vg_name     # one rule, kept with the plain template
        return check_vg_name(value)


class OsChange(ParamType):
    """Ganeti's change of an OS list: ``[action, os]`` with action ``add`` or ``remove``."""
    name = "[add|remove, OS]"
    schema = {"type": "array", "prefixItems": [{"enum": ["add", "remove"]}, {"type": "string"}]}

    def check(self, value):
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and value[0] in ("add", "remove")
                and isinstance(value[1], str) and value[1]):
            raise ValueError(f"expected [add|remove, OS], got {value!r}")
        return list(value)


OS_CHANGE = OsChange()


class AbsolutePath(Constrained):
    """A directory every node mounts at the same absolute path."""
    name = "absolute path"
    schema = {"type": "string", "pattern": "^/"}
    MAX_LEN = 4096

    def rule(self, value):
        if not value.startswith("/"):
            raise ValueError(f"must be absolute, got {value!r}")
        return value


class CompressionTools(ListOf):
    """The allowed compression tools; on the CLI an empty value stands for Ganeti's default ones."""

    def parse(self, text):
        from genet.compression import DEFAULT_TOOLS
        return super().parse(text) if text else list(DEFAULT_TOOLS)


class OpClusterSetParams(OpCode):
    """Change cluster parameters (gnt-cluster modify)."""
    PARAMS = (
        Param("candidate_pool_size", Maybe(Int(1, 1000)), None,
              "Wanted number of master candidates", ("-C", "--candidate-pool-size")),
        Param("max_running_jobs", Maybe(Int(1, 1000)), None,
              "Jobs run at the same time by the master", "--max-running-jobs"),
        Param("modify_etc_hosts", Maybe(Bool()), None, "Manage /etc/hosts (recorded only)", "--modify-etc-hosts"),
        # the floating master IP (genet.master_ip)
        Param("master_netdev", Maybe(String(max_len=15)), None, "The device the master node holds the master IP"
              " on (\"\": none, no floating master IP)", "--master-netdev", "INTERFACE"),
        Param("master_netmask", Maybe(Int(1, 128)), None, "CIDR netmask of the master IP", "--master-netmask",
              "NETMASK"),
        Param("use_external_mip_script", Maybe(Bool()), None, "Run the administrator's master-ip-setup script"
              " instead of the built-in steps", "--use-external-mip-script", "yes|no"),
        Param("vg_name", Maybe(VgName()), None, "LVM volume group of plain disks", "--vg-name", "VG"),
        Param("file_storage_dir", Maybe(String(non_empty=True, max_len=4096)), None,
              "Directory of file disks (below each node's root)", "--file-storage-dir", "DIR"),
        Param("shared_file_storage_dir", Maybe(AbsolutePath()), None, "Directory of sharedfile disks",
              "--shared-file-storage-dir", "DIR"),
        Param("mac_prefix", Maybe(MacPrefix()), None, "First three bytes of generated MAC addresses",
              ("-m", "--mac-prefix"), "PREFIX"),
        Param("enabled_hypervisors", Maybe(ListOf(OneOf(hypervisors), 16, csv=True)), None,
              "The hypervisors instances may use; the first is the default", "--enabled-hypervisors",
              "HYPERVISOR,..."),
        Param("enabled_disk_templates", Maybe(ListOf(OneOf(disk_templates), 16, csv=True)), None,
              "The disk templates instances may use", "--enabled-disk-templates", "TEMPLATE,..."),
        # Ganeti's optional features (genet.cmdlib.cluster_features checks them)
        Param("compression_tools", Maybe(CompressionTools(String(non_empty=True), 100, csv=True)), None,
              "Compression tools disk copies may use; gzip must be one (an empty value: Ganeti's default)",
              "--compression-tools", "TOOL,..."),
        Param("instance_communication_network", Maybe(String(max_len=255)), None,
              "Network of the instances' communication NICs (made and connected to every group if missing;"
              " empty: none)", "--instance-communication-network", "NETWORK"),
        Param("install_image", Maybe(String(max_len=4096)), None, "Image for running untrusted OS scripts in a"
              " helper VM (an absolute path or a URL; recorded: genet runs no helper VMs)", "--install-image",
              "IMAGE"),
        Param("zeroing_image", Maybe(String(max_len=4096)), None, "Image for zeroing an instance's free space"
              " in a helper VM (an absolute path or a URL; recorded: genet runs no helper VMs)",
              "--zeroing-image", "IMAGE"),
        Param("enabled_user_shutdown", Maybe(Bool()), None, "Whether a guest's own power-off shows as USER_down"
              " (KVM: with the user_shutdown hypervisor parameter)", "--user-shutdown", "yes|no"),
        *autobalance.PARAMS,        # genet's: the watcher balances the cluster by itself (genet.autobalance)
        *ha_settings.PARAMS,        # genet's: automatic master failover and the HA timeouts (genet.ha)
        Param("enabled_data_collectors", Maybe(CollectorFlags()), None, "Data collectors to activate or"
              " deactivate", "--enabled-data-collectors", "COLLECTOR=BOOL,..."),
        Param("data_collector_interval", Maybe(CollectorIntervals()), None, "Seconds between two collections of a"
              " data collector (microseconds over RAPI)", "--data-collector-interval", "COLLECTOR=SECONDS,..."),
        # the defaults objects inherit (genet.params); "default" drops the cluster's own value
        Param("hvparams", Maybe(HvParamsByHypervisor()), None, "Hypervisor parameters of one hypervisor",
              ("-H", "--hypervisor-parameters"), "HYPERVISOR:KEY=VALUE,..."),
        Param("beparams", Maybe(ParamOverrides("beparams", BEPARAMS.fields)), None, "Backend parameters",
              ("-B", "--backend-parameters"), "KEY=VALUE,..."),
        Param("nicparams", Maybe(ParamOverrides("nicparams", NICPARAMS.fields)), None,
              "NIC parameters (mode, link, vlan)", ("-N", "--nic-parameters"), "KEY=VALUE,..."),
        Param("ndparams", Maybe(NDPARAMS), None, "Node parameters", "--node-parameters", "KEY=VALUE,..."),
        Param("diskparams", Maybe(DiskParams()), None, "Parameters of one disk template",
              ("-D", "--disk-parameters"), "TEMPLATE:KEY=VALUE,..."),
        Param("ipolicy", Maybe(IPOLICY), None, "Instance policy (the --ipolicy-* options)"),
        # per OS (gnt-os modify)
        Param("os_hvp", Maybe(Dict()), None, "Hypervisor parameters per OS: {OS: {HYPERVISOR: {KEY: VALUE}}}"),
        Param("osparams", Maybe(Dict()), None, "OS parameters per OS: {OS: {KEY: VALUE}}"),
        Param("osparams_private", Maybe(Dict()), None, "Private OS parameters per OS (shown redacted)"),
        Param("hidden_os", Maybe(ListOf(OS_CHANGE, 100)), None, "OSes to hide or show: [[add|remove, OS]]"),
        Param("blacklisted_os", Maybe(ListOf(OS_CHANGE, 100)), None,
              "OSes to refuse or allow for new installs: [[add|remove, OS]]"),
        # the user-id pool of security_model=pool (genet.uidpool); "" empties it
        Param("uid_pool", Maybe(UID_POOL), None, "The user-id pool: its ranges replace the pool's",
              "--uid-pool", "UID-POOL"),
        Param("add_uids", Maybe(UID_POOL), None, "User-id ranges to add to the pool", "--add-uids", "UID-POOL"),
        Param("remove_uids", Maybe(UID_POOL), None, "User-id ranges to remove from the pool (each exactly as"
              " in it)", "--remove-uids", "UID-POOL"),
        Param("max_tracked_jobs", Maybe(Int(1, 10000)), None, "Jobs whose files Ganeti's scheduler watches"
              " with inotify (refused: genet's scheduler has no job files to watch)", "--max-tracked-jobs"),
        Param("maintain_node_health", Maybe(Bool()), None, "The watcher shuts down the instances and disks of a"
              " node marked offline", "--maintain-node-health", "yes|no"),
        Param("prealloc_wipe_disks", Maybe(Bool()), None, "Zero new disks (and the new part of a grown one)"
              " before use", "--prealloc-wipe-disks", "yes|no"),
        Param("default_iallocator", Maybe(String()), None, "Allocator used when neither nodes nor one are"
              " given (\"\": none, nodes must then be given)", ("-I", "--default-iallocator"), "NAME"),
        Param("default_iallocator_params", Maybe(Dict()), None, "Parameters of the default allocator",
              "--default-iallocator-params", "KEY=VALUE,..."),
        Param("reserved_lvs", Maybe(ListOf(String(non_empty=True), 1000, csv=True)), None,
              "Logical volumes (regular expressions) verify does not report as orphans", "--reserved-lvs",
              "NAMES"),
        Param("drbd_helper", Maybe(String(max_len=4096)), None, "The DRBD usermode helper the nodes must use",
              "--drbd-usermode-helper", "HELPER"),
        HV_STATE, DISK_STATE,
        Param("force", Bool(), False, "Go on when the master IP cannot be taken down on the old master netdev",
              "--force"),
    )


class OpClusterVerifyDisks(OpCode):
    """Check every mirrored disk and mirror again where a secondary is back (gnt-cluster verify-disks)."""
    PARAMS = (
        Param("group_name", Maybe(NAME), None, "Only this node group's instances", "--node-group", "GROUP"),
        Param("is_strict", Bool(), True, "Wait for every node's lock (else skip the nodes busy with other jobs)",
              "--no-strict"),
    )


class OpClusterRedistConf(OpCode):
    """Push the configuration and ssconf files to every node again."""


class OpClusterDestroy(OpCode):
    """Tear the cluster down; only the master remains, without cluster state."""


class OpClusterPostInit(OpCode):
    """The new cluster's first job: runs the cluster-init post hooks (gnt-cluster init submits it)."""


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
