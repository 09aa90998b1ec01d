"""The master IP on a node (genet.master_ip): Ganeti's master-ip-setup steps run against a fake
``ip`` (fake_ip.FakeIp), the administrator's script with Ganeti's environment, and the reasons a
cluster has no floating address."""
from __future__ import annotations

import dataclasses
import os

import pytest

from fake_ip import FakeIp
from genet import config, errors, master_ip, paths

PARAMS = master_ip.MasterNetwork(ip="203.0.113.200", netmask=32, netdev="eth0", ip_version=4)


@pytest.fixture
def ip(tmp_path, monkeypatch):
    fake = FakeIp()
    monkeypatch.setattr(master_ip, "run", lambda argv, env=None: fake(argv))
    monkeypatch.setattr(master_ip, "taken_elsewhere", lambda address: False)
    monkeypatch.setattr(master_ip, "announce", lambda params, runner: fake.calls.append(["announce", params.ip]))
    with paths.acting_as(tmp_path, "node1"):
        yield fake


def test_start_puts_the_address_on_the_device_as_ganetis_script_does(ip):
    """When the master IP is started, it is added with its netmask, the device's :0 label and no
    preferred lifetime, and announced to the neighbours; started again, nothing is done."""
    assert master_ip.setup(PARAMS, master_ip.START, external=False) == ""
    assert ip.calls[-2:] == [["ip", "address", "add", "203.0.113.200/32", "dev", "eth0", "label", "eth0:0",
                              "preferred_lft", "0"], ["announce", "203.0.113.200"]]
    assert ip.of("node1")["eth0"] == ["203.0.113.200/32"]
    assert "already configured on this machine" in master_ip.setup(PARAMS, master_ip.START, external=False)
    assert ip.of("node1")["eth0"] == ["203.0.113.200/32"]


def test_start_refuses_an_address_another_machine_answers_at(ip, monkeypatch):
    monkeypatch.setattr(master_ip, "taken_elsewhere", lambda address: True)
    with pytest.raises(errors.OpExecError, match="Failed to start the master IP. Script return value: 1, output:"
                                                 " 'Error: master IP address configured on another machine.'"):
        master_ip.setup(PARAMS, master_ip.START, external=False)
    assert ip.of("node1")["eth0"] == []


def test_stop_removes_the_address_and_leaves_one_on_another_device_alone(ip):
    """When stopped, the address goes; absent, nothing happens; on another device it is refused."""
    master_ip.setup(PARAMS, master_ip.START, external=False)
    master_ip.setup(PARAMS, master_ip.STOP, external=False)
    assert ip.of("node1")["eth0"] == []
    assert "not configured on this machine" in master_ip.setup(PARAMS, master_ip.STOP, external=False)
    ip.of("node1")["eth1"].append("203.0.113.200/32")
    with pytest.raises(errors.OpExecError, match="configured on wrong device"):
        master_ip.setup(PARAMS, master_ip.STOP, external=False)
    assert ip.of("node1")["eth1"] == ["203.0.113.200/32"]


def test_a_new_netmask_is_added_before_the_old_one_goes(ip):
    master_ip.setup(PARAMS, master_ip.START, external=False)
    master_ip.change_netmask(32, 24, PARAMS.ip, "eth0")
    assert ip.of("node1")["eth0"] == ["203.0.113.200/24"]
    assert [c[2] for c in ip.calls[-2:]] == ["add", "del"]
    master_ip.setup(dataclasses.replace(PARAMS, netmask=24), master_ip.STOP, external=False)
    with pytest.raises(errors.OpExecError, match="The master IP address is not up"):
        master_ip.change_netmask(24, 25, PARAMS.ip, "eth0")


def test_the_external_script_runs_with_ganetis_environment_and_its_failure_is_reported(tmp_path):
    """When use_external_mip_script is set, ROOT/etc/genet/scripts/master-ip-setup runs with the
    action as its argument and MASTER_* in an environment of their own; a failure shows its output."""
    with paths.acting_as(tmp_path, "node1"):
        script = paths.external_master_setup_script()
        script.parent.mkdir(parents=True)
        record = tmp_path / "record"
        script.write_text(f"#!/bin/sh\necho \"$1 $MASTER_IP/$MASTER_NETMASK $MASTER_NETDEV"
                          f" v$CLUSTER_IP_VERSION ${{GENET_ROOT:-none}}\" >> {record}\n"
                          "[ \"$1\" = start ] || { echo cannot stop; exit 3; }\n")
        os.chmod(script, 0o755)
        master_ip.setup(PARAMS, master_ip.START, external=True)
        with pytest.raises(errors.OpExecError, match="Failed to stop the master IP. Script return value: 3,"
                                                     " output: 'cannot stop\n'"):
            master_ip.setup(PARAMS, master_ip.STOP, external=True)
    assert record.read_text().splitlines() == ["start 203.0.113.200/32 eth0 v4 none", "stop 203.0.113.200/32 eth0 v4 none"]


def cluster(netdev: str = "", ip: str = "203.0.113.200"):
    data = config.new_cluster("c1", "node1", "127.0.0.11")
    data.cluster.update(master_ip=ip, master_netdev=netdev)
    return data


def test_a_cluster_floats_its_master_ip_only_with_a_netdev_and_an_address_of_its_own():
    assert "no master netdev is configured" in master_ip.problem(cluster())
    assert "is node node1's own address" in master_ip.problem(cluster("eth0", "127.0.0.11"))
    assert master_ip.problem(cluster("eth0")) is None
    assert master_ip.network(cluster("eth0")) == PARAMS


def test_the_default_netmask_is_the_address_length_and_a_longer_one_is_refused():
    assert (master_ip.max_netmask("203.0.113.200"), master_ip.max_netmask("2001:db8::1")) == (32, 128)
    with pytest.raises(errors.OpPrereqError, match=r"CIDR netmask \(33\) not valid for IPv4"):
        master_ip.check_netmask("203.0.113.200", 33)


def test_init_records_the_settings_and_refuses_what_ganetis_init_refuses(ip, monkeypatch):
    """When init is given a master netdev, the device must exist here, the cluster name an address
    of its own that nothing answers at; the netmask defaults to the address length."""
    data = cluster(ip="203.0.113.200")
    master_ip.init_settings(data, "eth0", None, external=True)
    assert (data.cluster["master_netdev"], data.cluster["master_netmask"], data.cluster["use_external_mip_script"]) \
        == ("eth0", 32, True)
    with pytest.raises(errors.OpPrereqError, match=r"Invalid master netdev given \(br9\)"):
        master_ip.init_settings(cluster(), "br9", None, external=False)
    with pytest.raises(errors.OpPrereqError, match="--master-netdev: the master IP 127.0.0.11 is node node1's own"):
        master_ip.init_settings(cluster(ip="127.0.0.11"), "eth0", 24, external=False)
    monkeypatch.setattr(master_ip, "taken_elsewhere", lambda address: True)
    with pytest.raises(errors.OpPrereqError, match=r"Cluster IP already active \(203.0.113.200\)"):
        master_ip.init_settings(cluster(), None, None, external=False)
    master_ip.init_settings(cluster(ip="127.0.0.11"), None, None, external=False)    # its own: not asked


def hook(tmp_path, directory: str, text: str) -> None:
    folder = tmp_path / "etc/genet/hooks" / directory
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "10-check").write_text(text)
    (folder / "10-check").chmod(0o755)


def test_the_master_ip_hooks_run_around_it_and_a_failing_pre_script_keeps_it_down(ip, tmp_path):
    """Ganeti's master-ip-turnup and -turndown hooks: on this node, with the address's variables;
    a pre script's failure refuses the change before the address is touched."""
    seen = tmp_path / "seen"
    hook(tmp_path, "master-ip-turnup-post.d", f"#!/bin/sh\nenv | sort > {seen}\n")
    master_ip.setup(PARAMS, master_ip.START, external=False)
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines())
    assert (env["GANETI_OP_CODE"], env["GANETI_HOOKS_PATH"], env["GANETI_HOOKS_PHASE"], env["GANETI_MASTER_IP"],
            env["GENET_MASTER_NETDEV"], env["GANETI_MASTER_NETMASK"], env["GANETI_CLUSTER_IP_VERSION"],
            env["GANETI_POST_MASTER_IP"]) == ("OP_CLUSTER_IP_TURNUP", "master-ip-turnup", "post", "203.0.113.200",
                                              "eth0", "32", "4", "203.0.113.200")
    hook(tmp_path, "master-ip-turndown-pre.d", "#!/bin/sh\necho keep it\nexit 1\n")
    with pytest.raises(errors.HooksAbort) as info:
        master_ip.setup(PARAMS, master_ip.STOP, external=False)
    assert info.value.args[0] == [["node1", "master-ip-turndown-pre.d/10-check", "keep it"]]
    assert ip.of("node1")["eth0"] == ["203.0.113.200/32"]
