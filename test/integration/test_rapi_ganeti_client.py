"""Issues 5, 11 and 14: Ganeti's own RAPI client (Debian python3-ganeti-rapi), unchanged, drives
genet: every method of it and of Ganeti 3.1's, and its job poll loop.

A 3-node dev cluster (network namespaces, fake hypervisor); the client runs under
/usr/bin/python3 in rapi_driver.py and talks HTTPS to genet-rapi on the master's
address. The tests share the cluster and run in file order.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TOOL = HERE.parents[1] / "tools" / "dev-cluster"
DRIVER = HERE / "rapi_driver.py"
# Ganeti 3.1's client as tools/ganeti-rapi-surface read it: the methods the installed (3.0) one lacks
CLIENT_3_1 = json.loads((HERE.parent / "unit/data/ganeti_rapi.json").read_text())["client"]
USERS = "admin adminpw write\nreader {cleartext}readerpw read\n"


def tool(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=timeout)


class RapiFailure(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class GanetiClient:
    """One GanetiRapiClient in a /usr/bin/python3 process; calls go over a pipe."""

    def __init__(self, host: str, username: str | None = None, password: str | None = None):
        self.proc = subprocess.Popen(["/usr/bin/python3", str(DRIVER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self._send({"host": host, "port": 5080, "username": username, "password": password})

    def _send(self, obj) -> None:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def call(self, method: str, *args, **kwargs):
        """One client method (or one of the driver's own, ``__methods__``, ``__poll_job__``)."""
        self._send({"method": method, "args": list(args), "kwargs": kwargs})
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RapiFailure(reply["code"], reply["error"])
        return reply["ok"]

    def __getattr__(self, method):
        return lambda *args, **kwargs: self.call(method, *args, **kwargs)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class Cluster:
    def __init__(self, directory: Path):
        self.dir = directory
        self.doc = json.loads((directory / "cluster.json").read_text())
        self.master_ip = self.doc["nodes"][0]["ip"]

    def run(self, node: str, *cmd: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = tool("exec", "--dir", str(self.dir), node, "--", *cmd, timeout=180)
        if ok:
            assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def root(self, node: str) -> Path:
        return self.dir / node / "root"


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rapi") / "cluster"
    try:
        proc = tool("start", "--nodes", "3", "--dir", str(directory))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        cluster = Cluster(directory)
        users = cluster.root("node1") / "var/lib/genet/rapi/users"
        users.parent.mkdir(parents=True, exist_ok=True)
        users.write_text(USERS)
        cluster.run("node1", "gnt-cluster", "redist-conf")
        yield cluster
    finally:
        stop = tool("stop", "--dir", str(directory))
        assert stop.returncode == 0, stop.stderr


@pytest.fixture(scope="module")
def api(dev):
    client = GanetiClient(dev.master_ip, "admin", "adminpw")
    yield client
    client.close()


@pytest.fixture(scope="module")
def anon(dev):
    client = GanetiClient(dev.master_ip)
    yield client
    client.close()


def wait(api, job_id: int) -> dict:
    """The job's status once it ended (WaitForJobCompletion is False for a failed job)."""
    assert isinstance(job_id, int)
    api.WaitForJobCompletion(job_id, 0.2, 600)
    status = api.GetJobStatus(job_id)
    assert status["status"] in ("success", "error", "canceled"), status
    return status


def test_version_features_and_info(anon, dev):
    assert anon.GetVersion() == 2
    assert {"instance-create-reqv1", "instance-reinstall-reqv1", "node-migrate-reqv1",
            "node-evac-res1"} <= set(anon.GetFeatures())
    info = anon.GetInfo()
    assert info["name"] == dev.doc["cluster_name"] and info["master"] == "node1"
    assert "fake" in info["enabled_hypervisors"]


def test_os_list_names_the_bundled_definitions(anon):
    assert {"noop", "image"} <= set(anon.GetOperatingSystems())


def test_nodes_plain_and_bulk(anon, dev):
    assert anon.GetNodes() == ["node1", "node2", "node3"]
    bulk = {n["name"]: n for n in anon.GetNodes(bulk=True)}
    assert bulk["node1"]["role"] == "M" and bulk["node2"]["role"] == "C"
    assert bulk["node2"]["pip"] == dev.doc["nodes"][1]["ip"]
    assert bulk["node3"]["mtotal"] > 0 and bulk["node3"]["pinst_cnt"] == 0
    assert anon.GetNode("node2")["name"] == "node2"


def test_create_an_instance_and_wait_for_its_job(api):
    job_id = api.CreateInstance("create", "web1", "diskless", [], [{"mode": "bridged", "link": "gnt-br0"}],
                                os="noop", pnode="node1", hypervisor="fake", beparams={"memory": 64, "vcpus": 1})
    status = wait(api, job_id)
    assert status["status"] == "success" and status["summary"] == ["INSTANCE_CREATE(web1)"]
    assert status["opstatus"] == ["success"] and len(status["received_ts"]) == 2
    inst = api.GetInstance("web1")
    assert inst["status"] == "running" and inst["oper_state"] is True and inst["pnode"] == "node1"
    assert inst["beparams"]["memory"] == 64 == inst["beparams"]["maxmem"]
    assert len(inst["nic.macs"]) == 1 and inst["admin_state"] == "up"


def test_instances_plain_and_bulk(anon):
    assert "web1" in anon.GetInstances()
    bulk = {i["name"]: i for i in anon.GetInstances(bulk=True)}
    assert bulk["web1"]["disk_template"] == "diskless" and bulk["web1"]["oper_ram"] == 64


def test_instance_info_job(api):
    status = wait(api, api.GetInstanceInfo("web1"))
    info = status["opresult"][0]["web1"]
    assert info["pnode"] == "node1" and info["run_state"] == "up" and info["config_state"] == "up"
    static = wait(api, api.GetInstanceInfo("web1", static=True))["opresult"][0]["web1"]
    assert static["run_state"] is None


def test_shutdown_start_and_reboot(api):
    assert wait(api, api.ShutdownInstance("web1", timeout=5))["status"] == "success"
    assert api.GetInstance("web1")["status"] == "ADMIN_down"
    assert wait(api, api.StartupInstance("web1"))["status"] == "success"
    assert api.GetInstance("web1")["status"] == "running"
    assert wait(api, api.RebootInstance("web1", reboot_type="hard"))["status"] == "success"
    assert api.GetInstance("web1")["status"] == "running"


def test_modify(api):
    assert wait(api, api.ModifyInstance("web1", beparams={"vcpus": 2}))["status"] == "success"
    assert api.GetInstance("web1")["beparams"]["vcpus"] == 2


def test_rename(api):
    wait(api, api.ShutdownInstance("web1", timeout=5))
    assert wait(api, api.RenameInstance("web1", "web2"))["status"] == "success"
    assert "web2" in api.GetInstances() and "web1" not in api.GetInstances()
    wait(api, api.StartupInstance("web2"))


def test_tags_of_instances_nodes_and_cluster(api, anon):
    wait(api, api.AddInstanceTags("web2", ["role:web", "tier:1"]))
    assert sorted(anon.GetInstanceTags("web2")) == ["role:web", "tier:1"]
    wait(api, api.DeleteInstanceTags("web2", ["tier:1"]))
    assert anon.GetInstanceTags("web2") == ["role:web"]
    wait(api, api.AddNodeTags("node2", ["rack:a"]))
    assert anon.GetNodeTags("node2") == ["rack:a"]
    wait(api, api.AddClusterTags(["env:test"]))
    assert anon.GetClusterTags() == ["env:test"]
    wait(api, api.DeleteClusterTags(["env:test"]))
    assert anon.GetClusterTags() == []


def test_migrate_and_failover(api):
    assert wait(api, api.MigrateInstance("web2", target_node="node2"))["status"] == "success"
    inst = api.GetInstance("web2")
    assert inst["pnode"] == "node2" and inst["status"] == "running"
    assert wait(api, api.FailoverInstance("web2", target_node="node1"))["status"] == "success"
    inst = api.GetInstance("web2")
    assert inst["pnode"] == "node1" and inst["status"] == "running"


def test_node_role_round_trip(api, anon):
    assert anon.GetNodeRole("node3") == "master-candidate"
    assert wait(api, api.SetNodeRole("node3", "drained"))["status"] == "success"
    assert anon.GetNodeRole("node3") == "drained"
    wait(api, api.SetNodeRole("node3", "regular"))
    assert anon.GetNodeRole("node3") == "regular"
    wait(api, api.SetNodeRole("node3", "master-candidate"))      # Ganeti's NODE_ROLE_MASTER_CANDIDATE
    assert anon.GetNodeRole("node3") == "master-candidate"
    with pytest.raises(RapiFailure) as err:
        api.SetNodeRole("node3", "master")
    assert err.value.code == 400


def test_node_evacuate_and_migrate(api):
    wait(api, api.MigrateInstance("web2", target_node="node2"))
    assert wait(api, api.EvacuateNode("node2", remote_node="node3", mode="primary-only"))["status"] == "success"
    assert api.GetInstance("web2")["pnode"] == "node3"
    assert wait(api, api.MigrateNode("node3", mode="live", target_node="node1"))["status"] == "success"
    inst = api.GetInstance("web2")
    assert inst["pnode"] == "node1" and inst["status"] == "running"


def test_node_storage_units_through_a_job(api, anon, dev):
    """Ganeti's client lists a node's file storage (its job's result, as Ganeti's RAPI answers
    it); a reader may not, as in Ganeti (the listing is a job that takes locks)."""
    status = wait(api, api.GetNodeStorageUnits("node2", "file", "name,used,allocatable"))
    assert status["status"] == "success"
    [[name, used, allocatable]] = status["opresult"][0]
    assert (name, allocatable) == (str(dev.root("node2") / "srv/genet/file-storage"), True) and used >= 0
    with pytest.raises(RapiFailure) as refused:
        anon.GetNodeStorageUnits("node2", "file", "name")
    assert refused.value.code == 401


def test_job_list_status_and_wait_for_change(api, anon):
    job_id = api.RebootInstance("web2", reboot_type="hard")
    change = api.WaitForJobChange(job_id, ["status"], None, 0)
    assert change["job_info"][0] in ("queued", "waiting", "running", "success")
    wait(api, job_id)
    final = api.WaitForJobChange(job_id, ["status"], None, 0)
    assert final["job_info"] == ["success"]
    assert job_id in anon.GetJobs()
    bulk = {j["id"]: j for j in anon.GetJobs(bulk=True)}
    assert bulk[job_id]["status"] == "success" and "oplog" not in bulk[job_id]
    assert api.CancelJob(job_id)[0] is False


def submit_delay(dev, *args: str) -> int:
    """A gnt-debug delay job submitted on the master; its id."""
    out = dev.run("node1", "gnt-debug", "delay", "--submit", *args).stdout
    return int(out.split("JobID:")[1].split()[0])


def test_ganeti_poll_loop_returns_for_a_job_that_ended_before_it_looked(api, dev):
    """When Ganeti's own poll loop (client_utils.PollJob, which stops only on a final status
    that comes without log entries) asks about a job that has ended and logged, it gets the
    job at once again after reading the log, and returns in two calls; genet used to answer
    null ("no change") there, and the loop asked again at full speed forever."""
    job_id = submit_delay(dev, "--repeat", "3", "0.05")
    assert api.WaitForJobCompletion(job_id, 0.1, 300) is True
    polled = api.call("__poll_job__", job_id, 20)
    assert polled["status"] == "success" and polled["opresult"] == [True]
    assert polled["messages"] == [f"Test delay iteration {n}/2" for n in (0, 1, 2)]
    assert polled["calls"] == 2


def test_ganeti_poll_loop_follows_a_running_job_to_its_end(api, dev):
    """When the poll loop follows a job while it runs, it gets each log line as it comes and
    returns once the job ended."""
    job_id = submit_delay(dev, "--repeat", "4", "0.3")
    polled = api.call("__poll_job__", job_id, 30)
    assert polled["status"] == "success"
    assert polled["messages"] == [f"Test delay iteration {n}/3" for n in (0, 1, 2, 3)]
    assert polled["calls"] < 20


def test_console_of_a_running_instance(api):
    console = api.GetInstanceConsole("web2")
    assert console["instance"] == "web2" and console["kind"] in ("ssh", "vnc")


def test_disk_operations_and_export(api, anon):
    job = api.CreateInstance("create", "files1", "file", [{"size": 16}], [], os="noop", pnode="node1",
                             hypervisor="fake", beparams={"memory": 32}, start=False)
    assert wait(api, job)["status"] == "success"
    assert wait(api, api.GrowInstanceDisk("files1", 0, 8))["status"] == "success"
    assert anon.GetInstance("files1")["disk.sizes"] == [24]
    assert wait(api, api.ActivateInstanceDisks("files1"))["status"] == "success"
    assert wait(api, api.DeactivateInstanceDisks("files1"))["status"] == "success"
    refused = wait(api, api.ReplaceInstanceDisks("files1", disks=[0], mode="replace_auto"))
    assert refused["status"] == "error" and "not mirrored" in str(refused["opresult"])
    existing = wait(api, api.RecreateInstanceDisks("files1"))      # the disk is there: nothing to do
    assert existing["status"] == "error" and "exist" in str(existing["opresult"])
    assert wait(api, api.ExportInstance("files1", "local", "node2"))["status"] == "success"
    exports = api.Query("export", ["node", "export"])["data"]
    assert [[0, "node2"], [0, "files1"]] in exports
    assert wait(api, api.DeleteInstance("files1"))["status"] == "success"


def test_node_groups(api, anon):
    assert wait(api, api.CreateGroup("rack2", alloc_policy="last_resort"))["status"] == "success"
    assert "rack2" in anon.GetGroups()
    assert wait(api, api.AssignGroupNodes("rack2", ["node3"]))["status"] == "success"
    group = anon.GetGroup("rack2")
    assert group["node_list"] == ["node3"] and group["alloc_policy"] == "last_resort"
    wait(api, api.ModifyGroup("rack2", alloc_policy="preferred"))
    wait(api, api.RenameGroup("rack2", "rack3"))
    wait(api, api.AddGroupTags("rack3", ["row:b"]))
    bulk = {g["name"]: g for g in anon.GetGroups(bulk=True)}
    assert bulk["rack3"]["alloc_policy"] == "preferred" and bulk["rack3"]["tags"] == ["row:b"]
    failed = wait(api, api.DeleteGroup("rack3"))            # it still holds node3
    assert failed["status"] == "error" and "node" in str(failed["opresult"])
    wait(api, api.AssignGroupNodes("default", ["node3"]))
    assert wait(api, api.DeleteGroup("rack3"))["status"] == "success"
    assert "rack3" not in anon.GetGroups()


def test_networks(api, anon):
    job = api.CreateNetwork("lan", "10.250.0.0/24", gateway="10.250.0.1", add_reserved_ips="10.250.0.10,10.250.0.11",
                            tags="site:x")
    assert wait(api, job)["status"] == "success"
    assert anon.GetNetworks() == ["lan"]
    net = anon.GetNetwork("lan")
    assert net["network"] == "10.250.0.0/24" and net["gateway"] == "10.250.0.1"
    assert set(net["external_reservations"].split(", ")) >= {"10.250.0.10", "10.250.0.11"}
    assert wait(api, api.ConnectNetwork("lan", "default", "bridged", "gnt-br0"))["status"] == "success"
    assert anon.GetNetwork("lan")["group_list"][0][0] == "default"
    wait(api, api.ModifyNetwork("lan", add_reserved_ips=["10.250.0.12"]))
    wait(api, api.AddNetworkTags("lan", ["vlan:7"]))
    assert sorted(anon.GetNetworkTags("lan")) == ["site:x", "vlan:7"]
    wait(api, api.DisconnectNetwork("lan", "default"))
    assert wait(api, api.DeleteNetwork("lan"))["status"] == "success"
    assert anon.GetNetworks() == []


def test_errors_401_403_404(dev, api):
    wrong = GanetiClient(dev.master_ip, "admin", "not-the-password")
    reader = GanetiClient(dev.master_ip, "reader", "readerpw")
    try:
        with pytest.raises(RapiFailure) as err:
            wrong.GetInfo()
        assert err.value.code == 401
        assert reader.GetInfo()["master"] == "node1"
        with pytest.raises(RapiFailure) as err:
            reader.ShutdownInstance("web2")
        assert err.value.code == 403
        with pytest.raises(RapiFailure) as err:
            reader.WaitForJobChange(1, ["status"], None, 0)
        assert err.value.code == 403
        with pytest.raises(RapiFailure) as err:
            api.GetInstance("no-such-instance")
        assert err.value.code == 404
        with pytest.raises(RapiFailure) as err:
            api.GetNode("no-such-node")
        assert err.value.code == 404
    finally:
        wrong.close()
        reader.close()
    assert api.GetInstance("web2")["status"] == "running"    # the refused shutdown did nothing


def test_delete_instance(api):
    assert wait(api, api.DeleteInstance("web2"))["status"] == "success"
    assert "web2" not in api.GetInstances()
    with pytest.raises(RapiFailure) as err:
        api.GetInstance("web2")
    assert err.value.code == 404


# --- every method of Ganeti's client, from a table (issue 11) ----------------------------

class Names:
    """The objects one pass of the table makes, uses and removes again (its own names)."""

    def __init__(self, tag: str):
        self.inst, self.inst2 = f"cli{tag}1", f"cli{tag}2"         # inst2: inst after its rename
        self.group, self.group2 = f"cli{tag}grp", f"cli{tag}grp2"
        self.net, self.net2 = f"cli{tag}net", f"cli{tag}net2"
        self.job: int | None = None                                 # the last job the table ran


class Row:
    """One call: ``args`` are the method's required arguments; ``full`` gives its optional
    ones for the pass that passes them all (``only_full``: a row of that pass alone, for an
    option that excludes another; ``sent``: a check that the job's opcode got them).
    ``expect``: JOB (a job that succeeds), succeeds_with(check) (one whose result ``check``
    accepts), fails(text) (a job that ends in an error naming ``text``) or data(check) (an
    answer ``check`` accepts). ``after(api)`` runs once the call was judged
    (a wait for what the call set going)."""

    def __init__(self, method: str, args=lambda n: [], expect=None, full=lambda n: {}, expect_full=None,
                 only_full: bool = False, sent=None, after=None):
        self.method, self.args, self.expect, self.full = method, args, expect, full
        self.expect_full, self.only_full, self.sent = expect_full or expect, only_full, sent
        self.after = after


JOB = ("job", None)


def fails(text: str) -> tuple:
    return ("job", text)


def data(check) -> tuple:
    return ("data", check)


def succeeds_with(check) -> tuple:
    """A job that succeeds with a result ``check`` accepts."""
    return ("job", None, check)


def remote_export_prepared(result) -> bool:
    """Ganeti's answer to a remote export's preparation: the handshake [version, hmac, salt], the
    transfer key's [name, hmac, salt] and its certificate after the signature line."""
    version, digest, salt = result["handshake"]
    name, name_digest, name_salt = result["x509_key_name"]
    header, _, pem = result["x509_ca"].partition("\n\n")
    return (version == 0 and len(digest) == len(name_digest) == 40 and len(salt) == len(name_salt) == 16
            and name.startswith("x509-") and pem.startswith("-----BEGIN CERTIFICATE-----")
            and re.fullmatch(r"X-Ganeti-Signature: [0-9a-f]{16}/[0-9a-f]{40}", header) is not None)


FILTER = "6ad1a3b4-0000-4000-8000-000000000001"
# an instance no node can take (1 TiB of memory): the allocation job succeeds, naming it failed,
# and creates nothing
ALLOCATION = {"mode": "create", "name": "x", "disk_template": "diskless", "disks": [], "nics": [],
              "beparams": {"memory": 1024 * 1024}}
DISKS = [{"size": 16}]      # sharedfile: the dev cluster's nodes share its directory, so it migrates
TABLE = [
    # cluster
    Row("GetVersion", expect=data(lambda v: v == 2)),
    Row("GetFeatures", expect=data(lambda v: "instance-create-reqv1" in v)),
    Row("GetInfo", expect=data(lambda v: v["master"] == "node1")),
    Row("GetOperatingSystems", expect=data(lambda v: "noop" in v)),
    Row("RedistributeConfig", expect=JOB),
    Row("ModifyCluster", expect=JOB, full=lambda n: {"candidate_pool_size": 10}),
    Row("GetClusterTags", expect=data(lambda v: isinstance(v, list))),
    Row("AddClusterTags", lambda n: [["table:c"]], JOB),
    Row("DeleteClusterTags", lambda n: [["table:c"]], JOB),
    # an instance's life
    Row("InstanceAllocation", lambda n: ["create", n.inst, "sharedfile", DISKS, []],
        data(lambda v: v["name"].startswith("cli") and v["disks"] == DISKS), full=lambda n: {"os": "noop"}),
    Row("CreateInstance", lambda n: ["create", n.inst, "sharedfile", DISKS, []], JOB,
        full=lambda n: {"os": "noop", "pnode": "node2", "hypervisor": "fake", "beparams": {"memory": 32},
                        "hvparams": {}, "osparams": {}, "start": True, "no_install": False, "tags": ["table:i"],
                        "name_check": False, "ip_check": False, "conflicts_check": True, "wait_for_sync": False},
        sent=lambda op: op["wait_for_sync"] is False and op["pnode"] == "node2"),
    Row("InstancesMultiAlloc", lambda n: [[ALLOCATION]], fails("Can't compute nodes using iallocator 'hail'")),
    Row("GetInstances", expect=data(lambda v: any("cli" in str(inst) for inst in v)),
        full=lambda n: {"bulk": True}),
    Row("GetInstance", lambda n: [n.inst], data(lambda v: v["status"] == "running")),
    Row("GetInstanceInfo", lambda n: [n.inst], JOB, full=lambda n: {"static": True}),
    Row("GetInstanceConsole", lambda n: [n.inst], data(lambda v: v["kind"] in ("ssh", "vnc"))),
    Row("GetInstanceTags", lambda n: [n.inst], data(lambda v: isinstance(v, list))),
    Row("AddInstanceTags", lambda n: [n.inst, ["table:a"]], JOB),
    Row("DeleteInstanceTags", lambda n: [n.inst, ["table:a"]], JOB),
    Row("ModifyInstance", lambda n: [n.inst], fails("no changes requested"), full=lambda n: {"beparams": {"vcpus": 2}},
        expect_full=JOB),
    Row("RebootInstance", lambda n: [n.inst], JOB,
        full=lambda n: {"reboot_type": "hard", "ignore_secondaries": False, "shutdown_timeout": 10}),
    Row("ShutdownInstance", lambda n: [n.inst], JOB, full=lambda n: {"no_remember": True, "timeout": 10}),
    Row("RenameInstance", lambda n: [n.inst, n.inst2], fails("cannot resolve"),
        full=lambda n: {"name_check": True, "ip_check": True}, only_full=True),
    Row("RenameInstance", lambda n: [n.inst, n.inst2], JOB, full=lambda n: {"name_check": False, "ip_check": False},
        sent=lambda op: op["name_check"] is False and op["ip_check"] is False),
    Row("StartupInstance", lambda n: [n.inst2], JOB, full=lambda n: {"no_remember": True}),
    Row("ActivateInstanceDisks", lambda n: [n.inst2], JOB, full=lambda n: {"ignore_size": True}),
    Row("DeactivateInstanceDisks", lambda n: [n.inst2], fails("running"), full=lambda n: {"force": True},
        expect_full=JOB),
    Row("GrowInstanceDisk", lambda n: [n.inst2, 0, 8], JOB, full=lambda n: {"wait_for_sync": False},
        sent=lambda op: op["wait_for_sync"] is False),
    Row("RecreateInstanceDisks", lambda n: [n.inst2], fails("running"),
        full=lambda n: {"disks": [0], "nodes": ["node1"]}),
    Row("RecreateInstanceDisks", lambda n: [n.inst2], fails("running"), full=lambda n: {"iallocator": "hail"},
        only_full=True),
    Row("ReplaceInstanceDisks", lambda n: [n.inst2], fails("not mirrored"),
        full=lambda n: {"disks": [0], "mode": "replace_new_secondary", "remote_node": "node3",
                        "early_release": True}),
    Row("ReplaceInstanceDisks", lambda n: [n.inst2], fails("not mirrored"),
        full=lambda n: {"mode": "replace_new_secondary", "iallocator": "hail"}, only_full=True),
    Row("ReinstallInstance", lambda n: [n.inst2], JOB,
        full=lambda n: {"os": "noop", "no_startup": False, "osparams": {}}),
    Row("MigrateInstance", lambda n: [n.inst2], JOB,
        full=lambda n: {"mode": "live", "cleanup": False, "target_node": "node1"}),
    Row("FailoverInstance", lambda n: [n.inst2], JOB,
        full=lambda n: {"ignore_consistency": False, "target_node": "node2"}),
    Row("FailoverInstance", lambda n: [n.inst2], JOB, full=lambda n: {"iallocator": "hail"}, only_full=True),
    Row("PrepareExport", lambda n: [n.inst2, "local"], succeeds_with(lambda v: v is None)),
    Row("PrepareExport", lambda n: [n.inst2, "remote"], succeeds_with(remote_export_prepared)),
    Row("ExportInstance", lambda n: [n.inst2, "local", "node3"], JOB,
        full=lambda n: {"shutdown": True, "remove_instance": False, "compress": "none"}),
    Row("ExportInstance", lambda n: [n.inst2, "remote", "node3"], fails("remote exports"),
        full=lambda n: {"x509_key_name": ["key", "hmac", "salt"], "destination_x509_ca": "CA"}, only_full=True),
    # jobs: the last job of the table, long finished
    Row("GetJobs", expect=data(lambda v: all(isinstance(j, (int, dict)) for j in v)), full=lambda n: {"bulk": True}),
    Row("GetJobStatus", lambda n: [n.job], data(lambda v: v["status"] in ("success", "error"))),
    Row("WaitForJobCompletion", lambda n: [n.job], data(lambda v: isinstance(v, bool)),
        full=lambda n: {"period": 0.1, "retries": 3}),
    Row("WaitForJobChange", lambda n: [n.job, ["status"], None, None],
        data(lambda v: v["job_info"][0] in ("success", "error"))),
    Row("CancelJob", lambda n: [n.job], data(lambda v: v[0] is False)),
    # nodes: node3, a candidate without instances of its own
    Row("GetNodes", expect=data(lambda v: len(v) == 3), full=lambda n: {"bulk": True}),
    Row("GetNode", lambda n: ["node3"], data(lambda v: v["name"] == "node3")),
    Row("GetNodeRole", lambda n: ["node3"], data(lambda v: v == "master-candidate")),
    Row("SetNodeRole", lambda n: ["node3", "master-candidate"], JOB,
        full=lambda n: {"force": True, "auto_promote": False}),
    Row("ModifyNode", lambda n: ["node3"], fails("no changes requested"), full=lambda n: {"vm_capable": True},
        expect_full=JOB),
    Row("EvacuateNode", lambda n: ["node3"], JOB,
        full=lambda n: {"iallocator": "hail", "early_release": True, "mode": "all", "accept_old": False},
        sent=lambda op: op["early_release"] is True and op["iallocator"] == "hail"),
    Row("EvacuateNode", lambda n: ["node3"], JOB, full=lambda n: {"remote_node": "node1", "mode": "primary-only"},
        only_full=True),
    Row("MigrateNode", lambda n: ["node3"], JOB, full=lambda n: {"mode": "live", "iallocator": "hail"}),
    Row("MigrateNode", lambda n: ["node3"], JOB, full=lambda n: {"target_node": "node1"}, only_full=True),
    Row("PowercycleNode", lambda n: ["node3"], JOB, full=lambda n: {"force": True},
        sent=lambda op: op["force"] is True, after=lambda api: back_after_powercycle(api, "node3")),
    Row("GetNodeStorageUnits", lambda n: ["node3", "file", "name,size"], JOB),
    Row("ModifyNodeStorageUnits", lambda n: ["node3", "lvm-vg", "xenvg"], fails("can not be modified"),
        full=lambda n: {"allocatable": True}),
    Row("ModifyNodeStorageUnits", lambda n: ["node3", "file", "/nonexistent"], fails("can not be modified"),
        full=lambda n: {"allocatable": False}, only_full=True),
    Row("RepairNodeStorageUnits", lambda n: ["node3", "lvm-vg", "xenvg"],
        fails("Failed to repair storage unit 'xenvg' on node3")),       # the dev cluster's nodes have no LVM
    Row("GetNodeTags", lambda n: ["node3"], data(lambda v: isinstance(v, list))),
    Row("AddNodeTags", lambda n: ["node3", ["table:n"]], JOB),
    Row("DeleteNodeTags", lambda n: ["node3", ["table:n"]], JOB),
    # node groups and networks
    Row("CreateGroup", lambda n: [n.group], JOB, full=lambda n: {"alloc_policy": "preferred"}),
    Row("GetGroups", expect=data(lambda v: "default" in str(v)), full=lambda n: {"bulk": True}),
    Row("GetGroup", lambda n: [n.group], data(lambda v: v["node_list"] == [])),
    Row("ModifyGroup", lambda n: [n.group], fails("no changes requested"),
        full=lambda n: {"alloc_policy": "last_resort"}, expect_full=JOB),
    Row("AssignGroupNodes", lambda n: ["default", ["node3"]], JOB, full=lambda n: {"force": True}),
    Row("RenameGroup", lambda n: [n.group, n.group2], JOB),
    Row("GetGroupTags", lambda n: [n.group2], data(lambda v: v == [])),
    Row("AddGroupTags", lambda n: [n.group2, ["table:g"]], JOB),
    Row("DeleteGroupTags", lambda n: [n.group2, ["table:g"]], JOB),
    Row("CreateNetwork", lambda n: [n.net, "10.252.0.0/24"], JOB,
        full=lambda n: {"gateway": "10.252.0.1", "network6": "fd00:252::/64", "gateway6": "fd00:252::1",
                        "mac_prefix": "aa:00:52", "add_reserved_ips": "10.252.0.10,10.252.0.11",
                        "tags": "table:x,table:y"}),
    Row("GetNetworks", expect=data(lambda v: any("cli" in str(net) for net in v)), full=lambda n: {"bulk": True}),
    Row("GetNetwork", lambda n: [n.net], data(lambda v: v["network"] == "10.252.0.0/24")),
    Row("ConnectNetwork", lambda n: [n.net, n.group2, "bridged", "gnt-br0"], JOB, full=lambda n: {"vlan": ""}),
    Row("ModifyNetwork", lambda n: [n.net], fails("no changes requested"),
        full=lambda n: {"add_reserved_ips": ["10.252.0.12"]}, expect_full=JOB),
    Row("GetNetworkTags", lambda n: [n.net], data(lambda v: isinstance(v, list))),
    Row("AddNetworkTags", lambda n: [n.net, ["table:z"]], JOB),
    Row("DeleteNetworkTags", lambda n: [n.net, ["table:z"]], JOB),
    Row("DisconnectNetwork", lambda n: [n.net, n.group2], JOB),
    Row("RenameNetwork", lambda n: [n.net, n.net2], JOB),         # Ganeti 3.1's client (3.0's lacks it)
    Row("RenameNetwork", lambda n: [n.net2, n.net], JOB),
    Row("DeleteNetwork", lambda n: [n.net], JOB),
    Row("DeleteGroup", lambda n: [n.group2], JOB),
    # query2
    Row("Query", lambda n: ["instance", ["name"]], data(lambda v: v["fields"][0]["name"] == "name"),
        full=lambda n: {"qfilter": ["=", "name", n.inst2]}),
    Row("QueryFields", lambda n: ["instance"], data(lambda v: len(v["fields"]) > 10),
        expect_full=data(lambda v: len(v["fields"]) == 2), full=lambda n: {"fields": ["name", "pnode"]}),
    # job filter rules: one created under a UUID of the client's choice, shown, listed, deleted
    Row("ReplaceFilter", lambda n: [FILTER, 0, [], "CONTINUE"], data(lambda v: v == FILTER),
        full=lambda n: {"reason_trail": [["table", "filter", 1]]}),
    Row("GetFilter", lambda n: [FILTER], data(lambda v: v["uuid"] == FILTER and v["action"] == "CONTINUE")),
    Row("GetFilters", expect=data(lambda v: FILTER in v),
        expect_full=data(lambda v: FILTER in [f["uuid"] for f in v]), full=lambda n: {"bulk": True}),
    Row("AddFilter", lambda n: [5, [["jobid", ["<", "id", 0]]], "PAUSE"], data(lambda v: len(v) == 36),
        full=lambda n: {"reason_trail": []}),
    Row("DeleteFilter", lambda n: [FILTER], data(lambda v: v is None)),
    # the end of the instance
    Row("DeleteInstance", lambda n: [n.inst2], JOB, full=lambda n: {"shutdown_timeout": 10, "ignore_failures": False},
        sent=lambda op: op["shutdown_timeout"] == 10),
]
DRY_RUN_IN_KWARGS = {"CreateInstance", "InstancesMultiAlloc"}      # dry_run travels in **kwargs there
# the client's MigrateNode asserts that it sends at most one query argument: given dry_run and
# reason together it fails before sending anything, so its dry run goes without the reason
ONE_QUERY_ARGUMENT = {"MigrateNode"}


def back_after_powercycle(api, node: str, timeout: float = 60) -> None:
    """Once a dev node's daemons restarted (genet.powercycle: DELAY seconds after the job), its
    live fields answer again."""
    from genet import powercycle
    time.sleep(powercycle.DELAY + 2)
    deadline = time.monotonic() + timeout
    while api.Query("node", ["name", "mfree"], ["=", "name", node])["data"][0][1][1] is None:
        assert time.monotonic() < deadline, f"{node} did not come back after its powercycle"
        time.sleep(0.5)


def fingerprint(api) -> list:
    """What a dry run must leave as it was: every object's serial number, the cluster tags."""
    return [api.Query(what, ["name", "serial_no"])["data"] for what in ("instance", "node", "group", "network")] \
        + [sorted(api.GetClusterTags())]


def call_row(api, n: Names, method: str, args: list, kwargs: dict, installed: dict) -> tuple:
    """The call, by the installed client or, for a method only Ganeti 3.1's client has, by the
    request that client sends (ganeti_rapi.json: its path, its body fields named as its
    parameters), through the installed client's transport."""
    try:
        if method in installed:
            return ("ok", api.call(method, *args, **kwargs))
        info = CLIENT_3_1[method]
        given = {**dict(zip(info["params"], args)), **kwargs}
        (request,) = info["requests"]
        path = re.sub(r"\[(\w+)\]", lambda m: given[m.group(1)], request["path"])
        query = [[arg, given[arg]] for arg in info["query"] if given.get(arg) is not None]
        body = {field: given[field] for field in info["body"] if field in given}
        return ("ok", api.call("__request__", request["method"], path, query, body))
    except RapiFailure as err:
        return ("http", err.code, err.message)


def judge(api, n: Names, expect: tuple, got: tuple, dry_run: bool = False, sent=None) -> str | None:
    """None if ``got`` is what ``expect`` asks for, else what happened instead. A dry run
    passes the checks the real call passes and may stop short of an error the real
    call meets only while it acts."""
    if got[0] == "http":
        return f"HTTP {got[1]}: {got[2][:300]}"
    result = got[1]
    if expect[0] == "data":
        try:
            return None if expect[1](result) else f"unexpected answer {str(result)[:300]}"
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            return f"unexpected answer ({err!r}) {str(result)[:300]}"
    if isinstance(result, bool) or not isinstance(result, int):
        return f"answered {str(result)[:200]}, not a job id"
    polled = api.call("__poll_job__", result, 120)      # Ganeti's own poll loop, as its scripts wait
    n.job = result
    status, opresult = polled["status"], str(polled["opresult"])
    if sent is not None and not any(sent(op) for op in api.GetJobStatus(result)["ops"]):
        return f"job {result}: its opcodes miss what was given: {str(api.GetJobStatus(result)['ops'])[:400]}"
    if expect[1] is None or dry_run and status == "success":
        if status != "success":
            return f"job {result} {status}: {opresult[:300]}"
        if len(expect) > 2 and not dry_run and not expect[2](polled["opresult"][0]):
            return f"job {result}: unexpected result {opresult[:300]}"
        return None
    if status == "error" and expect[1].lower() in opresult.lower():
        return None
    return f"job {result} {status}, not an error naming {expect[1]!r}: {opresult[:300]}"


@pytest.mark.parametrize("everything", [False, True], ids=["required-arguments", "every-argument"])
def test_every_method_of_ganetis_client_is_accepted(api, everything):
    """When each public method of Ganeti's client is called, with its required arguments only or
    with every optional one too (``reason``, and first with ``dry_run`` where it has one), genet
    accepts it: no 400 for a parameter it does not know; a job that succeeds (with the result
    the row checks) or fails for a reason it names; or the data asked for. A dry run changes
    nothing. The table covers the installed client whole and Ganeti 3.1's (the methods the
    installed one lacks go as 3.1's client sends them), so a method either gains cannot go
    untested."""
    installed = api.call("__methods__")
    methods = {**{name: {"required": [p for p in info["params"] if p not in info["defaults"]],
                         "optional": list(info["defaults"]), "kwargs": info["kwargs_body"]}
                  for name, info in CLIENT_3_1.items()}, **installed}
    assert sorted({row.method for row in TABLE}) == sorted(methods)
    n = Names("f" if everything else "r")
    if everything:      # each optional argument is given by some row (reason and dry_run by the loop)
        given: dict[str, set] = {}
        for row in TABLE:
            given.setdefault(row.method, set()).update(row.full(n))
        untried = {name: sorted(set(info["optional"]) - given[name] - {"reason", "dry_run"})
                   for name, info in methods.items()}
        assert {name: args for name, args in untried.items() if args} == {}
    problems = []
    for row in TABLE:
        if row.only_full and not everything:
            continue
        info, args = methods[row.method], row.args(n)
        kwargs, expect = (row.full(n), row.expect_full) if everything else ({}, row.expect)
        if everything:
            assert set(kwargs) <= set(info["optional"]) or info["kwargs"], row.method
            if "reason" in info["optional"]:
                kwargs["reason"] = "every method of Ganeti's client"
            if "dry_run" in info["optional"] or row.method in DRY_RUN_IN_KWARGS:
                before = fingerprint(api)
                probe = {**kwargs, "dry_run": True}
                if row.method in ONE_QUERY_ARGUMENT:
                    probe.pop("reason", None)
                problem = judge(api, n, expect, call_row(api, n, row.method, args, probe, installed), dry_run=True)
                if problem:
                    problems.append(f"{row.method} (dry run): {problem}")
                elif fingerprint(api) != before:
                    problems.append(f"{row.method} (dry run): changed the cluster")
        problem = judge(api, n, expect, call_row(api, n, row.method, args, kwargs, installed),
                        sent=row.sent if everything else None)
        if problem:
            problems.append(f"{row.method}: {problem}")
        elif row.after is not None:
            row.after(api)
    assert not problems, "\n".join(problems)


def test_rapi_moves_with_the_master_role(dev):
    dev.run("node2", "gnt-cluster", "master-failover")
    deadline = time.monotonic() + 20
    client = GanetiClient(dev.doc["nodes"][1]["ip"], "admin", "adminpw")
    try:
        while True:
            try:
                info = client.GetInfo()
                break
            except RapiFailure:
                assert time.monotonic() < deadline, "no RAPI on the new master"
                time.sleep(0.2)
        assert info["master"] == "node2"
        assert wait(client, client.AddClusterTags(["moved"]))["status"] == "success"   # users came along
    finally:
        client.close()
    old = GanetiClient(dev.master_ip)
    try:
        with pytest.raises(RapiFailure):
            old.GetInfo()
    finally:
        old.close()
