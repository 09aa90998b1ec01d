"""The cluster configuration: one JSON document with a ``serial_no``.

Writes are atomic (temp file, fsync, rename). In masterd a :class:`ConfigWriter`
owns the document; every change bumps the serial, is written locally and then
pushed to the master candidates, and counts as done once a majority of the
online candidates (the master included) hold it.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Callable, TypeVar

from genet import errors, paths

T = TypeVar("T")
log = logging.getLogger(__name__)
CONFIG_VERSION = 1
DEFAULT_NODED_PORT = 1811
DEFAULT_VG_NAME = "xenvg"         # Ganeti's default volume group for plain (LVM) disks
DEFAULT_BEPARAMS = {"maxmem": 128, "minmem": 128, "vcpus": 1, "auto_balance": True}
SSCONF_KEYS = ("cluster_name", "master_node", "master_ip", "node_list", "master_candidates",
               "online_nodes", "noded_port")


def now() -> float:
    return time.time()


def new_cluster(cluster_name: str, master_node: str, master_ip: str,
                noded_port: int = DEFAULT_NODED_PORT, candidate_pool_size: int = 10,
                enabled_hypervisors: list[str] | None = None) -> dict:
    """The config document of a freshly initialised one-node cluster."""
    ts = now()
    group_uuid = str(uuidlib.uuid4())
    data = {
        "version": CONFIG_VERSION,
        "serial_no": 1,
        "ctime": ts,
        "mtime": ts,
        "cluster": {
            "cluster_name": cluster_name,
            "uuid": str(uuidlib.uuid4()),
            "master_node": master_node,
            "master_ip": master_ip,
            "master_epoch": 0,           # raised by every master-failover: see master_epoch()
            "noded_port": noded_port,
            "candidate_pool_size": candidate_pool_size,
            "max_running_jobs": 20,
            "enabled_hypervisors": enabled_hypervisors or ["fake"],
            "modify_etc_hosts": False,
            "mac_prefix": "aa:00:00",
            "file_storage_dir": "srv/genet/file-storage",
            "shared_file_storage_dir": "/srv/genet/shared-file-storage",
            "volume_group_name": DEFAULT_VG_NAME,
            "beparams": dict(DEFAULT_BEPARAMS),
            "hvparams": {},
            "tags": [],
            "ctime": ts,
            "mtime": ts,
        },
        "nodegroups": {group_uuid: {"name": "default", "uuid": group_uuid, "tags": [],
                                    "ctime": ts, "mtime": ts, "serial_no": 1}},
        "nodes": {},
        "instances": {},
        "networks": {},
    }
    add_node(data, master_node, master_ip, master_candidate=True)
    return data


def add_node(data: dict, name: str, primary_ip: str, secondary_ip: str | None = None,
             master_candidate: bool = False, master_capable: bool = True,
             vm_capable: bool = True, group: str | None = None) -> dict:
    ts = now()
    group_uuid = group or next(iter(data["nodegroups"]))
    node = {
        "name": name, "uuid": str(uuidlib.uuid4()),
        "primary_ip": primary_ip, "secondary_ip": secondary_ip or primary_ip,
        "master_candidate": master_candidate, "offline": False, "drained": False,
        "master_capable": master_capable, "vm_capable": vm_capable,
        "group": group_uuid, "tags": [], "ctime": ts, "mtime": ts, "serial_no": 1,
    }
    data["nodes"][name] = node
    return node


def storage_params(data: dict) -> dict:
    """What a node needs to find the disks of any template."""
    cluster = data["cluster"]
    return {"file_storage_dir": cluster.get("file_storage_dir", "srv/genet/file-storage"),
            "shared_file_storage_dir": cluster.get("shared_file_storage_dir", "/srv/genet/shared-file-storage"),
            "volume_group_name": cluster.get("volume_group_name", DEFAULT_VG_NAME),
            "drbd_backing": "lvm"}                  # drbd volumes: LVs beside the plain template's


def node_role(data: dict, node: dict) -> str:
    """Ganeti's one-word role: master, candidate, regular, drained or offline."""
    if node["name"] == data["cluster"]["master_node"]:
        return "master"
    if node["offline"]:
        return "offline"
    if node["drained"]:
        return "drained"
    return "candidate" if node["master_candidate"] else "regular"


def candidates(data: dict, online_only: bool = True) -> list[str]:
    return sorted(n["name"] for n in data["nodes"].values()
                  if n["master_candidate"] and not (online_only and n["offline"]))


def maintain_candidates(data: dict, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Promote capable nodes (not ``exclude``) until the pool is full; returns the names promoted."""
    wanted = data["cluster"]["candidate_pool_size"]
    have = len(candidates(data))
    promoted = []
    for node in sorted(data["nodes"].values(), key=lambda n: n["name"]):
        if have >= wanted:
            break
        if (not node["master_candidate"] and node["master_capable"] and node["name"] not in exclude
                and not node["offline"] and not node["drained"]):
            node["master_candidate"] = True
            promoted.append(node["name"])
            have += 1
    return promoted


def master_epoch(data: dict) -> int:
    """The term of the current master: master-failover raises it and the candidates that
    stored it refuse writes from a master of an older epoch (a deposed one)."""
    return int(data["cluster"].get("master_epoch", 0))


def fenced() -> tuple[int, str | None]:
    """The epoch this node was fenced with by a master-failover and the node that took the
    master role then ((0, None) if never)."""
    try:
        epoch, master = paths.master_epoch_file().read_text().split()
        return int(epoch), master
    except (OSError, ValueError):
        return 0, None


def fence(epoch: int, master: str) -> int:
    """Record ``epoch`` (taken by ``master``) unless a newer one is recorded; returns the newest."""
    current = fenced()[0]
    if epoch > current:
        write_atomic(paths.master_epoch_file(), f"{epoch} {master}\n".encode())
        return epoch
    return current


def ssconf_values(data: dict) -> dict[str, str]:
    """The small files every node keeps so it knows the master without the config."""
    cluster = data["cluster"]
    nodes = sorted(data["nodes"].values(), key=lambda n: n["name"])
    return {
        "cluster_name": cluster["cluster_name"],
        "master_node": cluster["master_node"],
        "master_ip": cluster["master_ip"],
        "noded_port": str(cluster["noded_port"]),
        "node_list": "\n".join(f"{n['name']} {n['primary_ip']}" for n in nodes),
        "master_candidates": "\n".join(candidates(data)),
        "online_nodes": "\n".join(n["name"] for n in nodes if not n["offline"]),
    }


def write_atomic(path: Path, content: bytes, mode: int = 0o640) -> None:
    """Replace ``path`` with ``content`` so readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.rename(tmp, path)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def dumps(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def parse(text: bytes | str, source: str = "config") -> dict:
    """Parse and sanity-check a config document; ConfigurationError says what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise errors.ConfigurationError(f"{source} is corrupt (not valid JSON: {err})") from None
    if not isinstance(data, dict):
        raise errors.ConfigurationError(f"{source} is corrupt: top level is not an object")
    for key, kind in (("serial_no", int), ("cluster", dict), ("nodes", dict),
                      ("nodegroups", dict), ("instances", dict)):
        if not isinstance(data.get(key), kind):
            raise errors.ConfigurationError(f"{source} is corrupt: {key!r} missing or not {kind.__name__}")
    if data.get("version") != CONFIG_VERSION:
        raise errors.ConfigurationError(f"{source} has version {data.get('version')!r}, expected {CONFIG_VERSION}")
    if data["cluster"].get("master_node") not in data["nodes"]:
        raise errors.ConfigurationError(f"{source} is corrupt: master node not among the nodes")
    data.setdefault("networks", {})
    return data


def load(path: Path) -> dict:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise errors.NotClusterError(
            f"no cluster configuration at {path}: this node is not part of a cluster") from None
    except OSError as err:
        raise errors.ConfigurationError(f"cannot read {path}: {err}") from None
    return parse(text, str(path))


Replicator = Callable[[dict, bytes], None]


class ConfigWriter:
    """Owns the configuration in masterd; every change is a serialised, replicated write.

    Mutators change the live document in place (no copy of 10,000 instances per
    change); if one raises, the document is restored from the last written bytes.
    """

    def __init__(self, path: Path, replicate: Replicator | None = None):
        self.path = path
        self._data = load(path)
        self._content = dumps(self._data)
        self._snapshot: dict | None = None
        self._lock = threading.RLock()          # the live document
        self._write_lock = threading.RLock()    # one writer at a time, replication included
        self._replicate = replicate

    def set_replicator(self, replicate: Replicator | None) -> None:
        self._replicate = replicate

    def snapshot(self) -> dict:
        """A private copy of the last written config, shared by readers: do not mutate it."""
        with self._lock:
            if self._snapshot is None:
                self._snapshot = json.loads(self._content)
            return self._snapshot

    def read(self, reader: Callable[[dict], T]) -> T:
        """Run ``reader`` on the live document under the lock (it must not mutate it)."""
        with self._lock:
            return reader(self._data)

    @property
    def serial(self) -> int:
        with self._lock:
            return self._data["serial_no"]

    def content(self) -> bytes:
        with self._lock:
            return self._content

    def update(self, mutator: Callable[[dict], T]) -> T:
        """Apply ``mutator``; on success the change is written and replicated.

        A mutator that raises leaves the config as it was; so does a change the master
        candidates did not acknowledge (it never committed: the master does not keep it).
        """
        with self._write_lock:
            with self._lock:
                previous = self._content
                try:
                    result = mutator(self._data)
                    self._data["serial_no"] += 1
                    self._data["mtime"] = now()
                    content = dumps(self._data)
                    write_atomic(self.path, content)
                except BaseException:
                    self._data = json.loads(self._content)
                    raise
                self._content = content
                self._snapshot = None
            # readers go on while the candidates store it; the next writer waits (serials stay in order)
            if self._replicate is not None:
                try:
                    self._replicate(self._data, content)
                except errors.QuorumError:
                    self._restore(previous, self._data["serial_no"] + 1)
                    raise
                except errors.GenericError:
                    self._restore(previous)
                    raise
            return result

    def _restore(self, previous: bytes, serial: int | None = None) -> None:
        """Go back to the config before a change that did not commit. With ``serial`` (above the
        refused change's) the old content is pushed again, so the minority of candidates that
        stored the refused change replace it: a later master-failover must not find it there as
        the newest config. (A deposed master pushes nothing: the candidates refuse it.)"""
        data = json.loads(previous)
        if serial is not None:
            data["serial_no"], data["mtime"] = serial, now()
            previous = dumps(data)
        with self._lock:
            write_atomic(self.path, previous)
            self._data, self._content, self._snapshot = data, previous, None
        if serial is not None:
            try:
                self._replicate(json.loads(previous), previous)
            except errors.GenericError as err:
                log.warning("config serial %d (the old content again) not committed either: %s", serial, err)
