"""The drbd disk template (see the package's docstring)."""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, replace
from pathlib import Path

from genet import paths
from genet.objects import DiskAccess
from genet.storage.base import MirroredTemplate, StorageError, run, zero_fill
from genet.storage.drbd.backing import Backing, FileBacking, lv_name, lvm_backing
from genet.storage.drbd.commands import Commands, Commands9, commands
from genet.storage.drbd.resource import (META_SIZE_MIB, Resource, Side, check_logical_id, connection_key,
                                         render_config, resource_name, volume_names)
from genet.storage.drbd.status import (DrbdState, HANDSHAKING, SYNC_STATES_DRBD, parse_proc_drbd, parse_status_json,
                                       sync_status)
from genet.storage.lvm import PlainStorage


class DrbdStorage(MirroredTemplate):
    """One node's side of a DRBD-mirrored disk.

    Lifecycle per node: create (volumes + meta data) → assemble(secondary|primary) (device
    attached, connected to the peer, role set) ⇄ promote/demote → shutdown (down) → remove
    (meta data wiped, volumes removed). Each step is idempotent. Grow: grow the secondary
    first, then the primary (whose ``grow`` also resizes the DRBD device).
    """
    name = "drbd"
    single_node = "plain"
    in_volume_group = True
    storage_type = "lvm-vg"
    # volumes are LVs beside the plain template's; without cluster settings (tests) files
    SETTINGS = {**PlainStorage.SETTINGS, "drbd_backing": "lvm"}
    install_assembled = True          # the OS is installed through the device: mirrored as written

    @staticmethod
    def new_logical_id(pool, nodes: list[str], addresses: list[str], owner) -> dict:
        """As MirroredTemplate's, plus a minor per node and a shared secret."""
        return pool.allocate_logical_id(nodes, addresses, owner)

    def ganeti_logical_id(self, instance: str, disk: dict, index: int) -> list:
        lid = disk["logical_id"]
        return [*lid["nodes"], lid["port"], *lid["minors"], lid["secret"]]

    def logical_volumes(self, primary: str, disk: dict) -> list[tuple[str, str]]:
        """Data and meta data volumes on both nodes, when they are logical volumes."""
        if self.setting("drbd_backing") != "lvm":
            return []
        vg = PlainStorage(self.params).volume_group()
        return [(node, f"{vg}/{lv_name(name)}") for node in disk["logical_id"]["nodes"] for name in volume_names(disk)]

    def diagnose(self) -> tuple[str, str | None]:
        """The kernel module must be loaded (a version genet drives), and the backing usable."""
        try:
            version = self.version()
        except StorageError as err:
            return str(self.proc), str(err)
        if self.setting("drbd_backing") == "lvm":
            where, problem = PlainStorage(self.params).diagnose()
            if problem:
                return str(self.proc), f"DRBD {version}, but its volumes' {problem}"
        return str(self.proc), None

    def ganeti_drbd_info(self, primary: str, disk: dict) -> dict | None:
        lid = disk["logical_id"]
        minors = dict(zip(lid["nodes"], lid["minors"]))
        secondary = next(n for n in lid["nodes"] if n != primary)
        return {"primary_node": primary, "primary_minor": minors[primary], "secondary_node": secondary,
                "secondary_minor": minors[secondary], "port": lid["port"], "secret": lid["secret"]}

    def __init__(self, params: dict | None = None):
        super().__init__(params)
        p = self.params
        self.bindir = p.get("drbd_bindir") or os.environ.get("GENET_DRBD_BINDIR") or None
        self.dev_dir = Path(p.get("drbd_dev_dir") or os.environ.get("GENET_DRBD_DEV_DIR") or "/dev")
        self.proc = Path(p.get("drbd_proc") or os.environ.get("GENET_DRBD_PROC") or "/proc/drbd")
        self.helper_file = Path(p.get("drbd_helper_file") or os.environ.get("GENET_DRBD_HELPER_FILE")
                                or "/sys/module/drbd/parameters/usermode_helper")
        self.conf_dir = Path(p.get("drbd_conf_dir") or paths.data_dir() / "drbd")
        self.connect_timeout = float(p.get("drbd_connect_timeout", 10.0))
        self.poll_interval = float(p.get("drbd_poll_interval", 0.25))
        backing = p.get("drbd_backing")
        if isinstance(backing, Backing):
            self.backing = backing
        elif backing in (None, "file"):
            directory = paths.root() / str(p.get("drbd_file_dir", "srv/genet/drbd-storage")).lstrip("/")
            self.backing = FileBacking(directory, loop=bool(p.get("drbd_file_loop", False)))
        elif backing == "lvm":
            self.backing = lvm_backing(p)
        else:
            raise StorageError(f"unknown DRBD backing {backing!r} (lvm, file, or a Backing object)")
        self._node = p.get("node_name")

    # --- helpers ---------------------------------------------------------------

    @property
    def node(self) -> str:
        return self._node or paths.node_name()

    def version(self) -> str:
        """The loaded module's version family ("8.4" or "9"), from the first line of /proc/drbd."""
        try:
            head = self.proc.read_text().splitlines()[0]
        except (OSError, IndexError):
            raise StorageError(f"the DRBD kernel module is not loaded on {self.node} (no {self.proc})") from None
        found = re.match(r"version: (\d+)\.(\d+)", head)
        if not found:
            raise StorageError(f"cannot read the DRBD version from {self.proc}: {head!r}")
        major, minor = int(found.group(1)), int(found.group(2))
        if (major, minor) == (8, 4):
            return "8.4"
        if major == 9:
            return "9"
        raise StorageError(f"DRBD {major}.{minor} on {self.node} is not supported (8.4 and 9 are)")

    def wipe(self, instance: str, disk: dict, index: int, offset: int, size: int) -> None:
        """This node's data volume (the meta data lives on its own volume), whether or not the
        device is up: each node zeroes its own copy."""
        self.resource(instance, disk, index)
        zero_fill(self.backing.path(volume_names(disk)[0]), offset, size)

    def usermode_helper(self) -> str | None:
        """What the loaded module runs on state changes (Ganeti's drbd usermode helper); None
        when the module is not loaded."""
        try:
            return self.helper_file.read_text().strip()
        except FileNotFoundError:
            return None

    def _cmds(self) -> Commands:
        return commands(self.version(), self.bindir)

    def resource(self, instance: str, disk: dict, index: int) -> Resource:
        """This node's view of the disk's resource (volume paths as they are or would be)."""
        what = f"disk {index} of {instance}"
        lid = check_logical_id(disk.get("logical_id"), what)
        if self.node not in lid["nodes"]:
            raise StorageError(f"{what} is mirrored between {' and '.join(lid['nodes'])}, not on {self.node}")
        if disk.get("format", "raw") != "raw":
            raise StorageError(f"{what}: drbd disks are raw block devices, not {disk['format']}")
        data_name, meta_name = volume_names(disk)
        data, meta = self.backing.path(data_name), self.backing.path(meta_name)
        here = lid["nodes"].index(self.node)
        sides = [Side(lid["nodes"][i], lid["addresses"][i], lid["minors"][i], i, data, meta) for i in (0, 1)]
        return Resource(resource_name(disk), lid["port"], lid["secret"], sides[here], sides[1 - here], what)

    def path(self, instance: str, disk: dict, index: int) -> Path:
        return self.dev_dir / f"drbd{self.resource(instance, disk, index).local.minor}"

    def exists(self, instance: str, disk: dict, index: int) -> bool:
        """The data volume is here (the device only while assembled)."""
        self.resource(instance, disk, index)
        return self.backing.exists(volume_names(disk)[0])

    def _state(self, res: Resource, cmds: Commands) -> DrbdState | None:
        if isinstance(cmds, Commands9):
            import subprocess
            proc = subprocess.run(cmds.status(res), capture_output=True, text=True)
            if proc.returncode != 0:
                if "No such resource" in proc.stderr:
                    return None
                raise StorageError(f"{res.owner}: drbdsetup status failed: {proc.stderr.strip()}")
            return parse_status_json(proc.stdout, res.name)
        try:
            text = self.proc.read_text()
        except OSError as err:
            raise StorageError(f"{res.owner}: cannot read {self.proc}: {err}") from None
        return parse_proc_drbd(text).get(res.local.minor)

    def _runs(self, argvs: list[list[str]], what: str) -> None:
        for argv in argvs:
            run(argv, what)

    def _record(self, res: Resource) -> Path:
        return self.conf_dir / f"{res.name}.json"

    def _write_config(self, res: Resource, version: str) -> None:
        """The .res file for administrators and the record of what genet configured."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for path, text in ((self.conf_dir / f"{res.name}.res", render_config(res, version)),
                           (self._record(res), json.dumps(asdict(res), indent=1))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)

    def _recorded(self, res: Resource) -> Resource | None:
        try:
            data = json.loads(self._record(res).read_text())
            return Resource(**{**data, "local": Side(**data["local"]), "peer": Side(**data["peer"])})
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _local_devices(self, res: Resource, disk: dict) -> Resource:
        data_name, meta_name = volume_names(disk)
        for name in (data_name, meta_name):
            if not self.backing.exists(name):
                raise StorageError(f"{res.owner} has no volume {name} on {self.node}; create the disk first")
        local = replace(res.local, data=self.backing.device(data_name), meta=self.backing.device(meta_name))
        return replace(res, local=local)

    # --- lifecycle -------------------------------------------------------------

    def create(self, instance: str, disk: dict, index: int) -> dict:
        """Make this node's data and meta volumes and DRBD meta data; an existing side is kept."""
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        data_name, meta_name = volume_names(disk)
        existed = self.backing.exists(data_name) and self.backing.exists(meta_name)
        try:
            self.backing.create(data_name, int(disk["size"]))
            self.backing.create(meta_name, META_SIZE_MIB)
        except StorageError as err:
            raise StorageError(f"{res.owner} on {self.node}: {err}") from None
        res = self._local_devices(res, disk)
        if self._state(res, cmds) is None:           # an assembled side has valid meta data
            import subprocess
            valid = existed and subprocess.run(cmds.md_dstate(res), capture_output=True).returncode == 0
            if not valid:
                run(cmds.create_md(res), f"{res.owner}: creating DRBD meta data on {self.node}")
        self._write_config(res, cmds.version)
        return {"path": str(self.dev_dir / f"drbd{res.local.minor}"), "resource": res.name,
                "minor": res.local.minor, "data": res.local.data, "meta": res.local.meta}

    def assemble(self, instance: str, disk: dict, index: int, role: str, force: bool = False,
                 discard_my_data: bool = False) -> dict:
        """Attach this side, connect it to the peer and give it ``role``.

        A side already up is only completed: reattached if it lost its disk, reconnected if
        StandAlone, moved to the new peer if the logical_id names another one (replacing the
        secondary). ``discard_my_data`` resolves a split brain explicitly by making this side
        the sync target of the peer; ``force`` is passed on to :meth:`promote`.
        """
        if role not in ("primary", "secondary"):
            raise StorageError(f"unknown role {role!r} (primary or secondary)")
        if discard_my_data and role == "primary":
            raise StorageError("a side that discards its data cannot be the primary")
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        res = self._local_devices(res, disk)
        previous = self._recorded(res)
        self._write_config(res, cmds.version)
        state = self._state(res, cmds)
        what = f"{res.owner}: assembling on {self.node}"
        if state is None:
            self._runs(cmds.up(res, discard_my_data), what)
        else:
            if state.disk == "Diskless":
                self._runs(cmds.attach(res), what)
            changed = previous is not None and connection_key(previous) != connection_key(res)
            if changed or state.connection == "StandAlone" or discard_my_data:
                self._reconnect(previous if changed else res, res, state, cmds, discard_my_data, changed, what)
        if role == "primary":
            self.promote(instance, disk, index, force=force)
            return self.access(instance, disk, index)
        self.demote(instance, disk, index)
        return {"path": str(self.dev_dir / f"drbd{res.local.minor}"), "role": "secondary"}

    def _reconnect(self, old: Resource, new: Resource, state: DrbdState, cmds: Commands, discard: bool,
                   changed: bool, what: str) -> None:
        """Drop the connection ``old`` describes (if up) and connect as ``new`` says."""
        if state.connection != "StandAlone":
            self._runs(cmds.disconnect(old), what)
        if isinstance(cmds, Commands9) and (changed or state.peer_name is None):
            if state.peer_name is not None:                 # DRBD 9 keeps a peer until del-peer
                self._runs(cmds.forget_peer(old), what)
            self._runs(cmds.new_peer(new), what)
        self._runs(cmds.connect(new, discard), what)

    def resync(self, instance: str, disk: dict, index: int) -> str:
        """The primary connects again (or to the peer the logical_id names now); DRBD's
        handshake then resyncs only what its bitmap marked, or everything to a fresh peer."""
        res = self.resource(instance, disk, index)
        self.assemble(instance, disk, index, "primary")
        st = sync_status(self._settled(res, self._cmds()))
        if not st["connected"]:
            raise StorageError(f"{res.owner}: the secondary ({res.peer.node}) cannot be reached; the disk"
                               " stays degraded")
        return st["state"]

    retarget = resync

    def offline_access(self, instance: str, disk: dict, index: int) -> dict:
        """OS scripts write through the primary's DRBD device, like the guest."""
        return self.access(instance, disk, index)

    def shutdown(self, instance: str, disk: dict, index: int) -> None:
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        if self._state(res, cmds) is not None:
            run(cmds.down(res), f"{res.owner}: shutting DRBD down on {self.node}")
        for name in volume_names(disk):
            self.backing.release(name)

    def status(self, instance: str, disk: dict, index: int) -> dict:
        res = self.resource(instance, disk, index)
        return sync_status(self._state(res, self._cmds()))

    def access(self, instance: str, disk: dict, index: int) -> dict:
        """The device for the hypervisor; only a primary side can be opened."""
        res = self.resource(instance, disk, index)
        state = self._state(res, self._cmds())
        if state is None or state.role != "Primary":
            role = "not assembled" if state is None else f"role {state.role}"
            raise StorageError(f"{res.owner} is not primary on {self.node} ({role}); promote it first")
        return DiskAccess.of(disk, path=str(self.dev_dir / f"drbd{res.local.minor}"))

    def _settled(self, res: Resource, cmds: Commands, primary_done: bool = False) -> DrbdState | None:
        """The state once the handshake with a reachable peer is over (or the wait timed out);
        ``primary_done``: a side that is primary already needs no wait."""
        deadline = time.monotonic() + self.connect_timeout
        state = self._state(res, cmds)
        while (state is not None and time.monotonic() < deadline
               and not (primary_done and state.role == "Primary")
               and (state.connection == "Connecting" or state.replication in HANDSHAKING)):
            time.sleep(self.poll_interval)
            state = self._state(res, cmds)
        return state

    def promote(self, instance: str, disk: dict, index: int, allow_dual: bool = False, force: bool = False) -> None:
        """Make this side primary. Refused unless its data is known to be the newest:

        - the local disk must be UpToDate (not Outdated, Inconsistent, Consistent, Diskless);
        - the peer must be connected, so the handshake could show whether it is newer
          (a StandAlone side means the handshake failed: split brain or unrelated data);
        - the peer must not be primary, unless ``allow_dual`` (migration), which also turns
          allow-two-primaries on here (the peer must have done the same).

        ``force=True`` skips these checks and forces DRBD (``primary --force``): the data of
        this side wins, possibly against newer data on the peer.
        """
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        state = self._state(res, cmds) if force else self._settled(res, cmds, primary_done=True)
        if state is None:
            raise StorageError(f"{res.owner} is not assembled on {self.node}")
        if state.role == "Primary":
            return
        peer = res.peer.node
        if not force:
            refusal = None
            peer_older = state.peer_disk in ("Outdated", "Inconsistent", "Diskless")   # e.g. outdated by us
            syncing_here = state.disk == "Inconsistent" and state.replication in SYNC_STATES_DRBD
            if state.replication == "SyncTarget" or syncing_here:
                done = f" ({state.sync_percent:.1f}% done)" if state.sync_percent is not None else ""
                refusal = f"{peer} holds newer data and is still syncing it to this side{done}"
            elif state.disk == "Outdated":
                refusal = f"its data is outdated: {peer} was written to after they parted"
            elif state.disk == "Inconsistent":
                refusal = "its data is inconsistent (an initial or interrupted sync)"
            elif state.disk == "Consistent":
                refusal = f"its data is consistent but may be older than {peer}'s, which is not connected"
            elif state.disk != "UpToDate":
                refusal = f"its local disk is {state.disk}"
            elif state.connection == "Connected":
                if state.peer_role == "Primary" and not allow_dual:
                    refusal = f"{peer} is primary and dual-primary was not asked for"
            elif peer_older:
                pass                                   # the peer's copy is known to be behind this one
            elif state.connection == "StandAlone":
                refusal = (f"the handshake with {peer} failed and the connection was dropped (split brain or"
                           " unrelated data); one side has to be discarded explicitly")
            else:
                refusal = (f"{peer} is not connected, so nothing shows whether its copy is newer"
                           f" (waited {self.connect_timeout:g}s for the handshake)")
            if refusal:
                raise StorageError(f"refusing to promote {res.owner} on {self.node}: {refusal}; promote with"
                                   " force (--ignore-consistency) only if this side's data must win")
        if allow_dual and state.connection != "StandAlone":
            self.set_dual_primary(instance, disk, index, True)
        run(cmds.primary(res, force), f"{res.owner}: promoting on {self.node}")

    def demote(self, instance: str, disk: dict, index: int) -> None:
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        state = self._state(res, cmds)
        if state is None or state.role != "Primary":
            return
        run(cmds.secondary(res), f"{res.owner}: demoting on {self.node}")

    def set_dual_primary(self, instance: str, disk: dict, index: int, enabled: bool) -> None:
        """Allow (or forbid again) both sides to be primary: both nodes must do it, for a migration."""
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        state = self._state(res, cmds)
        if state is None:
            raise StorageError(f"{res.owner} is not assembled on {self.node}")
        if not enabled and state.role == "Primary" and state.peer_role == "Primary":
            raise StorageError(f"{res.owner} is primary on both {self.node} and {res.peer.node}; demote one"
                               " side before forbidding two primaries")
        run(cmds.dual_primary(res, enabled),
             f"{res.owner}: {'allowing' if enabled else 'forbidding'} two primaries on {self.node}")

    # --- live migration (storage.base.MirroredTemplate): a dual-primary window, as Ganeti does

    def migration_prepare(self, instance: str, disk: dict, index: int, role: str) -> dict:
        """Both sides allow two primaries (the source first); the target is promoted, with the
        same refusals as any promotion except that the peer may be primary."""
        self.set_dual_primary(instance, disk, index, True)
        if role != "target":
            return {"role": "primary"}
        self.promote(instance, disk, index, allow_dual=True)
        return self.access(instance, disk, index)

    def migration_switch(self, instance: str, disk: dict, index: int, role: str) -> str:
        """The source, once its guest is gone, becomes the secondary and forbids two primaries."""
        if role == "target":
            return self.status(instance, disk, index)["state"]
        self.demote(instance, disk, index)
        self.set_dual_primary(instance, disk, index, False)
        return "secondary"

    def migration_finish(self, instance: str, disk: dict, index: int) -> None:
        self.set_dual_primary(instance, disk, index, False)

    def migration_abort(self, instance: str, disk: dict, index: int) -> None:
        """The target (asked first) steps back while the source is still primary; both forbid
        two primaries again."""
        res = self.resource(instance, disk, index)
        state = self._state(res, self._cmds())
        if state is None:
            return
        if state.role == "Primary" and state.peer_role == "Primary":
            self.demote(instance, disk, index)
        self.set_dual_primary(instance, disk, index, False)

    def grow(self, instance: str, disk: dict, index: int, new_size: int) -> None:
        """Grow this side's data volume; on the primary also the DRBD device (grow the secondary first)."""
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        data_name, _ = volume_names(disk)
        self.backing.grow(data_name, int(new_size))
        state = self._state(res, cmds)
        if state is None or state.role != "Primary":
            return
        self._runs(cmds.resize(res), f"{res.owner}: resizing the DRBD device on {self.node}")
        after = self._state(res, cmds)
        if after is not None and after.size_kib is not None and after.size_kib < int(new_size) * 1024:
            raise StorageError(f"{res.owner} is still {after.size_kib // 1024} MiB after resizing on {self.node}:"
                               f" grow its volume on {res.peer.node} first, then here again")

    def remove(self, instance: str, disk: dict, index: int) -> None:
        """Take the side down, wipe its meta data and remove both volumes."""
        self.unmirror(instance, disk, index)
        self.backing.remove(volume_names(disk)[0])

    def unmirror(self, instance: str, disk: dict, index: int) -> None:
        """Take the side down, wipe its meta data and remove the meta volume; the data volume
        stays, holding the disk as it is (meta data is external), as a plain disk."""
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        if self._state(res, cmds) is not None:
            run(cmds.down(res), f"{res.owner}: shutting DRBD down on {self.node}")
        data_name, meta_name = volume_names(disk)
        if self.backing.exists(meta_name):
            local = replace(res.local, meta=self.backing.device(meta_name))
            run(cmds.wipe_md(replace(res, local=local)), f"{res.owner}: wiping DRBD meta data on {self.node}")
        self.backing.remove(meta_name)
        self.backing.release(data_name)
        for suffix in (".res", ".json"):
            (self.conf_dir / f"{res.name}{suffix}").unlink(missing_ok=True)

    def rename(self, old: str, new: str, disks: list[dict]) -> None:
        """Nothing to do: resources and volumes are named by the disk's UUID."""
