"""The job side of Ganeti's surface on a loopback cluster, run as a user types it: gnt-job cancel of a
job queued behind a busy one (Ganeti's QA test), wait, change-priority and list order; gnt-filter
rules that hold, reject and release jobs; gnt-debug submit-job, test-jobqueue, locks and iallocator."""
import json
import time

DRAIN = '--predicates=[["jobid", [">", "id", "watermark"]]]'


def status(cluster, job: str) -> str:
    return cluster.run("node1", "gnt-job", "list", "--no-headers", "-o", "status", job).stdout.strip()


def submit(cluster, *argv: str) -> str:
    return cluster.run("node1", *argv, "--submit").stdout.split("JobID: ")[1].split()[0]


def until(check, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_delay_behind_another_is_canceled_before_it_starts(cluster):
    """Ganeti's QA: a second delay waits for the first's lock and is canceled meanwhile; its watch
    fails and it ends canceled; wait and change-priority act on the queue."""
    first = submit(cluster, "gnt-debug", "delay", "10")      # long enough to still run on a busy machine
    second = submit(cluster, "gnt-debug", "delay", "2")
    until(lambda: status(cluster, second) == "waiting")
    third = submit(cluster, "gnt-debug", "delay", "0")
    out = cluster.run("node1", "gnt-job", "change-priority", "--priority", "high", third).stdout
    assert out == f"Priorities of pending opcodes for job {third} have been changed to -10\n"
    assert "will be canceled" in cluster.run("node1", "gnt-job", "cancel", second).stdout
    assert cluster.run("node1", "gnt-job", "watch", second, check=False).returncode == 1
    until(lambda: status(cluster, second) == "canceled")
    proc = cluster.run("node1", "gnt-job", "cancel", "--kill", "--yes-do-it", first, check=False)
    assert proc.returncode == 1 and "cannot be killed" in proc.stdout
    assert cluster.run("node1", "gnt-job", "wait", third).stdout == ""
    assert status(cluster, first) == "success"
    listed = cluster.run("node1", "gnt-job", "list", "--no-headers", "-o", "id", third, first, second).stdout.split()
    assert listed == [third, first, second]


def test_filter_rules_hold_reject_and_release_jobs(cluster):
    uuid = cluster.run("node1", "gnt-filter", "add", DRAIN, "--action=PAUSE").stdout.strip()
    held = submit(cluster, "gnt-debug", "delay", "0")
    time.sleep(0.5)
    assert status(cluster, held) == "queued"
    out = cluster.run("node1", "gnt-filter", "list", "--no-headers", "--separator=|", "-o", "uuid,action").stdout
    assert out == f"{uuid}|PAUSE\n"
    assert f"UUID: {uuid}" in cluster.run("node1", "gnt-filter", "info").stdout
    cluster.run("node1", "gnt-filter", "replace", '--predicates=[["opcode", ["=", "OP_ID", "OP_TEST_DELAY"]]]',
                "--action=REJECT", uuid)
    until(lambda: status(cluster, held) == "canceled")
    proc = cluster.run("node1", "gnt-debug", "delay", "0", check=False)
    assert proc.returncode == 1 and "canceled" in proc.stderr
    cluster.run("node1", "gnt-filter", "delete", uuid)
    cluster.run("node1", "gnt-debug", "delay", "0")
    assert cluster.run("node1", "gnt-filter", "list", "--no-headers").stdout == ""
    # the rules live in the configuration every candidate holds
    assert "filters" in cluster.stored_config("node2")


def test_debug_commands(cluster, tmp_path):
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"OP_ID": "OP_TEST_DELAY", "duration": 0.1, "no_locks": True}]))
    out = cluster.run("node1", "gnt-debug", "submit-job", "--job-repeat", "3", "--timing-stats", str(ops)).stdout
    assert "C:op        3\nC:job       3\n" in out
    out = cluster.run("node1", "gnt-debug", "test-jobqueue", timeout=180).stdout
    assert out.splitlines()[-1] == "Job queue test successful"
    holder = submit(cluster, "gnt-debug", "delay", "3")
    until(lambda: status(cluster, holder) == "running")
    locks = cluster.run("node1", "gnt-debug", "locks", "--no-headers", "--separator=|").stdout.splitlines()
    assert f"node/node1|exclusive|{holder}|-" in locks
    request = json.loads(cluster.run("node1", "gnt-debug", "iallocator", "--mode", "allocate", "--mem", "512M",
                                     "-t", "plain", "new1").stdout)
    assert request["request"]["memory"] == 512 and sorted(request["nodes"]) == ["node1", "node2", "node3"]
    proc = cluster.run("node1", "gnt-debug", "allocator", "--dir", "out", "-I", "hail", "-m", "allocate", "new1",
                       check=False)
    assert proc.returncode == 1 and "Missing attribute 'disk_template'" in proc.stderr
    answer = json.loads(cluster.run("node1", "gnt-debug", "allocator", "--dir", "out", "-I", "hail", "-m",
                                    "allocate", "-t", "file", "--disks", "8", "new1").stdout)
    assert answer["success"] is True and answer["result"][0] in ("node1", "node2", "node3"), answer
    proc = cluster.run("node1", "gnt-debug", "wconfd", "echo", "x", check=False)
    assert proc.returncode == 1 and "genet-masterd" in proc.stderr
    cluster.run("node1", "gnt-job", "wait", holder)
