"""Per-instance files under RUN/kvm/NAME and the runtime record kept there.

The runtime record (runtime.json) is what a running instance needs beyond its
config: the pinned machine type and accelerator, the device layout, the taps,
the argv and the start time. It exists exactly while genet considers a QEMU
process to belong to the instance; a record whose process is gone means the
instance crashed. The QEMU log lives in LOG/kvm/NAME.log so it outlives a stop.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from genet import paths
from genet.hypervisor.base import HypervisorError


@dataclass
class Runtime:
    name: str
    inst: dict                          # the instance dict as started (disks/NICs follow hotplug)
    machine: str                        # concrete machine type, pinned for migration
    accel: str
    binary: str
    layout: dict                        # devices.Layout
    argv: list[str] = field(default_factory=list)
    pid: int = 0
    start_time: float = 0.0
    vnc: dict | None = None             # {"host", "port"} or {"path"} (a unix socket)
    spice: dict | None = None           # {"host", "port"}
    incoming: str | None = None         # the -incoming URI while this is a migration target
    stopping: bool = False              # stop() is under way: a vanished process is not a crash
    uid: int | None = None              # taken from the cluster's uid pool (security_model=pool)

    @property
    def memory(self) -> int:
        return int(self.inst.get("beparams", {}).get("maxmem", 128))

    @property
    def vcpus(self) -> int:
        return int(self.inst.get("beparams", {}).get("vcpus", 1))

    def to_info(self) -> dict[str, Any]:
        """What the migration target needs to recreate this process (Ganeti's MigrationInfo)."""
        return {"machine": self.machine, "layout": self.layout}


class _InDir:
    """A file of an instance's directory: ``files.NAME`` is ``files.dir / filename``."""

    def __init__(self, filename: str):
        self.filename = filename

    def __get__(self, files: "Files | None", owner: type | None = None) -> Path:
        if files is None:
            return self           # type: ignore[return-value]   # the class attribute itself
        return files.dir / self.filename


class Files:
    """The paths of one instance; sockets are addressed relative to ``dir`` (see genet.qmp.unix_connect)."""

    # the files in ``dir``, each a Path attribute
    runtime = _InDir("runtime.json")
    pidfile = _InDir("qemu.pid")
    qmp = _InDir("qmp.sock")
    serial = _InDir("serial.sock")
    serial_log = _InDir("serial.log")      # all the guest wrote on its serial console, attached or not
    chroot = _InDir("chroot")              # the empty directory QEMU confines itself to (use_chroot)
    guest_agent = _InDir("qga.sock")       # the QEMU guest agent's channel (use_guest_agent)

    def __init__(self, name: str, run_root: Path | None = None, log_root: Path | None = None):
        if not name or "/" in name or name.startswith("."):
            raise HypervisorError(f"invalid instance name {name!r}")
        self.name = name
        self.dir = (run_root or paths.run_dir() / "kvm") / name
        self.log = (log_root or paths.log_dir() / "kvm") / f"{name}.log"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.log.parent.mkdir(parents=True, exist_ok=True, mode=0o750)

    def load(self) -> Runtime | None:
        try:
            data = json.loads(self.runtime.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise HypervisorError(f"instance {self.name}: unreadable runtime file {self.runtime}: {err}") from None
        known = {f.name for f in fields(Runtime)}
        return Runtime(**{k: v for k, v in data.items() if k in known})   # written by another version

    def save(self, rt: Runtime) -> None:
        """Write atomically (temp + fsync + rename): a reader sees the old or the new record."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        tmp = self.runtime.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(rt), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.runtime)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def names(run_root: Path | None = None) -> list[str]:
    """Instances with a runtime record on this node."""
    root = run_root or paths.run_dir() / "kvm"
    try:
        return sorted(d.name for d in root.iterdir() if (d / Files.runtime.filename).exists())
    except FileNotFoundError:
        return []
