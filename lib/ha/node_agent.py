"""genet-noded's part in automatic master failover: on a master candidate of a cluster that has
it on, keep this node's etcd member running and take part in the election (genet.ha.election).

The member is started by the master when failover is turned on (genet.cmdlib's cluster
modify, through the etcd_start RPC); afterwards the agent restarts it whenever it stopped (its
data dir says it was one). The election's effects on this node (``NodeLocal``): take over
(bootstrap.take_master_role: fence a majority of candidates with the new epoch, take the
newest config and job queue), then start genet-masterd with the lease, which masterd keeps
renewing itself (genet.ha.election.MasterLease) and steps down the moment it cannot.
"""
from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from genet import config, daemon_util, errors, paths, serializer
from genet.clock import SYSTEM
from genet.ha import election, settings

log = logging.getLogger("genet-noded")
TAKE_OVER_ASK = 1.5     # seconds the winner waits for each node's answer before taking over


def member_of(data) -> "etcd_member.Member":    # noqa: F821 (imported when used)
    from genet.ha import etcd_member
    me = paths.node_name()
    return etcd_member.Member(me, data.nodes[me]["primary_ip"])


def store_of(data):
    """The leadership store as this node reaches it: through its own member (a member cut off
    from its majority answers nothing, which is what the election must see)."""
    from genet.ha.etcd import EtcdStore
    from genet.ha.etcd_member import CLIENT_PORT
    return EtcdStore(data.nodes[paths.node_name()]["primary_ip"], CLIENT_PORT, paths.cluster_cert())


_loaded: dict = {}      # path -> (its files' stamp, config): the agent looks every second


def local_config():
    """This node's config (candidates hold one), read again only when the file changed."""
    from genet.config_file import journal_of
    path = paths.config_file()
    try:
        stat = path.stat()
        journal = journal_of(path)
        changes = journal.stat() if journal.exists() else None
        stamp = (stat.st_mtime_ns, stat.st_size, changes and (changes.st_mtime_ns, changes.st_size))
        if _loaded.get(path, (None, None))[0] != stamp:
            _loaded[path] = (stamp, config.load(path))
        return _loaded[path][1]
    except (OSError, errors.GenericError):
        return None


def wanted(data) -> bool:
    """Whether this node takes part: automatic failover on, and it is an online candidate."""
    me = paths.node_name()
    node = data.nodes.get(me) if data is not None else None
    return (node is not None and node["master_candidate"] and not node["offline"]
            and settings.settings(data.cluster.get("ha", {}))["auto_master_failover"])


def start_member(members: dict[str, str], token: str) -> int:
    """This node's member of a new store (``members``: name -> primary IP), started at once and
    whenever it stops later (Agent.round); its pid. What it was started with is kept beside its
    data, for those restarts."""
    from genet.ha import etcd_member
    me = paths.node_name()
    if me not in members:
        raise errors.OpPrereqError(f"node {me} is not among the store's members {sorted(members)}",
                                   errors.ECode.INVAL)
    initial = etcd_member.initial_cluster([etcd_member.Member(n, ip) for n, ip in sorted(members.items())])
    config.write_atomic(_start_file(), serializer.dumps({"initial": initial, "token": token}))
    return etcd_member.start(etcd_member.Member(me, members[me]), initial, etcd_member.State.NEW, token)


def stop_member() -> bool:
    """Stop this node's member and forget it (data dir and start file): a later start is new."""
    from genet.ha import etcd_member
    stopped = etcd_member.stop()
    shutil.rmtree(etcd_member.data_dir(), ignore_errors=True)
    _start_file().unlink(missing_ok=True)
    return stopped


def _start_file() -> Path:
    return paths.etcd_dir() / "start.json"


def keep_member_running(data) -> bool:
    """Start this node's member again if it stopped; False when it never was one."""
    from genet.ha import etcd_member
    try:
        start = serializer.loads(_start_file().read_bytes())
    except (OSError, ValueError):
        return False
    etcd_member.start(member_of(data), start["initial"], etcd_member.State.NEW, start["token"])
    return True


class NodeLocal:
    """genet.ha.election.Local on this node; ``how`` it takes over goes into the config."""

    def __init__(self, store, timing, how: str = "election"):
        self.store, self.timing, self.how = store, timing, how
        self.renewed: float | None = None    # send time of the last renewal answered during a take-over

    def auto_failover(self) -> bool:
        return wanted(local_config())

    def take_over(self, epoch: int, lease: int) -> str | None:
        """bootstrap.take_master_role, the lease renewed meanwhile (a take-over that waits for
        a slow node must not outlive it)."""
        from genet import bootstrap
        data = local_config()
        me = paths.node_name()
        rpc = bootstrap._rpc(data)
        others = [n["name"] for n in data.nodes.values() if not n["offline"] and n["name"] != me]
        done = threading.Event()
        keeper = threading.Thread(target=self._keep, args=(lease, done), daemon=True)
        keeper.start()
        try:
            # a dead node must not hold the take-over up: a live one answers in milliseconds
            reachable = sorted(n for n, r in rpc.node_info.on(others, timeout=TAKE_OVER_ASK).items()
                               if not r.failed)
            bootstrap.take_master_role(rpc, data, me, epoch, reachable, wait_lease=False, how=self.how)
        except errors.GenericError as err:
            return str(err)
        finally:
            done.set()
            keeper.join()
        return None

    def _keep(self, lease: int, done: threading.Event) -> None:
        from genet.ha.store import StoreUnavailable
        while not done.wait(self.timing.keepalive):
            sent = SYSTEM.monotonic()
            try:
                if self.store.keepalive(lease):
                    self.renewed = sent
            except StoreUnavailable:
                pass

    def start_master(self, lease: int, granted: float, epoch: int) -> None:
        """masterd with the lease (a masterd still here is a deposed one on its way out: stopped
        first, or it would keep the new one from starting)."""
        daemon_util.stop_master_daemons()
        granted = max(granted, self.renewed or granted)
        daemon_util.start_master_daemons(["--lease", str(lease), "--lease-granted", repr(granted)])

    def master_running(self) -> bool:
        return daemon_util.pid_of("genet-masterd") is not None


class Agent:
    """The loop genet-noded runs: keep the member up, tick the elector."""

    def __init__(self):
        self.elector: election.Elector | None = None

    def run(self, stop: threading.Event) -> None:
        while True:
            data = local_config()
            interval = settings.timing(data.cluster.get("ha", {}) if data is not None else {}).elect
            try:
                self.round(data)
            except Exception:       # one bad round must not end this node's part
                log.exception("election round failed")
            if stop.wait(interval):
                return

    def round(self, data) -> None:
        if not wanted(data):
            self.elector = None
            return
        if not keep_member_running(data):
            return              # not a member yet: the master starts it (etcd_start)
        if self.elector is None:
            self.elector = elector_of(data, "election")
        self.elector.tick()


def elector_of(data, how: str) -> election.Elector:
    """This node's elector; ``how`` it would take over is recorded in the config."""
    store, timing = store_of(data), settings.timing(data.cluster.get("ha", {}))
    return election.Elector(paths.node_name(), store, NodeLocal(store, timing, how), SYSTEM, timing, log.warning)


def hand_over(data) -> None:
    """Manual master-failover with automatic failover on: take the role on the store from the
    current master (its lease is revoked), then take over and start masterd here."""
    why_not = elector_of(data, "master-failover").hand_over()
    if why_not is not None:
        raise errors.OpPrereqError(f"master-failover refused: {why_not}", errors.ECode.ENVIRON)
