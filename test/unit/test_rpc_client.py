"""The RPC client: the master stops a node's strays before a call that acts on instances, and a
node that does not answer is not waited for twice."""
from __future__ import annotations

from pathlib import Path

import pytest

from genet import errors, rpc_defs
from genet.rpc import RpcClient
from genet.rpc_defs import DiskStatus, MirrorStatus

from fake_rpc import FakeTransport, fake_node_rpc


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


class Client(FakeTransport):
    """Calls answered by a script instead of a node: each procedure's answers in turn."""

    def __init__(self, answers: dict[str, list]):
        super().__init__(lambda node, procedure, args: self._next(procedure))
        self.answers = answers

    def _next(self, procedure):
        answer = self.answers[procedure].pop(0)
        if isinstance(answer, errors.GenericError):
            raise answer
        return answer

    @property
    def procedures(self) -> list[str]:
        return [procedure for _, procedure, _ in self.sent]


def cut_off() -> errors.NodeCutOffError:
    return errors.NodeCutOffError("instance_start refused: node2 has not heard from the master for 30 s")


def test_what_acts_on_instances_is_guarded_and_reads_are_not():
    guarded = {name for name, proc in rpc_defs.PROCEDURES.items() if proc.guarded}
    assert {"instance_start", "blockdev_assemble", "os_create", "export_start"} <= guarded
    assert not guarded & {"instance_info", "instances_info", "blockdev_find", "export_list", "heartbeat",
                          "stop_strays", "upload_config", "node_info"}


def test_a_suspect_node_has_its_strays_stopped_before_a_call_that_acts_on_instances():
    """When the master suspects node2, the first instance call stops its strays first; reads
    and later calls go straight through."""
    client, master = Client({"instances_info": [{}], "instance_start": [{}, {}]}), Master({"node2"})
    client.reconciler = master
    client.call("node2", "127.0.0.12", "instances_info", [["fake"]])
    assert master.stopped == []
    assert not client.call("node2", "127.0.0.12", "instance_start", [{}, {}]).failed
    client.call("node2", "127.0.0.12", "instance_start", [{}, {}])
    assert master.stopped == ["node2"] and client.procedures == ["instances_info", "instance_start", "instance_start"]


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


def test_a_node_that_does_not_take_the_connection_is_given_up_after_the_connect_timeout(tmp_path, monkeypatch):
    """A node whose port takes the TCP connection but never answers the TLS handshake (or a dead
    one, whose SYNs are lost) is unreachable after CONNECT_TIMEOUT, not after the call's own,
    long timeout (the hooks' is an hour)."""
    import socket
    import time
    from genet import rpc, ssl_utils
    monkeypatch.setattr(rpc, "CONNECT_TIMEOUT", 0.3)
    cert = tmp_path / "server.pem"
    ssl_utils.generate_cluster_cert(cert, "c1")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        client = RpcClient(cert, silent.getsockname()[1])
        started = time.monotonic()
        result = client.call("node2", "127.0.0.1", "hooks_runner", ["group-add", "pre", {}])
        assert time.monotonic() - started < 3
    assert "unreachable" in result.fail_msg and "timed out" in result.fail_msg


def test_a_typed_call_checks_its_arguments_before_anything_is_sent():
    """When a call site passes too few arguments or a wrong type, it is a bug there: TypeError
    naming the procedure and argument, and nothing reaches a node."""
    rpc = fake_node_rpc(lambda node, procedure, args: True)
    with pytest.raises(TypeError, match="instance_info: missing a required argument: 'hypervisor'"):
        rpc.instance_info("node2", "inst1")
    with pytest.raises(TypeError, match="instance_stop argument 'shutdown_timeout' must be a number, not a string"):
        rpc.instance_stop("node2", "inst1", "kvm", "soon")
    assert rpc.client.sent == []
    assert not rpc.instance_stop("node2", "inst1", "kvm", 30, force=True).failed
    assert rpc.client.sent == [("node2", "instance_stop", ["inst1", "kvm", 30, True])]


def test_results_arrive_as_the_table_types_them():
    """When a node answers blockdev_find, the master gets DiskStatus objects (a mirrored disk's
    with its side's MirrorStatus), not positional lists; Ganeti's 7-tuple is derived from them."""
    side = {"role": "primary", "state": "syncing", "connected": True, "local_ok": True, "sync_percent": 45.0,
            "estimated_time": 12, "disk_state": None}
    found = [{"dev_path": "/dev/x", "sync_percent": 45.0, "estimated_time": 12, "is_degraded": True,
              "ldisk_status": 1, "mirror": side}, None]
    rpc = fake_node_rpc(lambda node, procedure, args: found)
    first, missing = rpc.blockdev_find("node2", "inst1", "mirror", [{"uuid": "u1", "size": 8}, {"uuid": "u2", "size": 8}], {}).payload
    assert first == DiskStatus("/dev/x", None, None, 45.0, 12, True, 1, MirrorStatus(**side)) and missing is None
    assert first.ganeti_status() == ["/dev/x", None, None, 45.0, 12, True, 1]


def test_a_reply_that_does_not_fit_the_table_is_a_failed_call_naming_it():
    rpc = fake_node_rpc(lambda node, procedure, args: {"master": "node1"})
    result = rpc.heartbeat("node2", 1, "node1")
    assert isinstance(result.error, errors.RpcError)
    assert result.fail_msg == "node node2 sent an invalid reply: the result of heartbeat lacks 'epoch' (Heartbeat)"
    with pytest.raises(errors.OpExecError, match="^heartbeat failed on node2: node node2 sent an invalid reply"):
        result.raise_on_error()


def test_calls_to_several_nodes_take_names_or_addresses():
    """When nodes are given by name their addresses come from the resolver; with_addresses adds
    nodes the resolver does not know (a node being added)."""
    rpc = fake_node_rpc(lambda node, procedure, args: {"protocol": 1, "version": node},
                        address_of={"node1": "192.0.2.1", "node2": "192.0.2.2"}.__getitem__)
    answers = rpc.version.on(["node1", "node2"])
    assert {n: r.payload.version for n, r in answers.items()} == {"node1": "node1", "node2": "node2"}
    assert rpc.with_addresses({"node9": "192.0.2.9"}).version("node9").payload.protocol == 1
    assert rpc.client.addresses == {"node1": "192.0.2.1", "node2": "192.0.2.2", "node9": "192.0.2.9"}
