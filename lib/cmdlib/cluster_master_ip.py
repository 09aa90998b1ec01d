"""The floating master IP's units (gnt-cluster activate-master-ip, deactivate-master-ip) and the
moves of the address that modify and rename make, in Ganeti's order: taken down with the old
parameters, the config changed, put up with the new ones."""
from __future__ import annotations

from genet import errors, master_ip, opcodes
from genet.cmdlib.base import Feedback, LogicalUnit
from genet.rpc import NodeRpc, RpcResult


def turn(rpc: NodeRpc, data, action: str) -> RpcResult:
    """Start or stop the master IP of ``data`` on its master node."""
    call = rpc.node_activate_master_ip if action == master_ip.START else rpc.node_deactivate_master_ip
    return call(data.cluster["master_node"], master_ip.network(data), data.cluster["use_external_mip_script"])


def floating(data) -> bool:
    return master_ip.problem(data) is None


class _MasterIpLU(LogicalUnit):
    ACTION: str
    FAILURE: str

    def check_prereq(self):
        why = master_ip.problem(self.cfg.snapshot())
        if why:
            raise errors.OpPrereqError(f"Cannot {self.ACTION} the master IP: {why}", errors.ECode.WRONG_STATE)

    def exec(self):
        turn(self.rpc, self.cfg.snapshot(), self.ACTION).raise_on_error(self.FAILURE)
        return True


class LUClusterActivateMasterIp(_MasterIpLU):
    OPCODE = opcodes.OpClusterActivateMasterIp
    ACTION, FAILURE = master_ip.START, "Could not activate the master IP"


class LUClusterDeactivateMasterIp(_MasterIpLU):
    OPCODE = opcodes.OpClusterDeactivateMasterIp
    ACTION, FAILURE = master_ip.STOP, "Could not deactivate the master IP"


class MasterIpChange:
    """gnt-cluster modify's --master-netdev, --master-netmask and --use-external-mip-script:
    checked against the config (``values``: what to record), then the address moved."""

    KEYS = ("master_netdev", "master_netmask", "use_external_mip_script")

    def __init__(self, op, data):
        self.values = {key: getattr(op, key) for key in self.KEYS if getattr(op, key) is not None}
        cluster = data.cluster
        if "master_netmask" in self.values:
            try:
                master_ip.check_netmask(cluster["master_ip"], self.values["master_netmask"])
            except errors.OpPrereqError:
                raise errors.OpPrereqError(f"CIDR netmask ({self.values['master_netmask']}) not valid",
                                           errors.ECode.INVAL) from None
        self.old = data
        self.new = data.replace(cluster=cluster.replace(**self.values))
        self.moves = self.values.get("master_netdev", cluster["master_netdev"]) != cluster["master_netdev"]
        why = master_ip.problem(self.new)
        if self.values.get("master_netdev") and why:
            raise errors.OpPrereqError(f"--master-netdev: {why}", errors.ECode.WRONG_STATE)

    def before(self, rpc: NodeRpc, feedback: Feedback, force: bool) -> None:
        """Take the address off the old device, or give it its new netmask where it is."""
        old = self.old.cluster
        if self.moves and floating(self.old):
            feedback(f"Shutting down master ip on the current netdev ({old['master_netdev']})")
            res = turn(rpc, self.old, master_ip.STOP)
            if res.failed and not force:
                res.raise_on_error("Could not disable the master ip")
            if res.failed:
                feedback(f"Could not disable the master ip (continuing anyway): {res.fail_msg}")
        if self.moves:
            feedback(f"Changing master_netdev from {old['master_netdev']} to {self.new.cluster['master_netdev']}")
        netmask = self.new.cluster["master_netmask"]
        if netmask != old["master_netmask"]:
            feedback(f"Changing master IP netmask to {netmask}")
            if floating(self.old) and not self.moves:
                res = rpc.node_change_master_netmask(old["master_node"], old["master_netmask"], netmask,
                                                     old["master_ip"], old["master_netdev"])
                if res.failed:
                    feedback(f"WARNING: Could not change the master IP netmask: {res.fail_msg}")

    def after(self, rpc: NodeRpc, feedback: Feedback) -> None:
        """Put the address on the new device."""
        if self.moves and floating(self.new):
            feedback(f"Starting the master ip on the new master netdev ({self.new.cluster['master_netdev']})")
            res = turn(rpc, self.new, master_ip.START)
            if res.failed:
                feedback(f"WARNING: Could not re-enable the master ip on the master, please restart manually:"
                         f" {res.fail_msg}")
