"""File-backed disks: raw or qcow2 files, per node (file) or on a directory all nodes see (sharedfile)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from genet import paths
from genet.storage.base import DiskTemplate


class FileStorage(DiskTemplate):
    """One file per disk under ROOT/<file_storage_dir>/INSTANCE/ on the primary node."""
    name = "file"
    running_grow = "hypervisor"
    moves_by_copy = True
    storage_type = "file"
    SETTINGS = {"file_storage_dir": "srv/genet/file-storage"}       # below each node's root

    def base_dir(self) -> Path:
        return paths.root() / self.setting("file_storage_dir").lstrip("/")

    def diagnose(self) -> tuple[str, str | None]:
        """The directory (made with the first disk) must be writable, and qemu-img there."""
        where = self.base_dir()
        existing = where
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            return str(where), f"{existing} is not a directory this node may write to"
        if shutil.which("qemu-img") is None:
            return str(where), "qemu-img not found (install qemu-utils)"
        return str(where), None

    def path(self, instance: str, disk: dict, index: int) -> Path:
        """Named by the disk's UUID, so removing another disk never renames this one."""
        suffix = "qcow2" if disk.get("format") == "qcow2" else "raw"
        return self.base_dir() / instance / f"disk-{disk['uuid']}.{suffix}"


class SharedFileStorage(FileStorage):
    """Like file, in a directory every node mounts (the cluster's shared_file_storage_dir)."""
    name = "sharedfile"
    shared = True
    moves_by_copy = False
    storage_type = "sharedfile"
    SETTINGS = {"shared_file_storage_dir": "/srv/genet/shared-file-storage"}    # mounted on every node

    def base_dir(self) -> Path:
        return Path(self.setting("shared_file_storage_dir"))

    def diagnose(self) -> tuple[str, str | None]:
        """The shared directory must be there already: every node mounts it."""
        where = self.base_dir()
        if not where.is_dir():
            return str(where), f"{where} does not exist (mount the shared directory on every node)"
        return super().diagnose()
