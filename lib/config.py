"""The cluster configuration: one document (genet.objects.ConfigData) with a ``serial_no``.

This module holds what reads or builds the document; genet.config_file stores it (a snapshot
and a journal of changes), genet.config_writer owns it in masterd: every change bumps the
serial, is stored locally and then sent to the master candidates, and counts as done once a
majority of the online candidates (the master included) hold it.
"""
from __future__ import annotations

import os
import threading
import time
import uuid as uuidlib
from pathlib import Path

from genet import config_file, paths, serializer
from genet.opcodes.parameters import DEFAULT_BEPARAMS
from genet.objects import ConfigData

CONFIG_VERSION = 1
DEFAULT_NODED_PORT = 1811
# the ssconf files: Ganeti's (with its names and formats, which its tools read) and genet's
# noded_port; one hvparams_HYPERVISOR file per hypervisor
SSCONF_KEYS = ("cluster_name", "cluster_tags", "file_storage_dir", "shared_file_storage_dir", "gluster_storage_dir",
               "master_candidates", "master_candidates_ips", "master_candidates_certs", "master_ip",
               "master_netdev", "master_netmask", "master_node", "node_list", "node_primary_ips",
               "node_secondary_ips", "node_vm_capable", "offline_nodes", "online_nodes", "primary_ip_family",
               "instance_list", "release_version", "hypervisor_list", "maintain_node_health", "uid_pool",
               "nodegroups", "networks", "enabled_user_shutdown", "ssh_ports", "noded_port")
SSCONF_HVPARAMS = "hvparams_"


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
        "filters": {},
    }
    data = ConfigData.from_wire(data)
    add_node(data, master_node, master_ip, master_candidate=True)
    return data


def add_node(data: dict, name: str, primary_ip: str, secondary_ip: str | None = None,
             master_candidate: bool = False, master_capable: bool = True,
             vm_capable: bool = True, group: str | None = None) -> dict:
    ts = now()
    group_uuid = group or next(iter(data.nodegroups))
    node = {
        "name": name, "uuid": str(uuidlib.uuid4()),
        "primary_ip": primary_ip, "secondary_ip": secondary_ip or primary_ip,
        "master_candidate": master_candidate, "offline": False, "drained": False,
        "master_capable": master_capable, "vm_capable": vm_capable,
        "group": group_uuid, "tags": [], "ctime": ts, "mtime": ts, "serial_no": 1,
    }
    data.nodes[name] = node
    return node


def storage_params(data: dict) -> dict:
    """What a node needs to find the disks of any template: the settings the templates read."""
    from genet.storage import base as storage
    cluster = data.cluster
    return {name: cluster.get(name, default) for name, default in storage.settings().items()}


def node_role(data: dict, node: dict) -> str:
    """Ganeti's one-word role: master, candidate, regular, drained or offline."""
    if node["name"] == data.cluster["master_node"]:
        return "master"
    if node["offline"]:
        return "offline"
    if node["drained"]:
        return "drained"
    return "candidate" if node["master_candidate"] else "regular"


def candidates(data: dict, online_only: bool = True) -> list[str]:
    return sorted(n["name"] for n in data.nodes.values()
                  if n["master_candidate"] and not (online_only and n["offline"]))


def maintain_candidates(data: dict, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Promote capable nodes (not ``exclude``) until the pool is full; returns the names promoted."""
    wanted = data.cluster["candidate_pool_size"]
    have = len(candidates(data))
    promoted = []
    for node in sorted(data.nodes.values(), key=lambda n: n["name"]):
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
    return int(data.cluster.get("master_epoch", 0))


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
    """The small files every node keeps so it knows the cluster without the config: Ganeti's
    (lists one item a line; "NAME ADDRESS", "NAME=VALUE", "UUID NAME" where Ganeti has them)."""
    from genet import __version__, params
    from genet.uidpool import format_pool
    cluster = data.cluster
    nodes = sorted(data.nodes.values(), key=lambda n: n["name"])
    candidate_nodes = [n for n in nodes if n["master_candidate"] and not n["offline"]]
    storage = storage_params(data)
    lines = "\n".join
    values = {
        "cluster_name": cluster["cluster_name"], "cluster_tags": lines(sorted(cluster["tags"])),
        "file_storage_dir": storage["file_storage_dir"], "shared_file_storage_dir": storage["shared_file_storage_dir"],
        "gluster_storage_dir": "",
        "master_candidates": lines(n["name"] for n in candidate_nodes),
        "master_candidates_ips": lines(n["primary_ip"] for n in candidate_nodes),
        # Ganeti's candidates each have a certificate of their own; genet's share the cluster's
        "master_candidates_certs": "",
        "master_ip": cluster["master_ip"], "master_netdev": cluster["master_netdev"],
        "master_netmask": str(cluster["master_netmask"]),
        "master_node": cluster["master_node"], "noded_port": str(cluster["noded_port"]),
        "node_list": lines(n["name"] for n in nodes),
        "node_primary_ips": lines(f"{n['name']} {n['primary_ip']}" for n in nodes),
        "node_secondary_ips": lines(f"{n['name']} {n['secondary_ip']}" for n in nodes),
        "node_vm_capable": lines(f"{n['name']}={n['vm_capable']}" for n in nodes),
        "offline_nodes": lines(n["name"] for n in nodes if n["offline"]),
        "online_nodes": lines(n["name"] for n in nodes if not n["offline"]),
        "primary_ip_family": "10" if ":" in cluster["master_ip"] else "2",
        "instance_list": lines(sorted(data.instances)), "release_version": __version__,
        "hypervisor_list": lines(cluster["enabled_hypervisors"]),
        "maintain_node_health": str(cluster.maintain_node_health), "uid_pool": format_pool(cluster.uid_pool, "\n"),
        "enabled_user_shutdown": str(cluster.enabled_user_shutdown),
        "nodegroups": lines(sorted(f"{g['uuid']} {g['name']}" for g in data.nodegroups.values())),
        "networks": lines(sorted(f"{n['uuid']} {n['name']}" for n in data.get("networks", {}).values())),
        "ssh_ports": lines(f"{n['name']}={params.ndparams(data, data.nodegroups.get(n['group'], {}), n.get('ndparams', {}))['ssh_port']}"
                           for n in nodes),
    }
    for hv in cluster["enabled_hypervisors"]:
        values[SSCONF_HVPARAMS + hv] = lines(f"{k}={v}" for k, v in
                                             sorted(params.filled_hvparams(data, {"hypervisor": hv, "os": ""}).items()))
    return values


def is_ssconf_key(key: str) -> bool:
    return key in SSCONF_KEYS or key.startswith(SSCONF_HVPARAMS) and key[len(SSCONF_HVPARAMS):].isidentifier()


def ssconf_value(key: str) -> str | None:
    """One ssconf file's value; None when this node has not got it."""
    try:
        return paths.ssconf_file(key).read_text().rstrip("\n")
    except OSError:
        return None


def read_ssconf() -> dict[str, str]:
    """The ssconf files of this node, by key."""
    values = {}
    prefix = paths.ssconf_file("").name
    for path in ssconf_files():
        try:
            values[path.name[len(prefix):]] = path.read_text().rstrip("\n")
        except OSError:
            pass
    return values


def ssconf_files() -> list[Path]:
    """The ssconf files this node holds (what leaving the cluster removes)."""
    return sorted(paths.data_dir().glob(paths.ssconf_file("*").name))


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
    return serializer.dumps(data)


def parse(text: bytes | str, source: str = "config") -> ConfigData:
    """Parse and check a config document; ConfigurationError says what is wrong."""
    return config_file.parse(text, source)


def load(path: Path) -> ConfigData:
    """The config stored at ``path``: its snapshot with the journal's changes applied."""
    return config_file.ConfigFile(path).load()
