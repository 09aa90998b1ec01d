"""Exports (gnt-backup): an instance's disk images and a config.ini on a node, and importing them.

An export of instance NAME is the directory ``export/NAME`` below a node's data directory: one
image per disk (the disk file's bytes) and ``config.ini`` in Ganeti's export format. It is
assembled in a hidden staging directory and renamed into place only when complete, so a failed
export leaves the previous one (or nothing) behind. The disk images travel over genet's TLS
disk transfer, as with ``gnt-instance move``.
"""
from __future__ import annotations

import configparser
import io
import time
from dataclasses import dataclass, field

from genet import compression, errors, impexp, opcodes
from genet.cmdlib.base import LogicalUnit
from genet.cmdlib.common import InstanceLU, instance_of, is_running, node_address, storage_params
from genet.cmdlib.disks import remove_disks
from genet.cmdlib.power import start_instance, stop_instance
from genet.locking import ALL_SET, Level
from genet.storage import base as storage

EXPORT_VERSION = 0       # Ganeti's export format version
NIC_KEYS = ("mac", "ip", "network", "name", "mode", "link", "vlan")


def dump_name(index: int, disk: dict) -> str:
    return f"disk{index}.{'qcow2' if disk.get('format') == 'qcow2' else 'raw'}"


def export_config(inst: dict) -> str:
    """config.ini of an export of ``inst``, in Ganeti's sections and keys (plus disk formats)."""
    conf = configparser.RawConfigParser()
    conf.optionxform = str                 # keep key case, as Ganeti does
    conf["export"] = {"version": str(EXPORT_VERSION), "timestamp": str(int(time.time())),
                      "source": inst.primary_node, "os": inst.os, "compression": "none"}
    be = inst.beparams
    section = {"name": inst.name, "maxmem": str(be["maxmem"]), "minmem": str(be["minmem"]),
               "memory": str(be["maxmem"]), "vcpus": str(be["vcpus"]), "disk_template": inst.disk_template,
               "hypervisor": inst.hypervisor, "tags": " ".join(inst.get("tags", []))}
    for index, nic in enumerate(inst.nics):
        for key in NIC_KEYS:
            section[f"nic{index}_{key}"] = str(nic.get(key))
    section["nic_count"] = str(len(inst.nics))
    for index, disk in enumerate(inst.disks):
        section.update({f"disk{index}_ivname": f"disk/{index}", f"disk{index}_dump": dump_name(index, disk),
                        f"disk{index}_size": str(disk["size"]), f"disk{index}_name": str(disk.get("name")),
                        f"disk{index}_format": disk.get("format", "raw")})
    section["disk_count"] = str(len(inst.disks))
    conf["instance"] = section
    conf["hypervisor"] = {k: str(v) for k, v in inst.hvparams.items()}
    conf["backend"] = {k: str(v) for k, v in be.items()}
    conf["os"] = {k: str(v) for k, v in inst.get("osparams", {}).items()}
    conf["os_private"] = {}
    out = io.StringIO()
    conf.write(out)
    return out.getvalue()


def _none(value: str | None) -> str | None:
    return None if value is None or value.lower() == "none" else value


@dataclass
class Export:
    """An export as read from its config.ini on ``node``."""
    node: str
    path: str                   # what the node was asked for: a name or a full directory
    name: str                   # the exported instance's name
    os: str
    hypervisor: str | None
    disks: list[dict] = field(default_factory=list)      # {"size", "name", "format", "dump"}
    nics: list[dict] = field(default_factory=list)
    hvparams: dict = field(default_factory=dict)
    beparams: dict = field(default_factory=dict)
    osparams: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, node: str, path: str, text: str) -> "Export":
        where = f"export {path!r} on {node}"
        conf = configparser.RawConfigParser()
        conf.optionxform = str
        try:
            conf.read_string(text)
            if not (conf.has_section("export") and conf.has_section("instance")):
                raise ValueError("the [export] or [instance] section is missing")
            version = conf.get("export", "version")
            if version != str(EXPORT_VERSION):
                raise ValueError(f"export version {version} (genet reads version {EXPORT_VERSION})")
            ins = conf["instance"]
            disks = []
            for index in range(int(ins.get("disk_count", "0"))):
                fmt = ins.get(f"disk{index}_format", "raw")
                if fmt not in ("raw", "qcow2"):
                    raise ValueError(f"disk {index} has format {fmt!r}")
                disks.append({"size": opcodes.Size().check(int(ins[f"disk{index}_size"])),
                              "name": _none(ins.get(f"disk{index}_name")), "format": fmt,
                              "dump": ins[f"disk{index}_dump"]})
            nics = [{key: _none(ins.get(f"nic{index}_{key}")) for key in NIC_KEYS}
                    for index in range(int(ins.get("nic_count", "0")))]
            return cls(node=node, path=path, name=ins["name"], os=conf.get("export", "os"),
                       hypervisor=ins.get("hypervisor"), disks=disks, nics=nics,
                       hvparams=dict(conf["hypervisor"]) if conf.has_section("hypervisor") else {},
                       beparams=_beparams(conf), osparams=dict(conf["os"]) if conf.has_section("os") else {},
                       tags=ins.get("tags", "").split())
        except (configparser.Error, KeyError, ValueError) as err:
            raise errors.OpPrereqError(f"{where} cannot be read: {err}", errors.ECode.INVAL) from None


def _beparams(conf: configparser.RawConfigParser) -> dict:
    """The backend parameters genet knows, typed; ``memory`` (old exports) sets max and min."""
    source = conf["backend"] if conf.has_section("backend") else conf["instance"]
    be: dict = {}
    for key in ("maxmem", "minmem", "vcpus"):
        if key in source:
            be[key] = int(source[key])
    if "memory" in source:
        be.setdefault("maxmem", int(source["memory"]))
        be.setdefault("minmem", int(source["memory"]))
    if "auto_balance" in source:
        be["auto_balance"] = source["auto_balance"].lower() in ("true", "yes", "1")
    return opcodes.BEPARAMS.check(be)


def find_export(lu: LogicalUnit, src_node: str | None, src_path: str) -> Export:
    """Read the export ``src_path`` from ``src_node``, or from the first node that has it."""
    if src_node is None:
        if src_path.startswith("/"):
            raise errors.OpPrereqError(f"the export directory {src_path!r} needs its node (src_node, --src-node)",
                                       errors.ECode.INVAL)
        holders = sorted(node for node, names in list_exports(lu, None).items()
                         if isinstance(names, list) and src_path in names)
        if not holders:
            raise errors.OpPrereqError(f"no node has an export named {src_path!r}", errors.ECode.NOENT)
        src_node = holders[0]
    node = lu.node(src_node)
    if node["offline"]:
        raise errors.OpPrereqError(f"source node {src_node} is offline", errors.ECode.WRONG_STATE)
    res = lu.rpc.export_info(src_node, src_path)
    if res.failed:
        ecode = res.error.ecode if isinstance(res.error, errors.OpPrereqError) else errors.ECode.ENVIRON
        raise errors.OpPrereqError(f"cannot read export {src_path!r} on {src_node}: {res.fail_msg}", ecode)
    return Export.parse(src_node, src_path, res.payload)


def import_request(lu: LogicalUnit, export: Export) -> dict:
    """The creation request of an import: what the opcode gives, the export's values for the rest.

    Also sets ``lu.images``: per new disk, the export's image (dump name, size) or None.
    """
    op = lu.op
    if not storage.TEMPLATES.cls(op.disk_template).needs_disks and export.disks:
        raise errors.OpPrereqError(f"export {export.path!r} has {len(export.disks)} disk(s); import it with a"
                                   " template that has disks", errors.ECode.INVAL)
    disks = [dict(d) for d in op.disks] or [{k: d[k] for k in ("size", "name", "format") if d[k] is not None}
                                           for d in export.disks]
    lu.images = []
    for index, disk in enumerate(disks):
        image = export.disks[index] if index < len(export.disks) else None
        lu.images.append(None if image is None else (image["dump"], image["size"]))
        if image is None:
            continue
        disk.setdefault("format", image["format"])
        if disk["format"] != image["format"]:
            raise errors.OpPrereqError(f"disk {index}: the export holds a {image['format']} image, it cannot"
                                       f" become a {disk['format']} disk", errors.ECode.INVAL)
        if disk["size"] < image["size"]:
            raise errors.OpPrereqError(f"disk {index}: {disk['size']} MiB is smaller than the exported disk"
                                       f" ({image['size']} MiB)", errors.ECode.INVAL)
    same_name = op.instance_name == export.name          # a new name gets new MACs (Ganeti's rule)
    nics = [dict(n) for n in op.nics] or [
        {k: v for k, v in (("mode", n["mode"]), ("link", n["link"]), ("ip", n["ip"]), ("vlan", n["vlan"]),
                           ("name", n["name"]), ("mac", n["mac"] if same_name else "auto")) if v is not None}
        for n in export.nics]
    be = dict(export.beparams)
    user_be = dict(op.beparams)
    if "memory" in user_be:
        user_be["maxmem"] = user_be["minmem"] = user_be.pop("memory")
    be.update(user_be)
    hypervisor = op.hypervisor or export.hypervisor
    from genet.hypervisor.base import HYPERVISORS
    known = HYPERVISORS.cls(hypervisor).PARAMETERS if hypervisor in HYPERVISORS.names() else {}
    unknown = sorted(set(export.hvparams) - set(known))
    if unknown:
        lu.feedback(f"* ignoring hypervisor parameter(s) of the export {hypervisor} does not know: {', '.join(unknown)}")
    hv = {k: v for k, v in export.hvparams.items() if k in known}
    if op.no_nics:
        nics = []
    return {"disks": disks, "nics": nics, "os_type": op.os_type or export.os,
            "osparams": dict(export.osparams, **op.osparams), "hypervisor": hypervisor,
            "beparams": be, "hvparams": dict(hv, **op.hvparams), "tags": list(export.tags)}


def check_compression(lu: LogicalUnit) -> None:
    """The copy's compression (op.compress) must be none or one the cluster allows."""
    compression.check_allowed(lu.op.compress, lu.cfg.read(lambda d: list(d.cluster.compression_tools)))


def import_disks(lu: LogicalUnit, inst: dict, export: Export, images: list) -> None:
    """Copy each export image into the new (empty) disk on the primary node; grow it if larger."""
    pnode = inst.primary_node
    sp, pnode_ip = storage_params(lu), node_address(lu, pnode)
    for index, (disk, image) in enumerate(zip(inst.disks, images)):
        if image is None:
            lu.feedback(f"* disk {index} is not in the export: left empty")
            continue
        dump, size = image
        lu.feedback(f"* copying disk {index} ({size} MiB) from the export on {export.node}")
        port = lu.rpc.blockdev_receive(pnode, inst.name, inst.disk_template, disk, index, sp, pnode_ip,
                                       lu.op.compress).raise_on_error("preparing the copy")
        sent = lu.rpc.export_send(export.node, export.path, dump, pnode_ip, port, lu.op.compress) \
            .raise_on_error(f"sending image {dump}")
        got = lu.rpc.blockdev_received(pnode, port, 600).raise_on_error(f"receiving disk {index}")
        if got != sent:
            raise errors.OpExecError(f"disk {index} arrived damaged on {pnode}: sent {sent}, got {got}")
        if disk["size"] > size:
            lu.rpc.blockdev_grow(pnode, inst.name, inst.disk_template, disk, index, disk["size"], sp) \
                .raise_on_error(f"growing disk {index}")


def list_exports(lu: LogicalUnit, names: list[str] | None) -> dict:
    """{node: [export names] or False (the node did not answer or is offline)}."""
    data = lu.cfg.snapshot()
    wanted = sorted(data.nodes) if not names else names
    for name in wanted:
        lu.node(name)
    online = {n: data.nodes[n]["primary_ip"] for n in wanted if not data.nodes[n]["offline"]}
    results = lu.rpc.export_list.on(online) if online else {}
    return {n: (results[n].payload if n in results and not results[n].failed else False) for n in wanted}


class LUBackupQuery(LogicalUnit):
    OPCODE = opcodes.OpBackupQuery
    REQ_BGL = False

    def expand_names(self):
        for name in self.op.nodes:
            self.node(name)
        if self.op.use_locking:
            self.needed_locks[Level.NODE] = list(self.op.nodes) or ALL_SET
            self.share_locks[Level.NODE] = True

    def exec(self):
        return list_exports(self, self.op.nodes)


class LUBackupPrepare(InstanceLU):
    """Ganeti's first step of a remote export, on the source cluster: the handshake that shows the
    cluster domain, a key made on the primary node for the transfer (named, the name signed) and
    its certificate signed with the domain secret. A local export needs nothing: None."""
    OPCODE = opcodes.OpBackupPrepare

    def exec(self):
        if self.op.mode != "remote":
            return None
        secret = impexp.domain_secret()
        pnode = self.inst.primary_node
        self.feedback(f"Generating X509 certificate on {pnode}")
        name, cert_pem = self.rpc.x509_cert_create(pnode, impexp.RIE_CERT_VALIDITY) \
            .raise_on_error(f"cannot create an X509 key and certificate on {pnode}")
        return {"handshake": impexp.handshake(secret), "x509_key_name": impexp.key_name(secret, name),
                "x509_ca": impexp.sign_certificate(secret, cert_pem)}


class LUBackupExport(InstanceLU):
    """Stop (if asked), copy every disk to the target node's staging directory, write config.ini,
    put it in place, then start the instance again or remove it; any failure before that point
    discards the staging directory and restarts the instance."""
    OPCODE = opcodes.OpBackupExport
    HPATH = "instance-export"

    def hooks_env(self):
        op = self.op
        return {"EXPORT_MODE": op.mode, "EXPORT_NODE": op.target_node, "EXPORT_DO_SHUTDOWN": op.shutdown,
                "SHUTDOWN_TIMEOUT": op.shutdown_timeout, "REMOVE_INSTANCE": bool(op.remove_instance),
                **super().hooks_env()}

    def hooks_nodes(self):
        nodes = [self.master_node(), self.inst.primary_node]
        if self.op.mode == "local":
            nodes.append(self.op.target_node)
        return nodes, nodes

    def expand_names(self):
        op = self.op
        if op.mode == "remote":
            raise errors.OpPrereqError("remote exports (mode 'remote') are not supported: genet exports to a node"
                                       " of its own cluster (mode 'local')", errors.ECode.INVAL)
        if not isinstance(op.target_node, str):
            raise errors.OpPrereqError("a local export needs a node name as target_node", errors.ECode.INVAL)
        if op.destination_x509_ca is not None or op.x509_key_name is not None:
            raise errors.OpPrereqError("destination_x509_ca and x509_key_name are for remote exports only",
                                       errors.ECode.INVAL)
        if op.remove_instance and not op.shutdown:
            raise errors.OpPrereqError("cannot remove an instance without shutting it down first",
                                       errors.ECode.INVAL)
        if op.zero_free_space:
            raise errors.OpPrereqError("genet cannot zero an instance's free space (Ganeti's --zero-free-space"
                                       " boots a helper VM from the cluster's zeroing image, gnt-cluster modify"
                                       " --zeroing-image; genet runs no helper VMs)", errors.ECode.INVAL)
        if op.zeroing_timeout_fixed is not None or op.zeroing_timeout_per_mib is not None:
            raise errors.OpPrereqError("the zeroing timeouts apply to --zero-free-space only", errors.ECode.INVAL)
        instance_of(self, op.instance_name)      # named before the node, as the user wrote them
        self.node(op.target_node)
        super().expand_names()
        self.lock_all_nodes()           # shared: older exports of the instance go from other nodes

    def declare_locks(self, level):
        """Keep every node locked (InstanceLU would narrow the lock to the instance's nodes)."""

    def check_prereq(self):
        super().check_prereq()
        check_compression(self)
        inst, target = self.inst, self.node(self.op.target_node)
        if target["offline"]:
            raise errors.OpPrereqError(f"target node {target['name']} is offline", errors.ECode.WRONG_STATE)
        self.running = is_running(self, inst)
        if self.running and not self.op.shutdown:
            raise errors.OpPrereqError(f"instance {inst['name']} is running and --noshutdown was given: its"
                                       f" {inst['disk_template']} disks cannot be copied consistently while it"
                                       " runs; stop it first or let the export shut it down",
                                       errors.ECode.WRONG_STATE)

    def exec(self):
        inst, target = self.inst, self.op.target_node
        if self.running:
            self.feedback(f"* shutting down instance {inst['name']} on {inst['primary_node']}")
            stop_instance(self, inst, self.op.shutdown_timeout)
        try:
            self._copy()
        except errors.GenericError:
            self.rpc.export_abort(target, inst.name)
            if self.running:
                self.feedback(f"* starting instance {inst['name']} again")
                try:
                    start_instance(self, inst)
                except errors.OpExecError as err:      # the export's failure is what the job reports
                    self.feedback(f"Warning: {err}")
            raise
        self._remove_older_exports()
        if self.op.remove_instance:
            self._remove_instance()
        elif self.running:
            self.feedback(f"* starting instance {inst['name']} again")
            try:
                start_instance(self, inst)
            except errors.OpExecError as err:
                raise errors.OpExecError(f"the export of {inst['name']} on {target} is complete, but {err}") from None
        return [True, [True] * len(inst.disks)]

    def _copy(self) -> None:
        inst, target, source = self.inst, self.op.target_node, self.inst.primary_node
        sp, target_ip = storage_params(self), node_address(self, target)
        self.rpc.export_start(target, inst.name).raise_on_error("preparing the export directory")
        for index, disk in enumerate(inst.disks):
            dump = dump_name(index, disk)
            port = self.rpc.export_receive(target, inst.name, dump, target_ip, self.op.compress) \
                .raise_on_error("preparing the copy")
            self.feedback(f"* copying disk {index} ({disk['size']} MiB) to {target}")
            sent = self.rpc.blockdev_send(source, inst.name, inst.disk_template, disk, index, sp, target_ip,
                                          port, self.op.compress).raise_on_error(f"sending disk {index}")
            got = self.rpc.blockdev_received(target, port, 600).raise_on_error(f"receiving disk {index}")
            if got != sent:
                raise errors.OpExecError(f"disk {index} arrived damaged on {target}: sent {sent}, got {got}")
        self.rpc.export_finish(target, inst.name, export_config(inst)) \
            .raise_on_error("finishing the export")
        self.feedback(f"* instance {inst['name']} exported to {target}")

    def _remove_older_exports(self) -> None:
        name, target = self.inst.name, self.op.target_node
        for node, names in list_exports(self, None).items():
            if node != target and isinstance(names, list) and name in names:
                self.feedback(f"* removing the older export of {name} on {node}")
                res = self.rpc.export_remove(node, name)
                if res.failed:
                    self.feedback(f"Warning: the older export of {name} stays on {node}: {res.fail_msg}")

    def _remove_instance(self) -> None:
        inst = self.inst
        self.feedback(f"* removing instance {inst['name']}")
        failures = remove_disks(self, inst, inst.primary_node)
        if failures and not self.op.ignore_remove_failures:
            raise errors.OpExecError(f"{inst['name']} is exported, but its disks could not be removed"
                                     f" ({'; '.join(failures)}); the instance stays")
        for failure in failures:
            self.feedback(f"Warning: {failure}")
        self.cfg.update(lambda d: d.instances.pop(inst.name))
        self.removed = True

    def cleanup(self, failed: bool) -> None:
        if getattr(self, "removed", False):
            self.ctx.glm.remove(Level.INSTANCE, [self.op.instance_name], owner=self.owner)


class LUBackupRemove(LogicalUnit):
    """Deletes the export from every node listing it; the instance itself need not exist."""
    OPCODE = opcodes.OpBackupRemove
    REQ_BGL = False

    def expand_names(self):
        name = self.op.instance_name
        if "/" in name or ".." in name or name.startswith("."):
            raise errors.OpPrereqError(f"invalid export name {name!r}: use a plain name without '/' or '..'",
                                       errors.ECode.INVAL)
        self.lock_all_nodes(shared=False)

    def check_prereq(self):
        listing = list_exports(self, None)
        self.holders = sorted(n for n, names in listing.items()
                              if isinstance(names, list) and self.op.instance_name in names)
        if not self.holders:
            silent = sorted(n for n, names in listing.items() if names is False)
            hint = f" (no answer from {', '.join(silent)})" if silent else ""
            raise errors.OpPrereqError(f"no node has an export named {self.op.instance_name!r}{hint}",
                                       errors.ECode.NOENT)

    def exec(self):
        for node in self.holders:
            self.feedback(f"* removing export {self.op.instance_name} on {node}")
            self.rpc.export_remove(node, self.op.instance_name) \
                .raise_on_error(f"removing export {self.op.instance_name}")
        return None
