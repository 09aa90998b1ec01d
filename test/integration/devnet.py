"""For tests (and benchmarks) on dev clusters: a subnet no other cluster on this machine uses,
and waiting for something a cluster does."""
from __future__ import annotations

import ipaddress
import json
import subprocess
import time

import pytest

TEST_NET = ipaddress.IPv4Network("203.0.113.0/24")


def free_subnet(prefix: int = 27) -> str:
    """203.0.113.0/24 if it is unused, else a free /``prefix`` inside it."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    used = [ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False)
            for link in json.loads(out) for a in link.get("addr_info", [])]
    for candidate in [TEST_NET, *TEST_NET.subnets(new_prefix=prefix)]:
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    pytest.fail("no free subnet in 203.0.113.0/24 on this machine: stop the other dev clusters")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """The first true value of ``predicate()``; a failure naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
