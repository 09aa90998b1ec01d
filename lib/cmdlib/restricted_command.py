"""gnt-node restricted-command's unit: one of the nodes' restricted commands run on each node
asked (genet.restricted_commands), Ganeti's [ok, output or error] per node, in their order."""
from __future__ import annotations

from genet import opcodes
from genet.cmdlib.base import LogicalUnit
from genet.locking import Level


class LURestrictedCommand(LogicalUnit):
    """The node locks are shared unless --sync asks for them exclusively (Ganeti's use_locking)."""
    OPCODE = opcodes.OpRestrictedCommand
    REQ_BGL = False

    def expand_names(self):
        self.names = [self.node(name)["name"] for name in self.op.nodes]
        self.needed_locks[Level.NODE] = self.names
        self.share_locks[Level.NODE] = not self.op.use_locking

    def exec(self):
        results = self.rpc.restricted_command.on(self.names, self.op.command)
        return [[False, f"Command '{self.op.command}' on node '{name}' failed: {results[name].fail_msg}"]
                if results[name].failed else [True, results[name].payload] for name in self.names]
