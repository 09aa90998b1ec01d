"""Ganeti's node maintenance (gnt-cluster modify --maintain-node-health yes), run by
genet-watcher on every node, the master included (an old master is cleaned up too).

The node asks the master candidates listed in its ssconf for their configuration (Ganeti asks
its confd daemons for the node's role) and believes the newest. If that marks this node
offline, whatever still runs here is out of the cluster's hands: every instance running on the
node is shut down and this node's side of every mirrored disk is taken down, acting on the
hypervisors and disk templates directly, as Ganeti's watcher does (a node marked offline gets
no calls from the master any more).
"""
from __future__ import annotations

import logging
import time

from genet import config, errors, paths
from genet.rpc import NodeRpc, RpcClient

log = logging.getLogger("genet-watcher")


def enabled() -> bool:
    return config.ssconf_value("maintain_node_health") == "True"


def candidates_rpc() -> NodeRpc:
    """Node RPC to the master candidates of this node's ssconf."""
    names = (config.ssconf_value("master_candidates") or "").split()
    ips = (config.ssconf_value("master_candidates_ips") or "").split()
    port = int(config.ssconf_value("noded_port") or config.DEFAULT_NODED_PORT)
    return NodeRpc(RpcClient(paths.cluster_cert(), port), dict(zip(names, ips)).__getitem__)


def newest_config(rpc: NodeRpc, me: str):
    """The newest configuration a master candidate other than this node holds; None if none answers."""
    names = [n for n in (config.ssconf_value("master_candidates") or "").split() if n != me]
    found = None
    for name, res in sorted(rpc.get_config.on(names).items()):
        if res.failed:
            log.warning("node maintenance: master candidate %s does not answer: %s", name, res.fail_msg)
            continue
        try:
            data = config.parse(res.payload, f"the configuration of {name}")
        except errors.ConfigurationError as err:
            log.warning("node maintenance: %s", err)
            continue
        if found is None or data.serial_no > found.serial_no:
            found = data
    return found


def run(rpc: NodeRpc | None = None, ignore_pause: bool = False) -> list[str]:
    """One maintenance pass; what it shut down (instances by name, disks as INSTANCE/disk/N).
    ``gnt-cluster watcher pause`` (in the configuration) holds it too."""
    me = paths.node_name()
    data = newest_config(rpc or candidates_rpc(), me)
    if data is None:
        log.warning("node maintenance: no master candidate answered, nothing done")
        return []
    until = data.cluster.get("watcher_pause")
    if until is not None and until > time.time() and not ignore_pause:
        return []
    node = data.nodes.get(me)
    if node is None or not node["offline"]:
        return []
    return stop_instances() + shutdown_disks(data, me)


def stop_instances() -> list[str]:
    """Every instance running here, under any hypervisor genet has, killed."""
    from genet.hypervisor import base as hvbase
    stopped = []
    for hv_name in hvbase.names():
        hv = hvbase.get(hv_name)
        names = sorted(hv.all_info())
        if names:
            log.info("node maintenance: this node is offline; shutting down the instances still here: %s",
                     ", ".join(names))
        for name in names:
            try:
                hv.stop(name, 0, force=True)
                stopped.append(name)
            except errors.GenericError as err:
                log.error("node maintenance: cannot stop instance %s: %s", name, err)
    return stopped


def shutdown_disks(data, me: str) -> list[str]:
    """This node's side of every mirrored disk of the instances the configuration places here."""
    from genet.storage import base as storage
    params = config.storage_params(data)
    done = []
    for inst in sorted(data.instances.values(), key=lambda i: i.name):
        if me not in inst.all_nodes:
            continue
        try:
            template = storage.get(inst.disk_template, params)
        except errors.GenericError:          # a template this node has not got: nothing of it here
            continue
        if not template.mirrored:
            continue
        for index, disk in enumerate(inst.disks):
            try:
                template.shutdown(inst.name, disk, index)
                done.append(f"{inst.name}/disk/{index}")
            except errors.GenericError as err:
                log.error("node maintenance: cannot take down disk %d of %s: %s", index, inst.name, err)
    if done:
        log.info("node maintenance: took down the mirrored disks %s", ", ".join(done))
    return done
