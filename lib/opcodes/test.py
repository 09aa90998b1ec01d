"""Opcodes that test the job machinery and the allocator protocol (gnt-debug)."""
from __future__ import annotations

from genet.opcodes.base import NAME, OpCode, POSITIONAL, Param, REQUIRED
from genet.ptypes import Bool, Dict, Float, Int, ListOf, Maybe, OneOf, Size, String

# Ganeti's iallocator request types and directions (doc/iallocator.rst, gnt-debug(8))
IALLOCATOR_MODES = ("allocate", "multi-allocate", "relocate", "change-group", "node-evacuate")
IALLOCATOR_DIRECTIONS = ("in", "out")
NODE_EVAC_MODES = ("primary-only", "secondary-only", "all")


class OpTestDelay(OpCode):
    """Sleep for a while on the master and/or some nodes (gnt-debug delay)."""
    SUMMARY_FIELD = "duration"
    PARAMS = (
        Param("duration", Float(minimum=0.0), REQUIRED, "Seconds to sleep", POSITIONAL, "DURATION"),
        Param("on_master", Bool(), True, "Sleep on the master", "--no-master"),
        Param("on_nodes", ListOf(NAME), [], "Nodes to sleep on as well", ("-n", "--node")),
        Param("repeat", Int(0, 1000), 0, "Sleep this many times, each logged (0: once, silently)", ("-r", "--repeat")),
        Param("interruptible", Bool(), False, "Sleep on the master until the time is up or something is sent to"
              " the unix socket the job's log names (no node is contacted; the locks are still taken)",
              ("-i", "--interruptible")),
        Param("no_locks", Bool(), False, "Do not lock the nodes slept on", ("-l", "--no-locks")),
    )


# what an OpTestJqueue job tells the test-jobqueue client (its log type and the phases it reports;
# Ganeti's names), and the prefix of the messages it logs
ELOG_JQUEUE_TEST = "jqueue-test"
JQT_MSGPREFIX = "TESTMSG="
JQT_EXPANDNAMES, JQT_EXEC, JQT_STARTMSG, JQT_LOGMSG = "expandnames", "exec", "startmsg", "logmsg"


class OpTestJqueue(OpCode):
    """Report the job's phases to a waiting client and log messages (gnt-debug test-jobqueue)."""
    PARAMS = (
        Param("notify_waitlock", Bool(), False, "Wait for the client before taking the locks"),
        Param("notify_exec", Bool(), False, "Wait for the client before executing"),
        Param("log_messages", ListOf(String()), [], "Messages to log, each announced to the client"),
        Param("fail", Bool(), False, "Fail once the messages are logged"),
    )


class OpTestOsParams(OpCode):
    """Log the secret OS parameters the job received (gnt-debug test-osparams)."""
    PARAMS = (
        Param("osparams_secret", Maybe(Dict()), None, "Secret OS parameters (key=value,...)",
              "--os-parameters-secret", "PARAMS"),
    )


class OpTestAllocator(OpCode):
    """Build an iallocator request and show it, or run an allocator on it (gnt-debug iallocator).
    The disks, NICs and tags of a new instance come from the CLI's own spellings (gnt_debug)."""
    SUMMARY_FIELD = "name"
    PARAMS = (
        Param("name", NAME, REQUIRED, "The instance (new for allocate, existing for relocate)", POSITIONAL,
              "INSTANCE"),
        Param("direction", OneOf(*IALLOCATOR_DIRECTIONS), "in", "Show the allocator's input (in) or run it and"
              " show its answer (out)", "--dir"),
        Param("mode", OneOf(*IALLOCATOR_MODES), "relocate", "Request type", ("-m", "--mode")),
        Param("iallocator", Maybe(NAME), None, "The allocator to run (direction out)",
              ("-I", "--iallocator", "--algorithm")),
        Param("memory", Size(), 128, "Memory of the new instance (MiB, or with a unit)", ("--mem", "--memory")),
        Param("vcpus", Int(1), 1, "VCPUs of the new instance", ("-p", "--vcpus")),
        Param("disks", ListOf(Dict()), [], "Disks of the new instance: [{size, mode}]"),
        Param("nics", ListOf(Dict()), [], "NICs of the new instance: [{mac, ip, bridge}]"),
        Param("disk_template", Maybe(String()), None, "Disk template of the new instance",
              ("-t", "--disk-template")),
        Param("os", Maybe(String()), None, "OS of the new instance", ("-o", "--os-type"), "OS_TYPE"),
        Param("hypervisor", Maybe(String()), None, "Hypervisor of the new instance (the cluster's first)"),
        Param("tags", ListOf(String()), [], "Tags of the new instance"),
        Param("instances", ListOf(NAME), [], "Instances to move (change-group, node-evacuate)"),
        Param("evac_mode", OneOf(*NODE_EVAC_MODES), "all", "Which instances to evacuate (node-evacuate)",
              "--evac-mode"),
        Param("target_groups", ListOf(NAME), [], "Groups to move to (change-group)", "--target-groups", "GROUP"),
        Param("spindle_use", Int(0), 1, "Spindles the new instance uses", "--spindle-use"),
        Param("count", Int(1), 2, "How many instances to allocate (multi-allocate)", "--count"),
    )
