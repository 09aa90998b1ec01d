"""Instance disks on their nodes: create, remove, assemble, take down, wait for the mirror."""
from __future__ import annotations

from genet import drbd_pool, errors
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import storage_params
from genet.rpc_defs import DiskStatus
from genet.storage import base as storage


def remove_disks(lu: LogicalUnit, inst: dict, node: str, upto: int | None = None, first: int = 0) -> list[str]:
    """Remove disks 0..upto-1 (all by default) on ``node``; returns failures (best effort).
    ``first``: ``inst``'s disks are some of the instance's, the first of them has this index."""
    failures = []
    for index, disk in enumerate(inst.disks[:upto], first):
        res = lu.rpc.blockdev_remove(node, inst.name, inst.disk_template, disk, index, storage_params(lu))
        if res.failed:
            failures.append(f"disk {index}: {res.fail_msg}")
    return failures


def create_disk_on(lu: LogicalUnit, node: str, instance: str, template: str, disk: dict, index: int) -> dict:
    """One disk made on one node, logged; its access dict (OpExecError naming the node if not)."""
    lu.feedback(f"* creating disk {index} ({disk['size']} MiB) on {node}")
    return lu.rpc.blockdev_create(node, instance, template, disk, index, storage_params(lu)) \
        .raise_on_error(f"creating disk {index} on {node}")


def wipe_disks(lu: LogicalUnit, inst: dict, nodes: list[str], wanted: list[tuple[int, dict, int]]) -> None:
    """Ganeti's prealloc_wipe_disks: zero what is new of each disk (index, disk, from MiB) on the
    given nodes' copies, before anything reads it. A new qcow2 image reads zeros already."""
    if not lu.cfg.read(lambda data: data.cluster.prealloc_wipe_disks):
        return
    if storage.get(inst.disk_template).shared:
        nodes = [inst.primary_node]
    for index, disk, offset in wanted:
        if disk.get("format", "raw") != "raw":
            lu.feedback(f"* not wiping disk {index} of {inst['name']}: a new {disk['format']} image reads zeros")
            continue
        for node in nodes:
            lu.feedback(f"* wiping disk {index} of {inst['name']} on {node}")
            lu.rpc.blockdev_wipe(node, inst.name, inst.disk_template, disk, index, storage_params(lu), offset,
                                 disk["size"] - offset).raise_on_error(f"wiping disk {index} on {node}")


def remove_all_disks(lu: LogicalUnit, inst: dict, first: int = 0) -> list[str]:
    """Remove the disks on the primary and on every secondary node (best effort)."""
    failures = []
    for node in [inst.primary_node, *inst.get("secondary_nodes", [])]:
        failures += [f"{node}: {f}" for f in remove_disks(lu, inst, node, first=first)]
    return failures


def give_logical_ids(lu: LogicalUnit, inst: dict) -> None:
    """Who holds the two sides of each mirrored disk and how they meet: replication addresses
    and a port (drbd: a minor per node and a shared secret), from genet.drbd_pool, so neither
    the config nor a job running meanwhile holds them already.

    A disk that has a logical_id keeps its port, secret and the places of the nodes that stay
    (DRBD 9's node-ids are those places); a node that leaves gives its place to the new one.
    """
    template = storage.TEMPLATES.cls(inst.disk_template)
    wanted = [inst.primary_node, *inst.secondary_nodes]

    def build(data: dict) -> None:
        pool = drbd_pool.DrbdPool.from_config(data, lu.ctx.drbd_reservations)

        def address(node: str) -> str:
            return data.nodes[node].get("secondary_ip") or data.nodes[node]["primary_ip"]
        for index, disk in enumerate(inst.disks):
            owner = (inst.name, index)
            old = disk.get("logical_id")
            if isinstance(old, dict) and "port" in old:
                lid = {key: list(value) if isinstance(value, list) else value for key, value in old.items()}
                for new in (n for n in wanted if n not in lid["nodes"]):
                    place = next(i for i, n in enumerate(lid["nodes"]) if n not in wanted)
                    lid["nodes"][place], lid["addresses"][place] = new, address(new)
                    if "minors" in lid:
                        lid["minors"][place] = pool.allocate_minors([new], owner)[0]
            else:
                lid = template.new_logical_id(pool, wanted, [address(n) for n in wanted], owner)
            disk["logical_id"] = lid
            lu.ctx.drbd_reservations.add_logical_id(lu.owner, lid, owner)
    lu.cfg.read(build)


def assemble_disks(lu: LogicalUnit, inst: dict, force: bool = False, first: int = 0,
                   unreachable: frozenset[str] = frozenset()) -> list:
    """Mirrored templates: the secondary side first, then the primary, which mirrors to it.

    A secondary that cannot be reached leaves the disks degraded (logged); the
    primary must come up. Returns the primary's access dicts ([] when not mirrored).
    ``force``: the primary takes its role even if nothing shows its data is the newest
    (a new disk; failover --ignore-consistency). ``first``: ``inst``'s disks are some of
    the instance's, the first of them has this index (here and in the helpers below).
    """
    template = storage.get(inst.disk_template)
    if not template.mirrored:
        return []
    params = storage_params(lu)
    for node in inst.get("secondary_nodes", []):
        if lu.node(node)["offline"] or node in unreachable:
            lu.feedback(f"Warning: secondary node {node} is {'offline' if lu.node(node)['offline'] else 'unreachable'}:"
                        f" the disks of {inst['name']} run degraded")
            params = {**params, template.PEER_DOWN: True}
            continue
        res = lu.rpc.blockdev_assemble(node, inst.name, inst.disk_template, inst.disks, "secondary", params,
                                       False, first, timeout=60)
        if res.failed:
            lu.feedback(f"Warning: the disks of {inst['name']} could not be assembled on the secondary node"
                        f" {node}: {res.fail_msg}; they run degraded")
    node = inst.primary_node
    res = lu.rpc.blockdev_assemble(node, inst.name, inst.disk_template, inst.disks, "primary", params,
                                   force, first)
    if res.failed:
        raise errors.OpExecError(f"could not assemble the disks of {inst['name']} on {node}: {res.fail_msg}")
    return res.payload


def shutdown_disks(lu: LogicalUnit, inst: dict, strict: bool = True, first: int = 0) -> None:
    """Take a mirrored instance's disks down on its online nodes; a failure is an error
    (``strict``) or a warning in the job log."""
    for node in [inst.primary_node, *inst.get("secondary_nodes", [])]:
        if lu.node(node)["offline"]:
            continue
        res = lu.rpc.blockdev_shutdown(node, inst.name, inst.disk_template, inst.disks, storage_params(lu),
                                       False, first)
        if res.failed and strict:
            raise errors.OpExecError(f"taking the disks of {inst['name']} down failed on {node}: {res.fail_msg}")
        if res.failed:
            lu.feedback(f"Warning: the disks of {inst['name']} on {node}: {res.fail_msg}")


SYNC_POLL = 0.25


def disk_status(lu: LogicalUnit, inst: dict, node: str | None = None, first: int = 0) -> list[DiskStatus | None]:
    """blockdev_find of the instance's disks on a node (the primary by default)."""
    node = node or inst.primary_node
    return lu.rpc.blockdev_find(node, inst.name, inst.disk_template, inst.disks, storage_params(lu),
                                first).raise_on_error("asking for the disks' status")


def wait_for_sync(lu: LogicalUnit, inst: dict, timeout: float = 3600, first: int = 0) -> None:
    """Follow the mirror's copy to the secondary until every disk is in sync, with progress."""
    deadline, last = lu.clock.monotonic() + timeout, None
    while True:
        found = disk_status(lu, inst, first=first)
        states = [f.mirror if f is not None else None for f in found]
        if all(st is not None and st.state == "in sync" for st in states):
            lu.feedback(f"* the disks of {inst['name']} are in sync")
            return
        if any(st is None or st.state in ("degraded", "stale") for st in states):
            raise errors.OpExecError(f"the disks of {inst['name']} are degraded (is the secondary reachable?)")
        progress = ", ".join(f"disk {i}: {st.sync_percent or 0:.0f}%" for i, st in enumerate(states, first))
        if progress != last:
            lu.feedback(f"* syncing: {progress}")
            last = progress
        if lu.clock.monotonic() > deadline:
            raise errors.OpExecError(f"the disks of {inst['name']} did not reach sync in {timeout:.0f} s")
        lu.clock.sleep(SYNC_POLL)


def each_disk(inst: dict, indices: list[int]):
    """(index, the instance with only that disk): one disk at a time for the helpers' ``first``."""
    for index in indices:
        yield index, inst.replace(disks=[inst.disks[index]])
