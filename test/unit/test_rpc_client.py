"""The RPC client: the master stops a node's strays before a call that acts on instances, and a
node that does not answer is not waited for twice."""
from __future__ import annotations

from pathlib import Path

from genet import errors
from genet.rpc import RpcClient, RpcResult, acts_on_instances


class Master:
    """A reconciler that records what it was asked; ``pending`` nodes are suspect."""

    def __init__(self, pending=()):
        self.pending = set(pending)
        self.stopped: list[str] = []

    def strays_pending(self, node):
        return node in self.pending

    def stop_strays(self, node, address):
        self.stopped.append(node)
        self.pending.discard(node)
        return True


class Client(RpcClient):
    """Calls answered by a script instead of a node: each procedure's answers in turn."""

    def __init__(self, answers: dict[str, list]):
        super().__init__(Path("/nonexistent.pem"), 1811)
        self.answers = answers
        self.sent: list[str] = []

    def _send(self, node, address, procedure, body, timeout, fail_fast):
        self.sent.append(procedure)
        answer = self.answers[procedure].pop(0)
        return RpcResult(node, error=answer) if isinstance(answer, errors.GenericError) else RpcResult(node, answer)


def cut_off() -> errors.NodeCutOffError:
    return errors.NodeCutOffError("instance_start refused: node2 has not heard from the master for 30 s")


def test_what_acts_on_instances_is_guarded_and_reads_are_not():
    assert all(acts_on_instances(p) for p in ("instance_start", "blockdev_assemble", "os_create", "export_start"))
    assert not any(acts_on_instances(p) for p in ("instance_info", "instances_info", "blockdev_find", "export_list",
                                                  "heartbeat", "stop_strays", "upload_config", "node_info"))


def test_a_suspect_node_has_its_strays_stopped_before_a_call_that_acts_on_instances():
    """When the master suspects node2, the first instance call stops its strays first; reads
    and later calls go straight through."""
    client, master = Client({"instances_info": [{}], "instance_start": [{}, {}]}), Master({"node2"})
    client.reconciler = master
    client.call("node2", "127.0.0.12", "instances_info", [["fake"]])
    assert master.stopped == []
    assert not client.call("node2", "127.0.0.12", "instance_start", [{}, {}]).failed
    client.call("node2", "127.0.0.12", "instance_start", [{}, {}])
    assert master.stopped == ["node2"] and client.sent == ["instances_info", "instance_start", "instance_start"]


def test_a_call_refused_as_cut_off_is_made_again_once_the_strays_are_stopped():
    """When node2 refuses as cut off (the master did not know), its strays are stopped and the
    call is made once more; a second refusal is the caller's answer."""
    client, master = Client({"instance_start": [cut_off(), {"state": "running"}]}), Master()
    client.reconciler = master
    assert client.call("node2", "127.0.0.12", "instance_start", [{}, {}]).payload == {"state": "running"}
    assert master.stopped == ["node2"]
    client.answers["instance_start"] = [cut_off(), cut_off()]
    assert isinstance(client.call("node2", "127.0.0.12", "instance_start", [{}, {}]).error, errors.NodeCutOffError)
    assert master.stopped == ["node2", "node2"]


def test_without_a_reconciler_a_refusal_is_returned_as_it_is():
    client = Client({"instance_start": [cut_off()]})
    assert isinstance(client.call("node2", "127.0.0.12", "instance_start", [{}, {}]).error, errors.NodeCutOffError)


class KeptConnection:
    """An idle kept connection to a node that no longer answers: every request times out."""
    sock = object()         # not fresh

    def __init__(self, log):
        self.log = log

    def request(self, *args, **kwargs):
        self.log.append("request")
        raise TimeoutError("timed out")

    def close(self):
        pass


def test_a_kept_connection_that_times_out_is_not_tried_again():
    """When a node stops answering on a connection kept from an earlier call, the call fails after
    one timeout (a closed kept connection is retried on a new one; a silent node is not)."""
    log: list[str] = []
    client = RpcClient(Path("/nonexistent.pem"), 1811)
    client._connection = lambda address, timeout: KeptConnection(log)
    result = client.call("node2", "127.0.0.12", "instance_info", ["inst1", "fake"], timeout=10)
    assert isinstance(result.error, errors.RpcError) and "timed out" in result.fail_msg
    assert log == ["request"]
