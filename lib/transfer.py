"""Copying disk data between nodes: a one-shot TLS stream with the cluster certificate.

The receiving node listens on a free port and writes what arrives into the disk file;
the sending node streams the file. Both sides compute a SHA-256, so the master can
check that what arrived is what was sent.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import threading
from pathlib import Path

from genet import errors, paths

CHUNK = 1 << 20
ACCEPT_TIMEOUT = 120.0


class Receiver:
    """One incoming transfer into ``path``; ``result()`` waits for it to end."""

    def __init__(self, path: Path, address: str):
        self.path = path
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(paths.cluster_cert())
        ctx.load_verify_locations(paths.cluster_cert())
        ctx.verify_mode = ssl.CERT_REQUIRED            # only a node of this cluster may send
        self._ctx = ctx
        self._sock = socket.create_server((address, 0))
        self._sock.settimeout(ACCEPT_TIMEOUT)
        self.port = self._sock.getsockname()[1]
        self._outcome: dict | Exception | None = None
        self._done = threading.Event()
        threading.Thread(target=self._run, daemon=True, name=f"receive-{self.port}").start()

    def _run(self) -> None:
        try:
            raw, _ = self._sock.accept()
            with self._ctx.wrap_socket(raw, server_side=True) as conn, open(self.path, "r+b") as out:
                digest, size = hashlib.sha256(), 0
                header = b""
                while len(header) < 8 and (part := conn.recv(8 - len(header))):
                    header += part
                expected = int.from_bytes(header, "big") if len(header) == 8 else -1
                while size < expected and (chunk := conn.recv(min(CHUNK, expected - size))):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.truncate(size)
                out.flush()
                os.fsync(out.fileno())
                self._outcome = {"bytes": size, "sha256": digest.hexdigest()}
                conn.sendall(json.dumps(self._outcome).encode())    # the sender waits for this
        except Exception as err:          # reported to the master by result()
            self._outcome = err
        finally:
            self._sock.close()
            self._done.set()

    def result(self, timeout: float) -> dict:
        if not self._done.wait(timeout):
            raise errors.OpExecError(f"receiving {self.path.name} did not finish in {timeout:.0f} s")
        if isinstance(self._outcome, Exception):
            raise errors.OpExecError(f"receiving {self.path.name} failed: {self._outcome}")
        return self._outcome


def send(path: Path, address: str, port: int) -> dict:
    """Stream ``path`` to a Receiver on address:port; returns size and SHA-256 sent.

    The size goes first, then the data; the receiver answers with what it stored, which
    also keeps this side reading until the peer is done (closing with unread data would
    reset the connection and lose the tail).
    """
    from genet.ssl_utils import client_context
    digest, size = hashlib.sha256(), 0
    with socket.create_connection((address, port), timeout=60) as raw, \
            client_context(paths.cluster_cert()).wrap_socket(raw) as conn, open(path, "rb") as src:
        conn.sendall(os.fstat(src.fileno()).st_size.to_bytes(8, "big"))
        while chunk := src.read(CHUNK):
            conn.sendall(chunk)
            digest.update(chunk)
            size += len(chunk)
        answer = b""
        while part := conn.recv(4096):
            answer += part
    sent = {"bytes": size, "sha256": digest.hexdigest()}
    try:
        stored = json.loads(answer)
    except ValueError:
        raise errors.OpExecError(f"the receiver of {path.name} did not confirm the copy") from None
    if stored != sent:
        raise errors.OpExecError(f"{path.name} arrived damaged: sent {sent}, stored {stored}")
    return sent
