"""For tests (and benchmarks) on dev clusters: the dev-cluster tool, a cluster's commands, and
waiting for something a cluster does.

(A cluster's subnet is dev-cluster's own choice: leave --subnet out; see genet.netguard.)"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "dev-cluster"


def tool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """tools/dev-cluster ARGS, run with the python of the tests (genet's venv)."""
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=timeout)


from stored import StoredConfig  # noqa: E402

class Dev(StoredConfig):
    """A running dev cluster: commands on its nodes and their state roots."""

    def __init__(self, directory: Path):
        self.dir = directory

    def run(self, node: str, *cmd: str, ok: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = tool("exec", "--dir", str(self.dir), node, "--", *cmd, timeout=timeout)
        if ok:
            assert proc.returncode == 0, f"{' '.join(cmd)} on {node}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def root(self, node: str) -> Path:
        return self.dir / node / "root"

    def masterd_runs(self, node: str) -> bool:
        try:
            pid = int((self.root(node) / "var/run/genet/genet-masterd.pid").read_text().split()[0])
            return "masterd" in Path(f"/proc/{pid}/cmdline").read_text()
        except (OSError, ValueError, IndexError):
            return False

    def runs(self, node: str, instance: str) -> bool:
        """Whether ``node``'s fake hypervisor has a record of ``instance``."""
        try:
            state = json.loads((self.root(node) / "var/lib/genet/fake-hv/fake-hv.json").read_text())
        except (OSError, ValueError):
            return False
        return instance in state.get("instances", {})


@contextlib.contextmanager
def dev_cluster(directory: Path, *args: str, cls: type[Dev] = Dev) -> Iterator[Dev]:
    """A 3-node dev cluster in ``directory`` (``args``: more start options), stopped afterwards."""
    try:
        proc = tool("start", "--nodes", "3", "--dir", str(directory), *args, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield cls(directory)
    finally:
        stop = tool("stop", "--dir", str(directory))
        assert stop.returncode == 0, stop.stderr


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """The first true value of ``predicate()``; a failure naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
