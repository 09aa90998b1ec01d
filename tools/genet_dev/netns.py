"""dev-cluster's building blocks: names and addresses of a cluster's kernel objects, the
bridge, veths and namespaces themselves, and small helpers."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from genet import netguard

if TYPE_CHECKING:
    from genet_dev.cluster import Cluster


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
TOOL = Path(__file__).resolve().parents[1] / "dev-cluster"
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


def name_patterns(tag: str) -> dict[str, re.Pattern]:
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
                      + indented(proc.stdout + proc.stderr))
    return proc


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def indented(text: str) -> str:
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
