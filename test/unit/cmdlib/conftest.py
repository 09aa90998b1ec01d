"""An in-process cluster for logical-unit tests.

The master is the real one (config writer with its replication, job queue, processor, locks,
typed node RPC) and each node answers with genet-noded's own procedures over the fake
hypervisor and file storage under a temporary root. Only the network is missing: a call goes
straight to the node's procedures, checked against the RPC table and encoded as on the wire.
No daemon, socket, root or QEMU; time is a ManualClock that polls advance.
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from genet import config, errors, opcodes, paths, serializer, ssl_utils
from genet.clock import ManualClock
from genet.config_writer import ConfigWriter
from genet.hypervisor.fake import FakeFabric, FakeHypervisor
from genet.jobs import FINAL_NAMES
from genet.masterd import MasterContext
from genet.noded import NodeProcedures
from genet.queue_store import QueueStore
from genet.rpc import RpcClient, RpcResult
from genet_dev.policy import TEST_IPOLICY

ADDRESSES = {"node1": "127.0.0.11", "node2": "127.0.0.12", "node3": "127.0.0.13", "node4": "127.0.0.14"}
MEMBERS = ("node1", "node2", "node3")       # node4 is a machine to add
NODE_MEMORY = 4096      # MiB each fake node offers


class Node:
    """One node: its root directory, its noded procedures and its fake hypervisor."""

    def __init__(self, name: str, root: Path, clock: ManualClock, fabric: FakeFabric, cert: Path):
        self.name, self.address, self.root = name, ADDRESSES[name], root
        self.reachable = True
        self.procs = NodeProcedures()
        with self.acting():
            paths.ensure_dirs()
            shutil.copy(cert, paths.cluster_cert())
            self.hv = FakeHypervisor(state_dir=paths.data_dir() / "fake-hv", memory_total=NODE_MEMORY, cpu_total=4,
                                     clock=clock.time, fabric=fabric)
        self.procs._hypervisors["fake"] = self.hv

    def acting(self):
        return paths.acting_as(self.root, self.name)

    def call(self, procedure: str, args: list) -> Any:
        with self.acting():
            return self.procs.call(procedure, args)

    def files(self, instance: str) -> list[str]:
        """The names of the instance's disk files on this node."""
        folder = self.root / "srv/genet/file-storage" / instance
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


class InProcessTransport(RpcClient):
    """Node RPC without the network: each call runs the addressed node's procedures."""

    def __init__(self, nodes: dict[str, Node]):
        super().__init__(Path("/nonexistent.pem"), 1811)
        self.nodes = nodes
        self.calls: list[tuple[str, str]] = []

    def _send(self, node, address, procedure, body, timeout, fail_fast) -> RpcResult:
        target = self.nodes.get(node)
        if target is None or not target.reachable or target.address != address:
            return RpcResult(node, error=errors.RpcError(f"node {node} ({address}:{self.port}) unreachable: timed out"))
        self.calls.append((node, procedure))
        try:
            reply = [True, target.call(procedure, serializer.loads(body))]
        except Exception as err:        # as noded: the error class crosses the wire
            reply = [False, errors.to_wire(err)]
        return self._decode(node, procedure, 200, serializer.dumps(reply))


class Cluster:
    """Three nodes (node1 the master, all candidates) and the master's context; ``prepare_node``
    makes a fourth machine ready to be added."""

    def __init__(self, tmp_path: Path, cert: Path, monkeypatch):
        self.clock = ManualClock()
        self._tmp, self._cert, self._fabric = tmp_path, cert, FakeFabric()
        data = config.new_cluster("c1", "node1", ADDRESSES["node1"], enabled_hypervisors=["fake"])
        data.cluster["ipolicy"] = copy.deepcopy(TEST_IPOLICY)     # as dev-cluster inits (genet_dev.policy)
        for name in MEMBERS[1:]:
            config.add_node(data, name, ADDRESSES[name], master_candidate=True)
        self.nodes: dict[str, Node] = {}
        for name in MEMBERS:
            self.prepare_node(name)
        for node in self.nodes.values():
            with node.acting():
                config.write_atomic(paths.config_file(), config.dumps(data))
        master = self.nodes["node1"]
        monkeypatch.setenv("GENET_ROOT", str(master.root))     # the master's threads are node1
        monkeypatch.setenv("GENET_HOSTNAME", "node1")
        self.transport = InProcessTransport(self.nodes)
        self.ctx = MasterContext("node1", ConfigWriter(master.root / "var/lib/genet/config.data"), self.transport,
                                 QueueStore(master.root / "var/lib/genet/queue.db"), clock=self.clock, workers=2)
        self.log: list[str] = []

    def prepare_node(self, name: str) -> Node:
        """A machine running noded with the cluster certificate (what gnt-node add expects)."""
        self.nodes[name] = Node(name, self._tmp / name, self.clock, self._fabric, self._cert)
        return self.nodes[name]

    # --- running opcodes --------------------------------------------------------------

    def submit(self, *ops: opcodes.OpCode) -> int:
        return self.ctx.submit([[op.to_dict() for op in ops]])[0]

    def wait(self, job_id: int) -> dict:
        """The job's record once it ended; its log lines are added to ``log``."""
        info, serial = None, None
        while True:
            change = self.ctx.queue.wait_for_change(job_id, ["status"], info, serial, timeout=30)
            found = self.ctx.queue.get(job_id)
            if found is not None and found[0]["status"] in FINAL_NAMES:
                record = found[0]
                self.log += [entry[3] for oplog in record["oplog"] for entry in oplog]
                return record
            assert isinstance(change, dict), f"job {job_id} did not end within 30 s"
            info = change["job_info"]
            serial = change["log_entries"][-1][0] if change["log_entries"] else serial

    def run(self, op: opcodes.OpCode) -> Any:
        """Run one opcode as a job; its result, or the error it failed with (raised)."""
        record = self.wait(self.submit(op))
        if record["status"] != "success":
            raise errors.from_wire(record["opresult"][0])
        return record["opresult"][0]

    def refused(self, op: opcodes.OpCode, match: str, ecode: str | None = None) -> errors.OpPrereqError:
        """The opcode is refused in its prerequisites and nothing changed: not the config, not a
        node's disks or instances."""
        before = (self.config_text(), self.node_state())
        with pytest.raises(errors.OpPrereqError, match=match) as info:
            self.run(op)
        if ecode is not None:
            assert info.value.ecode == ecode
        assert (self.config_text(), self.node_state()) == before
        return info.value

    # --- looking at the outcome -----------------------------------------------------------

    def config_text(self) -> str:
        return self.ctx.cfg.content().decode()

    def data(self) -> dict:
        return self.ctx.cfg.snapshot()

    def instance(self, name: str) -> dict | None:
        return self.data()["instances"].get(name)

    def running(self) -> dict[str, list[str]]:
        """Which node's fake hypervisor runs which instances."""
        return {name: sorted(n for n, info in node.hv.all_info().items() if info["state"] == "running")
                for name, node in self.nodes.items()}

    def node_state(self) -> dict:
        """Every node's instances and disk files: what a refusal must leave alone."""
        out = {}
        for name, node in self.nodes.items():
            folder = node.root / "srv/genet/file-storage"
            files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else []
            out[name] = (sorted(node.hv.all_info()), files)
        return out

    def stop(self) -> None:
        self.ctx.stop()


@pytest.fixture(scope="session")
def cluster_cert(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cert") / "server.pem"
    ssl_utils.generate_cluster_cert(path, "c1")
    return path


@pytest.fixture
def mirrored(monkeypatch):
    """The cluster may use disk template ``fakemirror`` (fake_mirror.FakeMirror) while the test runs;
    allocators and the htools know it as they know mirror."""
    from fake_mirror import FakeMirror
    from genet.cmdlib import iallocator
    from genet.htools import cluster as htools_cluster
    from genet.storage.base import TEMPLATES
    TEMPLATES.add(FakeMirror)
    monkeypatch.setitem(iallocator.GANETI_TEMPLATES, FakeMirror.name, iallocator.ganeti_template("mirror"))
    monkeypatch.setitem(htools_cluster.TEMPLATES, FakeMirror.name, htools_cluster.TEMPLATES["mirror"])
    yield FakeMirror
    TEMPLATES.remove(FakeMirror.name)


@pytest.fixture
def cluster(tmp_path, cluster_cert, monkeypatch):
    built = Cluster(tmp_path, cluster_cert, monkeypatch)
    yield built
    built.stop()


@pytest.fixture
def gnt(cluster, monkeypatch, capsys):
    """Runs a gnt-* command against the in-process cluster's real luxi handlers: (exit code, output)."""
    from genet import luxi
    from genet.cli import base as cli_base
    from genet.masterd import LuxiHandlers
    from unit.live_luxi import wire_call
    handlers = LuxiHandlers(cluster.ctx)
    monkeypatch.setattr(luxi.Client, "call", lambda self, method, *args: wire_call(handlers, method, *args))

    def run(command: str, *argv: str) -> tuple[int, str]:
        module = __import__(f"genet.cli.{command.replace('-', '_')}", fromlist=["build"])
        code = cli_base.run(command, module.build, list(argv))
        out = capsys.readouterr()
        return code, out.out + out.err
    return run
