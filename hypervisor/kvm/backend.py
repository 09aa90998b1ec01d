"""KvmHypervisor: the base.Hypervisor steps, composed from the kvm package's parts.

Lifecycle of one instance on a node (the runtime record decides):
  no record                      → not here (info None)
  record + live QEMU             → RUNNING (or SHUTDOWN when the guest powered off with
                                   user_shutdown: -no-shutdown keeps QEMU in runstate
                                   "shutdown")
  record + no QEMU               → CRASHED until stop() cleans up (None while a stop
                                   is under way: a stopped guest never looks crashed);
                                   also a guest that powered off without user_shutdown
                                   (Ganeti: ERROR_down, which the watcher restarts)
Operations on one instance are serialised by a per-instance lock; info() takes
no lock (it reads the atomically written record and asks QMP).

Decisions (see also capabilities.choose_accel, migration):
- soft reboot = stop with ACPI (reboot_timeout, then kill) + start from the
  saved runtime (same machine type, device layout and hvparams), as Ganeti does:
  QMP has no guest-initiated reboot. hard reboot = system_reset in the same process
  (a new process under reboot_behavior=exit, where QEMU takes a reset for a power-off).
- hvparams that need the node (prereq.py) are checked before anything is created;
  passwords and vCPU pinning are applied over QMP while the guest is held with -S.
- stop of a guest that cannot react to ACPI (paused, migrated away, powered off)
  quits QEMU at once instead of waiting for the timeout.
- a migration target starts without -S and resumes by itself when the stream
  completes; finish_incoming waits for that and continues a guest that arrives
  paused (non-live migration).
"""
from __future__ import annotations

import logging
import os
import pwd
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from genet import uidpool
from genet.hypervisor.base import HvState, Hypervisor, HypervisorError
from genet.objects import InstanceRuntime as Instance
from genet.hypervisor.kvm import (capabilities, cmdline, cpus, devices, hotplug, migration, netdev, prereq, process,
                                  validation)
from genet.hypervisor.kvm.monitor import Monitor
from genet.hypervisor.kvm.runtime import Files, Runtime, names

log = logging.getLogger("genet.hypervisor.kvm")
MIRROR_MARK = "mirror-exports"      # on a migration target: how many disks it exports over NBD

# runstates in which the guest cannot answer an ACPI power button
_DEAF_RUNSTATES = {"paused", "postmigrate", "inmigrate", "prelaunch", "shutdown", "guest-panicked",
                   "internal-error", "io-error", "finish-migrate"}
_CRASHED_RUNSTATES = {"guest-panicked", "internal-error"}
_RUNSTATE_NAMES = {"prelaunch": "paused"}      # started with -S: paused before the first instruction


def pool_user(uid: int) -> str:
    """What -runas takes for a uid of the pool: its user name, as Ganeti passes it; a uid without
    one runs as ``uid:gid`` with the group of the same number (QEMU 7 takes that too)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"{uid}:{uid}"


class KvmHypervisor(Hypervisor):
    """QEMU/KVM guests, one daemonized QEMU per instance, driven over QMP."""
    name = "kvm"
    PARAMETERS = validation.PARAMS

    def __init__(self, run_dir: Path | None = None, log_dir: Path | None = None,
                 reboot_timeout: float = 120.0, monitor_timeout: float = 10.0):
        self._run_root = run_dir          # None: genet.paths.run_dir()/"kvm", read at each call
        self._log_root = log_dir
        self.reboot_timeout = reboot_timeout
        self.monitor_timeout = monitor_timeout
        self._locks: defaultdict[str, threading.RLock] = defaultdict(threading.RLock)
        self._locks_guard = threading.Lock()

    # --- plumbing

    def _lock(self, name: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks[name]

    def _files(self, name: str) -> Files:
        return Files(name, self._run_root, self._log_root)

    def _mon(self, files: Files) -> Monitor:
        return Monitor(files.qmp, files.name, self.monitor_timeout)

    def _running(self, name: str) -> tuple[Files, Runtime]:
        """The record of an instance whose QEMU is alive, else HypervisorError."""
        files = self._files(name)
        rt = files.load()
        if rt is None or not process.alive(rt.pid, files.pidfile):
            raise HypervisorError(f"instance {name} is not running on this node")
        return files, rt

    def _runstate(self, files: Files) -> str:
        return self._mon(files).execute("query-status")["status"]

    # --- start and stop

    def start(self, inst: Instance, paused: bool = False) -> None:
        with self._lock(inst["name"]):
            self._start(inst, paused=paused)

    def _start(self, inst: Instance, paused: bool = False, incoming: str | None = None,
               machine: str | None = None, previous_layout: devices.Layout | None = None) -> None:
        name = inst["name"]
        files = self._files(name)
        old = files.load()
        pid = old.pid if old else process.read_pid(files.pidfile)
        if process.alive(pid, files.pidfile):
            raise HypervisorError(f"instance {name} is already running (pid {pid})")
        if old is not None:
            log.info("instance %s: cleaning up after a QEMU that is gone", name)
        self._cleanup(files, old)
        try:
            params = self.fill_parameters(inst.get("hvparams", {}))
        except HypervisorError as err:
            raise HypervisorError(f"instance {name}: {err}") from None
        caps = capabilities.probe(params["kvm_path"])
        if machine is None:
            machine = caps.resolve_machine(params["machine_version"])
        elif machine not in caps.machines:
            raise HypervisorError(f"instance {name}: QEMU {caps.version} here has no machine type {machine!r}")
        try:
            resolved = prereq.check(inst, params, caps)
        except HypervisorError as err:
            raise HypervisorError(f"instance {name}: {err}") from None
        accel = capabilities.choose_accel("kvm" if params["kvm_flag"] == "enabled" else params["accel"], caps, name)
        layout = devices.plan(inst, params["disk_type"], previous_layout)
        # set up before the guest runs: passwords, pinning (Ganeti starts paused for these too)
        hold = not paused and not incoming and bool(resolved.vnc_password or resolved.spice_password
                                                     or resolved.cpu_mask)
        files.prepare()
        if params["use_chroot"]:
            files.chroot.mkdir(mode=0o750, exist_ok=True)
        taken = None
        try:
            if params["security_model"] == "pool":
                taken = uidpool.take(uidpool.node_pool())
                resolved.run_as = pool_user(taken.uid)
            for entry in layout["nics"]:
                entry["tap"] = netdev.create_tap(entry["nic"], name, devices.multi_queue(params))
            argv = cmdline.build(inst, params, machine, accel, layout, files, paused or hold, incoming,
                                 resolved, run_with="-runas" not in caps.options)
            log.info("instance %s: starting %s", name, " ".join(argv))
            process.launch(argv, files.dir, files.log, name)
            rt = Runtime(name=name, inst=inst, machine=machine, accel=accel, binary=caps.binary,
                         layout=layout, argv=argv, pid=process.read_pid(files.pidfile),
                         start_time=time.time(), incoming=incoming, uid=taken.uid if taken else None)
            self._after_launch(files, rt, resolved)
            if incoming and params["migration_caps"]:
                migration.set_capabilities(self._mon(files), params["migration_caps"], True)
            if hold:
                self._mon(files).execute("cont")
            files.save(rt)
        except BaseException:
            pid = process.read_pid(files.pidfile)
            process.kill(pid, files.pidfile)
            process.wait_gone(pid, files.pidfile, 5.0)
            for entry in layout["nics"]:
                netdev.remove_tap(entry.get("tap"))
            files.remove()
            if taken is not None:
                uidpool.release(taken)
            raise
        if taken is not None:
            taken.unlock()          # the lock file stays: the uid is this guest's until it stops

    def _after_launch(self, files: Files, rt: Runtime, resolved: prereq.Resolved) -> None:
        """Passwords, vCPU pinning and where the remote display listens, once QEMU is up."""
        mon = self._mon(files)
        if resolved.vnc_password is not None:
            mon.execute("set_password", {"protocol": "vnc", "password": resolved.vnc_password})
        if resolved.spice_password is not None:
            mon.execute("set_password", {"protocol": "spice", "password": resolved.spice_password})
        if resolved.cpu_mask:
            cpus.pin(rt.pid, cpus.vcpu_threads(mon.execute("query-cpus-fast")), resolved.cpu_mask)
        if resolved.vnc_host:
            vnc = mon.execute("query-vnc")
            rt.vnc = ({"path": vnc.get("host", "")} if vnc.get("family") == "unix" else
                      {"host": vnc.get("host", resolved.vnc_host), "port": int(vnc["service"])})
        if resolved.spice:
            spice = mon.execute("query-spice")
            rt.spice = {"host": spice.get("host", resolved.spice[0]),
                        "port": int(spice.get("tls-port") or spice.get("port") or resolved.spice[1])}

    def stop(self, name: str, timeout: float = 120.0, force: bool = False) -> None:
        with self._lock(name):
            self._stop(name, timeout, force)

    def _stop(self, name: str, timeout: float, force: bool) -> None:
        files = self._files(name)
        rt = files.load()
        pid = rt.pid if rt else process.read_pid(files.pidfile)
        if process.alive(pid, files.pidfile):
            if rt is not None:
                rt.stopping = True
                files.save(rt)
            if not force:
                self._powerdown(files, pid, timeout)
            process.kill(pid, files.pidfile)
            if not process.wait_gone(pid, files.pidfile, 10.0):
                raise HypervisorError(f"instance {name}: QEMU pid {pid} survives SIGKILL")
        self._cleanup(files, rt)

    def _powerdown(self, files: Files, pid: int, timeout: float) -> None:
        """ACPI power button; quit QEMU once the guest is off; return when gone or at the deadline."""
        mon = self._mon(files)
        deadline = time.monotonic() + timeout
        pressed = False
        while process.alive(pid, files.pidfile) and time.monotonic() < deadline:
            try:
                state = self._runstate(files)
                if state in _DEAF_RUNSTATES:
                    mon.execute("quit")
                    process.wait_gone(pid, files.pidfile, max(0.0, min(5.0, deadline - time.monotonic())))
                    return
                if not pressed:
                    mon.execute("system_powerdown")
                    pressed = True
            except HypervisorError as err:      # QEMU exiting or its monitor wedged
                log.debug("instance %s: during powerdown: %s", files.name, err)
            time.sleep(0.1)
        if process.alive(pid, files.pidfile):
            log.warning("instance %s: guest did not power off within %.0f s; killing it", files.name, timeout)

    def _cleanup(self, files: Files, rt: Runtime | None) -> None:
        for entry in (rt.layout["nics"] if rt else []):
            netdev.remove_tap(entry.get("tap"))
        if rt is not None and rt.uid is not None:
            uidpool.release(rt.uid)
        files.remove()

    def pause(self, name: str) -> None:
        with self._lock(name):
            files, _ = self._running(name)
            self._mon(files).execute("stop")

    def reboot(self, name: str, hard: bool = False) -> None:
        with self._lock(name):
            files, rt = self._running(name)
            exits = self.fill_parameters(rt.inst.get("hvparams", {}))["reboot_behavior"] == "exit"
            if hard and exits:          # -no-reboot: QEMU would take the reset for a power-off
                self._stop(name, 0, force=True)
                self._start(rt.inst, machine=rt.machine, previous_layout=rt.layout)
                return
            if hard:
                mon = self._mon(files)
                mon.execute("system_reset")
                if self._runstate(files) == "prelaunch":      # reset out of "shutdown" waits for cont
                    mon.execute("cont")
                return
            self._stop(name, self.reboot_timeout, force=False)
            self._start(rt.inst, machine=rt.machine, previous_layout=rt.layout)

    # --- state

    def info(self, name: str) -> dict | None:
        files = self._files(name)
        rt = files.load()
        if rt is None:
            return None
        info = {"memory": int(rt.inst.get("runtime_memory", rt.memory)), "vcpus": rt.vcpus, "pid": rt.pid, "uptime": 0.0,
                "machine": rt.machine, "accel": rt.accel}
        if not process.alive(rt.pid, files.pidfile):
            if rt.stopping:                 # asked to stop, the rest of stop() is under way
                return None
            return {**info, "state": HvState.CRASHED.value, "pid": 0, "runstate": "gone"}
        try:
            runstate = self._runstate(files)
        except HypervisorError as err:
            log.warning("%s", err)
            runstate = "unknown"
        state = (HvState.SHUTDOWN if runstate == "shutdown" else
                 HvState.CRASHED if runstate in _CRASHED_RUNSTATES else HvState.RUNNING)
        return {**info, "state": state.value, "runstate": _RUNSTATE_NAMES.get(runstate, runstate),
                "uptime": round(process.uptime(rt.pid), 2)}

    def list_instances(self) -> list[str]:
        return names(self._run_root)

    def usage_sources(self) -> dict[str, dict]:
        """From the runtime records alone (no QMP), so measuring stays cheap."""
        out = {}
        for name in self.list_instances():
            files = self._files(name)
            try:
                rt = files.load()
            except HypervisorError:
                continue
            if rt is not None and process.alive(rt.pid, files.pidfile):
                out[name] = {"pid": rt.pid, "taps": [e["tap"] for e in rt.layout.get("nics", []) if e.get("tap")]}
        return out

    def node_info(self) -> dict:
        mem: dict[str, int] = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                mem[key] = int(value.split()[0]) // 1024
        used = 0
        for name in self.list_instances():
            files = self._files(name)
            rt = files.load()
            if rt is not None and process.alive(rt.pid, files.pidfile):
                used += int(rt.inst.get("runtime_memory", rt.memory))
        info = {"memory_total": mem["MemTotal"], "memory_free": mem.get("MemAvailable", mem["MemFree"]),
                "memory_hv": used, "cpu_total": os.cpu_count() or 1}
        try:        # the QEMU new guests start with: migrate compares it between nodes
            version = capabilities.probe(self.fill_parameters({})["kvm_path"]).version
            info["hv_version"] = [int(part) for part in version.split(".")]
        except (HypervisorError, ValueError):
            pass
        return info

    def console(self, name: str) -> dict:
        files = self._files(name)
        rt = files.load()
        if rt is None:
            raise HypervisorError(f"instance {name} is not running on this node")
        serial = self.fill_parameters(rt.inst.get("hvparams", {}))["serial_console"]
        vnc = rt.vnc if rt.vnc and "port" in rt.vnc else None      # a unix socket is no network console
        out: dict = ({"kind": "serial", "path": str(files.serial), "log": str(files.serial_log)} if serial
                     else {"kind": "vnc" if vnc else "spice" if rt.spice else "none"})
        if vnc:
            out["vnc"] = vnc
        if rt.spice:
            out["spice"] = rt.spice
        return out

    # --- migration: target

    def migration_info(self, name: str) -> dict:
        """On the source, before accept_incoming: what the target must reproduce
        (pinned machine type, device layout). Pass it as accept_incoming's ``info``."""
        return self._running(name)[1].to_info()

    def accept_incoming(self, inst: Instance, address: str, port: int, info: dict | None = None) -> None:
        if info is None:
            log.warning("instance %s: accept_incoming without the source's migration_info: machine type "
                        "from hvparams and device layout by position", inst["name"])
        uri = migration.tcp_uri(address, port)
        with self._lock(inst["name"]):
            files = self._files(inst["name"])
            rt = files.load()
            if rt is not None and rt.incoming == uri and process.alive(rt.pid, files.pidfile):
                return                                  # repeated: already waiting there
            self._start(inst, paused=bool((info or {}).get("hold")), incoming=uri,
                        machine=(info or {}).get("machine"), previous_layout=(info or {}).get("layout"))
            nbd_port = (info or {}).get("nbd_port")
            if nbd_port:           # local disks: the source mirrors them here before the memory
                files = self._files(inst["name"])
                try:
                    migration.export_disks(self._mon(files), address, int(nbd_port), len(inst["disks"]))
                except HypervisorError as err:
                    self._stop(inst["name"], 0, force=True)
                    raise HypervisorError(f"instance {inst['name']}: cannot export its disks for the"
                                          f" migration: {err}") from None
                (files.dir / MIRROR_MARK).write_text(str(len(inst["disks"])))

    def finish_incoming(self, name: str, success: bool) -> None:
        with self._lock(name):
            if not success:
                self._stop(name, 0, force=True)
                return
            files = self._files(name)
            rt = files.load()
            if rt is None:
                raise HypervisorError(f"instance {name}: no incoming migration here")
            deadline = time.monotonic() + 30.0
            while True:
                if not process.alive(rt.pid, files.pidfile):
                    raise HypervisorError(f"instance {name}: target QEMU exited: "
                                          f"{process.log_tail(files.log) or 'no log'}")
                state = self._runstate(files)
                if state != "inmigrate":
                    break
                if time.monotonic() > deadline:
                    raise HypervisorError(f"instance {name}: the migration stream has not completed")
                time.sleep(0.05)
            mark = files.dir / MIRROR_MARK
            if mark.exists():
                migration.unexport_disks(self._mon(files), int(mark.read_text()))
                mark.unlink()
            if state in ("paused", "prelaunch"):
                self._mon(files).execute("cont")
            migration.set_capabilities(self._mon(files),
                                       self.fill_parameters(rt.inst.get("hvparams", {}))["migration_caps"], False)
            rt.incoming = None
            files.save(rt)

    # --- migration: source

    def migrate(self, name: str, address: str, port: int, live: bool = True,
                bandwidth: int | None = None, downtime_ms: int | None = None,
                nbd_port: int | None = None) -> None:
        with self._lock(name):
            files, rt = self._running(name)
            params = self.fill_parameters(rt.inst.get("hvparams", {}))
            if nbd_port:
                try:
                    migration.mirror_disks(self._mon(files), address, nbd_port, len(rt.inst["disks"]))
                except (migration.MirrorError, HypervisorError) as err:
                    migration.cancel_mirrors(self._mon(files), len(rt.inst["disks"]))
                    raise HypervisorError(f"instance {name}: copying the disks to {address} failed: {err}") from None
            migration.start(self._mon(files), address, port, live,
                            bandwidth or params["migration_bandwidth"], downtime_ms or params["migration_downtime"],
                            params["migration_caps"])

    def migration_status(self, name: str) -> dict:
        files, rt = self._running(name)
        return migration.status(self._mon(files), self.fill_parameters(rt.inst.get("hvparams", {}))["migration_caps"])

    def abort_migration(self, name: str, resume_completed: bool = False) -> None:
        with self._lock(name):
            files, rt = self._running(name)
            mon = self._mon(files)
            migration.cancel_mirrors(mon, len(rt.inst["disks"]))
            status = migration.status(mon)
            if status["status"] == "completed" and resume_completed:
                mon.execute("cont")          # postmigrate: QEMU takes its images back and runs on
                return
            if status["status"] == "completed":
                raise HypervisorError(f"instance {name}: migration already completed; the guest runs on the target")
            if status["status"] == "active":
                migration.cancel(mon)
                deadline = time.monotonic() + 10.0
                while migration.status(mon)["status"] == "active" and time.monotonic() < deadline:
                    time.sleep(0.05)
            if self._runstate(files) == "paused":     # a non-live migration paused it
                mon.execute("cont")
            migration.set_capabilities(mon, self.fill_parameters(rt.inst.get("hvparams", {}))["migration_caps"],
                                       False)

    def balloon_memory(self, name: str, memory: int) -> None:
        """QMP ``balloon`` to the new size (the guest's virtio-balloon driver gives the memory
        back or takes it); info reports the balloon's target from then on."""
        with self._lock(name):
            files, rt = self._running(name)
            if memory > rt.memory:
                raise HypervisorError(f"instance {name}: cannot balloon above the {rt.memory} MiB it started with")
            self._mon(files).execute("balloon", {"value": int(memory) << 20})
            rt.inst["runtime_memory"] = int(memory)
            files.save(rt)

    # --- hotplug

    def hotplug_disk(self, name: str, disk: dict, index: int) -> None:
        self._plug(name, "disk", disk, index, hotplug.add_disk)

    def unplug_disk(self, name: str, index: int) -> None:
        self._unplug(name, "disk", index, hotplug.remove_disk)

    def resize_disk(self, name: str, index: int, size: int) -> None:
        """QMP block_resize on the disk's format node: QEMU grows an image file it holds (locked
        against qemu-img), checks a block device, and the guest's device reports the new size."""
        with self._lock(name):
            files, rt = self._running(name)
            entries = rt.layout["disks"]
            _check_index(name, "disk", index, len(entries))
            self._mon(files).execute("block_resize", {"node-name": f"disk{entries[index]['n']}",
                                                      "size": int(size) << 20})
            rt.inst["disks"][index]["size"] = size
            files.save(rt)

    def hotplug_nic(self, name: str, nic: dict, index: int) -> None:
        def attach(mon: Monitor, entry: devices.Entry, params: dict, machine: str) -> None:
            entry["tap"] = netdev.create_tap(nic, name, devices.multi_queue(params))
            try:
                hotplug.add_nic(mon, entry, params)
            except BaseException:
                netdev.remove_tap(entry["tap"])
                raise
        self._plug(name, "nic", nic, index, attach)

    def unplug_nic(self, name: str, index: int) -> None:
        def detach(mon: Monitor, entry: devices.Entry) -> None:
            hotplug.remove_nic(mon, entry)
            netdev.remove_tap(entry.get("tap"))
        self._unplug(name, "nic", index, detach)

    # A disk or NIC is plugged at an index of the running instance's layout and recorded in its
    # runtime (rt.layout and rt.inst under "disks"/"nics"); the kinds differ only in how QEMU
    # attaches and detaches the device.

    def _plug(self, name: str, kind: str, device: dict, index: int,
              attach: Callable[[Monitor, devices.Entry, dict, str], None]) -> None:
        """Insert ``device`` at ``index``; a repeated call (the same device there already) does nothing."""
        with self._lock(name):
            files, rt = self._running(name)
            params = self.fill_parameters(rt.inst.get("hvparams", {}))
            hotplug.check_supported(kind, params, rt.machine)
            entries = rt.layout[kind + "s"]
            _check_index(name, _LABEL[kind], index, len(entries) + 1)
            if _same(entries, index, kind, device, _IDENTITY[kind]):
                return                                  # repeated: already plugged
            entry = devices.new_entry(kind, device, entries, params["disk_type"])
            attach(self._mon(files), entry, params, rt.machine)
            entries.insert(index, entry)
            rt.inst.setdefault(kind + "s", []).insert(index, device)
            files.save(rt)

    def _unplug(self, name: str, kind: str, index: int, detach: Callable[[Monitor, devices.Entry], None]) -> None:
        with self._lock(name):
            files, rt = self._running(name)
            entries = rt.layout[kind + "s"]
            _check_index(name, _LABEL[kind], index, len(entries))
            detach(self._mon(files), entries[index])
            del entries[index]
            del rt.inst[kind + "s"][index]
            files.save(rt)


_LABEL = {"disk": "disk", "nic": "NIC"}          # as messages name the kinds
_IDENTITY = {"disk": "uuid", "nic": "mac"}       # what makes a plug a repetition


def _check_index(name: str, what: str, index: int, limit: int) -> None:
    if not 0 <= index < limit:
        raise HypervisorError(f"instance {name}: {what} index {index} out of range (0..{limit - 1})")


def _same(entries: list[devices.Entry], index: int, kind: str, item: dict, key: str) -> bool:
    return index < len(entries) and bool(item.get(key)) and entries[index][kind].get(key) == item.get(key)
