"""Shared fixtures: a genet node environment under a temporary root."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
# test files that take minutes start first, so that the processes of `make check` (pytest-xdist,
# a file per process) end about together instead of one of them starting the QA suite last
SLOW_FIRST = ("test_qa_suite.py", "test_instances_mirror.py", "test_split_brain_vm.py", "test_rapi_ganeti_client.py",
              "test_instances_drbd.py", "test_instances_kvm.py", "test_split_brain.py", "test_hbal_cluster.py")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))     # genet_dev: dev-cluster, test guest


@pytest.fixture
def node_env(tmp_path, monkeypatch):
    """GENET_* variables for one node whose root is under tmp_path."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.11 node1\n127.0.0.12 node2\n127.0.0.13 node3\n")
    monkeypatch.setenv("GENET_ROOT", str(tmp_path / "node1"))
    monkeypatch.setenv("GENET_HOSTNAME", "node1")
    monkeypatch.setenv("GENET_HOSTS", str(hosts))
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    return tmp_path


def pytest_collection_modifyitems(items):
    rank = {name: k for k, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
