"""Logical units for testing the job machinery."""
from __future__ import annotations


from genet import opcodes
from genet.cmdlib.base import LogicalUnit
from genet.locking import Level


class LUTestDelay(LogicalUnit):
    """Sleep on the master and/or nodes; exercises queue, locks and RPC."""
    OPCODE = opcodes.OpTestDelay
    REQ_BGL = False

    def expand_names(self):
        if self.op.on_nodes:
            self.needed_locks[Level.NODE] = sorted(set(self.op.on_nodes))
            self.share_locks[Level.NODE] = True

    def check_prereq(self):
        for name in self.op.on_nodes:
            self.node(name)         # refuses a node not in the cluster

    def exec(self):
        for round_ in range(self.op.repeat + 1):
            self.feedback(f"Delay round {round_ + 1} of {self.op.repeat + 1}: sleeping {self.op.duration:g}s")
            if self.op.on_master:
                self.clock.sleep(self.op.duration)
            if self.op.on_nodes:
                for res in self.rpc.test_delay.on(self.op.on_nodes, self.op.duration).values():
                    res.raise_on_error()
        return True
