"""genet-rapi over raw HTTPS on a 2-node loopback cluster: every resource, status codes, auth, metrics.

One cluster for the module (fake hypervisor); tests run in file order and build on each
other (instances created early are moved, renamed and removed later). Requests go out
through http.client so the tests see exactly what a web manager or curl would.
The last test checks that every resource of rapi/rlib2.py answered 200 at least once.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time

import pytest
from loopback import LoopbackCluster
from prometheus_client.parser import text_string_to_metric_families

from genet.rapi import rlib2

HOST, PORT = "", 5080            # HOST: node1's address, set by the cluster fixture
WRITER = ("admin", "w-secret")
READER = ("viewer", "r-secret")
CTX = ssl._create_unverified_context()
ROUTES = [(re.compile(f"^{r.PATTERN}$"), r.PATTERN) for r in rlib2.resources()]
HIT: set[str] = set()            # rlib2 patterns that answered 200 to some test
# Ganeti 3.1's RAPI as tools/ganeti-rapi-surface read it (documented fields, results)
DATA = os.path.join(os.path.dirname(__file__), "..", "unit", "data")
with open(os.path.join(DATA, "ganeti_rapi.json")) as _f:
    GANETI_RAPI = json.load(_f)


def users_text(extra: str = "") -> str:
    ha1 = hashlib.md5(f"{READER[0]}:Ganeti Remote API:{READER[1]}".encode()).hexdigest()
    return (f"# genet-rapi users of the test cluster\n"
            f"{WRITER[0]} {{cleartext}}{WRITER[1]} write\n"
            f"{READER[0]} {{HA1}}{ha1} read\n{extra}")


def exchange(method: str, path: str, body=None, user=WRITER, raw: bytes | None = None,
             headers: dict | None = None, timeout: float = 60):
    """One HTTPS request: (status, response headers, decoded JSON or text)."""
    conn = http.client.HTTPSConnection(HOST, PORT, context=CTX, timeout=timeout)
    sent = {"Content-Type": "application/json"}
    if user is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    sent.update(headers or {})
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    try:
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        text = resp.read().decode()
        reply_headers = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if resp.status == 200:
        bare = path.split("?", 1)[0]
        HIT.update(pattern for regex, pattern in ROUTES if regex.match(bare))
    if resp.status >= 400:     # every refusal has Ganeti's error body
        assert isinstance(value, dict) and value["code"] == resp.status and {"message", "explain"} <= set(value), \
            (resp.status, value)
    return resp.status, reply_headers, value


def request(method: str, path: str, body=None, user=WRITER, raw: bytes | None = None, headers=None):
    status, _, value = exchange(method, path, body, user, raw, headers)
    return status, value


def ok(method: str, path: str, body=None, user=WRITER, raw=None):
    status, value = request(method, path, body, user, raw)
    assert status == 200, (method, path, status, value)
    return value


def wait_job(job_id: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ok("GET", f"/2/jobs/{job_id}")
        if job["status"] in ("success", "error", "canceled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def run_job(method: str, path: str, body=None, raw=None, user=WRITER):
    """Submit through the RAPI, expect a job id, wait for it to succeed; its first result."""
    job_id = ok(method, path, body, user=user, raw=raw)
    assert isinstance(job_id, int) and not isinstance(job_id, bool), job_id
    job = wait_job(job_id)
    assert job["status"] == "success", job
    return job["opresult"][0]


def failing_job(method: str, path: str, body=None) -> str:
    """Submit, expect the job to end in error; the error text."""
    job = wait_job(ok(method, path, body))
    assert job["status"] == "error", job
    return json.dumps(job["opresult"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    global HOST
    c = LoopbackCluster(tmp_path_factory.mktemp("rapi"), nodes=2)
    HOST = c.address("node1")
    try:
        c.start()
        users = c.root("node1") / "var/lib/genet/rapi/users"
        users.parent.mkdir(parents=True, exist_ok=True)
        users.write_text(users_text())
        yield c
    finally:
        c.stop()


def gnt(cluster, *argv: str, check: bool = True):
    return cluster.run("node1", *argv, check=check)


def gnt_list(cluster, command: str, *fields: str) -> list[list[str]]:
    out = gnt(cluster, command, "list", "--no-headers", "--separator=|", "-o", ",".join(fields)).stdout
    return [line.split("|") for line in out.splitlines() if line]


def job_ids(cluster) -> list[int]:
    return sorted(row[0] for row in cluster.client().query_jobs(None, ["id"]) if row)


def instance_names(cluster) -> list[str]:
    return sorted(row[0][1] for row in cluster.client().query("instance", ["name"])["data"])


@contextlib.contextmanager
def nothing_submitted(cluster):
    """The block must leave the job queue and the instance list as they were."""
    jobs, instances = job_ids(cluster), instance_names(cluster)
    yield
    assert job_ids(cluster) == jobs, "a refused request submitted a job"
    assert instance_names(cluster) == instances


# --- cluster-level resources ------------------------------------------------------------

def test_root_version_features_and_info(cluster):
    """When anyone asks, /, /2, /version, /2/features and /2/info answer without credentials."""
    assert ok("GET", "/", user=None) is None
    assert ok("GET", "/2", user=None) is None
    assert ok("GET", "/version", user=None) == 2
    assert {"instance-create-reqv1", "node-evac-res1"} <= set(ok("GET", "/2/features", user=None))
    info = ok("GET", "/2/info", user=READER)
    assert info["name"] == "genet-test" and info["master"] == "node1"
    assert info["enabled_hypervisors"] == ["fake"] and info["candidate_pool_size"] == 10


def test_os_list_names_the_bundled_definitions(cluster):
    """GET /2/os lists the bundled definitions; dry-run=1 on a GET, which changes nothing anyway,
    is refused rather than ignored (issue 13)."""
    assert {"noop", "image"} <= set(ok("GET", "/2/os"))
    status, reply = request("GET", "/2/os?dry-run=1")
    assert status == 400 and "'dry-run' not supported by GET /2/os" in reply["explain"]


def test_cluster_modify_shows_in_info_and_dry_run_changes_nothing(cluster):
    """When /2/modify runs, /2/info and gnt-cluster info show the value; with dry-run=1 the job
    succeeds and nothing changes."""
    run_job("PUT", "/2/modify", {"candidate_pool_size": 4})
    assert ok("GET", "/2/info")["candidate_pool_size"] == 4
    assert "candidate pool size: 4" in gnt(cluster, "gnt-cluster", "info").stdout
    job_id = ok("PUT", "/2/modify?dry-run=1", {"candidate_pool_size": 7})
    job = wait_job(job_id)
    assert job["status"] == "success" and job["ops"][0]["dry_run"] is True
    assert ok("GET", "/2/info")["candidate_pool_size"] == 4


def test_redistribute_config_reaches_every_node(cluster):
    run_job("PUT", "/2/redistribute-config")
    serials = {cluster.stored_config(n)["serial_no"]
               for n in cluster.names}
    assert len(serials) == 1


def test_cluster_tags_put_get_delete(cluster):
    run_job("PUT", "/2/tags?tag=env:test&tag=owner:rapi")
    assert sorted(ok("GET", "/2/tags", user=READER)) == ["env:test", "owner:rapi"]
    run_job("DELETE", "/2/tags?tag=env:test")
    assert ok("GET", "/2/tags") == ["owner:rapi"]
    assert gnt(cluster, "gnt-cluster", "list-tags").stdout.split() == ["owner:rapi"]


# --- jobs ------------------------------------------------------------------------------

def test_job_list_status_and_bulk(cluster):
    """When jobs exist, /2/jobs lists them as {id, uri}; bulk adds status without oplog and opresult."""
    job_id = ok("PUT", "/2/tags?tag=joblist")
    wait_job(job_id)
    listed = ok("GET", "/2/jobs", user=READER)
    assert {"id": job_id, "uri": f"/2/jobs/{job_id}"} in listed
    bulk = {j["id"]: j for j in ok("GET", "/2/jobs?bulk=1")}
    assert bulk[job_id]["status"] == "success" and bulk[job_id]["summary"] == ["TAGS_SET"]
    assert "oplog" not in bulk[job_id] and "opresult" not in bulk[job_id]
    job = ok("GET", f"/2/jobs/{job_id}")
    assert job["ops"][0]["OP_ID"] == "OP_TAGS_SET" and job["opresult"] == [None]
    assert len(job["received_ts"]) == 2 and job["end_ts"][0] >= job["received_ts"][0]
    assert set(ok("GET", "/2/jobs/987654")) == set(rlib2.J_FIELDS)
    assert all(v is None for v in ok("GET", "/2/jobs/987654").values())
    run_job("DELETE", "/2/tags?tag=joblist")


def test_job_wait_returns_the_change_and_log(cluster):
    """When a client waits on a finished job with no previous state, it gets the status and log;
    asked again with all of it seen, it gets the job at once again, without log entries (as
    Ganeti answers: a finished job never makes the caller wait, nor answers null)."""
    job_id = ok("PUT", "/2/tags?tag=w")
    wait_job(job_id)
    change = ok("GET", f"/2/jobs/{job_id}/wait",
                {"fields": ["status", "opresult"], "previous_job_info": None, "previous_log_serial": None})
    assert change["job_info"] == ["success", [None]]
    assert isinstance(change["log_entries"], list)
    start = time.monotonic()
    same = ok("GET", f"/2/jobs/{job_id}/wait",
              {"fields": ["status"], "previous_job_info": ["success"], "previous_log_serial": 99})
    assert same == {"job_info": ["success"], "log_entries": []} and time.monotonic() - start < 5
    run_job("DELETE", "/2/tags?tag=w")


def test_cancel_finished_job_and_queued_job(cluster):
    """When the job is finished, cancel answers [false, reason]; a queued delay job is canceled: true."""
    done = ok("PUT", "/2/tags?tag=c1")
    wait_job(done)
    assert ok("DELETE", f"/2/jobs/{done}") == [False, f"Job {done} not found in queue"]
    run_job("PUT", "/2/modify", {"max_running_jobs": 1})
    try:
        running = int(gnt(cluster, "gnt-debug", "delay", "--submit", "3").stdout.split()[-1])
        queued = int(gnt(cluster, "gnt-debug", "delay", "--submit", "0").stdout.split()[-1])
        assert ok("GET", f"/2/jobs/{queued}")["status"] == "queued"
        answer = ok("DELETE", f"/2/jobs/{queued}")
        assert answer[0] is True and str(queued) in answer[1]
        assert wait_job(queued)["status"] == "canceled"
        assert wait_job(running)["status"] == "success"
    finally:
        run_job("PUT", "/2/modify", {"max_running_jobs": 20})
    run_job("DELETE", "/2/tags?tag=c1")


def test_depends_in_a_body_is_honoured(cluster):
    """When a body names a dependency, the job runs only if that job ended in an accepted status."""
    first = ok("PUT", "/2/tags?tag=dep")
    wait_job(first)
    job = wait_job(ok("PUT", "/2/modify", {"candidate_pool_size": 5, "depends": [[first, ["success"]]]}))
    assert job["status"] == "success" and job["ops"][0]["depends"] == [[first, ["success"]]]
    assert ok("GET", "/2/info")["candidate_pool_size"] == 5
    text = failing_job("PUT", "/2/modify", {"candidate_pool_size": 6, "depends": [[first, ["canceled"]]]})
    assert f"dependency job {first}" in text and "success" in text
    assert ok("GET", "/2/info")["candidate_pool_size"] == 5
    run_job("DELETE", "/2/tags?tag=dep")


# --- nodes ------------------------------------------------------------------------------

def test_nodes_plain_bulk_and_one(cluster):
    assert ok("GET", "/2/nodes", user=None) == [{"id": "node1", "uri": "/2/nodes/node1"},
                                                {"id": "node2", "uri": "/2/nodes/node2"}]
    bulk = {n["name"]: n for n in ok("GET", "/2/nodes?bulk=1")}
    assert bulk["node1"]["role"] == "M" and bulk["node2"]["role"] == "C"
    assert bulk["node2"]["pip"] == cluster.address("node2") == bulk["node2"]["sip"]
    node = ok("GET", "/2/nodes/node2")
    assert node["name"] == "node2" and node["master_candidate"] is True and node["offline"] is False


def test_node_role_get_and_put_round_trip(cluster):
    """When a role is PUT, GET role and gnt-node list show it; master cannot be PUT."""
    run_job("PUT", "/2/modify", {"candidate_pool_size": 1})
    try:
        assert ok("GET", "/2/nodes/node1/role") == "master"
        for role, letter in (("regular", "R"), ("master-candidate", "C"), ("drained", "D"), ("regular", "R"),
                             ("candidate", "C")):      # "candidate" is accepted as well
            run_job("PUT", "/2/nodes/node2/role?force=1", role)
            assert ok("GET", "/2/nodes/node2/role", user=READER) == {"candidate": "master-candidate"}.get(role, role)
            assert gnt_list(cluster, "gnt-node", "name", "role") == [["node1", "M"], ["node2", letter]]
        with nothing_submitted(cluster):
            assert request("PUT", "/2/nodes/node2/role", "master")[0] == 400
            assert request("PUT", "/2/nodes/node2/role", "boss")[0] == 400
    finally:
        run_job("PUT", "/2/modify", {"candidate_pool_size": 10})


def test_node_modify_and_tags(cluster):
    run_job("POST", "/2/nodes/node2/modify", {"vm_capable": False})
    assert ok("GET", "/2/nodes/node2")["vm_capable"] is False
    run_job("POST", "/2/nodes/node2/modify", {"vm_capable": True})
    assert gnt_list(cluster, "gnt-node", "name", "vm_capable") == [["node1", "Y"], ["node2", "Y"]]
    run_job("PUT", "/2/nodes/node2/tags?tag=rack:7")
    assert ok("GET", "/2/nodes/node2/tags") == ["rack:7"]
    assert gnt(cluster, "gnt-node", "list-tags", "node2").stdout.split() == ["rack:7"]
    run_job("DELETE", "/2/nodes/node2/tags?tag=rack:7")
    assert ok("GET", "/2/nodes/node2/tags") == []


def test_node_powercycle_dry_run_checks_and_restarts_nothing(cluster):
    """When a powercycle of the master is asked for as a dry run, force=1 lets the check pass and
    nothing restarts; without force the master is refused."""
    pid = (cluster.root("node1") / "var/run/genet/genet-noded.pid").read_text()
    run_job("POST", "/2/nodes/node1/powercycle?dry-run=1&force=1")
    assert "master" in failing_job("POST", "/2/nodes/node1/powercycle?dry-run=1")
    assert (cluster.root("node1") / "var/run/genet/genet-noded.pid").read_text() == pid


# --- instances --------------------------------------------------------------------------

def test_create_diskless_and_file_instances(cluster):
    """When POST /2/instances carries __version__ 1, the job creates the instance as asked."""
    assert run_job("POST", "/2/instances", {"__version__": 1, "name": "web1", "disk_template": "diskless",
                                            "pnode": "node1", "os": "noop", "beparams": {"memory": 64}}) \
        == ["node1"]
    run_job("POST", "/2/instances", {"__version__": 1, "instance_name": "db1", "disk_template": "file",
                                     "pnode": "node1", "disks": [{"size": 8}], "beparams": {"memory": 32}})
    assert ok("GET", "/2/instances") == [{"id": "db1", "uri": "/2/instances/db1"},
                                         {"id": "web1", "uri": "/2/instances/web1"}]
    assert gnt_list(cluster, "gnt-instance", "name", "pnode", "status", "disk.sizes") == \
        [["db1", "node1", "running", "8"], ["web1", "node1", "running", ""]]
    assert len(list((cluster.root("node1") / "srv/genet/file-storage/db1").iterdir())) == 1


def test_instance_get_bulk_and_memory_alias(cluster):
    web = ok("GET", "/2/instances/web1", user=None)
    assert web["pnode"] == "node1" and web["status"] == "running" and web["oper_state"] is True
    assert web["admin_state"] == "up" and web["beparams"]["memory"] == web["beparams"]["maxmem"] == 64
    bulk = {i["name"]: i for i in ok("GET", "/2/instances?bulk=1")}
    assert bulk["db1"]["disk.sizes"] == [8] and bulk["db1"]["disk_template"] == "file"
    assert bulk["db1"]["beparams"]["memory"] == 32


def test_query2_instance_shape_for_web_managers(cluster):
    """When a web manager asks /2/query/instance?fields=..., it gets query2's fields + [status, value] rows."""
    result = ok("GET", "/2/query/instance?fields=name,pnode,snodes,beparams,oper_state,hvparams")
    assert [f["name"] for f in result["fields"]] == ["name", "pnode", "snodes", "beparams", "oper_state",
                                                     "hvparams"]
    rows = {row[0][1]: row for row in result["data"]}
    assert sorted(rows) == ["db1", "web1"]
    assert all(status == 0 for status, _ in rows["web1"])
    assert rows["web1"][1] == [0, "node1"] and rows["web1"][2] == [0, []] and rows["web1"][4] == [0, True]


def test_query2_put_with_filter_and_fields(cluster):
    result = ok("PUT", "/2/query/node", {"fields": ["name", "role"], "qfilter": ["=", "name", "node2"]},
                user=READER)
    assert result["data"] == [[[0, "node2"], [0, "C"]]]
    fields = ok("GET", "/2/query/node/fields")["fields"]
    assert {"name", "role", "pip"} <= {f["name"] for f in fields}
    assert [f["name"] for f in ok("GET", "/2/query/node/fields?fields=name,mfree")["fields"]] == ["name", "mfree"]
    assert ok("GET", "/2/query/node?fields=name")["data"] == [[[0, "node1"]], [[0, "node2"]]]


def test_shutdown_startup_reboot_with_null_bodies(cluster):
    """When web managers send the body `null`, the actions still work."""
    run_job("PUT", "/2/instances/web1/shutdown", raw=b"null")
    assert gnt_list(cluster, "gnt-instance", "name", "status")[1] == ["web1", "ADMIN_down"]
    assert ok("GET", "/2/instances/web1")["admin_state"] == "down"
    run_job("PUT", "/2/instances/web1/startup", raw=b"null")
    assert ok("GET", "/2/instances/web1")["status"] == "running"
    run_job("POST", "/2/instances/web1/reboot", raw=b"null")
    run_job("POST", "/2/instances/web1/reboot?type=hard")
    job = wait_job(ok("POST", "/2/instances/web1/reboot?type=full", {"shutdown_timeout": 5}))
    assert job["status"] == "success" and job["ops"][0]["reboot_type"] == "full"
    assert ok("GET", "/2/instances/web1")["status"] == "running"
    run_job("PUT", "/2/instances/web1/shutdown", {"timeout": 5})
    run_job("PUT", "/2/instances/web1/startup")


def test_console_of_running_instance_and_503_when_stopped(cluster):
    console = ok("GET", "/2/instances/web1/console")
    assert console["instance"] == "web1" and console["kind"] == "ssh" and isinstance(console["command"], list)
    run_job("PUT", "/2/instances/web1/shutdown", None)
    status, reply = request("GET", "/2/instances/web1/console")
    assert status == 503 and "not running" in reply["explain"]
    run_job("PUT", "/2/instances/web1/startup", None)


def test_instance_info_job(cluster):
    """When /info is asked, a job gathers the details; the result names the instance's state, with
    every key Ganeti's result has, for the instance and for each disk."""
    result = run_job("GET", "/2/instances/db1/info")
    assert result["db1"]["config_state"] == "up" and result["db1"]["pnode"] == "node1"
    assert result["db1"]["disks"][0]["size"] == 8
    ganeti = GANETI_RAPI["instance_info"]
    assert set(ganeti["instance"]) - set(result["db1"]) == set()
    assert set(ganeti["disk"]) - set(result["db1"]["disks"][0]) == set()
    static = run_job("GET", "/2/instances/db1/info?static=1")
    assert static["db1"]["run_state"] is None


def test_modify_and_grow_disk(cluster):
    run_job("PUT", "/2/instances/db1/modify", {"beparams": {"memory": 48}})
    assert ok("GET", "/2/instances/db1")["beparams"]["maxmem"] == 48
    run_job("POST", "/2/instances/db1/disk/0/grow", {"amount": 4, "wait_for_sync": True})
    assert ok("GET", "/2/instances/db1")["disk.sizes"] == [12]
    assert gnt_list(cluster, "gnt-instance", "name", "disk.sizes")[0] == ["db1", "12"]


def test_activate_deactivate_and_recreate_disks(cluster):
    """When a stopped instance's disk file is lost, recreate-disks brings an empty one back."""
    where = run_job("PUT", "/2/instances/db1/activate-disks")
    assert where[0][0] == "node1" and where[0][1] == "disk/0"
    run_job("PUT", "/2/instances/db1/shutdown", None)
    run_job("PUT", "/2/instances/db1/deactivate-disks")
    disk_dir = cluster.root("node1") / "srv/genet/file-storage/db1"
    text = failing_job("POST", "/2/instances/db1/recreate-disks", {})
    assert "only creates missing disks" in text
    for path in disk_dir.iterdir():
        path.unlink()
    run_job("POST", "/2/instances/db1/recreate-disks", {"disks": [0]})
    assert len(list(disk_dir.iterdir())) == 1
    run_job("PUT", "/2/instances/db1/startup", None)


def test_replace_disks_is_refused_for_non_mirrored_instances(cluster):
    text = failing_job("POST", "/2/instances/db1/replace-disks", {"mode": "replace_auto"})
    assert "not mirrored" in text and "OpPrereqError" in text


def test_migrate_and_failover(cluster):
    """When migrating, file disks go along; failover of file disks is refused, diskless works."""
    run_job("PUT", "/2/instances/db1/migrate", {"target_node": "node2"})
    assert ok("GET", "/2/instances/db1")["pnode"] == "node2"
    assert len(list((cluster.root("node2") / "srv/genet/file-storage/db1").iterdir())) == 1
    text = failing_job("PUT", "/2/instances/db1/failover", {"target_node": "node1"})
    assert "only a live migration can take them along" in text
    run_job("PUT", "/2/instances/web1/failover", {"target_node": "node2"})
    assert gnt_list(cluster, "gnt-instance", "name", "pnode", "status") == \
        [["db1", "node2", "running"], ["web1", "node2", "running"]]


def test_move_copies_the_disks_and_starts_it_there(cluster):
    run_job("PUT", "/2/instances/db1/move", {"target_node": "node1", "shutdown_timeout": 5})
    assert gnt_list(cluster, "gnt-instance", "name", "pnode", "status") == \
        [["db1", "node1", "running"], ["web1", "node2", "running"]]
    assert not (cluster.root("node2") / "srv/genet/file-storage/db1").exists()
    run_job("PUT", "/2/instances/db1/migrate", {"target_node": "node2"})      # where the next tests want it


def test_node_evacuate_and_migrate(cluster):
    run_job("POST", "/2/nodes/node2/evacuate", {"mode": "primary-only"})
    assert ok("GET", "/2/nodes/node2")["pinst_cnt"] == 0
    assert {i["pnode"] for i in ok("GET", "/2/instances?bulk=1")} == {"node1"}
    run_job("POST", "/2/nodes/node1/migrate", {"mode": "live"})
    assert sorted(ok("GET", "/2/nodes/node2")["pinst_list"]) == ["db1", "web1"]
    run_job("POST", "/2/nodes/node2/migrate", {})
    assert gnt_list(cluster, "gnt-instance", "name", "pnode") == [["db1", "node1"], ["web1", "node1"]]


def test_rename_and_reinstall(cluster):
    """When a stopped instance is renamed, only the new name is known; reinstall runs the OS again."""
    run_job("PUT", "/2/instances/web1/shutdown", None)
    assert run_job("PUT", "/2/instances/web1/rename", {"new_name": "web2"}) == "web2"
    assert request("GET", "/2/instances/web1")[0] == 404
    assert ok("GET", "/2/instances/web2")["admin_state"] == "down"
    run_job("PUT", "/2/instances/web2/startup", None)
    assert gnt_list(cluster, "gnt-instance", "name", "status") == [["db1", "running"], ["web2", "running"]]
    job = wait_job(ok("POST", "/2/instances/db1/reinstall", {"os": "noop", "start": False}))
    assert job["status"] == "success" and job["summary"] == ["INSTANCE_SHUTDOWN(db1)", "INSTANCE_REINSTALL(db1)"]
    assert ok("GET", "/2/instances/db1")["status"] == "ADMIN_down"
    job = wait_job(ok("POST", "/2/instances/db1/reinstall", {"os": "noop"}))
    assert job["status"] == "success" and job["summary"][-1] == "INSTANCE_STARTUP(db1)"
    assert ok("GET", "/2/instances/db1")["status"] == "running"


def test_instance_tags(cluster):
    run_job("PUT", "/2/instances/web2/tags?tag=a&tag=b")
    assert sorted(ok("GET", "/2/instances/web2/tags")) == ["a", "b"]
    run_job("DELETE", "/2/instances/web2/tags?tag=a")
    assert gnt(cluster, "gnt-instance", "list-tags", "web2").stdout.split() == ["b"]


def test_export_to_the_other_node(cluster):
    """When an instance is exported to node2, the export shows up in the export query."""
    run_job("PUT", "/2/instances/db1/export", {"destination": "node2", "mode": "local", "shutdown": True})
    listed = gnt(cluster, "gnt-backup", "list", "--no-headers", "--separator=|").stdout.split()
    assert listed == ["node2|db1"]
    exports = ok("GET", "/2/query/export?fields=node,export")
    assert isinstance(exports, dict) and [[0, "node2"], [0, "db1"]] in exports["data"], exports
    assert ok("GET", "/2/instances/db1")["pnode"] == "node1"


def test_prepare_export_answers_ganetis_shapes(cluster):
    """When an export is prepared, a local one needs nothing (null) and a remote one gets
    Ganeti's handshake, transfer key name and signed certificate, the key made on db1's node."""
    assert run_job("PUT", "/2/instances/db1/prepare-export?mode=local") is None
    prepared = run_job("PUT", "/2/instances/db1/prepare-export?mode=remote")
    assert prepared["handshake"][0] == 0 and prepared["x509_key_name"][0].startswith("x509-")
    assert prepared["x509_ca"].startswith("X-Ganeti-Signature: ") and "BEGIN CERTIFICATE" in prepared["x509_ca"]
    assert (cluster.root("node1") / "var/run/genet/crypto" / prepared["x509_key_name"][0] / "key").exists()
    assert request("PUT", "/2/instances/db1/snapshot")[0] == 404          # never a Ganeti resource


# --- every field Ganeti's doc/rapi.rst lists, with the kind its query gives it ----------------

with open(os.path.join(DATA, "ganeti_query_fields.json")) as _f:
    KINDS = json.load(_f)
KIND_TYPES = {"text": (str,), "bool": (bool,), "number": (int,), "unit": (int,), "timestamp": (int, float)}
EXAMPLE_TYPES = {"int": (int,), "str": (str,), "list": (list,), "dict": (dict,), "bool": (bool,),
                 "float": (int, float)}


def documented(entry: dict) -> dict[str, tuple]:
    """Field -> the types its value may have: the query kind of the resource's field (anything for
    ``other`` and fields no query has), or for a resource documented by example, the example's."""
    if not entry["fields"]:
        return {k: EXAMPLE_TYPES[t] for example in entry["examples"] for k, t in example.items()}
    kinds = KINDS.get(entry["resource"].split("/")[2].rstrip("s"), {})
    return {f: KIND_TYPES.get(kinds.get(f), (object,)) for f in entry["fields"]}


def test_every_field_ganetis_doc_lists_is_answered_with_its_kind(cluster):
    """When a resource Ganeti's doc/rapi.rst documents is asked for (its listings with bulk=1),
    every field the doc lists is in each answer, null or of the kind Ganeti's query gives it."""
    run_job("POST", "/2/networks", {"network_name": "netf", "network": "10.78.0.0/24", "gateway": "10.78.0.1"})
    rule = ok("POST", "/2/filters", {"priority": 1, "predicates": [], "action": "CONTINUE"})
    names = {"instance_name": "db1", "node_name": "node2", "group_name": "default", "network_name": "netf",
             "filter_uuid": rule, "job_id": str(max(j["id"] for j in ok("GET", "/2/jobs")))}
    problems = []
    try:
        for entry in GANETI_RAPI["fields"]:
            path = re.sub(r"\[(\w+)\]", lambda m: names[m.group(1)], entry["resource"])
            answer = ok(entry["method"], path + ("?bulk=1" if "[" not in entry["resource"]
                                                 and entry["resource"] != "/2/info" else ""))
            for item in answer if isinstance(answer, list) else [answer]:
                for field, types in documented(entry).items():
                    if field not in item:
                        problems.append(f"{path}: no {field}")
                    elif item[field] is not None and (not isinstance(item[field], types)
                                                      or isinstance(item[field], bool) and bool not in types):
                        problems.append(f"{path}: {field} is {item[field]!r}, not {types}")
    finally:
        ok("DELETE", f"/2/filters/{rule}")
        run_job("DELETE", "/2/networks/netf")
    assert sorted(set(problems)) == []


# --- node groups and networks ---------------------------------------------------------

def test_group_add_modify_rename_assign_tags_remove(cluster):
    run_job("POST", "/2/groups", {"name": "rack1", "alloc_policy": "preferred"})
    assert {"name": "rack1", "uri": "/2/groups/rack1"} in ok("GET", "/2/groups")
    run_job("PUT", "/2/groups/rack1/modify", {"alloc_policy": "last_resort"})
    assert ok("GET", "/2/groups/rack1")["alloc_policy"] == "last_resort"
    run_job("PUT", "/2/groups/rack1/rename", {"new_name": "rack2"})
    assert request("GET", "/2/groups/rack1")[0] == 404
    run_job("PUT", "/2/groups/rack2/assign-nodes?force=1", {"nodes": ["node2"]})
    group = ok("GET", "/2/groups/rack2")
    assert group["node_list"] == ["node2"] and ok("GET", "/2/nodes/node2")["group.uuid"] == group["uuid"]
    run_job("PUT", "/2/groups/rack2/tags?tag=cold")
    assert ok("GET", "/2/groups/rack2/tags") == ["cold"]
    assert {g["name"] for g in ok("GET", "/2/groups?bulk=1")} == {"default", "rack2"}
    run_job("PUT", "/2/groups/default/assign-nodes", {"nodes": ["node2"], "force": True})
    run_job("DELETE", "/2/groups/rack2")
    assert ok("GET", "/2/groups") == [{"name": "default", "uri": "/2/groups/default"}]


def test_network_add_connect_modify_tags_disconnect_remove(cluster):
    run_job("POST", "/2/networks", {"network_name": "net1", "network": "10.77.0.0/24", "gateway": "10.77.0.1"})
    assert ok("GET", "/2/networks") == [{"name": "net1", "uri": "/2/networks/net1"}]
    run_job("PUT", "/2/networks/net1/connect", {"group_name": "default", "network_mode": "bridged",
                                                "network_link": "br0"})
    assert ok("GET", "/2/networks/net1")["group_list"] == [["default", "bridged", "br0", ""]]
    run_job("PUT", "/2/networks/net1/modify", {"add_reserved_ips": ["10.77.0.9"]})
    assert "10.77.0.9" in ok("GET", "/2/networks/net1")["external_reservations"]
    run_job("PUT", "/2/networks/net1/rename", {"new_name": "net2"})
    assert ok("GET", "/2/networks") == [{"name": "net2", "uri": "/2/networks/net2"}]
    run_job("PUT", "/2/networks/net2/rename", {"new_name": "net1"})
    run_job("PUT", "/2/networks/net1/tags?tag=lan")
    assert ok("GET", "/2/networks/net1/tags") == ["lan"]
    assert ok("GET", "/2/networks?bulk=1")[0]["tags"] == ["lan"]
    run_job("PUT", "/2/networks/net1/disconnect", {"group_name": "default"})
    assert ok("GET", "/2/networks/net1")["group_list"] == []
    run_job("DELETE", "/2/networks/net1")
    assert request("GET", "/2/networks/net1")[0] == 404


# --- refusals: status codes, and nothing submitted --------------------------------------

CREATE = {"__version__": 1, "name": "x1", "disk_template": "diskless", "pnode": "node1"}


@pytest.mark.parametrize("method, path, body, raw, status, explain", [
    ("POST", "/2/instances", None, b"{\"__version__\": 1,", 400, "not valid JSON"),
    ("POST", "/2/instances", None, b"\xff\xfe", 400, "not valid JSON"),
    ("POST", "/2/instances", None, b"[" * 50000 + b"]" * 50000, 400, "nested too deeply"),
    ("POST", "/2/instances", {k: v for k, v in CREATE.items() if k != "__version__"}, None, 400, "__version__"),
    ("POST", "/2/instances", dict(CREATE, __version__=2), None, 400, "__version__"),
    ("POST", "/2/instances", dict(CREATE, bogus=1), None, 400, "unknown parameter(s) for OP_INSTANCE_CREATE: bogus"),
    ("POST", "/2/instances", dict(CREATE, start="yes"), None, 400, "'start': expected a boolean"),
    ("POST", "/2/instances", dict(CREATE, beparams={"memory": "lots"}), None, 400, "invalid size 'lots'"),
    ("POST", "/2/instances", dict(CREATE, name=5), None, 400, "expected a string"),
    ("POST", "/2/instances", dict(CREATE, name="a" * 64), None, 400, "longer than 63"),
    ("POST", "/2/instances", {"__version__": 1, "name": "x1"}, None, 400, "missing required parameter 'disk_template'"),
    ("POST", "/2/instances", dict(CREATE, name="x1", instance_name="x2"), None, 400, "not both"),
    ("POST", "/2/instances", [CREATE], None, 400, "must be a JSON object"),
    ("POST", "/2/instances", None, b"null", 400, "must be a JSON object"),
    ("PUT", "/2/instances/web2/startup", {"instance_name": "other"}, None, 400, "given by the URL"),
    ("PUT", "/2/instances/web2/shutdown", {"timeout": -1}, None, 400, "at least 0"),
    ("PUT", "/2/instances/web2/modify", [], None, 400, "must be a JSON object"),
    ("PUT", "/2/instances/web2/shutdown?force=1", None, None, 400, "'force' not supported"),
    ("PUT", "/2/instances/web2/startup?no_remember=maybe", None, None, 400, "'no_remember' must be 0 or 1"),
    ("POST", "/2/instances/web2/reboot?ignore_secondaries=maybe", None, None, 400,
     "'ignore_secondaries' must be 0 or 1"),
    ("PUT", "/2/instances/web2/activate-disks?lock=1", None, None, 400, "'lock' not supported"),
    ("POST", "/2/instances/web2/reinstall", {"start": "no"}, None, 400, "'start' must be a boolean"),
    ("POST", "/2/instances/web2/disk/x/grow", {"amount": 1}, None, 400, "invalid disk index"),
    ("DELETE", "/2/instances/web2?shutdown_timeout=soon", None, None, 400, "'shutdown_timeout': expected an integer"),
    ("GET", "/2/nodes?bulk=x", None, None, 400, "'bulk' must be 0 or 1"),
    ("GET", "/2/instances?bulk=2", None, None, 400, "'bulk' must be 0 or 1"),
    ("PUT", "/2/modify?dry-run=perhaps", {"candidate_pool_size": 3}, None, 400, "'dry-run' must be 0 or 1"),
    ("PUT", "/2/modify", {"candidate_pool_size": True}, None, 400, "expected an integer"),
    ("PUT", "/2/modify", {"candidate_pool_size": 0}, None, 400, "at least 1"),
    ("PUT", "/2/modify", None, b'{"candidate_pool_size": ' + b"9" * 5000 + b"}", 400, "not valid JSON"),
    ("PUT", "/2/tags", None, None, 400, "?tag=a"),
    ("PUT", "/2/nodes/node2/role", ["candidate"], None, 400, "unknown node role"),
    ("POST", "/2/nodes/node2/evacuate", {"mode": "sideways"}, None, 400, "unknown evacuation mode"),
    ("POST", "/2/nodes/node2/migrate", {"live": "yes"}, None, 400, "'live' must be a boolean"),
    ("GET", "/2/jobs/abc", None, None, 400, "invalid job id"),
    ("GET", "/2/jobs/-3", None, None, 400, "invalid job id"),
    ("DELETE", "/2/jobs/1e3", None, None, 400, "invalid job id"),
    ("GET", "/2/jobs/1/wait", {"fields": "status"}, None, 400, "'fields' must be a list"),
    ("GET", "/2/jobs/1/wait", {"fields": ["bogus"]}, None, 400, "unknown job field"),
    ("GET", "/2/query/instance", None, None, 400, "missing 'fields'"),
    ("PUT", "/2/query/node", {"fields": ["name"], "qfilter": "name == node1"}, None, 400, "'qfilter' must be a list"),
    ("PUT", "/2/query/node", {"fields": ["name"], "qfilter": ["=", "bogus", 1]}, None, 400, "bogus"),
    ("PUT", "/2/query/node", {"fields": []}, None, 400, "non-empty list"),
    ("GET", "/2/nope", None, None, 404, "no resource"),
    ("GET", "/3/info", None, None, 404, "no resource"),
    ("GET", "/2/info/", None, None, 404, "no resource"),
    ("GET", "/2/instances/ghost", None, None, 404, "instance 'ghost' not known"),
    ("GET", "/2/instances/..%2F..%2Fetc", None, None, 404, "not known"),
    ("GET", "/2/instances/%2e%2e", None, None, 404, "not known"),
    ("PUT", "/2/instances/..%2F..%2Fetc/startup", None, None, 404, "not known"),
    ("DELETE", "/2/instances/..%2Fweb2", None, None, 404, "not known"),
    ("GET", "/2/instances/ghost/tags", None, None, 404, "ghost"),
    ("GET", "/2/nodes/ghost", None, None, 404, "node 'ghost' not known"),
    ("GET", "/2/nodes/ghost/role", None, None, 404, "node 'ghost' not known"),
    ("GET", "/2/groups/ghost", None, None, 404, "group 'ghost' not known"),
    ("GET", "/2/networks/ghost", None, None, 404, "network 'ghost' not known"),
    ("GET", "/2/jobs/987654/wait", {"fields": ["status"], "previous_job_info": None, "previous_log_serial": None},
     None, 404, "job 987654 not found"),
    ("GET", "/2/query/bogus?fields=name", None, None, 404, "unknown query resource"),
    ("GET", "/2/query/bogus/fields", None, None, 404, "unknown query resource"),
    ("GET", "/2/filters/8b53f7de-f8e2-4470-99bd-1efe746e434f", None, None, 404, "not found"),
    ("POST", "/2/filters", {"action": "DROP"}, None, 400, "malformed filter action"),
    ("POST", "/2/instances-multi-alloc", {"iallocator": "hail"}, None, 400, "missing required 'instances'"),
    ("POST", "/2/instances-multi-alloc", {"instances": [{"name": "m1", "warp": 9}]}, None, 400,
     "Unknown fields in definition 0: warp"),
    ("PUT", "/2/nodes/node2/powercycle", None, None, 405, "allowed: POST"),
    ("PUT", "/2/instances/db1/open-port", None, None, 404, "no resource"),
])
def test_refusals_answer_the_status_and_submit_nothing(cluster, method, path, body, raw, status, explain):
    """When a request is malformed, unknown or unsupported, the status says so and no job is submitted."""
    with nothing_submitted(cluster):
        got, reply = request(method, path, body, raw=raw)
    assert got == status, reply
    if explain:
        assert explain in reply["explain"]


def test_wrong_method_is_405_with_allow_header(cluster):
    with nothing_submitted(cluster):
        status, headers, reply = exchange("PATCH", "/2/info")
        assert status == 405 and headers["allow"] == "GET"
        status, headers, reply = exchange("DELETE", "/2/nodes")
        assert status == 405 and headers["allow"] == "GET"
        status, headers, reply = exchange("POST", "/2/instances/web2/startup")
        assert status == 405 and headers["allow"] == "PUT" and "POST is not allowed" in reply["explain"]
        status, headers, _ = exchange("PUT", "/2/instances")
        assert status == 405 and headers["allow"] == "GET, POST"


@pytest.mark.parametrize("user, headers, message", [
    (("admin", "wrong"), None, "wrong user name or password"),
    (("nobody", "w-secret"), None, "wrong user name or password"),
    (None, {"Authorization": "Bearer abc"}, "unsupported authentication scheme"),
    (None, {"Authorization": "Basic %%%"}, "malformed Basic"),
    (None, {"Authorization": "Basic " + base64.b64encode(b"admin").decode()}, "no ':'"),
    (None, None, "needs a user with write access"),
])
def test_bad_credentials_and_anonymous_writes_are_401(cluster, user, headers, message):
    """When credentials are wrong or missing for a write, the answer is 401 with WWW-Authenticate."""
    with nothing_submitted(cluster):
        status, reply_headers, reply = exchange("POST", "/2/instances", CREATE, user=user, headers=headers)
    assert status == 401 and message in reply["explain"]
    assert reply_headers["www-authenticate"] == 'Basic realm="Ganeti Remote API"'


def test_wrong_password_is_401_even_for_reads(cluster):
    status, headers, reply = exchange("GET", "/2/info", user=("viewer", "nope"))
    assert status == 401 and "www-authenticate" in headers


def test_queries_need_a_user_as_in_ganeti(cluster):
    """When nobody logs in, /2/query answers 401; the read-only user may query (GET and PUT)."""
    for method, path, body in (("GET", "/2/query/node?fields=name", None), ("GET", "/2/query/node/fields", None),
                               ("PUT", "/2/query/node", {"fields": ["name"]})):
        status, reply = request(method, path, body, user=None)
        assert status == 401 and "needs a user" in reply["explain"], (method, path)
        assert request(method, path, body, user=READER)[0] == 200


def test_read_user_cannot_write_or_wait(cluster):
    """When the read-only user writes or waits on a job, the answer is 403 and nothing is submitted."""
    with nothing_submitted(cluster):
        status, reply = request("POST", "/2/instances", CREATE, user=READER)
        assert status == 403 and "may not write" in reply["explain"]
        assert request("PUT", "/2/instances/web2/shutdown", None, user=READER)[0] == 403
        assert request("DELETE", "/2/instances/web2", user=READER)[0] == 403
        assert request("PUT", "/2/tags?tag=x", user=READER)[0] == 403
        status, reply = request("GET", f"/2/jobs/{job_ids(cluster)[-1]}/wait",
                                {"fields": ["status"], "previous_job_info": None, "previous_log_serial": None},
                                user=READER)
        assert status == 403
    assert ok("GET", "/2/instances/web2", user=READER)["status"] == "running"


def test_body_over_one_mebibyte_is_413(cluster):
    with nothing_submitted(cluster):
        body = json.dumps(dict(CREATE, comment="x" * (2 * 1024 * 1024))).encode()
        status, reply = request("POST", "/2/instances", raw=body)
    assert status == 413 and "larger than 1048576" in reply["explain"]
    assert ok("GET", "/version") == 2          # the server still answers


def test_drained_queue_is_503_and_creates_nothing(cluster):
    gnt(cluster, "gnt-cluster", "queue", "drain")
    try:
        with nothing_submitted(cluster):
            status, reply = request("POST", "/2/instances", CREATE)
            assert status == 503 and "drained" in reply["explain"]
            assert request("POST", "/2/instances", dict(CREATE, name="x2", disk_template="file",
                                                         disks=[{"size": 4}]))[0] == 503
            assert request("PUT", "/2/tags?tag=drained")[0] == 503
            assert request("PUT", "/2/instances/web2/shutdown", None)[0] == 503
        assert ok("GET", "/2/info")["name"] == "genet-test"       # reads still work
        assert not (cluster.root("node1") / "srv/genet/file-storage/x2").exists()
        assert ok("GET", "/2/instances/web2")["status"] == "running"
    finally:
        gnt(cluster, "gnt-cluster", "queue", "undrain")
    run_job("PUT", "/2/tags?tag=undrained")
    run_job("DELETE", "/2/tags?tag=undrained")


def test_no_master_daemon_is_502_until_it_is_back(cluster):
    """When masterd is down, the RAPI answers 502 naming it, and recovers once masterd is back."""
    env = cluster.env("node1")
    subprocess.run([sys.executable, "-c", "from genet import daemon_util; daemon_util.stop('genet-masterd')"],
                   env=env, check=True)
    try:
        status, reply = request("GET", "/2/info")
        assert status == 502 and "master daemon" in reply["explain"]
        assert request("POST", "/2/instances", CREATE)[0] == 502
    finally:
        subprocess.run([sys.executable, "-c", "from genet import daemon_util; daemon_util.start('genet-masterd')"],
                       env=env, check=True)
    assert ok("GET", "/2/info")["master"] == "node1"
    assert "x1" not in [i["id"] for i in ok("GET", "/2/instances")]


def test_remove_instances(cluster):
    run_job("DELETE", "/2/instances/web2?shutdown_timeout=5")
    run_job("DELETE", "/2/instances/db1")
    assert ok("GET", "/2/instances") == []
    assert request("GET", "/2/instances/db1")[0] == 404
    assert not (cluster.root("node1") / "srv/genet/file-storage/db1").exists()
    assert gnt_list(cluster, "gnt-instance", "name") == []


# --- OpenAPI and metrics -------------------------------------------------------------------

def test_openapi_document_lists_every_resource_and_the_create_schema(cluster):
    doc = ok("GET", "/2/openapi.json", user=None)
    assert doc["openapi"].startswith("3.") and doc["info"]["title"]
    documented = set(doc["paths"])
    for resource in rlib2.resources():
        path = re.sub(r"\(\[\^/\]\+\)", "{}", resource.PATTERN)
        matching = [p for p in documented if re.sub(r"\{[^}]+\}", "{}", p) == path]
        assert len(matching) == 1, resource.PATTERN
        methods = {m.upper() for m in doc["paths"][matching[0]]}
        assert methods == set(resource().methods()), resource.PATTERN
    for path, item in doc["paths"].items():
        names = re.findall(r"\{([^}]+)\}", path)
        for operation in item.values():
            declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            assert declared == names, (path, declared)
            assert "200" in operation["responses"] and operation["operationId"]
    create = doc["paths"]["/2/instances"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"__version__", "disk_template"} <= set(create["required"])
    assert create["properties"]["__version__"]["enum"] == [1] and create["additionalProperties"] is False
    # Ganeti's body names are documented beside the opcode's, one of the two required (issue 13)
    either = lambda alias, name: {"anyOf": [{"required": [alias]}, {"required": [name]}]}
    assert either("name", "instance_name") in create["allOf"] and {"name", "os"} <= set(create["properties"])
    body = lambda path, method: doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    assert either("name", "group_name") in body("/2/groups", "post")["allOf"]
    assert either("name", "network_name") in body("/2/networks", "post")["allOf"]
    assert "destination" in body("/2/instances/{instance_name}/export", "put")["properties"]
    startup = doc["paths"]["/2/instances/{instance_name}/startup"]["put"]["parameters"]
    assert {p["name"] for p in startup if p["in"] == "query"} == {"dry-run", "force", "no_remember", "reason"}
    assert "group_name" in body("/2/networks/{network_name}/connect", "put")["required"]
    assert "network_name" not in body("/2/networks/{network_name}/connect", "put")["properties"]
    assert "instance_name" not in body("/2/instances/{instance_name}/modify", "put")["properties"]
    assert "disk" not in body("/2/instances/{instance_name}/disk/{disk}/grow", "post")["properties"]
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def metrics(user=None) -> dict:
    status, headers, text = exchange("GET", "/metrics", user=user)
    assert status == 200 and headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict, family: str, name: str, **labels) -> float:
    values = [s.value for s in families[family].samples if s.name == name and s.labels == labels]
    assert len(values) == 1, (family, name, labels, families[family].samples)
    return values[0]


def test_metrics_count_requests_jobs_nodes_and_instances(cluster):
    """When Prometheus scrapes /metrics, it sees requests by code, jobs, latency, nodes and instances."""
    run_job("POST", "/2/instances", {"__version__": 1, "name": "m1", "disk_template": "diskless",
                                     "pnode": "node2", "beparams": {"memory": 16}})
    before = metrics()
    assert request("GET", "/2/instances/ghost")[0] == 404
    assert request("POST", "/2/instances", CREATE, user=None)[0] == 401
    after = metrics()
    codes = {s.labels["code"] for s in after["genet_rapi_requests"].samples}
    assert {"200", "400", "401", "403", "404", "405", "413", "503"} <= codes
    count = lambda fams, method, code: sample(fams, "genet_rapi_requests", "genet_rapi_requests_total",
                                              method=method, code=code)
    assert count(after, "GET", "404") == count(before, "GET", "404") + 1
    assert count(after, "POST", "401") == count(before, "POST", "401") + 1
    assert sample(after, "genet_master_up", "genet_master_up") == 1
    jobs = {s.labels["status"]: s.value for s in after["genet_jobs"].samples}
    assert sum(jobs.values()) == len(job_ids(cluster)) and jobs["error"] >= 1 and jobs["canceled"] >= 1
    buckets = [(s.labels["le"], s.value) for s in after["genet_job_latency_seconds"].samples
               if s.name == "genet_job_latency_seconds_bucket"]
    assert buckets[-1][0] == "+Inf" and [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1][1] == sample(after, "genet_job_latency_seconds", "genet_job_latency_seconds_count") > 0
    nodes = {s.labels["role"]: s.value for s in after["genet_nodes"].samples}
    assert nodes["master"] == 1 and nodes["candidate"] == 1 and sum(nodes.values()) == 2
    assert {s.labels["status"]: s.value for s in after["genet_instances"].samples} == {"running": 1}
    run_job("DELETE", "/2/instances/m1")
    left = metrics().get("genet_instances")
    assert left is None or left.samples == []


def test_metrics_show_the_active_data_collectors_of_every_node(cluster):
    """When a data collector is switched off with gnt-cluster modify its metrics go, the others stay."""
    families = metrics()
    assert {s.labels["node"] for s in families["genet_node_cpu_load"].samples} == {"node1", "node2"}
    assert 0 <= sample(families, "genet_node_cpu_load", "genet_node_cpu_load", node="node2", cpu="total") <= 1
    assert families["genet_node_disk_reads"].samples
    gnt(cluster, "gnt-cluster", "modify", "--enabled-data-collectors", "diskstats=false")
    families = metrics()
    assert "genet_node_disk_reads" not in families and "genet_node_cpu_load" in families
    gnt(cluster, "gnt-cluster", "modify", "--enabled-data-collectors", "diskstats=true")
    assert "genet_node_disk_reads" in metrics()


# --- daemon options and the users file --------------------------------------------------------

def restart_rapi(cluster) -> None:
    gnt(cluster, "genet-daemon", "stop")
    gnt(cluster, "genet-daemon", "start")
    assert ok("GET", "/version") == 2


def test_require_authentication_from_etc_default(cluster):
    """When RAPI_ARGS has --require-authentication, anonymous reads are 401 and users still work."""
    defaults = cluster.root("node1") / "etc/default/genet"
    before = defaults.read_text()
    defaults.write_text(before + '# genet daemons\nRAPI_ARGS="--require-authentication"\n')
    try:
        restart_rapi(cluster)
        for path in ("/2/info", "/version", "/2/instances", "/metrics"):
            status, headers, reply = exchange("GET", path, user=None)
            assert status == 401 and "authentication required" in reply["explain"], path
            assert headers["www-authenticate"] == 'Basic realm="Ganeti Remote API"'
        assert ok("GET", "/2/info", user=READER)["name"] == "genet-test"
        assert request("GET", "/2/info", user=("viewer", "bad"))[0] == 401
        run_job("PUT", "/2/tags?tag=authed")
        run_job("DELETE", "/2/tags?tag=authed")
    finally:
        defaults.write_text(before)
        restart_rapi(cluster)
    assert ok("GET", "/2/info", user=None)["name"] == "genet-test"


def test_sighup_rereads_the_users_file(cluster):
    """When the users file changes without a visible stamp change, only SIGHUP makes the server see it."""
    users = cluster.root("node1") / "var/lib/genet/rapi/users"
    users.write_text(users_text("placeholder1 pw-of-the-new write\n"))
    assert request("GET", "/2/info", user=("placeholder1", "pw-of-the-new"))[0] == 200   # mtime reload
    stat = os.stat(users)
    text = users.read_text().replace("placeholder1", "hupuser00001")
    assert len(text) == stat.st_size
    with open(users, "r+") as f:        # same inode, same size, same mtime: the stamp cannot tell
        f.write(text)
    os.utime(users, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert request("GET", "/2/info", user=("hupuser00001", "pw-of-the-new"))[0] == 401
    pid = int((cluster.root("node1") / "var/run/genet/genet-rapi.pid").read_text().split()[0])
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while request("GET", "/2/info", user=("hupuser00001", "pw-of-the-new"))[0] != 200:
        assert time.monotonic() < deadline, "SIGHUP did not reload the users file"
        time.sleep(0.05)
    assert request("GET", "/2/info", user=("placeholder1", "pw-of-the-new"))[0] == 401
    run_job("PUT", "/2/tags?tag=hup", user=("hupuser00001", "pw-of-the-new"))   # with its write access
    assert ok("GET", "/2/tags") == ["hup", "owner:rapi"]
    run_job("DELETE", "/2/tags?tag=hup")
    users.write_text(users_text())


def test_filter_rules_and_storage_units_answer(cluster):
    """The job filter rules (gnt-filter) and a node's storage units, through their resources."""
    uuid = ok("POST", "/2/filters", {"priority": 5, "predicates": [["jobid", [">", "id", "watermark"]]],
                                     "action": "CONTINUE"})
    assert {"uuid": uuid, "uri": f"/2/filters/{uuid}"} in ok("GET", "/2/filters")
    assert ok("PUT", f"/2/filters/{uuid}", {"priority": 7, "action": "ACCEPT"}) == uuid
    assert (ok("GET", f"/2/filters/{uuid}")["priority"], ok("GET", f"/2/filters/{uuid}")["action"]) == (7, "ACCEPT")
    ok("DELETE", f"/2/filters/{uuid}")
    assert ok("GET", "/2/filters") == []
    units = run_job("GET", "/2/nodes/node1/storage?storage_type=file&output_fields=name,size,free")
    assert units and len(units[0]) == 3
    for path in ("/2/nodes/node1/storage/modify?storage_type=file&name=x",
                 "/2/nodes/node1/storage/repair?storage_type=file&name=x"):
        assert isinstance(ok("PUT", path), int)     # submitted (file units cannot be changed: the job says so)


def test_multi_allocation_change_group_and_group_evacuate(cluster):
    """One multi-allocation job makes an instance (its creation job follows); moving it to another
    group and emptying its group are refused on a cluster of one group, naming why."""
    result = run_job("POST", "/2/instances-multi-alloc",
                     {"instances": [{"name": "ma1", "disk_template": "diskless", "os": "noop", "start": False,
                                     "nics": [], "beparams": {"memory": 64}}]})
    assert result["allocatable"] == ["ma1"] and result["failed"] == []
    [[submitted, job_id]] = result["jobs"]
    assert submitted and wait_job(job_id)["status"] == "success"
    # one node group only: nowhere to go, and the jobs say why
    assert "node group default cannot be a target: instance ma1 leaves it" in \
        failing_job("PUT", "/2/instances/ma1/change-group", {"target_groups": ["default"]})
    assert "no online vm-capable node in the target groups" in failing_job("PUT", "/2/groups/default/evacuate", {})
    run_job("DELETE", "/2/instances/ma1", {})


def test_cluster_is_healthy_and_every_resource_was_exercised(cluster):
    """Last: gnt-cluster verify passes and every rlib2 resource answered 200 to some test above."""
    gnt(cluster, "gnt-cluster", "verify")
    missing = sorted({r.PATTERN for r in rlib2.resources()} - HIT)
    assert missing == []
