"""Issue 12 on a real 3-node dev cluster: a master cut off by a partition (not killed) is deposed
by a master-failover on the other side, and after the heal it steps down by itself.

The tests share one cluster and run in file order.
"""
from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
import time

import devnet
import pytest
from devnet import TOOL, dev_cluster, tool, wait_for

GIVEN: dict[int, str] = {}          # every job ID a client was given -> the summary of its job


class Dev(devnet.Dev):
    def submit(self, node: str, *cmd: str, summary: str) -> int:
        """Submit a job on ``node`` and remember the ID the client was given."""
        out = self.run(node, *cmd, "--submit").stdout
        job_id = int(re.search(r"JobID: (\d+)", out).group(1))
        assert job_id not in GIVEN, f"job ID {job_id} given twice"
        GIVEN[job_id] = summary
        return job_id

    def master_file(self, node: str) -> str:
        return (self.root(node) / "var/lib/genet/ssconf_master_node").read_text().strip()

    def config(self, node: str) -> dict:
        return self.stored_config(node)

    def tags(self, node: str) -> list[str]:
        return self.config(node)["cluster"]["tags"]

    def queue_ids(self, node: str) -> set[int]:
        """The job IDs in ``node``'s copy of the queue."""
        with sqlite3.connect(self.root(node) / "var/lib/genet/queue.db") as db:
            return {row[0] for row in db.execute("SELECT id FROM jobs")}


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    with dev_cluster(tmp_path_factory.mktemp("split") / "cluster", cls=Dev) as cluster:
        yield cluster


def test_a_partitioned_master_commits_nothing_and_keeps_nothing_uncommitted(dev):
    """When the master is cut off, its writes fail the majority: submissions are refused and
    nothing of them is listed or kept on the master (test_config covers the config's rollback)."""
    dev.submit("node1", "gnt-debug", "delay", "0", summary="TEST_DELAY(0.0)")
    assert tool("partition", "--dir", str(dev.dir), "node1").returncode == 0
    proc = dev.run("node1", "gnt-cluster", "add-tags", "uncommitted", ok=False)
    assert proc.returncode != 0 and "acknowledged by 1 of 3" in proc.stderr, proc.stderr
    assert "uncommitted" not in dev.run("node1", "gnt-cluster", "list-tags", ok=False).stdout.split()
    assert "uncommitted" not in dev.tags("node1")
    refused = dev.run("node1", "gnt-debug", "delay", "--submit", "0", ok=False)
    assert refused.returncode != 0 and "acknowledged by 1 of 3" in refused.stderr


def test_a_master_cut_off_from_the_majority_stops_serving_reads(dev):
    """When the master has heard no majority for its read lease, it refuses reads with an error
    that says why (it may have been deposed), instead of answering from a config that may be old."""
    lease_lapsed = "node1 has not heard a majority of the master candidates"
    wait_for(lambda: lease_lapsed in dev.run("node1", "gnt-cluster", "list-tags", ok=False).stderr, 30,
             "node1's read lease to lapse")
    for cmd in (["gnt-instance", "list"], ["gnt-node", "list"], ["gnt-cluster", "info"]):
        proc = dev.run("node1", *cmd, ok=False)
        assert proc.returncode != 0 and lease_lapsed in proc.stderr, (cmd, proc.stderr)


def test_failover_on_the_majority_side_starts_a_new_epoch(dev):
    """When a candidate on the majority side takes the master role, the candidates that voted
    store the new epoch; jobs submitted there get IDs of their own."""
    proc = dev.run("node2", "gnt-cluster", "master-failover")
    assert "from node1 to node2" in proc.stdout
    assert {dev.config(n)["cluster"]["master_epoch"] for n in ("node2", "node3")} == {1}
    for _ in range(3):
        dev.submit("node2", "gnt-debug", "delay", "0", summary="TEST_DELAY(0.0)")
    dev.submit("node2", "gnt-cluster", "add-tags", "majority", summary="TAGS_SET")
    assert dev.masterd_runs("node1")            # still cut off: it cannot know yet


def test_the_deposed_master_steps_down_after_the_heal(dev):
    """When the link comes back, the old master sees the newer epoch, stops masterd and RAPI and
    takes the new master's config and ssconf: exactly one master, and it is node2."""
    assert tool("heal", "--dir", str(dev.dir), "node1").returncode == 0
    healed = time.monotonic()
    wait_for(lambda: not dev.masterd_runs("node1"), 30, "node1's masterd to step down")
    print(f"\nthe deposed master stepped down {time.monotonic() - healed:.1f} s after the heal")
    assert not dev.masterd_runs("node3") and dev.masterd_runs("node2")
    assert {dev.master_file(n) for n in ("node1", "node2", "node3")} == {"node2"}
    for node in ("node1", "node2", "node3"):
        assert dev.run(node, "gnt-cluster", "getmaster").stdout.strip() == "node2"
    assert "majority" in dev.tags("node1") and "uncommitted" not in dev.tags("node1")
    log = (dev.dir / "node1/root/var/log/genet/genet-masterd.log").read_text()
    assert "stepping down as master" in log and "epoch 1" in log


def test_the_deposed_master_takes_no_more_jobs(dev):
    """When a client asks the old master after the heal, it is refused with an error naming the
    new master, and nothing reaches the new master's queue."""
    before = dev.run("node2", "gnt-job", "list", "--no-headers", "-o", "id").stdout.split()
    proc = dev.run("node1", "gnt-debug", "delay", "0", ok=False)
    assert proc.returncode == 11 and "node2" in proc.stderr, proc.stderr
    assert dev.run("node2", "gnt-job", "list", "--no-headers", "-o", "id").stdout.split() == before


def test_every_job_id_a_client_was_given_maps_to_its_own_job(dev):
    """When jobs were submitted on both sides of the partition and after the heal, every ID a
    client was given names exactly the job it submitted."""
    for _ in range(3):
        dev.submit("node2", "gnt-debug", "delay", "0", summary="TEST_DELAY(0.0)")
    rows = dev.run("node2", "gnt-job", "list", "--no-headers", "--separator=|", "-o", "id,summary").stdout
    listed = {int(i): s for i, s in (line.split("|", 1) for line in rows.splitlines() if line)}
    assert {job_id: listed.get(job_id) for job_id in GIVEN} == GIVEN
    # the old master dropped what it could not commit; as a candidate again it catches up
    wait_for(lambda: dev.queue_ids("node1") >= set(GIVEN), 30, "node1 to hold the committed queue again")
    assert dev.queue_ids("node1") <= set(listed) | {max(listed) + 1}


def test_a_heal_in_the_middle_of_the_failover_leaves_one_master_and_every_job(dev):
    """When the cut-off master's link comes back while a master-failover runs on the other side,
    its writes either commit before the fence (and the new master gathers them) or are refused
    after it: one master in the end, and every job ID a client was given still names its job."""
    assert tool("partition", "--dir", str(dev.dir), "node2").returncode == 0
    done = threading.Event()

    def old_master_client():
        """Submits on the old master all along; an ID it is given must stay its job's."""
        while not done.is_set():
            proc = dev.run("node2", "gnt-cluster", "add-tags", "--submit", f"t{len(GIVEN)}", ok=False, timeout=60)
            if proc.returncode == 0:
                GIVEN[int(re.search(r"JobID: (\d+)", proc.stdout).group(1))] = "TAGS_SET"
    client = threading.Thread(target=old_master_client)
    client.start()
    failover = subprocess.Popen([sys.executable, str(TOOL), "exec", "--dir", str(dev.dir), "node3", "--",
                                 "gnt-cluster", "master-failover"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    time.sleep(0.3)
    assert tool("heal", "--dir", str(dev.dir), "node2").returncode == 0
    out, err = failover.communicate(timeout=120)
    done.set()
    client.join(timeout=90)
    assert failover.returncode == 0 and "from node2 to node3" in out, out + err
    wait_for(lambda: not dev.masterd_runs("node2"), 30, "node2's masterd to step down")
    assert [dev.masterd_runs(n) for n in ("node1", "node2", "node3")] == [False, False, True]
    wait_for(lambda: {dev.master_file(n) for n in ("node1", "node2", "node3")} == {"node3"}, 30,
             "every node to name node3 as master")
    for _ in range(2):
        dev.submit("node3", "gnt-debug", "delay", "0", summary="TEST_DELAY(0.0)")
    rows = dev.run("node3", "gnt-job", "list", "--no-headers", "--separator=|", "-o", "id,summary").stdout
    listed = {int(i): s for i, s in (line.split("|", 1) for line in rows.splitlines() if line)}
    assert {job_id: listed.get(job_id) for job_id in GIVEN} == GIVEN
    assert "majority" in dev.run("node3", "gnt-cluster", "list-tags").stdout.split()


def test_a_node_set_offline_and_back_first_stops_what_failed_over_meanwhile(dev):
    """When a node is cut off and marked offline, its instance fails over without
    --primary-is-down; the master does not call an offline node, so after its link comes back it
    still runs the instance, until it is set online again: then the master stops it there."""
    dev.run("node3", "gnt-instance", "add", "-t", "diskless", "-n", "node1", "-B", "memory=64M", "off1")
    assert dev.runs("node1", "off1")
    assert tool("partition", "--dir", str(dev.dir), "node1").returncode == 0
    dev.run("node3", "gnt-node", "modify", "-O", "yes", "node1")
    out = dev.run("node3", "gnt-instance", "failover", "--ignore-consistency", "-n", "node2", "off1").stdout
    assert "failing over instance off1 from node1 to node2" in out, out
    assert dev.runs("node2", "off1") and dev.runs("node1", "off1")      # node1 cannot know
    assert tool("heal", "--dir", str(dev.dir), "node1").returncode == 0
    time.sleep(3)
    assert dev.runs("node1", "off1"), out        # offline: the master does not call it
    dev.run("node3", "gnt-node", "modify", "-O", "no", "node1")
    wait_for(lambda: not dev.runs("node1", "off1"), 30, "node1 to stop off1, which failed over to node2")
    assert dev.runs("node2", "off1")
    log = (dev.dir / "node1/root/var/log/genet/genet-noded.log").read_text()
    assert "instance off1 runs here (running) but the config places it elsewhere: pausing and killing it" in log
