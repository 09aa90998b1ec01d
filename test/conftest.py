"""Shared fixtures: a genet node environment under a temporary root."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
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
