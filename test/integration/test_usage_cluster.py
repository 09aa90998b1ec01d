"""Issue 15, item 4: a real guest's use reaches the master's usage history, and hbal reads it.

A 3-node cluster with real QEMU (TCG): the inst-usage collector is set to every 2 seconds, one
guest boots on node1, its QEMU process's CPU time shows in the master daemon's history
(QueryUsage) as samples taken on node1, and ``hbal -L --mond=yes`` scores the cluster with
those loads instead of the default ones, without a warning about missing data.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from devnet import dev_cluster
from genet_dev import testguest

QUERY_USAGE = "import json; from genet import luxi; print(json.dumps(luxi.Client().call('QueryUsage')))"


@pytest.fixture(scope="module")
def gnt(tmp_path_factory):
    guest = testguest.ensure()
    with dev_cluster(tmp_path_factory.mktemp("usage") / "cluster", "--hypervisor", "kvm") as dev:
        def run(*cmd: str, ok: bool = True) -> subprocess.CompletedProcess:
            return dev.run("node1", *cmd, ok=ok)
        run("gnt-cluster", "modify", "--data-collector-interval", "inst-usage=2")
        hv = (f"kernel_path={guest['kernel']},initrd_path={guest['initrd']},accel=tcg,"
              "serial_console=true,kernel_args=console=ttyS0 quiet")
        run("gnt-instance", "add", "-t", "diskless", "-n", "node1", "-B", "memory=128M", "-H", hv, "us1")
        yield run


def history(gnt) -> dict:
    return json.loads(gnt(sys.executable, "-c", QUERY_USAGE).stdout)


def component(out: str, name: str) -> float:
    found = re.search(rf"^\s+{name}\s+([0-9.]+)", out, re.M)
    assert found, out
    return float(found.group(1))


def test_a_guests_cpu_use_reaches_the_history_and_hbal_mond_scores_with_it(gnt):
    deadline = time.monotonic() + 30
    samples: list = []
    while time.monotonic() < deadline:
        samples = history(gnt)["instances"].get("us1", [])
        if len(samples) >= 2:
            break
        time.sleep(1)
    assert len(samples) >= 2, samples
    assert {s[1] for s in samples} == {"node1"}
    assert max(s[2] for s in samples) > 0, samples          # TCG keeps QEMU's threads busy
    assert all(0 < s[3] < 1 for s in samples), samples      # resident memory, a share of node1's
    by_size = gnt("hbal", "-L", "-v", "-v")
    by_use = gnt("hbal", "-L", "--mond=yes", "-v", "-v")
    assert "No usage data" not in by_use.stderr, by_use.stderr
    # one instance on one of three nodes: its default CPU load of 1 spreads as sqrt(2)/3
    assert component(by_size.stdout, "cpu_load_cv") == pytest.approx(2 ** 0.5 / 3, abs=1e-6)
    measured = component(by_use.stdout, "cpu_load_cv")
    assert 0 < measured < component(by_size.stdout, "cpu_load_cv")
