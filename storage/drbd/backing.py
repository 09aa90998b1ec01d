"""Where a DRBD disk's data and meta volumes come from: sparse files (optionally on loop devices)
or anything that makes, finds, grows and removes a named block device (the plain template's LVM
volumes, the cluster's default)."""
from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Callable

from genet.storage.base import StorageError, run


class Backing(abc.ABC):
    """Named block devices on this node: a DRBD disk's data and meta volumes live here."""

    @abc.abstractmethod
    def path(self, name: str) -> str:
        """Where the volume is (or would be) on this node."""

    @abc.abstractmethod
    def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def create(self, name: str, size_mib: int) -> str:
        """Make the volume if missing (an existing one must be at least size_mib); its path."""

    @abc.abstractmethod
    def grow(self, name: str, size_mib: int) -> None:
        """Make the volume at least size_mib large (never shrinks)."""

    @abc.abstractmethod
    def remove(self, name: str) -> None:
        """Remove the volume; a missing one is fine."""

    def device(self, name: str) -> str:
        """The block device to hand to DRBD (activating it if needed)."""
        if not self.exists(name):
            raise StorageError(f"volume {name} does not exist ({self.path(name)})")
        return self.path(name)

    def release(self, name: str) -> None:
        """Undo :meth:`device` (e.g. detach a loop device); the data stays."""


class FileBacking(Backing):
    """Sparse files in one directory; with ``loop=True`` DRBD gets them as loop devices."""

    def __init__(self, directory: Path, loop: bool = False):
        self.directory = Path(directory)
        self.loop = loop

    def path(self, name: str) -> str:
        return str(self.directory / f"{name}.img")

    def exists(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def create(self, name: str, size_mib: int) -> str:
        path = self.path(name)
        if os.path.exists(path):
            have = os.path.getsize(path) // (1024 * 1024)
            if have < size_mib:
                raise StorageError(f"volume {path} exists with {have} MiB, {size_mib} MiB wanted")
            return path
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        return path

    def grow(self, name: str, size_mib: int) -> None:
        path = self.path(name)
        if not os.path.exists(path):
            raise StorageError(f"volume {path} does not exist")
        if os.path.getsize(path) < size_mib * 1024 * 1024:
            os.truncate(path, size_mib * 1024 * 1024)
        for loop in self._loops(path) if self.loop else []:
            run(["losetup", "--set-capacity", loop], f"refreshing the size of {loop}")

    def remove(self, name: str) -> None:
        self.release(name)
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            pass

    def device(self, name: str) -> str:
        path = super().device(name)
        if not self.loop:
            return path
        loops = self._loops(path)
        if loops:
            return loops[0]
        return run(["losetup", "--find", "--show", path], f"attaching {path} to a loop device").strip()

    def release(self, name: str) -> None:
        if self.loop:
            for loop in self._loops(self.path(name)):
                run(["losetup", "--detach", loop], f"detaching {loop}")

    @staticmethod
    def _loops(path: str) -> list[str]:
        if not os.path.exists(path):
            return []
        out = run(["losetup", "--noheadings", "--output", "NAME", "--associated", path],
                   f"looking up the loop devices of {path}")
        return [line.strip() for line in out.splitlines() if line.strip()]


class CallableBacking(Backing):
    """Volumes made by someone else (e.g. the plain template's LVM code), through callables.

    ``path(name)`` returns the device path (existing or not), ``create(name, size_mib)`` makes
    it, ``grow(name, size_mib)`` and ``remove(name)`` do what they say; ``exists`` defaults to
    checking the path.
    """

    def __init__(self, path: Callable[[str], str], create: Callable[[str, int], object],
                 grow: Callable[[str, int], object], remove: Callable[[str], object],
                 exists: Callable[[str], bool] | None = None):
        self._path, self._create, self._grow, self._remove = path, create, grow, remove
        self._exists = exists

    def path(self, name: str) -> str:
        return str(self._path(name))

    def exists(self, name: str) -> bool:
        return self._exists(name) if self._exists else os.path.exists(self.path(name))

    def create(self, name: str, size_mib: int) -> str:
        if not self.exists(name):
            self._create(name, size_mib)
        return self.path(name)

    def grow(self, name: str, size_mib: int) -> None:
        self._grow(name, size_mib)

    def remove(self, name: str) -> None:
        if self.exists(name):
            self._remove(name)


def lv_name(name: str) -> str:
    """The logical volume of a volume_names() name ("<uuid>_data" / "<uuid>_meta"): the data is the
    plain template's ``<uuid>.disk``, the meta data ``<uuid>.meta``."""
    uuid, _, kind = name.rpartition("_")
    return f"{uuid}.disk" if kind == "data" else f"{uuid}.{kind}"


def lvm_backing(params: dict) -> CallableBacking:
    """The volumes as logical volumes of the cluster's volume group, made by the plain template."""
    from genet.storage.lvm import PlainStorage
    plain = PlainStorage(params)
    vg = plain.volume_group()
    lv = lv_name
    return CallableBacking(
        path=lambda name: str(plain.dev_dir() / vg / lv(name)),
        create=lambda name, size: plain.create_volume(vg, lv(name), size, f"DRBD volume {lv(name)}"),
        grow=lambda name, size: plain.grow_volume(vg, lv(name), size, f"DRBD volume {lv(name)}"),
        remove=lambda name: plain.remove_volume(vg, lv(name), f"DRBD volume {lv(name)}"),
        exists=lambda name: plain.lv_info(vg, lv(name)) is not None)
