"""The cluster as a RAPI server reports it (hbal -m ADDRESS): genet's, or a Ganeti cluster's.

As Ganeti's Rapi backend: https on port 5080 unless the address says otherwise, anonymous
reads, the cluster's self-signed certificate not checked (it is only read from), the bulk
lists of nodes, instances and groups plus /2/info and the cluster's tags.
"""
from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request

from genet.htools import live
from genet.htools.cluster import ClusterData, Group
from genet.htools.loader import HtoolsError

PORT = 5080
FILE_PREFIX = "file://"     # a directory of saved replies, as Ganeti's backend reads for its tests
SAVED_REPLIES = {"/2/groups?bulk=1": "groups.json", "/2/nodes?bulk=1": "nodes.json",
                 "/2/instances?bulk=1": "instances.json", "/2/info": "info.json"}


def base_url(address: str) -> str:
    """https://ADDRESS:5080 unless the address has a scheme or a port (IPv6 in brackets)."""
    if "://" in address:
        return address.rstrip("/")
    if re.search(r":\d+$", address) and (address.count(":") == 1 or address.startswith("[")):
        return f"https://{address}"
    if address.count(":") > 1 and not address.startswith("["):
        address = f"[{address}]"
    return f"https://{address}:{PORT}"


def _get(base: str, path: str, timeout: float = 60.0):
    if base.startswith(FILE_PREFIX):
        with open(f"{base[len(FILE_PREFIX):]}/{SAVED_REPLIES[path]}", encoding="utf-8") as f:
            return json.load(f)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(base + path, timeout=timeout, context=context) as reply:
            return json.load(reply)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise HtoolsError(f"RAPI request {path} to {base} failed: {err}") from None


def load(address: str) -> ClusterData:
    base = base_url(address)
    group_rows, node_rows, inst_rows, info = (_get(base, path) for path in SAVED_REPLIES)    # Ganeti's order
    groups = [Group(g["name"], g["uuid"], g["alloc_policy"], list(g.get("tags") or []),
                    list(g.get("networks") or []), live.ipolicy(g["ipolicy"]))
              for g in group_rows]
    nodes = []
    for n in node_rows:
        row = {**n, "vm_capable": n.get("vm_capable", True), "ndparams": n.get("ndparams") or {},
               "cnos": n.get("cnos", 1)}
        node = live.node_from_row(row)
        node.master = node.name == info.get("master")
        nodes.append(node)
    insts = []
    for i in inst_rows:
        be = i.get("beparams") or {}
        insts.append(live.instance_from_row({
            **i, "be/maxmem": be.get("maxmem", be.get("memory")), "be/vcpus": be.get("vcpus", 1),
            "be/auto_balance": be.get("auto_balance", True), "be/spindle_use": be.get("spindle_use", 1)}))
    tags = info.get("tags") or [] if base.startswith(FILE_PREFIX) else _get(base, "/2/tags")
    return ClusterData(groups, nodes, insts, list(tags), live.ipolicy(info["ipolicy"]),
                       live.cluster_hypervisor(info))
