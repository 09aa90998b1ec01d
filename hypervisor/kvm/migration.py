"""Outgoing live migration over QMP, and QEMU's migration states mapped onto genet's.

The target side is a cold start with ``-incoming`` (see backend.accept_incoming).
The guest resumes on the target by itself when the stream completes (no ``-S``):
the source is then in runstate postmigrate and cannot run again, so there is no
moment where both could run, and the guest's downtime does not wait for the
master's next poll.
"""
from __future__ import annotations

import ipaddress

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


def start(mon: Monitor, address: str, port: int, live: bool, bandwidth_mib: int, downtime_ms: int) -> None:
    """Set the limits, then start sending. A non-live migration pauses the guest first."""
    calls: list[tuple[str, dict | None]] = []
    if not live:
        calls.append(("stop", None))
    calls.append(("migrate-set-parameters", {"max-bandwidth": bandwidth_mib * MiB,
                                             "downtime-limit": downtime_ms}))
    calls.append(("migrate", {"uri": tcp_uri(address, port)}))
    mon.execute_many(calls)


def status(mon: Monitor) -> dict:
    q = mon.execute("query-migrate")
    ram = q.get("ram", {})
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
