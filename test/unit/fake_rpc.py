"""Node RPC without nodes: the real client (argument checks, result types, the strays guard)
over a transport whose answers come from Python instead of HTTPS."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from genet import errors, serializer, wire
from genet.rpc import NodeRpc, RpcClient, RpcResult

Answer = Callable[[str, str, list], Any]    # (node, procedure, wire arguments) -> result, or raises


class FakeTransport(RpcClient):
    """Each call is answered by ``answer``; a GenericError it raises is the node's error. The reply
    goes through the client's own decoding, so results arrive typed as on a real cluster."""

    def __init__(self, answer: Answer):
        super().__init__(Path("/nonexistent.pem"), 1811)
        self.answer = answer
        self.sent: list[tuple[str, str, list]] = []
        self.addresses: dict[str, str] = {}     # node -> the address it was called at

    def _send(self, node, address, procedure, body, timeout, fail_fast) -> RpcResult:
        args = serializer.loads(body)
        self.sent.append((node, procedure, args))
        self.addresses[node] = address
        try:
            reply = [True, wire.encode(self.answer(node, procedure, args))]
        except errors.GenericError as err:
            reply = [False, errors.to_wire(err)]
        return self._decode(node, procedure, 200, serializer.dumps(reply))


def fake_node_rpc(answer: Answer, address_of: Callable[[str], str] = lambda node: f"{node}.invalid") -> NodeRpc:
    return NodeRpc(FakeTransport(answer), address_of)
