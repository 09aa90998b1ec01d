"""Opcodes of nodes: add, remove, modify."""
from __future__ import annotations

from genet.opcodes.base import NAME, OpCode, POSITIONAL, Param, REQUIRED
from genet.ptypes import Bool, Maybe, String


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
        Param("force", Bool(), False, "Force the change", ("-f", "--force"), query="force"),
        Param("master_candidate", Maybe(Bool()), None, "Master candidate flag", ("-C", "--master-candidate")),
        Param("offline", Maybe(Bool()), None, "Offline flag", ("-O", "--offline")),
        Param("drained", Maybe(Bool()), None, "Drained flag", ("-D", "--drained")),
        Param("auto_promote", Bool(), False, "Promote other nodes to keep the candidate pool full", "--auto-promote",
              query="auto-promote"),
        Param("master_capable", Maybe(Bool()), None, "May become master or candidate", "--master-capable"),
        Param("vm_capable", Maybe(Bool()), None, "May run instances", "--vm-capable"),
        Param("secondary_ip", Maybe(String()), None, "Replication address", ("-s", "--secondary-ip")),
    )
