#!/usr/bin/env python3
"""How fast a partitioned 3-node dev cluster gets back to one master and one VM (issue 12).

    .venv/bin/python bench/split_brain.py [--repeats 3] [--out FILE]

Fake hypervisor, so the figures are the control plane's own (a QEMU is killed as fast as a
record is dropped). Each repeat, on a cluster of its own making:

1. read lease: the master's link is cut; seconds until `gnt-cluster list-tags` on it is refused
   ("has not heard a majority"), polled every 0.2 s.
2. master-failover on the majority side while the old master is cut off: wall time of
   `gnt-cluster master-failover` (it waits out the old master's read lease).
3. step-down: the old master's link comes back; seconds until its genet-masterd is gone.
4. stray stop: a diskless instance's primary is cut off, the instance fails over on the admin's
   word (`--ignore-consistency --primary-is-down`, wall time reported too); the link comes back;
   seconds until the old primary no longer runs it.

The master moves node1 → node2 → node3 → node1 over the repeats; the instance between the other
two nodes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "test" / "integration"))

from devnet import Dev, tool, wait_for  # noqa: E402

NODES = ("node1", "node2", "node3")


class Cluster(Dev):
    def link(self, node: str, up: bool) -> None:
        proc = tool("heal" if up else "partition", "--dir", str(self.dir), node)
        assert proc.returncode == 0, proc.stderr


def seconds(func) -> float:
    started = time.monotonic()
    func()
    return time.monotonic() - started


def one_repeat(c: Cluster, master: str, new_master: str, spare: str) -> dict:
    figures = {}
    c.link(master, up=False)
    cut = time.monotonic()
    wait_for(lambda: "has not heard a majority" in c.run(master, "gnt-cluster", "list-tags", ok=False).stderr,
             60, "the cut-off master to refuse reads", interval=0.2)
    figures["read_lease_s"] = time.monotonic() - cut
    figures["master_failover_s"] = seconds(lambda: c.run(new_master, "gnt-cluster", "master-failover"))
    c.link(master, up=True)
    figures["step_down_s"] = seconds(lambda: wait_for(lambda: not c.masterd_runs(master), 60,
                                                      "the deposed master to step down", interval=0.05))
    wait_for(lambda: c.run(master, "gnt-cluster", "getmaster").stdout.strip() == new_master, 30,
             "the old master to name the new one")
    # the stray: an instance on the old master (now a plain candidate), failed over to the spare
    name = f"stray-{master}"
    c.run(new_master, "gnt-instance", "add", "-t", "diskless", "-n", master, "-B", "memory=64M", name)
    c.link(master, up=False)
    figures["failover_s"] = seconds(lambda: c.run(new_master, "gnt-instance", "failover", "--ignore-consistency",
                                                  "--primary-is-down", "-n", spare, name))
    assert c.runs(master, name) and c.runs(spare, name)
    c.link(master, up=True)
    figures["stray_stop_s"] = seconds(lambda: wait_for(lambda: not c.runs(master, name), 60,
                                                       "the stray to be stopped", interval=0.05))
    c.run(new_master, "gnt-instance", "remove", "-f", name)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    opts = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="genet-bench-split-")) / "cluster"
    results: dict = {"cpus": os.cpu_count(), "runs": []}
    try:
        proc = tool("start", "--nodes", "3", "--dir", str(directory), timeout=300)
        if proc.returncode != 0:
            raise SystemExit(proc.stdout + proc.stderr)
        c = Cluster(directory)
        for repeat in range(opts.repeats):
            master, new_master, spare = (NODES[(repeat + i) % 3] for i in range(3))
            run = one_repeat(c, master, new_master, spare)
            results["runs"].append({k: round(v, 2) for k, v in run.items()})
            print(f"repeat {repeat + 1}: {results['runs'][-1]}", flush=True)
    finally:
        tool("stop", "--dir", str(directory))
        shutil.rmtree(directory.parent, ignore_errors=True)
    results["median"] = {key: round(statistics.median(r[key] for r in results["runs"]), 2)
                         for key in results["runs"][0]}
    print("median:", results["median"])
    if opts.out:
        Path(opts.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
