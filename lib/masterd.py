"""genet-masterd: the master daemon (job queue, config, luxi server).

The luxi server runs on the Twisted reactor; every request is handled in the
reactor's thread pool because the queue, the config and RPC block.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Callable, Iterator

from genet import config, errors, paths, serializer
from genet.clock import SYSTEM, Clock
from genet.config_file import ConfigFile
from genet.config_writer import ConfigWriter
from genet.drbd_pool import Reservations
from genet.ha.election import MasterLease
from genet.ha.master_env import MasterRecovery
from genet.jobqueue import JobQueue
from genet.locking import Level, LockManager
from genet.processor import Processor
from genet.queue_store import QueueStore
from genet.rpc import NodeRpc, RpcClient, RpcResult
from genet.usage import UsageHistory, UsageSampler

log = logging.getLogger("genet-masterd")
MAX_MESSAGE = 64 * 1024 * 1024
HEARTBEAT = 2.0         # seconds between two heartbeat rounds over the nodes
READ_LEASE = 4 * HEARTBEAT  # a master answers reads while a majority answered it this recently


class LatencyHistogram:
    """Seconds from a job's submission to its end, in Prometheus-style cumulative buckets."""
    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = [0] * len(self.BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe_job(self, job) -> None:
        if not job.received_ts or not job.end_ts:
            return
        seconds = max(0.0, (job.end_ts[0] - job.received_ts[0]) + (job.end_ts[1] - job.received_ts[1]) / 1e6)
        with self._lock:
            for index, bound in enumerate(self.BUCKETS):
                if seconds <= bound:
                    self.counts[index] += 1
            self.total += seconds
            self.count += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"buckets": [[b, c] for b, c in zip(self.BUCKETS, self.counts)],
                    "sum": self.total, "count": self.count}


class MasterContext:
    """Everything a logical unit reaches: config, node RPC, locks, job queue, time.

    Built from its parts, so tests and simulators pass their own (an in-process transport, a
    ManualClock); ``on_this_node`` builds them as the daemon does."""

    def __init__(self, node_name: str, cfg: ConfigWriter, transport: RpcClient, store: QueueStore,
                 clock: Clock = SYSTEM, workers: int | None = None, read_lease: bool = True):
        self.node_name = node_name
        self.cfg = cfg
        self.clock = clock
        data = self.cfg.snapshot()
        self.rpc = NodeRpc(transport, self.address_of)
        transport.reconciler = self
        self.epoch = config.master_epoch(data)
        self.deposed: str | None = None     # the master that took over, once this one stepped down
        self.on_deposed: Callable[[], None] = lambda: None     # main(): stop serving
        self._heartbeat_stop = threading.Event()
        self.glm = LockManager()
        self.glm.add(Level.NODE, list(data.nodes))
        self.glm.add(Level.INSTANCE, list(data.instances))
        self.drbd_reservations = Reservations()   # minors and ports picked by running jobs
        self._last_ssconf: dict | None = None
        self._ssconf_nodes: set[str] = set()     # who holds _last_ssconf
        self.excluded: set[str] = set()     # see _peers
        self._lagging: set[str] = set()     # candidates that missed job updates
        self._queue_mark = 0                # the queue's newest version at the last heartbeat round
        self._suspect: dict[str, int] = {}  # nodes that may run instances placed elsewhere -> times marked
        self._moving: dict[str, str] = {}   # instance -> the node a job is moving it to (moving_to)
        self.majority_heard = clock.monotonic()
        self.read_lease = read_lease        # off with --no-voting: the admin vouches that the others are down
        self._state_lock = threading.Lock()  # _lagging, _suspect, _moving, deposed
        self.cfg.set_replicator(self._replicate_config)
        self.job_latency = LatencyHistogram()
        self.queue = JobQueue(store, self._replicate_jobs, on_final=self._job_final)
        self.processor = Processor(self, workers or data.cluster["max_running_jobs"])
        self.usage = UsageSampler(UsageHistory(), self.rpc, self.cfg, clock)
        self.ha = MasterRecovery(self)
        self.lease: MasterLease | None = None    # the master role's etcd lease (automatic failover)

    @classmethod
    def on_this_node(cls, workers: int | None = None, no_voting: bool = False,
                     elected: bool = False) -> "MasterContext":
        """The daemon's context: this node's config and job queue, jobs left running by the
        previous master failed. Refused unless the config names this node the master and (without
        ``no_voting``, or a lease won on the leadership store: ``elected``) a majority of the
        nodes agrees."""
        node_name = paths.node_name()
        cfg = ConfigWriter(paths.config_file())
        data = cfg.snapshot()
        if data.cluster["master_node"] != node_name:
            raise errors.NotMasterError(
                f"this node ({node_name}) is not the master; the master is {data['cluster']['master_node']}")
        from genet.bootstrap import check_master_votes
        check_master_votes(data, node_name, no_voting or elected)
        ctx = cls(node_name, cfg, RpcClient(paths.cluster_cert(), data.cluster["noded_port"]),
                  QueueStore(paths.queue_db()), workers=workers, read_lease=not no_voting)
        ctx.processor.recover(node_name)
        ctx.usage.path = paths.usage_history_file()
        ctx.usage.history = UsageHistory.load(ctx.usage.path, ctx.clock.time())
        return ctx

    def usage_sampling(self) -> None:
        """Sample what nodes and instances use until this master stops (genet.usage)."""
        self.usage.run(self._heartbeat_stop)

    # --- the master lease (automatic master failover, genet.ha.election) -------

    def hold_lease(self, lease: int, granted: float | None = None) -> None:
        """Hold the master role's ``lease`` (asked for at ``granted``, default now) from now on:
        keep_lease renews it, and no job is accepted once it may have expired."""
        from genet.ha import node_agent, settings
        data = self.cfg.snapshot()
        timing = settings.timing(data.cluster.get("ha", {}))
        self.lease = MasterLease(node_agent.store_of(data), self.clock, timing, lease,
                                 self.clock.monotonic() if granted is None else granted)

    def release_lease(self) -> None:
        """Give the role up on the store (automatic failover turned off): nothing else changes."""
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.release()

    def keep_lease(self) -> None:
        """Renew the lease while this master runs; the moment it may have expired, stop
        accepting jobs and step down (a candidate takes over once the store lets it expire)."""
        while not self._heartbeat_stop.is_set():
            lease = self.lease
            if lease is None:
                delay = 1.0
            elif not lease.renew():
                if lease is self.lease:
                    self.step_down("the leadership store", f"lost the master lease {lease.lease}", None,
                                   catch_up=False)
                return
            else:
                delay = lease.next_delay()
            if self._heartbeat_stop.wait(delay):
                return

    def check_lease(self) -> None:
        """Refuse to act as master once the lease may have expired (see keep_lease)."""
        lease = self.lease
        if lease is not None and not lease.holds():
            raise errors.NotMasterError(f"{self.node_name} lost its master lease; a master candidate takes over")

    def instance_ha(self) -> None:
        """Fence dead nodes and restart their HA instances until this master stops (genet.ha)."""
        self.ha.run(self._heartbeat_stop)

    def address_of(self, node: str) -> str:
        """A node's primary address, from the config (NodeRpc's resolver)."""
        address = self.cfg.read(lambda d: d.nodes[node]["primary_ip"] if node in d.nodes else None)
        if address is None:
            raise errors.OpPrereqError(f"node {node!r} is not in the cluster", errors.ECode.NOENT)
        return address

    def _job_final(self, job) -> None:
        self.job_latency.observe_job(job)
        self.processor.job_finished(job)

    # --- replication --------------------------------------------------------

    def _peers(self, data: dict) -> tuple[dict[str, str], int]:
        """Online candidates other than the master, and the acks (master included) needed.

        Candidates the admin has just declared offline while they were unreachable
        (``excluded``) no longer count: that decision is what lets a cluster that
        lost its majority of candidates go on.
        """
        cands = [n for n in config.candidates(data) if n not in self.excluded]
        peers = {n: data.nodes[n]["primary_ip"] for n in cands if n != self.node_name}
        return peers, len(cands) // 2 + 1

    def _replicate_config(self, data: dict, change: dict | None) -> None:
        """Send ``change`` (None: the whole document) to the candidates; a candidate that missed
        an earlier change answers with its older serial and gets the whole document instead."""
        self.check_lease()
        peers, needed = self._peers(data)
        serial = data.serial_no
        committed = lambda r: not r.failed and r.payload == serial      # noqa: E731
        if change is None:
            acks, results = self.rpc.upload_config.quorum(peers, self.cfg.content().decode(), needed=needed - 1,
                                                          accept=committed, on_result=self._check_epoch)
        else:
            acks, results = self.rpc.apply_config_change.quorum(
                peers, change, needed=needed - 1, accept=committed,
                on_result=lambda name, res: self._catch_up_if_behind(name, res, serial))
            behind = {n: peers[n] for n, r in results.items() if not r.failed and r.payload != serial}
            if behind and acks + 1 < needed:
                more, late = self.rpc.upload_config.quorum(behind, self.cfg.content().decode(),
                                                           needed=needed - 1 - acks, accept=committed,
                                                           on_result=self._check_epoch)
                acks += more
                results.update(late)
        self._raise_if_deposed()
        ssconf = config.ssconf_values(data)
        if ssconf != self._last_ssconf:
            online = {n["name"]: n["primary_ip"] for n in data.nodes.values() if not n["offline"]}
            # the files that changed; all of them when a node may have missed some (a node back
            # online, a failed write)
            last = self._last_ssconf if set(online) == self._ssconf_nodes else {}
            changed = {key: value for key, value in ssconf.items() if last.get(key) != value}
            failed = False
            for name, res in self.rpc.write_ssconf.on(online, changed).items():
                if res.failed:
                    failed = True
                    log.warning("ssconf not written on %s: %s", name, res.fail_msg)
            self._last_ssconf, self._ssconf_nodes = (None, set()) if failed else (ssconf, set(online))
        if acks + 1 >= needed:
            self.majority_heard = self.clock.monotonic()
        else:
            failed = sorted(n for n, r in results.items() if r.failed or r.payload != serial)
            raise errors.QuorumError(
                f"config serial {serial} not committed: acknowledged by only {acks + 1} of"
                f" {len(peers) + 1} master candidates (need {needed}); unreachable: {', '.join(failed)};"
                " the master keeps its previous config")

    def _catch_up_if_behind(self, name: str, res: RpcResult, serial: int) -> None:
        """A candidate that answered a change with an older serial missed one: once the write
        that found it is done (it holds the write lock), it gets the whole document."""
        if self._check_epoch(name, res) or res.failed or res.payload >= serial:
            return
        log.info("candidate %s is at config serial %s, behind %d: sending the whole config", name, res.payload, serial)
        threading.Thread(target=self._send_whole_config, args=(name,), daemon=True).start()

    def _send_whole_config(self, name: str) -> None:
        with self.cfg.writing():
            res = self.rpc.upload_config(name, self.cfg.content().decode())
        if not self._check_epoch(name, res) and res.failed:
            log.warning("config not sent to %s: %s", name, res.fail_msg)

    def _replicate_jobs(self, records: list) -> None:
        self.check_lease()
        peers, needed = self.cfg.read(self._peers)
        if not peers:
            return
        acks, _ = self.rpc.jobqueue_update.quorum(peers, records, self.epoch, needed=needed - 1,
                                                  on_result=self._track_candidate)
        self._raise_if_deposed()
        if acks + 1 >= needed:
            self.majority_heard = self.clock.monotonic()
        else:
            raise errors.QuorumError(f"job queue update acknowledged by {acks + 1} of {len(peers) + 1}"
                                     f" master candidates (need {needed})")

    def _track_candidate(self, name: str, result) -> None:
        """Note candidates that missed a job update; give them everything once they answer."""
        if self._check_epoch(name, result):
            return
        with self._state_lock:
            if result.failed:
                self._lagging.add(name)
                return
            if name not in self._lagging:
                return
            self._lagging.discard(name)
        threading.Thread(target=self._resync, args=(name,), daemon=True).start()

    def _resync(self, name: str) -> None:
        try:
            self.sync_new_candidate(name)
            log.info("candidate %s is back and has caught up", name)
        except errors.GenericError as err:
            log.warning("catching up candidate %s failed: %s", name, err)
            with self._state_lock:
                self._lagging.add(name)

    # --- the master's term (epoch) ---------------------------------------------

    def _check_epoch(self, name: str, result) -> bool:
        """True (and this master steps down) if ``name`` refused a write as coming from an older epoch."""
        if isinstance(result.error, errors.EpochError):
            new_master = result.error.args[1] if len(result.error.args) > 1 else None
            self.step_down(name, f"{name} refused a write: {result.fail_msg}", new_master)
            return True
        return False

    def _raise_if_deposed(self) -> None:
        if self.deposed is not None:
            raise errors.NotMasterError(f"{self.node_name} is no longer the master; the master is {self.deposed}")

    def heartbeat(self, interval: float = HEARTBEAT) -> None:
        """Call every online node now and then (the first round at once).

        A node of a newer epoch means a master-failover happened while this master could not
        hear of it (a partition): it steps down. A node that was cut off (it says so, or it did
        not answer a round) first has the instances the config places elsewhere stopped. A
        candidate that answers again after missing job updates is given them. The rounds a
        majority of candidates answered keep this master's read lease (see may_serve_reads)."""
        while self.deposed is None:
            try:
                self.heartbeat_round(interval)
            except Exception:       # a bad answer must not end the heartbeat for good
                log.exception("heartbeat round failed")
            if self._heartbeat_stop.wait(interval):
                return

    def heartbeat_round(self, timeout: float = HEARTBEAT) -> None:
        started = self.clock.monotonic()
        nodes, peers, needed, serial = self.cfg.read(lambda d: (
            {n["name"]: n["primary_ip"] for n in d.nodes.values() if not n["offline"]}, *self._peers(d),
            d.serial_no))
        # every job version stored here before the previous round was committed, so on a majority;
        # a candidate whose copy ends before it lost some (it stepped down and emptied its copy)
        queue_mark, self._queue_mark = self._queue_mark, self.queue.store.max_seq()
        answered = 1        # this master
        for name, res in self.rpc.heartbeat.on(nodes, self.epoch, self.node_name, timeout=timeout).items():
            if self._check_epoch(name, res):
                return
            if res.failed:
                self.strays_possible_on(name)
                if name in peers:       # it may miss updates whose quorum did not wait for it
                    with self._state_lock:
                        self._lagging.add(name)
                continue
            beat = res.payload
            if beat.epoch > self.epoch:
                self.step_down(name, f"{name} knows master {beat.master} of epoch {beat.epoch} (this master's:"
                                     f" {self.epoch})", beat.master)
                return
            if (beat.cut_off or self.strays_pending(name)) and self._still_online(name):
                self.stop_strays(name, nodes[name])
            self.ha.heard(name, beat.synced)
            if name in peers:
                answered += 1
                if beat.serial < serial or beat.queue_seq < queue_mark:
                    with self._state_lock:  # it missed writes (a take-over's, behind a partition)
                        self._lagging.add(name)
                self._track_candidate(name, res)        # one that missed updates catches up now
        if answered >= needed:
            self.majority_heard = started

    def _still_online(self, name: str) -> bool:
        """Whether the node is online in the config now: one set offline while a round's call
        to it was under way (a partitioned node answers when its link comes back) is not
        called again until it is set online."""
        return self.cfg.read(lambda d: name in d.nodes and not d.nodes[name]["offline"])

    def stop_strays(self, name: str, address: str) -> bool:
        """Stop on node ``name`` every instance the config places elsewhere, except one a job is
        moving there right now (see moving_to; the next round asks again). True once the node
        serves again (rpc's reconciler: a job's call to such a node waits for this)."""
        mark = self._suspect.get(name)
        with self._state_lock:
            arriving = sorted(i for i, node in self._moving.items() if node == name)
        placed = self.cfg.read(lambda d: [i for i, inst in d.instances.items() if inst["primary_node"] == name])
        res = self.rpc.with_addresses({name: address}).stop_strays(name, self.epoch, placed + arriving)
        if self._check_epoch(name, res):
            return False
        if res.failed:
            log.error("could not stop the instances %s runs but the config places elsewhere: %s", name, res.fail_msg)
            self.strays_possible_on(name)
            return False
        if res.payload:
            log.warning("node %s was cut off: stopped %s, which the config places elsewhere", name,
                        ", ".join(res.payload))
        if arriving:
            self.strays_possible_on(name)
        else:
            with self._state_lock:        # unless it was marked again meanwhile (by a job that moved one)
                if self._suspect.get(name) == mark:
                    self._suspect.pop(name, None)
        return True

    def strays_pending(self, node: str) -> bool:
        return node in self._suspect

    def strays_possible_on(self, node: str) -> None:
        """``node`` may run an instance the config places elsewhere (it missed a heartbeat, or a
        job moved an instance away without stopping it there): stopped on its next contact."""
        with self._state_lock:
            self._suspect[node] = self._suspect.get(node, 0) + 1

    @contextlib.contextmanager
    def moving_to(self, instance: str, node: str) -> Iterator[None]:
        """While a job brings ``instance`` up on ``node`` before the config places it there (a
        migration's target runs before the config names it), that node may run it."""
        with self._state_lock:
            self._moving[instance] = node
        try:
            yield
        finally:
            with self._state_lock:
                self._moving.pop(instance, None)

    def may_serve_reads(self) -> None:
        """Answer reads only while a majority of candidates answered a recent heartbeat: a master
        cut off from them may have been deposed, and its config may be old."""
        silent = self.clock.monotonic() - self.majority_heard
        if silent > READ_LEASE and self.read_lease:
            raise errors.QuorumError(
                f"{self.node_name} has not heard a majority of the master candidates for {silent:.0f} s: it may"
                " have been deposed by a master-failover behind a partition, so it serves no reads")

    def step_down(self, source: str, reason: str, new_master: str | None, catch_up: bool = True) -> None:
        """A master of a newer epoch exists (or, without ``catch_up``, this master lost its
        lease and one will): stop acting as master, at once and for good."""
        with self._state_lock:
            if self.deposed is not None:
                return
            self.deposed = new_master or "unknown"
        log.error("stepping down as master: %s", reason)
        threading.Thread(target=self._leave_master_role, args=(source, catch_up), daemon=True).start()

    def _leave_master_role(self, source: str, catch_up: bool = True) -> None:
        """Keep nothing this master could not commit: the config and ssconf come from a node of
        the newer epoch; the local job queue is emptied (its uncommitted versions may carry
        higher sequence numbers than the committed ones, which could then never replace them)
        and filled again from the new master. A master that lost its lease stops serving at
        once instead: the new master, once elected, gives this candidate both when it answers
        (a candidate that missed its updates is synced)."""
        from genet.bootstrap import merge_job_queues
        self._heartbeat_stop.set()
        self.queue.stop()                   # no more writes of this master's own
        self.queue.store.purge()
        data = self._config_of_newer_epoch([self.deposed, source]) if catch_up else None
        if data is not None:
            self.deposed = new = data.cluster["master_node"]
            try:
                merge_job_queues(self.rpc.with_addresses({new: data.nodes[new]["primary_ip"]}), [new])
            except errors.GenericError as err:
                log.error("could not take the committed jobs from %s: %s", new, err)
        log.error("stepped down: the master is %s; stopping the master daemons", self.deposed)
        self.on_deposed()

    def _config_of_newer_epoch(self, sources: list[str | None], timeout: float = 30.0) -> dict | None:
        """The config of the newer epoch from one of ``sources``, stored here with its ssconf.
        A master-failover may still be under way (fenced, no new config yet): wait for it."""
        addresses = self.cfg.read(lambda d: {n: d.nodes[n]["primary_ip"] for n in sources if n in d.nodes})
        deadline = self.clock.monotonic() + timeout
        while self.clock.monotonic() < deadline:
            for name, address in addresses.items():
                res = self.rpc.with_addresses(addresses).get_config(name, timeout=10)
                try:
                    data = config.parse(res.raise_on_error("get_config"), f"config from {name}")
                except errors.GenericError as err:      # unreachable, or a bad copy: ask the next
                    log.warning("no config from %s: %s", name, err)
                    continue
                if config.master_epoch(data) > self.epoch:
                    ConfigFile(paths.config_file()).replace(res.payload.encode())
                    for key, value in config.ssconf_values(data).items():
                        config.write_atomic(paths.ssconf_file(key), f"{value}\n".encode())
                    return data
            self.clock.sleep(1)
        log.error("no config of an epoch newer than %d from %s within %.0f s", self.epoch,
                  ", ".join(addresses), timeout)
        return None

    def sync_new_candidate(self, name: str) -> None:
        """Give a candidate (new, or back after missing writes) the config, its ssconf and every job."""
        self.rpc.upload_config(name, self.cfg.content().decode()).raise_on_error()
        self.rpc.write_ssconf(name, config.ssconf_values(self.cfg.snapshot())).raise_on_error()
        self.rpc.write_rapi_users(name, _read_or_none(paths.rapi_users_file()))
        self.rpc.upload_file(name, *_domain_secret_file())
        store = self.queue.store
        ids = store.ids(None)
        for start in range(0, len(ids), 500):
            records = store.records(ids[start:start + 500])
            res = self.rpc.jobqueue_update(name, records, self.epoch, timeout=30)
            if self._check_epoch(name, res):
                self._raise_if_deposed()
            res.raise_on_error("jobqueue_update")

    def note_offline_decision(self, jobs: list) -> None:
        """An unreachable candidate being set offline stops counting for the majority now.

        Otherwise the very job that records the decision could not be replicated
        when the dead candidates are the majority.
        """
        for ops in jobs if isinstance(jobs, list) else []:
            for op in ops if isinstance(ops, list) else []:
                if not (isinstance(op, dict) and op.get("OP_ID") == "OP_NODE_SET_PARAMS"
                        and op.get("offline") is True):
                    continue
                name = op.get("node_name")
                node = self.cfg.read(lambda d: d.nodes.get(name))
                if node is None or name == self.node_name or not node["master_candidate"]:
                    continue
                if self.rpc.version(name, timeout=1).failed:     # a live node answers in milliseconds
                    log.warning("candidate %s is unreachable and being set offline: it no longer counts"
                                " for the majority", name)
                    self.excluded.add(name)

    def redistribute(self, feedback) -> None:
        data = self.cfg.snapshot()
        peers, _ = self._peers(data)
        content = self.cfg.content().decode()
        for name, res in self.rpc.upload_config.on(peers, content).items():
            feedback(f"config to {name}: {'FAILED: ' + res.fail_msg if res.failed else 'ok'}")
        online = {n["name"]: n["primary_ip"] for n in data.nodes.values() if not n["offline"]}
        for name, res in self.rpc.write_ssconf.on(online, config.ssconf_values(data)).items():
            feedback(f"ssconf to {name}: {'FAILED: ' + res.fail_msg if res.failed else 'ok'}")
        users = _read_or_none(paths.rapi_users_file())
        for name, res in self.rpc.write_rapi_users.on(peers, users).items():
            feedback(f"RAPI users file to {name}: {'FAILED: ' + res.fail_msg if res.failed else 'ok'}")
        for name, res in self.rpc.upload_file.on(peers, *_domain_secret_file()).items():
            feedback(f"cluster domain secret to {name}: {'FAILED: ' + res.fail_msg if res.failed else 'ok'}")
        self._last_ssconf, self._ssconf_nodes = config.ssconf_values(data), set(online)

    # --- jobs ---------------------------------------------------------------

    def submit(self, jobs: list[list[dict]]) -> list[int]:
        self.check_lease()
        self.note_offline_decision(jobs)
        return self.processor.submit(jobs)

    def stop(self) -> None:
        self._heartbeat_stop.set()
        self.processor.stop()
        self.queue.stop()
        self.rpc.client.close()


def _lock_rows(locks: dict[str, dict]) -> list[dict]:
    """The lock manager's view as Ganeti's lock query shows it: owners and waiting jobs by id."""
    def who(owner) -> str:
        return str(owner) if isinstance(owner, (int, str)) else "masterd"
    return [{"name": name, "mode": info["mode"], "owner": sorted(who(o) for o in info["owners"]),
             "pending": [[mode, [who(owner)]] for mode, owner in info["waiting"]]}
            for name, info in locks.items()]


def _domain_secret_file() -> tuple[str, str, int]:
    """upload_file's arguments for the cluster domain secret (made here first if the cluster
    predates it), so that a new master prepares remote exports with the same secret."""
    from genet import impexp
    return impexp.upload(impexp.domain_secret())


def _read_or_none(path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


class LuxiHandlers:
    """The luxi methods; each runs in a pool thread."""
    READS = frozenset({"Query", "QueryClusterInfo", "QueryConfigValues", "QueryTags", "QueryFilters"})   # see may_serve_reads

    def __init__(self, ctx: MasterContext):
        self.ctx = ctx

    def SubmitJob(self, ops):
        return self.ctx.submit([ops])[0]

    def SubmitManyJobs(self, jobs):
        return [[True, job_id] for job_id in self.ctx.submit(jobs)]

    def WaitForJobChange(self, job_id, fields, prev_info, prev_serial, timeout=10.0):
        return self.ctx.queue.wait_for_change(int(job_id), list(fields), prev_info, prev_serial, float(timeout))

    def CancelJob(self, job_id, kill=False):
        return self.ctx.processor.cancel(int(job_id), bool(kill))

    def ChangeJobPriority(self, job_id, priority):
        if isinstance(priority, bool) or not isinstance(priority, int) or not -20 <= priority <= 19:
            raise errors.ParameterError(f"a job priority is an integer from -20 to 19, not {priority!r}")
        return self.ctx.processor.change_priority(int(job_id), priority)

    # job filter rules (gnt-filter, /2/filters): changed at once, not through a job, as Ganeti's
    def ReplaceFilter(self, uuid, priority, predicates, action, reason):
        from genet import filters
        rule = filters.new_rule(uuid, priority, predicates, action, reason, self.ctx.queue.last_id())
        self.ctx.cfg.update(lambda data: data.filters.__setitem__(rule["uuid"], rule))
        self.ctx.processor.schedule()
        return rule["uuid"]

    def DeleteFilter(self, uuid):
        def delete(data):
            if data.filters.pop(uuid, None) is None:
                raise errors.OpPrereqError(f"Filter rule with UUID {uuid} does not exist", errors.ECode.NOENT)
        self.ctx.cfg.update(delete)
        self.ctx.processor.schedule()

    def QueryFilters(self, uuids, fields):
        from genet import qfilter, query
        query.check_fields("filter", list(fields))
        data = self.ctx.cfg.snapshot()
        missing = [u for u in uuids or [] if u not in data.filters]
        if missing:
            raise errors.OpPrereqError(f"filter rule(s) not found: {', '.join(missing)}", errors.ECode.NOENT)
        result = query.query_filters(data, list(fields), qfilter.names_filter("uuid", uuids or []))
        return [[value for _, value in row] for row in result["data"]]

    def ArchiveJob(self, job_id):
        return bool(self.ctx.queue.archive([int(job_id)]))

    def AutoArchiveJobs(self, age, timeout=60.0):
        return list(self.ctx.queue.auto_archive(float(age), float(timeout)))

    def QueryJobs(self, ids, fields):
        return self.ctx.queue.query([int(i) for i in ids] if ids else None, list(fields), archived=False)

    def Query(self, what, fields, qfilter=None):
        from genet import query
        if what == "job":
            from genet.jobs import requested_ids
            extra = sorted(query.filter_fields(qfilter) - set(fields))
            query.check_fields("job", list(fields) + extra)
            rows = self.ctx.queue.query(requested_ids(qfilter), list(fields) + extra, archived=True)
            return query.query_jobs(rows, [], list(fields), qfilter)
        if what == "lock":
            return query.query_locks(_lock_rows(self.ctx.glm.list_owners()), list(fields), qfilter)
        data = self.ctx.cfg.snapshot()
        if what == "filter":
            return query.query_filters(data, list(fields), qfilter)
        if what == "node":
            return query.query_nodes(data, list(fields), qfilter, self._live_nodes)
        if what == "cluster":
            return query.query_cluster(data, list(fields))
        if what == "instance":
            return query.query_instances(data, list(fields), qfilter, self._live_instances)
        if what == "group":
            return query.query_groups(data, list(fields), qfilter)
        if what == "network":
            return query.query_networks(data, list(fields), qfilter)
        if what == "export":
            return query.query_exports(data, list(fields), qfilter, self._live_exports)
        return query.field_definitions(what, [])   # raises for an unknown resource

    def _live_nodes(self, nodes: list[dict]) -> dict:
        results = self.ctx.rpc.node_info.on({n["name"]: n["primary_ip"] for n in nodes})
        return {name: None if res.failed else res.payload for name, res in results.items()}

    def _live_exports(self, nodes: dict[str, str]) -> dict:
        results = self.ctx.rpc.export_list.on(nodes)
        return {name: None if res.failed else res.payload for name, res in results.items()}

    def _live_instances(self, nodes: dict[str, str], hypervisors: list[str]) -> dict:
        results = self.ctx.rpc.instances_info.on(nodes, hypervisors)
        return {name: None if res.failed else res.payload for name, res in results.items()}

    def QueryFields(self, what, fields=None):
        from genet import query
        return {"fields": query.field_definitions(what, fields)}

    def QueryClusterInfo(self):
        from genet import opcodes
        from genet.cmdlib import lu_for
        op = opcodes.OpClusterQuery()
        return lu_for(op.OP_ID)(self.ctx, op, lambda msg: None).exec()

    def QueryConfigValues(self, fields):
        data = self.ctx.cfg.snapshot()
        values = {"cluster_name": data.cluster["cluster_name"], "master_node": data.cluster["master_node"],
                  "drain_flag": self.ctx.queue.drained(), "serial_no": data.serial_no,
                  "watcher_pause": data.cluster.get("watcher_pause")}
        unknown = [f for f in fields if f not in values]
        if unknown:
            raise errors.ParameterError(f"unknown config value(s): {', '.join(unknown)}")
        return [values[f] for f in fields]

    def QueryTags(self, kind, name):
        from genet.cmdlib.tags import _target
        return self.ctx.cfg.read(lambda d: sorted(_target(d, kind, name or None).get("tags", [])))

    def SetDrainFlag(self, flag):
        self.ctx.queue.set_drain(bool(flag))
        return True

    def SetWatcherPause(self, until):
        """Pause genet-watcher until a time (seconds since the epoch), or resume it (None).
        Kept in the configuration, so the pause holds on every node and across master failovers."""
        if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))):
            raise errors.ParameterError(f"the pause must end at a number of seconds since the epoch, not {until!r}")

        def change(data):
            data.cluster["watcher_pause"] = until
        self.ctx.cfg.update(change)
        return until

    def QueryMetrics(self):
        """What /metrics shows: the queue's jobs by status and job latency histogram, and each online
        node's reports of the active data collectors ({node: {collector: report}}, None: no answer)."""
        from genet import collectors
        data = self.ctx.cfg.snapshot()
        settings = collectors.settings(data.cluster.data_collectors)
        online = {n["name"]: n["primary_ip"] for n in data.nodes.values() if not n["offline"]}
        results = self.ctx.rpc.data_collectors.on(online, settings) \
            if any(c["active"] for c in settings.values()) else {}
        return {"jobs": self.ctx.queue.store.status_counts(), "job_latency": self.ctx.job_latency.snapshot(),
                "data_collectors": {name: None if res.failed else res.payload for name, res in results.items()}}

    def QueryUsage(self):
        """The recent samples of what nodes and instances really use (genet.usage.UsageHistory)."""
        return self.ctx.usage.history.snapshot()

    def QueryQueueInfo(self):
        return {"drained": self.ctx.queue.drained(), "master": self.ctx.node_name}


def make_factory(handlers: LuxiHandlers):
    from twisted.internet import protocol, threads
    from twisted.protocols import basic

    class LuxiProtocol(basic.LineOnlyReceiver):
        delimiter = b"\x03"
        MAX_LENGTH = MAX_MESSAGE

        def lineReceived(self, line):
            threads.deferToThread(self._handle, line).addCallback(self._send)

        def lineLengthExceeded(self, line):
            self._send({"success": False, "result": ["LuxiError", ["message too long"]]})
            self.transport.loseConnection()

        def _send(self, reply):
            if self.transport is not None:
                self.sendLine(serializer.dumps(reply))

        @staticmethod
        def _handle(line: bytes) -> dict:
            try:
                request = serializer.loads(line)
                method, args = request["method"], request.get("args", [])
                if not isinstance(method, str) or not isinstance(args, list):
                    raise TypeError("method must be a string and args a list")
            except (ValueError, KeyError, TypeError) as err:
                return {"success": False, "result": ["LuxiError", [f"malformed luxi request: {err}"]]}
            if handlers.ctx.deposed is not None:
                return {"success": False, "result": errors.to_wire(errors.NotMasterError(
                    f"this node is no longer the master; the master is {handlers.ctx.deposed}"))}
            func = getattr(handlers, method, None) if not method.startswith("_") else None
            if func is None:
                return {"success": False, "result": ["LuxiError", [f"unknown luxi method {method!r}"]]}
            try:
                if method in handlers.READS:
                    handlers.ctx.may_serve_reads()
                return {"success": True, "result": func(*args)}
            except TypeError as err:
                return {"success": False, "result": ["LuxiError", [f"bad arguments for {method}: {err}"]]}
            except errors.GenericError as err:
                return {"success": False, "result": errors.to_wire(err)}
            except Exception as err:
                log.exception("luxi %s failed", method)
                return {"success": False, "result": errors.to_wire(err)}

    factory = protocol.ServerFactory()
    factory.protocol = LuxiProtocol
    return factory
