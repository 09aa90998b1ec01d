"""The power of nodes: out-of-band commands (gnt-node power and health, gnt-cluster epo) and a
node's own powercycle, as Ganeti's LUOobCommand and LUNodePowercycle.

An OOB command runs each node's ``oob_program`` on the master (genet.oob over the master's
genet-noded) and records what power-on and power-off did in the node's ``powered`` state, a
state of record: the program's word, not a measurement.
"""
from __future__ import annotations

import logging
import time

from genet import errors, oob, opcodes, params
from genet.cmdlib.base import LogicalUnit
from genet.locking import ALL_SET, Level
from genet.query.common import RS_NODATA, RS_NORMAL, RS_UNAVAIL, nice_key

log = logging.getLogger("genet")
SKIP_MASTER = (oob.POWER_OFF, oob.POWER_CYCLE)     # never run for the master (it would lose itself)


def oob_program(data, node: dict) -> str:
    """The node's OOB program (its node parameter, inherited from its group and the cluster), or ""."""
    return params.ndparams(data, data.nodegroups.get(node["group"], {}), node.get("ndparams", {}))["oob_program"]


class LUOobCommand(LogicalUnit):
    OPCODE = opcodes.OpOobCommand
    REQ_BGL = False

    def expand_names(self):
        self.needed_locks[Level.NODE] = [self.node(name)["name"] for name in self.op.node_names] or ALL_SET

    def check_prereq(self):
        op = self.op
        data = self.cfg.snapshot()
        self.master = data.cluster["master_node"]
        names = list(dict.fromkeys(op.node_names))
        if op.command in SKIP_MASTER and self.master in names:
            program = oob_program(data, data.nodes[self.master])
            hint = (f"run '{program} {op.command} {self.master}' if you want to operate on the master regardless"
                    if program else "it does not support out-of-band operations")
            raise errors.OpPrereqError(f"Operating on the master node {self.master} is not allowed for"
                                       f" {op.command}; {hint}", errors.ECode.INVAL)
        for name in names:
            if not oob_program(data, self.node(name)):
                raise errors.OpPrereqError(oob.unsupported(name), errors.ECode.WRONG_STATE)
        if not names:       # every node, those without a program answering "unavailable"
            names = [n for n in data.nodes if not (op.command in SKIP_MASTER and n == self.master)]
        self.nodes = sorted((self.node(name) for name in names), key=lambda n: nice_key(n["name"]))
        if op.command == oob.POWER_OFF and not op.ignore_status:
            for node in self.nodes:
                if not node["offline"]:
                    raise errors.OpPrereqError(f"Cannot power off node {node['name']} because it is not marked"
                                               " offline", errors.ECode.WRONG_STATE)
        self.programs = {n["name"]: oob_program(data, n) for n in self.nodes}

    def exec(self):
        """[[(RS_NORMAL, node), (status, answer)], ...] in the nodes' natural order, as Ganeti's."""
        result = []
        for index, node in enumerate(self.nodes):
            name, program = node["name"], self.programs[node["name"]]
            if not program:
                result.append([[RS_NORMAL, name], [RS_UNAVAIL, None]])
                continue
            log.info("Executing out-of-band command '%s' using '%s' on %s", self.op.command, program, name)
            answer = self.rpc.run_oob(self.master, program, self.op.command, name, self.op.timeout)
            if answer.failed:
                self.warn(f"Out-of-band RPC failed on node '{name}': {answer.fail_msg}")
                result.append([[RS_NORMAL, name], [RS_NODATA, None]])
                continue
            try:
                oob.check_payload(self.op.command, answer.payload)
            except errors.OpExecError as err:
                self.warn(f"Payload returned by node '{name}' is not valid: {err}")
                result.append([[RS_NORMAL, name], [RS_NODATA, None]])
                continue
            self.record(node, answer.payload)
            result.append([[RS_NORMAL, name], [RS_NORMAL, answer.payload]])
            if self.op.command == oob.POWER_ON and index < len(self.nodes) - 1:
                self.clock.sleep(self.op.power_delay)
        return result

    def record(self, node: dict, payload) -> None:
        """What the answer means for the node's state of record (and the log)."""
        name, command = node["name"], self.op.command
        if command == oob.HEALTH:
            for item, status in payload:
                if status in (oob.STATUS_WARNING, oob.STATUS_CRITICAL):
                    self.warn(f"Item '{item}' on node '{name}' has status '{status}'")
        elif command == oob.POWER_STATUS and payload[oob.POWERED] != node.get("powered", True):
            log.warning("Recorded power state (%s) of node '%s' does not match actual power state (%s)",
                        node.get("powered", True), name, payload[oob.POWERED])
        elif command in (oob.POWER_ON, oob.POWER_OFF):
            powered = command == oob.POWER_ON
            log.info("Node %s is now recorded as %s", name, "powered" if powered else "not powered")

            def change(data):
                entry = data.nodes[name]
                entry["powered"] = powered
                entry["mtime"] = time.time()
                entry["serial_no"] += 1
            self.cfg.update(change)

    def warn(self, message: str) -> None:
        log.warning(message)
        self.feedback(f" - WARNING: {message}")


class LUNodePowercycle(LogicalUnit):
    """A last resort that takes no locks, as Ganeti's: the node's daemon restarts it soon after
    answering (genet.powercycle says how)."""
    OPCODE = opcodes.OpNodePowercycle
    REQ_BGL = False

    def check_prereq(self):
        node = self.node(self.op.node_name)
        if node["name"] == self.cfg.read(lambda d: d.cluster["master_node"]) and not self.op.force:
            raise errors.OpPrereqError("The node is the master and the force parameter was not set",
                                       errors.ECode.INVAL)

    def exec(self):
        res = self.rpc.node_powercycle(self.op.node_name)
        if res.failed:
            raise errors.OpExecError(f"Failed to schedule the reboot: {res.fail_msg}")
        return res.payload
