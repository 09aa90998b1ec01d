"""FakeHypervisor: the whole interface without processes, for unit tests and simulated clusters.

State is a dict of instance records, kept in memory or, with ``state_dir``, in
``state_dir/fake-hv.json`` (read and written under a file lock per call) so the
separate processes of one simulated node agree. Everything is deterministic:
pids come from a counter, time from the ``clock`` argument, and a migration
advances one step per migration_status call (active … active → completed).

Fake nodes of one process can share a ``FakeFabric``: migrate then needs a
listener on the target address, and finish_incoming(True) needs the stream to
have completed, as with real QEMUs. Without a fabric both are trusted.

Test helpers beyond the interface: guest_poweroff, crash, fail_next, set_hv_version.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from genet.hypervisor.base import HvState, Hypervisor, HypervisorError
from genet.objects import InstanceRuntime as Instance
from genet.hypervisor.kvm import validation

MAX_DISKS = 16
MAX_NICS = 8
FIRST_PID = 10000
FAKE_VERSION = [1, 0, 0]


def _meminfo_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 4096


class FakeFabric:
    """Who listens for a migration where, among the fake nodes of one process."""

    def __init__(self) -> None:
        self.listeners: dict[tuple[str, int], tuple["FakeHypervisor", str]] = {}


class FakeHypervisor(Hypervisor):
    """Instances are records; nothing runs."""
    name = "fake"
    PARAMETERS = validation.PARAMS      # it stands in for kvm in tests and dev clusters

    def __init__(self, state_dir: Path | None = None, memory_total: int | None = None,
                 cpu_total: int | None = None, clock: Callable[[], float] = time.time,
                 fabric: FakeFabric | None = None, migration_steps: int = 3):
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.memory_total = memory_total if memory_total is not None else _meminfo_total()
        self.cpu_total = cpu_total if cpu_total is not None else (os.cpu_count() or 1)
        self.clock = clock
        self.fabric = fabric
        self.migration_steps = max(1, migration_steps)
        self._mem_state: dict = {"next_pid": FIRST_PID, "instances": {}}
        self._lock = threading.RLock()

    @classmethod
    def on_this_node(cls) -> "FakeHypervisor":
        """Its guests kept in the node's state directory, so every process of the node sees them."""
        from genet import paths
        return cls(state_dir=paths.data_dir() / f"{cls.name}-hv")

    # --- state storage

    @contextlib.contextmanager
    def _state(self, write: bool = True) -> Iterator[dict]:
        """The state, locked for this call and, when ``write``, saved after it (unless it raised).

        Readers (info, lists, node_info) take the file lock shared and write nothing:
        a node's live query must not cost a rewrite of every instance's record.
        """
        with self._lock:
            if self.state_dir is None:
                yield self._mem_state
                return
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with open(self.state_dir / "fake-hv.lock", "a") as lockf:
                fcntl.flock(lockf, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
                path = self.state_dir / "fake-hv.json"
                try:
                    state = json.loads(path.read_text())
                except FileNotFoundError:
                    state = {"next_pid": FIRST_PID, "instances": {}}
                yield state
                if write:
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(state, separators=(",", ":")))
                    os.replace(tmp, path)

    def _fault(self, op: str) -> None:
        with self._state(write=False) as state:
            if not state.get("faults", {}).get(op):
                return
        with self._state() as state:
            queue = state.get("faults", {}).get(op)
            message = queue.pop(0) if queue else None
        if message is not None:
            raise HypervisorError(message)

    @staticmethod
    def _get(state: dict, name: str) -> dict:
        rec = state["instances"].get(name)
        if rec is None:
            raise HypervisorError(f"instance {name} is not running on this node")
        return rec

    def _live(self, state: dict, name: str) -> dict:
        rec = self._get(state, name)
        if rec["state"] == HvState.CRASHED.value:
            raise HypervisorError(f"instance {name} is not running on this node (crashed)")
        return rec

    def _new_record(self, state: dict, inst: Instance, runstate: str) -> dict:
        name = inst["name"]
        old = state["instances"].get(name)
        if old is not None and old["state"] != HvState.CRASHED.value:
            raise HypervisorError(f"instance {name} is already running (pid {old['pid']})")
        try:
            self.check_parameters(inst.get("hvparams", {}))
        except HypervisorError as err:
            raise HypervisorError(f"instance {name}: {err}") from None
        be = inst.get("beparams", {})
        pid = state["next_pid"]
        state["next_pid"] += 1
        rec = {"name": name, "state": HvState.RUNNING.value, "runstate": runstate,
               "memory": int(be.get("maxmem", 128)), "vcpus": int(be.get("vcpus", 1)), "pid": pid,
               "start_time": self.clock(), "hvparams": dict(inst.get("hvparams", {})),
               "disks": list(inst.get("disks", [])), "nics": list(inst.get("nics", [])),
               "migration": None, "incoming": None}
        state["instances"][name] = rec
        return rec

    # --- test helpers

    def fail_next(self, op: str, message: str) -> None:
        """Make the next call of method ``op`` raise HypervisorError(message).

        Kept in the state, so a test can arm it for a node daemon's backend (same state_dir).
        """
        with self._state() as state:
            state.setdefault("faults", {}).setdefault(op, []).append(message)

    def guest_poweroff(self, name: str) -> None:
        """The guest powers itself off: the process stays, info says SHUTDOWN."""
        with self._state() as state:
            rec = self._live(state, name)
            rec.update(state=HvState.SHUTDOWN.value, runstate="shutdown")

    def crash(self, name: str) -> None:
        """The process dies on its own: info says CRASHED until stop cleans up."""
        with self._state() as state:
            rec = self._get(state, name)
            rec.update(state=HvState.CRASHED.value, runstate="gone", pid=0)

    # --- lifecycle

    def start(self, inst: Instance, paused: bool = False) -> None:
        self._fault("start")
        with self._state() as state:
            self._new_record(state, inst, "paused" if paused else "running")

    def stop(self, name: str, timeout: float = 120.0, force: bool = False) -> None:
        self._fault("stop")
        with self._state() as state:
            rec = state["instances"].pop(name, None)
        if rec and rec.get("incoming") and self.fabric:
            self.fabric.listeners.pop(tuple(rec["incoming"]), None)

    def pause(self, name: str) -> None:
        self._fault("pause")
        with self._state() as state:
            self._live(state, name)["runstate"] = "paused"

    def reboot(self, name: str, hard: bool = False) -> None:
        self._fault("reboot")
        with self._state() as state:
            rec = self._live(state, name)
            rec.update(state=HvState.RUNNING.value, runstate="running")
            if not hard:                      # soft = stop + start, as the kvm backend does
                rec["pid"] = state["next_pid"]
                state["next_pid"] += 1
                rec["start_time"] = self.clock()

    def balloon_memory(self, name: str, memory: int) -> None:
        """Records the new memory, which info and node_info then report (as a balloon would)."""
        self._fault("balloon_memory")
        with self._state() as state:
            rec = self._live(state, name)
            top = int(rec.get("maxmem", rec["memory"]))
            if memory > top:
                raise HypervisorError(f"instance {name}: cannot balloon above the {top} MiB it started with")
            rec.update(maxmem=top, memory=int(memory))

    def info(self, name: str) -> dict | None:
        with self._state(write=False) as state:
            rec = state["instances"].get(name)
            return None if rec is None else self._info(rec)

    def _info(self, rec: dict) -> dict:
        up = 0.0 if rec["state"] == HvState.CRASHED.value else max(0.0, self.clock() - rec["start_time"])
        return {"state": rec["state"], "memory": rec["memory"], "vcpus": rec["vcpus"], "pid": rec["pid"],
                "uptime": round(up, 2), "runstate": rec["runstate"]}

    def all_info(self) -> dict[str, dict]:
        with self._state(write=False) as state:
            return {name: self._info(rec) for name, rec in sorted(state["instances"].items())}

    def list_instances(self) -> list[str]:
        with self._state(write=False) as state:
            return sorted(state["instances"])

    def node_info(self) -> dict:
        with self._state(write=False) as state:
            used = sum(r["memory"] for r in state["instances"].values() if r["state"] != HvState.CRASHED.value)
            version = state.get("hv_version", FAKE_VERSION)
        return {"memory_total": self.memory_total, "memory_free": max(0, self.memory_total - used),
                "memory_hv": used, "cpu_total": self.cpu_total, "hv_version": version}

    def set_hv_version(self, version: list[int]) -> None:
        """Test helper: the version node_info reports (as a node with another QEMU)."""
        with self._state() as state:
            state["hv_version"] = list(version)

    def console(self, name: str) -> dict:
        with self._state() as state:
            self._get(state, name)
        base = self.state_dir or Path("/nonexistent/genet-fake-hv")
        return {"kind": "serial", "path": str(base / f"{name}.serial")}

    # --- migration

    def migration_info(self, name: str) -> dict:
        with self._state() as state:
            rec = self._live(state, name)
            return {"machine": "fake", "layout": {"disks": len(rec["disks"]), "nics": len(rec["nics"])}}

    def accept_incoming(self, inst: Instance, address: str, port: int, info: dict | None = None) -> None:
        self._fault("accept_incoming")
        key = (address, int(port))
        if self.fabric and key in self.fabric.listeners:
            raise HypervisorError(f"instance {inst['name']}: {address}:{port}: Address already in use")
        with self._state() as state:
            rec = self._new_record(state, inst, "inmigrate")
            rec["incoming"] = [address, int(port)]
            rec["received"] = False
        if self.fabric:
            self.fabric.listeners[key] = (self, inst["name"])

    def migrate(self, name: str, address: str, port: int, live: bool = True,
                bandwidth: int | None = None, downtime_ms: int | None = None,
                nbd_port: int | None = None) -> None:
        self._fault("migrate")
        with self._state() as state:
            rec = self._live(state, name)
            if rec["migration"] and rec["migration"]["status"] == "active":
                raise HypervisorError(f"instance {name}: a migration is already in progress")
            if rec["runstate"] not in ("running", "paused"):
                raise HypervisorError(f"instance {name}: cannot migrate in runstate {rec['runstate']}")
            limit = downtime_ms or int(rec["hvparams"].get("migration_downtime", 30))
            mig = {"status": "active", "step": 0, "target": [address, int(port)], "live": live,
                   "downtime_limit": limit, "error": ""}
            if self.fabric and (address, int(port)) not in self.fabric.listeners:
                mig.update(status="failed", error=f"Failed to connect to '{address}:{port}': Connection refused")
            elif not live:
                rec["runstate"] = "paused"
            rec["migration"] = mig

    def migration_status(self, name: str) -> dict:
        done_target = None
        with self._state() as state:
            rec = self._get(state, name)
            mig = rec["migration"]
            total = rec["memory"] * 1024 * 1024
            if mig is None:
                return {"status": "none", "ram_total": 0, "ram_remaining": 0, "total_time_ms": 0,
                        "downtime_ms": 0, "error": ""}
            if mig["status"] == "active":
                mig["step"] += 1
                if mig["step"] >= self.migration_steps:
                    mig["status"] = "completed"
                    rec["runstate"] = "postmigrate"
                    done_target = tuple(mig["target"])
            remaining = 0 if mig["status"] == "completed" else \
                total * (self.migration_steps - mig["step"]) // self.migration_steps
            result = {"status": mig["status"], "ram_total": total, "ram_remaining": remaining,
                      "total_time_ms": 100 * mig["step"],
                      "downtime_ms": mig["downtime_limit"] // 2 if mig["status"] == "completed" else 0,
                      "error": mig["error"]}
        if done_target and self.fabric and done_target in self.fabric.listeners:
            target, tname = self.fabric.listeners[done_target]
            target._mark_received(tname)
        return result

    def _mark_received(self, name: str) -> None:
        with self._state() as state:
            rec = state["instances"].get(name)
            if rec is not None:
                rec["received"] = True

    def abort_migration(self, name: str, resume_completed: bool = False) -> None:
        self._fault("abort_migration")
        with self._state() as state:
            rec = self._live(state, name)
            mig = rec["migration"]
            if mig and mig["status"] == "completed" and resume_completed:
                rec.update(runstate="running", migration=None)
                return
            if mig and mig["status"] == "completed":
                raise HypervisorError(f"instance {name}: migration already completed; the guest runs on the target")
            if mig and mig["status"] == "active":
                mig["status"] = "cancelled"
            if rec["runstate"] == "paused" and mig and not mig["live"]:
                rec["runstate"] = "running"

    def finish_incoming(self, name: str, success: bool) -> None:
        self._fault("finish_incoming")
        if not success:
            self.stop(name, force=True)
            return
        with self._state() as state:
            rec = self._get(state, name)
            if rec.get("incoming") is None:
                if rec["runstate"] == "running":
                    return                    # repeated: harmless
                raise HypervisorError(f"instance {name}: no incoming migration here")
            if self.fabric and not rec.get("received"):
                raise HypervisorError(f"instance {name}: the migration stream has not completed")
            key = tuple(rec["incoming"])
            rec.update(runstate="running", incoming=None)
        if self.fabric:
            self.fabric.listeners.pop(key, None)

    # --- hotplug

    def _plug(self, name: str, kind: str, item: dict | None, index: int) -> None:
        self._fault(f"{'hotplug' if item is not None else 'unplug'}_{kind[:-1]}")
        with self._state() as state:
            rec = self._live(state, name)
            items = rec[kind]
            limit = len(items) + 1 if item is not None else len(items)
            if not 0 <= index < limit:
                raise HypervisorError(f"instance {name}: {kind[:-1]} index {index} out of range (0..{limit - 1})")
            if item is None:
                del items[index]
            elif len(items) >= (MAX_DISKS if kind == "disks" else MAX_NICS):
                raise HypervisorError(f"instance {name}: no free slot for another {kind[:-1]}")
            else:
                items.insert(index, item)

    def hotplug_disk(self, name: str, disk: dict, index: int) -> None:
        self._plug(name, "disks", disk, index)

    def unplug_disk(self, name: str, index: int) -> None:
        self._plug(name, "disks", None, index)

    def resize_disk(self, name: str, index: int, size: int) -> None:
        """As QEMU's block_resize: a qcow2 image or a smaller raw file grows (qemu-img here, the
        fake holds no lock); a raw volume already large enough (LVM rounds up) stays."""
        self._fault("resize_disk")
        with self._state() as state:
            disks = self._live(state, name)["disks"]
            if not 0 <= index < len(disks):
                raise HypervisorError(f"instance {name}: disk index {index} out of range (0..{len(disks) - 1})")
            disk = disks[index]
            path, fmt = disk.get("path"), disk.get("format", "raw")
            if path and os.path.isfile(path) and (fmt != "raw" or os.path.getsize(path) < int(size) << 20):
                proc = subprocess.run(["qemu-img", "resize", "-q", "-f", fmt, path, f"{int(size)}M"],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise HypervisorError(f"instance {name}: disk {index}: {proc.stderr.strip()}")
            disk["size"] = size

    def hotplug_nic(self, name: str, nic: dict, index: int) -> None:
        self._plug(name, "nics", nic, index)

    def unplug_nic(self, name: str, index: int) -> None:
        self._plug(name, "nics", None, index)

    # --- for tests: what the guest sees

    def devices(self, name: str) -> dict:
        with self._state() as state:
            rec = self._get(state, name)
            return {"disks": list(rec["disks"]), "nics": list(rec["nics"])}
