"""Start and stop genet's daemons for this node's root, by pid file.

A daemon writes its pid file only once it serves, so :func:`start` returning
means the daemon is ready.
"""
from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time

from genet import errors, paths

# the entry point each daemon runs as (python -m MODULE): its genet.daemons module
MODULES = {"genet-noded": "genet.daemons.noded", "genet-masterd": "genet.daemons.masterd", "genet-rapi": "genet.daemons.rapi"}
log = logging.getLogger("genet")


def defaults_args(daemon: str) -> list[str]:
    """Extra arguments from ROOT/etc/default/genet (Ganeti's ``RAPI_ARGS="..."`` lines)."""
    key = daemon.removeprefix("genet-").upper() + "_ARGS"
    try:
        lines = (paths.root() / "etc/default/genet").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() == key:
            try:   # the shell's view: the quoted value, then split into words
                return [word for part in shlex.split(value) for word in shlex.split(part)]
            except ValueError:
                log.warning("%s: cannot parse %s", paths.root() / "etc/default/genet", key)
                return []
    return []


def start_master_daemons(masterd_args: list[str] | None = None) -> None:
    """masterd, then the RAPI; a RAPI that cannot start is logged, the master still works."""
    start("genet-masterd", masterd_args)
    try:
        start("genet-rapi")
    except errors.GenericError as err:
        log.warning("genet-rapi did not start: %s", err)


def stop_master_daemons() -> bool:
    stopped = stop("genet-rapi")
    return stop("genet-masterd") or stopped


def pid_of(daemon: str) -> int | None:
    """The pid of ``daemon`` if its pid file names a live process."""
    try:
        pid = int(paths.pid_file(daemon).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:   # a zombie counts as dead
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
    except OSError:
        return None
    return pid


def write_pid_file(daemon: str) -> None:
    from genet.config import write_atomic
    write_atomic(paths.pid_file(daemon), f"{os.getpid()}\n".encode())


def start(daemon: str, args: list[str] | None = None, timeout: float = 20.0) -> int:
    """Start ``daemon`` detached unless it runs already; returns its pid once it serves.
    Without ``args``, those of /etc/default/genet (NODED_ARGS, MASTERD_ARGS, RAPI_ARGS)."""
    if args is None:
        args = defaults_args(daemon)
    pid = pid_of(daemon)
    if pid:
        return pid
    paths.ensure_dirs()
    paths.pid_file(daemon).unlink(missing_ok=True)
    log = open(paths.log_file(daemon), "ab")
    proc = subprocess.Popen([sys.executable, "-m", MODULES[daemon], *(args or [])],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise errors.CommandError(
                f"{daemon} exited with code {proc.returncode} at start; "
                f"last log lines:\n{_tail(paths.log_file(daemon))}")
        pid = pid_of(daemon)
        if pid == proc.pid:
            return pid
        time.sleep(0.02)
    proc.kill()
    raise errors.CommandError(f"{daemon} did not become ready within {timeout:.0f}s")


def stop(daemon: str, timeout: float = 10.0) -> bool:
    """Stop ``daemon`` (SIGTERM, then SIGKILL); True if one was running."""
    pid = pid_of(daemon)
    if pid is None:
        paths.pid_file(daemon).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.02)
    if process_alive(pid):
        os.kill(pid, signal.SIGKILL)
    paths.pid_file(daemon).unlink(missing_ok=True)
    return True


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _tail(path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
