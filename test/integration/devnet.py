"""For tests (and benchmarks) on dev clusters: waiting for something a cluster does.

(A cluster's subnet is dev-cluster's own choice: leave --subnet out; see genet.netguard.)"""
from __future__ import annotations

import time

import pytest


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """The first true value of ``predicate()``; a failure naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
