"""Storage units: what a node offers the disk templates, in Ganeti's storage types.

A disk template keeps its disks in one storage type (``DiskTemplate.storage_type``: plain and
drbd in an LVM volume group, ``lvm-vg``; file and mirror in the file storage directory,
``file``; sharedfile in the shared one). A storage type lists its units on a node (the
volume groups, the physical volumes, the directory) with Ganeti's fields, in MiB: ``name``,
``size``, ``used``, ``free``, ``allocatable``. Some types let a field be changed
(``MODIFIABLE``: lvm-pv's allocatable) or know an operation (``OPERATIONS``: lvm-vg's
``fix-consistency``). ``gnt-node list-storage``, ``modify-storage`` and ``repair-storage`` and
the RAPI's /2/nodes/NODE/storage reach them through the node RPC (storage_list,
storage_modify, storage_execute).

A storage type is enabled when an enabled disk template keeps its disks there (lvm-pv with
lvm-vg), as in Ganeti. A storage type class registers itself like the templates do.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genet import errors
from genet.errors import StorageError
from genet.registry import Registry

UNIT_TYPES: Registry["StorageType"] = Registry("storage type", "genet.storage")

# Ganeti's storage fields: the node reports FIELDS, the master adds node and type
FIELDS = ("name", "size", "used", "free", "allocatable")
LU_FIELDS = ("node", "type")
VALID_FIELDS = LU_FIELDS + FIELDS
FIX_CONSISTENCY = "fix-consistency"      # Ganeti's SO_FIX_CONSISTENCY
# Ganeti's default enabled_disk_templates: with none configured, every template is enabled and
# these come first, so the default storage type is theirs (lvm-vg), as on a default Ganeti cluster
GANETI_DEFAULT_TEMPLATES = ("drbd", "plain")
MIB = 1024 * 1024


class StorageType:
    """One storage type on this node. A subclass that sets ``name`` registers itself."""
    name = ""
    enabled_by = ""                      # the storage type whose templates enable it (default: itself)
    MODIFIABLE: frozenset[str] = frozenset()
    OPERATIONS: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            UNIT_TYPES.add(cls)

    def __init__(self, params: dict | None = None):
        self.params = params or {}       # the cluster's storage settings (config.storage_params)

    def units(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every unit here (only ``name`` when given) as {field: value} for each of FIELDS."""
        raise NotImplementedError

    def rows(self, name: str | None, fields: list[str]) -> list[list]:
        """The units as rows of ``fields`` (any of FIELDS), as Ganeti's storage_list answers."""
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise StorageError(f"unknown storage field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")
        return [[unit[f] for f in fields] for unit in self.units(name)]

    def modify(self, name: str, changes: dict) -> None:
        """Change fields of unit ``name`` (only those in MODIFIABLE)."""
        refused = sorted(set(changes) - self.MODIFIABLE)
        if refused:
            raise StorageError(f"storage units of type {self.name} cannot change {', '.join(refused)}")

    def execute(self, name: str, operation: str) -> None:
        """Run ``operation`` (one of OPERATIONS) on unit ``name``."""
        raise StorageError(f"storage units of type {self.name} know no operation {operation!r}")


class DirectoryStorage(StorageType):
    """A directory of disk files: the filesystem's size and free space, the files' sizes as used.

    As in Ganeti, ``size`` and ``free`` are the filesystem's, ``used`` what is under the directory
    only, so size need not be used + free. A directory no disk was put in yet holds nothing: it is
    reported with used 0 on the filesystem it will be made on (its nearest existing parent).
    """
    template = ""                        # the disk template whose directory it is

    def directory(self) -> Path:
        from genet.storage.base import get
        return get(self.template, self.params).base_dir()

    def units(self, name: str | None = None) -> list[dict[str, Any]]:
        path = self.directory()
        if name is not None and Path(name) != path:
            raise StorageError(f"no {self.name} storage unit {name!r} on this node (its directory is {path})")
        existing = path
        while not existing.exists():
            existing = existing.parent
        stat = os.statvfs(existing)
        return [{"name": str(path), "size": stat.f_blocks * stat.f_frsize // MIB,
                 "free": stat.f_bavail * stat.f_frsize // MIB, "used": directory_size(path) if path.exists() else 0,
                 "allocatable": True}]


def directory_size(path: Path) -> int:
    """The size of the files under ``path`` in MiB (their lengths, as Ganeti counts them)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:              # removed meanwhile
                pass
    return total // MIB


class FileUnits(DirectoryStorage):
    name = "file"
    template = "file"


class SharedFileUnits(DirectoryStorage):
    name = "sharedfile"
    template = "sharedfile"


# --- what the master asks ---------------------------------------------------------------

def names() -> tuple[str, ...]:
    """Every storage type that reports its units."""
    return UNIT_TYPES.names()


def get(storage_type: str, params: dict | None = None) -> StorageType:
    try:
        return UNIT_TYPES.cls(storage_type)(params)
    except LookupError as err:
        raise StorageError(str(err)) from None


def diagnose(params: dict) -> list[list]:
    """Each registered disk template's state on this node: [name, where, usable, why not]."""
    from genet.storage import base
    rows = []
    for name in base.names():
        where, problem = base.get(name, params).diagnose()
        rows.append([name, where, problem is None, problem or ""])
    return rows


def enabled_templates(cluster: dict) -> list[str]:
    """The cluster's enabled disk templates in its order: its ``enabled_disk_templates``, or
    (none configured) every registered template, Ganeti's default ones first."""
    from genet.storage import base
    configured = cluster.get("enabled_disk_templates")
    if configured:
        return list(configured)
    registered = base.names()
    return [t for t in GANETI_DEFAULT_TEMPLATES if t in registered] + \
        [t for t in registered if t not in GANETI_DEFAULT_TEMPLATES]


def templates_of(storage_type: str) -> list[str]:
    """The registered disk templates that keep their disks in ``storage_type``."""
    from genet.storage import base
    own = UNIT_TYPES.cls(storage_type).enabled_by if storage_type in names() else ""
    wanted = own or storage_type
    return [cls.name for cls in base.TEMPLATES.classes() if cls.storage_type == wanted]


def default_type(cluster: dict) -> str:
    """The storage type list-storage reports without --storage-type: the first enabled template's."""
    from genet.storage import base
    return base.TEMPLATES.cls(enabled_templates(cluster)[0]).storage_type


def check_enabled(cluster: dict, storage_type: str) -> None:
    """Ganeti's refusal of a storage type no enabled disk template uses."""
    enabled = enabled_templates(cluster)
    if not set(templates_of(storage_type)) & set(enabled):
        storage_type = UNIT_TYPES.cls(storage_type).enabled_by or storage_type     # lvm-pv: lvm-vg's templates
        raise errors.OpPrereqError(f"No disk template of storage type '{storage_type}' is enabled in this"
                                   f" cluster. Enabled disk templates are: {','.join(enabled)}", errors.ECode.INVAL)
