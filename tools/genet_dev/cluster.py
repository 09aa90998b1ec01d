"""A dev cluster's record and state, its nodes' environment, sshd and daemons, and its teardown."""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from genet import netguard
from genet_dev.netns import (CLUSTER_FILE, Failure, PRIVSEP_DIR, SSHD, STATE_FILE, SYSTEM_PATH, UsageError,
                             check_address, in_netns_argv, indented, ip, kill_netns_processes, link_exists, log,
                             mounts_below, name_patterns, netns_inode, netns_list, pid_alive, pid_cmdline, read_json,
                             read_pid, root_links, run, tag_for, write_json)


# ---------------------------------------------------------------- the cluster

class Cluster:
    """cluster.json of one directory, plus its derived names."""

    def __init__(self, directory: Path, doc: dict):
        self.dir = directory
        self.doc = doc

    @classmethod
    def load(cls, directory: Path) -> "Cluster":
        doc = read_json(directory / CLUSTER_FILE)
        if doc is None:
            raise Failure(f"no dev cluster in {directory} (no {CLUSTER_FILE})")
        check_tag(directory, doc)
        for node in doc.get("nodes", []):
            check_address(node["ip"])
        return cls(directory, doc)

    @property
    def tag(self) -> str:
        return self.doc["tag"]

    def node(self, name: str) -> dict:
        for node in self.doc["nodes"]:
            if node["name"] == name:
                return node
        raise UsageError(f"no node {name!r} in {self.dir} (nodes: "
                         + ", ".join(n["name"] for n in self.doc["nodes"]) + ")")

    def save(self) -> None:
        write_json(self.dir / CLUSTER_FILE, self.doc)


def check_tag(directory: Path, doc: dict) -> None:
    tag = tag_for(directory)
    if doc.get("tag") != tag:
        raise UsageError(f"{directory} holds a dev cluster of another tag "
                         f"({doc.get('tag')!r}, this directory's is {tag!r}); it was made "
                         "for another directory: refusing to touch it")


class State:
    """devcluster-state.json: what exists, written as soon as each thing is created."""

    def __init__(self, directory: Path, doc: dict):
        self.dir = directory
        self.doc = doc

    @classmethod
    def new(cls, directory: Path, tag: str, subnet: str) -> "State":
        state = cls(directory, {"dir": str(directory), "tag": tag, "subnet": subnet,
                                "bridge": None, "netns": [], "links": [], "pids": {}})
        state.save()
        return state

    def add(self, key: str, value: str) -> None:
        if value not in self.doc[key]:
            self.doc[key].append(value)
        self.save()

    def set_pid(self, node: str, daemon: str, pid: int | None) -> None:
        self.doc["pids"].setdefault(node, {})
        if pid:
            self.doc["pids"][node][daemon] = pid
        else:
            self.doc["pids"][node].pop(daemon, None)
        self.save()

    def save(self) -> None:
        if self.dir.is_dir():
            write_json(self.dir / STATE_FILE, self.doc)


def load_state(directory: Path) -> State | None:
    doc = read_json(directory / STATE_FILE)
    if doc is None:
        return None
    check_tag(directory, doc)
    return State(directory, doc)


def node_env(directory: Path, i: int, bindir: Path) -> dict[str, str]:
    return {"GENET_ROOT": str(directory / f"node{i}" / "root"),
            "GENET_HOSTNAME": f"node{i}",
            "GENET_HOSTS": str(directory / "hosts"),
            "GENET_SSH_KEY": str(directory / "id_ed25519"),
            "GENET_SSH_KNOWN_HOSTS": str(directory / "known_hosts"),
            "PATH": f"{bindir}:{SYSTEM_PATH}"}


def process_env(env: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its GENET_* variables, plus the node's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GENET_")}
    base.update(env)
    return base


def sshd_config(directory: Path, i: int, address: str, env: dict[str, str]) -> str:
    ndir = directory / f"node{i}"
    # SHLVL=1: bash then counts itself as a nested shell and does not source ~/.bashrc
    # for the SSH command (a user's ~/.bashrc may put other python/gnt-* first on PATH).
    setenv = " ".join([*(f"{k}={v}" for k, v in env.items()), "SHLVL=1"])
    return "\n".join([
        f"# dev-cluster: sshd of node{i} of {directory}",
        f"ListenAddress {address}:22",
        f"HostKey {ndir / 'ssh_host_ed25519_key'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "StrictModes no",
        "UsePAM no",
        f"PidFile {ndir / 'sshd.pid'}",
        f"SetEnv {setenv}",
        "Subsystem sftp internal-sftp",
        "",
    ])


def sshd_pid(directory: Path, name: str) -> int | None:
    """The pid of node ``name``'s sshd if it runs (checked against its command line)."""
    pid = read_pid(directory / name / "sshd.pid")
    if pid and pid_alive(pid) and str(directory / name / "sshd_config") in pid_cmdline(pid):
        return pid
    return None


def start_sshd(directory: Path, name: str, netns: str, timeout: float = 10.0) -> int:
    ndir = directory / name
    (ndir / "sshd.pid").unlink(missing_ok=True)
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    # nsenter --net, not `ip netns exec`: the latter gives sshd a private mount namespace,
    # and everything started over SSH (noded during gnt-node add) would inherit it, unlike
    # what `exec` and `restart` start; FUSE mounts must be visible alike on all of them.
    run(in_netns_argv(netns, [SSHD, "-f", str(ndir / "sshd_config"),
                              "-E", str(ndir / "sshd.log")]), timeout=30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = sshd_pid(directory, name)
        if pid:
            return pid
        time.sleep(0.02)
    try:
        tail = "\n".join((ndir / "sshd.log").read_text().splitlines()[-15:])
    except OSError:
        tail = "(no log)"
    raise Failure(f"sshd of {name} did not start within {timeout:.0f}s; "
                  f"{ndir / 'sshd.log'}:\n{indented(tail)}")


def daemon_pids(root: Path) -> dict[str, int]:
    """genet daemons with a live pid file under a node's state root."""
    found = {}
    for pidfile in sorted((root / "var/run/genet").glob("*.pid")):
        pid = read_pid(pidfile)
        if pid and pid_alive(pid):
            found[pidfile.stem] = pid
    return found


def node_pids(directory: Path, node: dict) -> dict[str, int]:
    pids = {}
    sshd = sshd_pid(directory, node["name"])
    if sshd:
        pids["sshd"] = sshd
    pids.update(daemon_pids(Path(node["root"])))
    return pids


def live_netns(tag: str) -> list[str]:
    pattern = name_patterns(tag)["netns"]
    return [n for n in netns_list() if pattern.match(n) and netns_inode(n) is not None]


def run_in_node(node: dict, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    exe = shutil.which(argv[0], path=node["env"]["PATH"])
    bindir = node["env"]["PATH"].split(":", 1)[0]
    if exe is None:
        raise Failure(f"{argv[0]} is not on {node['name']}'s PATH ({node['env']['PATH']}): "
                      "is genet installed in that environment?")
    if os.path.dirname(exe) != bindir:
        raise Failure(f"{argv[0]} resolves to {exe}, not to genet's in {bindir} "
                      "(Ganeti's own gnt-* live in /usr/sbin); install genet there or "
                      "pass --bin-dir")
    log(f"{node['name']}: {shlex.join(argv)}")
    proc = run(in_netns_argv(node["netns"], argv), check=False,
               env=process_env(node["env"]), timeout=timeout)
    out = (proc.stdout + proc.stderr).rstrip()
    if proc.returncode != 0:
        raise Failure(f"on {node['name']}: `{shlex.join(argv)}` failed with exit code "
                      f"{proc.returncode}; its output:\n{indented(out)}")
    if out:
        print(indented(out), file=sys.stderr, flush=True)
    return proc


# ---------------------------------------------------------------- teardown

def sweep_nbd_sockets(directory: Path) -> list[str]:
    """The guests' NBD sockets of the nodes' mirror disks live outside the cluster directory
    (/run/genet-nbd, short paths); a killed node leaves them behind."""
    from genet.storage.mirror import nbd_socket_for
    done = []
    for run_dir in sorted(directory.glob("*/root/var/run/genet/mirror/*")):
        sock = nbd_socket_for(run_dir)
        if sock.exists():
            sock.unlink()
            done.append(f"removed {sock}")
    return done


def teardown(directory: Path, tag: str) -> list[str]:
    """Removes everything of the cluster of ``directory``; idempotent. Returns what it did."""
    done: list[str] = []
    patterns = name_patterns(tag)
    state = load_state(directory) if directory.is_dir() else None
    cluster = read_json(directory / CLUSTER_FILE) if directory.is_dir() else None
    if cluster is not None:
        check_tag(directory, cluster)

    namespaces = set(live_netns(tag))
    if state:
        namespaces.update(state.doc.get("netns", []))
    if cluster:
        namespaces.update(n["netns"] for n in cluster.get("nodes", []))
    namespaces.update(n for n in netns_list() if patterns["netns"].match(n))
    problems = []
    for ns in sorted(n for n in namespaces if patterns["netns"].match(n)):
        try:
            count = kill_netns_processes(ns)
        except Failure as err:
            problems.append(str(err))
            count = 0
        if ns in netns_list():
            proc = ip("netns", "delete", ns, check=False)
            if proc.returncode != 0:
                problems.append(f"ip netns delete {ns}: {(proc.stdout + proc.stderr).strip()}")
            else:
                done.append(f"deleted namespace {ns} ({count} processes killed)")

    # sshds by pid (they lived in the namespaces, so normally they are gone already)
    pid_sources = []
    if state:
        pid_sources.append(state.doc.get("pids", {}))
    if cluster:
        pid_sources.append(cluster.get("pids", {}))
    for source in pid_sources:
        for node, pids in source.items():
            pid = pids.get("sshd")
            if pid and pid_alive(pid) and str(directory / node / "sshd_config") in \
                    pid_cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                done.append(f"killed sshd {pid} of {node}")

    links = {n for n in root_links() if patterns["link"].match(n)}
    if state:
        links.update(n for n in state.doc.get("links", []) if patterns["link"].match(n))
        if state.doc.get("bridge") and patterns["link"].match(state.doc["bridge"]):
            links.add(state.doc["bridge"])
    # veths first, the bridge last
    for link in sorted(links, key=lambda n: n.startswith(netguard.BRIDGE_PREFIX)):
        if link_exists(link):
            proc = ip("link", "delete", link, check=False)
            if proc.returncode != 0 and link_exists(link):
                problems.append(f"ip link delete {link}: {(proc.stdout + proc.stderr).strip()}")
            else:
                done.append(f"deleted link {link}")

    if directory.exists():
        ours = (directory / STATE_FILE).exists() or (directory / CLUSTER_FILE).exists() \
            or not any(directory.iterdir())
        if not ours:
            problems.append(f"{directory} is not a dev-cluster directory: not removing it")
        else:
            for point in mounts_below(directory):
                run(["umount", "-l", point], check=False)
                done.append(f"unmounted {point}")
            done += sweep_nbd_sockets(directory)
            shutil.rmtree(directory, ignore_errors=True)
            if directory.exists():
                problems.append(f"could not remove {directory} completely")
            else:
                done.append(f"removed {directory}")
    if problems:
        raise Failure("stop left things behind:\n" + "\n".join(f"  - {p}" for p in problems))
    return done
