"""genet-noded: the node daemon, JSON over mutually authenticated HTTPS.

Each request is ``POST /<procedure>`` with a JSON list of arguments; the reply is
``[true, result]`` or ``[false, [error class, args]]``. Procedures run in the
reactor's thread pool because they block (files, SQLite, subprocesses).
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from genet import __version__, config, config_file, daemon_util, errors, paths, rpc_defs, serializer, ssl_utils, wire
from genet.collectors import NodeCollectors
from genet.config_file import ConfigFile
from genet.hooks_runner import HooksProcedures
from genet.noded_admin import AdminProcedures
from genet.objects import Disk, Instance, InstanceRuntime
from genet.queue_store import QueueStore
from genet.rpc_defs import LDS_FAULTY, LDS_OKAY, DiskStatus, Heartbeat, IncomingPorts, MirrorStatus, Version

PROTOCOL_VERSION = 1
MAX_BODY = 256 * 1024 * 1024
CUT_OFF_AFTER = 10.0    # seconds without a master's heartbeat after which a node counts as cut off
CHANGE_ORDER_WAIT = 0.5  # how long a config change waits for the one before it, sent just before
log = logging.getLogger("genet-noded")


class NodeProcedures(AdminProcedures, HooksProcedures):
    """Every procedure of genet.rpc_defs, as ``rpc_<name>`` with the same signature (the
    administration ones in noded_admin)."""

    def __init__(self, stop_daemon=None):
        self._queue: QueueStore | None = None
        self._config_lock = threading.Lock()
        self._config_stored = threading.Condition(self._config_lock)   # a config change stored
        self._hypervisors: dict = {}
        self._receivers: dict = {}       # port -> genet.transfer.Receiver
        self._collectors = NodeCollectors(instances=self._usage_sources)
        self._config_files: dict[Path, ConfigFile] = {}
        self._stop_daemon = stop_daemon or (lambda: None)

    def call(self, name: str, args: list):
        """Run procedure ``name`` on wire arguments, checked against its definition (the caller's
        wrong input is refused there; an error inside is a bug of ours); the wire result. The one
        way in (make_site), so the cut-off guard holds for all."""
        proc = rpc_defs.get(name)
        values = proc.check(args)
        if proc.guarded:
            self._refuse_if_cut_off(name)
        return wire.encode(getattr(self, f"rpc_{name}")(*values))

    # --- cut off from the master: stop what the config no longer places here, first ---

    def cut_off_for(self) -> float | None:
        """Seconds since the last heartbeat of a master if that is more than CUT_OFF_AFTER (this
        node was partitioned, offline, or its master died), else None. A node that never heard
        one (new, or just rebooted: the mark lives in the run directory) is not cut off."""
        try:
            silent = time.time() - paths.master_contact_file().stat().st_mtime
        except FileNotFoundError:
            return None
        return silent if silent > CUT_OFF_AFTER else None

    def _heard_master(self) -> None:
        mark = paths.master_contact_file()
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()

    def _refuse_if_cut_off(self, what: str) -> None:
        silent = self.cut_off_for()
        if silent is not None:
            raise errors.NodeCutOffError(
                f"{what} refused: {paths.node_name()} has not heard from the master for {silent:.0f} s; it"
                " serves no instance or disk request until the master has stopped the instances it no longer"
                " places here (the next heartbeat does)", errors.ECode.WRONG_STATE)

    def rpc_heartbeat(self, epoch: int, master: str) -> dict:
        """The master's periodic call. A master of an older epoch is refused (and so learns it
        was deposed); a node that was cut off says so and waits for rpc_stop_strays."""
        with self._config_lock:
            self._refuse_older_epoch(epoch, f"a heartbeat of {master}")
        cut_off = self.cut_off_for() is not None
        if not cut_off:
            self._heard_master()
        from genet.storage.base import synced_primaries
        serial = self._config_stamp()[0]
        queue_seq = self._queue_store().max_seq() if serial >= 0 else 0     # candidates hold a copy
        return Heartbeat(cut_off=cut_off, synced=synced_primaries(), serial=serial, queue_seq=queue_seq,
                         **self._master_and_epoch())

    def rpc_stop_strays(self, epoch: int, allowed: list) -> list:
        """Stop every instance running here that is not in ``allowed`` (the instances the config
        places here as primary, and those a migration is bringing here): the guest is paused at
        once, so it writes nothing more, then killed. Ends the cut-off state; returns the names
        stopped."""
        from genet.hypervisor import base as hvbase
        with self._config_lock:
            self._refuse_older_epoch(epoch, "stopping the instances placed elsewhere")
        keep = set(allowed)
        stopped = []
        for hv_name in hvbase.names():
            hv = self._hv(hv_name)
            for name, info in hv.all_info().items():
                if name in keep:
                    continue
                log.warning("instance %s runs here (%s) but the config places it elsewhere: pausing and"
                            " killing it", name, info.get("runstate", info.get("state")))
                if info.get("state") == hvbase.HvState.RUNNING.value:
                    try:
                        hv.pause(name)
                    except hvbase.HypervisorError as err:   # exiting already: the kill below settles it
                        log.warning("pausing %s: %s", name, err)
                hv.stop(name, 0, force=True)
                stopped.append(name)
        self._heard_master()
        return stopped

    def _refuse_if_running(self, instance: str, what: str) -> None:
        """A disk a guest on this node still holds is never given to a resync."""
        from genet.hypervisor import base as hvbase
        for hv_name in hvbase.names():
            info = self._hv(hv_name).info(instance)
            if info is not None and info.get("state") != hvbase.HvState.CRASHED.value:
                raise errors.OpPrereqError(
                    f"{what} refused: instance {instance} still runs on {paths.node_name()} ({hv_name},"
                    f" pid {info.get('pid')}) and holds its disks", errors.ECode.WRONG_STATE)

    def _queue_store(self) -> QueueStore:
        if self._queue is None:
            self._queue = QueueStore(paths.queue_db())
        return self._queue

    def rpc_version(self) -> Version:
        return Version(PROTOCOL_VERSION, __version__)

    def rpc_node_info(self) -> dict:
        """Who this node thinks it is, its clock, config serial and ssconf (for verify)."""
        serial = self._config_stamp()[0]
        return {"name": paths.node_name(), "time": time.time(), "config_serial": None if serial < 0 else serial,
                "master_epoch": self._epoch(),
                "version": __version__, "protocol": PROTOCOL_VERSION,
                "ssconf": config.read_ssconf(), "cert": ssl_utils.cert_info(paths.cluster_cert()),
                "masterd_pid": daemon_util.pid_of("genet-masterd"), "etcd_pid": daemon_util.pid_of("genet-etcd"),
                **resources()}

    def rpc_data_collectors(self, settings: dict) -> dict:
        return self._collectors.reports(settings)

    def rpc_test_delay(self, duration: float) -> bool:
        time.sleep(max(0.0, float(duration)))
        return True

    def _config_file(self) -> ConfigFile:
        """This node's stored config (one per node root: tests run several nodes in a process)."""
        path = paths.config_file()
        if path not in self._config_files:
            self._config_files[path] = ConfigFile(path)
        return self._config_files[path]

    def _config_stamp(self) -> tuple[int, int]:
        """(serial, master epoch) of the stored config, read once per file version (it may
        be megabytes); (-1, 0) without one."""
        return self._config_file().stamp()

    def _epoch(self) -> int:
        """The newest master epoch this node knows: its config's, or a newer one it was fenced with."""
        return max(self._config_stamp()[1], config.fenced()[0])

    def _refuse_older_epoch(self, epoch: int, what: str) -> None:
        """A master of an older epoch was deposed by a master-failover: it may change nothing.
        Callers hold the config lock, so a fence cannot slip between the check and the write."""
        current = self._master_and_epoch()
        if epoch < current["epoch"]:
            raise errors.EpochError(f"{what} from a master of epoch {epoch} refused by {paths.node_name()}:"
                                    f" the master is now {current['master']} (epoch {current['epoch']})",
                                    current["master"])

    def rpc_upload_config(self, text: str) -> int:
        """Store a config pushed by the master unless ours is newer; returns our serial.

        Newer means a newer master epoch, then a higher serial: the config of a new master
        wins over uncommitted writes of the deposed one, whatever their serials."""
        data = config.parse(text, "uploaded config")
        with self._config_lock:
            serial, epoch = self._config_stamp()
            self._refuse_older_epoch(config.master_epoch(data), "a config")
            if config.master_epoch(data) == epoch and data.serial_no < serial:
                return serial
            self._config_file().replace(text.encode())
            self._config_stored.notify_all()
            return data.serial_no

    def rpc_apply_config_change(self, change: dict) -> int:
        """Store one change of the master's config if it extends ours; returns our serial after
        (an older serial than the change's tells the master we missed one)."""
        config_file.check_change(change)
        serial, epoch = config_file.change_stamp(change)
        base = tuple(change["base"])
        with self._config_stored:
            self._refuse_older_epoch(epoch, "a config change")
            stored = self._config_file()
            # the master sends a change as soon as the one before has its majority, so the one
            # before may still be on its way here on another connection: wait for it a little
            self._config_stored.wait_for(lambda: not _ahead(base, stored.stamp()), CHANGE_ORDER_WAIT)
            current = stored.stamp()
            if base != current:
                return current[0]
            if stored.append(change, stored.snapshot_stamp()) >= config_file.COMPACT_AFTER:
                stored.replace(config.dumps(stored.load()))
            self._config_stored.notify_all()
            return serial

    def _master_and_epoch(self) -> dict:
        """The master and its epoch as this node knows them (a master's heartbeat asks)."""
        fenced_epoch, fenced_by = config.fenced()
        epoch = self._epoch()
        return {"master": fenced_by if fenced_epoch == epoch and fenced_by else config.ssconf_value("master_node"),
                "epoch": epoch}

    def rpc_fence(self, epoch: int, master: str) -> int:
        """master-failover's first step: from now on refuse the writes of every master of an
        older epoch (the old one may be alive behind a partition); returns this node's epoch."""
        with self._config_lock:
            return max(config.fence(epoch, master), self._config_stamp()[1])

    def rpc_get_config(self) -> str:
        with self._config_lock:
            return config.dumps(self._config_file().load()).decode()

    def rpc_write_rapi_users(self, text: str | None) -> bool:
        """The RAPI users file, kept on every candidate so a new master's RAPI knows the users."""
        path = paths.rapi_users_file()
        if text is None:
            path.unlink(missing_ok=True)
        else:
            if len(text) > 1 << 20:
                raise errors.OpPrereqError("the RAPI users file must be a string of at most 1 MiB")
            path.parent.mkdir(parents=True, exist_ok=True)
            config.write_atomic(path, text.encode(), mode=0o600)
        return True

    def rpc_write_ssconf(self, values: dict) -> bool:
        for key, value in values.items():
            if not config.is_ssconf_key(key):
                raise errors.OpPrereqError(f"unknown ssconf key {key!r}")
            path = paths.ssconf_file(key)
            content = f"{value}\n".encode()
            try:
                if path.read_bytes() == content:
                    continue
            except OSError:
                pass
            config.write_atomic(path, content)
        return True

    def rpc_jobqueue_update(self, records: list, epoch: int) -> int:
        with self._config_lock:
            self._refuse_older_epoch(epoch, "a job queue update")
            self._queue_store().write((int(i), int(a), str(t), int(q)) for i, a, t, q in records)
        return len(records)

    # --- instances and disks (see genet.hypervisor.base, genet.storage.base) ---

    def _hv(self, name: str):
        from genet.hypervisor import base as hvbase
        if name not in self._hypervisors:
            self._hypervisors[name] = hvbase.get(name)
        return self._hypervisors[name]

    def _usage_sources(self) -> dict[str, dict]:
        """The processes of the instances this node runs, under the cluster's hypervisors (inst-usage)."""
        found: dict[str, dict] = {}
        for hv in (config.ssconf_value("hypervisor_list") or "").split():
            try:
                found.update(self._hv(hv).usage_sources())
            except Exception as err:        # a backend that cannot tell must not end the report
                log.warning("inst-usage: hypervisor %s: %s", hv, err)
        return found

    def rpc_hv_node_info(self, hypervisor: str) -> dict:
        return self._hv(hypervisor).node_info()

    def rpc_blockdev_create(self, instance: str, template: str, disk: Disk, index: int,
                            storage_params: dict) -> dict:
        from genet.storage.base import get
        return get(template, storage_params).create(instance, disk, index)

    def rpc_blockdev_adopt(self, instance: str, template: str, disk: Disk, index: int, volume: str,
                           storage_params: dict) -> dict:
        """An existing volume becomes the disk (plain): its access dict, with its size."""
        from genet.storage.base import get
        backend = get(template, storage_params)
        if not hasattr(backend, "adopt"):
            raise errors.OpPrereqError(f"disk template {template} cannot adopt volumes (only plain)")
        return backend.adopt(instance, disk, index, volume)

    def rpc_blockdev_release_adopted(self, instance: str, template: str, disk: Disk, index: int, volume: str,
                                     storage_params: dict) -> bool:
        """Undo rpc_blockdev_adopt: the volume gets its old name back."""
        from genet.storage.base import get
        get(template, storage_params).release_adopted(instance, disk, index, volume)
        return True

    def rpc_blockdev_remove(self, instance: str, template: str, disk: Disk, index: int,
                            storage_params: dict) -> bool:
        from genet.storage.base import get
        get(template, storage_params).remove(instance, disk, index)
        return True

    def rpc_blockdev_grow(self, instance: str, template: str, disk: Disk, index: int, new_size: int,
                          storage_params: dict) -> bool:
        from genet.storage.base import get
        get(template, storage_params).grow(instance, disk, index, new_size)
        return True

    def rpc_blockdev_wipe(self, instance: str, template: str, disk: Disk, index: int, storage_params: dict,
                          offset: int, size: int) -> bool:
        from genet.storage.base import get
        get(template, storage_params).wipe(instance, disk, index, offset, size)
        return True

    def rpc_blockdev_rename(self, old: str, new: str, template: str, disks: list[Disk], storage_params: dict) -> bool:
        from genet.storage.base import get
        get(template, storage_params).rename(old, new, disks)
        return True

    def rpc_blockdev_receive(self, instance: str, template: str, disk: Disk, index: int, storage_params: dict,
                             address: str, compress: str = "none") -> int:
        """Wait for the data of an (already created) disk from another node; returns the port."""
        from genet import transfer
        from genet.storage.base import get
        receiver = transfer.Receiver(get(template, storage_params).path(instance, disk, index), address, compress)
        self._receivers[receiver.port] = receiver
        return receiver.port

    def rpc_blockdev_received(self, port: int, wait: float) -> dict:
        receiver = self._receivers.pop(port, None)
        if receiver is None:
            raise errors.OpPrereqError(f"no transfer is waiting on port {port}")
        return receiver.result(wait)

    def rpc_blockdev_send(self, instance: str, template: str, disk: Disk, index: int, storage_params: dict,
                          address: str, port: int, compress: str = "none") -> dict:
        from genet import transfer
        from genet.storage.base import get
        return transfer.send(get(template, storage_params).path(instance, disk, index), address, port, compress)

    def rpc_blockdev_access(self, instance: str, template: str, disks: list[Disk], storage_params: dict) -> list:
        """Where each disk is on this node; fails naming a missing one."""
        from genet.storage.base import get
        backend = get(template, storage_params)
        return [backend.access(instance, disk, index) for index, disk in enumerate(disks)]

    def rpc_blockdev_find(self, instance: str, template: str, disks: list[Disk], storage_params: dict,
                          first: int = 0) -> list:
        """Ganeti's status of each disk, None where missing; a mirrored disk's includes its side's
        status. ``first``: the index of ``disks[0]`` when they are not all the instance's disks
        (here and below)."""
        from genet.storage.base import get
        backend = get(template, storage_params)
        found = []
        for index, disk in enumerate(disks, first):
            path = str(backend.path(instance, disk, index))
            if not backend.exists(instance, disk, index):
                found.append(None)
            elif backend.mirrored:
                side = MirrorStatus.from_wire(backend.status(instance, disk, index), f"the status of disk {index}")
                found.append(DiskStatus(path, sync_percent=side.sync_percent, estimated_time=side.estimated_time,
                                        is_degraded=side.state != "in sync",
                                        ldisk_status=LDS_OKAY if side.local_ok else LDS_FAULTY, mirror=side))
            else:
                found.append(DiskStatus(path))
        return found

    def rpc_blockdev_assemble(self, instance: str, template: str, disks: list, role: str,
                              storage_params: dict, force: bool = False, first: int = 0) -> list:
        """Bring this node's side of every disk up in ``role``; the primary's access dicts.
        ``force``: promote even where nothing shows this side is the newest (see MirroredTemplate)."""
        from genet.storage.base import get
        if role == "secondary":
            self._refuse_if_running(instance, f"assembling the disks of {instance} as secondary")
        backend = get(template, storage_params)
        return [backend.assemble(instance, disk, index, role, force=force)
                for index, disk in enumerate(disks, first)]

    def rpc_blockdev_shutdown(self, instance: str, template: str, disks: list[Disk], storage_params: dict,
                              unmirror: bool = False, first: int = 0) -> bool:
        """Take this node's side of every disk down; ``unmirror``: also drop what the mirror added,
        leaving the data to the single-node template (MirroredTemplate.unmirror)."""
        from genet.storage.base import get
        backend = get(template, storage_params)
        for index, disk in enumerate(disks, first):
            (backend.unmirror if unmirror else backend.shutdown)(instance, disk, index)
        return True

    def rpc_blockdev_resync(self, instance: str, template: str, disks: list[Disk], storage_params: dict,
                            retarget: bool = False, first: int = 0) -> list:
        """On the primary: mirror again to a secondary that came back, or (``retarget``) to the
        secondary the disks now name; what each disk did."""
        from genet.storage.base import get
        backend = get(template, storage_params)
        step = backend.retarget if retarget else backend.resync
        return [step(instance, disk, index) for index, disk in enumerate(disks, first)]

    def rpc_blockdev_migration(self, instance: str, template: str, disks: list[Disk], storage_params: dict,
                               step: str, role: str) -> list:
        """One step of a live migration of mirrored disks (storage.base.MirroredTemplate)."""
        from genet.storage.base import get
        backend = get(template, storage_params)
        if step not in ("prepare", "switch", "finish", "abort") or role not in ("source", "target"):
            raise errors.OpPrereqError(f"unknown migration step {step!r} or role {role!r}")
        if step in ("finish", "abort"):
            call = backend.migration_finish if step == "finish" else backend.migration_abort
            return [call(instance, disk, index) for index, disk in enumerate(disks)]
        call = backend.migration_prepare if step == "prepare" else backend.migration_switch
        return [call(instance, disk, index, role) for index, disk in enumerate(disks)]

    # --- exports (gnt-backup): one directory per export under export_dir() ---

    # --- storage units (genet.storage.units) ---

    def rpc_storage_list(self, storage_type: str, storage_params: dict, name: str | None, fields: list) -> list:
        from genet.storage import units
        return units.get(storage_type, storage_params).rows(name, fields)

    def rpc_storage_modify(self, storage_type: str, storage_params: dict, name: str, changes: dict) -> bool:
        from genet.storage import units
        units.get(storage_type, storage_params).modify(name, changes)
        return True

    def rpc_storage_execute(self, storage_type: str, storage_params: dict, name: str, operation: str) -> bool:
        from genet.storage import units
        units.get(storage_type, storage_params).execute(name, operation)
        return True

    def rpc_node_volumes(self, storage_params: dict) -> list:
        from genet.storage import lvm_units
        return lvm_units.node_volumes(storage_params)

    def rpc_storage_diagnose(self, storage_params: dict) -> list:
        from genet.storage import units
        return units.diagnose(storage_params)

    def rpc_drbd_helper(self) -> str | None:
        from genet.storage.drbd.backend import DrbdStorage
        return DrbdStorage().usermode_helper()

    def rpc_export_list(self) -> list:
        """Names of the complete exports on this node."""
        root = export_dir()
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir()
                      if not p.name.startswith(".") and (p / EXPORT_CONF).is_file())

    def rpc_export_info(self, name: str) -> str:
        """The config.ini of an export (by name, or by its full directory)."""
        conf = export_path(name) / EXPORT_CONF
        try:
            return conf.read_text()
        except FileNotFoundError:
            raise errors.OpPrereqError(f"node {paths.node_name()} has no export {name!r}", errors.ECode.NOENT) from None

    def rpc_export_start(self, name: str) -> str:
        """A fresh, hidden staging directory for export ``name``; a leftover one is discarded."""
        staging = export_path(name, staging=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, mode=0o750)
        return str(staging)

    def rpc_export_receive(self, name: str, dump: str, address: str, compress: str = "none") -> int:
        """Wait for one disk image of a staged export from another node; returns the port."""
        from genet import transfer
        target = export_path(name, staging=True) / export_file_name(dump)
        target.touch(exist_ok=False)
        receiver = transfer.Receiver(target, address, compress)
        self._receivers[receiver.port] = receiver
        return receiver.port

    def rpc_export_finish(self, name: str, conf_text: str) -> bool:
        """Write config.ini and put the staged export in place of any older one of that name."""
        staging, final = export_path(name, staging=True), export_path(name)
        config.write_atomic(staging / EXPORT_CONF, conf_text.encode())
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return True

    def rpc_export_abort(self, name: str) -> bool:
        shutil.rmtree(export_path(name, staging=True), ignore_errors=True)
        return True

    def rpc_export_remove(self, name: str) -> bool:
        target = export_path(name)
        if not target.is_dir():
            raise errors.OpPrereqError(f"node {paths.node_name()} has no export {name!r}", errors.ECode.NOENT)
        shutil.rmtree(target)
        return True

    def rpc_export_send(self, name: str, dump: str, address: str, port: int, compress: str = "none") -> dict:
        """Stream one disk image of an export to a Receiver (an import's new disk)."""
        from genet import transfer
        source = export_path(name) / export_file_name(dump)
        if not source.is_file():
            raise errors.OpPrereqError(f"export {name!r} on {paths.node_name()} has no image {dump!r}",
                                       errors.ECode.NOENT)
        return transfer.send(source, address, port, compress)

    def rpc_instance_resize_disk(self, name: str, hypervisor: str, index: int, size: int) -> bool:
        """Give a running guest's disk its new size (Hypervisor.resize_disk)."""
        self._hv(hypervisor).resize_disk(name, index, size)
        return True

    def rpc_instance_balloon_memory(self, name: str, hypervisor: str, memory: int) -> bool:
        """Change a running guest's memory (Hypervisor.balloon_memory)."""
        self._hv(hypervisor).balloon_memory(name, memory)
        return True

    def rpc_instance_hotplug(self, name: str, hypervisor: str, kind: str, action: str, index: int,
                             device: dict | None) -> bool:
        """Plug (``add``) or unplug (``remove``) a disk or NIC of a running instance."""
        hv = self._hv(hypervisor)
        if kind == "disk":
            hv.hotplug_disk(name, device, index) if action == "add" else hv.unplug_disk(name, index)
        elif kind == "nic":
            hv.hotplug_nic(name, device, index) if action == "add" else hv.unplug_nic(name, index)
        else:
            raise errors.OpPrereqError(f"cannot hot-plug a {kind!r}")
        return True

    # --- OS definitions (genet.osinterface) ---

    def rpc_os_diagnose(self) -> list:
        from genet import osinterface
        return osinterface.diagnose()

    def rpc_os_validate(self, name: str, osparams: dict) -> bool:
        from genet import osinterface
        return osinterface.validate(name, osparams)

    def _resolved(self, inst: Instance, storage_params: dict) -> list[dict]:
        """The disks for OS scripts; mirrored ones as their template's offline_access says (mirror:
        the local images, copied in full by the next assembly; drbd: the assembled device)."""
        from genet.storage.base import get
        template = get(inst.disk_template, storage_params)
        if template.mirrored:
            return [template.offline_access(inst.name, d, i) for i, d in enumerate(inst.disks)]
        return [template.access(inst.name, d, i) for i, d in enumerate(inst.disks)]

    def rpc_os_create(self, inst: Instance, storage_params: dict, reinstall: bool = False) -> str:
        """Run the OS create script on the instance's disks; returns the log path."""
        from genet import osinterface
        name, variant = osinterface.split_name(inst.os)
        result = osinterface.create(inst, self._resolved(inst, storage_params), variant=variant or None,
                                    osparams=inst.get("osparams", {}), reinstall=reinstall)
        return str(result.log_path)

    def rpc_os_rename(self, inst: Instance, old_name: str, storage_params: dict) -> str:
        from genet import osinterface
        _, variant = osinterface.split_name(inst.os)
        result = osinterface.rename(inst, self._resolved(inst, storage_params), old_name, variant=variant or None,
                                    osparams=inst.get("osparams", {}))
        return str(result.log_path)

    def rpc_instance_start(self, inst: Instance, storage_params: dict, paused: bool = False) -> dict:
        """Resolve the disks on this node, then start the instance."""
        from genet.storage.base import get
        template = get(inst.disk_template, storage_params)
        runtime = InstanceRuntime(inst, disks=[template.access(inst.name, d, i) for i, d in enumerate(inst.disks)])
        hv = self._hv(inst.hypervisor)
        hv.start(runtime, paused)
        return hv.info(inst.name) or {}

    def rpc_instance_stop(self, name: str, hypervisor: str, shutdown_timeout: float, force: bool = False) -> bool:
        self._hv(hypervisor).stop(name, shutdown_timeout, force)
        return True

    def rpc_instance_reboot(self, name: str, hypervisor: str, hard: bool) -> bool:
        self._hv(hypervisor).reboot(name, hard)
        return True

    def rpc_instance_info(self, name: str, hypervisor: str) -> dict | None:
        return self._hv(hypervisor).info(name)

    def rpc_instances_info(self, hypervisors: list) -> dict:
        """Every instance this node runs, per hypervisor: {name: info}."""
        found = {}
        for hv in hypervisors:
            for name, info in self._hv(hv).all_info().items():
                found[name] = dict(info, hypervisor=hv)
        return found

    def rpc_instance_console(self, name: str, hypervisor: str) -> dict:
        return self._hv(hypervisor).console(name)

    def rpc_instance_migration_info(self, name: str, hypervisor: str) -> dict:
        return self._hv(hypervisor).migration_info(name)

    def rpc_instance_accept_incoming(self, inst: Instance, storage_params: dict, address: str,
                                     info: dict | None, copy_disks: bool = False) -> IncomingPorts:
        """Start the target side of a migration on free ports (an NBD one too with ``copy_disks``)."""
        info = dict(info or {})
        ports = IncomingPorts(_free_port(address), _free_port(address) if copy_disks else None)
        info["nbd_port"] = ports.nbd_port
        from genet.storage.base import get
        template = get(inst.disk_template, storage_params)
        if template.mirrored:      # the side blockdev_migration prepared; held until the switch
            disks = [template.access(inst.name, d, i) for i, d in enumerate(inst.disks)]
            info["hold"] = True
        else:
            disks = self._resolved(inst, storage_params)
        self._hv(inst.hypervisor).accept_incoming(InstanceRuntime(inst, disks=disks), address, ports.port, info)
        return ports

    def rpc_instance_migrate(self, name: str, hypervisor: str, address: str, port: int, live: bool,
                             nbd_port: int | None = None) -> bool:
        self._hv(hypervisor).migrate(name, address, port, live, nbd_port=nbd_port)
        return True

    def rpc_instance_migration_status(self, name: str, hypervisor: str) -> dict:
        return self._hv(hypervisor).migration_status(name)

    def rpc_instance_abort_migration(self, name: str, hypervisor: str, resume_completed: bool = False) -> bool:
        self._hv(hypervisor).abort_migration(name, resume_completed)
        return True

    def rpc_instance_finish_incoming(self, name: str, hypervisor: str, success: bool) -> bool:
        self._hv(hypervisor).finish_incoming(name, success)
        return True

    def rpc_jobqueue_versions(self) -> list:
        return list(self._queue_store().versions().items())

    def rpc_jobqueue_records(self, ids: list) -> list:
        return self._queue_store().records(ids)

    def rpc_jobqueue_purge(self) -> bool:
        self._queue_store().purge()
        return True

    def rpc_master_vote(self) -> str | None:
        """The master this node believes in (its ssconf), for master-failover's vote."""
        return config.ssconf_value("master_node")

    def rpc_start_masterd(self, args: list | None = None) -> int:
        daemon_util.start_master_daemons(args or [])
        return daemon_util.pid_of("genet-masterd")

    def rpc_stop_masterd(self) -> bool:
        return daemon_util.stop_master_daemons()

    def rpc_etcd_start(self, members: dict, token: str) -> int:
        from genet.ha import node_agent
        return node_agent.start_member(members, token)

    def rpc_etcd_stop(self) -> bool:
        from genet.ha import node_agent
        return node_agent.stop_member()

    def rpc_leave_cluster(self) -> bool:
        """Forget the cluster: stop masterd, remove state, then stop noded itself."""
        daemon_util.stop_master_daemons()
        if self._queue is not None:
            self._queue.close()
            self._queue = None
        for path in [paths.config_file(), config_file.journal_of(paths.config_file()), paths.queue_db(),
                     Path(f"{paths.queue_db()}-wal"),
                     Path(f"{paths.queue_db()}-shm"), paths.cluster_cert()]:
            path.unlink(missing_ok=True)
        for path in config.ssconf_files():
            path.unlink(missing_ok=True)
        self._stop_daemon()
        return True


def _ahead(base: tuple[int, int], stamp: tuple[int, int]) -> bool:
    """Whether a change of ``base`` extends a serial this node has not stored yet (same epoch)."""
    return base[1] == stamp[1] and base[0] > stamp[0]


EXPORT_CONF = "config.ini"   # an export's description, in Ganeti's format


def export_dir() -> Path:
    return paths.data_dir() / "export"


def export_file_name(name: str) -> str:
    """``name`` if it is a plain file name; anything that could leave the directory is refused."""
    if not isinstance(name, str) or not name or "/" in name or "\0" in name or ".." in name or name.startswith("."):
        raise errors.OpPrereqError(f"invalid export name {name!r}: use a plain name without '/' or '..'",
                                   errors.ECode.INVAL)
    return name


def export_path(name: str, staging: bool = False) -> Path:
    """The directory of export ``name`` (a plain name, or its full path in export_dir());
    ``staging``: the hidden directory it is assembled in before it replaces the real one."""
    if isinstance(name, str) and name.startswith("/"):
        full = Path(name)
        if full.parent != export_dir():
            raise errors.OpPrereqError(f"invalid export directory {name!r}: exports live in {export_dir()}",
                                       errors.ECode.INVAL)
        name = full.name
    name = export_file_name(name)
    return export_dir() / (f".{name}.new" if staging else name)


def _free_port(address: str) -> int:
    """A TCP port free on ``address`` now (QEMU binds it a moment later)."""
    import socket
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def resources() -> dict[str, int]:
    """Memory (MiB), disk of the state directory (MiB) and CPUs, for node list fields."""
    mem = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            key, value = line.split(":", 1)
            mem[key] = int(value.split()[0]) // 1024
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    st = os.statvfs(paths.data_dir())
    return {"mtotal": mem["MemTotal"], "mfree": mem.get("MemAvailable", mem["MemFree"]),
            "dtotal": st.f_blocks * st.f_frsize >> 20, "dfree": st.f_bavail * st.f_frsize >> 20,
            "ctotal": os.cpu_count() or 1, "mnode": max(0, mem["MemTotal"] - mem.get("MemAvailable", mem["MemFree"])),
            **cpu_topology()}


def cpu_topology() -> dict[str, int]:
    """Sockets and NUMA nodes, from sysfs (1 each when it says nothing)."""
    sockets = set()
    for package in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/physical_package_id"):
        try:
            sockets.add(package.read_text().strip())
        except OSError:
            pass
    numa = len(list(Path("/sys/devices/system/node").glob("node[0-9]*")))
    return {"csockets": len(sockets) or 1, "cnodes": numa or 1, "cnos": 1}




def make_site(procedures: NodeProcedures):
    from twisted.internet import threads
    from twisted.web import resource, server

    class RpcResource(resource.Resource):
        isLeaf = True

        def render_POST(self, request):
            name = request.path.decode(errors="replace").lstrip("/")
            try:
                length = int(request.getHeader("content-length") or 0)
                if length > MAX_BODY:
                    raise errors.OpPrereqError(f"request body too large ({length} bytes)")
                args = serializer.loads(request.content.read() or b"[]")
                if not isinstance(args, list):
                    raise errors.OpPrereqError("RPC arguments must be a JSON list")
                rpc_defs.get(name)
            except (ValueError, errors.GenericError) as err:
                request.setResponseCode(400)
                return _reply(False, errors.to_wire(
                    err if isinstance(err, errors.GenericError) else errors.OpPrereqError(f"invalid JSON: {err}")))

            def run():
                try:
                    return _reply(True, procedures.call(name, args))
                except Exception as err:  # back to the caller (a bug as an internal error), traceback here
                    log.exception("RPC %s failed", name)
                    return _reply(False, errors.to_wire(err))

            def done(body):
                request.setHeader("content-type", "application/json")
                request.write(body)
                request.finish()

            threads.deferToThread(run).addCallback(done)
            return server.NOT_DONE_YET

        def render_GET(self, request):
            request.setResponseCode(405)
            return _reply(False, ["OpPrereqError", ["use POST", "wrong_input"]])

    site = server.Site(RpcResource())
    site.displayTracebacks = False
    return site


def _reply(success: bool, payload) -> bytes:
    return serializer.dumps([success, payload])
