"""Creating an instance. Every step is undone when a later one fails (disks removed, config
entry dropped), so a failed job leaves no half-created instance behind."""
from __future__ import annotations

import time
import uuid as uuidlib

from genet import errors, opcodes, params
from genet.cmdlib import iallocator
from genet.cmdlib.allocator import allocator_or_nodes
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import (applied, check_beparams, check_hvparams, check_name_and_ip, check_node_online,
                                 check_os, check_template_enabled, free_memory, split_nodes, storage_params)
from genet.cmdlib.disks import (assemble_disks, give_logical_ids, remove_all_disks, remove_disks, wait_for_sync,
                                wipe_disks)
from genet.cmdlib.hooks_env import instance_env_of
from genet.cmdlib.instance_policy import check_allocation
from genet.cmdlib.nics import NAME_RE, make_nics, release_nic_ips, reserve_nic_ips
from genet.cmdlib.instance_ops import script_osparams
from genet.cmdlib.power import start_instance
from genet.ipolicy import InstanceSpec
from genet.locking import Level
from genet.objects import Instance
from genet.storage import base as storage


class LUInstanceCreate(LogicalUnit):
    OPCODE = opcodes.OpInstanceCreate
    HPATH = "instance-add"
    HTYPE = "INSTANCE"

    def hooks_env(self):
        op = self.op
        env: dict = {"ADD_MODE": op.mode}
        if self.export is not None:
            env.update(SRC_NODE=op.src_node, SRC_PATH=op.src_path, SRC_IMAGES=self.images)
        data = self.cfg.snapshot()
        wanted = {"hypervisor": self.hypervisor, "os": self.os, "beparams": self.own_beparams,
                  "hvparams": self.hvparams}
        return {**env, **instance_env_of(data, {
            "name": op.instance_name, "primary": self.pnode, "secondaries": [self.snode] if self.snode else [],
            "os": self.os, "status": op.start, "template": op.disk_template, "hypervisor": self.hypervisor,
            "nics": self.nics, "disks": self.req["disks"], "tags": op.tags, "beparams": self.beparams,
            "hvparams": params.hvparams(data, wanted)})}

    def hooks_nodes(self):
        nodes = [self.master_node(), self.pnode, *([self.snode] if self.snode else [])]
        return nodes, nodes
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
        self.reserved = self._reserved() if op.commit else None
        if self.reserved is None:
            if self.cfg.read(lambda d: name in d.instances):
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

    def _reserved(self) -> dict:
        """Ganeti's --commit: the forthcoming instance of that name, which the real one replaces."""
        op = self.op
        if op.forthcoming:
            raise errors.OpPrereqError("--forthcoming and --commit exclude each other", errors.ECode.INVAL)
        found = self.cfg.read(lambda d: d.instances.get(op.instance_name))
        if found is None or not found.get("forthcoming"):
            raise errors.OpPrereqError(f"there is no forthcoming instance {op.instance_name!r} to commit"
                                       " (gnt-instance add --forthcoming reserves one)", errors.ECode.NOENT)
        return found

    def _request(self) -> dict:
        """What to create: the opcode's values, or for an import the export's where the opcode gives none."""
        op = self.op
        self.export, self.images = None, []
        if op.mode == "import":
            from genet.cmdlib import backup
            backup.check_compression(self)
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
        if self.reserved is not None:      # checked as if the reservation were gone: it makes way
            data = self.cfg.draft()
            release_nic_ips(data, self.reserved.nics)
            del data.instances[op.instance_name]
        cluster = data.cluster
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
        # recorded: what is set on the instance (Ganeti's inheritance); checked: what applies
        self.own_beparams = params.normalised_beparams(req["beparams"])
        self.hvparams = dict(req["hvparams"])
        if op.identify_defaults:
            self._identify_defaults(data, req)
        wanted = {"hypervisor": self.hypervisor, "os": req["os_type"] or "noop", "beparams": self.own_beparams,
                  "hvparams": self.hvparams}
        self.beparams = check_beparams(params.beparams(data, wanted))
        check_hvparams(self.hypervisor, params.hvparams(data, wanted))
        self.allocator = allocator_or_nodes(self, op.iallocator, self.wanted_pnode)
        self.mirrored = storage.get(op.disk_template).mirrored
        snode = self.wanted_snode
        if snode and not self.mirrored:
            raise errors.OpPrereqError(f"disk template {op.disk_template} is not mirrored: it takes no secondary"
                                       f" node ({snode} given)", errors.ECode.INVAL)
        if self.mirrored and not snode and self.wanted_pnode:
            raise errors.OpPrereqError(f"disk template {op.disk_template} needs a secondary node:"
                                       " -n PRIMARY:SECONDARY (or no -n, to let the allocator choose both)",
                                       errors.ECode.INVAL)
        check_template_enabled(self, op.disk_template)
        check_name_and_ip(op.instance_name, op.name_check, op.ip_check)
        check_unsupported(op)
        self.group = self._group(data)
        if self.allocator:
            chosen = self._allocate(data, req)
            self.pnode, snode = chosen[0], (chosen[1] if len(chosen) > 1 else None)
        else:
            self.pnode = self.wanted_pnode
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
        check_allocation(self, data, self.pnode, [self._spec()], op.ignore_ipolicy)
        self.script_params = script_osparams(req["osparams"], op.osparams_private, op.osparams_secret)
        check_os(self, self.pnode, self.os, self.script_params)
        free = free_memory(self, self.pnode, self.hypervisor)
        if op.start and not op.forthcoming and free < self.beparams["maxmem"]:
            raise errors.OpPrereqError(f"not enough memory on node {self.pnode} for instance"
                                       f" {op.instance_name}: needed {self.beparams['maxmem']} MiB,"
                                       f" free {free} MiB", errors.ECode.NORES)

    def _spec(self) -> InstanceSpec:
        """What the instance policy bounds of the new instance (an adopted volume's size is not
        known yet: not checked)."""
        disks = self.req["disks"]
        return InstanceSpec(memory=self.beparams["maxmem"], cpus=self.beparams["vcpus"],
                            disk_sizes=tuple(disk.get("size") for disk in disks), nic_count=len(self.nics),
                            spindle_use=self.beparams["spindle_use"],
                            disk_templates=(self.op.disk_template,) * len(disks))

    def _identify_defaults(self, data, req: dict) -> None:
        """Ganeti's --identify-defaults: a backend or hypervisor parameter equal to what the
        cluster gives is not recorded, so the instance follows the cluster's later changes."""
        inherited = {"hypervisor": self.hypervisor, "os": req["os_type"] or "noop", "beparams": {}, "hvparams": {}}
        be, hv = params.beparams(data, inherited), params.filled_hvparams(data, inherited)
        self.own_beparams = {k: v for k, v in self.own_beparams.items() if be.get(k) != v}
        self.hvparams = {k: v for k, v in self.hvparams.items() if hv.get(k) != v}

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

    def _group(self, data) -> str | None:
        """The UUID of the group asked for (-g); the nodes given must be in it."""
        if self.op.group_name is None:
            return None
        from genet.cmdlib.group import group_by_name
        uuid = group_by_name(data, self.op.group_name)["uuid"]
        for node in (self.wanted_pnode, self.wanted_snode):
            if node and data.nodes[node]["group"] != uuid:
                raise errors.OpPrereqError(f"node {node} is not in node group {self.op.group_name}",
                                           errors.ECode.INVAL)
        return uuid

    def _allocate(self, data, req: dict) -> list[str]:
        """The nodes the allocator chooses (Ganeti's allocate request), logged as Ganeti logs them."""
        op = self.op
        request = {"type": "allocate", **iallocator.new_instance(
            op.instance_name, op.disk_template, req["disks"], req["nics"], int(self.beparams["maxmem"]),
            int(self.beparams["vcpus"]), int(self.beparams.get("spindle_use", 1)), self.os, self.hypervisor,
            req["tags"])}
        if self.group is not None:
            request["group_name"] = op.group_name
        chosen = iallocator.allocate(self, self.allocator, data, request)
        self.feedback(f"Selected nodes for instance {op.instance_name} via iallocator {self.allocator}:"
                      f" {', '.join(chosen)}")
        return chosen

    def exec(self):
        op = self.op
        now = time.time()
        inst = Instance.from_wire({
            "name": op.instance_name, "uuid": str(uuidlib.uuid4()), "primary_node": self.pnode,
            "secondary_nodes": [], "os": self.os, "hypervisor": self.hypervisor,
            # marked up before it starts (as Ganeti): one config write less; a failed start removes it
            "disk_template": op.disk_template, "admin_state": "up" if op.start else "down",
            "beparams": self.own_beparams,
            "hvparams": self.hvparams, "osparams": dict(self.req["osparams"]), "nics": self.nics,
            **({"osparams_private": dict(op.osparams_private)} if op.osparams_private else {}),
            "disks": [{"uuid": str(uuidlib.uuid4()), "size": d.get("size", 0), "mode": d.get("mode", "rw"),
                       "format": d.get("format", "raw"), "name": d.get("name")} for d in self.req["disks"]],
            "tags": list(self.req["tags"]), "serial_no": 1, "ctime": now, "mtime": now,
        })
        if op.forthcoming:
            return self._reserve(inst)
        if self.reserved is not None:
            self.cfg.update(lambda d: (release_nic_ips(d, self.reserved.nics), d.instances.pop(inst.name)))
            self.feedback(f"* replacing the forthcoming instance {inst['name']} by the real one")
        try:
            return self._create(inst)
        except errors.GenericError:
            if self.reserved is not None:
                self.cfg.update(self._put_back)
                self.lock_added = False         # the reservation keeps its name's lock
            raise

    def _reserve(self, inst) -> list[str]:
        """Ganeti's forthcoming instance: in the configuration only, admin state down."""
        inst.update(forthcoming=True, admin_state="down")
        if self.snode:
            inst["secondary_nodes"] = [self.snode]

        def add(data):
            reserve_nic_ips(data, inst.nics)
            data.instances[inst.name] = inst
        self.cfg.update(add)
        self.lock_added = False
        self.feedback(f"* instance {inst['name']} reserved (forthcoming): nothing was created on the nodes")
        return [self.pnode]

    def _put_back(self, data) -> None:
        """A failed commit leaves the reservation as it was."""
        reserve_nic_ips(data, self.reserved.nics)
        data.instances[self.reserved.name] = self.reserved

    def _create(self, inst) -> list[str]:
        op = self.op
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
            if not self.adopt:
                wipe_disks(self, inst, nodes, [(index, disk, 0) for index, disk in enumerate(inst.disks)])
            self._fill_disks(inst)
        except errors.GenericError:
            self._undo_disks(inst)
            raise
        def add(data):
            reserve_nic_ips(data, inst.nics)
            data.instances[inst.name] = inst
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
                self.cfg.update(lambda d: (release_nic_ips(d, inst.nics), d.instances.pop(inst.name)))
                self._undo_disks(inst)
                self.lock_added = True
                raise
        return [self.pnode]

    def _create_disks(self, inst: dict, nodes: list[str]) -> None:
        """Every disk on every node of the instance; on a failure, none."""
        for node in nodes:
            for index, disk in enumerate(inst.disks):
                self.feedback(f"* creating disk {index} ({disk['size']} MiB) on {node}")
                res = self.rpc.blockdev_create(node, inst.name, inst.disk_template, disk, index,
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
        for index, (disk, wanted) in enumerate(zip(inst.disks, self.req["disks"])):
            self.feedback(f"* adopting {wanted['adopt']} as disk {index}")
            res = self.rpc.blockdev_adopt(self.pnode, inst.name, inst.disk_template, disk, index,
                                          wanted["adopt"], storage_params(self))
            if res.failed:
                self._undo_disks(inst)
                raise errors.OpExecError(f"could not adopt {wanted['adopt']} as disk {index} of {inst['name']}"
                                         f" on {self.pnode}: {res.fail_msg}")
            disk["size"] = res.payload["size"]
            self.adopted[index] = res.payload["adopted"]

    def _fill_disks(self, inst: dict) -> None:
        """The data: an export's images, or the OS installed (not on adopted volumes)."""
        if self.mirrored and storage.get(inst.disk_template).install_assembled:
            # a new disk's first promotion: neither side has data yet, so forced
            assemble_disks(self, inst, force=True)
        if self.export is not None:
            from genet.cmdlib import backup
            backup.import_disks(self, inst, self.export, self.images)
        elif inst.disks and not self.op.no_install and not self.adopt:
            self.feedback(f"* running the OS create script of {inst['os']}")
            script = applied(self, inst).replace(osparams=self.script_params)
            self.rpc.os_create(self.pnode, script, storage_params(self), False).raise_on_error(f"installing {inst['os']}")

    def _undo_disks(self, inst: dict) -> None:
        """A failed creation: created disks go, adopted volumes get their old names back."""
        if not self.adopt:
            remove_all_disks(self, inst)
            return
        for index, old_name in sorted(self.adopted.items()):
            res = self.rpc.blockdev_release_adopted(self.pnode, inst.name, inst.disk_template,
                                                    inst.disks[index], index, old_name, storage_params(self))
            if res.failed:
                self.feedback(f"Warning: disk {index} keeps its new volume name: {res.fail_msg}")

    def cleanup(self, failed: bool) -> None:
        """A create that failed (or was a dry run) drops the lock it added for the new name."""
        if (failed or self.op.dry_run) and getattr(self, "lock_added", False):
            self.ctx.glm.remove(Level.INSTANCE, [self.op.instance_name], owner=self.owner)


def check_unsupported(op) -> None:
    """Ganeti's options for what genet has not (and contradictions): refused with the reason, never ignored."""
    if op.no_nics and op.nics:
        raise errors.OpPrereqError("--no-nics and --net exclude each other", errors.ECode.INVAL)
    if op.instance_communication:
        raise errors.OpPrereqError("genet cannot serve instance communication (--communication): Ganeti's"
                                   " communication NIC is answered by its metadata daemon, which genet has not"
                                   " (gnt-cluster modify --instance-communication-network only records and"
                                   " makes the network)", errors.ECode.INVAL)
    check_file_options(op.file_storage_dir, op.file_driver, op.disk_template)


def check_file_options(directory: str | None, driver: str | None, template: str | None) -> None:
    """Ganeti's per-instance file options: genet keeps every file disk under the cluster's file
    storage directory and opens them as image files, Ganeti's ``loop`` driver (no blktap)."""
    if directory is not None:
        raise errors.OpPrereqError("genet keeps every file disk under the cluster's file storage directory"
                                   " (gnt-cluster modify --file-storage-dir): --file-storage-dir cannot place"
                                   " one instance elsewhere", errors.ECode.INVAL)
    if driver is None:
        return
    if template not in ("file", "sharedfile"):
        raise errors.OpPrereqError(f"--file-driver is for the file and sharedfile disk templates, not"
                                   f" {template}", errors.ECode.INVAL)
    if driver != "loop":
        raise errors.OpPrereqError(f"file driver {driver!r} is not available: genet has Ganeti's loop"
                                   " driver only (Xen's blktap is not supported)", errors.ECode.INVAL)
