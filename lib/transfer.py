"""Copying disk data between nodes: a one-shot TLS stream with the cluster certificate.

The receiving node listens on a free port and writes what arrives into the disk file;
the sending node streams the file. Both sides compute a SHA-256 of the data (before
compression), so the master can check that what arrived is what was sent.

The stream is the data's size (8 bytes), then chunks, each after its length (4 bytes),
ending with an empty one: with a compression tool (genet.compression) the sender pipes the
file through the tool and the receiver through its expanding counterpart, and the chunks
carry the compressed bytes, whose length nobody knows beforehand.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from genet import compression, errors, paths

CHUNK = 1 << 20
ACCEPT_TIMEOUT = 120.0


class Receiver:
    """One incoming transfer into ``path``; ``result()`` waits for it to end."""

    def __init__(self, path: Path, address: str, compress: str = compression.NONE):
        self.path = path
        self.expand = _tool_command(compression.expand_command(compress))
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
                header = _read_exactly(conn, 8)
                expected = int.from_bytes(header, "big") if len(header) == 8 else -1
                digest, size = _store(_frames(conn), out, self.expand)
                if size != expected:
                    raise errors.OpExecError(f"{size} bytes arrived, {expected} were announced")
                out.truncate(size)
                out.flush()
                os.fsync(out.fileno())
                self._outcome = {"bytes": size, "sha256": digest}
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


def send(path: Path, address: str, port: int, compress: str = compression.NONE) -> dict:
    """Stream ``path`` to a Receiver on address:port (through ``compress``); returns the size and
    SHA-256 of the data sent.

    The receiver answers with what it stored, which also keeps this side reading until the
    peer is done (closing with unread data would reset the connection and lose the tail).
    """
    from genet.ssl_utils import client_context
    command = _tool_command(compression.compress_command(compress))
    with socket.create_connection((address, port), timeout=60) as raw, \
            client_context(paths.cluster_cert()).wrap_socket(raw) as conn, open(path, "rb") as src:
        conn.sendall(os.fstat(src.fileno()).st_size.to_bytes(8, "big"))
        def frame(chunk: bytes) -> None:
            conn.sendall(len(chunk).to_bytes(4, "big") + chunk)
        digest, size = _pipe(src, frame, command)
        conn.sendall(bytes(4))
        answer = b""
        while part := conn.recv(4096):
            answer += part
    sent = {"bytes": size, "sha256": digest}
    try:
        stored = json.loads(answer)
    except ValueError:
        raise errors.OpExecError(f"the receiver of {path.name} did not confirm the copy") from None
    if stored != sent:
        raise errors.OpExecError(f"{path.name} arrived damaged: sent {sent}, stored {stored}")
    return sent


def _tool_command(command: list[str] | None) -> list[str] | None:
    """``command`` with its program found on this node's PATH; a missing tool says so."""
    if command is None:
        return None
    found = shutil.which(command[0])
    if found is None:
        raise errors.OpExecError(f"compression tool {command[0]!r} is not installed on this node")
    return [found, *command[1:]]


def _read_exactly(conn, count: int) -> bytes:
    data = b""
    while len(data) < count and (part := conn.recv(count - len(data))):
        data += part
    return data


def _frames(conn):
    """The chunks of the stream until the empty one that ends it."""
    while True:
        header = _read_exactly(conn, 4)
        if len(header) < 4:
            raise errors.OpExecError("the sender stopped in the middle of the stream")
        length = int.from_bytes(header, "big")
        if not length:
            return
        chunk = _read_exactly(conn, length)
        if len(chunk) < length:
            raise errors.OpExecError("the sender stopped in the middle of a chunk")
        yield chunk


def _pipe(src: BinaryIO, emit: Callable[[bytes], None], command: list[str] | None) -> tuple[str, int]:
    """Read ``src`` to its end, emitting it (through ``command`` when given); the SHA-256 and
    size of what was read."""
    digest, size = hashlib.sha256(), 0
    if command is None:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            emit(chunk)
        return digest.hexdigest(), size
    with _tool(command) as proc:
        def feed() -> None:
            nonlocal size
            try:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    proc.stdin.write(chunk)
            except (BrokenPipeError, ValueError):     # the tool died or was stopped: its exit status tells
                pass
            finally:
                _close(proc.stdin)
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        while chunk := proc.stdout.read(CHUNK):
            emit(chunk)
        feeder.join()
    return digest.hexdigest(), size


def _store(chunks, out: BinaryIO, command: list[str] | None) -> tuple[str, int]:
    """Write ``chunks`` to ``out`` (expanded by ``command`` when given); the SHA-256 and size written."""
    digest, size = hashlib.sha256(), 0
    def write(chunk: bytes) -> None:
        nonlocal size
        out.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    if command is None:
        for chunk in chunks:
            write(chunk)
        return digest.hexdigest(), size
    with _tool(command) as proc:
        def drain() -> None:
            while chunk := proc.stdout.read(CHUNK):
                write(chunk)
        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        except BrokenPipeError:     # the tool died: its exit status tells
            pass
        finally:
            _close(proc.stdin)
        drainer.join()
    return digest.hexdigest(), size


@contextlib.contextmanager
def _tool(command: list[str]) -> Iterator[subprocess.Popen]:
    """A compression tool reading stdin and writing stdout; killed if the copy fails meanwhile,
    always waited for, and its failure (exit status, message) raised once it ends."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    except BaseException:
        proc.kill()
        raise
    finally:
        _close(proc.stdin)
        proc.wait()
        message = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        proc.stdout.close()
    if proc.returncode != 0:
        raise errors.OpExecError(f"{' '.join(command)} failed (exit {proc.returncode}): {message or 'no message'}")


def _close(stream) -> None:
    try:
        stream.close()
    except BrokenPipeError:       # its unwritten buffer: the tool is gone
        pass
