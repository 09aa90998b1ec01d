"""Instance lifecycle: create, remove, start, stop, reboot.

Every exec either completes or undoes what it did (disks removed, config entry
dropped), so a failed job leaves no half-created instance behind.
"""
from __future__ import annotations

import copy
import random
import re
import time
import uuid as uuidlib

from genet import config, drbd_pool, errors, opcodes
from genet.cmdlib.base import LogicalUnit
from genet.locking import ALL_SET, Level
from genet.network_pool import AddressPool, find_network
from genet.rpc_defs import DiskStatus
from genet.storage import base as storage

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def make_nics(data: dict, specs: list[dict], node: str | None = None, conflicts_check: bool = True) -> list[dict]:
    """NIC objects for ``specs``: MACs generated from the cluster prefix or checked for uniqueness.

    A NIC on a network takes its mode and link from the network's connection to the
    node's group, and its address from the network's pool (``ip=pool``) or as given;
    reserve_nic_ips records the addresses when the instance is written.
    """
    used = {nic["mac"] for inst in data["instances"].values() for nic in inst["nics"]}
    prefix = data["cluster"].get("mac_prefix", "aa:00:00")
    pools: dict[str, AddressPool] = {}      # working copies: two NICs never get one address
    nics = []
    for index, spec in enumerate(specs):
        mac = spec.get("mac", "auto").lower()
        if mac in ("auto", "generate"):
            mac = _new_mac(prefix, used)
        elif not MAC_RE.match(mac):
            raise errors.OpPrereqError(f"NIC {index}: invalid MAC address {mac!r}", errors.ECode.INVAL)
        elif mac in used:
            raise errors.OpPrereqError(f"NIC {index}: MAC address {mac} is already in use", errors.ECode.NOTUNIQUE)
        used.add(mac)
        net, mode, link, vlan = _nic_network(data, spec, node, index)
        ip = spec.get("ip")
        if ip and ip.lower() == "pool":
            if net is None:
                raise errors.OpPrereqError(f"NIC {index}: ip=pool needs a network (network=NAME)", errors.ECode.INVAL)
            pool = pools.setdefault(net["uuid"], AddressPool.of(net))
            ip = pool.generate_free()
            pool.reserve(ip)
        elif ip and net is not None:
            pool = pools.setdefault(net["uuid"], AddressPool.of(net))
            try:
                inside = pool.contains(ip)
            except ValueError as err:
                raise errors.OpPrereqError(f"NIC {index}: {err}", errors.ECode.INVAL) from None
            if not inside:
                raise errors.OpPrereqError(f"NIC {index}: address {ip} is not in network {net['name']}"
                                           f" ({net['network']})", errors.ECode.INVAL)
            if not pool.is_reserved(ip):
                pool.reserve(ip)
            elif conflicts_check:
                raise errors.OpPrereqError(f"NIC {index}: address {ip} of network {net['name']} is already"
                                           " taken (--no-conflicts-check to use it anyway)", errors.ECode.NOTUNIQUE)
        nics.append({"uuid": str(uuidlib.uuid4()), "mac": mac, "mode": mode, "link": link, "ip": ip,
                     "vlan": vlan, "name": spec.get("name"), "network": net["uuid"] if net else None})
    return nics


def _nic_network(data: dict, spec: dict, node: str | None, index: int) -> tuple[dict | None, str, str, str | None]:
    """The NIC's network (or None) and its mode, link and VLAN."""
    if not spec.get("network"):
        mode = spec.get("mode", "bridged")
        return None, mode, spec.get("link", "gnt-br0" if mode == "bridged" else ""), spec.get("vlan")
    net = find_network(data, spec["network"])
    if net is None:
        raise errors.OpPrereqError(f"NIC {index}: network {spec['network']!r} does not exist", errors.ECode.NOENT)
    conn = {}
    if node is not None:
        group = data["nodegroups"][data["nodes"][node]["group"]]
        conn = group.get("networks", {}).get(net["uuid"])
        if conn is None:
            raise errors.OpPrereqError(f"NIC {index}: network {net['name']} is not connected to node group"
                                       f" {group['name']} of node {node}", errors.ECode.WRONG_STATE)
    mode = spec.get("mode") or conn.get("mode") or "bridged"
    if mode not in ("bridged", "routed"):
        raise errors.OpPrereqError(f"NIC {index}: network {net['name']} is connected in mode {mode}, which genet's"
                                   " hypervisors cannot plug (bridged or routed)", errors.ECode.INVAL)
    return net, mode, spec.get("link") or conn.get("link") or "", spec.get("vlan") or conn.get("vlan") or None


def reserve_nic_ips(data: dict, nics: list[dict]) -> None:
    """Record the addresses of NICs on networks in their pools (inside a config update)."""
    for nic in nics:
        net = data.get("networks", {}).get(nic.get("network") or "")
        if net is not None and nic.get("ip"):
            pool = AddressPool.of(net)
            if not pool.is_reserved(nic["ip"]):
                pool.reserve(nic["ip"])
                net.update(pool.to_config())


def release_nic_ips(data: dict, nics: list[dict]) -> None:
    """Give the addresses of NICs on networks back to their pools (inside a config update)."""
    for nic in nics:
        net = data.get("networks", {}).get(nic.get("network") or "")
        if net is not None and nic.get("ip"):
            pool = AddressPool.of(net)
            try:
                if pool.is_reserved(nic["ip"], external=False):
                    pool.release(nic["ip"])
                    net.update(pool.to_config())
            except errors.OpPrereqError:
                pass        # an address outside the network (changed since): nothing to give back


def _new_mac(prefix: str, used: set[str]) -> str:
    for _ in range(1000):
        mac = prefix + "".join(f":{random.randrange(256):02x}" for _ in range(3))
        if mac not in used:
            return mac
    raise errors.OpPrereqError("no free MAC address left in the cluster's prefix", errors.ECode.NORES)


def check_os(lu: LogicalUnit, node: str, os_name: str, osparams: dict) -> None:
    """The OS (and variant) exists and takes these parameters on ``node``."""
    res = lu.rpc.os_validate(node, os_name, osparams)
    if res.failed:
        raise errors.OpPrereqError(f"OS {os_name!r} cannot be used on node {node}: {res.fail_msg}",
                                   errors.ECode.INVAL)


def instance_of(lu: LogicalUnit, name: str) -> dict:
    """A copy of the instance's config: the LU's view stays as it was while the config changes."""
    inst = lu.cfg.read(lambda d: copy.deepcopy(d["instances"].get(name)))
    if inst is None:
        raise errors.OpPrereqError(f"instance {name!r} does not exist", errors.ECode.NOENT)
    return inst


def storage_params(lu: LogicalUnit) -> dict:
    return lu.cfg.read(config.storage_params)


def node_address(lu: LogicalUnit, name: str) -> str:
    return lu.node(name)["primary_ip"]


def check_node_online(lu: LogicalUnit, name: str) -> dict:
    node = lu.node(name)
    if node["offline"]:
        raise errors.OpPrereqError(f"node {name} is offline", errors.ECode.WRONG_STATE)
    return node


def free_memory(lu: LogicalUnit, node: str, hypervisor: str) -> int:
    res = lu.rpc.hv_node_info(node, hypervisor)
    if res.failed:
        raise errors.OpPrereqError(f"cannot get memory of node {node}: {res.fail_msg}", errors.ECode.ENVIRON)
    return int(res.payload["memory_free"])


def start_instance(lu: LogicalUnit, inst: dict, force: bool = False,
                   unreachable: frozenset[str] = frozenset()) -> dict:
    """Start on the primary node (mirrored disks assembled first, ``force`` and ``unreachable``
    as there); raises OpExecError with the node's reason."""
    assemble_disks(lu, inst, force, unreachable=unreachable)
    res = lu.rpc.instance_start(inst["primary_node"], inst, storage_params(lu))
    if res.failed:
        raise errors.OpExecError(f"could not start instance {inst['name']} on {inst['primary_node']}:"
                                 f" {res.fail_msg}")
    return res.payload


def stop_instance(lu: LogicalUnit, inst: dict, timeout: float, force: bool = False) -> None:
    res = lu.rpc.instance_stop(inst["primary_node"], inst["name"], inst["hypervisor"], timeout, force)
    if res.failed:
        raise errors.OpExecError(f"could not stop instance {inst['name']} on {inst['primary_node']}:"
                                 f" {res.fail_msg}")


def set_admin_state(lu: LogicalUnit, name: str, state: str) -> None:
    def change(data):
        inst = data["instances"][name]
        inst["admin_state"] = state
        inst["serial_no"] += 1
        inst["mtime"] = time.time()
    lu.cfg.update(change)


def remove_disks(lu: LogicalUnit, inst: dict, node: str, upto: int | None = None, first: int = 0) -> list[str]:
    """Remove disks 0..upto-1 (all by default) on ``node``; returns failures (best effort).
    ``first``: ``inst``'s disks are some of the instance's, the first of them has this index."""
    failures = []
    for index, disk in enumerate(inst["disks"][:upto], first):
        res = lu.rpc.blockdev_remove(node, inst["name"], inst["disk_template"], disk, index, storage_params(lu))
        if res.failed:
            failures.append(f"disk {index}: {res.fail_msg}")
    return failures


def create_disk_on(lu: LogicalUnit, node: str, instance: str, template: str, disk: dict, index: int) -> dict:
    """One disk made on one node, logged; its access dict (OpExecError naming the node if not)."""
    lu.feedback(f"* creating disk {index} ({disk['size']} MiB) on {node}")
    return lu.rpc.blockdev_create(node, instance, template, disk, index, storage_params(lu)) \
        .raise_on_error(f"creating disk {index} on {node}")


def remove_all_disks(lu: LogicalUnit, inst: dict, first: int = 0) -> list[str]:
    """Remove the disks on the primary and on every secondary node (best effort)."""
    failures = []
    for node in [inst["primary_node"], *inst.get("secondary_nodes", [])]:
        failures += [f"{node}: {f}" for f in remove_disks(lu, inst, node, first=first)]
    return failures


def split_nodes(pnode: str | None, snode: str | None) -> tuple[str | None, str | None]:
    """Ganeti's ``-n PRIMARY:SECONDARY``."""
    if pnode and ":" in pnode:
        pnode, _, second = pnode.partition(":")
        if snode and snode != second:
            raise errors.OpPrereqError(f"two secondary nodes given: {second} and {snode}", errors.ECode.INVAL)
        snode = second
    return pnode or None, snode or None


def give_logical_ids(lu: LogicalUnit, inst: dict) -> None:
    """Who holds the two sides of each mirrored disk and how they meet: replication addresses
    and a port (drbd: a minor per node and a shared secret), from genet.drbd_pool, so neither
    the config nor a job running meanwhile holds them already.

    A disk that has a logical_id keeps its port, secret and the places of the nodes that stay
    (DRBD 9's node-ids are those places); a node that leaves gives its place to the new one.
    """
    template = storage.TEMPLATES.cls(inst["disk_template"])
    wanted = [inst["primary_node"], *inst["secondary_nodes"]]

    def build(data: dict) -> None:
        pool = drbd_pool.DrbdPool.from_config(data, lu.ctx.drbd_reservations)

        def address(node: str) -> str:
            return data["nodes"][node].get("secondary_ip") or data["nodes"][node]["primary_ip"]
        for index, disk in enumerate(inst["disks"]):
            owner = (inst["name"], index)
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
    template = storage.get(inst["disk_template"])
    if not template.mirrored:
        return []
    params = storage_params(lu)
    for node in inst.get("secondary_nodes", []):
        if lu.node(node)["offline"] or node in unreachable:
            lu.feedback(f"Warning: secondary node {node} is {'offline' if lu.node(node)['offline'] else 'unreachable'}:"
                        f" the disks of {inst['name']} run degraded")
            continue
        res = lu.rpc.blockdev_assemble(node, inst["name"], inst["disk_template"], inst["disks"], "secondary", params,
                                       False, first, timeout=60)
        if res.failed:
            lu.feedback(f"Warning: the disks of {inst['name']} could not be assembled on the secondary node"
                        f" {node}: {res.fail_msg}; they run degraded")
    node = inst["primary_node"]
    res = lu.rpc.blockdev_assemble(node, inst["name"], inst["disk_template"], inst["disks"], "primary", params,
                                   force, first)
    if res.failed:
        raise errors.OpExecError(f"could not assemble the disks of {inst['name']} on {node}: {res.fail_msg}")
    return res.payload


def shutdown_disks(lu: LogicalUnit, inst: dict, strict: bool = True, first: int = 0) -> None:
    """Take a mirrored instance's disks down on its online nodes; a failure is an error
    (``strict``) or a warning in the job log."""
    for node in [inst["primary_node"], *inst.get("secondary_nodes", [])]:
        if lu.node(node)["offline"]:
            continue
        res = lu.rpc.blockdev_shutdown(node, inst["name"], inst["disk_template"], inst["disks"], storage_params(lu),
                                       False, first)
        if res.failed and strict:
            raise errors.OpExecError(f"taking the disks of {inst['name']} down failed on {node}: {res.fail_msg}")
        if res.failed:
            lu.feedback(f"Warning: the disks of {inst['name']} on {node}: {res.fail_msg}")


SYNC_POLL = 0.25


def disk_status(lu: LogicalUnit, inst: dict, node: str | None = None, first: int = 0) -> list[DiskStatus | None]:
    """blockdev_find of the instance's disks on a node (the primary by default)."""
    node = node or inst["primary_node"]
    return lu.rpc.blockdev_find(node, inst["name"], inst["disk_template"], inst["disks"], storage_params(lu),
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


class InstanceLU(LogicalUnit):
    """An LU acting on one existing instance: locks it and its primary node."""
    REQ_BGL = False

    def expand_names(self):
        instance_of(self, self.op.instance_name)        # "does not exist", not a missing lock
        self.needed_locks[Level.INSTANCE] = [self.op.instance_name]

    def declare_locks(self, level):
        if level == Level.NODE:
            inst = instance_of(self, self.op.instance_name)
            self.needed_locks[Level.NODE] = [inst["primary_node"], *inst.get("secondary_nodes", [])]

    def check_prereq(self):
        self.inst = instance_of(self, self.op.instance_name)
        check_node_online(self, self.inst["primary_node"])


class LUInstanceCreate(LogicalUnit):
    OPCODE = opcodes.OpInstanceCreate
    REQ_BGL = False

    def expand_names(self):
        name, op = self.op.instance_name, self.op
        if op.mode == "remote-import":
            raise errors.OpPrereqError("remote imports (mode 'remote-import') are not supported: genet imports"
                                       " exports held by its own nodes (mode 'import')", errors.ECode.INVAL)
        if op.mode == "create" and (op.src_node or op.src_path):
            raise errors.OpPrereqError("src_node and src_path (--src-node, --src-dir) are for imports only",
                                       errors.ECode.INVAL)
        self.wanted_pnode, self.wanted_snode = split_nodes(op.pnode, op.snode)
        for node in (self.wanted_pnode, self.wanted_snode, op.src_node):
            if node:
                self.node(node)               # an unknown node is named before anything else
        if not NAME_RE.match(name):
            raise errors.OpPrereqError(f"invalid instance name {name!r}: use a host name", errors.ECode.INVAL)
        if self.cfg.read(lambda d: name in d["instances"]):
            raise errors.OpPrereqError(f"instance {name!r} already exists", errors.ECode.EXISTS)
        try:
            self.ctx.glm.add(Level.INSTANCE, [name])
        except Exception:
            raise errors.OpPrereqError(f"instance {name!r} is being created by another job",
                                       errors.ECode.EXISTS) from None
        self.lock_added = True
        self.needed_locks[Level.INSTANCE] = [name]
        if self.wanted_pnode and (op.mode == "create" or op.src_node):
            self.needed_locks[Level.NODE] = sorted({self.wanted_pnode, self.wanted_snode or self.wanted_pnode,
                                                    op.src_node or self.wanted_pnode})
        else:
            self.lock_all_nodes()             # an import without src_node looks for its export everywhere

    def _request(self) -> dict:
        """What to create: the opcode's values, or for an import the export's where the opcode gives none."""
        op = self.op
        self.export, self.images = None, []
        if op.mode == "import":
            from genet.cmdlib import backup
            self.export = backup.find_export(self, op.src_node, op.src_path or op.instance_name)
            req = backup.import_request(self, self.export)
            req["tags"] = sorted(set(req.get("tags") or []) | set(op.tags))
            return req
        return {"disks": op.disks, "nics": op.nics, "os_type": op.os_type, "osparams": dict(op.osparams),
                "hypervisor": op.hypervisor, "beparams": dict(op.beparams), "hvparams": dict(op.hvparams),
                "tags": sorted(set(op.tags))}

    def check_prereq(self):
        op = self.op
        data = self.cfg.snapshot()
        cluster = data["cluster"]
        req = self.req = self._request()
        self.hypervisor = req["hypervisor"] or cluster["enabled_hypervisors"][0]
        if self.hypervisor not in cluster["enabled_hypervisors"]:
            raise errors.OpPrereqError(f"hypervisor {self.hypervisor!r} is not enabled in this cluster"
                                       f" (enabled: {', '.join(cluster['enabled_hypervisors'])})",
                                       errors.ECode.INVAL)
        self.os = req["os_type"] or "noop"
        template = storage.TEMPLATES.cls(op.disk_template)
        if not template.needs_disks and req["disks"]:
            raise errors.OpPrereqError(f"a {op.disk_template} instance cannot have disks", errors.ECode.INVAL)
        if template.needs_disks and not req["disks"]:
            raise errors.OpPrereqError(f"disk template {op.disk_template} needs at least one disk (--disk)",
                                       errors.ECode.INVAL)
        self._check_adoption(req["disks"])
        self.beparams = dict(config.DEFAULT_BEPARAMS, **cluster.get("beparams", {}))
        be = dict(req["beparams"])
        if "memory" in be:
            be["maxmem"] = be["minmem"] = be.pop("memory")
        self.beparams.update(be)
        if self.beparams["minmem"] > self.beparams["maxmem"]:
            raise errors.OpPrereqError("minmem is larger than maxmem", errors.ECode.INVAL)
        self.hvparams = dict(cluster.get("hvparams", {}).get(self.hypervisor, {}), **req["hvparams"])
        from genet.hypervisor import base as hvbase
        try:
            hvbase.HYPERVISORS.cls(self.hypervisor).check_parameters(self.hvparams)
        except hvbase.HypervisorError as err:
            raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
        if op.iallocator and op.pnode:
            raise errors.OpPrereqError("give either a primary node or an allocator, not both", errors.ECode.INVAL)
        self.mirrored = storage.get(op.disk_template).mirrored
        snode = self.wanted_snode
        if snode and not self.mirrored:
            raise errors.OpPrereqError(f"disk template {op.disk_template} is not mirrored: it takes no secondary"
                                       f" node ({snode} given)", errors.ECode.INVAL)
        if self.mirrored and not snode and self.wanted_pnode:
            raise errors.OpPrereqError(f"disk template {op.disk_template} needs a secondary node:"
                                       " -n PRIMARY:SECONDARY (or no -n, to let the allocator choose both)",
                                       errors.ECode.INVAL)
        check_name_and_ip(op.instance_name, op.name_check, op.ip_check)
        self.pnode = self.wanted_pnode or self._allocate(data)
        if self.mirrored and not snode:      # the secondary: where a failover would take it
            snode = self._allocate(data, exclude=self.pnode)
        self.snode = snode
        if snode:
            if snode == self.pnode:
                raise errors.OpPrereqError(f"the secondary node must differ from the primary ({snode})",
                                           errors.ECode.INVAL)
            if not check_node_online(self, snode)["vm_capable"]:
                raise errors.OpPrereqError(f"node {snode} is not vm capable", errors.ECode.WRONG_STATE)
        self.nics = make_nics(data, req["nics"], self.pnode, op.conflicts_check)
        node = check_node_online(self, self.pnode)
        if not node["vm_capable"]:
            raise errors.OpPrereqError(f"node {self.pnode} is not vm capable", errors.ECode.WRONG_STATE)
        check_os(self, self.pnode, self.os, req["osparams"])
        free = free_memory(self, self.pnode, self.hypervisor)
        if op.start and free < self.beparams["maxmem"]:
            raise errors.OpPrereqError(f"not enough memory on node {self.pnode} for instance"
                                       f" {op.instance_name}: needed {self.beparams['maxmem']} MiB,"
                                       f" free {free} MiB", errors.ECode.NORES)

    def _check_adoption(self, disks: list[dict]) -> None:
        """Ganeti's rules: every disk adopts an existing volume or none does, plain only, no
        allocator, no import; a disk gives either its size or the volume to adopt."""
        adopting = [i for i, d in enumerate(disks) if "adopt" in d]
        self.adopt, self.adopted = bool(adopting), {}
        for index, disk in enumerate(disks):
            if "adopt" in disk and "size" in disk:
                raise errors.OpPrereqError(f"disk {index}: give either its size or a volume to adopt, not both"
                                           " (an adopted disk has its volume's size)", errors.ECode.INVAL)
            if "adopt" not in disk and "size" not in disk:
                raise errors.OpPrereqError(f"disk {index}: give its size (size=) or a logical volume to adopt"
                                           " (adopt=)", errors.ECode.INVAL)
        if not adopting:
            return
        if len(adopting) != len(disks):
            raise errors.OpPrereqError("either all disks are adopted or none is", errors.ECode.INVAL)
        if not storage.TEMPLATES.cls(self.op.disk_template).can_adopt:
            able = [t.name for t in storage.TEMPLATES.classes() if t.can_adopt]
            raise errors.OpPrereqError(f"disk adoption is not supported for the '{self.op.disk_template}' disk"
                                       f" template (only {', '.join(able)})", errors.ECode.INVAL)
        if self.op.iallocator or not self.wanted_pnode:
            raise errors.OpPrereqError("disk adoption needs the node that holds the volumes (-n NODE), not an"
                                       " allocator", errors.ECode.INVAL)
        if self.export is not None:
            raise errors.OpPrereqError("disk adoption is not allowed for an instance import", errors.ECode.INVAL)
        names = [d["adopt"].rpartition("/")[2] for d in disks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise errors.OpPrereqError(f"volume {twice[0]} is adopted twice", errors.ECode.INVAL)

    def _allocate(self, data: dict, exclude: str | None = None) -> str:
        """The online vm-capable node (not ``exclude``, the primary when choosing the secondary)
        with the most free memory that can hold the instance."""
        nodes = {n["name"]: n["primary_ip"] for n in data["nodes"].values()
                 if n["vm_capable"] and not n["offline"] and not n["drained"] and n["name"] != exclude}
        results = self.rpc.hv_node_info.on(nodes, self.hypervisor)
        free = {name: res.payload["memory_free"] for name, res in results.items() if not res.failed}
        if not free:
            raise errors.OpPrereqError(f"no vm-capable node other than {exclude} is reachable for the secondary"
                                       f" copy of {self.op.instance_name}" if exclude else
                                       "no vm-capable node is reachable", errors.ECode.NORES)
        best = max(sorted(free), key=lambda n: free[n])
        if free[best] < self.beparams["maxmem"]:
            raise errors.OpPrereqError(f"no node has {self.beparams['maxmem']} MiB free for instance"
                                       f" {self.op.instance_name} (most free: {best}, {free[best]} MiB)",
                                       errors.ECode.NORES)
        return best

    def exec(self):
        op = self.op
        now = time.time()
        inst = {
            "name": op.instance_name, "uuid": str(uuidlib.uuid4()), "primary_node": self.pnode,
            "secondary_nodes": [], "os": self.os, "hypervisor": self.hypervisor,
            # marked up before it starts (as Ganeti): one config write less; a failed start removes it
            "disk_template": op.disk_template, "admin_state": "up" if op.start else "down",
            "beparams": self.beparams,
            "hvparams": self.hvparams, "osparams": dict(self.req["osparams"]), "nics": self.nics,
            "disks": [{"uuid": str(uuidlib.uuid4()), "size": d.get("size", 0), "mode": d.get("mode", "rw"),
                       "format": d.get("format", "raw"), "name": d.get("name")} for d in self.req["disks"]],
            "tags": list(self.req["tags"]), "serial_no": 1, "ctime": now, "mtime": now,
        }
        nodes = [self.pnode]
        if self.snode:
            inst["secondary_nodes"] = [self.snode]
            nodes.append(self.snode)
            give_logical_ids(self, inst)
        if self.adopt:
            self._adopt_disks(inst)
        else:
            self._create_disks(inst, nodes)
        try:
            self._fill_disks(inst)
        except errors.GenericError:
            self._undo_disks(inst)
            raise
        def add(data):
            reserve_nic_ips(data, inst["nics"])
            data["instances"][inst["name"]] = inst
        try:
            self.cfg.update(add)
        except errors.GenericError:
            self._undo_disks(inst)
            raise
        self.lock_added = False       # the instance exists: its lock stays
        if self.mirrored:
            try:
                if not storage.get(op.disk_template).install_assembled:    # else _fill_disks did
                    assemble_disks(self, inst)
                if op.wait_for_sync:
                    wait_for_sync(self, inst)
            except errors.GenericError as err:
                self.feedback(f"Warning: the mirror of {inst['name']} is not in sync yet: {err}")
        if op.start:
            self.feedback(f"* starting instance {inst['name']} on {self.pnode}")
            try:
                start_instance(self, inst)
            except errors.GenericError:
                self.cfg.update(lambda d: (release_nic_ips(d, inst["nics"]), d["instances"].pop(inst["name"])))
                self._undo_disks(inst)
                self.lock_added = True
                raise
        return [self.pnode]

    def _create_disks(self, inst: dict, nodes: list[str]) -> None:
        """Every disk on every node of the instance; on a failure, none."""
        for node in nodes:
            for index, disk in enumerate(inst["disks"]):
                self.feedback(f"* creating disk {index} ({disk['size']} MiB) on {node}")
                res = self.rpc.blockdev_create(node, inst["name"], inst["disk_template"], disk, index,
                                               storage_params(self))
                if res.failed:
                    remove_disks(self, inst, node, index)
                    for done in nodes[:nodes.index(node)]:
                        remove_disks(self, inst, done)
                    raise errors.OpExecError(f"could not create disk {index} of {inst['name']} on"
                                             f" {node}: {res.fail_msg}")

    def _adopt_disks(self, inst: dict) -> None:
        """Existing volumes of the primary become the disks (renamed after them, as Ganeti does);
        each disk's size is its volume's. On a failure the volumes get their names back."""
        for index, (disk, wanted) in enumerate(zip(inst["disks"], self.req["disks"])):
            self.feedback(f"* adopting {wanted['adopt']} as disk {index}")
            res = self.rpc.blockdev_adopt(self.pnode, inst["name"], inst["disk_template"], disk, index,
                                          wanted["adopt"], storage_params(self))
            if res.failed:
                self._undo_disks(inst)
                raise errors.OpExecError(f"could not adopt {wanted['adopt']} as disk {index} of {inst['name']}"
                                         f" on {self.pnode}: {res.fail_msg}")
            disk["size"] = res.payload["size"]
            self.adopted[index] = res.payload["adopted"]

    def _fill_disks(self, inst: dict) -> None:
        """The data: an export's images, or the OS installed (not on adopted volumes)."""
        if self.mirrored and storage.get(inst["disk_template"]).install_assembled:
            # a new disk's first promotion: neither side has data yet, so forced
            assemble_disks(self, inst, force=True)
        if self.export is not None:
            from genet.cmdlib import backup
            backup.import_disks(self, inst, self.export, self.images)
        elif inst["disks"] and not self.op.no_install and not self.adopt:
            self.feedback(f"* running the OS create script of {inst['os']}")
            self.rpc.os_create(self.pnode, inst, storage_params(self), False).raise_on_error(f"installing {inst['os']}")

    def _undo_disks(self, inst: dict) -> None:
        """A failed creation: created disks go, adopted volumes get their old names back."""
        if not self.adopt:
            remove_all_disks(self, inst)
            return
        for index, old_name in sorted(self.adopted.items()):
            res = self.rpc.blockdev_release_adopted(self.pnode, inst["name"], inst["disk_template"],
                                                    inst["disks"][index], index, old_name, storage_params(self))
            if res.failed:
                self.feedback(f"Warning: disk {index} keeps its new volume name: {res.fail_msg}")

    def cleanup(self, failed: bool) -> None:
        """A create that failed (or was a dry run) drops the lock it added for the new name."""
        if (failed or self.op.dry_run) and getattr(self, "lock_added", False):
            self.ctx.glm.remove(Level.INSTANCE, [self.op.instance_name], owner=self.owner)


class LUInstanceRemove(InstanceLU):
    OPCODE = opcodes.OpInstanceRemove

    def check_prereq(self):
        self.inst = instance_of(self, self.op.instance_name)

    def exec(self):
        inst = self.inst
        node = self.cfg.read(lambda d: d["nodes"].get(inst["primary_node"]))
        if node is not None and not node["offline"]:
            self.feedback(f"* shutting down instance {inst['name']} on {inst['primary_node']}")
            try:
                stop_instance(self, inst, self.op.shutdown_timeout)
            except errors.OpExecError:
                if not self.op.ignore_failures:
                    raise
                self.feedback("Warning: could not stop the instance, removing it anyway")
            failures = remove_all_disks(self, inst)
            if failures and not self.op.ignore_failures:
                raise errors.OpExecError(f"could not remove the disks of {inst['name']}: {'; '.join(failures)}")
        self.cfg.update(lambda d: (release_nic_ips(d, inst["nics"]), d["instances"].pop(inst["name"])))
        self.removed = True
        return True

    def cleanup(self, failed: bool) -> None:
        if getattr(self, "removed", False):
            self.ctx.glm.remove(Level.INSTANCE, [self.op.instance_name], owner=self.owner)


class LUInstanceStartup(InstanceLU):
    OPCODE = opcodes.OpInstanceStartup

    def check_prereq(self):
        super().check_prereq()
        node = self.inst["primary_node"]
        res = self.rpc.instance_info(node, self.inst["name"], self.inst["hypervisor"])
        if res.failed:
            raise errors.OpPrereqError(f"cannot reach node {node}: {res.fail_msg}", errors.ECode.ENVIRON)
        self.running = bool(res.payload) and res.payload.get("state") == "running"
        self.leftover = bool(res.payload) and not self.running    # e.g. a guest that powered off
        if not self.running:
            free = free_memory(self, node, self.inst["hypervisor"])
            need = self.inst["beparams"]["maxmem"]
            if free < need:
                raise errors.OpPrereqError(f"not enough memory on node {node} to start {self.inst['name']}:"
                                           f" needed {need} MiB, free {free} MiB", errors.ECode.NORES)

    def exec(self):
        if not self.running:
            if self.leftover:
                stop_instance(self, self.inst, 0, force=True)   # clear a powered-off process
            start_instance(self, self.inst)
        if not self.op.no_remember:
            set_admin_state(self, self.inst["name"], "up")
        return True


class LUInstanceShutdown(InstanceLU):
    OPCODE = opcodes.OpInstanceShutdown

    def exec(self):
        stop_instance(self, self.inst, self.op.timeout)
        if not self.op.no_remember:
            set_admin_state(self, self.inst["name"], "down")
        return True


class LUInstanceReboot(InstanceLU):
    OPCODE = opcodes.OpInstanceReboot

    def exec(self):
        inst = self.inst
        if self.op.reboot_type == "full":
            stop_instance(self, inst, self.op.shutdown_timeout)
            start_instance(self, inst)
        else:
            res = self.rpc.instance_reboot(inst["primary_node"], inst["name"], inst["hypervisor"],
                                           self.op.reboot_type == "hard")
            if res.failed:
                raise errors.OpExecError(f"could not reboot {inst['name']}: {res.fail_msg}")
        set_admin_state(self, inst["name"], "up")
        return True


class LUInstanceConsole(InstanceLU):
    """Ganeti's console description: a command to run on the primary node over SSH."""
    OPCODE = opcodes.OpInstanceConsole

    def check_prereq(self):
        super().check_prereq()
        node = self.inst["primary_node"]
        res = self.rpc.instance_console(node, self.inst["name"], self.inst["hypervisor"])
        if res.failed and isinstance(res.error, errors.RpcError):
            raise errors.OpPrereqError(f"cannot reach node {node}: {res.fail_msg}", errors.ECode.ENVIRON)
        if res.failed:
            raise errors.OpPrereqError(f"instance {self.inst['name']} is not running, it has no console",
                                       errors.ECode.WRONG_STATE)
        self.console = res.payload

    def exec(self):
        node = self.node(self.inst["primary_node"])
        out = {"instance": self.inst["name"], "kind": self.console["kind"], "host": node["primary_ip"]}
        if self.console["kind"] == "serial":
            out.update(kind="ssh", user="root", log=self.console.get("log"),
                       command=["socat", "STDIO,raw,echo=0,escape=0x1d", f"UNIX-CONNECT:{self.console['path']}"])
        elif "vnc" in self.console:
            host = self.console["vnc"]["host"]
            out.update(kind="vnc", host=node["primary_ip"] if host in ("0.0.0.0", "::") else host,
                       port=self.console["vnc"]["port"],
                       display=self.console["vnc"]["port"] - 5900)
        else:
            raise errors.OpExecError(f"instance {self.inst['name']} has neither a serial console nor VNC")
        return out


def is_running(lu: LogicalUnit, inst: dict) -> bool:
    info = lu.rpc.instance_info(inst["primary_node"], inst["name"],
                                inst["hypervisor"]).raise_on_error("asking whether the instance runs")
    return bool(info) and info.get("state") == "running"


def clear_leftover(lu: LogicalUnit, inst: dict) -> None:
    """A guest that powered itself off leaves its process; remove it before touching the disks."""
    info = lu.rpc.instance_info(inst["primary_node"], inst["name"], inst["hypervisor"]).raise_on_error()
    if info and info.get("state") != "running":
        stop_instance(lu, inst, 0, force=True)


class LUInstanceGrowDisk(InstanceLU):
    OPCODE = opcodes.OpInstanceGrowDisk

    def check_prereq(self):
        super().check_prereq()
        disks = self.inst["disks"]
        if self.op.disk >= len(disks):
            raise errors.OpPrereqError(f"instance {self.inst['name']} has no disk {self.op.disk}"
                                       f" (it has {len(disks)})", errors.ECode.INVAL)
        for node in self.inst.get("secondary_nodes", []):
            check_node_online(self, node)           # both copies grow, or none
        old = disks[self.op.disk]["size"]
        self.new_size = self.op.amount if self.op.absolute else old + self.op.amount
        if self.new_size <= old:
            raise errors.OpPrereqError(f"disk {self.op.disk} of {self.inst['name']} has {old} MiB; the new size"
                                       f" {self.new_size} MiB would not grow it", errors.ECode.INVAL)

    def exec(self):
        inst, index = self.inst, self.op.disk
        template = storage.get(inst["disk_template"])
        live = bool(template.running_grow) and is_running(self, inst)
        # the secondary first: a mirror can only copy to a target at least as large
        for node in [*inst.get("secondary_nodes", []), inst["primary_node"]]:
            if live and template.running_grow == "hypervisor" and node == inst["primary_node"]:
                continue                       # the guest's QEMU holds the image: it grows it below
            res = self.rpc.blockdev_grow(node, inst["name"], inst["disk_template"], inst["disks"][index], index,
                                         self.new_size, storage_params(self))
            res.raise_on_error(f"growing disk {index} on {node}")
        if template.mirrored and self.op.wait_for_sync and \
                any(found is not None and found.mirror is not None and found.mirror.role == "primary"
                    for found in disk_status(self, inst)):
            wait_for_sync(self, inst)          # the copy to the grown secondary starts over
        seen = "" if template.running_grow else " (a running guest sees it after its next boot)"
        if live:
            try:
                res = self.rpc.instance_resize_disk(inst["primary_node"], inst["name"], inst["hypervisor"], index,
                                                    self.new_size)
                res.raise_on_error(f"growing disk {index} of the running guest")
                seen = " (the running guest sees it at once)"
            except errors.OpExecError as err:
                if template.running_grow == "hypervisor":
                    raise                      # nothing grew
                self.feedback(f"Warning: {err}")
                seen = " (the running guest sees it after its next boot)"

        def change(data):
            target = data["instances"][inst["name"]]
            target["disks"][index]["size"] = self.new_size
            target["serial_no"] += 1
            target["mtime"] = time.time()
        self.cfg.update(change)
        self.feedback(f"* disk {index} of {inst['name']} is now {self.new_size} MiB{seen}")
        return self.new_size


class LUInstanceActivateDisks(InstanceLU):
    OPCODE = opcodes.OpInstanceActivateDisks

    def exec(self):
        inst = self.inst
        if storage.get(inst["disk_template"]).mirrored:
            access = assemble_disks(self, inst)
            done = self.rpc.blockdev_resync(inst["primary_node"], inst["name"], inst["disk_template"], inst["disks"],
                                            storage_params(self)).raise_on_error("mirroring to the secondary")
            for index, what in enumerate(done):
                self.feedback(f"* disk {index}: {what}")
            return [[inst["primary_node"], f"disk/{i}", a.get("nbd_socket") or a["path"]]
                    for i, a in enumerate(access)]
        access = self.rpc.blockdev_access(inst["primary_node"], inst["name"], inst["disk_template"], inst["disks"],
                                          storage_params(self)).raise_on_error("activating the disks")
        return [[inst["primary_node"], f"disk/{i}", a["path"]] for i, a in enumerate(access)]


class LUInstanceDeactivateDisks(InstanceLU):
    """File-backed disks need no assembly; mirrored ones stop their storage daemons on both nodes."""
    OPCODE = opcodes.OpInstanceDeactivateDisks

    def check_prereq(self):
        super().check_prereq()
        if not self.op.force and is_running(self, self.inst):
            raise errors.OpPrereqError(f"instance {self.inst['name']} is running; stop it first or use --force",
                                       errors.ECode.WRONG_STATE)

    def exec(self):
        if storage.get(self.inst["disk_template"]).mirrored:
            shutdown_disks(self, self.inst, strict=False)
        return True


def check_name_and_ip(name: str, name_check: bool, ip_check: bool) -> None:
    """Ganeti's name and IP checks of a new or renamed instance: the name resolves, and
    (ip_check) nothing answers at its address yet. Off unless asked for (genet does not
    use the name to reach the guest)."""
    if ip_check and not name_check:
        raise errors.OpPrereqError("the IP check needs the name check (name_check)", errors.ECode.INVAL)
    if not name_check:
        return
    from genet import netutils
    address = netutils.resolve(name)
    if ip_check:
        import subprocess
        alive = subprocess.run(["ping", "-c", "1", "-W", "1", address], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL).returncode == 0
        if alive:
            raise errors.OpPrereqError(f"IP address {address} of {name} already answers (ip_check)",
                                       errors.ECode.NOTUNIQUE)


class LUInstanceRename(InstanceLU):
    OPCODE = opcodes.OpInstanceRename
    REQ_BGL = True        # a new name: nothing else may take it meanwhile

    def check_prereq(self):
        super().check_prereq()
        new = self.op.new_name
        if not NAME_RE.match(new):
            raise errors.OpPrereqError(f"invalid instance name {new!r}: use a host name", errors.ECode.INVAL)
        if self.cfg.read(lambda d: new in d["instances"]):
            raise errors.OpPrereqError(f"instance {new!r} already exists", errors.ECode.EXISTS)
        if is_running(self, self.inst):
            raise errors.OpPrereqError(f"instance {self.inst['name']} is running; stop it before renaming",
                                       errors.ECode.WRONG_STATE)
        check_name_and_ip(new, self.op.name_check, self.op.ip_check)

    def exec(self):
        inst, old, new = self.inst, self.inst["name"], self.op.new_name
        clear_leftover(self, inst)
        if inst["disks"]:
            self.rpc.blockdev_rename(inst["primary_node"], old, new, inst["disk_template"], inst["disks"],
                                     storage_params(self)).raise_on_error("renaming the disks")

        def change(data):
            moved = data["instances"].pop(old)
            moved.update(name=new, serial_no=moved["serial_no"] + 1, mtime=time.time())
            data["instances"][new] = moved
        self.cfg.update(change)
        self.ctx.glm.add(Level.INSTANCE, [new])
        self.renamed = True
        if inst["disks"]:
            res = self.rpc.os_rename(inst["primary_node"], dict(inst, name=new), old, storage_params(self))
            if res.failed:
                self.feedback(f"Warning: the OS rename script failed: {res.fail_msg}")
        return new

    def cleanup(self, failed: bool) -> None:
        if getattr(self, "renamed", False):
            self.ctx.glm.remove(Level.INSTANCE, [self.op.instance_name], owner=self.owner)


class LUInstanceSetParams(InstanceLU):
    """Ganeti's modify; disk and NIC changes reach a running guest by hot-plugging."""
    OPCODE = opcodes.OpInstanceSetParams

    def declare_locks(self, level):
        super().declare_locks(level)
        if level == Level.NODE and self.op.remote_node:
            self.node(self.op.remote_node)
            self.needed_locks[Level.NODE] = sorted({*self.needed_locks[Level.NODE], self.op.remote_node})

    def check_prereq(self):
        super().check_prereq()
        op, inst = self.op, self.inst
        if not (op.beparams or op.hvparams or op.disks or op.nics or op.disk_template):
            raise errors.OpPrereqError("no changes requested", errors.ECode.INVAL)
        if op.disk_template:
            from genet.cmdlib.convert import check_conversion
            check_conversion(self, inst, op.disk_template, op.remote_node)
        elif op.remote_node:
            raise errors.OpPrereqError("-n (remote_node) is only used with -t (a disk template conversion)",
                                       errors.ECode.INVAL)
        self.mirrored = storage.get(inst["disk_template"]).mirrored
        if op.disks and self.mirrored:
            self._check_mirrored_changes()
        self.beparams = dict(inst["beparams"])
        be = dict(op.beparams)
        if "memory" in be:
            be["maxmem"] = be["minmem"] = be.pop("memory")
        self.beparams.update(be)
        if self.beparams["minmem"] > self.beparams["maxmem"]:
            raise errors.OpPrereqError("minmem is larger than maxmem", errors.ECode.INVAL)
        self.hvparams = dict(inst["hvparams"], **op.hvparams)
        from genet.hypervisor import base as hvbase
        try:
            hvbase.get(inst["hypervisor"]).check_parameters(self.hvparams)
        except hvbase.HypervisorError as err:
            raise errors.OpPrereqError(str(err), errors.ECode.INVAL) from None
        if (op.disks or op.nics) and not op.hotplug and is_running(self, inst):
            raise errors.OpPrereqError(f"instance {inst['name']} is running and --no-hotplug was given:"
                                       " stop it before changing disks or NICs", errors.ECode.WRONG_STATE)
        self.running = bool(op.disks or op.nics) and is_running(self, inst)
        if op.disks and not storage.TEMPLATES.cls(inst["disk_template"]).needs_disks:
            raise errors.OpPrereqError(f"instance {inst['name']} is {inst['disk_template']}", errors.ECode.WRONG_STATE)
        self._check_changes("disk", op.disks, len(inst["disks"]))
        self._check_changes("nic", op.nics, len(inst["nics"]))
        self.new_nics = make_nics(self.cfg.snapshot(), [p for a, _, p in op.nics if a == "add"], inst["primary_node"])

    def _check_mirrored_changes(self) -> None:
        """A mirrored disk is added or removed on both nodes, as a raw image."""
        inst = self.inst
        for node in inst["secondary_nodes"]:
            if self.node(node)["offline"]:
                raise errors.OpPrereqError(f"the secondary node {node} of {inst['name']} is offline: disks cannot"
                                           " be added or removed there", errors.ECode.WRONG_STATE)
        for action, _, spec in self.op.disks:
            if action == "add" and spec.get("format", "raw") != "raw":
                raise errors.OpPrereqError(f"{inst['disk_template']} disks are raw images, not"
                                           f" {spec['format']}", errors.ECode.INVAL)

    @staticmethod
    def _check_changes(kind: str, mods: list, count: int) -> None:
        """Replay the changes on the count, so every removal refers to a device that will exist."""
        limit = {"disk": 16, "nic": 8}[kind]
        for action, index, _ in mods:
            if action == "add":
                count += 1
                if count > limit:
                    raise errors.OpPrereqError(f"an instance can have at most {limit} {kind}s", errors.ECode.INVAL)
            elif count == 0 or not -1 <= index < count:
                raise errors.OpPrereqError(f"there is no {kind} {index} to remove", errors.ECode.INVAL)
            else:
                count -= 1

    def exec(self):
        inst, changes = self.inst, []
        name = inst["name"]
        if self.op.beparams or self.op.hvparams:
            def params(data):
                target = data["instances"][name]
                target["beparams"], target["hvparams"] = self.beparams, self.hvparams
            self.cfg.update(params)
            changes += [[f"be/{k}", v] for k, v in sorted(self.op.beparams.items())]
            changes += [[f"hv/{k}", v] for k, v in sorted(self.op.hvparams.items())]
        nics = iter(self.new_nics)
        for kind, mods in (("disk", self.op.disks), ("nic", self.op.nics)):
            for action, index, spec in mods:
                current = self.cfg.read(lambda d: [dict(x) for x in d["instances"][name][f"{kind}s"]])
                if action == "add":
                    index = len(current)
                    device = self._new_disk(spec) if kind == "disk" else next(nics)
                    self._add(kind, index, device, current)
                else:
                    index = len(current) - 1 if index == -1 else index
                    self._remove(kind, index, current[index])
                changes.append([f"{kind}/{index}", action])
        if self.op.disk_template:
            from genet.cmdlib.convert import convert
            changes += convert(self, self.inst, self.op.disk_template, self.op.remote_node)
        return changes

    @staticmethod
    def _new_disk(spec: dict) -> dict:
        return {"uuid": str(uuidlib.uuid4()), "size": spec["size"], "mode": spec.get("mode", "rw"),
                "format": spec.get("format", "raw"), "name": spec.get("name")}

    def _add(self, kind: str, index: int, device: dict, current: list[dict]) -> None:
        inst, node = self.inst, self.inst["primary_node"]
        plugged = device
        if kind == "disk":
            plugged = self._create_disk(index, device, current)
        if self.running:
            try:
                self.rpc.instance_hotplug(node, inst["name"], inst["hypervisor"], kind, "add", index,
                                          plugged).raise_on_error(f"hot-plugging {kind} {index}")
            except errors.OpExecError:
                if kind == "disk":
                    remove_all_disks(self, dict(inst, disks=[device]), first=index)
                raise
            self.feedback(f"* {kind} {index} hot-plugged into the running guest")
        def add(data):
            if kind == "nic":
                reserve_nic_ips(data, [device])
            data["instances"][inst["name"]][f"{kind}s"].append(device)
        self.cfg.update(add)

    def _create_disk(self, index: int, device: dict, current: list[dict]) -> dict:
        """The new disk on the primary; a mirrored one also on the secondary, assembled and
        synced (Ganeti waits for the sync too). Returns how the guest opens it."""
        inst = self.inst
        if not self.mirrored:
            return create_disk_on(self, inst["primary_node"], inst["name"], inst["disk_template"], device, index)
        give_logical_ids(self, dict(inst, disks=[*current, device]))     # sets device["logical_id"]
        new = dict(inst, disks=[device])
        try:
            for node in [*inst["secondary_nodes"], inst["primary_node"]]:
                create_disk_on(self, node, inst["name"], inst["disk_template"], device, index)
            # neither side has data yet: the first promotion is forced, as at creation
            [access] = assemble_disks(self, new, force=True, first=index)
        except errors.GenericError:
            remove_all_disks(self, new, first=index)
            raise
        try:
            wait_for_sync(self, new, first=index)
        except errors.GenericError as err:
            self.feedback(f"Warning: disk {index} of {inst['name']} is not in sync yet: {err}")
        if not self.running:
            shutdown_disks(self, new, strict=False, first=index)      # its next start assembles it
        return access

    def _remove(self, kind: str, index: int, device: dict) -> None:
        inst, node = self.inst, self.inst["primary_node"]
        if self.running:
            self.rpc.instance_hotplug(node, inst["name"], inst["hypervisor"], kind, "remove", index,
                                      None).raise_on_error(f"unplugging {kind} {index}")
        def remove(data):
            removed = data["instances"][inst["name"]][f"{kind}s"].pop(index)
            if kind == "nic":
                release_nic_ips(data, [removed])
        self.cfg.update(remove)
        if kind == "disk":
            failures = remove_all_disks(self, dict(inst, disks=[device]), first=index)
            if failures:
                raise errors.OpExecError(f"removing disk {index} of {inst['name']} failed: {'; '.join(failures)}")



class LUInstanceReinstall(InstanceLU):
    OPCODE = opcodes.OpInstanceReinstall

    def check_prereq(self):
        super().check_prereq()
        inst = self.inst
        if is_running(self, inst):
            raise errors.OpPrereqError(f"instance {inst['name']} is running; stop it before reinstalling",
                                       errors.ECode.WRONG_STATE)
        if not inst["disks"]:
            raise errors.OpPrereqError(f"instance {inst['name']} has no disks to install on", errors.ECode.WRONG_STATE)
        self.os = self.op.os_type or inst["os"]
        self.osparams = inst.get("osparams", {}) if self.op.osparams is None else self.op.osparams
        check_os(self, inst["primary_node"], self.os, self.osparams)

    def exec(self):
        inst = dict(self.inst, os=self.os, osparams=self.osparams)
        clear_leftover(self, inst)
        self.feedback(f"* running the OS create script of {self.os} (reinstall)")
        self.rpc.os_create(inst["primary_node"], inst, storage_params(self), True) \
            .raise_on_error(f"reinstalling {self.os}")

        def change(data):
            target = data["instances"][inst["name"]]
            target.update(os=self.os, osparams=self.osparams, serial_no=target["serial_no"] + 1, mtime=time.time())
        self.cfg.update(change)
        return True


# --- detailed information, recreating and replacing disks -----------------------

def run_state(info: dict | None) -> str:
    """Ganeti's run_state from the hypervisor's report: up, user down (powered itself off) or down."""
    if info is not None and info.get("state") == "running":
        return "up"
    return "user down" if info is not None and info.get("state") == "shutdown" else "down"


class LUInstanceQueryData(LogicalUnit):
    """Ganeti's per-instance details (RAPI /2/instances/NAME/info): the configuration, the
    parameters with the cluster's values filled in and, unless static, what the primary node reports."""
    OPCODE = opcodes.OpInstanceQueryData
    REQ_BGL = False

    def expand_names(self):
        if self.op.use_locking:
            self.needed_locks[Level.INSTANCE] = list(self.op.instances) or ALL_SET
            self.share_locks[Level.INSTANCE] = True

    def check_prereq(self):
        names = self.op.instances or self.cfg.read(lambda d: sorted(d["instances"]))
        self.wanted = [instance_of(self, name) for name in names]

    def exec(self):
        data = self.cfg.snapshot()
        live: dict[str, dict] = {}
        if not self.op.static:
            nodes = {i["primary_node"] for i in self.wanted if not data["nodes"][i["primary_node"]]["offline"]}
            hypervisors = sorted({i["hypervisor"] for i in self.wanted})
            results = self.rpc.instances_info.on({n: data["nodes"][n]["primary_ip"] for n in nodes},
                                                 hypervisors) if nodes else {}
            for node, res in sorted(results.items()):
                if res.failed:
                    raise errors.OpExecError(f"cannot get the instances of node {node}: {res.fail_msg}")
                live[node] = res.payload
        return {inst["name"]: self._describe(data, inst, live) for inst in self.wanted}

    def _describe(self, data: dict, inst: dict, live: dict[str, dict]) -> dict:
        cluster, pnode = data["cluster"], data["nodes"][inst["primary_node"]]
        sp = config.storage_params(data)
        template = storage.get(inst["disk_template"], sp)
        report = live.get(pnode["name"])
        if report is None and not self.op.static:
            self.feedback(f"Warning: primary node {pnode['name']} is offline: static information only"
                          f" for instance {inst['name']}")
        status = [None] * len(inst["disks"])
        if report is not None and inst["disks"]:
            status = self.rpc.blockdev_find(pnode["name"], inst["name"], inst["disk_template"], inst["disks"],
                                            sp).raise_on_error(f"finding the disks of {inst['name']}")
        hv_actual = dict(cluster.get("hvparams", {}).get(inst["hypervisor"], {}), **inst["hvparams"])
        from genet.hypervisor.base import HYPERVISORS, HypervisorError
        try:
            hv_actual = HYPERVISORS.cls(inst["hypervisor"]).fill_parameters(hv_actual)
        except HypervisorError:          # a value the hypervisor refuses: show what is recorded
            pass
        group = data["nodegroups"].get(pnode["group"], {})
        networks = data.get("networks", {})
        return {
            "name": inst["name"], "uuid": inst["uuid"],
            "config_state": inst["admin_state"],
            "run_state": None if report is None else run_state(report.get(inst["name"])),
            "pnode": pnode["name"], "pnode_group_uuid": pnode["group"], "pnode_group_name": group.get("name"),
            "snodes": list(inst.get("secondary_nodes", [])),
            "snodes_group_uuids": [data["nodes"][n]["group"] for n in inst.get("secondary_nodes", [])],
            "snodes_group_names": [data["nodegroups"].get(data["nodes"][n]["group"], {}).get("name")
                                   for n in inst.get("secondary_nodes", [])],
            "os": inst["os"], "hypervisor": inst["hypervisor"], "network_port": inst.get("network_port"),
            "disk_template": inst["disk_template"],
            "disks": [{"iv_name": f"disk/{i}", "dev_type": inst["disk_template"],
                       "logical_id": template.ganeti_logical_id(inst["name"], d, i),
                       "drbd_info": template.ganeti_drbd_info(inst["primary_node"], d),
                       "pstatus": status[i].ganeti_status() if status[i] is not None else None,
                       "mirror": status[i].mirror.to_wire() if status[i] is not None and status[i].mirror else None,
                       "sstatus": None, "children": [],
                       "mode": d.get("mode", "rw"), "size": d["size"], "spindles": None,
                       "name": d.get("name"), "uuid": d["uuid"]} for i, d in enumerate(inst["disks"])],
            "nics": [[n.get("name"), n["uuid"], n.get("ip"), n["mac"], n["mode"], n["link"], n.get("vlan"),
                      n.get("network"), networks.get(n.get("network")) if n.get("network") else None]
                     for n in inst["nics"]],
            "hv_instance": dict(inst["hvparams"]), "hv_actual": hv_actual,
            "be_instance": dict(inst["beparams"]),
            "be_actual": {**config.DEFAULT_BEPARAMS, **cluster.get("beparams", {}), **inst["beparams"]},
            "os_instance": dict(inst.get("osparams", {})),
            "os_actual": dict(cluster.get("osparams", {}).get(inst["os"], {}), **inst.get("osparams", {})),
            "tags": list(inst.get("tags", [])),
            "serial_no": inst["serial_no"], "ctime": inst["ctime"], "mtime": inst["mtime"],
        }


class LUInstanceRecreateDisks(InstanceLU):
    """Creates missing disks of a stopped instance again, empty, on its nodes or new ones.

    A disk that still exists is never touched: naming one that exists on every node is
    refused, as in Ganeti (recreate-disks is for disks that were lost); a mirrored disk is
    recreated on the nodes that lost it and filled from the copy that remains. Moving to new
    nodes recreates every disk (mirrored ones with new logical_ids), empty.
    """
    OPCODE = opcodes.OpInstanceRecreateDisks

    def expand_names(self):
        op = self.op
        if op.nodes and op.iallocator:
            raise errors.OpPrereqError("give either new nodes or an iallocator, not both", errors.ECode.INVAL)
        indices = [index for index, _ in op.disks]
        duplicates = sorted({i for i in indices if indices.count(i) > 1})
        if duplicates:
            raise errors.OpPrereqError(f"disk(s) {', '.join(map(str, duplicates))} given more than once",
                                       errors.ECode.INVAL)
        instance_of(self, op.instance_name)
        for name in op.nodes:
            self.node(name)
        super().expand_names()
        if op.iallocator:
            self.lock_all_nodes()

    def declare_locks(self, level):
        if level == Level.NODE and not self.op.iallocator:
            inst = instance_of(self, self.op.instance_name)
            self.needed_locks[Level.NODE] = sorted({inst["primary_node"], *inst.get("secondary_nodes", []),
                                                    *self.op.nodes})

    def check_prereq(self):
        op = self.op
        inst = self.inst = instance_of(self, op.instance_name)
        if not inst["disks"]:
            raise errors.OpPrereqError(f"instance {inst['name']} has no disks", errors.ECode.INVAL)
        nodes_now = [inst["primary_node"], *inst.get("secondary_nodes", [])]
        if op.nodes and len(op.nodes) != len(nodes_now):
            raise errors.OpPrereqError(f"instance {inst['name']} has {len(nodes_now)} node(s), {len(op.nodes)}"
                                       " given", errors.ECode.INVAL)
        count = len(inst["disks"])
        bad = sorted(i for i, _ in op.disks if i >= count)
        if bad:
            raise errors.OpPrereqError(f"instance {inst['name']} has no disk {bad[0]} (it has {count})",
                                       errors.ECode.INVAL)
        self.changes = dict(op.disks) if op.disks else {i: {} for i in range(count)}
        mirrored = storage.get(inst["disk_template"]).mirrored
        if op.iallocator and mirrored:
            raise errors.OpPrereqError(f"instance {inst['name']} is mirrored: give its new nodes with -n"
                                       " PRIMARY:SECONDARY, the allocator picks one", errors.ECode.INVAL)
        old = self.node(inst["primary_node"])
        if not ((op.nodes or op.iallocator) and old["offline"]):
            check_node_online(self, inst["primary_node"])
            if is_running(self, inst):
                raise errors.OpPrereqError(f"instance {inst['name']} is running; stop it before recreating its"
                                           " disks", errors.ECode.WRONG_STATE)
        if op.iallocator:
            from genet.cmdlib.migration import choose_target
            self.targets = [choose_target(self, inst, set(), {})]
        else:
            self.targets = list(op.nodes) or nodes_now
        moving = self.targets != nodes_now
        if moving and sorted(self.changes) != list(range(count)):
            raise errors.OpPrereqError("cannot recreate only some disks and change the nodes at the same time",
                                       errors.ECode.INVAL)
        if len(set(self.targets)) != len(self.targets):
            raise errors.OpPrereqError(f"the nodes of {inst['name']} must differ ({', '.join(self.targets)})",
                                       errors.ECode.INVAL)
        for target in self.targets:
            if not check_node_online(self, target)["vm_capable"]:
                raise errors.OpPrereqError(f"node {target} is not vm capable", errors.ECode.WRONG_STATE)
        disks = [dict(d, **self.changes.get(i, {})) for i, d in enumerate(inst["disks"])]
        self.moved = dict(inst, primary_node=self.targets[0], secondary_nodes=self.targets[1:], disks=disks)
        if moving and mirrored:
            for disk in disks:
                disk.pop("logical_id", None)
            give_logical_ids(self, self.moved)
        missing = {}
        for target in self.targets:
            found = self.rpc.blockdev_find(target, inst["name"], inst["disk_template"], disks,
                                           storage_params(self)).raise_on_error("looking for the disks")
            missing[target] = [i for i in sorted(self.changes) if found[i] is None]
        everywhere = [i for i in sorted(self.changes) if not any(i in m for m in missing.values())]
        if everywhere:
            where = " and ".join(self.targets)
            raise errors.OpPrereqError(f"disk {everywhere[0]} of {inst['name']} exists on {where}: recreate-disks"
                                       " only creates missing disks; name the missing ones with --disk",
                                       errors.ECode.EXISTS)
        if mirrored and not moving:
            lost = [i for i in missing[self.targets[0]] if not all(i in m for m in missing.values())]
            if lost:
                raise errors.OpPrereqError(
                    f"disk {lost[0]} of {inst['name']} is missing on its primary node {self.targets[0]} but its"
                    f" copy on {', '.join(self.targets[1:])} exists: fail over to it (gnt-instance failover), then"
                    " recreate the disk on the old primary, now the secondary", errors.ECode.WRONG_STATE)
        self.missing = missing

    def exec(self):
        inst, moved, sp = self.inst, self.moved, storage_params(self)
        created: list[tuple[str, int]] = []
        try:
            for target in self.targets:
                for index in self.missing[target]:
                    disk = moved["disks"][index]
                    self.feedback(f"* recreating disk {index} ({disk['size']} MiB) on {target}")
                    self.rpc.blockdev_create(target, inst["name"], inst["disk_template"], disk, index, sp) \
                        .raise_on_error(f"creating disk {index}")
                    created.append((target, index))
            if storage.get(inst["disk_template"]).mirrored:
                # the primary's side is either new (no data anywhere: its first promotion is
                # forced) or the one that kept the data; the new sides are filled from it
                assemble_disks(self, moved, force=True)
                wait_for_sync(self, moved)
                shutdown_disks(self, moved)
        except errors.GenericError:
            shutdown_disks(self, moved, strict=False)
            for target, index in created:
                self.rpc.blockdev_remove(target, inst["name"], inst["disk_template"], moved["disks"][index], index, sp)
            raise

        def change(data):
            target_inst = data["instances"][inst["name"]]
            target_inst.update(disks=moved["disks"], primary_node=moved["primary_node"],
                               secondary_nodes=moved["secondary_nodes"], serial_no=target_inst["serial_no"] + 1,
                               mtime=time.time())
        self.cfg.update(change)
        return None


def replace_mirror(lu: LogicalUnit, inst: dict, mode: str, remote_node: str | None, wanted: list[int]) -> list:
    """replace-disks for the mirror and drbd templates: every disk to a new secondary (-n/-I), or
    fresh copies of the disks in ``wanted`` (default all) on the secondary (-s) or the primary
    (-p), filled from the other side; -a finds the faulty disks and their side."""
    wanted = sorted(set(wanted)) or list(range(len(inst["disks"])))
    if mode == "replace_auto":
        mode, wanted = _faulty_side(lu, inst, wanted)
        if not wanted:
            lu.feedback(f"* no disk of {inst['name']} is faulty: nothing to replace (a mirror that is only"
                        " out of sync is mirrored again by gnt-cluster verify-disks)")
            return []
    if mode == "replace_on_primary":
        return _replace_primary_copy(lu, inst, wanted)
    if mode == "replace_on_secondary":
        return _replace_secondary_copy(lu, inst, wanted)
    if len(wanted) < len(inst["disks"]):
        lu.feedback("* every disk moves to the new secondary (--disks chooses disks for -p, -s and -a only)")
    return _move_secondary(lu, inst, remote_node)


def each_disk(inst: dict, indices: list[int]):
    """(index, the instance with only that disk): one disk at a time for the helpers' ``first``."""
    for index in indices:
        yield index, dict(inst, disks=[inst["disks"][index]])


def _faulty(lu: LogicalUnit, inst: dict, node: str, wanted: list[int]) -> list[int]:
    """The disks among ``wanted`` whose copy on ``node`` is missing or lost its local storage."""
    found = disk_status(lu, inst, node)
    return [i for i in wanted
            if found[i] is None
            or found[i].mirror is not None and found[i].mirror.disk_state in ("Diskless", "Failed")]


def _faulty_side(lu: LogicalUnit, inst: dict, wanted: list[int]) -> tuple[str, list[int]]:
    """-a: the faulty disks and the mode that replaces them; faults on both sides are refused, as
    in Ganeti (which side's data would fill the other?)."""
    primary, secondary = inst["primary_node"], inst["secondary_nodes"][0]
    on_primary = _faulty(lu, inst, primary, wanted)
    on_secondary = [] if lu.node(secondary)["offline"] else _faulty(lu, inst, secondary, wanted)
    if on_primary and on_secondary:
        raise errors.OpPrereqError(f"the disks of {inst['name']} are faulty on both nodes (disk(s)"
                                   f" {','.join(map(str, on_primary))} on {primary},"
                                   f" {','.join(map(str, on_secondary))} on {secondary}): -a cannot choose a side;"
                                   " replace them with -p --disks or -s --disks", errors.ECode.WRONG_STATE)
    if on_primary:
        return "replace_on_primary", on_primary
    return "replace_on_secondary", on_secondary


def _move_secondary(lu: LogicalUnit, inst: dict, remote_node: str | None) -> list:
    """-n/-I: every disk gets a copy on the new node, filled from the primary; then the old
    secondary's copies go."""
    sp = storage_params(lu)
    old = inst["secondary_nodes"][0]
    new = remote_node
    if new is None:
        from genet.cmdlib.migration import choose_target
        new = choose_target(lu, inst, {inst["primary_node"], old}, {})
    disks = [dict(d) for d in inst["disks"]]
    moved = dict(inst, secondary_nodes=[new], disks=disks)
    give_logical_ids(lu, moved)
    for index, disk in enumerate(disks):
        create_disk_on(lu, new, inst["name"], inst["disk_template"], disk, index)
    lu.rpc.blockdev_assemble(new, inst["name"], inst["disk_template"], disks, "secondary",
                             sp).raise_on_error(f"assembling the disks on {new}")
    lu.feedback(f"* mirroring from {inst['primary_node']} to {new}")
    lu.rpc.blockdev_resync(inst["primary_node"], inst["name"], inst["disk_template"], disks, sp,
                           True).raise_on_error("mirroring to the new secondary")
    wait_for_sync(lu, moved)

    def change(data):
        target = data["instances"][inst["name"]]
        target.update(secondary_nodes=[new], disks=disks, serial_no=target["serial_no"] + 1, mtime=time.time())
    lu.cfg.update(change)
    if lu.node(old)["offline"]:
        lu.feedback(f"Warning: {old} is offline; remove its copy of {inst['name']} by hand when it is back")
    else:
        for failure in remove_disks(lu, inst, old):
            lu.feedback(f"Warning: the old copy on {old} stays: {failure}")
    return [[index, new] for index in range(len(disks))]


def _replace_secondary_copy(lu: LogicalUnit, inst: dict, wanted: list[int]) -> list:
    """-s: the secondary's copies of these disks made anew (the old ones removed first: they may
    be what failed) and filled from the primary's, one disk at a time."""
    sp = storage_params(lu)
    primary, secondary = inst["primary_node"], inst["secondary_nodes"][0]
    check_node_online(lu, secondary)
    for index, one in each_disk(inst, wanted):
        for failure in remove_disks(lu, one, secondary, first=index):
            lu.feedback(f"Warning: the old copy on {secondary}: {failure}")
        disk = one["disks"][0]
        create_disk_on(lu, secondary, inst["name"], inst["disk_template"], disk, index)
        lu.rpc.blockdev_assemble(secondary, inst["name"], inst["disk_template"], [disk], "secondary", sp, False,
                                 index).raise_on_error(f"assembling disk {index} on {secondary}")
        lu.feedback(f"* mirroring disk {index} from {primary} to {secondary}")
        lu.rpc.blockdev_resync(primary, inst["name"], inst["disk_template"], [disk], sp, True,
                               index).raise_on_error(f"mirroring disk {index} to {secondary}")
        wait_for_sync(lu, one, first=index)
    return [[index, secondary] for index in wanted]


def _replace_primary_copy(lu: LogicalUnit, inst: dict, wanted: list[int]) -> list:
    """replace-disks -p: fresh copies of these disks on the primary node, filled from the
    secondary's. The guest uses the primary's copy, so the instance must be stopped, and the
    copies must reach sync first (all assembled) so that the secondary's holds every write."""
    primary, secondary = inst["primary_node"], inst["secondary_nodes"][0]
    if is_running(lu, inst):
        raise errors.OpPrereqError(f"the primary's copy of {inst['name']} is the one its guest uses: stop the"
                                   " instance first, or fail over to the secondary and replace that copy (-s)",
                                   errors.ECode.WRONG_STATE)
    check_node_online(lu, secondary)
    try:           # assembled, the copies sync up (mirror: the primary's is copied anew)
        assemble_disks(lu, inst)
        wait_for_sync(lu, inst)
    except errors.GenericError as err:
        shutdown_disks(lu, inst, strict=False)
        raise errors.OpExecError(f"the disks of {inst['name']} did not reach sync ({err}): the copy on"
                                 f" {secondary} may lack writes, so it cannot replace the primary's") from None
    shutdown_disks(lu, inst)
    # the roles swapped for the copy: the secondary's side is the source
    swapped = dict(inst, primary_node=secondary, secondary_nodes=[primary])
    for index, one in each_disk(inst, wanted):
        failures = remove_disks(lu, one, primary, first=index)
        if failures:
            raise errors.OpExecError(f"could not remove the old copy on {primary}: {'; '.join(failures)}")
        create_disk_on(lu, primary, inst["name"], inst["disk_template"], one["disks"][0], index)
        lu.feedback(f"* copying disk {index} from {secondary} to {primary}")
        one_swapped = dict(swapped, disks=one["disks"])
        assemble_disks(lu, one_swapped, first=index)
        wait_for_sync(lu, one_swapped, first=index)
        shutdown_disks(lu, one_swapped, first=index)
    return [[index, primary] for index in wanted]


class LUClusterVerifyDisks(LogicalUnit):
    """Every mirrored instance's disks as its primary sees them; a degraded one is mirrored again
    (its secondary assembled, the copy resumed or restarted) when its secondary is online.
    Returns [instance, disk index, state before, state after] per disk."""
    OPCODE = opcodes.OpClusterVerifyDisks
    REQ_BGL = False

    def expand_names(self):
        self.needed_locks[Level.INSTANCE] = ALL_SET
        self.lock_all_nodes()

    def exec(self):
        data = self.cfg.snapshot()
        rows = []
        for inst in sorted(data["instances"].values(), key=lambda i: i["name"]):
            if not inst.get("secondary_nodes") or not storage.get(inst["disk_template"]).mirrored:
                continue
            if data["nodes"][inst["primary_node"]]["offline"]:
                self.feedback(f"instance {inst['name']}: primary node {inst['primary_node']} is offline")
                rows += [[inst["name"], i, "unknown", "unknown"] for i in range(len(inst["disks"]))]
                continue
            before = self._states(inst)
            after = before
            if any(state != "in sync" for state in before) and inst["admin_state"] == "up":
                self.feedback(f"* activating the disks of {inst['name']}")
                try:
                    assemble_disks(self, inst)
                    self.rpc.blockdev_resync(inst["primary_node"], inst["name"], inst["disk_template"], inst["disks"],
                                             storage_params(self)).raise_on_error("mirroring to the secondary")
                    after = self._states(inst)
                except errors.GenericError as err:
                    self.feedback(f"Warning: instance {inst['name']}: {err}")
            for index, (was, now) in enumerate(zip(before, after)):
                if now != "in sync":
                    self.feedback(f"instance {inst['name']}: disk {index} is {now}")
                rows.append([inst["name"], index, was, now])
        return rows

    def _states(self, inst: dict) -> list[str]:
        try:
            found = disk_status(self, inst)
        except errors.GenericError:
            return ["unknown"] * len(inst["disks"])
        return [storage.sync_label(entry.mirror if entry else None) for entry in found]


class LUInstanceReplaceDisks(InstanceLU):
    """Rebuilds one side of a mirrored instance's disks, or moves the mirror to a new secondary.

    An instance whose template keeps no mirror is refused before any node is asked.
    """
    OPCODE = opcodes.OpInstanceReplaceDisks

    def expand_names(self):
        op = self.op
        if op.mode == "replace_new_secondary":
            if (op.remote_node is None) == (op.iallocator is None):
                raise errors.OpPrereqError("to change the secondary node give either the new node (remote_node)"
                                           " or an iallocator", errors.ECode.INVAL)
        elif op.remote_node is not None or op.iallocator is not None:
            raise errors.OpPrereqError("remote_node and iallocator are only used to change the secondary node"
                                       " (mode replace_new_secondary)", errors.ECode.INVAL)
        instance_of(self, op.instance_name)
        if op.remote_node:
            self.node(op.remote_node)
        super().expand_names()
        if op.iallocator:
            self.lock_all_nodes(shared=False)

    def declare_locks(self, level):
        if level != Level.NODE or self.op.iallocator:       # with an iallocator: all nodes already
            return
        super().declare_locks(level)
        if self.op.remote_node:
            self.needed_locks[Level.NODE] = sorted({*self.needed_locks[Level.NODE], self.op.remote_node})

    def check_prereq(self):
        inst = self.inst = instance_of(self, self.op.instance_name)
        template = inst["disk_template"]
        if not storage.get(template).mirrored:
            raise errors.OpPrereqError(f"Instance's disk layout '{template}' is not mirrored, replace-disks needs a"
                                       " mirrored template (drbd or mirror)", errors.ECode.INVAL)
        check_node_online(self, inst["primary_node"])
        bad = [i for i in self.op.disks if i >= len(inst["disks"])]
        if bad:
            raise errors.OpPrereqError(f"instance {inst['name']} has no disk {bad[0]}", errors.ECode.INVAL)
        remote = self.op.remote_node
        if remote is not None:
            node = check_node_online(self, remote)
            if remote == inst["primary_node"] or remote in inst.get("secondary_nodes", []):
                raise errors.OpPrereqError(f"node {remote} already holds the disks of {inst['name']}",
                                           errors.ECode.INVAL)
            if not node["vm_capable"]:
                raise errors.OpPrereqError(f"node {remote} is not vm capable", errors.ECode.WRONG_STATE)

    def exec(self):
        return replace_mirror(self, self.inst, self.op.mode, self.op.remote_node, self.op.disks)
