"""This node's etcd member: how it is started, stopped, and added to or removed from the cluster.

Every master candidate runs one member (Debian's etcd-server, /usr/bin/etcd) on its primary IP,
clients on CLIENT_PORT and peers on PEER_PORT, its data in ROOT/var/lib/genet/etcd/member. Both
ports speak TLS only and require a client certificate signed by the cluster key: each member
presents a leaf certificate it issues itself from the cluster certificate (etcd, written in Go,
checks that a server's certificate names the address it was dialled at, which the cluster
certificate does not) and trusts the cluster certificate as its CA.

Membership follows etcd's runtime reconfiguration: a new member is announced to the running
cluster first (add_member, as a learner, which counts for no quorum until it caught up and
promote_member made it a voter), then started with State.EXISTING and the member list that
announcement returned. A member that was removed must start again from an empty data dir."""
from __future__ import annotations

import dataclasses
import enum
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Mapping

import etcd3gw

from genet import daemon_util, errors, paths, ssl_utils
from genet.config import write_atomic
from genet.ha.etcd import unavailable_on_error

CLIENT_PORT = 2379     # etcd's registered ports
PEER_PORT = 2380
# Raft timing, etcd's defaults, for a LAN: the leader sends a heartbeat every HEARTBEAT_MS (a few
# round trips); a follower that heard none for ELECTION_MS (10 heartbeats, etcd's advice) starts
# an election. The election timeout also sets the shortest lease etcd grants, 1.5 times it
# rounded up to whole seconds (2 s), and how much longer every lease lives when the etcd leader
# changes (etcd 3.4 then renews them all to their full TTL).
HEARTBEAT_MS = 100
ELECTION_MS = 1000
ETCD = "etcd"
DAEMON = "genet-etcd"       # the name of its pid file and log file
LEAF_CN = "genet-etcd"
LEAF_DAYS = 365             # a new leaf is issued at every start
PROMOTE_NOT_READY = "can only promote a learner member which is in sync with leader"


class State(enum.Enum):
    """etcd's --initial-cluster-state; read only when the data dir is empty."""
    NEW = "new"             # members of a new cluster, all named in the initial cluster
    EXISTING = "existing"   # a member announced to a running cluster by add_member


@dataclasses.dataclass(frozen=True)
class Member:
    """One member: named after its node, reached at the node's primary IP."""
    name: str
    ip: str
    client_port: int = CLIENT_PORT
    peer_port: int = PEER_PORT

    @property
    def peer_url(self) -> str:
        return f"https://{_host(self.ip)}:{self.peer_port}"

    @property
    def client_url(self) -> str:
        return f"https://{_host(self.ip)}:{self.client_port}"


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def data_dir() -> Path:
    return paths.etcd_dir() / "member"


def tls_files() -> tuple[Path, Path]:
    """(the member's key and leaf certificate, the CA file) of this node."""
    return paths.etcd_dir() / "tls/member.pem", paths.etcd_dir() / "tls/ca.pem"


def write_tls(member: Member) -> tuple[Path, Path]:
    """A fresh leaf for ``member``'s address, and the CA file: every cluster certificate this
    node trusts (a renewal's staged and previous one too), without their keys, which etcd would
    read as certificates."""
    cluster = paths.cluster_cert()
    key_pem, leaf_pem = ssl_utils.sign_leaf(cluster, LEAF_CN, LEAF_DAYS, ips=(member.ip,))
    leaf, ca = tls_files()
    leaf.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(leaf, key_pem + leaf_pem, mode=0o600)
    write_atomic(ca, ssl_utils.ca_certificates(ssl_utils.trusted(cluster)))
    return leaf, ca


def initial_cluster(members: list[Member]) -> dict[str, str]:
    """The members of a new cluster as --initial-cluster takes them: name → peer URL."""
    return {m.name: m.peer_url for m in members}


def argv(member: Member, initial: Mapping[str, str], state: State, token: str) -> list[str]:
    """etcd's command line for ``member`` of the cluster ``token`` (the cluster's name, so that
    two clusters on one network never take each other's members)."""
    leaf, ca = tls_files()
    return [
        ETCD, "--name", member.name, "--data-dir", str(data_dir()),
        "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
        "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
        "--initial-cluster", ",".join(f"{name}={url}" for name, url in initial.items()),
        "--initial-cluster-state", state.value, "--initial-cluster-token", token,
        "--cert-file", str(leaf), "--key-file", str(leaf), "--trusted-ca-file", str(ca), "--client-cert-auth",
        "--peer-cert-file", str(leaf), "--peer-key-file", str(leaf), "--peer-trusted-ca-file", str(ca),
        "--peer-client-cert-auth",
        # a peer may connect from another of its node's addresses (the master IP): the trust is
        # the cluster key, so the peer's address is not looked for in its certificate
        "--experimental-peer-skip-client-san-verification",
        "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS),
        # a member back from a partition asks before it campaigns, instead of forcing an election
        # with its raised term: otherwise every heal costs the store its leader, and the master
        # the renewals of its lease for that long (etcd 3.4's default is off)
        "--pre-vote",
        "--logger", "zap", "--log-outputs", "stderr",
    ]


def start(member: Member, initial: Mapping[str, str], state: State, token: str, timeout: float = 10.0) -> int:
    """Start this node's member unless it runs already; its pid. Returns once etcd listens,
    not once it serves: a member of a new cluster serves only when a majority of them runs.
    Calling it again is how the member is kept running."""
    pid = daemon_util.pid_of(DAEMON)
    if pid:
        return pid
    write_tls(member)
    data_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.ensure_dirs()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}   # etcd reads ETCD_* as flags
    with open(paths.log_file(DAEMON), "ab") as log:
        proc = subprocess.Popen(argv(member, initial, state, token), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True, close_fds=True)
    write_atomic(paths.pid_file(DAEMON), f"{proc.pid}\n".encode())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            paths.pid_file(DAEMON).unlink(missing_ok=True)
            tail = "\n".join(paths.log_file(DAEMON).read_text(errors="replace").splitlines()[-10:])
            raise errors.CommandError(f"etcd exited with code {proc.returncode} at start:\n{tail}")
        if _listens(member):
            return proc.pid
        time.sleep(0.05)
    proc.kill()
    paths.pid_file(DAEMON).unlink(missing_ok=True)
    raise errors.CommandError(f"etcd did not listen on {member.client_url} within {timeout:.0f}s")


def _listens(member: Member) -> bool:
    """Whether etcd opened its client port (it logs this probe as a "rejected connection")."""
    try:
        socket.create_connection((member.ip, member.client_port), timeout=0.5).close()
    except OSError:
        return False
    return True


def stop() -> bool:
    """Stop this node's member (SIGTERM, then SIGKILL); True if one ran."""
    return daemon_util.stop(DAEMON)


# --- membership, asked of any member that serves ----------------------------------------

def add_member(client: etcd3gw.Etcd3Client, member: Member, learner: bool = True) -> dict[str, str]:
    """Announce ``member`` to the running cluster, before it starts; the --initial-cluster it
    must start with. As a learner (the default) it counts for no quorum until promote_member:
    a member that never starts then cannot stop the cluster."""
    with unavailable_on_error(f"add etcd member {member.name}"):
        reply = client.post(client.get_url("/cluster/member/add"),
                            json={"peerURLs": [member.peer_url], "isLearner": learner})
        return {m.get("name") or member.name: m["peerURLs"][0] for m in reply["members"]}


def promote_member(client: etcd3gw.Etcd3Client, member: Member) -> bool:
    """Make the learner ``member`` a voter; False while it has not caught up with the leader."""
    with unavailable_on_error(f"promote etcd member {member.name}"):
        member_id = _member_id(client, member)
        if member_id is None:
            raise errors.OpExecError(f"etcd has no member {member.name} at {member.peer_url} to promote")
        try:
            client.post(client.get_url("/cluster/member/promote"), json={"ID": member_id})
        except etcd3gw.exceptions.Etcd3Exception as err:
            if PROMOTE_NOT_READY in (err.detail_text or ""):
                return False
            raise
    return True


def remove_member(client: etcd3gw.Etcd3Client, member: Member) -> bool:
    """Take ``member`` out of the cluster (it stops by itself if it runs); False if it was not in."""
    with unavailable_on_error(f"remove etcd member {member.name}"):
        member_id = _member_id(client, member)
        if member_id is None:
            return False
        client.post(client.get_url("/cluster/member/remove"), json={"ID": member_id})
    return True


def members(client: etcd3gw.Etcd3Client) -> list[dict]:
    """etcd's member list: ID, name (empty until the member first started), peerURLs,
    clientURLs, isLearner."""
    with unavailable_on_error("list etcd members"):
        return client.members()


def _member_id(client: etcd3gw.Etcd3Client, member: Member) -> int | None:
    """A member is known by its peer URL: a member added but never started has no name yet."""
    for m in client.members():
        if member.peer_url in m.get("peerURLs", []):
            return int(m["ID"])
    return None
