"""What the kernel says about a device, in the same words for 8.4 (/proc/drbd) and 9 (drbdsetup
status --json), and the mirrored template's status made of it."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from genet.storage.base import StorageError


# replication states in which a resync is under way or being set up
SYNC_STATES_DRBD = ("SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT", "StartingSyncS",
                    "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID")
# the short states of the handshake itself, before DRBD settles on no sync or a resync
HANDSHAKING = ("StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID")
# 8.4 connection states in which the node is (re)trying to reach its peer
TRYING_84 = ("Disconnecting", "Unconnected", "Timeout", "BrokenPipe", "NetworkFailure", "ProtocolError",
             "WFConnection", "WFReportParams", "TearDown")


@dataclass(frozen=True)
class DrbdState:
    """What the kernel says about one local device, in the same words for 8.4 and 9."""
    role: str                         # Primary / Secondary
    peer_role: str                    # Primary / Secondary / Unknown
    connection: str                   # StandAlone / Connecting / Connected
    replication: str                  # Off / Established / SyncSource / SyncTarget / ...
    disk: str                         # UpToDate / Inconsistent / Outdated / Consistent / Diskless / ...
    peer_disk: str                    # the same, DUnknown when not connected
    sync_percent: float | None = None
    eta: int | None = None            # seconds
    size_kib: int | None = None       # DRBD 9 only
    peer_name: str | None = None      # DRBD 9 only: the connection's name (genet: the peer node)


def parse_proc_drbd(text: str) -> dict[int, DrbdState]:
    """/proc/drbd of DRBD 8.4: minor → state (unconfigured minors are left out)."""
    states: dict[int, DrbdState] = {}
    minor: int | None = None
    fields: dict = {}

    def flush() -> None:
        if minor is not None and fields:
            states[minor] = DrbdState(**fields)

    for line in text.splitlines():
        head = re.match(r"^\s*(\d+): cs:(\S+)(?: ro:(\S+)/(\S+) ds:(\S+)/(\S+))?", line)
        if head:
            flush()
            minor, fields = int(head.group(1)), {}
            cs = head.group(2)
            if cs == "Unconfigured":
                continue
            if cs == "StandAlone":
                connection, replication = "StandAlone", "Off"
            elif cs in TRYING_84:
                connection, replication = "Connecting", "Off"
            elif cs == "Connected":
                connection, replication = "Connected", "Established"
            else:
                connection, replication = "Connected", cs
            fields = {"role": head.group(3) or "Secondary", "peer_role": head.group(4) or "Unknown",
                      "connection": connection, "replication": replication,
                      "disk": head.group(5) or "Diskless", "peer_disk": head.group(6) or "DUnknown"}
            continue
        if not fields:
            continue
        synced = re.search(r"sync'ed:\s*([\d.]+)%", line)
        if synced:
            fields["sync_percent"] = float(synced.group(1))
        finish = re.search(r"finish: (\d+):(\d+):(\d+)", line)
        if finish:
            h, m, s = (int(x) for x in finish.groups())
            fields["eta"] = h * 3600 + m * 60 + s
    flush()
    return states


def parse_status_json(text: str, name: str) -> DrbdState | None:
    """``drbdsetup status NAME --json`` of DRBD 9; None when the resource is not there."""
    try:
        resources = json.loads(text or "[]")
    except json.JSONDecodeError as err:
        raise StorageError(f"drbdsetup status for {name} is not JSON: {err}") from None
    res = next((r for r in resources if r.get("name") == name), None)
    if res is None:
        return None
    device = (res.get("devices") or [{}])[0]
    conns = res.get("connections") or []
    conn = conns[0] if conns else {}
    peer_dev = (conn.get("peer_devices") or [{}])[0]
    cstate = conn.get("connection-state", "StandAlone") if conn else "StandAlone"
    connection = cstate if cstate in ("StandAlone", "Connected") else "Connecting"
    replication = peer_dev.get("replication-state", "Off") if connection == "Connected" else "Off"
    percent = eta = None
    if replication in SYNC_STATES_DRBD:
        if "percent-resync-done" in peer_dev:
            percent = float(peer_dev["percent-resync-done"])
        elif "percent-in-sync" in peer_dev:
            percent = float(peer_dev["percent-in-sync"])
        seconds = peer_dev.get("estimated-seconds-to-finish")
        if seconds is not None and 0 <= seconds < 987654321:     # drbdsetup's "unknown"
            eta = int(seconds)
    return DrbdState(role=res.get("role", "Unknown"), peer_role=conn.get("peer-role", "Unknown"),
                     connection=connection, replication=replication, disk=device.get("disk-state", "Diskless"),
                     peer_disk=peer_dev.get("peer-disk-state", "DUnknown"), sync_percent=percent, eta=eta,
                     size_kib=device.get("size"), peer_name=conn.get("name") if conn else None)


def sync_status(state: DrbdState | None) -> dict:
    """The MirroredTemplate status dict for one side (state None: not assembled here)."""
    if state is None:
        return {"role": None, "connected": False, "local_ok": False, "sync_percent": None,
                "estimated_time": None, "state": "degraded", "assembled": False, "disk_state": None,
                "peer_disk_state": None, "connection": None, "replication": None, "peer_role": None}
    syncing = state.replication in SYNC_STATES_DRBD
    local_ok = state.disk == "UpToDate"
    connected = state.connection == "Connected"
    if syncing:
        summary = "syncing"
    elif local_ok and connected and state.peer_disk == "UpToDate":
        summary = "in sync"
    elif local_ok or state.disk == "Consistent":      # current as far as anyone knows
        summary = "degraded"
    else:
        summary = "stale"
    percent = state.sync_percent if syncing else None
    if syncing and percent is None:
        percent = 0.0
    return {"role": state.role.lower(), "connected": connected, "local_ok": local_ok,
            "sync_percent": percent, "estimated_time": state.eta if syncing else None, "state": summary,
            "assembled": True, "disk_state": state.disk, "peer_disk_state": state.peer_disk,
            "connection": state.connection, "replication": state.replication,
            "peer_role": state.peer_role.lower()}
