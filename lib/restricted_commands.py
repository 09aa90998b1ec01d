"""Restricted commands (Ganeti's design-restricted-commands): the master may run, on a node, one
of the executables the node's administrator put in its restricted-commands directory, by name,
without arguments, and gets its output back (gnt-node restricted-command).

A leaked cluster certificate must not turn into "run anything": the directory and each command
must be root's and written by no one else, names are plain file names, there is no way to list
the commands, and a refused name is answered only after a delay and with no reason (the reason
goes to the node's log), under a lock that makes guessing names one at a time node-wide.
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import stat
import subprocess
import time
from pathlib import Path
from typing import Callable

from genet import errors, paths

NAME = re.compile(r"^[a-zA-Z0-9_-]+$")           # Ganeti's EXT_PLUGIN_MASK
MAX_MODE = 0o755                                  # rwxr-xr-x at most, for the directory and the commands
OWNER = (0, 0)                                    # root:root
INVALID_DELAY = 10.0                              # seconds before a refusal is answered
LOCK_TIMEOUT = INVALID_DELAY * 0.8                # shorter, so that waiting requests do not pile up
log = logging.getLogger("genet-noded")


def _checked(path: Path, owner: tuple[int, int]) -> os.stat_result:
    """The path's stat; OSError-free refusals as ValueError with the reason for the log."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise ValueError(f"Can't stat(2) '{path}': {err}") from None
    if stat.S_IMODE(st.st_mode) & ~MAX_MODE:
        raise ValueError(f"Permissions on '{path}' are too permissive")
    if (st.st_uid, st.st_gid) != owner:
        raise ValueError(f"'{path}' is not owned by {owner[0]}:{owner[1]}")
    return st


def executable(directory: Path, cmd: str, owner: tuple[int, int]) -> Path:
    """The command's file once the directory, the name and the file pass Ganeti's checks;
    ValueError with the reason otherwise."""
    if not stat.S_ISDIR(_checked(directory, owner).st_mode):
        raise ValueError(f"Path '{directory}' is not a directory")
    if not cmd.strip():
        raise ValueError("Missing command name")
    if os.path.basename(cmd) != cmd:
        raise ValueError("Invalid command name")
    if not NAME.match(cmd):
        raise ValueError("Command name contains forbidden characters")
    path = directory / cmd
    if not stat.S_ISREG(_checked(path, owner).st_mode):
        raise ValueError(f"'{path}' is not a regular file")
    if not os.access(path, os.X_OK):
        raise ValueError(f"access(2) thinks '{path}' can't be executed")
    return path


def run(cmd: str, owner: tuple[int, int] | None = None, sleep: Callable[[float], None] = time.sleep) -> str:
    """Run the restricted command ``cmd`` here, in an empty environment; its output (stdout, then
    stderr). The node-wide lock is held while the command is checked and until it started, or,
    for a refusal, until the delay is over."""
    lock_path = paths.restricted_commands_lock()
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        child = None
        try:
            _lock(lock)
            path = executable(paths.restricted_commands_dir(), cmd, OWNER if owner is None else owner)
            child = subprocess.Popen([str(path)], env={"LC_ALL": "C"}, cwd=str(paths.root()), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except (ValueError, OSError) as err:
            log.error("restricted command %r refused: %s", cmd, err)
        if child is None:
            sleep(INVALID_DELAY)
            raise errors.CommandError(f"Executing command '{cmd}' failed")
        fcntl.flock(lock, fcntl.LOCK_UN)
    out, err = child.communicate()
    output = (out + err).decode(errors="replace")
    if child.returncode:
        reason = (f"terminated by signal {-child.returncode}" if child.returncode < 0
                  else f"exited with exit code {child.returncode}")
        raise errors.CommandError(f"Restricted command '{cmd}' failed: {reason}; output: {output}")
    return output


def _lock(handle) -> None:
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise ValueError(f"the lock {handle.name} was not free within {LOCK_TIMEOUT:.0f} s") from None
            time.sleep(0.05)
