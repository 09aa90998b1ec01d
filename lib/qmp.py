"""Talking QMP to one QEMU process: short sessions through qemu.qmp's asyncio client.

The one QMP client of genet, for every QEMU it runs: the kvm hypervisor's instances
(genet.hypervisor.kvm.monitor adds its error types) and the mirror disk template's NBD
daemons (genet.storage.mirror).

Each call opens the socket, negotiates, runs its commands and closes. QEMU's
monitor socket serves one client at a time, so sessions stay short (no session
waits on events; callers poll) and a per-socket lock queues this process's
callers instead of letting them time out behind each other. The asyncio client
runs under ``asyncio.run`` per call, in a helper thread when the caller is
itself inside an event loop, so blocking callers (noded's worker threads) need
no loop of their own. asyncio and qemu.qmp are imported when a monitor is first
used: registering the backends, as every gnt-* command that names a hypervisor or
disk template does, must not cost their start-up.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

from genet.errors import GenericError

T = TypeVar("T")
_MAX_SUN_PATH = 107
CONNECT_ATTEMPTS = 3
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class QmpError(GenericError):
    """The QMP session failed: no socket, no or a broken QEMU, a timeout, qemu.qmp missing."""


class QmpCommandError(QmpError):
    """QEMU answered a command with an error; ``error_class`` is QMP's class (GenericError, ...)."""

    def __init__(self, msg: str, error_class: str = ""):
        super().__init__(msg)
        self.error_class = error_class


class _ConnectFailed(QmpError):
    """The QMP session could not be opened (worth another try)."""


def unix_connect(path: Path, timeout: float = 5.0) -> socket.socket:
    """A connected AF_UNIX socket, even when ``path`` is longer than sun_path allows
    (deep GENET_ROOTs): then through /proc/self/fd/N/NAME of the opened directory."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        if len(os.fsencode(str(path))) <= _MAX_SUN_PATH:
            sock.connect(str(path))
        else:
            dfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
            try:
                sock.connect(f"/proc/self/fd/{dfd}/{path.name}")
            finally:
                os.close(dfd)
    except OSError:
        sock.close()
        raise
    sock.settimeout(None)
    return sock


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, whatever thread we are in."""
    import asyncio
    import concurrent.futures
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())               # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()   # type: ignore[arg-type]


class Monitor:
    """The QMP monitor socket ``sock`` of one QEMU; ``label`` names it in errors ("instance web1")."""

    def __init__(self, sock: Path, label: str, timeout: float = 10.0):
        self.sock = sock
        self.label = label
        self.timeout = timeout

    def execute(self, cmd: str, args: dict | None = None) -> Any:
        return self.execute_many([(cmd, args)])[0]

    def execute_many(self, calls: list[tuple[str, dict | None]]) -> list[Any]:
        """Run commands in order in one session; the first error stops the rest.

        Opening the session is retried a few times: a QEMU that has just taken over a
        migrated guest sometimes fails the QMP negotiation once.
        """
        with _lock_for(self.sock):
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    return run_async(lambda: self._session(calls))
                except _ConnectFailed:
                    if attempt == CONNECT_ATTEMPTS - 1:
                        raise
                    time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _session(self, calls: list[tuple[str, dict | None]]) -> list[Any]:
        import asyncio
        try:
            from qemu.qmp import ConnectError, ExecuteError, QMPClient, QMPError
        except ImportError:     # noded must start without it; using QEMU then fails clearly
            raise QmpError(f"{self.label}: QMP needs the Python package qemu.qmp (PyPI qemu.qmp)") from None
        client = QMPClient(self.label)
        current = "connect"
        try:
            sock = unix_connect(self.sock)
            await asyncio.wait_for(client.connect(sock), self.timeout)
            results = []
            for current, args in calls:
                results.append(await asyncio.wait_for(client.execute(current, args), self.timeout))
            return results
        except ExecuteError as err:
            raise QmpCommandError(f"{self.label}: QMP {current} failed: {err}", err.error_class) from None
        except (ConnectError, QMPError, OSError, EOFError, asyncio.TimeoutError) as err:
            reason = str(err) or type(err).__name__
            negotiation = isinstance(err, ConnectError) and not isinstance(getattr(err, "exc", None), OSError)
            failure = _ConnectFailed if current == "connect" and negotiation else QmpError
            raise failure(f"{self.label}: QMP monitor {self.sock} ({current}): {reason}") from None
        finally:
            try:
                await client.disconnect()
            except Exception:           # the peer may already be gone (quit, crash)
                pass


def _lock_for(sock: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(sock), threading.Lock())
