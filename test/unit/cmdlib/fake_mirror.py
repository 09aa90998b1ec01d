"""``fakemirror``: a mirrored disk template for in-process clusters only.

Each side is the file template's image plus a small state file (its role); "mirroring" copies
the primary's image into the secondary's at once, when the secondary's side is assembled on its
node (the in-process cluster keeps every node's root beside the others, so the peer's files are
at ROOT/../PEER). Enough to run failover, migration, replace-disks, conversion and verify-disks
through the logical units; the real templates' own behaviour is tested against real daemons.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from genet import paths
from genet.objects import DiskAccess
from genet.storage.base import MirroredTemplate, StorageError, run
from genet.storage.filestore import FileStorage


class FakeMirror(FileStorage, MirroredTemplate, register=False):
    name = "fakemirror"
    mirrored = True
    moves_by_copy = False
    single_node = "file"
    running_grow = ""

    # --- where the two sides are -----------------------------------------------------------

    def _peer(self, disk: dict) -> str:
        nodes = (disk.get("logical_id") or {}).get("nodes") or []
        me = paths.node_name()
        if me not in nodes or len(nodes) != 2:
            raise StorageError(f"disk {disk.get('uuid')} is not mirrored on node {me} (nodes: {nodes})")
        return nodes[1 - nodes.index(me)]

    def _state_file(self, disk: dict, root: Path | None = None) -> Path:
        return (root or paths.root()) / "var/run/genet/fakemirror" / f"{disk['uuid']}.json"

    def _state(self, disk: dict, root: Path | None = None) -> dict:
        try:
            return json.loads(self._state_file(disk, root).read_text())
        except OSError:
            return {}

    def _role(self, disk: dict, root: Path | None = None) -> str | None:
        return self._state(disk, root).get("role")

    def _set_role(self, disk: dict, role: str | None, prepared: bool = False) -> None:
        """``prepared``: a migration target's side is also ready to serve the incoming guest."""
        state = self._state_file(disk)
        if role is None:
            state.unlink(missing_ok=True)
            return
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"role": role, "prepared": prepared}))

    def _mirror(self, instance: str, disk: dict, index: int) -> bool:
        """Copy this primary's image to the secondary if its side is up there; whether it was."""
        peer_root = paths.root().parent / self._peer(disk)
        if self._role(disk, peer_root) != "secondary":
            return False
        image = self.path(instance, disk, index)
        target = peer_root / image.relative_to(paths.root())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)
        return True

    # --- the template ----------------------------------------------------------------------

    def create(self, instance: str, disk: dict, index: int) -> dict:
        image = self.path(instance, disk, index)
        if not image.exists():
            image.parent.mkdir(parents=True, exist_ok=True)
            run(["qemu-img", "create", "-q", "-f", "raw", str(image), f"{int(disk['size'])}M"], "creating a disk")
        return FileStorage.access(self, instance, disk, index)

    def assemble(self, instance: str, disk: dict, index: int, role: str, force: bool = False) -> dict:
        self._peer(disk)
        if not self.path(instance, disk, index).exists():
            raise StorageError(f"disk {index} of {instance} is missing")
        self._set_role(disk, role)
        if role == "primary":
            self._mirror(instance, disk, index)
            return self.access(instance, disk, index)
        return {"role": "secondary"}

    def access(self, instance: str, disk: dict, index: int) -> dict:
        if self._role(disk) != "primary" and not self._state(disk).get("prepared"):
            raise StorageError(f"disk {index} of {instance} is not assembled as primary on {paths.node_name()}")
        return DiskAccess.of(disk, path=str(self.path(instance, disk, index)))

    def offline_access(self, instance: str, disk: dict, index: int) -> dict:
        self.shutdown(instance, disk, index)
        return super().access(instance, disk, index)

    def resync(self, instance: str, disk: dict, index: int) -> str:
        if not self._mirror(instance, disk, index):
            raise StorageError(f"disk {index} of {instance}: the secondary ({self._peer(disk)}) cannot be reached;"
                               " the disk stays degraded")
        return "started"

    retarget = resync

    def unmirror(self, instance: str, disk: dict, index: int) -> None:
        self.shutdown(instance, disk, index)

    def shutdown(self, instance: str, disk: dict, index: int) -> None:
        self._set_role(disk, None)

    def status(self, instance: str, disk: dict, index: int) -> dict:
        role = self._role(disk)
        connected = role == "secondary" or (role == "primary" and
                                            self._role(disk, paths.root().parent / self._peer(disk)) == "secondary")
        state = ("in sync" if connected else "degraded") if role else "stale"
        return {"role": role, "connected": connected, "local_ok": True, "sync_percent": None,
                "estimated_time": None, "state": state}

    def migration_prepare(self, instance: str, disk: dict, index: int, role: str) -> dict:
        expected = "secondary" if role == "target" else "primary"
        if self._role(disk) != expected:
            raise StorageError(f"disk {index} of {instance} is not assembled as {expected} on {paths.node_name()}")
        if role == "target":
            self._set_role(disk, "secondary", prepared=True)
            return self.access(instance, disk, index)
        return {"role": "secondary"}

    def migration_switch(self, instance: str, disk: dict, index: int, role: str) -> str:
        if role != "target":
            self._set_role(disk, "secondary")
            return "secondary"
        self._set_role(disk, "primary")
        return "in sync" if self._mirror(instance, disk, index) else "degraded"

    def migration_abort(self, instance: str, disk: dict, index: int) -> None:
        if self._state(disk).get("prepared"):
            self._set_role(disk, "secondary")

    def remove(self, instance: str, disk: dict, index: int) -> None:
        self.shutdown(instance, disk, index)
        super().remove(instance, disk, index)
