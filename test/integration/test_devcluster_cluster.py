"""Issue 3 on a real 3-node dev cluster: network namespaces, SSH joins, TLS, failover.

The tests share one cluster and run in file order; the last ones kill the master.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import time

import pytest
from devnet import dev_cluster, tool

from genet import luxi, opcodes, ssl_utils
from genet.cli.base import parse_log_line
from genet.rpc import RpcClient


def delay(seconds: float = 0.0) -> dict:
    return opcodes.OpTestDelay(duration=seconds).to_dict()


def wait_all(client, ids, timeout: float = 120) -> list:
    """Wait for jobs to end; returns [opresult, status] for each."""
    deadline = time.monotonic() + timeout
    for job_id in ids:
        info = None
        while not info or info[0] not in ("success", "error", "canceled"):
            assert time.monotonic() < deadline, f"job {job_id} did not finish"
            change = client.wait_for_job_change(job_id, ["status"], info, 0, 10)
            info = change["job_info"] if isinstance(change, dict) else info
    return [[row[0], row[1]] for row in client.call("QueryJobs", ids, ["opresult", "status"])]


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    with dev_cluster(tmp_path_factory.mktemp("dev") / "cluster") as cluster:
        yield cluster


def test_nodes_joined_over_ssh_and_were_promoted(dev):
    """When dev-cluster ran init and two `gnt-node add`s, all three nodes are listed with roles."""
    out = dev.run("node1", "gnt-node", "list", "--no-headers", "-o", "name,role,master_candidate").stdout
    assert out.splitlines() == ["node1 M Y", "node2 C Y", "node3 C Y"]
    for node in ("node2", "node3"):
        assert (dev.root(node) / "var/lib/genet/config.data").exists()


def test_verify_is_clean_and_getmaster_agrees_everywhere(dev):
    dev.run("node1", "gnt-cluster", "verify")
    for node in ("node1", "node2", "node3"):
        assert dev.run(node, "gnt-cluster", "getmaster").stdout.strip() == "node1"


def test_adding_a_node_twice_is_refused(dev):
    proc = dev.run("node1", "gnt-node", "add", "--no-ssh-key-check", "node2", ok=False)
    assert proc.returncode == 1 and "already in the cluster" in proc.stderr


def test_adding_an_unknown_node_names_it(dev):
    proc = dev.run("node1", "gnt-node", "add", "--no-ssh-key-check", "node9", ok=False)
    assert proc.returncode == 1 and "node9" in proc.stderr


def test_partitioned_node_is_reported_by_verify_until_healed(dev):
    assert tool("partition", "--dir", str(dev.dir), "node3").returncode == 0
    try:
        proc = dev.run("node1", "gnt-cluster", "verify", ok=False)
        assert proc.returncode == 1
        assert "node node3: cannot reach node over TLS" in proc.stdout
        assert "node2" not in proc.stdout.split("ERROR", 1)[1]
    finally:
        assert tool("heal", "--dir", str(dev.dir), "node3").returncode == 0
    dev.run("node1", "gnt-cluster", "verify")


def test_two_hundred_jobs_at_once_all_succeed(dev):
    client = luxi.Client(dev.root("node1") / "var/run/genet/socket/master.sock")
    ids = [job_id for ok, job_id in client.call("SubmitManyJobs", [[delay()]] * 200)]
    assert len(set(ids)) == 200
    assert {status for _, status in wait_all(client, ids)} == {"success"}


def test_gnt_job_watch_streams_a_jobs_log(dev):
    """When a job logs messages, gnt-job watch prints each with the time of its own log entry."""
    job_id = dev.run("node1", "gnt-debug", "delay", "--submit", "-r", "3", "0.3").stdout.split()[-1]
    out = dev.run("node1", "gnt-job", "watch", job_id).stdout
    lines = [parsed for parsed in map(parse_log_line, out.splitlines()) if parsed and "Test delay" in parsed[1]]
    assert [message for _, message in lines] == [f"Test delay iteration {i}/2" for i in (0, 1, 2)]
    client = luxi.Client(dev.root("node1") / "var/run/genet/socket/master.sock")
    (oplog,), = client.query_jobs([int(job_id)], ["oplog"])
    assert [stamp for stamp, _ in lines] == [time.ctime(ts[0]) for _, ts, _, message in oplog[0]
                                             if "Test delay" in message]


def test_kill_9_masterd_with_300_jobs_in_flight(dev):
    """When masterd is SIGKILLed with 300 jobs in flight and restarted, each id ends final, once,
    and every candidate holds the same config serial."""
    sock = dev.root("node1") / "var/run/genet/socket/master.sock"
    ids = [job_id for _, job_id in luxi.Client(sock).call("SubmitManyJobs", [[delay(0.01)]] * 300)]
    pid = int((dev.root("node1") / "var/run/genet/genet-masterd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    dev.run("node1", "genet-daemon", "start")
    results = wait_all(luxi.Client(sock), ids)
    assert {status for _, status in results} <= {"success", "error"}
    for opresult, status in results:
        if status == "error":
            assert "marked failed" in json.dumps(opresult)
    rows = luxi.Client(sock).call("QueryJobs", ids, ["opstart"])
    assert all(len(row[0]) == 1 for row in rows)
    serials = {dev.stored_config(n)["serial_no"]
               for n in ("node1", "node2", "node3")}
    assert len(serials) == 1


def test_tls_client_without_the_cluster_certificate_is_refused(dev, tmp_path):
    address = json.loads((dev.dir / "cluster.json").read_text())["nodes"][1]["ip"]
    foreign = tmp_path / "foreign.pem"
    ssl_utils.generate_cluster_cert(foreign, "intruder")
    refused = RpcClient(foreign, 1811, timeout=5).call("node2", address, "version")
    assert refused.failed
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with pytest.raises(OSError):
        with socket.create_connection((address, 1811), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
            tls.sendall(b"POST /version HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]")
            if not tls.recv(100):
                raise ConnectionResetError("closed without a reply")
    own = RpcClient(dev.root("node1") / "var/lib/genet/server.pem", 1811, timeout=5)
    assert own.call("node2", address, "version").payload.protocol == 1


def test_removing_the_master_is_refused(dev):
    proc = dev.run("node1", "gnt-node", "remove", "node1", ok=False)
    assert proc.returncode == 1 and "master node cannot be removed" in proc.stderr


def test_kill_master_node_then_failover_on_a_candidate_keeps_every_change(dev):
    """When the master node dies, a candidate wins the vote and nothing acknowledged is lost."""
    dev.run("node1", "gnt-cluster", "add-tags", "acknowledged")
    dev.run("node1", "gnt-debug", "delay", "0")
    jobs_before = dev.run("node1", "gnt-job", "list", "--no-headers", "-o", "id").stdout.split()
    assert tool("kill-node", "--dir", str(dev.dir), "node1").returncode == 0
    proc = dev.run("node2", "gnt-cluster", "master-failover")
    assert "from node1 to node2" in proc.stdout
    assert dev.run("node3", "gnt-cluster", "getmaster").stdout.strip() == "node2"
    assert "acknowledged" in dev.run("node2", "gnt-cluster", "list-tags").stdout.split()
    jobs_after = dev.run("node2", "gnt-job", "list", "--no-headers", "-o", "id").stdout.split()
    assert set(jobs_before) <= set(jobs_after)
    dev.run("node2", "gnt-debug", "delay", "0")


def test_dead_old_master_is_set_offline_and_the_cluster_works_on(dev):
    dev.run("node2", "gnt-node", "modify", "-O", "yes", "node1")
    out = dev.run("node2", "gnt-node", "list", "--no-headers", "-o", "name,role").stdout
    assert out.splitlines() == ["node1 O", "node2 M", "node3 C"]
    proc = dev.run("node2", "gnt-cluster", "verify")
    assert "node node1 is offline" in proc.stdout
    serials = {dev.stored_config(n)["serial_no"]
               for n in ("node2", "node3")}
    assert len(serials) == 1


def test_old_master_coming_back_does_not_start_a_second_masterd(dev):
    tool("restart", "--dir", str(dev.dir), "node1", timeout=120)
    assert not (dev.root("node1") / "var/run/genet/genet-masterd.pid").exists() or \
        dev.run("node1", "gnt-cluster", "getmaster", ok=False).stdout.strip() != "node1" or \
        pytest.fail("node1 runs a master daemon after failover")
    log = (dev.root("node1") / "var/log/genet/genet-masterd.log").read_text()
    assert "the master is node2" in log
