"""A job queue and processor without a master daemon, for the tests of both suites."""
import time
from pathlib import Path

from genet import config, serializer
from genet.config_writer import ConfigWriter
from genet.drbd_pool import Reservations
from genet.jobqueue import JobQueue
from genet.locking import Level, LockManager
from genet.processor import Processor
from genet.queue_store import QueueStore
from genet.rpc import NodeRpc, RpcClient


class NoHookScripts(RpcClient):
    """The nodes of a queue test: no hooks directory, so every hooks call (the only node RPC
    these jobs make) finds no script."""

    def __init__(self):
        super().__init__(Path("/nonexistent.pem"), 1811)

    def _send(self, node, address, procedure, body, timeout, fail_fast):
        assert procedure == "hooks_runner", procedure
        return self._decode(node, procedure, 200, serializer.dumps([True, []]))


class Ctx:
    """The parts of MasterContext a processor needs, with replication recorded."""

    def __init__(self, tmp_path, workers=4, replicate=None):
        path = tmp_path / "config.data"
        if not path.exists():
            config.write_atomic(path, config.dumps(config.new_cluster("c", "node1", "127.0.0.11")))
        self.cfg = ConfigWriter(path)
        self.glm = LockManager()
        self.glm.add(Level.NODE, ["node1"])
        self.drbd_reservations = Reservations()
        self.rpc = NodeRpc(NoHookScripts(), lambda node: "127.0.0.11")
        self.replicated = []
        self.queue = JobQueue(QueueStore(tmp_path / "queue.db"),
                              replicate or self.replicated.extend,
                              on_final=lambda job: self.processor.job_finished(job))
        self.processor = Processor(self, workers)

    def wait(self, job_id, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.queue.get(job_id)
            if found and found[0]["status"] in ("success", "error", "canceled"):
                return found[0]
            time.sleep(0.005)
        raise AssertionError(f"job {job_id} did not finish")

    def close(self):
        self.processor.stop()
        self.queue.stop()
