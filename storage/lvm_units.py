"""LVM's storage units: volume groups (lvm-vg) and physical volumes (lvm-pv), and a node's logical
volumes with the physical volumes they sit on (gnt-node volumes).

Every command is lvm2's report or change command, run as the plain template runs them
(storage.lvm.Lvm: lvm_bindir, the fake in tests), with Ganeti's options: sizes in MiB without a
suffix, ``|`` between fields, no headings.
"""
from __future__ import annotations

import os

from genet.storage.lvm import REPORT_OPTS, Lvm, _reason
from genet.storage.units import FIX_CONSISTENCY, StorageError, StorageType


def _size(text: str) -> int:
    """A size from a report: MiB rounded to a whole number, as Ganeti's _ParseSize."""
    return int(round(float(text.strip().lstrip("<")), 0))


class LvmUnits(StorageType):
    """A storage type read from one lvm report command: ``COLUMNS`` are its columns, ``unit``
    turns one line's values into the unit's fields."""
    COMMAND = ""
    COLUMNS: tuple[str, ...] = ()

    def __init__(self, params: dict | None = None):
        super().__init__(params)
        self.lvm = Lvm(self.params.get("lvm_bindir") or os.environ.get("GENET_LVM_BINDIR") or None)

    def report(self, name: str | None) -> list[list[str]]:
        """The report's lines split into columns (a line of another shape is lvm's noise: skipped)."""
        rc, out, err = self.lvm.run(self.COMMAND, *REPORT_OPTS, "-o", ",".join(self.COLUMNS),
                                    *([name] if name else []))
        if rc != 0:
            raise StorageError(f"{self.COMMAND} failed (exit {rc}): {_reason(err)}")
        lines = [line.strip().split("|") for line in out.splitlines()]
        return [values for values in lines if len(values) == len(self.COLUMNS)]

    def units(self, name: str | None = None) -> list[dict]:
        return [self.unit(*values) for values in self.report(name)]

    def unit(self, *values: str) -> dict:
        raise NotImplementedError


class LvmVgUnits(LvmUnits):
    """Volume groups; ``fix-consistency`` drops the physical volumes the group lost
    (vgreduce --removemissing), the logical volumes that lived on them with it."""
    name = "lvm-vg"
    COMMAND = "vgs"
    COLUMNS = ("vg_name", "vg_size", "vg_free")
    OPERATIONS = frozenset({FIX_CONSISTENCY})

    def unit(self, name: str, size: str, free: str) -> dict:
        return {"name": name, "size": _size(size), "free": _size(free), "used": _size(size) - _size(free),
                "allocatable": True}

    def execute(self, name: str, operation: str) -> None:
        if operation != FIX_CONSISTENCY:
            super().execute(name, operation)
        # lvm2 exits non-zero on a consistent group in some versions, and asks for --force
        # while logical volumes still use a missing volume: the report below is the judge
        _, out, err = self.lvm.run("vgreduce", "--removemissing", name)
        said = out + err
        if "Wrote out consistent volume group" not in said or "--removemissing --force" in said:
            _, out, err = self.lvm.run("vgreduce", "--removemissing", "--force", name)
            said += out + err
        rc, out, err = self.lvm.run("vgs", "--noheadings", "--nosuffix", name)
        if rc != 0 or "Couldn't find device with uuid" in out + err:
            raise StorageError(f"volume group {name} is still not consistent: vgreduce said {_reason(said)!r},"
                               f" vgs said {_reason(out + err)!r}")


class LvmPvUnits(LvmUnits):
    """Physical volumes; ``allocatable`` says whether new extents may be taken from one (pvchange -x)."""
    name = "lvm-pv"
    enabled_by = "lvm-vg"
    COMMAND = "pvs"
    COLUMNS = ("pv_name", "pv_size", "pv_used", "pv_free", "pv_attr")
    MODIFIABLE = frozenset({"allocatable"})

    def unit(self, name: str, size: str, used: str, free: str, attr: str) -> dict:
        return {"name": name, "size": _size(size), "used": _size(used), "free": _size(free),
                "allocatable": attr[:1] == "a"}

    def modify(self, name: str, changes: dict) -> None:
        super().modify(name, changes)
        if "allocatable" in changes:
            flag = "y" if changes["allocatable"] else "n"
            rc, _, err = self.lvm.run("pvchange", "--allocatable", flag, name)
            if rc != 0:
                raise StorageError(f"changing physical volume {name} failed: {_reason(err)}")


def node_volumes(params: dict) -> list[dict]:
    """Every logical volume here, once per physical volume it uses: {"name", "vg", "size" (MiB),
    "dev"}, as Ganeti's node_volumes."""
    lvm = Lvm(params.get("lvm_bindir") or os.environ.get("GENET_LVM_BINDIR") or None)
    rc, out, err = lvm.run("lvs", *REPORT_OPTS, "-o", "lv_name,lv_size,devices,vg_name")
    if rc != 0:
        raise StorageError(f"lvs failed (exit {rc}): {_reason(err)}")
    volumes = []
    for line in out.splitlines():
        values = [v.strip() for v in line.split("|")]
        if len(values) != 4:
            continue
        name, size, devices, vg = values
        for device in devices.split(","):            # "/dev/sdb1(0),/dev/sdc1(12)"
            volumes.append({"name": name, "vg": vg, "size": _size(size), "dev": device.split("(")[0]})
    return volumes
