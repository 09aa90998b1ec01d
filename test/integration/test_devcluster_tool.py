"""tools/dev-cluster: a 3-node cluster of network namespaces, without genet itself (--no-init).

Needs root (namespaces, veths, sshd), as CI has.  The tests of the module share one
cluster and run in file order: they partition, kill and restart nodes and finally stop it.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from genet import netguard
from genet.netguard import TEST_NET

TOOL = Path(__file__).resolve().parents[2] / "tools" / "dev-cluster"


# An ICMP echo in python, for machines without ping(8); exit 0 iff the address answers.
PY_PING = r"""
import os, select, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
dst, ident = sys.argv[1], os.getpid() & 0xffff
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
body = b"dev-cluster-ping"
hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
sock.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, 1) + body, (dst, 0))
deadline = time.monotonic() + float(sys.argv[2])
while (left := deadline - time.monotonic()) > 0:
    if not select.select([sock], [], [], left)[0]:
        break
    data, (src, _) = sock.recvfrom(2048)
    ihl = (data[0] & 0x0f) * 4
    kind, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
    if src == dst and kind == 0 and rid == ident:
        sys.exit(0)
sys.exit(1)
"""


def tool(*args: str, check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, f"dev-cluster {args} -> {proc.returncode}\n" \
                                     f"{proc.stdout}\n{proc.stderr}"
    return proc


class DevCluster:
    def __init__(self, directory: Path, doc: dict):
        self.dir = directory
        self.doc = doc
        self.net = ipaddress.IPv4Network(doc["subnet"])

    def ip(self, i: int) -> str:
        return str(self.net.network_address + 10 + i)

    def node(self, name: str) -> dict:
        return next(n for n in self.doc["nodes"] if n["name"] == name)

    def reload(self) -> dict:
        self.doc = json.loads((self.dir / "cluster.json").read_text())
        return self.doc

    def exec(self, node: str, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return tool("exec", "--dir", str(self.dir), node, "--", *cmd, timeout=timeout)

    def ping(self, node: str, address: str) -> bool:
        if shutil.which("ping"):
            proc = self.exec(node, "ping", "-c1", "-W1", address)
        else:
            proc = self.exec(node, sys.executable, "-c", PY_PING, address, "1")
        return proc.returncode == 0

    def ping_soon(self, node: str, address: str, within: float = 8.0) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.ping(node, address):
                return True
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("devcluster") / "c"
    try:
        proc = tool("start", "--nodes", "3", "--dir", str(directory), "--no-init",
                    "--watcher-interval", "90", check=True)
        yield DevCluster(directory, json.loads(proc.stdout))
    finally:
        stop = tool("stop", "--dir", str(directory))
        assert stop.returncode == 0, stop.stderr


def netns_names() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def link_up(name: str) -> bool:
    return bool(int(Path(f"/sys/class/net/{name}/flags").read_text(), 16) & 1)


def test_addresses_the_machine_needs_stay_outside_every_dev_cluster(cluster):
    """When a dev cluster runs on the subnet dev-cluster chose, every address this machine needs
    (package registries, DNS resolvers, the default gateway) is still routed outside the dev
    clusters' bridges."""
    needed = netguard.machine_needs()
    assert needed, "this machine needs no address at all? (no resolver, no gateway, no source)"
    for n in needed:
        assert n.address not in cluster.net, n
        device = netguard.route_device(str(n.address))
        assert device and not device.startswith(netguard.BRIDGE_PREFIX), (str(n), device)


def test_apt_get_download_works_while_a_dev_cluster_runs(cluster, tmp_path):
    """When a dev cluster runs, a package still downloads from this machine's apt sources."""
    if not netguard.apt_hosts():
        pytest.skip("this machine has no apt source with a network address: nothing to download from")

    def download() -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", "hostname"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=180)
    proc = download()
    if "Unable to locate package" in proc.stderr:      # no package lists on this machine yet
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        proc = download()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(tmp_path.glob("hostname_*.deb"))


def test_cluster_json_shape(cluster):
    doc = cluster.doc
    assert doc == cluster.reload()
    tag = doc["tag"]
    assert doc["dir"] == str(cluster.dir)
    assert doc["bridge"] == f"gnt-br-{tag}" and len(doc["bridge"]) <= 15
    assert doc["hypervisor"] == "fake" and doc["master"] == "node1"
    assert doc["exec"].endswith(f"exec --dir {cluster.dir} NODE -- CMD")
    assert [n["name"] for n in doc["nodes"]] == ["node1", "node2", "node3"]
    bindir = os.path.dirname(sys.executable)
    for i, node in enumerate(doc["nodes"], 1):
        assert node["ip"] == cluster.ip(i)
        assert ipaddress.IPv4Address(node["ip"]) in TEST_NET
        assert node["netns"] == f"gnt-{tag}-n{i}" and node["netns"] in netns_names()
        assert node["root"] == str(cluster.dir / f"node{i}" / "root")
        assert Path(node["root"]).is_dir()
        assert node["env"] == {"GENET_ROOT": node["root"], "GENET_HOSTNAME": f"node{i}",
                               "GENET_HOSTS": str(cluster.dir / "hosts"),
                               "GENET_SSH_KEY": str(cluster.dir / "id_ed25519"),
                               "GENET_SSH_KNOWN_HOSTS": str(cluster.dir / "known_hosts"),
                               "PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin"}
        assert pid_alive(doc["pids"][f"node{i}"]["sshd"])
        assert link_up(node["veth"])
    hosts = (cluster.dir / "hosts").read_text()
    for i in (1, 2, 3):
        assert f"{cluster.ip(i)} node{i}\n" in hosts
    assert (cluster.dir / "id_ed25519").exists()
    assert (cluster.dir / "authorized_keys").read_text() == \
        (cluster.dir / "id_ed25519.pub").read_text()
    assert (cluster.dir / "devcluster-state.json").exists()


def test_each_node_tells_its_noded_how_often_to_run_the_watcher(cluster):
    for i in (1, 2, 3):
        defaults = cluster.dir / f"node{i}" / "root/etc/default/genet"
        assert defaults.read_text() == 'NODED_ARGS="--watcher-interval 90"\n'


def test_nodes_reach_each_other(cluster):
    assert cluster.ping_soon("node1", cluster.ip(2))
    assert cluster.ping_soon("node3", cluster.ip(1))


def test_exec_runs_with_the_node_env(cluster):
    proc = cluster.exec("node2", "sh", "-c", "echo $GENET_ROOT $GENET_HOSTNAME; "
                                             "ip -4 -o addr show dev eth0")
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()[:2]
    assert first == f"{cluster.node('node2')['root']} node2"
    assert f"{cluster.ip(2)}/" in second
    assert cluster.exec("node1", "sh", "-c", "exit 7").returncode == 7


def test_ssh_to_a_node_has_its_env(cluster):
    import paramiko
    client = paramiko.SSHClient()
    client.load_host_keys(str(cluster.dir / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(cluster.ip(2), username="root", key_filename=str(cluster.dir / "id_ed25519"),
                   allow_agent=False, look_for_keys=False, timeout=10)
    try:
        _, stdout, _ = client.exec_command("echo $GENET_ROOT; echo $GENET_HOSTNAME; "
                                           "echo $PATH", timeout=10)
        lines = stdout.read().decode().splitlines()
    finally:
        client.close()
    assert lines[0] == cluster.node("node2")["root"]
    assert lines[1] == "node2"
    assert lines[2].startswith(os.path.dirname(sys.executable) + ":")


def test_partition_and_heal(cluster):
    tool("partition", "--dir", str(cluster.dir), "node2", check=True)
    assert not cluster.ping("node1", cluster.ip(2))
    assert cluster.reload()["nodes"][1]["state"] == "partitioned"
    tool("heal", "--dir", str(cluster.dir), "node2", check=True)
    assert cluster.ping_soon("node1", cluster.ip(2))
    assert cluster.reload()["nodes"][1]["state"] == "up"


def test_kill_node(cluster):
    node3 = cluster.node("node3")
    sshd = cluster.doc["pids"]["node3"]["sshd"]
    sleeper = subprocess.Popen([sys.executable, str(TOOL), "exec", "--dir", str(cluster.dir),
                                "node3", "--", "sleep", "60"])
    time.sleep(0.3)
    tool("kill-node", "--dir", str(cluster.dir), "node3", check=True)
    assert sleeper.wait(timeout=5) == -9
    assert not pid_alive(sshd)
    assert not link_up(node3["veth"])
    assert cluster.reload()["nodes"][2]["state"] == "killed"
    assert node3["netns"] in netns_names()      # the namespace stays: restart can reuse it
    status = tool("status", "--dir", str(cluster.dir), "--json", check=True)
    st = {n["name"]: n for n in json.loads(status.stdout)["nodes"]}
    assert st["node3"]["link"] == "down" and not st["node3"]["sshd"]
    assert st["node1"]["link"] == "up" and st["node1"]["sshd"]
    assert cluster.ping_soon("node1", cluster.ip(2))


def test_restart_brings_link_and_sshd_back(cluster):
    proc = tool("restart", "--dir", str(cluster.dir), "node3", timeout=120)
    # genet-daemon belongs to genet and may be missing or fail on an uninitialised node;
    # then restart must say so, but the link and sshd must be back anyway.
    assert proc.returncode == 0 or "genet-daemon" in proc.stderr, proc.stderr
    node3 = cluster.node("node3")
    assert link_up(node3["veth"])
    assert pid_alive(int((cluster.dir / "node3" / "sshd.pid").read_text()))
    assert cluster.ping_soon("node1", cluster.ip(3))
    assert cluster.reload()["nodes"][2]["state"] == "up"


def test_refusals(cluster, tmp_path):
    again = tool("start", "--nodes", "2", "--dir", str(cluster.dir), "--no-init")
    assert again.returncode == 2 and "stop" in again.stderr
    outside = tool("start", "--nodes", "2", "--dir", str(tmp_path / "x"), "--no-init",
                   "--subnet", "198.51.100.0/24")
    assert outside.returncode == 2 and "203.0.113.0/24" in outside.stderr
    assert not (tmp_path / "x").exists()
    unknown = tool("exec", "--dir", str(cluster.dir), "node9", "--", "true")
    assert unknown.returncode == 2 and "node9" in unknown.stderr


def test_stop_removes_everything(cluster):
    tag = cluster.doc["tag"]
    tool("stop", "--dir", str(cluster.dir), check=True)
    assert f"gnt-{tag}-" not in netns_names()
    links = os.listdir("/sys/class/net")
    assert cluster.doc["bridge"] not in links
    assert not [n for n in links if n.startswith(f"gv{tag}")]
    assert not cluster.dir.exists()
    for pids in cluster.doc["pids"].values():
        assert not pid_alive(pids.get("sshd", 0))
    tool("stop", "--dir", str(cluster.dir), check=True)     # idempotent


@pytest.mark.parametrize("nodes", ["0", "21", "-1"])
def test_bad_node_count_is_refused(tmp_path, nodes):
    proc = tool("start", "--nodes", nodes, "--dir", str(tmp_path / "c"), "--no-init")
    assert proc.returncode == 2
    assert "--nodes must be between 1 and 20" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_teardown_sweeps_the_nbd_sockets_its_nodes_left(tmp_path):
    """A killed node's mirror disks leave their guest sockets in /run/genet-nbd; stop removes
    those of the cluster's nodes and no others."""
    from genet_dev.cluster import sweep_nbd_sockets
    from genet.storage.mirror import SOCKET_DIR, nbd_socket_for
    ours = tmp_path / "cluster/node2/root/var/run/genet/mirror/3f2a9c1e-disk"
    ours.mkdir(parents=True)
    other = nbd_socket_for(tmp_path / "elsewhere/var/run/genet/mirror/other")
    SOCKET_DIR.mkdir(mode=0o700, exist_ok=True)
    for sock in (nbd_socket_for(ours), other):
        sock.touch()
    try:
        assert sweep_nbd_sockets(tmp_path / "cluster") == [f"removed {nbd_socket_for(ours)}"]
        assert not nbd_socket_for(ours).exists() and other.exists()
    finally:
        other.unlink(missing_ok=True)
        nbd_socket_for(ours).unlink(missing_ok=True)
