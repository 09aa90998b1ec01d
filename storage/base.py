"""The storage interface: how a node creates, finds and removes an instance's disks.

Disks cross RPC as dicts from the config ({"uuid", "size" (MiB), "mode", "format"});
a template turns one into a local path the hypervisor can open. Every step is
idempotent: creating an existing disk of the right size or removing a missing
one succeeds, so a failed job can be rolled back or repeated.
"""
from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any

from genet.errors import StorageError
from genet.registry import Registry


TEMPLATES: Registry["DiskTemplate"] = Registry("disk template", "genet.storage")
MIB = 1 << 20


def zero_fill(path: Path, offset: int, size: int) -> None:
    """Write zeros over ``size`` MiB of a file or block device from ``offset`` MiB on, to the disk."""
    chunk = bytes(MIB)
    try:
        with open(path, "r+b", buffering=0) as f:
            f.seek(offset * MIB)
            for _ in range(size):
                f.write(chunk)
            os.fsync(f.fileno())
    except OSError as err:
        raise StorageError(f"cannot wipe {path}: {err.strerror}") from None


class DiskTemplate(abc.ABC):
    """One disk template. A subclass that sets ``name`` registers itself (genet.registry)."""
    name = ""
    needs_disks = True       # diskless: False
    shared = False           # every node sees the same data (failover without copying)
    mirrored = False         # data on a second node
    # How grow-disk reaches a running guest: "storage" (grown here, then the hypervisor gives
    # the guest the new size), "hypervisor" (an image file the guest's QEMU holds locked, so
    # the hypervisor grows it) or "" (the guest sees the new size after its next boot).
    running_grow = "storage"
    can_adopt = False        # existing volumes can become its disks (blockdev_adopt)
    moves_by_copy = False    # gnt-instance move copies its disks to the new node (single-node, not shared)
    in_volume_group = False  # its disks are logical volumes of the cluster's volume group
    storage_type = ""        # where its disks live, as Ganeti's storage types name it (genet.storage.units)
    # the cluster settings it reads (name -> default): kept in the cluster's config, handed to the
    # template on every node as its params (config.storage_params), set by gnt-cluster init/modify
    SETTINGS: dict[str, Any] = {}

    def __init_subclass__(cls, register: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        if register and cls.__dict__.get("name"):
            TEMPLATES.add(cls)

    def __init__(self, params: dict | None = None):
        self.params = params or {}      # the cluster's SETTINGS (and, in tests, where the tools are)

    def setting(self, name: str) -> Any:
        """One of the cluster settings it reads: the cluster's value, or its default."""
        return self.params.get(name) or self.SETTINGS[name]

    @abc.abstractmethod
    def path(self, instance: str, disk: dict, index: int) -> Path:
        """Where the disk lives on this node."""

    def exists(self, instance: str, disk: dict, index: int) -> bool:
        """Whether this node holds the disk's data (assembled or not)."""
        return self.path(instance, disk, index).exists()

    def create(self, instance: str, disk: dict, index: int) -> dict:
        """Create the disk if missing; returns the access dict for the hypervisor."""
        path = self.path(instance, disk, index)
        fmt = disk.get("format", "raw")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            run(["qemu-img", "create", "-q", "-f", fmt, str(path), f"{int(disk['size'])}M"],
                f"creating disk {index} of {instance}")
        return self.access(instance, disk, index)

    def wipe(self, instance: str, disk: dict, index: int, offset: int, size: int) -> None:
        """Zero ``size`` MiB of this node's copy of a raw disk from ``offset`` MiB on (Ganeti's
        prealloc_wipe_disks: a new disk shows nothing its storage held before)."""
        zero_fill(self.path(instance, disk, index), offset, size)

    def access(self, instance: str, disk: dict, index: int) -> dict:
        path = self.path(instance, disk, index)
        if not path.exists():
            raise StorageError(f"disk {index} of {instance} is missing ({path})")
        from genet.objects import DiskAccess     # (here: the CLI imports this module for the template names)
        return DiskAccess.of(disk, path=str(path), format=disk.get("format", "raw"))

    def remove(self, instance: str, disk: dict, index: int) -> None:
        path = self.path(instance, disk, index)
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()      # the instance's directory, once empty
        except OSError:
            pass

    def grow(self, instance: str, disk: dict, index: int, new_size: int) -> None:
        path = self.path(instance, disk, index)
        run(["qemu-img", "resize", "-q", "-f", disk.get("format", "raw"), str(path), f"{int(new_size)}M"],
            f"growing disk {index} of {instance}")

    def ganeti_logical_id(self, instance: str, disk: dict, index: int) -> list:
        """Ganeti's logical_id of the disk, as its instance info shows it: [driver, path], the path
        as on a node whose GENET_ROOT is unset."""
        from genet import paths
        path = self.path(instance, disk, index)
        if path.is_relative_to(paths.root()):
            path = "/" / path.relative_to(paths.root())
        return ["loop", str(path)]

    def diagnose(self) -> tuple[str, str | None]:
        """Whether this node can hold the template's disks (gnt-storage diagnose): where it keeps
        them, and why it cannot (None: it can)."""
        return "", None

    def logical_volumes(self, primary: str, disk: dict) -> list[tuple[str, str]]:
        """The logical volumes the disk holds: (node, "VG/LV") each (gnt-node volumes)."""
        return []

    def ganeti_drbd_info(self, primary: str, disk: dict) -> dict | None:
        """Ganeti's drbd_info of the disk (DRBD only)."""
        return None

    def rename(self, old: str, new: str, disks: list[dict]) -> None:
        for index, disk in enumerate(disks):
            src, dst = self.path(old, disk, index), self.path(new, disk, index)
            if src.exists() and src != dst:
                dst.parent.mkdir(parents=True, exist_ok=True)
                src.rename(dst)
        if disks:
            try:
                self.path(old, disks[0], 0).parent.rmdir()
            except OSError:
                pass


SYNC_STATES = ("in sync", "syncing", "degraded", "stale")


def sync_label(side) -> str:
    """What a user reads of a disk's genet.rpc_defs.MirrorStatus (None: missing): "in sync",
    "syncing 45%", "degraded", "stale" or "missing"."""
    state = side.state if side is not None else "missing"
    if state == "syncing" and side.sync_percent is not None:
        return f"syncing {side.sync_percent:.0f}%"
    return state


class MirroredTemplate(DiskTemplate):
    """A disk kept on two nodes, synchronously: this is one node's side of it.

    ``disk["logical_id"]`` (kept in the config, made by the master) says who the two
    sides are and how they meet: ``{"nodes": [primary, secondary], "addresses":
    [replication addresses], "port": P, "minors": [...], "secret": ...}``;
    each template uses the keys it needs. ``create`` makes the local storage of a
    side, ``assemble`` brings it up in a role and connects it to the other side;
    every call is idempotent, as for the other templates.
    """
    mirrored = True
    single_node = ""         # the template its data stays in when the mirror is dropped (modify -t)
    # in the params of an assembly: the master knows the other side is offline or unreachable, so
    # the primary comes up degraded at once instead of waiting for a peer that will not answer
    PEER_DOWN = "peer_down"
    # OS scripts write to the assembled primary device (True: every write is mirrored as it
    # happens) rather than to offline_access's local image (copied whole at the next assembly)
    install_assembled = False

    @abc.abstractmethod
    def assemble(self, instance: str, disk: dict, index: int, role: str, force: bool = False) -> dict:
        """Bring this node's side up as "primary" (returns the access dict) or "secondary".

        ``force`` (a new disk's first promotion, failover --ignore-consistency) makes this
        side the primary even when nothing shows that its data is the newest."""

    @abc.abstractmethod
    def offline_access(self, instance: str, disk: dict, index: int) -> dict:
        """The access dict OS scripts write to (see install_assembled)."""

    @abc.abstractmethod
    def resync(self, instance: str, disk: dict, index: int) -> str:
        """On the primary: mirror again to a secondary that came back; says what happened."""

    @classmethod
    def synced_primaries(cls) -> set[str]:
        """The instances this node serves as primary whose every disk of this template is in
        sync with its secondary right now. Instance HA restarts a mirrored instance from its
        secondary only on this evidence, reported with each heartbeat (genet.ha.recovery);
        a template that cannot tell reports none, and its instances are not restarted."""
        return set()

    @abc.abstractmethod
    def retarget(self, instance: str, disk: dict, index: int) -> str:
        """On the primary: mirror to the secondary the logical_id names now (replace-disks)."""

    @abc.abstractmethod
    def unmirror(self, instance: str, disk: dict, index: int) -> None:
        """Take this side down and drop what the mirror added to it, keeping the data where the
        single-node template (file for mirror, plain for drbd) finds it: gnt-instance modify -t."""

    @abc.abstractmethod
    def shutdown(self, instance: str, disk: dict, index: int) -> None:
        """Disconnect and release this node's side; its data stays."""

    @abc.abstractmethod
    def status(self, instance: str, disk: dict, index: int) -> dict:
        """Ganeti's view of this side: {"role", "connected", "local_ok", "sync_percent" (None when
        not syncing), "estimated_time", "state": one of SYNC_STATES}."""

    @staticmethod
    def new_logical_id(pool, nodes: list[str], addresses: list[str], owner) -> dict:
        """Who holds the two sides and how they meet: their replication addresses and a port from
        ``pool`` (genet.drbd_pool, which knows what the config and running jobs hold)."""
        return {"nodes": list(nodes), "addresses": list(addresses), "port": pool.allocate_port(owner)}

    def promote(self, instance: str, disk: dict, index: int, allow_dual: bool = False) -> None:
        """Make this side the one the guest writes to; refuses an outdated side."""
        raise StorageError(f"{self.name} disks cannot change roles")

    def demote(self, instance: str, disk: dict, index: int) -> None:
        """Make this side a secondary again."""
        raise StorageError(f"{self.name} disks cannot change roles")

    # A live migration moves the guest to the secondary node; the master calls, per disk:
    # migration_prepare on the source, then on the target, before the memory moves (the
    # target's answer is what the incoming guest opens), migration_switch on the target once
    # the memory arrived and before the guest resumes there, migration_switch on the source
    # once its guest is gone, then migration_finish on the target; migration_abort on the
    # target, then the source, if the migration failed before the target's switch.

    def migration_prepare(self, instance: str, disk: dict, index: int, role: str) -> dict:
        """``role`` is "source" or "target"; on the target returns the access dict."""
        raise StorageError(f"{self.name} disks cannot be migrated live")

    def migration_switch(self, instance: str, disk: dict, index: int, role: str) -> str:
        """Take the new role; the target returns its sync state afterwards."""
        raise StorageError(f"{self.name} disks cannot be migrated live")

    def migration_finish(self, instance: str, disk: dict, index: int) -> None:
        """On the target, after the source switched: close what the migration opened."""

    def migration_abort(self, instance: str, disk: dict, index: int) -> None:
        """Undo migration_prepare on this node."""


def run(argv: list[str], what: str) -> str:
    """Run a storage command; its output, or StorageError saying ``what`` failed and why."""
    import subprocess       # here: the CLI imports this module (for the template names) and runs nothing
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except OSError as err:
        raise StorageError(f"{what} failed: cannot run {argv[0]}: {err}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip() or f"exit code {proc.returncode}"
        raise StorageError(f"{what} failed: {detail}")
    return proc.stdout


def names() -> tuple[str, ...]:
    """Every registered disk template."""
    return TEMPLATES.names()


def settings() -> dict[str, Any]:
    """Every cluster setting a registered template reads, with its default."""
    return {name: default for cls in TEMPLATES.classes() for name, default in cls.SETTINGS.items()}


def get(template: str, params: dict | None = None) -> DiskTemplate:
    try:
        return TEMPLATES.cls(template)(params)
    except LookupError as err:
        raise StorageError(str(err)) from None


def synced_primaries() -> list[str]:
    """The instances this node holds in sync as primary, over every mirrored template."""
    return sorted(set().union(*(t.synced_primaries() for t in TEMPLATES.classes() if t.mirrored)))
