"""Out-of-band management: running a node's OOB program and reading its answer, as Ganeti's
design-oob says.

A node's ``oob_program`` node parameter names an executable (an absolute path on the master) that
reaches the node's hardware from outside (a BMC, a power switch, a fencing agent). genet-noded
on the master runs it as ``PROGRAM COMMAND NODE``; exit 0 means done, and power-status and health
answer with JSON on standard output; any other exit is a failure whose reason is on standard
error. The program is killed after its timeout. This module only runs and reads; what a command
means for the cluster (the recorded power state, the master left alone) is cmdlib.node_oob's.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from typing import Any

from genet import errors

POWER_ON, POWER_OFF, POWER_CYCLE, POWER_STATUS, HEALTH = \
    "power-on", "power-off", "power-cycle", "power-status", "health"
COMMANDS = (POWER_ON, POWER_OFF, POWER_CYCLE, POWER_STATUS, HEALTH)
POWER_COMMANDS = (POWER_ON, POWER_OFF, POWER_CYCLE)      # answer nothing
POWERED = "powered"                                      # power-status's answer: {"powered": bool}
STATUS_OK, STATUS_WARNING, STATUS_CRITICAL, STATUS_UNKNOWN = "OK", "WARNING", "CRITICAL", "UNKNOWN"
STATUSES = (STATUS_OK, STATUS_WARNING, STATUS_CRITICAL, STATUS_UNKNOWN)   # of each health item
TIMEOUT = 60            # seconds a program may run (Ganeti's OOB_TIMEOUT)
POWER_DELAY = 2.0       # seconds between two power-ons (Ganeti's OOB_POWER_DELAY)
LINGER = 1.0            # seconds a program may take to exit after SIGTERM before SIGKILL


def unsupported(node: str) -> str:
    """Why ``node`` cannot take an out-of-band command (said alike by the master and the CLI)."""
    return f"Node {node} does not support out-of-band commands: its node parameter oob_program is empty"


def run(program: str, command: str, node: str, timeout: float = TIMEOUT) -> Any:
    """Run ``program command node``; its JSON answer (None when it printed nothing). A failure,
    a timeout or output that is not JSON raises CommandError with Ganeti's message."""
    if not os.path.isabs(program):
        raise errors.CommandError(f"out-of-band program {program!r} is not an absolute path")
    argv = [program, command, node]
    text = shlex.join(argv)
    try:   # a session of its own: a timeout stops the program's children too
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "LC_ALL": "C"}, start_new_session=True)
    except OSError as err:
        raise errors.CommandError(f"'{text}' failed with reason '{err.strerror}'; output: ") from None
    reasons = []
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = _stop(proc)
        reasons.append(f"terminated after timeout of {timeout:.2f} seconds")
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if proc.returncode != 0 or reasons:
        ended = (f"terminated by signal {-proc.returncode}" if proc.returncode < 0
                 else f"exited with exit code {proc.returncode}")
        raise errors.CommandError(f"'{text}' failed with reason '{', '.join([ended] + reasons)}'; output: {out}{err}")
    if not out.strip():
        return None
    try:
        return json.loads(out)
    except ValueError as exc:
        raise errors.CommandError(f"'{text}' answered no valid JSON ({exc}): {out.strip()[:200]}") from None


def _stop(proc: subprocess.Popen) -> tuple[bytes, bytes]:
    """SIGTERM to the program's session, SIGKILL after LINGER; what it wrote."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.communicate(timeout=LINGER)
        except subprocess.TimeoutExpired:
            continue
    return proc.communicate()


def check_payload(command: str, payload: Any) -> None:
    """Refuse an answer that does not fit ``command`` (OpExecError naming every fault), as
    Ganeti's LUOobCommand does."""
    faults = []
    if command == HEALTH:
        if not isinstance(payload, list):
            faults.append(f"command 'health' is expected to return a list but got {type(payload).__name__}")
        else:
            for entry in payload:
                if not (isinstance(entry, list) and len(entry) == 2):
                    faults.append(f"health item {entry!r} is not an [item, status] pair")
                elif entry[1] not in STATUSES:
                    faults.append(f"health item '{entry[0]}' has invalid status '{entry[1]}'")
    elif command == POWER_STATUS:
        if not isinstance(payload, dict):
            faults.append(f"power-status is expected to return a dict but got {type(payload).__name__}")
        elif not isinstance(payload.get(POWERED), bool):
            faults.append(f"power-status is expected to say whether the node is {POWERED} (true or false),"
                          f" got {payload.get(POWERED)!r}")
    elif payload is not None:
        faults.append(f"{command} is expected to not return payload but got '{payload}'")
    if faults:
        raise errors.OpExecError(f"Check of out-of-band payload failed due to {', '.join(faults)}")
