"""The node's side of Ganeti's hooks: run one directory of site scripts, run-parts style.

``<config dir>/hooks/<hpath>-<phase>.d/`` holds the scripts of one opcode and phase (Ganeti's
names, so a site's hooks directory moves over unchanged). Scripts whose names match
``^[a-zA-Z0-9_-]+$`` and are executable run in lexicographic order, with the environment the
master sent and nothing else (PATH reset), stdin from /dev/null and no controlling terminal;
the others are skipped. The master decides what a failure means (genet.hooks).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from genet import errors, paths

PHASES = ("pre", "post")
HKR_SKIP, HKR_FAIL, HKR_SUCCESS = 0, 1, 2      # Ganeti's hook result codes
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")      # script and hook directory names (Ganeti's run-parts rule)
SCRIPT_TIMEOUT = 300.0                          # a script running longer is killed and counts as failed
DATA_DIR_VARS = ("GANETI_DATA_DIR", "GENET_DATA_DIR")


def hooks_dir() -> Path:
    return paths.root() / "etc/genet/hooks"


def has_scripts(hpath: str, phase: str) -> bool:
    """Whether this node has a directory for ``hpath`` and ``phase`` (the master asks itself so,
    without an RPC: most sites have no hooks, and most opcodes none)."""
    return (hooks_dir() / f"{hpath}-{phase}.d").is_dir()


def run_hooks(hpath: str, phase: str, env: dict[str, str], base: Path | None = None) -> list[list]:
    """Run the scripts of ``hpath`` and ``phase``; Ganeti's ``[script, result, output]`` for
    each entry of the directory (the script named relative to the hooks directory)."""
    if not NAME_RE.match(hpath) or phase not in PHASES:
        raise errors.ParameterError(f"invalid hooks directory {hpath!r} or phase {phase!r}")
    subdir = f"{hpath}-{phase}.d"
    folder = (base or hooks_dir()) / subdir
    if not folder.is_dir():
        return []
    env = {**env, **{var: str(paths.data_dir()) for var in DATA_DIR_VARS}}
    results = []
    for name in sorted(os.listdir(folder)):
        script = folder / name
        if not (NAME_RE.match(name) and script.is_file() and os.access(script, os.X_OK)):
            results.append([f"{subdir}/{name}", HKR_SKIP, ""])
            continue
        results.append([f"{subdir}/{name}", *_run(script, env)])
    return results


def _run(script: Path, env: dict[str, str]) -> tuple[int, str]:
    """One script in a session of its own, so that a timeout kills what it started too."""
    try:
        proc = subprocess.Popen([str(script)], cwd=script.parent, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as err:
        return HKR_FAIL, f"Hook script execution error: {err}"
    with proc:
        try:
            output, _ = proc.communicate(timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return HKR_FAIL, f"Hook script execution error: timed out after {SCRIPT_TIMEOUT:.0f} s"
    return (HKR_FAIL if proc.returncode else HKR_SUCCESS), output.decode("utf-8", "replace").strip()


class HooksProcedures:
    """genet-noded's hooks procedure (see genet.rpc_defs.hooks_runner)."""

    def rpc_hooks_runner(self, hpath: str, phase: str, env: dict) -> list:
        return run_hooks(hpath, phase, {str(k): str(v) for k, v in env.items()})
