"""The plain disk template: each disk is one LVM logical volume on the primary node (Ganeti's plain).

Real hosts need lvm2 and a volume group; the cluster names it in its storage parameters
(``volume_group_name``, Ganeti's default ``xenvg``; ``gnt-cluster modify --vg-name``). A disk
is the LV ``<disk uuid>.disk`` in that group, seen by the hypervisor as ``/dev/VG/LV``. The
name carries neither the instance nor the disk's index, so renaming an instance or removing
another of its disks never renames a volume (Ganeti keeps ``<unique id>.disk<N>`` in the disk's
logical_id for the same reason; a disk whose config carries a Ganeti-style logical_id
``[vg, lv]`` is found there instead).

Everything goes through the lvm commands, run by :class:`Lvm` from ``lvm_bindir`` (a storage
parameter, else ``$GENET_LVM_BINDIR``, else PATH), with the device directory from
``lvm_dev_dir`` (else ``$GENET_LVM_DEV_DIR``, else /dev): tests point both at the fake in
test/fakes/lvm. Every step is idempotent like the other templates': creating an LV that is
there with (at least) the right size succeeds, removing a missing one succeeds, growing to a
size the LV already has succeeds.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from genet.objects import DiskAccess
from genet.storage.base import DiskTemplate, StorageError

NAME_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$")   # lvm2's rule for VG and LV names
LV_FIELDS = "lv_name,vg_name,lv_size,lv_attr,origin"
REPORT_OPTS = ["--noheadings", "--units", "m", "--nosuffix", "--separator", "|"]


def check_vg_name(name: str) -> str:
    """A volume group name lvm2 accepts: letters, digits and ``+_.-``, not starting with ``-``."""
    if not isinstance(name, str) or not NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(f"invalid volume group name {name!r}: use up to 127 letters, digits and +_.-"
                         " (not starting with -)")
    return name


@dataclass(frozen=True)
class Volume:
    """One line of ``lvs``: sizes in MiB, ``attr`` lvm2's ten attribute characters."""
    name: str
    vg: str
    size: int
    attr: str
    origin: str = ""

    @property
    def active(self) -> bool:
        return self.attr[4:5] == "a"

    @property
    def open(self) -> bool:
        return self.attr[5:6] == "o"

    @property
    def state_unknown(self) -> bool:
        return self.attr[4:6] == "XX"

    @property
    def snapshot(self) -> bool:
        return self.attr[:1] in ("s", "S")


class Lvm:
    """Runs one lvm command and returns (exit code, stdout, stderr); never raises for a failure."""

    def __init__(self, bindir: str | None = None, timeout: float = 600.0):
        self.bindir = bindir
        self.timeout = timeout

    def executable(self, command: str) -> str:
        import shutil           # (here: every gnt-* command that checks a template name loads this module)
        if self.bindir:
            return str(Path(self.bindir) / command)
        found = shutil.which(command) or next(
            (f"{d}/{command}" for d in ("/sbin", "/usr/sbin") if os.access(f"{d}/{command}", os.X_OK)), None)
        if found is None:
            raise StorageError(f"{command} not found: install lvm2 on this node to use plain disks")
        return found

    def run(self, command: str, *args: str) -> tuple[int, str, str]:
        import subprocess
        argv = [self.executable(command), *args]
        env = dict(os.environ, LC_ALL="C", LVM_SUPPRESS_FD_WARNINGS="1")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  env=env, timeout=self.timeout)
        except FileNotFoundError:
            raise StorageError(f"{argv[0]} not found: install lvm2 on this node to use plain disks") from None
        except subprocess.TimeoutExpired:
            raise StorageError(f"{command} {' '.join(args)} did not finish in {self.timeout:.0f} s") from None
        return proc.returncode, proc.stdout, proc.stderr


def _reason(text: str) -> str:
    """lvm2's error lines, joined: the part of stderr worth showing a user."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or "no error message"


def _mib(text: str) -> int:
    """A size from ``--units m --nosuffix`` ("1024.00", or "<1024.00" when rounded down)."""
    return int(float(text.strip().lstrip("<")))


class PlainStorage(DiskTemplate):
    """One logical volume per disk in the cluster's volume group, on the primary node only."""
    name = "plain"
    can_adopt = True
    in_volume_group = True
    storage_type = "lvm-vg"
    SETTINGS = {"volume_group_name": "xenvg"}       # Ganeti's default volume group

    def __init__(self, params: dict | None = None):
        super().__init__(params)
        self.lvm = Lvm(self.params.get("lvm_bindir") or os.environ.get("GENET_LVM_BINDIR") or None)

    # --- names -------------------------------------------------------------------

    def dev_dir(self) -> Path:
        return Path(self.params.get("lvm_dev_dir") or os.environ.get("GENET_LVM_DEV_DIR") or "/dev")

    def volume_group(self, disk: dict | None = None) -> str:
        logical_id = (disk or {}).get("logical_id")
        if isinstance(logical_id, (list, tuple)) and len(logical_id) == 2:
            return str(logical_id[0])
        return self.setting("volume_group_name")

    def ganeti_logical_id(self, instance: str, disk: dict, index: int) -> list:
        return [self.volume_group(disk), self.lv_name(disk)]

    def diagnose(self) -> tuple[str, str | None]:
        """The cluster's volume group must be there."""
        vg = self.volume_group()
        try:
            found = self.vg_info(vg)
        except StorageError as err:
            return vg, str(err)
        return vg, None if found else f"volume group {vg} not found"

    def logical_volumes(self, primary: str, disk: dict) -> list[tuple[str, str]]:
        return [(primary, f"{self.volume_group(disk)}/{self.lv_name(disk)}")]

    def lv_name(self, disk: dict) -> str:
        logical_id = disk.get("logical_id")
        if isinstance(logical_id, (list, tuple)) and len(logical_id) == 2:
            return str(logical_id[1])
        return f"{disk['uuid']}.disk"

    def path(self, instance: str, disk: dict, index: int) -> Path:
        return self.dev_dir() / self.volume_group(disk) / self.lv_name(disk)

    # --- lvm queries -------------------------------------------------------------

    def _vg_missing(self, vg: str, err: str) -> bool:
        return f'Volume group "{vg}" not found' in err

    def vg_info(self, vg: str | None = None) -> dict | None:
        """{"name", "size", "free", "extent_size"} in MiB, or None when the group is missing."""
        vg = vg or self.volume_group()
        rc, out, err = self.lvm.run("vgs", *REPORT_OPTS, "-o", "vg_name,vg_size,vg_free,vg_extent_size", vg)
        if rc != 0:
            if self._vg_missing(vg, err):
                return None
            raise StorageError(f"cannot read volume group {vg}: {_reason(err)}")
        for line in out.splitlines():
            fields = line.strip().split("|")
            if len(fields) == 4 and fields[0] == vg:
                return {"name": vg, "size": _mib(fields[1]), "free": _mib(fields[2]),
                        "extent_size": _mib(fields[3])}
        raise StorageError(f"cannot read volume group {vg}: vgs printed {out.strip()!r}")

    def _no_vg(self, vg: str, what: str) -> StorageError:
        return StorageError(f"{what}: volume group {vg} not found on this node (create it with vgcreate,"
                            " or set the cluster's group with gnt-cluster modify --vg-name)")

    def _parse_lvs(self, out: str) -> list[Volume]:
        volumes = []
        for line in out.splitlines():
            fields = line.strip().split("|")
            if len(fields) == 5:
                name, vg, size, attr, origin = fields
                volumes.append(Volume(name, vg, _mib(size), attr, origin))
        return volumes

    def lv_info(self, vg: str, lv: str) -> Volume | None:
        """The LV, or None when it (or its whole volume group) does not exist."""
        rc, out, err = self.lvm.run("lvs", *REPORT_OPTS, "-o", LV_FIELDS, f"{vg}/{lv}")
        if rc != 0:
            if "Failed to find logical volume" in err or self._vg_missing(vg, err):
                return None
            raise StorageError(f"cannot read logical volume {vg}/{lv}: {_reason(err)}")
        found = [v for v in self._parse_lvs(out) if v.name == lv]
        return found[0] if found else None

    def volumes(self, vg: str) -> dict[str, Volume] | None:
        """Every LV of the group by name (one ``lvs``), or None when the group is missing."""
        rc, out, err = self.lvm.run("lvs", *REPORT_OPTS, "-o", LV_FIELDS, vg)
        if rc != 0:
            if self._vg_missing(vg, err):
                return None
            raise StorageError(f"cannot list the volumes of {vg}: {_reason(err)}")
        return {v.name: v for v in self._parse_lvs(out) if v.vg == vg}

    def list_volumes(self) -> list[dict]:
        """Every LV of the cluster's volume group: [{"name", "vg", "size" (MiB), "attr"}]."""
        vg = self.volume_group()
        found = self.volumes(vg)
        if found is None:
            raise StorageError(f"volume group {vg} not found on this node")
        return [{"name": v.name, "vg": v.vg, "size": v.size, "attr": v.attr} for v in found.values()]

    def _activate(self, volume: Volume, what: str) -> None:
        if volume.active:
            return
        rc, _, err = self.lvm.run("lvchange", "-a", "y", f"{volume.vg}/{volume.name}")
        if rc != 0:
            raise StorageError(f"{what}: cannot activate logical volume {volume.vg}/{volume.name}: {_reason(err)}")

    def _no_space(self, vg: str, needed: int, what: str) -> StorageError:
        info = self.vg_info(vg)
        free = f"{info['free']} MiB free" if info else "no free space it can report"
        return StorageError(f"volume group {vg} has {free}, {what} needs {needed} MiB")

    # --- the template interface --------------------------------------------------

    def create(self, instance: str, disk: dict, index: int) -> dict:
        what = f"disk {index} of {instance}"
        fmt = disk.get("format", "raw")
        if fmt != "raw":
            raise StorageError(f"{what}: plain disks are raw logical volumes, format {fmt!r} is not supported")
        self.create_volume(self.volume_group(disk), self.lv_name(disk), int(disk["size"]), what)
        return DiskAccess.of(disk, path=str(self.path(instance, disk, index)))

    def create_volume(self, vg: str, lv: str, size: int, what: str) -> None:
        """Make (or find, at least ``size`` MiB) and activate ``vg/lv``; ``what`` names it in errors."""
        existing = self.lv_info(vg, lv)
        if existing is None:
            rc, _, err = self.lvm.run("lvcreate", "--yes", "--wipesignatures", "y", "-L", f"{size}m",
                                      "-n", lv, vg)
            if rc == 0:
                return
            if self._vg_missing(vg, err):
                raise self._no_vg(vg, f"cannot create {what}")
            if "insufficient free space" in err:
                raise self._no_space(vg, size, what)
            if "already exists" not in err:              # else: created meanwhile, checked below
                raise StorageError(f"creating {what} ({vg}/{lv}, {size} MiB) failed: {_reason(err)}")
            existing = self.lv_info(vg, lv)
            if existing is None:
                raise StorageError(f"creating {what} ({vg}/{lv}) failed: {_reason(err)}")
        if existing.snapshot:
            raise StorageError(f"{what}: {vg}/{lv} exists and is a snapshot of {existing.origin}")
        if existing.size < size:
            raise StorageError(f"{what}: logical volume {vg}/{lv} exists with {existing.size} MiB,"
                               f" less than the {size} MiB asked")
        self._activate(existing, what)


    def access(self, instance: str, disk: dict, index: int) -> dict:
        what = f"disk {index} of {instance}"
        vg, lv = self.volume_group(disk), self.lv_name(disk)
        volume = self.lv_info(vg, lv)
        if volume is None:
            raise StorageError(f"{what} is missing (logical volume {vg}/{lv} not found)")
        self._activate(volume, what)
        return DiskAccess.of(disk, path=str(self.path(instance, disk, index)))

    def remove(self, instance: str, disk: dict, index: int) -> None:
        """Removes the LV and its snapshots; refuses while the guest (or anything) holds it open.

        A missing LV, or a missing volume group, counts as removed (as in Ganeti).
        """
        self.remove_volume(self.volume_group(disk), self.lv_name(disk), f"disk {index} of {instance}")

    def remove_volume(self, vg: str, lv: str, what: str) -> None:
        rc, _, err = self.lvm.run("lvremove", "-f", f"{vg}/{lv}")
        if rc != 0 and "Failed to find logical volume" not in err and not self._vg_missing(vg, err):
            if "in use" in err:
                raise StorageError(f"cannot remove {what}: logical volume {vg}/{lv}"
                                   f" (or a snapshot of it) is in use; is the instance still running?"
                                   f" ({_reason(err)})")
            raise StorageError(f"removing {what} ({vg}/{lv}) failed: {_reason(err)}")

    def grow(self, instance: str, disk: dict, index: int, new_size: int) -> None:
        self.grow_volume(self.volume_group(disk), self.lv_name(disk), int(new_size), f"disk {index} of {instance}")

    def grow_volume(self, vg: str, lv: str, new_size: int, what: str) -> None:
        """Extend ``vg/lv`` to ``new_size`` MiB (one that is that large already is left alone)."""
        volume = self.lv_info(vg, lv)
        if volume is None:
            raise StorageError(f"cannot grow {what}: logical volume {vg}/{lv} not found")
        if volume.size >= new_size:
            return
        rc, _, err = self.lvm.run("lvextend", "-L", f"{new_size}m", f"{vg}/{lv}")
        if rc == 0 or "No size change" in err:
            return
        if "insufficient free space" in err.lower():
            raise self._no_space(vg, new_size - volume.size, f"growing {what} to {new_size} MiB")
        if "Snapshot origin volumes" in err:
            snaps = [v.name for v in self._snapshots_of(vg, lv)]
            raise StorageError(f"cannot grow {what}: it has snapshots ({', '.join(snaps) or 'unknown'}),"
                               " and lvm extends an origin only while it is inactive; remove them first")
        raise StorageError(f"growing {what} ({vg}/{lv}) to {new_size} MiB failed: {_reason(err)}")

    def rename(self, old: str, new: str, disks: list[dict]) -> None:
        """Nothing to do: volume names carry no instance name."""

    # --- beyond the common interface ---------------------------------------------

    def _snapshots_of(self, vg: str, lv: str) -> list[Volume]:
        return [v for v in (self.volumes(vg) or {}).values() if v.origin == lv]

    def snapshot_name(self, disk: dict) -> str:
        return f"{self.lv_name(disk)}.snap"

    def snapshot(self, instance: str, disk: dict, index: int, size: int) -> Path:
        """A copy-on-write snapshot of the disk with ``size`` MiB for changes; returns its device path.

        Taken again while it exists, the same snapshot is returned. The snapshot keeps the
        data of the moment it was taken as long as fewer than ``size`` MiB of the disk change.
        """
        what = f"disk {index} of {instance}"
        vg, lv, snap, size = self.volume_group(disk), self.lv_name(disk), self.snapshot_name(disk), int(size)
        found = self.volumes(vg) or {}
        if lv not in found:
            raise StorageError(f"cannot snapshot {what}: logical volume {vg}/{lv} not found")
        existing = found.get(snap)
        if existing is None:
            rc, _, err = self.lvm.run("lvcreate", "-s", "-L", f"{size}m", "-n", snap, f"{vg}/{lv}")
            if rc != 0:
                if "insufficient free space" in err:
                    raise self._no_space(vg, size, f"a snapshot of {what}")
                if "already exists" not in err:
                    raise StorageError(f"snapshot of {what} ({vg}/{lv}) failed: {_reason(err)}")
                existing = self.lv_info(vg, snap)
        if existing is not None:
            if existing.origin != lv:
                raise StorageError(f"cannot snapshot {what}: {vg}/{snap} exists and is not a snapshot of {lv}")
            self._activate(existing, f"snapshot of {what}")
        return self.dev_dir() / vg / snap

    def remove_snapshot(self, instance: str, disk: dict, index: int) -> None:
        """Removes the disk's snapshot, if there is one."""
        vg, snap = self.volume_group(disk), self.snapshot_name(disk)
        rc, _, err = self.lvm.run("lvremove", "-f", f"{vg}/{snap}")
        if rc != 0 and "Failed to find logical volume" not in err and not self._vg_missing(vg, err):
            raise StorageError(f"removing the snapshot of disk {index} of {instance} ({vg}/{snap}) failed:"
                               f" {_reason(err)}")

    def adopt(self, instance: str, disk: dict, index: int, lv_name: str) -> dict:
        """Take an existing LV of the cluster's volume group as this disk (``--disk N:adopt=LV``).

        ``lv_name`` is LV, VG/LV or /dev/VG/LV. The LV must not be open (a running guest or a
        mounted filesystem would see its disk change hands) nor be a snapshot. It is renamed to
        the disk's name, as Ganeti does, so that ``lvs`` shows whose it is. Returns the access
        dict, ``size`` being the LV's real size in MiB, which the caller records as the disk's
        size. Repeating it after the rename succeeds.
        """
        vg, target = self.volume_group(disk), self.lv_name(disk)
        name = lv_name
        if "/" in name:
            prefix, _, name = name.rpartition("/")
            if prefix.rpartition("/")[2] != vg:
                raise StorageError(f"cannot adopt {lv_name} as disk {index} of {instance}: it is not in the"
                                   f" cluster's volume group {vg}")
        what = f"cannot adopt {vg}/{name} as disk {index} of {instance}"
        found = self.volumes(vg)
        if found is None:
            raise self._no_vg(vg, what)
        volume = found.get(name)
        if volume is None:
            volume = found.get(target) if name != target else None     # renamed by an earlier try
            if volume is None:
                raise StorageError(f"{what}: no such logical volume")
        else:
            if volume.state_unknown:
                raise StorageError(f"{what}: lvm cannot tell whether it is in use (attributes {volume.attr})")
            if volume.open:
                raise StorageError(f"{what}: it is open (in use by a running guest, a mount or another"
                                   " program); close it first")
            if volume.snapshot:
                raise StorageError(f"{what}: it is a snapshot of {volume.origin}")
            if name != target:
                if target in found:
                    raise StorageError(f"{what}: {vg}/{target} already exists")
                rc, _, err = self.lvm.run("lvrename", vg, name, target)
                if rc != 0:
                    raise StorageError(f"{what}: renaming it to {target} failed: {_reason(err)}")
                volume = Volume(target, vg, volume.size, volume.attr, volume.origin)
        self._activate(volume, what)
        return DiskAccess.of(disk, path=str(self.dev_dir() / vg / target), size=volume.size, adopted=f"{vg}/{name}")

    def release_adopted(self, instance: str, disk: dict, index: int, adopted: str) -> None:
        """Give a volume :meth:`adopt` renamed its old name back (``adopted``: VG/LV, as adopt said)."""
        vg, target = self.volume_group(disk), self.lv_name(disk)
        name = adopted.rpartition("/")[2]
        if name == target or self.lv_info(vg, target) is None:
            return
        rc, _, err = self.lvm.run("lvrename", vg, target, name)
        if rc != 0:
            raise StorageError(f"giving disk {index} of {instance} ({vg}/{target}) its old name {name} back"
                               f" failed: {_reason(err)}")
