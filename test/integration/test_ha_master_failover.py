"""Automatic master failover on a real 3-node dev cluster (issue 16): etcd members on the
candidates, the master's lease, a candidate that takes over by itself when the master node is
killed, and a partitioned master that stops accepting jobs within its lease.

The tests share one cluster and run in file order.
"""
from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import devnet
import pytest
from devnet import dev_cluster, tool, wait_for

NODES = ("node1", "node2", "node3")


class Dev(devnet.Dev):
    def queue_ids(self, node: str) -> set[int]:
        with sqlite3.connect(self.root(node) / "var/lib/genet/queue.db") as db:
            return {row[0] for row in db.execute("SELECT id FROM jobs")}

    def master_on(self, nodes) -> str | None:
        """The node among ``nodes`` that accepts a job now (None: none does)."""
        for node in nodes:
            proc = self.run(node, "gnt-debug", "delay", "--submit", "0", ok=False, timeout=30)
            if proc.returncode == 0:
                return node
        return None


class Stream:
    """A client submitting numbered jobs to whichever node accepts them, remembering every ID it
    was given (an acknowledged job)."""

    def __init__(self, dev: Dev, nodes):
        self.dev, self.nodes = dev, list(nodes)
        self.given: dict[int, str] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for node in self.nodes:
                proc = self.dev.run(node, "gnt-debug", "delay", "--submit", "0", ok=False, timeout=30)
                found = re.search(r"JobID: (\d+)", proc.stdout)
                if proc.returncode == 0 and found:
                    self.given[int(found.group(1))] = node
                    break
            time.sleep(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    with dev_cluster(tmp_path_factory.mktemp("ha") / "cluster", cls=Dev) as cluster:
        yield cluster


def test_turning_it_on_starts_the_store_and_the_master_keeps_its_role_and_epoch(dev):
    epoch = dev.stored_config("node1")["cluster"]["master_epoch"]
    proc = dev.run("node1", "gnt-cluster", "modify", "--auto-master-failover", "yes")
    assert "Leadership store (etcd) started on node1, node2, node3" in proc.stdout + proc.stderr
    info = dev.run("node1", "gnt-cluster", "info").stdout
    assert re.search(r"automatic master failover: True", info), info
    for node in NODES:
        pid = int((dev.root(node) / "var/run/genet/genet-etcd.pid").read_text())
        assert "etcd" in Path(f"/proc/{pid}/cmdline").read_text(), node
    assert dev.stored_config("node1")["cluster"]["master_epoch"] == max(epoch, 1)
    assert dev.master_on(NODES) == "node1"


def test_killing_the_master_node_elects_a_new_master_by_itself_and_keeps_every_job(dev):
    """(How fast: bench/ha.py measures it.)"""
    with Stream(dev, NODES) as stream:
        wait_for(lambda: len(stream.given) >= 5, 60, "jobs to be acknowledged before the kill")
        assert tool("kill-node", "--dir", str(dev.dir), "node1").returncode == 0
        stream.nodes = ["node2", "node3"]
        before = len(stream.given)
        wait_for(lambda: any(n != "node1" for n in list(stream.given.values())[before:]), 60,
                 "a new master to accept a job")
        wait_for(lambda: len(stream.given) >= before + 3, 60, "more jobs on the new master")
    new = dev.master_on(["node2", "node3"])
    assert new in ("node2", "node3")
    assert set(stream.given) <= dev.queue_ids(new), sorted(set(stream.given) - dev.queue_ids(new))
    assert dev.stored_config(new)["cluster"]["master_node"] == new


def test_the_old_master_back_follows_the_new_one(dev):
    new = dev.master_on(["node2", "node3"])
    assert tool("restart", "--dir", str(dev.dir), "node1").returncode == 0
    wait_for(lambda: dev.stored_config("node1")["cluster"]["master_node"] == new, 60,
             "node1 to take the new master's config")
    time.sleep(3)
    assert [n for n in NODES if dev.masterd_runs(n)] == [new]


def test_a_partitioned_master_has_stopped_before_another_accepts_and_one_master_is_left(dev):
    old = dev.master_on(NODES)
    others = [n for n in NODES if n != old]
    assert tool("partition", "--dir", str(dev.dir), old).returncode == 0
    wait_for(lambda: dev.master_on(others) is not None, 60, "a master on the majority side")
    assert not dev.masterd_runs(old), f"{old} still runs its masterd beside the new master"
    assert tool("heal", "--dir", str(dev.dir), old).returncode == 0
    new = dev.master_on(others)
    wait_for(lambda: dev.stored_config(old)["cluster"]["master_node"] == new, 60, f"{old} to follow {new}")
    time.sleep(3)
    assert [n for n in NODES if dev.masterd_runs(n)] == [new]
    assert dev.stored_config(old)["serial_no"] == dev.stored_config(new)["serial_no"]


def test_a_manual_master_failover_takes_the_role_on_the_store(dev):
    old = dev.master_on(NODES)
    target = next(n for n in NODES if n != old)
    epoch = dev.stored_config(old)["cluster"]["master_epoch"]
    dev.run(target, "gnt-cluster", "master-failover")
    assert dev.master_on(NODES) == target
    wait_for(lambda: not dev.masterd_runs(old), 30, f"{old} to stop its masterd")
    assert dev.stored_config(target)["cluster"]["master_epoch"] == epoch + 1
    info = dev.run(target, "gnt-cluster", "info").stdout
    assert re.search(rf"last take-over: {target} \(epoch {epoch + 1}, by master-failover\)", info), info
