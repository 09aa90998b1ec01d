"""Client side of node RPC: JSON over HTTPS with the cluster certificate.

Blocking by design: logical units run in worker threads. Calls to several nodes
run in parallel; connections are kept open per node and reused.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol

from genet import errors, rpc_defs, serializer
from genet.wire import WireTypeError

DEFAULT_TIMEOUT = 30.0
DOWN_BACKOFF = 3.0      # after a failed connection, calls fail fast for this long
CONNECT_TIMEOUT = 5.0   # a node that does not accept a connection (TCP and TLS) within this is unreachable
                        # (Ganeti's RPC_CONNECT_TIMEOUT): a call's own timeout is for its answer


class RpcResult:
    """Outcome of one call on one node: either ``payload`` or ``fail_msg``."""

    def __init__(self, node: str, payload: Any = None, error: errors.GenericError | None = None,
                 procedure: str = ""):
        self.node, self.payload, self.error, self.procedure = node, payload, error, procedure

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def fail_msg(self) -> str:
        return "" if self.error is None else " ".join(str(a) for a in self.error.args)

    def raise_on_error(self, what: str = "") -> Any:
        """The payload; OpExecError "WHAT failed on NODE: REASON" if the call failed (``what``
        defaults to the procedure's name)."""
        if self.error is not None:
            raise errors.OpExecError(f"{what or self.procedure or 'RPC'} failed on {self.node}: {self.fail_msg}")
        return self.payload


class Reconciler(Protocol):
    """The master's side of a node that may run instances the config places elsewhere."""

    def strays_pending(self, node: str) -> bool: ...

    def stop_strays(self, node: str, address: str) -> bool: ...


class RpcClient:
    def __init__(self, cert_path: Path, port: int, timeout: float = DEFAULT_TIMEOUT):
        self.port = port
        self.timeout = timeout
        self._ctx = None
        self._cert_path = cert_path
        self._idle: dict[str, list[http.client.HTTPSConnection]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="rpc")
        self._down_until: dict[str, float] = {}
        self.reconciler: Reconciler | None = None     # see call()

    def _context(self) -> ssl.SSLContext:
        if self._ctx is None:
            from genet.ssl_utils import client_context
            self._ctx = client_context(self._cert_path)
        return self._ctx

    def _connection(self, address: str, timeout: float) -> http.client.HTTPSConnection:
        with self._lock:
            idle = self._idle.get(address)
            if idle:
                conn = idle.pop()
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                return conn
        return http.client.HTTPSConnection(address, self.port, timeout=timeout, context=self._context())

    def reload_certificate(self) -> None:
        """Read the cluster certificate files again (a renewal staged, switched or retired one,
        see ssl_utils); the open connections are closed."""
        with self._lock:
            self._ctx = None
            idle, self._idle = self._idle, {}
        for conn in (c for conns in idle.values() for c in conns):
            conn.close()

    def _drop_idle(self, address: str) -> None:
        with self._lock:
            for conn in self._idle.pop(address, []):
                conn.close()

    def _release(self, address: str, conn: http.client.HTTPSConnection) -> None:
        with self._lock:
            self._idle.setdefault(address, []).append(conn)

    def call(self, node: str, address: str, procedure: str, args: list | None = None,
             timeout: float | None = None, body: bytes | None = None,
             fail_fast: bool = False) -> RpcResult:
        """Call ``procedure`` on one node; never raises for remote or network failures.

        ``body`` is ``args`` already encoded, so a call to many nodes encodes once.
        With ``fail_fast`` a node whose connection failed within DOWN_BACKOFF seconds
        is not tried again (replication must not stall on a dead node every time).
        Before a call that acts on instances, a node the ``reconciler`` (the master) suspects of
        running instances placed elsewhere has them stopped; one that refuses the call as cut off
        from the master too, and is then asked once more.
        """
        guarded = self.reconciler is not None and rpc_defs.get(procedure).guarded
        if guarded and self.reconciler.strays_pending(node):
            self.reconciler.stop_strays(node, address)
        if body is None:
            body = serializer.dumps(args or [])
        timeout = self.timeout if timeout is None else timeout
        result = self._send(node, address, procedure, body, timeout, fail_fast)
        if guarded and isinstance(result.error, errors.NodeCutOffError) and self.reconciler.stop_strays(node, address):
            result = self._send(node, address, procedure, body, timeout, fail_fast)
        result.procedure = procedure
        return result

    def _send(self, node: str, address: str, procedure: str, body: bytes, timeout: float,
              fail_fast: bool) -> RpcResult:
        down_until = self._down_until.get(address) if fail_fast else None
        if down_until is not None and time.monotonic() < down_until:
            return RpcResult(node, error=errors.RpcError(
                f"node {node} ({address}) unreachable a moment ago; not retried yet"))
        for attempt in (1, 2):     # a reused connection may have been closed by the peer
            conn = self._connection(address, timeout)
            fresh = conn.sock is None
            try:
                if fresh:     # not the kernel's two minutes of SYN retries on a dead node
                    conn.timeout = min(timeout, CONNECT_TIMEOUT)
                    conn.connect()
                    conn.sock.settimeout(timeout)
                conn.request("POST", f"/{procedure}", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException, ssl.SSLError) as err:
                conn.close()
                if not fresh:      # the peer restarted: every kept connection to it is dead
                    self._drop_idle(address)
                # a kept connection the peer closed is tried once more; one that timed out is not
                # (the node does not answer: a second try would only wait again)
                if fresh or attempt == 2 or isinstance(err, TimeoutError):
                    self._down_until[address] = time.monotonic() + DOWN_BACKOFF
                    return RpcResult(node, error=errors.RpcError(
                        f"node {node} ({address}:{self.port}) unreachable: {err}"))
                continue
            self._release(address, conn)
            self._down_until.pop(address, None)
            return self._decode(node, procedure, response.status, data)
        raise AssertionError("unreachable")

    @staticmethod
    def _decode(node: str, procedure: str, status: int, data: bytes) -> RpcResult:
        """The reply, its result typed as genet.rpc_defs declares it."""
        try:
            success, payload = serializer.loads(data)
        except (ValueError, TypeError):
            return RpcResult(node, error=errors.RpcError(
                f"node {node} sent an invalid reply (HTTP {status}): {data[:200]!r}"))
        if not success:
            return RpcResult(node, error=errors.from_wire(payload))
        try:
            return RpcResult(node, rpc_defs.get(procedure).decode_result(payload))
        except WireTypeError as err:
            return RpcResult(node, error=errors.RpcError(f"node {node} sent an invalid reply: {err}"))

    def call_many(self, nodes: dict[str, str], procedure: str, args: list | None = None,
                  timeout: float | None = None) -> dict[str, RpcResult]:
        """Call ``procedure`` on every node of ``{name: address}`` at once."""
        body = serializer.dumps(args or [])
        if len(nodes) == 1:
            (name, address), = nodes.items()
            return {name: self.call(name, address, procedure, timeout=timeout, body=body)}
        futures = {name: self._pool.submit(self.call, name, address, procedure, None, timeout, body)
                   for name, address in nodes.items()}
        return {name: fut.result() for name, fut in futures.items()}

    def call_quorum(self, nodes: dict[str, str], procedure: str, args: list, needed: int,
                    accept=lambda result: not result.failed, timeout: float | None = None,
                    on_result: Callable[[str, RpcResult], None] | None = None,
                    ) -> tuple[int, dict[str, RpcResult]]:
        """Call every node; return once ``needed`` accepted results arrived (or all did).

        Stragglers finish in the background, so one dead node does not slow a
        replicated write down to its timeout; ``on_result`` sees every result, late
        ones included. Returns (accepted, results so far).
        """
        body = serializer.dumps(args)
        futures = {}
        for name, address in nodes.items():
            fut = self._pool.submit(self.call, name, address, procedure, None, timeout, body, True)
            futures[fut] = name
            if on_result is not None:
                fut.add_done_callback(lambda f, n=name: on_result(n, f.result()))
        results: dict[str, RpcResult] = {}
        accepted = 0
        pending = set(futures)
        while pending and accepted < needed:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()
                results[futures[fut]] = result
                accepted += bool(accept(result))
        return accepted, results

    def close(self) -> None:
        with self._lock:
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
            self._idle.clear()


def can_connect(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


class NodeRpc:
    """The master's typed node RPC: one attribute per procedure of genet.rpc_defs.

    ``rpc.instance_info(node, name, hypervisor)`` calls one node and returns its RpcResult, the
    payload typed as the table declares; ``rpc.instance_info.on(nodes, ...)`` calls several at
    once ({name: result}; ``nodes`` are names, or a {name: address} mapping), ``.quorum(...)``
    returns once enough accepted (RpcClient.call_quorum). Arguments are checked against the
    definition before anything is sent (a mismatch is a bug: TypeError). ``timeout=`` overrides
    the table's. Addresses come from ``address_of`` (the config's primary IPs).
    """

    def __init__(self, client: RpcClient, address_of: Callable[[str], str]):
        self.client = client
        self.address_of = address_of

    def __getattr__(self, name: str) -> "Call":
        proc = rpc_defs.PROCEDURES.get(name)
        if proc is None:
            raise AttributeError(f"no RPC procedure {name!r}")
        return Call(self, proc)

    def with_addresses(self, addresses: Mapping[str, str]) -> "NodeRpc":
        """The same client for nodes the config does not (or no longer) know."""
        return NodeRpc(self.client, lambda node: addresses[node] if node in addresses else self.address_of(node))


class Call:
    """One procedure of a NodeRpc, ready to be called on one node or several."""

    def __init__(self, rpc: NodeRpc, proc: rpc_defs.Procedure):
        self.rpc, self.proc = rpc, proc

    def __call__(self, node: str, *args, timeout: float | None = None, **kwargs) -> RpcResult:
        wire = self.proc.bind(args, kwargs)
        return self.rpc.client.call(node, self.rpc.address_of(node), self.proc.name, wire,
                                    timeout=self.proc.timeout_for(wire) if timeout is None else timeout)

    def _addresses(self, nodes: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
        if isinstance(nodes, Mapping):
            return dict(nodes)
        return {node: self.rpc.address_of(node) for node in nodes}

    def on(self, nodes: Iterable[str] | Mapping[str, str], *args, timeout: float | None = None,
           **kwargs) -> dict[str, RpcResult]:
        wire = self.proc.bind(args, kwargs)
        return self.rpc.client.call_many(self._addresses(nodes), self.proc.name, wire,
                                         timeout=self.proc.timeout_for(wire) if timeout is None else timeout)

    def quorum(self, nodes: Iterable[str] | Mapping[str, str], *args, needed: int,
               accept: Callable[[RpcResult], bool] = lambda result: not result.failed,
               on_result: Callable[[str, RpcResult], None] | None = None, timeout: float | None = None,
               **kwargs) -> tuple[int, dict[str, RpcResult]]:
        wire = self.proc.bind(args, kwargs)
        return self.rpc.client.call_quorum(self._addresses(nodes), self.proc.name, wire, needed, accept=accept,
                                           timeout=self.proc.timeout_for(wire) if timeout is None else timeout,
                                           on_result=on_result)
