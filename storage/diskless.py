"""The diskless template: no disks at all (network-booted or kernel-only guests)."""
from __future__ import annotations

from pathlib import Path

from genet.storage.base import DiskTemplate, StorageError


class Diskless(DiskTemplate):
    name = "diskless"
    needs_disks = False
    shared = True            # nothing to copy: it can start anywhere
    storage_type = "diskless"

    def path(self, instance: str, disk: dict, index: int) -> Path:
        raise StorageError(f"instance {instance} is diskless and has no disk {index}")
