"""A genet cluster whose nodes are loopback addresses (127.0.0.x) on this machine.

No namespaces and no SSH: new nodes are prepared by running genet-prepare-node-join
with their environment, which is what `gnt-node add` does over SSH. Fast, so the
job-queue and replication tests can use real daemons without the dev cluster.

Each cluster claims a block of addresses (node1 at 127.0.0.11, 21, 31, ...) for as long as
it lives, with a lock file per block and a check that nothing else listens there, so
clusters of tests running side by side (two checkouts, a benchmark) never meet.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

from genet import luxi, opcodes
from genet_dev import policy

BIN = Path(sys.executable).parent
PORT = 21811
RAPI_PORT = 5080
BLOCKS = range(11, 250, 10)          # node1's last octet; a block holds up to 9 nodes
LOCK_DIR = Path("/run/lock")
NO_WATCHER = 'NODED_ARGS="--watcher-interval 0"\n'


FAKES = Path(__file__).resolve().parents[1] / "fakes"
FAKE_LVM_BIN = FAKES / "lvm-bin"
FAKE_DRBD_BIN = FAKES / "drbd-bin"


def _free(address: str, port: int) -> bool:
    """Nothing listens on address:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def claim_block(nodes: int, port: int, wanted: int | None = None) -> tuple[int, IO]:
    """The first free block of ``nodes`` loopback addresses (or the ``wanted`` one) and the
    locked file that holds it; free means unlocked, with the noded port of every address and
    the RAPI port of the first one unused."""
    assert 1 <= nodes <= 9, nodes
    for first in [wanted] if wanted else BLOCKS:
        handle = open(LOCK_DIR / f"genet-loopback-127.0.0.{first}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        addresses = [f"127.0.0.{first + i}" for i in range(nodes)]
        if all(_free(a, port) for a in addresses) and _free(addresses[0], RAPI_PORT):
            return first, handle
        handle.close()
    raise RuntimeError(f"no free block of {nodes} loopback addresses with ports {port} and {RAPI_PORT} free "
                       f"(tried 127.0.0.{wanted or BLOCKS[0]}{'' if wanted else ' and up'})")


from stored import StoredConfig  # noqa: E402

class LoopbackCluster(StoredConfig):
    CLUSTER_NAME = "genet-test"

    def __init__(self, base: Path, nodes: int = 3, lvm: bool = False, drbd: str | None = None,
                 port: int = PORT, first: int | None = None):
        """``lvm``: each node gets a fake LVM (test/fakes/lvm) with a 1 GiB volume group xenvg;
        ``drbd`` ("8.4" or "9", with lvm): and the fake DRBD (test/fakes/drbd) of that version;
        ``port``: noded's; ``first``: node1's last address octet (default: a free block)."""
        self.base = base
        self.lvm = lvm or drbd is not None
        self.drbd = drbd
        self.port = port
        self.names = [f"node{i}" for i in range(1, nodes + 1)]
        self.first, self._claim = claim_block(nodes, port, first)
        base.mkdir(parents=True, exist_ok=True)
        self.hosts = base / "hosts"
        self.hosts.write_text("".join(f"{self.address(n)} {n}\n" for n in self.names))
        for name in self.names:      # no genet-watcher runs of its own: tests run it when they mean to
            defaults = self.root(name) / "etc/default/genet"
            defaults.parent.mkdir(parents=True, exist_ok=True)
            defaults.write_text(NO_WATCHER)

    def env(self, node: str) -> dict:
        env = dict(os.environ)
        env.update(GENET_ROOT=str(self.root(node)), GENET_HOSTNAME=node, GENET_HOSTS=str(self.hosts),
                   PATH=f"{BIN}:{env['PATH']}")
        if self.lvm:
            env.update(GENET_LVM_BINDIR=str(FAKE_LVM_BIN), GENET_LVM_DEV_DIR=str(self.base / node / "dev"),
                       GENET_FAKE_LVM_DEV=str(self.base / node / "dev"),
                       GENET_FAKE_LVM_STATE=str(self.lvm_state(node)))
        if self.drbd:
            env.update(GENET_DRBD_BINDIR=str(FAKE_DRBD_BIN), GENET_DRBD_DEV_DIR=str(self.base / node / "dev"),
                       GENET_DRBD_PROC=str(self.base / node / "drbd.proc"),
                       GENET_FAKE_DRBD_STATE=str(self.drbd_state(node)),
                       GENET_FAKE_DRBD_WIRE=str(self.base / "drbd-wire.json"))
        return env

    def drbd_state(self, node: str) -> Path:
        return self.base / node / "drbd-state.json"

    def fake_drbd(self, node: str, *args: str) -> str:
        """A control of the fake DRBD on ``node`` (fake write, cut, heal, crash, show...)."""
        return self.run(node, sys.executable, "-S", str(FAKES / "drbd"), "fake", *args).stdout

    def lvm_state(self, node: str) -> Path:
        return self.base / node / "lvm-state.json"

    def root(self, node: str) -> Path:
        return self.base / node / "root"

    def address(self, node: str) -> str:
        return f"127.0.0.{self.first + self.names.index(node)}"

    def run(self, node: str, *argv: str, check: bool = True, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(argv), env=self.env(node), capture_output=True, text=True,
                              input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} on {node} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def client(self, node: str = "node1") -> luxi.Client:
        return luxi.Client(self.root(node) / "var/run/genet/socket/master.sock")

    def start(self) -> "LoopbackCluster":
        if self.lvm:
            for node in self.names:
                self.run(node, str(FAKE_LVM_BIN / "lvm"), "fake", "vgcreate", "xenvg", "1024")
        if self.drbd:
            for node in self.names:
                self.fake_drbd(node, "init", node, self.drbd, f"--proc={self.base / node / 'drbd.proc'}",
                               f"--dev-dir={self.base / node / 'dev'}", "--step=25")
        self.run("node1", "gnt-cluster", "init", "--noded-port", str(self.port), *policy.init_options(),
                 f"--shared-file-storage-dir={self.base / 'shared'}", self.CLUSTER_NAME)
        for node in self.names[1:]:
            self.join(node)
        return self

    def join(self, node: str) -> None:
        master_data = self.root("node1") / "var/lib/genet"
        request = {"cert": (master_data / "server.pem").read_text(),
                   "ssconf": {"noded_port": str(self.port), "master_node": "node1"}}
        self.run(node, "genet-prepare-node-join", input=json.dumps(request))
        self.submit_and_wait([opcodes.OpNodeAdd(node_name=node).to_dict()])

    def submit_and_wait(self, ops: list[dict], node: str = "node1") -> dict:
        client = self.client(node)
        job_id = client.submit_job(ops)
        return self.wait(job_id, node)

    def wait(self, job_id: int, node: str = "node1", timeout: float = 60) -> dict:
        client = self.client(node)
        info = None
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            change = client.wait_for_job_change(job_id, ["status"], info, 0, 5)
            if change is None:
                raise AssertionError(f"job {job_id} unknown")
            if change != "nochange":
                info = change["job_info"]
                if info[0] in ("success", "error", "canceled"):
                    status, result = client.query_jobs([job_id], ["status", "opresult"])[0]
                    return {"status": status, "opresult": result}
        raise AssertionError(f"job {job_id} did not finish in {timeout}s")

    def stop(self) -> None:
        for node in self.names:
            self.run(node, "genet-daemon", "stop", check=False)
            # storage daemons of mirror disks (e.g. instances the RAPI fuzz made) outlive noded
            for pidfile in self.root(node).glob("var/run/genet/mirror/*/daemon.pid"):
                with contextlib.suppress(OSError, ValueError):      # gone already, or no pid yet
                    os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        self._claim.close()          # the block of addresses is free again
