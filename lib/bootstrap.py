"""Node-local cluster operations that cannot be jobs: init, join, master failover, destroy."""
from __future__ import annotations

import time
from collections import Counter

from genet import config, daemon_util, errors, luxi, master_ip, netutils, paths, ssl_utils
from genet.config_file import ConfigFile, journal_of
from genet.rpc import NodeRpc, RpcClient


def init_cluster(cluster_name: str, hypervisors: list[str], candidate_pool_size: int,
                 noded_port: int, secondary_ip: str | None = None, storage: dict | None = None,
                 network: dict | None = None) -> dict:
    """Make this node the master of a new one-node cluster and start its daemons (genet-masterd
    then puts the master IP on the device ``network`` names: master_ip.init_settings' arguments)."""
    if paths.config_file().exists():
        raise errors.OpPrereqError(f"this node is already part of a cluster ({paths.config_file()} exists);"
                                   " run 'gnt-cluster destroy' first", errors.ECode.EXISTS)
    storage = {key: value for key, value in (storage or {}).items() if value is not None}
    from genet.opcodes import AbsolutePath, MacPrefix
    try:
        storage["mac_prefix"] = MacPrefix().check(storage.get("mac_prefix", "aa:00:00"))
        if "shared_file_storage_dir" in storage:
            AbsolutePath().check(storage["shared_file_storage_dir"])
    except ValueError as err:
        raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
    name = paths.node_name()
    address = netutils.resolve(name)
    data = config.new_cluster(cluster_name, name, address, noded_port, candidate_pool_size, hypervisors)
    if secondary_ip:
        data.nodes[name]["secondary_ip"] = secondary_ip
    data.cluster.update(config.storage_params(data), **storage)    # every template's settings
    data.cluster["master_ip"] = master_ip.cluster_address(cluster_name, address)
    master_ip.init_settings(data, **(network or {"netdev": None, "netmask": None, "external": False}))
    paths.ensure_dirs()
    ssl_utils.generate_cluster_cert(paths.cluster_cert(), cluster_name)
    from genet import impexp
    impexp.domain_secret()
    write_local_state(data)
    try:
        daemon_util.start("genet-noded")
        daemon_util.start_master_daemons()
        if not luxi.wait_for_socket(paths.master_socket()):
            raise errors.CommandError("genet-masterd did not answer on its socket")
    except errors.GenericError:
        daemon_util.stop_master_daemons()
        daemon_util.stop("genet-noded")
        for path in [paths.config_file(), journal_of(paths.config_file()), paths.cluster_cert(),
                     *config.ssconf_files()]:
            path.unlink(missing_ok=True)
        raise
    return data


def write_local_state(data: dict) -> None:
    ConfigFile(paths.config_file()).replace(config.dumps(data))
    for key, value in config.ssconf_values(data).items():
        config.write_atomic(paths.ssconf_file(key), f"{value}\n".encode())


def prepare_node_join(request: dict) -> dict:
    """On a new node (run over SSH by gnt-node add): install the certificate, start noded."""
    try:
        cert, ssconf = request["cert"], request["ssconf"]
    except (KeyError, TypeError):
        raise errors.OpPrereqError("join request needs 'cert' and 'ssconf'") from None
    if paths.config_file().exists() and not request.get("readd"):
        raise errors.OpPrereqError(f"node {paths.node_name()} already belongs to a cluster"
                                   f" ({paths.config_file()} exists)", errors.ECode.EXISTS)
    paths.ensure_dirs()
    daemon_util.stop("genet-noded")
    config.write_atomic(paths.cluster_cert(), cert.encode(), mode=0o600)
    for key, value in ssconf.items():
        if config.is_ssconf_key(key):
            config.write_atomic(paths.ssconf_file(key), f"{value}\n".encode())
    pid = daemon_util.start("genet-noded")
    return {"node": paths.node_name(), "noded_pid": pid}


def _rpc(data: dict) -> NodeRpc:
    """Node RPC to the nodes of ``data`` (no master daemon to ask for addresses)."""
    addresses = {n["name"]: n["primary_ip"] for n in data.nodes.values()}
    return NodeRpc(RpcClient(paths.cluster_cert(), data.cluster["noded_port"]), addresses.__getitem__)


def gather_votes(data: dict, rpc: NodeRpc, me: str) -> tuple[Counter, int, list[str]]:
    """Ask every other online node who it believes the master is."""
    others = [n["name"] for n in data.nodes.values() if not n["offline"] and n["name"] != me]
    results = rpc.master_vote.on(others) if others else {}
    votes = Counter(r.payload for r in results.values() if not r.failed and r.payload)
    unreachable = sorted(n for n, r in results.items() if r.failed)
    return votes, len(others) + 1, unreachable


def check_master_votes(data: dict, me: str, no_voting: bool) -> None:
    """Refuse to act as master unless a majority of reachable nodes agrees (Ganeti's vote)."""
    if no_voting:
        return
    votes, total, unreachable = gather_votes(data, _rpc(data), me)
    answered = sum(votes.values()) + 1
    if answered * 2 <= total:
        raise errors.OpPrereqError(
            f"only {answered} of {total} nodes answered the master vote (unreachable: {', '.join(unreachable)});"
            " use --no-voting if you are sure the others are down", errors.ECode.ENVIRON)
    if votes:
        winner, count = votes.most_common(1)[0]
        if winner != me and count * 2 >= answered:
            raise errors.NotMasterError(f"{count} of {answered} nodes say the master is {winner}, not {me}")


def master_failover(no_voting: bool) -> dict:
    """Run on a master candidate: take over the master role and start masterd here. With
    automatic master failover on, the role is taken on the leadership store (genet.ha), which
    raises the epoch; otherwise the new epoch is one above every epoch a reachable node knows."""
    me = paths.node_name()
    data = config.load(paths.config_file())
    if me not in data.nodes:
        raise errors.OpPrereqError(f"node {me} is not in its own cluster config", errors.ECode.WRONG_STATE)
    rpc = _rpc(data)
    others = [n["name"] for n in data.nodes.values() if not n["offline"] and n["name"] != me]
    infos = rpc.node_info.on(others, timeout=5)
    reachable = {n for n, r in infos.items() if not r.failed}
    if not no_voting:
        votes = Counter(infos[n].payload["ssconf"].get("master_node") for n in reachable)
        total = len(others) + 1
        if (len(reachable) + 1) * 2 <= total:
            raise errors.OpPrereqError(
                f"only {len(reachable) + 1} of {total} nodes are reachable, no majority for the vote;"
                " use --no-voting if you are sure the unreachable nodes are down", errors.ECode.ENVIRON)
        if votes and votes.most_common(1)[0][0] not in (data.cluster["master_node"], me):
            raise errors.OpPrereqError(f"nodes disagree about the master: {dict(votes)}", errors.ECode.ENVIRON)
    # judge with the newest config any reachable candidate holds: ours may be stale
    data = _newest_config(rpc, data, infos)
    old = data.cluster["master_node"]
    node = data.nodes.get(me)
    if node is None or not node["master_candidate"] or node["offline"]:
        raise errors.OpPrereqError(f"node {me} is not a master candidate; the master is {old}",
                                   errors.ECode.WRONG_STATE)
    if old == me:
        raise errors.OpPrereqError(f"node {me} is already the master", errors.ECode.WRONG_STATE)
    from genet.ha import settings as ha_settings
    if ha_settings.settings(data.cluster.ha)["auto_master_failover"] and not no_voting:
        from genet.ha import node_agent
        node_agent.hand_over(data)
        return {"old_master": old, "new_master": me, "unreachable": sorted(set(others) - reachable), "warnings": []}
    epoch = 1 + max([config.master_epoch(data), config.fenced()[0]] +
                    [infos[n].payload.get("master_epoch", 0) for n in reachable])
    warnings = take_master_role(rpc, data, me, epoch, sorted(reachable), no_voting)
    daemon_util.start_master_daemons(["--no-voting"] if no_voting else [])
    if not luxi.wait_for_socket(paths.master_socket()):
        raise errors.CommandError("genet-masterd did not start on the new master")
    return {"old_master": old, "new_master": me, "unreachable": sorted(set(others) - reachable),
            "warnings": warnings}


def take_master_role(rpc: NodeRpc, data, me: str, epoch: int, reachable: list[str], no_voting: bool = False,
                     wait_lease: bool = True, how: str = "master-failover") -> list[str]:
    """Make ``me`` the master of ``epoch`` in the config of the reachable nodes, masterd not yet
    started: fence a majority of candidates with the new epoch first (from then on they refuse
    the old master's writes, so the config and queue gathered below cannot change behind our
    back), stop the old master's daemons if it answers, take the newest config and every job
    version the candidates hold, write the new config everywhere. Warnings to show."""
    old = data.cluster["master_node"]
    _fence_majority(rpc, data, epoch, me, reachable, no_voting)
    fenced_at = time.monotonic()
    old_stopped = old in reachable and not rpc.stop_masterd(old).failed
    warnings = _master_ip_down(rpc, data, old) if old in reachable else []
    data = _newest_config(rpc, data, rpc.node_info.on(reachable, timeout=5))
    merge_job_queues(rpc, [n for n in reachable if data.nodes[n]["master_candidate"]])
    data.cluster["master_epoch"] = epoch
    data.cluster["master_node"] = me
    from genet.ha import settings as ha_settings
    data.cluster["ha"] = ha_settings.record_takeover(data.cluster.get("ha", {}), me, epoch, how, time.time())
    if data.cluster["master_ip"] == data.nodes.get(old, {}).get("primary_ip"):    # no address of its own
        data.cluster["master_ip"] = data.nodes[me]["primary_ip"]
    data["serial_no"] += 1
    ConfigFile(paths.config_file()).replace(config.dumps(data))
    content = config.dumps(data).decode()
    ssconf = config.ssconf_values(data)
    for name in reachable:
        if data.nodes[name]["master_candidate"]:
            rpc.upload_config(name, content)
        rpc.write_ssconf(name, ssconf)
    for key, value in ssconf.items():
        config.write_atomic(paths.ssconf_file(key), f"{value}\n".encode())
    if not old_stopped and wait_lease:
        # the old master may still answer reads behind a partition until its lease runs out; the
        # fenced majority no longer renews it, so nothing is committed here before it has
        from genet.masterd import READ_LEASE
        time.sleep(max(0.0, fenced_at + READ_LEASE - time.monotonic()))
    return warnings


def _master_ip_down(rpc: NodeRpc, data, old: str) -> list[str]:
    """Take the master IP off the old master (its masterd did at its stop, if it ran), as Ganeti's
    master-failover does; the new master's masterd puts it up. A failure is a warning."""
    if master_ip.problem(data):
        return []
    res = rpc.node_deactivate_master_ip(old, master_ip.network(data), data.cluster["use_external_mip_script"])
    return [f"Could not disable the master IP: {res.fail_msg}"] if res.failed else []


def _fence_majority(rpc: NodeRpc, data: dict, epoch: int, me: str, reachable: list[str], no_voting: bool) -> None:
    """Record the new epoch here and on every reachable node; a majority of the master candidates
    must hold it (unless --no-voting), or the old master could still commit behind our back."""
    config.fence(epoch, me)
    results = rpc.fence.on(reachable, epoch, me)
    newer = {n: r.payload for n, r in results.items() if not r.failed and r.payload > epoch}
    if newer:
        raise errors.OpPrereqError(f"another master-failover is under way: {', '.join(sorted(newer))} already"
                                   f" hold a newer master epoch ({max(newer.values())})", errors.ECode.ENVIRON)
    candidates = config.candidates(data)
    holding = [n for n in candidates if n == me or (n in results and not results[n].failed)]
    needed = len(candidates) // 2 + 1
    if len(holding) < needed and not no_voting:
        raise errors.OpPrereqError(
            f"the new master epoch {epoch} was recorded by only {len(holding)} of {len(candidates)} master"
            f" candidates (need {needed}): the old master could still commit; use --no-voting if you are sure"
            " the others are down", errors.ECode.ENVIRON)


def _newest_config(rpc: NodeRpc, data: dict, infos: dict) -> dict:
    """The config of the highest serial among ours and the reachable candidates' (``infos``:
    their node_info results)."""
    for name in sorted(infos):
        serial = None if infos[name].failed else infos[name].payload.get("config_serial")
        if serial and serial > data.serial_no and data.nodes.get(name, {}).get("master_candidate"):
            res = rpc.get_config(name)
            if not res.failed:
                data = config.parse(res.payload, f"config from {name}")
    return data


def merge_job_queues(rpc: NodeRpc, candidates: list[str]) -> int:
    """Take every job version newer than ours from the other candidates' replicas.

    A candidate may have missed updates while it was unreachable; the majority that
    acknowledged each update means some reachable candidate holds it. Returns the
    number of job records taken.
    """
    from genet.queue_store import QueueStore
    store = QueueStore(paths.queue_db())
    taken = 0
    try:
        for name in candidates:
            res = rpc.jobqueue_versions(name)
            if res.failed:
                continue
            ours = store.versions()
            newer = [job_id for job_id, seq in res.payload if seq > ours.get(job_id, -1)]
            for start in range(0, len(newer), 500):
                got = rpc.jobqueue_records(name, newer[start:start + 500])
                if not got.failed:
                    store.write([tuple(r) for r in got.payload])
                    taken += len(got.payload)
    finally:
        store.close()
    return taken


def destroy_local() -> None:
    """Stop the daemons and remove every piece of cluster state on this node."""
    daemon_util.stop_master_daemons()
    daemon_util.stop("genet-noded")
    for path in [paths.config_file(), journal_of(paths.config_file()), paths.queue_db(), paths.cluster_cert(),
                 paths.cluster_domain_secret(), paths.queue_drain_file(), paths.queue_db().with_name("queue.db-wal"), paths.queue_db().with_name("queue.db-shm")]:
        path.unlink(missing_ok=True)
    for path in config.ssconf_files():
        path.unlink(missing_ok=True)
