"""mirror: a disk kept on two nodes by QEMU's own tools, without any kernel module.

Each side has a local raw image (where the file template keeps its disks). On the
secondary node a qemu-storage-daemon exports the image over NBD, with TLS, on the
node's replication address, in writethrough mode: a write is on the disk before
it is acknowledged. On the primary node a qemu-storage-daemon opens the local
image, connects to that export and runs a write-blocking ``blockdev-mirror``: a
write of the guest completes only once both images hold it. The guest (and OS
scripts) reach the disk through an NBD unix socket exported from the mirror's
filter node, so no write can bypass the mirror.

``disk["logical_id"]`` is ``{"nodes": [a, b], "addresses": [replication address
of a, of b], "port": P}``: whichever node is the secondary listens on its own
address and port P. Measured facts this relies on: ../shared/notes/qemu-mirror.md.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

from genet import paths
from genet.objects import DiskAccess
from genet.storage.base import MirroredTemplate, StorageError, run
from genet.storage.filestore import FileStorage

EXPORT = "disk0"
JOB = "mirror0"
FILTER = "mirror-filter"
START_TIMEOUT = 10.0
SOCKET_DIR = Path("/run/genet-nbd")
STOP_WAIT = 3.0          # for a job to end or an export to close
RESUME_WINDOW = 25.0     # how long resync tries to resume a paused mirror (QEMU's NBD reconnect backoff: 16 s)
RESUME_HOLD = 1.0        # a resumed job that runs this long without pausing again has its connection back
RESUME_RETRY = 0.5


def _alive(pid: int) -> bool:
    from genet.daemon_util import process_alive     # (here: daemon_util loads logging and subprocess)
    return process_alive(pid)


def nbd_socket_for(run_dir: Path) -> Path:
    """The guest's socket of the disk whose daemon runs in ``run_dir``: short and absolute,
    because QEMU (the guest's, here the client) cannot reach a unix socket whose path exceeds
    sun_path's 107 bytes."""
    import hashlib
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:20]
    return SOCKET_DIR / f"{digest}.sock"


def replication_creds() -> Path:
    """This node's TLS credentials for QEMU (a leaf certificate under the cluster's)."""
    from genet import ssl_utils         # TLS is loaded by what uses it, not by registering the template
    return ssl_utils.issue_replication_creds(paths.cluster_cert(), paths.data_dir() / "replication-tls")


class MirrorStorage(FileStorage, MirroredTemplate):
    """One side of a mirrored disk: the local image plus the storage daemon that serves it."""
    name = "mirror"
    mirrored = True
    moves_by_copy = False
    single_node = "file"
    running_grow = ""        # the guest's NBD connection keeps the size it was opened with

    # --- where things are -----------------------------------------------------

    def diagnose(self) -> tuple[str, str | None]:
        """As file, and QEMU's storage daemon must be installed."""
        import shutil
        where, problem = super().diagnose()
        if problem is None and shutil.which("qemu-storage-daemon") is None:
            problem = "qemu-storage-daemon not found (install qemu-system-common)"
        return where, problem

    def run_dir(self, disk: dict) -> Path:
        return paths.run_dir() / "mirror" / disk["uuid"]

    def _next_dir(self, disk: dict) -> Path:
        """Where the daemon of a live migration's next role waits until switch-over."""
        return paths.run_dir() / "mirror" / f"{disk['uuid']}.next"

    def _sides(self, disk: dict) -> tuple[int, int]:
        """Indices of this node and of its peer in the logical_id."""
        lid = disk.get("logical_id") or {}
        nodes = lid.get("nodes") or []
        me = paths.node_name()
        if me not in nodes or len(nodes) != 2:
            raise StorageError(f"disk {disk.get('uuid')} is not mirrored on node {me} (nodes: {nodes})")
        mine = nodes.index(me)
        return mine, 1 - mine

    def nbd_socket(self, disk: dict) -> Path:
        return nbd_socket_for(self.run_dir(disk))

    def _state(self, disk: dict, directory: Path | None = None) -> dict | None:
        """Role and pid of this disk's daemon (or of the one in ``directory``), if it runs."""
        try:
            state = json.loads(((directory or self.run_dir(disk)) / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state.get("pid"), int) and _alive(state["pid"]) else None

    def _monitor(self, disk: dict):
        from genet import qmp
        return qmp.Monitor(self.run_dir(disk) / "qmp.sock", f"mirror {disk['uuid']}")

    def _qmp(self, disk: dict, calls: list[tuple[str, dict | None]], what: str) -> list:
        from genet import qmp
        try:
            return self._monitor(disk).execute_many(calls)
        except qmp.QmpError as err:
            raise StorageError(f"{what}: {err}") from None

    def create(self, instance: str, disk: dict, index: int) -> dict:
        """The local image of this side (raw: the mirror copies blocks, not a format)."""
        if disk.get("format", "raw") != "raw":
            raise StorageError(f"disk {index} of {instance}: mirrored disks are raw images")
        image = self.path(instance, disk, index)
        if not image.exists():
            image.parent.mkdir(parents=True, exist_ok=True)
            run(["qemu-img", "create", "-q", "-f", "raw", str(image), f"{int(disk['size'])}M"],
                f"creating disk {index} of {instance}")
        return {"path": str(image), "size": disk["size"], "uuid": disk["uuid"]}

    # --- roles ------------------------------------------------------------------

    def assemble(self, instance: str, disk: dict, index: int, role: str, force: bool = False) -> dict:
        """``force`` changes nothing: the master checks the sync state before it moves roles."""
        if role not in ("primary", "secondary"):
            raise StorageError(f"unknown role {role!r} for disk {index} of {instance}")
        self._sides(disk)
        state = self._state(disk)
        if state is not None and state["role"] != role:
            self.shutdown(instance, disk, index)
            state = None
        if state is None:
            image = self.path(instance, disk, index)
            if not image.exists():
                raise StorageError(f"disk {index} of {instance} is missing ({image})")
            self._start(instance, disk, index, role, image, self.run_dir(disk))
        if role == "primary":
            if not self.params.get(self.PEER_DOWN):
                self._ensure_mirror(instance, disk, index)
            return self.access(instance, disk, index)
        return {"role": "secondary"}

    def access(self, instance: str, disk: dict, index: int) -> dict:
        """How a guest opens this disk: the primary daemon's NBD unix socket."""
        sock = self.nbd_socket(disk)
        if not sock.exists():
            raise StorageError(f"disk {index} of {instance} is not assembled as primary on {paths.node_name()}")
        return DiskAccess.of(disk, nbd_socket=str(sock), export=EXPORT)

    def offline_access(self, instance: str, disk: dict, index: int) -> dict:
        """The local image for OS scripts, with this side's daemon stopped: what they write
        reaches the other side through the full copy of the next assembly."""
        self.shutdown(instance, disk, index)
        image = self.path(instance, disk, index)
        if not image.exists():
            raise StorageError(f"disk {index} of {instance} is missing ({image})")
        return DiskAccess.of(disk, path=str(image))

    def _start(self, instance: str, disk: dict, index: int, role: str, image: Path, run: Path) -> None:
        """A daemon in ``run`` serving the image as ``role``: a secondary exports it over NBD
        with TLS; a primary exports it to the guest (the mirror comes with _ensure_mirror).
        The guest's export exists before any mirror job, so the job's filter moves it above itself."""
        import logging          # (here, as subprocess: every gnt-* command that checks a template name loads this module)
        import subprocess
        run.mkdir(parents=True, exist_ok=True)
        for leftover in ("qmp.sock", "daemon.pid"):
            (run / leftover).unlink(missing_ok=True)
        creds = replication_creds()
        lid = disk["logical_id"]
        mine, _ = self._sides(disk)
        tls = f"tls-creds-x509,id=tls0,dir={creds}," + \
            ("endpoint=server,verify-peer=on" if role == "secondary" else "endpoint=client")
        argv = ["qemu-storage-daemon", "--object", tls,
                "--blockdev", f"driver=file,node-name=local,filename={_escape(image)},aio=threads",
                # sockets relative to the run directory (the daemon's cwd): sun_path holds 107 bytes
                "--chardev", "socket,id=qmp,path=qmp.sock,server=on,wait=off",
                "--monitor", "chardev=qmp",
                "--daemonize", "--pidfile", str(run / "daemon.pid")]
        if role == "secondary":
            argv += ["--nbd-server", f"addr.type=inet,addr.host={lid['addresses'][mine]},addr.port={lid['port']},"
                                     "tls-creds=tls0",
                     "--export", f"type=nbd,id=replica,node-name=local,name={EXPORT},writable=on,writethrough=on"]
        else:
            SOCKET_DIR.mkdir(mode=0o700, exist_ok=True)
            self.nbd_socket(disk).unlink(missing_ok=True)
            argv += ["--nbd-server", f"addr.type=unix,addr.path={self.nbd_socket(disk)}",
                     "--export", f"type=nbd,id=guest,node-name=local,name={EXPORT},writable=on"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT, cwd=run)
        if proc.returncode != 0:
            raise StorageError(f"disk {index} of {instance}: the storage daemon did not start as {role}:"
                               f" {proc.stderr.strip() or proc.stdout.strip()}")
        pid = int((run / "daemon.pid").read_text().split()[0])
        (run / "state.json").write_text(json.dumps({"role": role, "pid": pid, "instance": instance, "index": index}))
        logging.getLogger(__name__).info("disk %d of %s: storage daemon started as %s (pid %d)", index, instance,
                                         role, pid)

    def _ensure_mirror(self, instance: str, disk: dict, index: int, sync: str = "full") -> bool:
        """Connect to the secondary and mirror to it; False (degraded) when it cannot be reached.

        ``sync`` "none" when both images are known to be identical (a live migration's switch-over).
        """
        what = f"disk {index} of {instance}"
        jobs = self._qmp(disk, [("query-block-jobs", None)], what)[0]
        if any(job["device"] == JOB for job in jobs):
            return True
        from genet import ssl_utils
        lid = disk["logical_id"]
        _, peer = self._sides(disk)
        calls: list[tuple[str, dict | None]] = []
        if "remote" not in self._node_names(disk, what):
            calls.append(("blockdev-add", {"driver": "nbd", "node-name": "remote", "export": EXPORT,
                                           "server": {"type": "inet", "host": lid["addresses"][peer],
                                                      "port": str(lid["port"])},
                                           "tls-creds": "tls0", "tls-hostname": ssl_utils.REPLICATION_CN,
                                           "reconnect-delay": 5}))
        calls.append(("blockdev-mirror", {"job-id": JOB, "device": "local", "target": "remote", "sync": sync,
                                          "copy-mode": "write-blocking", "on-target-error": "stop",
                                          # 1 MiB chunks, 64 MiB in flight: the initial copy ran at
                                          # 148 MiB/s with QEMU's defaults, 255 MiB/s so (loopback, TLS)
                                          "granularity": 1 << 20, "buf-size": 64 << 20,
                                          "filter-node-name": FILTER}))
        try:
            self._qmp(disk, calls, what)
        except StorageError:
            self._export_guest(disk, "local", what)
            return False
        self._export_guest(disk, FILTER, what)
        return True

    def _export_guest(self, disk: dict, node: str, what: str) -> None:
        """The guest's export on ``node``. One that existed before the mirror job was moved above
        its filter by QEMU; one added below a running job would let writes bypass the mirror, so
        that is checked, not assumed."""
        exports = {e["id"]: e for e in self._qmp(disk, [("query-block-exports", None)], what)[0]}
        if "guest" not in exports:
            self._qmp(disk, [("block-export-add", {"type": "nbd", "id": "guest", "node-name": node,
                                                   "name": EXPORT, "writable": True})], what)
        elif exports["guest"]["node-name"] != node:
            raise StorageError(f"{what}: the guest's export sits on {exports['guest']['node-name']},"
                               f" not on {node}")

    def resync(self, instance: str, disk: dict, index: int) -> str:
        """After the secondary came back: resume the paused mirror once its connection recovers
        (only what changed while it was away moves), otherwise start a new one (a full copy;
        QEMU 7.2 cannot restart a mirror from a dirty bitmap). Returns "resumed", "started",
        "syncing" or "in sync"."""
        what = f"disk {index} of {instance}"
        job = self._job(disk, what)
        if job is not None and job["io-status"] == "ok" and not job["paused"]:
            return "in sync" if job["ready"] else "syncing"
        unreachable = StorageError(f"{what}: the secondary ({disk['logical_id']['nodes'][self._sides(disk)[1]]})"
                                   " cannot be reached; the disk stays degraded")
        if job is not None:
            if not self._secondary_listens(disk):
                raise unreachable             # the paused job stays, to resume once it is back
            if self._resume(disk, what):
                return "resumed"
            self._stop_mirror(disk, what)     # it listens, but the old connection is gone for good
        if not self._ensure_mirror(instance, disk, index):
            raise unreachable
        return "started"

    def _secondary_listens(self, disk: dict) -> bool:
        """Whether the secondary's NBD server accepts a TCP connection now."""
        lid = disk["logical_id"]
        try:
            with socket.create_connection((lid["addresses"][self._sides(disk)[1]], lid["port"]), timeout=3):
                return True
        except OSError:
            return False

    def _resume(self, disk: dict, what: str) -> bool:
        """Resume the paused mirror job until it keeps running: QEMU's NBD client reconnects in
        the background with a backoff of up to 16 s, and until it has, the job's writes to the
        secondary fail at once and pause it again. False if it never held within RESUME_WINDOW."""
        deadline = time.monotonic() + RESUME_WINDOW
        while time.monotonic() < deadline:
            job = self._job(disk, what)
            if job is None:
                return False
            if job["paused"]:
                self._qmp(disk, [("block-job-resume", {"device": JOB})], what)
            held = time.monotonic() + RESUME_HOLD
            while True:
                job = self._job(disk, what)
                if job is None:
                    return False
                if job["paused"] or job["io-status"] != "ok":
                    break                     # the connection is not back yet
                if time.monotonic() > held:
                    return True
                time.sleep(0.05)
            time.sleep(RESUME_RETRY)
        return False

    def retarget(self, instance: str, disk: dict, index: int) -> str:
        """Mirror to the secondary ``disk["logical_id"]`` names now (replace-disks): a full copy."""
        what = f"disk {index} of {instance}"
        if self._job(disk, what) is not None:
            self._stop_mirror(disk, what)
        elif "remote" in self._node_names(disk, what):
            self._qmp(disk, [("blockdev-del", {"node-name": "remote"})], what)
        if not self._ensure_mirror(instance, disk, index):
            raise StorageError(f"{what}: the new secondary cannot be reached")
        return "started"

    def _stop_mirror(self, disk: dict, what: str) -> None:
        """End the mirror (QEMU moves the guest's export back onto the local image) and drop
        the connection to the secondary."""
        self._qmp(disk, [("block-job-cancel", {"device": JOB, "force": True})], what)
        deadline = time.monotonic() + STOP_WAIT
        while self._job(disk, what) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        self._qmp(disk, [("blockdev-del", {"node-name": "remote"})], what)

    def _node_names(self, disk: dict, what: str) -> set[str]:
        return {n["node-name"] for n in self._qmp(disk, [("query-named-block-nodes", {"flat": True})], what)[0]}

    def _job(self, disk: dict, what: str) -> dict | None:
        jobs = self._qmp(disk, [("query-block-jobs", None)], what)[0]
        return next((j for j in jobs if j["device"] == JOB), None)

    @classmethod
    def synced_primaries(cls) -> set[str]:
        """Scanned from the daemons running here (no config needed: any node can answer): an
        instance counts once each of its primary disks has a READY mirror job whose connection
        to the secondary is up."""
        from genet import qmp
        verdict: dict[str, bool] = {}
        for state_file in (paths.run_dir() / "mirror").glob("*/state.json"):
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                continue
            if state.get("role") != "primary" or not isinstance(state.get("pid"), int) or not _alive(state["pid"]):
                continue
            try:
                jobs = qmp.Monitor(state_file.parent / "qmp.sock", "mirror").execute_many([("query-block-jobs", None)])[0]
            except qmp.QmpError:
                jobs = []
            job = next((j for j in jobs if j["device"] == JOB), None)
            synced = job is not None and job["ready"] and not job["paused"] and job["io-status"] == "ok"
            verdict[state["instance"]] = verdict.get(state["instance"], True) and synced
        return {name for name, synced in verdict.items() if synced}

    def status(self, instance: str, disk: dict, index: int) -> dict:
        state = self._state(disk)
        out = {"role": state["role"] if state else None, "connected": False, "local_ok": True,
               "sync_percent": None, "estimated_time": None, "state": "degraded"}
        if state is None or state["role"] == "secondary":
            out["connected"] = state is not None
            out["state"] = "in sync" if state is not None else "stale"
            return out
        jobs = [j for j in self._qmp(disk, [("query-block-jobs", None)], f"disk {index} of {instance}")[0]
                if j["device"] == JOB]
        if not jobs:
            return out
        job = jobs[0]
        out["connected"] = job["io-status"] == "ok" and not job["paused"]
        if not out["connected"]:
            return out
        if job["ready"]:
            out["state"] = "in sync"
        else:
            out["state"] = "syncing"
            out["sync_percent"] = round(100.0 * job["offset"] / job["len"], 1) if job["len"] else 0.0
        return out

    def shutdown(self, instance: str, disk: dict, index: int) -> None:
        self._stop_daemon(self._next_dir(disk))
        self._stop_daemon(self.run_dir(disk))
        self.nbd_socket(disk).unlink(missing_ok=True)

    def _stop_daemon(self, run: Path, sig: int = signal.SIGTERM) -> None:
        state = self._state({}, run)
        if state is not None:
            try:
                os.kill(state["pid"], sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while _alive(state["pid"]) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(state["pid"]):
                os.kill(state["pid"], signal.SIGKILL)
        for name in ("state.json", "qmp.sock", "daemon.pid"):
            (run / name).unlink(missing_ok=True)
        try:
            run.rmdir()
        except OSError:
            pass

    # --- live migration -----------------------------------------------------------
    # Both images are identical while the source's write-blocking mirror is in sync. Before
    # the memory moves, each node starts a second daemon on the same image in the role it
    # takes at switch-over (QEMU's image locks allow it: neither takes exclusive rights):
    # the target a primary, which the incoming guest connects to but does not write through
    # until it resumes, the source a secondary on its replication address. At switch-over
    # (the source guest stopped, its mirror still in sync, the target guest held paused)
    # the target's old secondary stops and its new primary mirrors to the source with
    # sync "none": nothing to copy, every later write goes to both.

    def migration_prepare(self, instance: str, disk: dict, index: int, role: str) -> dict:
        state = self._state(disk)
        expected = "secondary" if role == "target" else "primary"
        if state is None or state["role"] != expected:
            raise StorageError(f"disk {index} of {instance} is not assembled as {expected} on"
                               f" {paths.node_name()}")
        nxt = self._next_dir(disk)
        self._stop_daemon(nxt)                   # a leftover of an earlier attempt
        new_role = "primary" if role == "target" else "secondary"
        self._start(instance, disk, index, new_role, self.path(instance, disk, index), nxt)
        return self.access(instance, disk, index) if role == "target" else {"role": "secondary"}

    def migration_switch(self, instance: str, disk: dict, index: int, role: str) -> str:
        """Retire this side's old daemon for the prepared one; on the target, start mirroring."""
        nxt, run = self._next_dir(disk), self.run_dir(disk)
        if self._state(disk, nxt) is None:
            raise StorageError(f"disk {index} of {instance}: no prepared daemon on {paths.node_name()}")
        # the source's primary: its guest is gone and every write it took is in the image, but
        # its mirror waits to reconnect to the target's retired secondary, which a SIGTERM would
        # wait for (5 s)
        self._stop_daemon(run, signal.SIGKILL if role == "source" else signal.SIGTERM)
        nxt.rename(run)
        if role != "target":
            self.nbd_socket(disk).unlink(missing_ok=True)      # the old primary's
            return "secondary"
        return "in sync" if self._ensure_mirror(instance, disk, index, sync="none") else "degraded"

    def migration_abort(self, instance: str, disk: dict, index: int) -> None:
        self._stop_daemon(self._next_dir(disk))

    def unmirror(self, instance: str, disk: dict, index: int) -> None:
        """The image is where the file template keeps it: only the daemons go."""
        self.shutdown(instance, disk, index)

    def grow(self, instance: str, disk: dict, index: int, new_size: int) -> None:
        """Grow this side's image; grow the secondary first. A running secondary daemon is
        restarted on the grown image; a primary's mirror is stopped, the image grown and a full
        copy started (QEMU 7.2 cannot carry a mirror over a resize). The guest sees the new
        size after its next boot, when it connects anew."""
        state = self._state(disk)
        if state is None:
            super().grow(instance, disk, index, new_size)
            return
        if state["role"] == "secondary":
            self._stop_daemon(self.run_dir(disk))
            super().grow(instance, disk, index, new_size)
            self._start(instance, disk, index, "secondary", self.path(instance, disk, index), self.run_dir(disk))
            return
        what = f"disk {index} of {instance}"
        if self._job(disk, what) is not None:
            self._stop_mirror(disk, what)
        elif "remote" in self._node_names(disk, what):
            self._qmp(disk, [("blockdev-del", {"node-name": "remote"})], what)
        # the guest's export forbids resizing, and keeps the size it was made with anyway: it
        # goes and comes back (a connected guest reconnects by itself, a new one sees the size)
        self._qmp(disk, [("block-export-del", {"id": "guest", "mode": "hard"})], what)
        deadline = time.monotonic() + STOP_WAIT
        while any(e["id"] == "guest" for e in self._qmp(disk, [("query-block-exports", None)], what)[0]):
            if time.monotonic() > deadline:
                raise StorageError(f"{what}: the guest's export did not close")
            time.sleep(0.02)
        self._qmp(disk, [("block_resize", {"node-name": "local", "size": int(new_size) << 20})], what)
        self._ensure_mirror(instance, disk, index)

    def remove(self, instance: str, disk: dict, index: int) -> None:
        self.shutdown(instance, disk, index)
        super().remove(instance, disk, index)


def _escape(path: Path) -> str:
    """QEMU's option syntax doubles commas."""
    return str(path).replace(",", ",,")
