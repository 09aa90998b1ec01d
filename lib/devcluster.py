"""dev-cluster: an N-node genet test cluster on one machine, made of network namespaces.

Each node is a network namespace ``gnt-<tag>-n<i>`` whose ``eth0`` is one end of a veth
pair; the other end (``gv<tag>n<i>``) sits on a bridge ``gnt-br-<tag>`` in the root
namespace.  The tag is a short hash of the cluster directory, so two clusters in two
directories get distinct names; each gets its own subnet of 203.0.113.0/24, chosen under a
lock so that it overlaps no other cluster and contains no address the machine needs
(package registries, DNS resolvers, the default gateway: see genet.netguard).  Every node
has its own state root (``$GENET_ROOT``), its own sshd on its address, and the environment
that makes genet's commands run "as" that node.

Files in the cluster directory DIR::

    cluster.json            what ``start`` printed: nodes, addresses, env, pids
    devcluster-state.json   everything created so far (written as it is created), for ``stop``
    hosts                   name -> address table (GENET_HOSTS)
    id_ed25519[.pub]        the cluster's SSH key (GENET_SSH_KEY), authorized on every node
    authorized_keys, known_hosts
    nodeI/root              node I's GENET_ROOT
    nodeI/sshd_config, sshd.log, sshd.pid, ssh_host_ed25519_key[.pub]

Exit codes: 0 success, 1 a step failed (its command and output are printed), 2 refused
(bad arguments, foreign or running directory, addresses outside 203.0.113.0/24).
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from genet import netguard
from genet.hypervisor import base as hypervisor_base

TEST_NET = netguard.TEST_NET        # TEST-NET-3: the only range we touch
MAX_NODES = 20
GATEWAY_OFFSET = 1          # bridge address: subnet + 1
TCP_RETRIES2 = 5            # in each node's namespace: a dead TCP peer is given up after ~6-13 s
TCP_SYN_RETRIES = 2         # ... and a connection attempt to it after ~7 s
NODE_OFFSET = 10            # node i: subnet + 10 + i
NETNS_DIR = Path("/var/run/netns")
SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")
LOCK_FILE = Path("/run/lock/genet-devcluster.lock")
CLUSTER_FILE = "cluster.json"
STATE_FILE = "devcluster-state.json"
CLUSTER_NAME = "genet-dev"
GUEST_BRIDGE = "gnt-br0"             # in every node's namespace, for the guests' taps
GUEST_GATEWAY = "10.199.0.1/24"      # the node's address on it (inside its own namespace only)
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
TOOL = Path(__file__).resolve().parent.parent / "tools" / "dev-cluster"
IFF_UP = 0x1
SAFE_DIR = re.compile(r"^/[A-Za-z0-9_./+-]*$")   # must survive sshd_config and shell quoting


class UsageError(Exception):
    """The request is refused (exit code 2)."""


class Failure(Exception):
    """A step failed (exit code 1)."""


def log(message: str) -> None:
    print(f"dev-cluster: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- names and addresses

def tag_for(directory: Path) -> str:
    return hashlib.sha256(str(directory).encode()).hexdigest()[:6]


def bridge_name(tag: str) -> str:
    return f"{netguard.BRIDGE_PREFIX}{tag}"


def netns_name(tag: str, i: int) -> str:
    return f"gnt-{tag}-n{i}"


def veth_name(tag: str, i: int) -> str:
    return f"gv{tag}n{i}"


def peer_name(tag: str, i: int) -> str:
    """Temporary name of the namespace end before it is moved and renamed eth0."""
    return f"gp{tag}n{i}"


def _name_patterns(tag: str) -> dict[str, re.Pattern]:
    return {"netns": re.compile(rf"^gnt-{tag}-n\d+$"),
            "link": re.compile(rf"^(gv{tag}n\d+|gp{tag}n\d+|{bridge_name(tag)})$")}


def check_subnet(text: str, nodes: int) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as err:
        raise UsageError(f"bad --subnet {text!r}: {err}") from None
    if not net.subnet_of(TEST_NET):
        raise UsageError(f"subnet {net} is outside {TEST_NET}: dev-cluster only uses "
                         f"addresses in {TEST_NET} (TEST-NET-3)")
    need = NODE_OFFSET + nodes + 2
    if net.num_addresses < need:
        raise UsageError(f"subnet {net} is too small for {nodes} nodes "
                         f"(gateway .+{GATEWAY_OFFSET}, nodes .+{NODE_OFFSET + 1}.."
                         f".+{NODE_OFFSET + nodes}; need {need} addresses)")
    return net


def check_address(address: str) -> str:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise UsageError(f"bad address {address!r}") from None
    if ip not in TEST_NET:
        raise UsageError(f"address {ip} is outside {TEST_NET}; refusing to use it")
    return str(ip)


def gateway_ip(net: ipaddress.IPv4Network) -> str:
    return str(net.network_address + GATEWAY_OFFSET)


def node_ip(net: ipaddress.IPv4Network, i: int) -> str:
    return str(net.network_address + NODE_OFFSET + i)


def check_dir(text: str) -> Path:
    directory = Path(os.path.abspath(text))
    if not SAFE_DIR.match(str(directory)):
        raise UsageError(f"--dir {str(directory)!r}: use only letters, digits and _ . / + - "
                         "(the path goes into sshd_config and environment values)")
    if directory == Path("/") or len(directory.parts) < 3:
        raise UsageError(f"--dir {directory}: refusing a top-level directory")
    return directory


# ---------------------------------------------------------------- small helpers

def run(argv: list[str], *, check: bool = True, env: dict | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise Failure(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired as err:
        out = _text(err.stdout) + _text(err.stderr)
        raise Failure(f"command timed out after {timeout:.0f}s: {shlex.join(argv)}"
                      + (f"\n{out.rstrip()}" if out.strip() else "")) from None
    if check and proc.returncode != 0:
        raise Failure(f"command failed (exit {proc.returncode}): {shlex.join(argv)}\n"
                      + _indent(proc.stdout + proc.stderr))
    return proc


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _indent(text: str) -> str:
    text = text.rstrip()
    return "\n".join("  | " + line for line in text.splitlines()) if text else "  | (no output)"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["ip", *args], check=check)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise Failure(f"cannot read {path}: {err}") from None


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def global_lock() -> Iterator[None]:
    """Serialises changes to namespaces, links and state files between dev-cluster runs."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- kernel objects

def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def link_is_up(name: str) -> bool | None:
    try:
        return bool(int(Path(f"/sys/class/net/{name}/flags").read_text(), 16) & IFF_UP)
    except (OSError, ValueError):
        return None


def root_links() -> list[str]:
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def netns_list() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except OSError:
        return []


def netns_inode(name: str) -> int | None:
    """Inode of the namespace bound at NETNS_DIR/name, None unless it is a live netns."""
    try:
        st = os.stat(NETNS_DIR / name)
        nsfs = os.stat("/proc/self/ns/net")
    except OSError:
        return None
    if st.st_dev != nsfs.st_dev:     # a plain file left behind, not a mounted namespace
        return None
    return st.st_ino


def pids_in_netns(inode: int) -> list[int]:
    want = f"net:[{inode}]"
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == want and pid_alive(pid):
                found.append(pid)
        except OSError:
            continue
    return found


def kill_netns_processes(name: str, timeout: float = 10.0) -> int:
    """SIGKILL every process in namespace ``name`` until none is left; returns how many."""
    inode = netns_inode(name)
    if inode is None:
        return 0
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        pids = pids_in_netns(inode)
        if not pids:
            return len(killed)
        if time.monotonic() > deadline:
            raise Failure(f"processes survive SIGKILL in {name}: "
                          + ", ".join(f"{p} ({pid_cmdline(p)[:60]})" for p in pids))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.02)


LINK_UP_TIMEOUT = 5.0
BRPORT_FORWARDING = "3"


def set_link(name: str, up: bool) -> None:
    if not link_exists(name):
        raise Failure(f"link {name} does not exist")
    ip("link", "set", name, "up" if up else "down")
    if up:
        wait_forwarding(name)


def wait_forwarding(name: str, timeout: float = LINK_UP_TIMEOUT) -> None:
    """A link set up again carries traffic once it has carrier and its bridge port forwards."""
    sysfs = Path("/sys/class/net") / name
    deadline = time.monotonic() + timeout
    while True:
        try:
            carrier = (sysfs / "operstate").read_text().strip() == "up"
            port = sysfs / "brport/state"
            forwarding = not port.exists() or port.read_text().strip() == BRPORT_FORWARDING
        except OSError:
            carrier = forwarding = False
        if carrier and forwarding:
            return
        if time.monotonic() > deadline:
            raise Failure(f"link {name} does not forward {timeout:.0f} s after it was set up")
        time.sleep(0.05)


def forget_neighbours(cluster: "Cluster") -> None:
    """Drop every node's ARP entries: those that failed while a link was down would answer
    "No route to host" for seconds after it is back, until the kernel probes again."""
    for node in cluster.doc["nodes"]:
        if netns_inode(node["netns"]) is not None:
            run(in_netns_argv(node["netns"], ["ip", "neigh", "flush", "all"]), check=False)


def in_netns_argv(netns: str, argv: list[str]) -> list[str]:
    # nsenter --net keeps the mount namespace (ip netns exec would make a private one)
    return ["nsenter", f"--net={NETNS_DIR / netns}", "--", *argv]


def mounts_below(directory: Path) -> list[str]:
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    prefix = str(directory).rstrip("/") + "/"
    for line in lines:
        point = line.split()[4].encode().decode("unicode_escape")
        if point == str(directory) or point.startswith(prefix):
            found.append(point)
    return sorted(set(found), key=len, reverse=True)


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
                  f"{ndir / 'sshd.log'}:\n{_indent(tail)}")


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
    pattern = _name_patterns(tag)["netns"]
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
                      f"{proc.returncode}; its output:\n{_indent(out)}")
    if out:
        print(_indent(out), file=sys.stderr, flush=True)
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
    patterns = _name_patterns(tag)
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


# ---------------------------------------------------------------- subcommands

def check_prereqs() -> None:
    if os.geteuid() != 0:
        raise Failure("dev-cluster needs root (network namespaces, veths, sshd)")
    for tool in ("ip", "nsenter", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise Failure(f"{tool} is not installed (iproute2, util-linux, openssh-client)")
    if not os.access(SSHD, os.X_OK):
        raise Failure(f"{SSHD} is missing (apt-get install openssh-server)")


def choose_subnet(requested: str | None, nodes: int, tag: str,
                  needed: list[netguard.Needed]) -> ipaddress.IPv4Network:
    """The requested subnet if it keeps clear of what the machine needs and of other clusters,
    else (none requested) the lowest such /27 of TEST-NET-3 (see genet.netguard)."""
    used = netguard.used_networks(ip("-j", "-4", "addr", "show").stdout, ip("-j", "-4", "route", "show").stdout,
                                  skip_links=[bridge_name(tag)])
    if requested is None:
        net = netguard.free_subnet(needed, used)
        if net is None:
            raise UsageError(f"no free /{netguard.SUBNET_PREFIX} in {TEST_NET}: every one holds an address "
                             "this machine needs or overlaps another dev cluster; stop one")
        log(f"subnet {net} (free, and clear of {', '.join(map(str, needed)) or 'nothing resolved'})")
        return check_subnet(str(net), nodes)
    net = check_subnet(requested, nodes)
    problems = netguard.conflicts(net, needed, used)
    if problems:
        raise UsageError(f"subnet {net} refused: " + "; ".join(problems)
                         + ". Leave --subnet out to get a free one")
    return net


def cmd_start(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    if not 1 <= args.nodes <= MAX_NODES:
        raise UsageError(f"--nodes must be between 1 and {MAX_NODES}, not {args.nodes}")
    if args.subnet is not None:
        check_subnet(args.subnet, args.nodes)
    bindir = Path(os.path.abspath(args.bin_dir or os.path.dirname(sys.executable)))
    tag = tag_for(directory)
    check_prereqs()
    needed = netguard.machine_needs(warn=log)      # resolved before the lock: DNS may be slow
    if not args.no_init:
        for command in ("gnt-cluster", "gnt-node"):
            if not os.access(bindir / command, os.X_OK):
                raise Failure(f"genet's {command} is not in {bindir}; run dev-cluster with "
                              "the python of genet's venv, pass --bin-dir, or use --no-init")
    with global_lock():
        existing = read_json(directory / CLUSTER_FILE) if directory.is_dir() else None
        old_state = read_json(directory / STATE_FILE) if directory.is_dir() else None
        for doc in (existing, old_state):
            if doc is not None:
                check_tag(directory, doc)
        running = live_netns(tag)
        if existing is not None and running:
            raise UsageError(f"a dev cluster runs in {directory} (namespaces "
                             f"{', '.join(running)}); run `dev-cluster stop --dir "
                             f"{directory}` first")
        if directory.exists() and not directory.is_dir():
            raise UsageError(f"{directory} exists and is not a directory")
        if directory.is_dir() and any(directory.iterdir()) and existing is None \
                and old_state is None:
            raise UsageError(f"{directory} is not empty and holds no dev cluster; "
                             "refusing to use it (stop would delete it)")
        patterns = _name_patterns(tag)
        leftovers = running or [n for n in root_links() if patterns["link"].match(n)]
        if existing is not None or old_state is not None or leftovers:
            log(f"cleaning up what a previous run left in {directory}")
            teardown(directory, tag)
        net = choose_subnet(args.subnet, args.nodes, tag, needed)

        directory.mkdir(parents=True, exist_ok=True)
        state = State.new(directory, tag, str(net))
        prefix = net.prefixlen
        gateway = gateway_ip(net)
        bridge = bridge_name(tag)
        log(f"bridge {bridge} ({gateway}/{prefix})")
        ip("link", "add", "name", bridge, "type", "bridge")
        state.doc["bridge"] = bridge
        state.save()
        ip("addr", "add", f"{gateway}/{prefix}", "dev", bridge)
        ip("link", "set", bridge, "up")

        nodes = []
        for i in range(1, args.nodes + 1):
            name, ns, veth, peer = f"node{i}", netns_name(tag, i), veth_name(tag, i), \
                peer_name(tag, i)
            address = check_address(node_ip(net, i))
            log(f"{name}: namespace {ns}, {veth} <-> eth0 {address}/{prefix}")
            ip("netns", "add", ns)
            state.add("netns", ns)
            ip("link", "add", veth, "type", "veth", "peer", "name", peer)
            state.add("links", veth)
            ip("link", "set", peer, "netns", ns)
            ip("-n", ns, "link", "set", peer, "name", "eth0")
            ip("-n", ns, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "route", "add", "default", "via", gateway)
            # a peer cut off must fail a blocked TCP write in seconds, not the default ~15 minutes:
            # a mirror's primary then goes on degraded (see man/dev-cluster.rst)
            run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv4.tcp_retries2={TCP_RETRIES2}",
                 f"net.ipv4.tcp_syn_retries={TCP_SYN_RETRIES}"])
            ip("link", "set", veth, "master", bridge)
            ip("link", "set", veth, "up")
            # the bridge guests' taps join (NIC link gnt-br0); each node routes its guests alone
            ip("-n", ns, "link", "add", GUEST_BRIDGE, "type", "bridge")
            ip("-n", ns, "addr", "add", GUEST_GATEWAY, "dev", GUEST_BRIDGE)
            ip("-n", ns, "link", "set", GUEST_BRIDGE, "up")
            root = directory / name / "root"
            (root / "etc/default").mkdir(parents=True, exist_ok=True)
            (root / "etc/default/genet").write_text(
                f'NODED_ARGS="--watcher-interval {args.watcher_interval:g}"\n')
            nodes.append({"name": name, "ip": address, "netns": ns, "veth": veth,
                          "root": str(root), "env": node_env(directory, i, bindir),
                          "state": "up"})

        hosts = [f"# dev-cluster {directory} (tag {tag})"]
        hosts += [f"{n['ip']} {n['name']}" for n in nodes]
        hosts.append(f"{nodes[0]['ip']} {CLUSTER_NAME}   # the cluster name: the master")
        (directory / "hosts").write_text("\n".join(hosts) + "\n")

        key = directory / "id_ed25519"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"dev-cluster-{tag}",
             "-f", str(key)])
        (directory / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
        known = []
        for i, node in enumerate(nodes, 1):
            hostkey = directory / node["name"] / "ssh_host_ed25519_key"
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                 f"{node['name']}-{tag}", "-f", str(hostkey)])
            pub = Path(f"{hostkey}.pub").read_text().split()
            known.append(f"{node['name']},{node['ip']} {pub[0]} {pub[1]}")
            (directory / node["name"] / "sshd_config").write_text(
                sshd_config(directory, i, node["ip"], node["env"]))
        (directory / "known_hosts").write_text("\n".join(known) + "\n")

        pids: dict[str, dict[str, int]] = {}
        for node in nodes:
            pid = start_sshd(directory, node["name"], node["netns"])
            state.set_pid(node["name"], "sshd", pid)
            pids[node["name"]] = {"sshd": pid}
        log(f"{len(nodes)} sshds up")

        cluster = Cluster(directory, {
            "dir": str(directory), "tag": tag, "bridge": bridge, "subnet": str(net),
            "gateway": gateway, "hypervisor": args.hypervisor, "master": "node1",
            "guest_bridge": GUEST_BRIDGE, "guest_gateway": GUEST_GATEWAY,
            "shared_dir": str(directory / "shared"),
            "cluster_name": CLUSTER_NAME, "initialized": False,
            "ssh": {"user": "root", "port": 22, "key": str(key),
                    "known_hosts": str(directory / "known_hosts")},
            "nodes": nodes,
            "exec": f"{TOOL} exec --dir {directory} NODE -- CMD",
            "pids": pids})
        cluster.save()

    if not args.no_init:
        master = nodes[0]
        try:
            (directory / "shared").mkdir(exist_ok=True)
            run_in_node(master, ["gnt-cluster", "init",
                                 f"--enabled-hypervisors={args.hypervisor}",
                                 f"--shared-file-storage-dir={directory / 'shared'}", CLUSTER_NAME],
                        timeout=args.timeout)
            for node in nodes[1:]:
                run_in_node(master, ["gnt-node", "add", "--no-ssh-key-check", node["name"]],
                            timeout=args.timeout)
        except Failure as err:
            raise Failure(f"{err}\nThe nodes' network and sshds stay up for inspection "
                          f"(`{TOOL} exec --dir {directory} node1 -- CMD`); tear down with "
                          f"`{TOOL} stop --dir {directory}`") from None
        cluster.doc["initialized"] = True
        cluster.doc["pids"] = {n["name"]: node_pids(directory, n) for n in nodes}
        cluster.save()
    print(json.dumps(cluster.doc, indent=2))
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("exec needs a command: exec --dir DIR NODE -- CMD...")
    cluster = Cluster.load(directory)
    node = cluster.node(args.node)
    if netns_inode(node["netns"]) is None:
        raise Failure(f"namespace {node['netns']} of {node['name']} does not exist")
    argv = in_netns_argv(node["netns"], command)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, process_env(node["env"]))
    except OSError as err:
        raise Failure(f"cannot run nsenter: {err}") from None
    return 127   # not reached


def cmd_kill_node(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    check_prereqs()
    with global_lock():
        cluster = Cluster.load(directory)
        node = cluster.node(args.node)
        count = kill_netns_processes(node["netns"])
        set_link(node["veth"], up=False)
        node["state"] = "killed"
        cluster.doc["pids"][node["name"]] = {}
        cluster.save()
    log(f"{node['name']}: killed {count} processes in {node['netns']}, link {node['veth']} down")
    return 0


def _set_partition(args: argparse.Namespace, up: bool) -> int:
    directory = check_dir(args.dir)
    check_prereqs()
    with global_lock():
        cluster = Cluster.load(directory)
        node = cluster.node(args.node)
        set_link(node["veth"], up=up)
        if up:
            forget_neighbours(cluster)
        if node.get("state") != "killed":
            node["state"] = "up" if up else "partitioned"
        cluster.save()
    log(f"{node['name']}: link {node['veth']} {'up' if up else 'down'}")
    return 0


def cmd_partition(args: argparse.Namespace) -> int:
    return _set_partition(args, up=False)


def cmd_heal(args: argparse.Namespace) -> int:
    return _set_partition(args, up=True)


def cmd_restart(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    check_prereqs()
    with global_lock():
        cluster = Cluster.load(directory)
        node = cluster.node(args.node)
        if netns_inode(node["netns"]) is None:
            raise Failure(f"namespace {node['netns']} of {node['name']} is gone; "
                          "stop and start the cluster again")
        set_link(node["veth"], up=True)
        forget_neighbours(cluster)
        pid = sshd_pid(directory, node["name"])
        if pid is None:
            pid = start_sshd(directory, node["name"], node["netns"])
            log(f"{node['name']}: sshd started ({pid})")
        state = load_state(directory)
        if state:
            state.set_pid(node["name"], "sshd", pid)
        node["state"] = "up"
        cluster.doc["pids"][node["name"]] = node_pids(directory, node)
        cluster.save()
    if shutil.which("genet-daemon", path=node["env"]["PATH"]) is None:
        raise Failure(f"{node['name']}: link and sshd are up, but genet's daemons were not "
                      f"started: no genet-daemon on the node's PATH ({node['env']['PATH']})")
    run_in_node(node, ["genet-daemon", "start"], timeout=args.timeout)
    with global_lock():
        cluster = Cluster.load(directory)
        cluster.doc["pids"][node["name"]] = node_pids(directory, cluster.node(node["name"]))
        cluster.save()
    log(f"{node['name']}: restarted ({cluster.doc['pids'][node['name']]})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    check_prereqs()
    with global_lock():
        done = teardown(directory, tag_for(directory))
    for line in done:
        log(line)
    if not done:
        log(f"nothing to stop for {directory}")
    return 0


def node_status(directory: Path, node: dict) -> dict:
    sshd = sshd_pid(directory, node["name"])
    up = link_is_up(node["veth"])
    return {"name": node["name"], "ip": node["ip"], "netns": node["netns"],
            "netns_exists": netns_inode(node["netns"]) is not None,
            "link": {True: "up", False: "down", None: "missing"}[up],
            "sshd": sshd is not None, "sshd_pid": sshd,
            "daemons": daemon_pids(Path(node["root"])),
            "state": node.get("state", "up")}


def cmd_status(args: argparse.Namespace) -> int:
    directory = check_dir(args.dir)
    cluster = Cluster.load(directory)
    nodes = [node_status(directory, n) for n in cluster.doc["nodes"]]
    bridge = link_is_up(cluster.doc["bridge"])
    if args.json:
        print(json.dumps({"dir": str(directory), "tag": cluster.tag,
                          "bridge": cluster.doc["bridge"],
                          "bridge_up": bridge, "nodes": nodes}, indent=2))
        return 0
    print(f"cluster {directory} tag {cluster.tag} bridge {cluster.doc['bridge']} "
          f"({'up' if bridge else 'down' if bridge is False else 'missing'})")
    print(f"{'node':<8} {'address':<15} {'netns':<6} {'link':<8} {'sshd':<14} "
          f"{'state':<12} daemons")
    for s in nodes:
        sshd = f"up ({s['sshd_pid']})" if s["sshd"] else "down"
        daemons = ", ".join(f"{k} ({v})" for k, v in s["daemons"].items()) or "-"
        print(f"{s['name']:<8} {s['ip']:<15} {'yes' if s['netns_exists'] else 'no':<6} "
              f"{s['link']:<8} {sshd:<14} {s['state']:<12} {daemons}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dev-cluster",
        description="An N-node genet test cluster on this machine, one network namespace "
                    f"per node, addresses in {TEST_NET}.")
    sub = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")

    def add(name: str, func, help_text: str, node: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--dir", required=True, help="the cluster directory")
        if node:
            p.add_argument("node", metavar="NODE", help="node name, e.g. node2")
        p.set_defaults(func=func)
        return p

    p = add("start", cmd_start, "create the namespaces, sshds and (unless --no-init) "
            "initialise a genet cluster on them")
    p.add_argument("--nodes", type=int, required=True, metavar="N",
                   help=f"number of nodes, 1..{MAX_NODES}")
    p.add_argument("--hypervisor", choices=hypervisor_base.names(), default="fake")
    p.add_argument("--watcher-interval", type=float, default=0, metavar="SECONDS",
                   help="genet-noded runs genet-watcher this often (default 0: never; tests run it)")
    p.add_argument("--no-init", action="store_true",
                   help="only build the network and sshds; run no genet command")
    p.add_argument("--subnet",
                   help=f"node subnet inside {TEST_NET} (default: the lowest free "
                        f"/{netguard.SUBNET_PREFIX} that contains no address this machine needs: "
                        "package registries, DNS resolvers, the default gateway)")
    p.add_argument("--bin-dir", help="where genet's commands are (default: the directory of "
                                     "the running python, e.g. the venv's bin)")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds allowed for each genet command (default %(default)s)")

    p = add("exec", cmd_exec, "run a command in a node's namespace with its environment",
            node=True)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")

    add("kill-node", cmd_kill_node, "SIGKILL every process of a node (sshd and genet "
        "daemons included) and take its link down", node=True)
    add("partition", cmd_partition, "take a node's link down (processes keep running)",
        node=True)
    add("heal", cmd_heal, "bring a node's link up again", node=True)
    p = add("restart", cmd_restart, "link up, sshd up, then `genet-daemon start` on the node",
            node=True)
    p.add_argument("--timeout", type=float, default=120)
    add("stop", cmd_stop, "kill everything, delete namespaces, links, bridge and DIR")
    p = add("status", cmd_status, "per node: namespace, link, sshd, genet daemons")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except UsageError as err:
        print(f"dev-cluster: error: {err}", file=sys.stderr)
        return 2
    except Failure as err:
        print(f"dev-cluster: {args.command_name} failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
