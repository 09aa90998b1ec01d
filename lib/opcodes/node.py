"""Opcodes of nodes: add, remove, modify, power, and their storage units."""
from __future__ import annotations

from genet import oob
from genet.opcodes.base import NAME, OpCode, POSITIONAL, Param, REQUIRED
from genet.opcodes.group import DISK_STATE, HV_STATE, NDPARAMS, storage_types
from genet.ptypes import Bool, Dict, Float, Int, ListOf, Maybe, OneOf, String


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
        Param("ndparams", Maybe(NDPARAMS), None, "The node's own node parameters", "--node-parameters",
              "KEY=VALUE,..."),
        HV_STATE, DISK_STATE,
    )


class OpNodeRemove(OpCode):
    """Remove a node from the cluster."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (Param("node_name", NAME, REQUIRED, "Node to remove", POSITIONAL, "NODE"),)


MAINTENANCE_SECONDARIES = ("leave", "move")      # what maintenance does with the node's secondary copies


class OpNodeSetParams(OpCode):
    """Change a node's role flags (gnt-node modify)."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Node to change", POSITIONAL, "NODE"),
        Param("force", Bool(), False, "Force the change", ("-f", "--force"), query="force"),
        Param("master_candidate", Maybe(Bool()), None, "Master candidate flag", ("-C", "--master-candidate")),
        Param("offline", Maybe(Bool()), None, "Offline flag", ("-O", "--offline")),
        Param("drained", Maybe(Bool()), None, "Drained flag", ("-D", "--drained")),
        Param("auto_promote", Bool(), False, "Promote other nodes to keep the candidate pool full", "--auto-promote",
              query="auto-promote"),
        Param("master_capable", Maybe(Bool()), None, "May become master or candidate", "--master-capable"),
        Param("vm_capable", Maybe(Bool()), None, "May run instances", "--vm-capable"),
        Param("secondary_ip", Maybe(String()), None, "Replication address", ("-s", "--secondary-ip")),
        Param("ndparams", Maybe(NDPARAMS), None, "The node's own node parameters (default: inherit again)",
              "--node-parameters", "KEY=VALUE,..."),
        Param("powered", Maybe(Bool()), None, "Record whether the node is powered on", "--node-powered"),
        Param("maintenance", Maybe(Bool()), None, "Maintenance mode: yes drains the node and migrates its primary"
              " instances away (one job), no ends it and undrains the node", "--maintenance"),
        Param("maintenance_secondaries", OneOf(*MAINTENANCE_SECONDARIES), "leave", "With --maintenance yes:"
              " whether the secondary copies of mirrored disks stay on the node (leave) or move (move)",
              "--maintenance-secondaries"),
        HV_STATE, DISK_STATE,
    )


# --- power (genet.oob; gnt-node power, health, powercycle; gnt-cluster epo) ---

class OpOobCommand(OpCode):
    """Run an out-of-band command (power, health) for nodes through their OOB program, on the master."""
    PARAMS = (
        Param("node_names", ListOf(NAME), [], "Nodes to run the command for (empty: every node, but the"
              " master for power-off and power-cycle)"),
        Param("command", OneOf(*oob.COMMANDS), REQUIRED, "OOB command to run"),
        Param("timeout", Int(1, 3600), oob.TIMEOUT, "Seconds before the OOB program is stopped", "--oob-timeout",
              "SECONDS"),
        Param("ignore_status", Bool(), False, "Power off nodes that are not marked offline", "--ignore-status"),
        Param("power_delay", Float(0.0), oob.POWER_DELAY, "Seconds to wait between powering on two nodes",
              "--power-delay", "SECONDS"),
    )


class OpNodePowercycle(OpCode):
    """Hard-restart a node from its own node daemon (no OOB program needed)."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (
        Param("node_name", NAME, REQUIRED, "Node to powercycle", POSITIONAL, "NODE"),
        Param("force", Bool(), False, "Powercycle the master node too", ("-f", "--force"), query="force"),
    )


# --- storage (genet.storage.units; gnt-node list-storage, modify-storage, repair-storage, volumes,
# list-drbd; gnt-storage) ---

FIELD_LIST = ListOf(String(non_empty=True), 100)


class OpNodeQueryvols(OpCode):
    """List the logical volumes of nodes and whose disks they are (gnt-node volumes)."""
    PARAMS = (
        Param("output_fields", FIELD_LIST, REQUIRED, "Fields to return: node, phys, vg, name, size, instance"),
        Param("nodes", ListOf(NAME), [], "Empty list to query all nodes, node names otherwise"),
    )


class OpNodeQueryStorage(OpCode):
    """List the storage units of nodes (gnt-node list-storage)."""
    PARAMS = (
        Param("output_fields", FIELD_LIST, REQUIRED,
              "Fields to return: node, type, name, size, used, free, allocatable"),
        Param("storage_type", Maybe(OneOf(storage_types)), None,
              "Storage type (default: the first enabled disk template's)"),
        Param("nodes", ListOf(NAME), [], "Empty list to query all nodes, node names otherwise"),
        Param("name", Maybe(String(non_empty=True)), None, "Storage unit name (all when not given)"),
    )


# a storage unit on a node (modify-storage, repair-storage)
_STORAGE_UNIT = (
    Param("node_name", NAME, REQUIRED, "Node the unit is on", POSITIONAL, "NODE"),
    Param("storage_type", OneOf(storage_types), REQUIRED, "Storage type of the unit", POSITIONAL,
          "STORAGE_TYPE", query="storage_type"),
    Param("name", String(non_empty=True), REQUIRED, "Storage unit name", POSITIONAL, "NAME", query="name"),
)


class OpNodeModifyStorage(OpCode):
    """Change a storage unit on a node (gnt-node modify-storage: lvm-pv's allocatable)."""
    SUMMARY_FIELD = "node_name"
    PARAMS = _STORAGE_UNIT + (
        Param("changes", Dict(), REQUIRED, "Fields to change: {\"allocatable\": bool}"),
    )


class OpRepairNodeStorage(OpCode):
    """Repair a storage unit on a node (gnt-node repair-storage: vgreduce --removemissing on lvm-vg)."""
    SUMMARY_FIELD = "node_name"
    PARAMS = _STORAGE_UNIT + (
        Param("ignore_consistency", Bool(), False, "Go ahead although the mirrors of the node's instances are"
              " faulty on their other nodes (data loss likely)", "--ignore-consistency"),
    )


class OpNodeQueryDrbd(OpCode):
    """The DRBD minors a node uses, with their instances and disks (gnt-node list-drbd)."""
    SUMMARY_FIELD = "node_name"
    PARAMS = (Param("node_name", NAME, REQUIRED, "Node whose minors to list", POSITIONAL, "NODE"),)


class OpExtStorageDiagnose(OpCode):
    """The state of every storage backend (disk template) on every node (gnt-storage diagnose, info)."""
    PARAMS = (
        Param("output_fields", FIELD_LIST, REQUIRED,
              "Fields to return: name, node_status, nodegroup_status, parameters"),
        Param("names", ListOf(String(non_empty=True)), [], "Backends to report (all when empty)"),
    )


class OpRestrictedCommand(OpCode):
    """Run a restricted command (genet.restricted_commands) on nodes; per node [ok, output or error]."""
    SUMMARY_FIELD = "command"
    PARAMS = (
        Param("command", String(non_empty=True, max_len=255), REQUIRED, "Name of the restricted command",
              POSITIONAL, "COMMAND"),
        Param("nodes", ListOf(NAME, 10000), REQUIRED, "Nodes to run it on", POSITIONAL, "NODE"),
        Param("use_locking", Bool(), False, "Lock the nodes exclusively while the command runs (else shared)",
              "--sync"),
    )
