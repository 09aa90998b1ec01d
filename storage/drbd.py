"""The drbd disk template: each disk mirrored between two nodes by the DRBD kernel module (8.4 or 9).

Every disk has, on each of its two nodes, a data volume of the disk's size and a 128 MiB
volume for DRBD's external meta data (enough for about 4 TiB of data). Where those volumes
come from is a :class:`Backing`: sparse files (optionally on loop devices) or anything that
can make, find, grow and remove a named block device: the plain template's LVM volumes
(:func:`lvm_backing`, the cluster's default: ``<uuid>.disk`` is the same volume a plain disk
has, so converting between plain and drbd keeps the data where it is, and ``<uuid>.meta``).
``disk["logical_id"]`` (made by the master from genet.drbd_pool) names the pair:
``{"nodes": [a, b], "addresses": [ip_a, ip_b], "port": p, "minors": [ma, mb], "secret": s}``;
index *i* of each list belongs to ``nodes[i]``, and in DRBD 9 that index is also the node-id.

genet drives the kernel with drbdsetup and drbdmeta directly, as Ganeti does, so no state of
its own sits between the config and the kernel; the commands are exactly those drbdadm
would run for the resource file genet writes (ROOT/var/lib/genet/drbd/RESOURCE.res, never
/etc/drbd.d), and the unit tests check both against drbd-utils' own parser and its dry run.
That file is for the administrator (``drbdadm -c FILE dump``); genet never reads it back.

Configuration choices (one place: :func:`render_config` and the command builders):

- ``protocol C``: a write completes only once it is on both disks.
- ``cram-hmac-alg sha1`` + ``shared-secret``: a peer that does not know the disk's secret is
  refused (same keywords in 8.4 and 9).
- after split brain, only a side that has no changes is ever discarded automatically:
  ``after-sb-0pri discard-zero-changes`` (no primary: the side without changes becomes the
  sync target), ``after-sb-1pri consensus`` (one primary: the secondary is discarded only if
  it has no changes either), ``after-sb-2pri disconnect``. Anything else stays StandAlone
  until someone decides, as Ganeti issue #846 asks ("never discard a side silently").
- ``fencing resource-only`` (disk section in 8.4, net section in 9) without a fence-peer
  handler: a graceful disconnect marks the secondary Outdated in its meta data, and DRBD
  itself refuses to promote a side while the peer's state is unknown ("Refusing to be
  Primary while peer is not outdated") unless forced; a primary that merely loses its peer
  keeps running degraded. ``dont-care`` would let a stale secondary be promoted silently;
  ``resource-and-stonith`` freezes I/O until a handler answers, and genet's master, not the
  nodes, decides about fencing.
- ``on-io-error detach``: a failing local disk is dropped and I/O continues from the peer.
- ``allow-two-primaries`` is never in the file: migration turns it on for the switch-over
  with ``drbdsetup net-options`` (:meth:`DrbdStorage.set_dual_primary`) and off again after.

Roles: :meth:`DrbdStorage.promote` waits for the connection handshake (during which DRBD
decides which side holds the newer data) and refuses a side whose disk is not UpToDate, a
side whose peer has not been heard from, and a side whose handshake ended StandAlone (split
brain, unrelated data); ``force=True`` (Ganeti's --ignore-consistency) is the only way past.

Status comes from /proc/drbd in 8.4 and from ``drbdsetup status --json`` in 9. Executables,
/dev and /proc come from storage parameters (``drbd_bindir``, ``drbd_dev_dir``,
``drbd_proc``) or the environment (``GENET_DRBD_BINDIR``, ``GENET_DRBD_DEV_DIR``,
``GENET_DRBD_PROC``), so tests run the fake in test/fakes/drbd.
"""
from __future__ import annotations

import abc
import ipaddress
import json
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from genet import paths
from genet.storage.base import MirroredTemplate, StorageError

META_SIZE_MIB = 128
PROTOCOL = "C"
HMAC_ALG = "sha1"
AFTER_SB = (("after-sb-0pri", "discard-zero-changes"), ("after-sb-1pri", "consensus"),
            ("after-sb-2pri", "disconnect"))
FENCING = "resource-only"
ON_IO_ERROR = "detach"
SECRET_MAX = 64                  # DRBD's SHARED_SECRET_MAX
VERSIONS = ("8.4", "9")

# replication states in which a resync is under way or being set up
SYNC_STATES_DRBD = ("SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT", "StartingSyncS",
                    "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID")
# the short states of the handshake itself, before DRBD settles on no sync or a resync
_HANDSHAKING = ("StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID")
# 8.4 connection states in which the node is (re)trying to reach its peer
_TRYING_84 = ("Disconnecting", "Unconnected", "Timeout", "BrokenPipe", "NetworkFailure", "ProtocolError",
              "WFConnection", "WFReportParams", "TearDown")


# --- backing volumes --------------------------------------------------------------

class Backing(abc.ABC):
    """Named block devices on this node: a DRBD disk's data and meta volumes live here."""

    @abc.abstractmethod
    def path(self, name: str) -> str:
        """Where the volume is (or would be) on this node."""

    @abc.abstractmethod
    def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def create(self, name: str, size_mib: int) -> str:
        """Make the volume if missing (an existing one must be at least size_mib); its path."""

    @abc.abstractmethod
    def grow(self, name: str, size_mib: int) -> None:
        """Make the volume at least size_mib large (never shrinks)."""

    @abc.abstractmethod
    def remove(self, name: str) -> None:
        """Remove the volume; a missing one is fine."""

    def device(self, name: str) -> str:
        """The block device to hand to DRBD (activating it if needed)."""
        if not self.exists(name):
            raise StorageError(f"volume {name} does not exist ({self.path(name)})")
        return self.path(name)

    def release(self, name: str) -> None:
        """Undo :meth:`device` (e.g. detach a loop device); the data stays."""


class FileBacking(Backing):
    """Sparse files in one directory; with ``loop=True`` DRBD gets them as loop devices."""

    def __init__(self, directory: Path, loop: bool = False):
        self.directory = Path(directory)
        self.loop = loop

    def path(self, name: str) -> str:
        return str(self.directory / f"{name}.img")

    def exists(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def create(self, name: str, size_mib: int) -> str:
        path = self.path(name)
        if os.path.exists(path):
            have = os.path.getsize(path) // (1024 * 1024)
            if have < size_mib:
                raise StorageError(f"volume {path} exists with {have} MiB, {size_mib} MiB wanted")
            return path
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        return path

    def grow(self, name: str, size_mib: int) -> None:
        path = self.path(name)
        if not os.path.exists(path):
            raise StorageError(f"volume {path} does not exist")
        if os.path.getsize(path) < size_mib * 1024 * 1024:
            os.truncate(path, size_mib * 1024 * 1024)
        for loop in self._loops(path) if self.loop else []:
            _run(["losetup", "--set-capacity", loop], f"refreshing the size of {loop}")

    def remove(self, name: str) -> None:
        self.release(name)
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            pass

    def device(self, name: str) -> str:
        path = super().device(name)
        if not self.loop:
            return path
        loops = self._loops(path)
        if loops:
            return loops[0]
        return _run(["losetup", "--find", "--show", path], f"attaching {path} to a loop device").strip()

    def release(self, name: str) -> None:
        if self.loop:
            for loop in self._loops(self.path(name)):
                _run(["losetup", "--detach", loop], f"detaching {loop}")

    @staticmethod
    def _loops(path: str) -> list[str]:
        if not os.path.exists(path):
            return []
        out = _run(["losetup", "--noheadings", "--output", "NAME", "--associated", path],
                   f"looking up the loop devices of {path}")
        return [line.strip() for line in out.splitlines() if line.strip()]


class CallableBacking(Backing):
    """Volumes made by someone else (e.g. the plain template's LVM code), through callables.

    ``path(name)`` returns the device path (existing or not), ``create(name, size_mib)`` makes
    it, ``grow(name, size_mib)`` and ``remove(name)`` do what they say; ``exists`` defaults to
    checking the path.
    """

    def __init__(self, path: Callable[[str], str], create: Callable[[str, int], object],
                 grow: Callable[[str, int], object], remove: Callable[[str], object],
                 exists: Callable[[str], bool] | None = None):
        self._path, self._create, self._grow, self._remove = path, create, grow, remove
        self._exists = exists

    def path(self, name: str) -> str:
        return str(self._path(name))

    def exists(self, name: str) -> bool:
        return self._exists(name) if self._exists else os.path.exists(self.path(name))

    def create(self, name: str, size_mib: int) -> str:
        if not self.exists(name):
            self._create(name, size_mib)
        return self.path(name)

    def grow(self, name: str, size_mib: int) -> None:
        self._grow(name, size_mib)

    def remove(self, name: str) -> None:
        if self.exists(name):
            self._remove(name)


def lvm_backing(params: dict) -> CallableBacking:
    """The volumes as logical volumes of the cluster's volume group, made by the plain template."""
    from genet.storage.lvm import PlainStorage
    plain = PlainStorage(params)
    vg = plain.volume_group()

    def lv(name: str) -> str:           # volume_names(): "<uuid>_data" / "<uuid>_meta"
        uuid, _, kind = name.rpartition("_")
        return f"{uuid}.disk" if kind == "data" else f"{uuid}.{kind}"

    return CallableBacking(
        path=lambda name: str(plain.dev_dir() / vg / lv(name)),
        create=lambda name, size: plain.create_volume(vg, lv(name), size, f"DRBD volume {lv(name)}"),
        grow=lambda name, size: plain.grow_volume(vg, lv(name), size, f"DRBD volume {lv(name)}"),
        remove=lambda name: plain.remove_volume(vg, lv(name), f"DRBD volume {lv(name)}"),
        exists=lambda name: plain.lv_info(vg, lv(name)) is not None)


# --- one resource ---------------------------------------------------------------

@dataclass(frozen=True)
class Side:
    """One node's half of a resource."""
    node: str
    address: str
    minor: int
    node_id: int            # DRBD 9 node-id: the node's index in the logical_id
    data: str
    meta: str


@dataclass(frozen=True)
class Resource:
    name: str
    port: int
    secret: str
    local: Side
    peer: Side
    owner: str = ""         # "disk N of INSTANCE", for messages and the file's header

    def endpoint(self, side: Side) -> str:
        """drbdsetup's address form: ipv4:A:PORT or ipv6:[A]:PORT."""
        ip = ipaddress.ip_address(side.address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"ipv{ip.version}:{host}:{self.port}"

    def config_address(self, side: Side) -> str:
        ip = ipaddress.ip_address(side.address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"ipv{ip.version} {host}:{self.port}"


def _link(res: Resource) -> tuple:
    """What the connection depends on: a change means disconnecting and connecting anew."""
    return res.peer, res.port, res.secret, res.local.address, res.local.node_id


def resource_name(disk: dict) -> str:
    """Named by the disk's UUID: the same on both nodes, and untouched by renames."""
    return f"genet-{disk['uuid']}"


def volume_names(disk: dict) -> tuple[str, str]:
    return f"{disk['uuid']}_data", f"{disk['uuid']}_meta"


def check_logical_id(lid: object, what: str = "disk") -> dict:
    """The logical_id of a drbd disk, checked; StorageError says what is wrong."""
    if not isinstance(lid, dict):
        raise StorageError(f"{what} has no DRBD logical_id")
    for key in ("nodes", "addresses", "minors", "port", "secret"):
        if key not in lid:
            raise StorageError(f"{what}: logical_id lacks {key!r}")
    nodes, addresses, minors = lid["nodes"], lid["addresses"], lid["minors"]
    if not (len(nodes) == len(addresses) == len(minors) == 2) or nodes[0] == nodes[1]:
        raise StorageError(f"{what}: logical_id needs two different nodes, two addresses and two minors")
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise StorageError(f"{what}: {address!r} is not an IP address") from None
    if not all(isinstance(m, int) and 0 <= m < 1 << 20 for m in minors):
        raise StorageError(f"{what}: DRBD minors must be integers from 0 to 1048575, not {minors}")
    if not isinstance(lid["port"], int) or not 0 < lid["port"] < 65536:
        raise StorageError(f"{what}: {lid['port']!r} is not a TCP port")
    secret = lid["secret"]
    if not isinstance(secret, str) or not 0 < len(secret) <= SECRET_MAX or not re.fullmatch(r"[\x21-\x7e]+", secret) \
            or '"' in secret or "\\" in secret:
        raise StorageError(f"{what}: the shared secret must be 1 to {SECRET_MAX} printable characters"
                           " without blanks, quotes or backslashes")
    return lid


def render_config(res: Resource, version: str) -> str:
    """The resource in drbd.conf syntax for DRBD ``version`` ("8.4" or "9")."""
    if version not in VERSIONS:
        raise StorageError(f"DRBD {version} is not supported (only {', '.join(VERSIONS)})")
    net = [f"protocol {PROTOCOL};", f"cram-hmac-alg {HMAC_ALG};", f'shared-secret "{res.secret}";']
    net += [f"{key} {value};" for key, value in AFTER_SB]
    disk = [f"on-io-error {ON_IO_ERROR};"]
    (net if version == "9" else disk).append(f"fencing {FENCING};")
    lines = [f"# {res.owner or res.name}: written by genet for DRBD {version}; genet does not read it back.",
             "# allow-two-primaries is switched on only during migrations (drbdsetup net-options).",
             f"resource {res.name} {{",
             "  net {", *[f"    {line}" for line in net], "  }",
             "  disk {", *[f"    {line}" for line in disk], "  }"]
    for side in sorted((res.local, res.peer), key=lambda s: s.node_id):
        lines.append(f"  on {side.node} {{")
        if version == "9":
            lines.append(f"    node-id {side.node_id};")
        lines += [f"    device minor {side.minor};", f"    disk {side.data};", f"    meta-disk {side.meta};",
                  f"    address {res.config_address(side)};", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- commands -----------------------------------------------------------------------

class Commands:
    """The drbdsetup/drbdmeta command lines for one DRBD version (what drbdadm would run)."""
    version = ""
    md_format = ""

    def __init__(self, drbdsetup: str = "drbdsetup", drbdmeta: str = "drbdmeta"):
        self.setup, self.meta = drbdsetup, drbdmeta

    def _md(self, res: Resource, *command: str) -> list[str]:
        return [self.meta, str(res.local.minor), self.md_format, res.local.meta, "flex-external", *command]

    def _net_options(self, res: Resource) -> list[str]:
        return [f"--protocol={PROTOCOL}", f"--cram-hmac-alg={HMAC_ALG}", f"--shared-secret={res.secret}",
                *[f"--{key}={value}" for key, value in AFTER_SB]]

    def create_md(self, res: Resource) -> list[str]:
        return self._md(res, "create-md", "--force")

    def wipe_md(self, res: Resource) -> list[str]:
        return self._md(res, "wipe-md", "--force")

    def md_dstate(self, res: Resource) -> list[str]:
        return self._md(res, "dstate")

    def new_resource(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "new-resource", res.name],
                [self.setup, "new-minor", res.name, str(res.local.minor), "0"]]

    def attach(self, res: Resource) -> list[list[str]]:
        return [self._md(res, "apply-al"),
                [self.setup, "attach", str(res.local.minor), res.local.data, res.local.meta, "flexible",
                 *self._disk_options()]]

    def _disk_options(self) -> list[str]:
        return [f"--fencing={FENCING}", f"--on-io-error={ON_IO_ERROR}"]

    def up(self, res: Resource, discard_my_data: bool = False) -> list[list[str]]:
        return [*self.new_resource(res), *self.attach(res), *self.connect(res, discard_my_data)]

    def connect(self, res: Resource, discard_my_data: bool = False) -> list[list[str]]:
        return [[self.setup, "connect", res.name, res.endpoint(res.local), res.endpoint(res.peer),
                 *self._net_options(res), *(["--discard-my-data"] if discard_my_data else [])]]

    def disconnect(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "disconnect", res.endpoint(res.local), res.endpoint(res.peer)]]

    def forget_peer(self, res: Resource) -> list[list[str]]:
        """Drop the peer's configuration (8.4: disconnecting already did)."""
        return []

    def primary(self, res: Resource, force: bool = False) -> list[str]:
        return [self.setup, "primary", str(res.local.minor), *(["--force"] if force else [])]

    def secondary(self, res: Resource) -> list[str]:
        return [self.setup, "secondary", str(res.local.minor)]

    def down(self, res: Resource) -> list[str]:
        return [self.setup, "down", res.name]

    def dual_primary(self, res: Resource, enabled: bool) -> list[str]:
        return [self.setup, "net-options", res.endpoint(res.local), res.endpoint(res.peer),
                f"--allow-two-primaries={'yes' if enabled else 'no'}"]

    def resize(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "resize", str(res.local.minor)], [self.setup, "check-resize", str(res.local.minor)]]


class Commands84(Commands):
    version = "8.4"
    md_format = "v08"


class Commands9(Commands):
    version = "9"
    md_format = "v09"

    def create_md(self, res: Resource) -> list[str]:
        return self._md(res, "create-md", "1", "--force")       # room for one peer

    def new_resource(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "new-resource", res.name, str(res.local.node_id)],
                [self.setup, "new-minor", res.name, str(res.local.minor), "0"]]

    def _disk_options(self) -> list[str]:
        return [f"--on-io-error={ON_IO_ERROR}"]                 # fencing is a net option in 9

    def new_peer(self, res: Resource) -> list[list[str]]:
        peer = str(res.peer.node_id)
        return [[self.setup, "new-peer", res.name, peer, f"--_name={res.peer.node}", f"--fencing={FENCING}",
                 *self._net_options(res)],
                [self.setup, "new-path", res.name, peer, res.endpoint(res.local), res.endpoint(res.peer)]]

    def up(self, res: Resource, discard_my_data: bool = False) -> list[list[str]]:
        return [*self.new_resource(res), *self.new_peer(res), *self.attach(res),
                *self.connect(res, discard_my_data)]

    def connect(self, res: Resource, discard_my_data: bool = False) -> list[list[str]]:
        return [[self.setup, "connect", res.name, str(res.peer.node_id),
                 *(["--discard-my-data"] if discard_my_data else [])]]

    def disconnect(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "disconnect", res.name, str(res.peer.node_id)]]

    def forget_peer(self, res: Resource) -> list[list[str]]:
        return [[self.setup, "del-peer", res.name, str(res.peer.node_id)]]

    def primary(self, res: Resource, force: bool = False) -> list[str]:
        return [self.setup, "primary", res.name, *(["--force"] if force else [])]

    def secondary(self, res: Resource) -> list[str]:
        return [self.setup, "secondary", res.name]

    def dual_primary(self, res: Resource, enabled: bool) -> list[str]:
        return [self.setup, "net-options", res.name, str(res.peer.node_id),
                f"--allow-two-primaries={'yes' if enabled else 'no'}"]

    def status(self, res: Resource) -> list[str]:
        return [self.setup, "status", res.name, "--statistics", "--json"]


def commands(version: str, bindir: str | None = None) -> Commands:
    cls = {"8.4": Commands84, "9": Commands9}.get(version)
    if cls is None:
        raise StorageError(f"DRBD {version} is not supported (only {', '.join(VERSIONS)})")
    if bindir:
        return cls(os.path.join(bindir, "drbdsetup"), os.path.join(bindir, "drbdmeta"))
    return cls()


# --- status ---------------------------------------------------------------------------

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
            elif cs in _TRYING_84:
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


# --- the template --------------------------------------------------------------------

def _run(argv: list[str], what: str) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except OSError as err:
        raise StorageError(f"{what} failed: cannot run {argv[0]}: {err}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip() or f"exit code {proc.returncode}"
        raise StorageError(f"{what} failed: {detail}")
    return proc.stdout


class DrbdStorage(MirroredTemplate):
    """One node's side of a DRBD-mirrored disk.

    Lifecycle per node: create (volumes + meta data) → assemble(secondary|primary) (device
    attached, connected to the peer, role set) ⇄ promote/demote → shutdown (down) → remove
    (meta data wiped, volumes removed). Each step is idempotent. Grow: grow the secondary
    first, then the primary (whose ``grow`` also resizes the DRBD device).
    """
    name = "drbd"
    single_node = "plain"
    in_volume_group = True
    install_assembled = True          # the OS is installed through the device: mirrored as written

    @staticmethod
    def new_logical_id(pool, nodes: list[str], addresses: list[str], owner) -> dict:
        """As MirroredTemplate's, plus a minor per node and a shared secret."""
        return pool.allocate_logical_id(nodes, addresses, owner)

    def ganeti_logical_id(self, instance: str, disk: dict, index: int) -> list:
        lid = disk["logical_id"]
        return [*lid["nodes"], lid["port"], *lid["minors"], lid["secret"]]

    def ganeti_drbd_info(self, primary: str, disk: dict) -> dict | None:
        lid = disk["logical_id"]
        minors = dict(zip(lid["nodes"], lid["minors"]))
        secondary = next(n for n in lid["nodes"] if n != primary)
        return {"primary_node": primary, "primary_minor": minors[primary], "secondary_node": secondary,
                "secondary_minor": minors[secondary], "port": lid["port"], "secret": lid["secret"]}

    def __init__(self, params: dict | None = None):
        super().__init__(params)
        p = self.params
        self.bindir = p.get("drbd_bindir") or os.environ.get("GENET_DRBD_BINDIR") or None
        self.dev_dir = Path(p.get("drbd_dev_dir") or os.environ.get("GENET_DRBD_DEV_DIR") or "/dev")
        self.proc = Path(p.get("drbd_proc") or os.environ.get("GENET_DRBD_PROC") or "/proc/drbd")
        self.conf_dir = Path(p.get("drbd_conf_dir") or paths.data_dir() / "drbd")
        self.connect_timeout = float(p.get("drbd_connect_timeout", 10.0))
        self.poll_interval = float(p.get("drbd_poll_interval", 0.25))
        backing = p.get("drbd_backing")
        if isinstance(backing, Backing):
            self.backing = backing
        elif backing in (None, "file"):
            directory = paths.root() / str(p.get("drbd_file_dir", "srv/genet/drbd-storage")).lstrip("/")
            self.backing = FileBacking(directory, loop=bool(p.get("drbd_file_loop", False)))
        elif backing == "lvm":
            self.backing = lvm_backing(p)
        else:
            raise StorageError(f"unknown DRBD backing {backing!r} (lvm, file, or a Backing object)")
        self._node = p.get("node_name")

    # --- helpers ---------------------------------------------------------------

    @property
    def node(self) -> str:
        return self._node or paths.node_name()

    def version(self) -> str:
        """The loaded module's version family ("8.4" or "9"), from the first line of /proc/drbd."""
        try:
            head = self.proc.read_text().splitlines()[0]
        except (OSError, IndexError):
            raise StorageError(f"the DRBD kernel module is not loaded on {self.node} (no {self.proc})") from None
        found = re.match(r"version: (\d+)\.(\d+)", head)
        if not found:
            raise StorageError(f"cannot read the DRBD version from {self.proc}: {head!r}")
        major, minor = int(found.group(1)), int(found.group(2))
        if (major, minor) == (8, 4):
            return "8.4"
        if major == 9:
            return "9"
        raise StorageError(f"DRBD {major}.{minor} on {self.node} is not supported (8.4 and 9 are)")

    def _cmds(self) -> Commands:
        return commands(self.version(), self.bindir)

    def resource(self, instance: str, disk: dict, index: int) -> Resource:
        """This node's view of the disk's resource (volume paths as they are or would be)."""
        what = f"disk {index} of {instance}"
        lid = check_logical_id(disk.get("logical_id"), what)
        if self.node not in lid["nodes"]:
            raise StorageError(f"{what} is mirrored between {' and '.join(lid['nodes'])}, not on {self.node}")
        if disk.get("format", "raw") != "raw":
            raise StorageError(f"{what}: drbd disks are raw block devices, not {disk['format']}")
        data_name, meta_name = volume_names(disk)
        data, meta = self.backing.path(data_name), self.backing.path(meta_name)
        here = lid["nodes"].index(self.node)
        sides = [Side(lid["nodes"][i], lid["addresses"][i], lid["minors"][i], i, data, meta) for i in (0, 1)]
        return Resource(resource_name(disk), lid["port"], lid["secret"], sides[here], sides[1 - here], what)

    def path(self, instance: str, disk: dict, index: int) -> Path:
        return self.dev_dir / f"drbd{self.resource(instance, disk, index).local.minor}"

    def exists(self, instance: str, disk: dict, index: int) -> bool:
        """The data volume is here (the device only while assembled)."""
        self.resource(instance, disk, index)
        return self.backing.exists(volume_names(disk)[0])

    def _state(self, res: Resource, cmds: Commands) -> DrbdState | None:
        if isinstance(cmds, Commands9):
            proc = subprocess.run(cmds.status(res), capture_output=True, text=True)
            if proc.returncode != 0:
                if "No such resource" in proc.stderr:
                    return None
                raise StorageError(f"{res.owner}: drbdsetup status failed: {proc.stderr.strip()}")
            return parse_status_json(proc.stdout, res.name)
        try:
            text = self.proc.read_text()
        except OSError as err:
            raise StorageError(f"{res.owner}: cannot read {self.proc}: {err}") from None
        return parse_proc_drbd(text).get(res.local.minor)

    def _runs(self, argvs: list[list[str]], what: str) -> None:
        for argv in argvs:
            _run(argv, what)

    def _record(self, res: Resource) -> Path:
        return self.conf_dir / f"{res.name}.json"

    def _write_config(self, res: Resource, version: str) -> None:
        """The .res file for administrators and the record of what genet configured."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for path, text in ((self.conf_dir / f"{res.name}.res", render_config(res, version)),
                           (self._record(res), json.dumps(asdict(res), indent=1))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)

    def _recorded(self, res: Resource) -> Resource | None:
        try:
            data = json.loads(self._record(res).read_text())
            return Resource(**{**data, "local": Side(**data["local"]), "peer": Side(**data["peer"])})
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _local_devices(self, res: Resource, disk: dict) -> Resource:
        data_name, meta_name = volume_names(disk)
        for name in (data_name, meta_name):
            if not self.backing.exists(name):
                raise StorageError(f"{res.owner} has no volume {name} on {self.node}; create the disk first")
        local = replace(res.local, data=self.backing.device(data_name), meta=self.backing.device(meta_name))
        return replace(res, local=local)

    # --- lifecycle -------------------------------------------------------------

    def create(self, instance: str, disk: dict, index: int) -> dict:
        """Make this node's data and meta volumes and DRBD meta data; an existing side is kept."""
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        data_name, meta_name = volume_names(disk)
        existed = self.backing.exists(data_name) and self.backing.exists(meta_name)
        try:
            self.backing.create(data_name, int(disk["size"]))
            self.backing.create(meta_name, META_SIZE_MIB)
        except StorageError as err:
            raise StorageError(f"{res.owner} on {self.node}: {err}") from None
        res = self._local_devices(res, disk)
        if self._state(res, cmds) is None:           # an assembled side has valid meta data
            valid = existed and subprocess.run(cmds.md_dstate(res), capture_output=True).returncode == 0
            if not valid:
                _run(cmds.create_md(res), f"{res.owner}: creating DRBD meta data on {self.node}")
        self._write_config(res, cmds.version)
        return {"path": str(self.dev_dir / f"drbd{res.local.minor}"), "resource": res.name,
                "minor": res.local.minor, "data": res.local.data, "meta": res.local.meta}

    def assemble(self, instance: str, disk: dict, index: int, role: str, force: bool = False,
                 discard_my_data: bool = False) -> dict:
        """Attach this side, connect it to the peer and give it ``role``.

        A side already up is only completed: reattached if it lost its disk, reconnected if
        StandAlone, moved to the new peer if the logical_id names another one (replacing the
        secondary). ``discard_my_data`` resolves a split brain explicitly by making this side
        the sync target of the peer; ``force`` is passed on to :meth:`promote`.
        """
        if role not in ("primary", "secondary"):
            raise StorageError(f"unknown role {role!r} (primary or secondary)")
        if discard_my_data and role == "primary":
            raise StorageError("a side that discards its data cannot be the primary")
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        res = self._local_devices(res, disk)
        previous = self._recorded(res)
        self._write_config(res, cmds.version)
        state = self._state(res, cmds)
        what = f"{res.owner}: assembling on {self.node}"
        if state is None:
            self._runs(cmds.up(res, discard_my_data), what)
        else:
            if state.disk == "Diskless":
                self._runs(cmds.attach(res), what)
            changed = previous is not None and _link(previous) != _link(res)
            if changed or state.connection == "StandAlone" or discard_my_data:
                self._reconnect(previous if changed else res, res, state, cmds, discard_my_data, changed, what)
        if role == "primary":
            self.promote(instance, disk, index, force=force)
            return self.access(instance, disk, index)
        self.demote(instance, disk, index)
        return {"path": str(self.dev_dir / f"drbd{res.local.minor}"), "role": "secondary"}

    def _reconnect(self, old: Resource, new: Resource, state: DrbdState, cmds: Commands, discard: bool,
                   changed: bool, what: str) -> None:
        """Drop the connection ``old`` describes (if up) and connect as ``new`` says."""
        if state.connection != "StandAlone":
            self._runs(cmds.disconnect(old), what)
        if isinstance(cmds, Commands9) and (changed or state.peer_name is None):
            if state.peer_name is not None:                 # DRBD 9 keeps a peer until del-peer
                self._runs(cmds.forget_peer(old), what)
            self._runs(cmds.new_peer(new), what)
        self._runs(cmds.connect(new, discard), what)

    def resync(self, instance: str, disk: dict, index: int) -> str:
        """The primary connects again (or to the peer the logical_id names now); DRBD's
        handshake then resyncs only what its bitmap marked, or everything to a fresh peer."""
        res = self.resource(instance, disk, index)
        self.assemble(instance, disk, index, "primary")
        st = sync_status(self._settled(res, self._cmds()))
        if not st["connected"]:
            raise StorageError(f"{res.owner}: the secondary ({res.peer.node}) cannot be reached; the disk"
                               " stays degraded")
        return st["state"]

    retarget = resync

    def offline_access(self, instance: str, disk: dict, index: int) -> dict:
        """OS scripts write through the primary's DRBD device, like the guest."""
        return self.access(instance, disk, index)

    def shutdown(self, instance: str, disk: dict, index: int) -> None:
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        if self._state(res, cmds) is not None:
            _run(cmds.down(res), f"{res.owner}: shutting DRBD down on {self.node}")
        for name in volume_names(disk):
            self.backing.release(name)

    def status(self, instance: str, disk: dict, index: int) -> dict:
        res = self.resource(instance, disk, index)
        return sync_status(self._state(res, self._cmds()))

    def access(self, instance: str, disk: dict, index: int) -> dict:
        """The device for the hypervisor; only a primary side can be opened."""
        res = self.resource(instance, disk, index)
        state = self._state(res, self._cmds())
        if state is None or state.role != "Primary":
            role = "not assembled" if state is None else f"role {state.role}"
            raise StorageError(f"{res.owner} is not primary on {self.node} ({role}); promote it first")
        return {"path": str(self.dev_dir / f"drbd{res.local.minor}"), "format": "raw",
                "mode": disk.get("mode", "rw"), "size": disk["size"], "uuid": disk["uuid"]}

    def _settled(self, res: Resource, cmds: Commands, primary_done: bool = False) -> DrbdState | None:
        """The state once the handshake with a reachable peer is over (or the wait timed out);
        ``primary_done``: a side that is primary already needs no wait."""
        deadline = time.monotonic() + self.connect_timeout
        state = self._state(res, cmds)
        while (state is not None and time.monotonic() < deadline
               and not (primary_done and state.role == "Primary")
               and (state.connection == "Connecting" or state.replication in _HANDSHAKING)):
            time.sleep(self.poll_interval)
            state = self._state(res, cmds)
        return state

    def promote(self, instance: str, disk: dict, index: int, allow_dual: bool = False, force: bool = False) -> None:
        """Make this side primary. Refused unless its data is known to be the newest:

        - the local disk must be UpToDate (not Outdated, Inconsistent, Consistent, Diskless);
        - the peer must be connected, so the handshake could show whether it is newer
          (a StandAlone side means the handshake failed: split brain or unrelated data);
        - the peer must not be primary, unless ``allow_dual`` (migration), which also turns
          allow-two-primaries on here (the peer must have done the same).

        ``force=True`` skips these checks and forces DRBD (``primary --force``): the data of
        this side wins, possibly against newer data on the peer.
        """
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        state = self._state(res, cmds) if force else self._settled(res, cmds, primary_done=True)
        if state is None:
            raise StorageError(f"{res.owner} is not assembled on {self.node}")
        if state.role == "Primary":
            return
        peer = res.peer.node
        if not force:
            refusal = None
            peer_older = state.peer_disk in ("Outdated", "Inconsistent", "Diskless")   # e.g. outdated by us
            syncing_here = state.disk == "Inconsistent" and state.replication in SYNC_STATES_DRBD
            if state.replication == "SyncTarget" or syncing_here:
                done = f" ({state.sync_percent:.1f}% done)" if state.sync_percent is not None else ""
                refusal = f"{peer} holds newer data and is still syncing it to this side{done}"
            elif state.disk == "Outdated":
                refusal = f"its data is outdated: {peer} was written to after they parted"
            elif state.disk == "Inconsistent":
                refusal = "its data is inconsistent (an initial or interrupted sync)"
            elif state.disk == "Consistent":
                refusal = f"its data is consistent but may be older than {peer}'s, which is not connected"
            elif state.disk != "UpToDate":
                refusal = f"its local disk is {state.disk}"
            elif state.connection == "Connected":
                if state.peer_role == "Primary" and not allow_dual:
                    refusal = f"{peer} is primary and dual-primary was not asked for"
            elif peer_older:
                pass                                   # the peer's copy is known to be behind this one
            elif state.connection == "StandAlone":
                refusal = (f"the handshake with {peer} failed and the connection was dropped (split brain or"
                           " unrelated data); one side has to be discarded explicitly")
            else:
                refusal = (f"{peer} is not connected, so nothing shows whether its copy is newer"
                           f" (waited {self.connect_timeout:g}s for the handshake)")
            if refusal:
                raise StorageError(f"refusing to promote {res.owner} on {self.node}: {refusal}; promote with"
                                   " force (--ignore-consistency) only if this side's data must win")
        if allow_dual and state.connection != "StandAlone":
            self.set_dual_primary(instance, disk, index, True)
        _run(cmds.primary(res, force), f"{res.owner}: promoting on {self.node}")

    def demote(self, instance: str, disk: dict, index: int) -> None:
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        state = self._state(res, cmds)
        if state is None or state.role != "Primary":
            return
        _run(cmds.secondary(res), f"{res.owner}: demoting on {self.node}")

    def set_dual_primary(self, instance: str, disk: dict, index: int, enabled: bool) -> None:
        """Allow (or forbid again) both sides to be primary: both nodes must do it, for a migration."""
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        state = self._state(res, cmds)
        if state is None:
            raise StorageError(f"{res.owner} is not assembled on {self.node}")
        if not enabled and state.role == "Primary" and state.peer_role == "Primary":
            raise StorageError(f"{res.owner} is primary on both {self.node} and {res.peer.node}; demote one"
                               " side before forbidding two primaries")
        _run(cmds.dual_primary(res, enabled),
             f"{res.owner}: {'allowing' if enabled else 'forbidding'} two primaries on {self.node}")

    # --- live migration (storage.base.MirroredTemplate): a dual-primary window, as Ganeti does

    def migration_prepare(self, instance: str, disk: dict, index: int, role: str) -> dict:
        """Both sides allow two primaries (the source first); the target is promoted, with the
        same refusals as any promotion except that the peer may be primary."""
        self.set_dual_primary(instance, disk, index, True)
        if role != "target":
            return {"role": "primary"}
        self.promote(instance, disk, index, allow_dual=True)
        return self.access(instance, disk, index)

    def migration_switch(self, instance: str, disk: dict, index: int, role: str) -> str:
        """The source, once its guest is gone, becomes the secondary and forbids two primaries."""
        if role == "target":
            return self.status(instance, disk, index)["state"]
        self.demote(instance, disk, index)
        self.set_dual_primary(instance, disk, index, False)
        return "secondary"

    def migration_finish(self, instance: str, disk: dict, index: int) -> None:
        self.set_dual_primary(instance, disk, index, False)

    def migration_abort(self, instance: str, disk: dict, index: int) -> None:
        """The target (asked first) steps back while the source is still primary; both forbid
        two primaries again."""
        res = self.resource(instance, disk, index)
        state = self._state(res, self._cmds())
        if state is None:
            return
        if state.role == "Primary" and state.peer_role == "Primary":
            self.demote(instance, disk, index)
        self.set_dual_primary(instance, disk, index, False)

    def grow(self, instance: str, disk: dict, index: int, new_size: int) -> None:
        """Grow this side's data volume; on the primary also the DRBD device (grow the secondary first)."""
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        data_name, _ = volume_names(disk)
        self.backing.grow(data_name, int(new_size))
        state = self._state(res, cmds)
        if state is None or state.role != "Primary":
            return
        self._runs(cmds.resize(res), f"{res.owner}: resizing the DRBD device on {self.node}")
        after = self._state(res, cmds)
        if after is not None and after.size_kib is not None and after.size_kib < int(new_size) * 1024:
            raise StorageError(f"{res.owner} is still {after.size_kib // 1024} MiB after resizing on {self.node}:"
                               f" grow its volume on {res.peer.node} first, then here again")

    def remove(self, instance: str, disk: dict, index: int) -> None:
        """Take the side down, wipe its meta data and remove both volumes."""
        self.unmirror(instance, disk, index)
        self.backing.remove(volume_names(disk)[0])

    def unmirror(self, instance: str, disk: dict, index: int) -> None:
        """Take the side down, wipe its meta data and remove the meta volume; the data volume
        stays, holding the disk as it is (meta data is external), as a plain disk."""
        res = self.resource(instance, disk, index)
        cmds = self._cmds()
        if self._state(res, cmds) is not None:
            _run(cmds.down(res), f"{res.owner}: shutting DRBD down on {self.node}")
        data_name, meta_name = volume_names(disk)
        if self.backing.exists(meta_name):
            local = replace(res.local, meta=self.backing.device(meta_name))
            _run(cmds.wipe_md(replace(res, local=local)), f"{res.owner}: wiping DRBD meta data on {self.node}")
        self.backing.remove(meta_name)
        self.backing.release(data_name)
        for suffix in (".res", ".json"):
            (self.conf_dir / f"{res.name}{suffix}").unlink(missing_ok=True)

    def rename(self, old: str, new: str, disks: list[dict]) -> None:
        """Nothing to do: resources and volumes are named by the disk's UUID."""
