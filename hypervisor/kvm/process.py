"""Launching, recognising and killing QEMU processes.

QEMU runs with ``-daemonize``: the launcher's exit status tells whether setup
worked (its stderr then holds QEMU's reason), the daemon is nobody's child (so
noded can restart under running guests) and its pid is in ``-pidfile``. A pid is
only believed while /proc/PID/cmdline still names our pidfile, so a reused pid
is never mistaken for the guest.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from genet.hypervisor.base import HypervisorError

START_TIMEOUT = 60.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def launch(argv: list[str], cwd: Path, log: Path, instance: str) -> None:
    """Run ``argv -daemonize`` in ``cwd``; return once QEMU is set up, or raise with its stderr."""
    try:
        proc = subprocess.Popen([*argv, "-daemonize"], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as err:
        raise HypervisorError(f"instance {instance}: cannot run {argv[0]}: {err.strerror}") from None
    try:
        _, err = proc.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        err += b"\n(genet: QEMU setup took longer than %d s)" % START_TIMEOUT
    text = err.decode(errors="replace")
    if text:
        with open(log, "a") as f:
            f.write(text)
    if proc.returncode != 0:
        # errors after QEMU's early fork go to its -D log (which it truncated), not to stderr
        tail = log_tail(log) if not text.strip() else "\n".join(text.strip().splitlines()[-5:])
        raise HypervisorError(f"instance {instance}: QEMU failed to start: "
                              f"{tail or f'exit status {proc.returncode}'}")


def log_tail(log: Path, lines: int = 5) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def read_pid(pidfile: Path) -> int:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return 0


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()       # fields from 3 (state) on


def alive(pid: int, pidfile: Path) -> bool:
    """The process exists, is not a zombie and is the QEMU that wrote ``pidfile``."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.fsencode(str(pidfile)) in cmdline


def uptime(pid: int) -> float:
    """Seconds since the process started (from /proc, so it survives noded restarts)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    started = int(fields[19]) / _CLK_TCK            # field 22: starttime in clock ticks
    boot_uptime = float(Path("/proc/uptime").read_text().split()[0])
    return max(0.0, boot_uptime - started)


def kill(pid: int, pidfile: Path, sig: int = signal.SIGKILL) -> None:
    if alive(pid, pidfile):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(pid: int, pidfile: Path, timeout: float) -> bool:
    """Poll until the process is gone; True if it went within ``timeout``."""
    deadline = time.monotonic() + timeout
    while alive(pid, pidfile):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
