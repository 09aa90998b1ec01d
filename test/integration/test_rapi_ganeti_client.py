"""Issue 5: Ganeti's own RAPI client (Debian python3-ganeti-rapi), unchanged, drives genet.

A 3-node dev cluster (network namespaces, fake hypervisor); the client runs under
/usr/bin/python3 in rapi_driver.py and talks HTTPS to genet-rapi on the master's
address. The tests share the cluster and run in file order.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TOOL = HERE.parents[1] / "tools" / "dev-cluster"
DRIVER = HERE / "rapi_driver.py"
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

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self._send({"method": method, "args": list(args), "kwargs": kwargs})
            reply = json.loads(self.proc.stdout.readline())
            if "error" in reply:
                raise RapiFailure(reply["code"], reply["error"])
            return reply["ok"]
        return call

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
