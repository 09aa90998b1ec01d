"""Turning automatic master failover on or off (gnt-cluster modify --auto-master-failover): the
leadership store, an etcd member on every online master candidate, is made before the setting
is written and taken away after. Turning it on also hands the running master the role on the
new store, in its current epoch (the store's epoch is seeded one below it, and the first claim
raises it by one; a cluster still in epoch 0 moves to 1), so no epoch is skipped."""
from __future__ import annotations

from genet import errors
from genet.ha import settings
from genet.ha.store import StoreUnavailable

READY_TIMEOUT = 30.0    # seconds a new store may take to elect its own leader


class StoreChange:
    def __init__(self, lu, data, new: dict | None):
        was = settings.settings(data.cluster.get("ha", {}))["auto_master_failover"]
        now = was if new is None else new["auto_master_failover"]
        self.lu, self.data = lu, data
        self.turn_on, self.turn_off = now and not was, was and not now
        self.voters = {n["name"]: n["primary_ip"] for n in data.nodes.values()
                       if n["master_candidate"] and not n["offline"]}
        self.timing = settings.timing(new or data.cluster.get("ha", {}))

    def before(self) -> None:
        if not self.turn_on:
            return
        lu = self.lu
        results = lu.rpc.etcd_start.on(self.voters, self.voters, self.data.cluster["cluster_name"])
        failed = {n: r.fail_msg for n, r in results.items() if r.failed}
        if failed:
            self._stop_store()
            raise errors.OpExecError("the leadership store could not start on "
                                     + "; ".join(f"{n}: {why}" for n, why in sorted(failed.items())))
        lu.feedback(f"Leadership store (etcd) started on {', '.join(sorted(self.voters))}")
        try:
            self._take_role()
        except errors.GenericError:
            self._stop_store()
            raise

    def _take_role(self) -> None:
        from genet.config import master_epoch
        from genet.ha import node_agent
        lu, ctx = self.lu, self.lu.ctx
        store = node_agent.store_of(self.data)
        epoch = max(1, master_epoch(self.data))     # a cluster never failed over is in epoch 0
        deadline = ctx.clock.monotonic() + READY_TIMEOUT
        while True:
            try:
                store.seed_epoch(epoch - 1)
                granted = ctx.clock.monotonic()
                lease = store.grant(self.timing.lease_ttl)
                if not store.claim(ctx.node_name, lease, epoch - 1):
                    raise errors.OpExecError(f"the new leadership store already names a master:"
                                             f" {store.leader()}")
                break
            except StoreUnavailable as err:
                if ctx.clock.monotonic() >= deadline:
                    raise errors.OpExecError(f"the leadership store did not answer within"
                                             f" {READY_TIMEOUT:.0f} s: {err}") from None
                ctx.clock.sleep(0.5)
        ctx.hold_lease(lease, granted)
        if epoch != ctx.epoch:
            ctx.epoch = epoch
            lu.values["master_epoch"] = epoch
        lu.feedback(f"{ctx.node_name} holds the master role on the store (epoch {epoch})")

    def after(self) -> None:
        if not self.turn_off:
            return
        self.lu.ctx.release_lease()
        self._stop_store()
        self.lu.feedback("Leadership store (etcd) stopped")

    def _stop_store(self) -> None:
        for name, res in sorted(self.lu.rpc.etcd_stop.on(self.voters).items()):
            if res.failed:
                self.lu.feedback(f" - WARNING: could not stop the store's member on {name}: {res.fail_msg}")


def refuse_store_member_change(data, node: dict, what: str) -> None:
    """A master candidate is a member of the leadership store while automatic failover is on;
    removing or demoting it would leave a member the store still counts for its majority, so
    it is refused until failover is turned off (and on again, with the new set of candidates)."""
    if node["master_candidate"] and settings.settings(data.cluster.get("ha", {}))["auto_master_failover"]:
        raise errors.OpPrereqError(
            f"node {node['name']} is a member of the leadership store (automatic master failover is on);"
            f" to {what} it, run gnt-cluster modify --auto-master-failover no first, and yes again after",
            errors.ECode.WRONG_STATE)
