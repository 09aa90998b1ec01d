"""The cluster core on real daemons: init, join, verify, jobs, TLS, restarts."""
import json
import os
import signal
import socket
import ssl
import time

import pytest

from genet import errors, opcodes, ssl_utils


def delay(seconds=0.0, **kw):
    return opcodes.OpTestDelay(duration=seconds, **kw).to_dict()


def test_three_node_cluster_verifies_clean(cluster):
    """When two nodes joined a fresh cluster, verify finds nothing and exits 0."""
    proc = cluster.run("node1", "gnt-cluster", "verify")
    assert "ERROR" not in proc.stdout
    out = cluster.run("node1", "gnt-node", "list", "-o", "name,role,pip", "--no-headers").stdout
    assert out.split("\n")[:3] == [f"{n} {role} {cluster.address(n)}" for n, role in zip(cluster.names, "MCC")]


def test_config_is_replicated_to_every_candidate(cluster):
    cluster.run("node1", "gnt-cluster", "add-tags", "replicated")
    serials = [cluster.stored_config(n)["serial_no"]
               for n in cluster.names]
    assert len(set(serials)) == 1
    tags = cluster.stored_config("node3")["cluster"]["tags"]
    assert tags == ["replicated"]


def test_two_hundred_jobs_submitted_at_once_all_succeed(cluster):
    client = cluster.client()
    results = client.call("SubmitManyJobs", [[delay()] for _ in range(200)])
    ids = [job_id for ok, job_id in results]
    assert all(ok for ok, _ in results) and len(set(ids)) == 200
    for job_id in ids:
        assert cluster.wait(job_id)["status"] == "success"


def test_job_queue_is_replicated_to_candidates(cluster):
    result = cluster.submit_and_wait([delay()])
    assert result["status"] == "success"
    import sqlite3
    job_id = max(cluster.client().call("QueryJobs", None, ["id"]))[0]
    db = sqlite3.connect(cluster.root("node2") / "var/lib/genet/queue.db")
    deadline = time.monotonic() + 30       # the final update reaches the candidates right after the job ends
    while db.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone() != ("success",):
        assert time.monotonic() < deadline, "the job's final status never reached node2's queue"
        time.sleep(0.1)


def test_gnt_job_watch_streams_the_log(cluster):
    out = cluster.run("node1", "gnt-debug", "delay", "--submit", "-r", "3", "0.2").stdout
    job_id = out.split()[-1]
    watched = cluster.run("node1", "gnt-job", "watch", job_id).stdout
    assert "Test delay iteration 0/2" in watched and "Test delay iteration 2/2" in watched


def test_kill_9_masterd_with_300_jobs_in_flight_loses_none(cluster):
    """When masterd is SIGKILLed mid-queue and restarted, every job id handed out ends final, once."""
    client = cluster.client()
    results = client.call("SubmitManyJobs", [[delay(0.01)] for _ in range(300)])
    ids = [job_id for _, job_id in results]
    pid = int((cluster.root("node1") / "var/run/genet/genet-masterd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    cluster.run("node1", "genet-daemon", "start")
    finals = {}
    for job_id in ids:
        result = cluster.wait(job_id)
        finals[job_id] = result["status"]
    assert set(finals.values()) <= {"success", "error"}
    for job_id, status in finals.items():
        if status == "error":
            assert "marked failed" in json.dumps(cluster.wait(job_id)["opresult"])
    # none ran twice: the stored op start timestamps are single values per opcode
    rows = cluster.client().call("QueryJobs", ids, ["id", "status", "opstart"])
    assert all(len(r[2]) == 1 for r in rows)
    serials = {cluster.stored_config(n)["serial_no"]
               for n in cluster.names}
    assert len(serials) == 1


def test_tls_client_without_cluster_certificate_is_refused(cluster, tmp_path):
    """When a client offers no certificate or a foreign one, the handshake fails."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with socket.create_connection((cluster.address("node2"), cluster.port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"POST /version HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]")
                if not tls.recv(100):
                    raise ConnectionResetError("closed")
    foreign = tmp_path / "foreign.pem"
    ssl_utils.generate_cluster_cert(foreign, "evil")
    from genet.rpc import RpcClient
    res = RpcClient(foreign, cluster.port, timeout=5).call("node2", cluster.address("node2"), "version")
    assert res.failed and "unreachable" in res.fail_msg
    own = RpcClient(cluster.root("node1") / "var/lib/genet/server.pem", cluster.port)
    assert own.call("node2", cluster.address("node2"), "version").payload.protocol == 1


def test_garbage_on_the_rpc_port_does_not_hurt_noded(cluster):
    for payload in (b"\x00" * 1000, b"GET / HTTP/1.1\r\n\r\n", os.urandom(4096)):
        with socket.create_connection((cluster.address("node2"), cluster.port), timeout=5) as sock:
            sock.sendall(payload)
            sock.settimeout(2)
            try:
                sock.recv(100)
            except OSError:
                pass
    from genet.rpc import RpcClient
    own = RpcClient(cluster.root("node1") / "var/lib/genet/server.pem", cluster.port)
    assert not own.call("node2", cluster.address("node2"), "node_info").failed
    bad = own.call("node2", cluster.address("node2"), "no_such_procedure")
    assert bad.failed and "unknown RPC procedure" in bad.fail_msg
    wrong = own.call("node2", cluster.address("node2"), "test_delay", [])
    assert isinstance(wrong.error, errors.OpPrereqError) and "test_delay: takes 1 argument, 0 given" in wrong.fail_msg


def test_malformed_luxi_messages_get_errors_and_masterd_keeps_serving(cluster):
    path = str(cluster.root("node1") / "var/run/genet/socket/master.sock")
    for garbage in (b"not json\x03", b'{"method": 5}\x03', b'{"method": "Nope", "args": []}\x03',
                    b'{"method": "SubmitJob", "args": [[{"OP_ID": "OP_TEST_DELAY"}]]}\x03'):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            sock.sendall(garbage)
            reply = json.loads(sock.recv(65536).rstrip(b"\x03"))
            assert reply["success"] is False and reply["result"][1][0]
    assert cluster.submit_and_wait([delay()])["status"] == "success"


def test_drained_queue_refuses_jobs_with_a_clear_error(cluster):
    cluster.run("node1", "gnt-cluster", "queue", "drain")
    proc = cluster.run("node1", "gnt-debug", "delay", "0", check=False)
    assert proc.returncode == 1 and "drained" in proc.stderr
    assert "is set" in cluster.run("node1", "gnt-cluster", "queue", "info").stdout
    cluster.run("node1", "gnt-cluster", "queue", "undrain")
    cluster.run("node1", "gnt-debug", "delay", "0")


def test_master_failover_after_master_dies_keeps_jobs_and_config(cluster):
    """When the master's daemons die, a candidate takes over with the replicated queue and config."""
    done = cluster.submit_and_wait([delay()])
    assert done["status"] == "success"
    cluster.run("node1", "gnt-cluster", "add-tags", "before-failover")
    ids = [r[0] for r in cluster.client().call("QueryJobs", None, ["id"])]
    # node2 missed the last updates (as if it had been unreachable): it takes them from node3
    import sqlite3
    with sqlite3.connect(cluster.root("node2") / "var/lib/genet/queue.db") as db:
        db.execute("DELETE FROM jobs WHERE id >= ?", (ids[-3],))
    for daemon in ("genet-masterd", "genet-noded"):
        pid = int((cluster.root("node1") / f"var/run/genet/{daemon}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
    proc = cluster.run("node2", "gnt-cluster", "master-failover")
    assert "from node1 to node2" in proc.stdout
    assert cluster.run("node3", "gnt-cluster", "getmaster").stdout.strip() == "node2"
    listed = cluster.run("node2", "gnt-job", "list", "--no-headers", "-o", "id,status").stdout.split("\n")
    assert {int(line.split()[0]) for line in listed if line} >= set(ids)
    assert "before-failover" in cluster.run("node2", "gnt-cluster", "list-tags").stdout
    cluster.run("node2", "gnt-debug", "delay", "0")
    # the old master comes back: its masterd refuses to start, the vote says node2
    proc = cluster.run("node1", "genet-masterd", check=False, timeout=30)
    assert proc.returncode != 0 and "node2" in proc.stdout + proc.stderr


@pytest.fixture
def two_nodes(tmp_path):
    from loopback import LoopbackCluster
    c = LoopbackCluster(tmp_path, nodes=2)
    try:
        yield c.start()
    finally:
        c.stop()


def test_two_node_cluster_fails_over_only_with_no_voting(two_nodes):
    """When one of two nodes (the master) dies, the vote cannot reach a majority;
    --no-voting (confirmed with --yes-do-it) takes over anyway and keeps the jobs."""
    two_nodes.run("node1", "gnt-debug", "delay", "0")
    for daemon in ("genet-masterd", "genet-noded"):
        pid = int((two_nodes.root("node1") / f"var/run/genet/{daemon}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
    proc = two_nodes.run("node2", "gnt-cluster", "master-failover", check=False)
    assert proc.returncode == 1 and "--no-voting" in proc.stderr
    proc = two_nodes.run("node2", "gnt-cluster", "master-failover", "--no-voting", check=False)
    assert proc.returncode == 13 and "--yes-do-it" in proc.stderr
    two_nodes.run("node2", "gnt-cluster", "master-failover", "--no-voting", "--yes-do-it")
    two_nodes.run("node2", "gnt-node", "modify", "-O", "yes", "node1")
    two_nodes.run("node2", "gnt-debug", "delay", "0")
    statuses = two_nodes.run("node2", "gnt-job", "list", "--no-headers", "-o", "status").stdout.split()
    assert statuses and set(statuses) == {"success"}


def test_corrupt_config_stops_masterd_from_starting_with_a_clear_error(cluster):
    """When the master's config file is truncated, masterd refuses to start and says why;
    a good copy (here from a candidate) brings it back."""
    path = cluster.root("node1") / "var/lib/genet/config.data"
    good = path.read_bytes()
    cluster.run("node1", "genet-daemon", "stop")
    path.write_bytes(good[: len(good) // 2])
    proc = cluster.run("node1", "genet-daemon", "start", check=False)
    assert proc.returncode == 1 and "corrupt" in proc.stderr and "config.data" in proc.stderr
    for name in ("config.data", "config.data.journal"):       # the candidate's snapshot and its journal
        copy = cluster.root("node2") / "var/lib/genet" / name
        (path.parent / name).unlink(missing_ok=True)
        if copy.exists():
            (path.parent / name).write_bytes(copy.read_bytes())
    cluster.run("node1", "genet-daemon", "start")
    cluster.run("node1", "gnt-cluster", "verify")


def test_loopback_clusters_side_by_side_get_their_own_addresses(tmp_path):
    """When two loopback clusters exist at once (two test runs on one machine), each holds its own
    block of addresses; a block is free again once its cluster stopped."""
    from loopback import LoopbackCluster
    first = LoopbackCluster(tmp_path / "a", nodes=2)
    second = LoopbackCluster(tmp_path / "b", nodes=2)
    assert not {first.address(n) for n in first.names} & {second.address(n) for n in second.names}
    block = first.first
    first.stop()
    assert LoopbackCluster(tmp_path / "c", nodes=2).first == block
    second.stop()
