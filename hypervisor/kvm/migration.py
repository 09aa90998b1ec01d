"""Outgoing live migration over QMP, and QEMU's migration states mapped onto genet's.

The target side is a cold start with ``-incoming`` (see backend.accept_incoming).
The guest resumes on the target by itself when the stream completes (no ``-S``):
the source is then in runstate postmigrate and cannot run again, so there is no
moment where both could run, and the guest's downtime does not wait for the
master's next poll.
"""
from __future__ import annotations

import ipaddress
import time

from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import validation
from genet.hypervisor.kvm.monitor import Monitor

MiB = 1024 * 1024

# QEMU MigrationStatus → genet's five states (base.Hypervisor.migration_status)
_STATUS = {
    "none": "none", "completed": "completed", "failed": "failed", "cancelled": "cancelled",
    "setup": "active", "active": "active", "device": "active", "pre-switchover": "active",
    "wait-unplug": "active", "cancelling": "active", "colo": "active",
    "postcopy-active": "active", "postcopy-paused": "active", "postcopy-recover": "active",
}


def tcp_uri(address: str, port: int) -> str:
    try:
        v6 = ipaddress.ip_address(address).version == 6
    except ValueError:
        v6 = False                                   # a host name
    return f"tcp:[{address}]:{port}" if v6 else f"tcp:{address}:{port}"


def capabilities(caps: str, state: bool) -> dict:
    """migrate-set-capabilities arguments for migration_caps (``xbzrle:auto-converge``)."""
    return {"capabilities": [{"capability": c, "state": state} for c in validation.migration_caps(caps)]}


def set_capabilities(mon: Monitor, caps: str, state: bool) -> None:
    """Turn migration_caps on (both sides, before the stream) or off again (after it)."""
    if caps:
        mon.execute("migrate-set-capabilities", capabilities(caps, state))


def start(mon: Monitor, address: str, port: int, live: bool, bandwidth_mib: int, downtime_ms: int,
          caps: str = "") -> None:
    """Set the limits and capabilities, then start sending. A non-live migration pauses the guest first."""
    calls: list[tuple[str, dict | None]] = []
    if not live:
        calls.append(("stop", None))
    if caps:
        calls.append(("migrate-set-capabilities", capabilities(caps, True)))
    calls.append(("migrate-set-parameters", {"max-bandwidth": bandwidth_mib * MiB,
                                             "downtime-limit": downtime_ms}))
    calls.append(("migrate", {"uri": tcp_uri(address, port)}))
    mon.execute_many(calls)


POSTCOPY_AFTER_SYNCS = 2     # as Ganeti: switch to postcopy once RAM was sent twice


def status(mon: Monitor, caps: str = "") -> dict:
    """The migration's state; with postcopy-ram among ``caps``, an active migration that has
    gone over the RAM twice is switched to postcopy (the guest then runs on the target)."""
    q = mon.execute("query-migrate")
    ram = q.get("ram", {})
    if ("postcopy-ram" in validation.migration_caps(caps) and q.get("status") == "active"
            and ram.get("dirty-sync-count", 0) >= POSTCOPY_AFTER_SYNCS):
        mon.execute("migrate-start-postcopy")
    return {
        "status": _STATUS.get(q.get("status", "none"), "active"),
        "qemu_status": q.get("status", "none"),
        "ram_total": ram.get("total", 0),
        "ram_remaining": ram.get("remaining", 0),
        "ram_transferred": ram.get("transferred", 0),
        "mbps": ram.get("mbps", 0.0),
        "total_time_ms": q.get("total-time", 0),
        "downtime_ms": q.get("downtime", q.get("expected-downtime", 0)),
        "error": q.get("error-desc", ""),
    }


def cancel(mon: Monitor) -> None:
    mon.execute("migrate_cancel")


# --- local disks: mirrored to the target over NBD while the memory follows ---
# The target QEMU (started with -incoming) exports its fresh, empty disks over NBD; the
# source mirrors each disk there in write-blocking mode, so once the job is ready every
# write the guest sees completed is on both sides, and the memory migration then ends
# with identical disks. No kernel module is involved.

MIRROR_READY_TIMEOUT = 3600.0


def export_disks(mon: Monitor, address: str, port: int, count: int) -> None:
    """On the target: serve disk0..diskN-1 writable over NBD on address:port."""
    mon.execute("nbd-server-start", {"addr": {"type": "inet", "data": {"host": address, "port": str(port)}}})
    for n in range(count):
        mon.execute("block-export-add", {"type": "nbd", "id": f"mig-export{n}", "node-name": f"disk{n}",
                                         "name": f"disk{n}", "writable": True})


def unexport_disks(mon: Monitor, count: int) -> None:
    """On the target, once the guest runs there (or the migration failed)."""
    for n in range(count):
        try:
            mon.execute("block-export-del", {"id": f"mig-export{n}", "mode": "hard"})
        except HypervisorError:    # already gone
            pass
    try:
        mon.execute("nbd-server-stop")
    except HypervisorError:    # not running any more
        pass


def mirror_disks(mon: Monitor, address: str, port: int, count: int, wait=time.sleep) -> None:
    """On the source: mirror every disk to the target's NBD export; returns once all are in sync."""
    for n in range(count):
        mon.execute("blockdev-add", {"driver": "nbd", "node-name": f"mig-target{n}", "export": f"disk{n}",
                                     "server": {"type": "inet", "host": address, "port": str(port)}})
        mon.execute("blockdev-mirror", {"job-id": f"mig-mirror{n}", "device": f"disk{n}",
                                        "target": f"mig-target{n}", "sync": "full",
                                        "copy-mode": "write-blocking"})
    started = time.monotonic()
    while True:
        jobs = {j["device"]: j for j in mon.execute("query-block-jobs")}
        mine = [jobs.get(f"mig-mirror{n}") for n in range(count)]
        if any(job is None for job in mine):
            raise MirrorError("a disk mirror to the target stopped")
        if all(job["ready"] for job in mine):
            return
        if time.monotonic() - started > MIRROR_READY_TIMEOUT:
            raise MirrorError("the disks did not reach the target in time")
        wait(0.1)


def cancel_mirrors(mon: Monitor, count: int) -> None:
    """On the source after a failure: stop the mirrors and drop the NBD clients."""
    for n in range(count):
        for cmd, args in (("block-job-cancel", {"device": f"mig-mirror{n}", "force": True}),
                          ("blockdev-del", {"node-name": f"mig-target{n}"})):
            try:
                mon.execute(cmd, args)
            except HypervisorError:    # the job or node is gone already
                pass


class MirrorError(Exception):
    """Mirroring the local disks to the target failed."""
