"""Opcodes of instance disks, information and backups."""
from __future__ import annotations

from genet.opcodes.base import NAME, OpCode, POSITIONAL, Param, REQUIRED
from genet.opcodes.instance import IGNORE_IPOLICY, INSTANCE_ARG, INSTANCE_NAME
from genet.ptypes import Bool, Float, Int, ListOf, Maybe, OneOf, ParamType, Record, Size, String


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
        Param("static", Bool(), False, "Only the configuration: do not ask the nodes", ("-s", "--static"),
              query="static"),
        Param("use_locking", Bool(), False, "Hold the instances' locks (shared) while reading"),
    )


class OpInstanceRecreateDisks(OpCode):
    """Create the missing disks of a stopped instance again (empty), optionally on a new node."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
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
        INSTANCE_ARG,
        Param("mode", OneOf(*REPLACE_MODES), "replace_auto", "Replacement mode (the CLI sets it from -p, -s,"
              " -a, -n or -I)", query="mode"),
        Param("disks", DiskIndices(), [], "Disk indices to replace (default: all)", "--disks", "N[,N...]",
              query="disks"),
        Param("remote_node", Maybe(NAME), None, "New secondary node (replace_new_secondary)",
              ("-n", "--new-secondary"), "NODE", query="remote_node"),
        Param("iallocator", Maybe(String(non_empty=True)), None,
              "Choose the new secondary automatically (replace_new_secondary)", ("-I", "--iallocator"), "NAME",
              query="iallocator"),
        Param("early_release", Bool(), False, "Release locks as soon as possible", "--early-release",
              query="early_release"),
        IGNORE_IPOLICY,
    )


class OpBackupQuery(OpCode):
    """List the exports each node holds."""
    PARAMS = (
        Param("nodes", ListOf(NAME), [], "Nodes to ask (none: all)", "--node", "NODE"),
        Param("use_locking", Bool(), False, "Hold the nodes' locks (shared) while asking"),
    )


EXPORT_MODE = OneOf("local", "remote")


class OpBackupPrepare(OpCode):
    """What a remote export of an instance needs from its cluster: for mode remote, the cluster
    domain's handshake, the name of a transfer key made on the primary node and its certificate
    signed with the domain secret; nothing for mode local."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("mode", EXPORT_MODE, REQUIRED, "Export mode: local (nothing to prepare) or remote", query="mode"),
    )


class OpBackupExport(OpCode):
    """Copy a stopped (or briefly stopped) instance's disks and configuration to a node's export directory."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (
        INSTANCE_ARG,
        Param("target_node", ExportTarget(), REQUIRED, "Node to export to", ("-n", "--node"), "NODE",
              rapi="destination"),
        Param("mode", EXPORT_MODE, "local", "Export mode (genet exports locally only)"),
        Param("shutdown", Bool(), True, "Shut the instance down while its disks are copied", "--noshutdown"),
        Param("shutdown_timeout", Int(0, 3600), 120, "Seconds to wait for a clean shutdown",
              "--shutdown-timeout"),
        Param("remove_instance", Bool(), False, "Remove the instance once it is exported", "--remove-instance"),
        Param("ignore_remove_failures", Bool(), False, "Remove the instance even if its disks cannot be deleted",
              "--ignore-remove-failures"),
        Param("compress", String(non_empty=True, max_len=255), "none", "Compression of the images' transport:"
              " none or one of the cluster's compression tools", "--transport-compression", "TOOL"),
        Param("zero_free_space", Bool(), False, "Zero the instance's free space first (Ganeti's zeroing helper"
              " instance; genet has none: refused)", "--zero-free-space"),
        Param("zeroing_timeout_fixed", Maybe(Int(0, 86400)), None, "Seconds the zeroing may take at least"
              " (with --zero-free-space)", "--zeroing-timeout-fixed"),
        Param("zeroing_timeout_per_mib", Maybe(Float(minimum=0.0)), None, "Seconds more the zeroing may take"
              " per MiB of disk (with --zero-free-space)", "--zeroing-timeout-per-mib"),
        Param("long_sleep", Bool(), False, "Allow the instance to stay shut down for the whole export (genet's"
              " disks have no snapshots: it always does)", "--long-sleep"),
        Param("destination_x509_ca", Maybe(String(non_empty=True)), None, "Destination CA (remote export only)"),
        Param("x509_key_name", Maybe(ListOf(ParamType())), None, "Name of the X509 key (remote export only)"),
    )


class OpBackupRemove(OpCode):
    """Delete an export from every node that holds it."""
    SUMMARY_FIELD = "instance_name"
    PARAMS = (Param("instance_name", EXPORT_NAME, REQUIRED, "Name of the export (the exported instance's name)",
                    POSITIONAL, "INSTANCE"),)
