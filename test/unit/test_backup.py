"""Exports: the config.ini format, the node's export directory and the new parameter types."""
import pytest

from genet import errors, noded, opcodes
from genet.cmdlib import backup
from genet.objects import Instance


def instance(**extra):
    inst = {"name": "web1", "uuid": "u-1", "primary_node": "node1", "os": "image+debian", "hypervisor": "kvm",
            "disk_template": "file", "admin_state": "up",
            "beparams": {"maxmem": 512, "minmem": 256, "vcpus": 2, "auto_balance": True},
            "hvparams": {"kernel_args": "ro quiet", "serial_console": True}, "osparams": {"image": "/i.raw"},
            "nics": [{"uuid": "n-1", "mac": "aa:00:00:01:02:03", "mode": "bridged", "link": "br0", "ip": None,
                      "vlan": None, "name": "eth0"}],
            "disks": [{"uuid": "d-0", "size": 1024, "mode": "rw", "format": "raw", "name": None},
                      {"uuid": "d-1", "size": 64, "mode": "rw", "format": "qcow2", "name": "swap"}],
            "tags": ["a", "b:c"], "serial_no": 3, "ctime": 1.0, "mtime": 2.0}
    inst.update(extra)
    return Instance.from_wire(inst)


def test_export_config_reads_back_as_the_instance_it_describes():
    """When an instance's config.ini is parsed, disks, NICs and parameters come back typed."""
    text = backup.export_config(instance())
    assert "[export]" in text and "[instance]" in text and "[os_private]" in text
    export = backup.Export.parse("node2", "web1", text)
    assert (export.name, export.os, export.hypervisor, export.tags) == ("web1", "image+debian", "kvm", ["a", "b:c"])
    assert export.disks == [{"size": 1024, "name": None, "format": "raw", "dump": "disk0.raw"},
                            {"size": 64, "name": "swap", "format": "qcow2", "dump": "disk1.qcow2"}]
    assert export.nics == [{"mac": "aa:00:00:01:02:03", "ip": None, "network": None, "name": "eth0",
                            "mode": "bridged", "link": "br0", "vlan": None}]
    assert export.beparams == {"maxmem": 512, "minmem": 256, "vcpus": 2, "auto_balance": True}
    assert export.hvparams == {"kernel_args": "ro quiet", "serial_console": "True"}
    assert export.osparams == {"image": "/i.raw"}


GANETI_STYLE = """[export]
version = 0
timestamp = 1700000000
source = gnt1.example.com
os = debootstrap+default
compression = none

[instance]
name = old.example.com
memory = 128
vcpus = 1
disk_template = plain
hypervisor = kvm
tags =
nic0_mac = aa:00:00:11:22:33
nic0_ip = None
nic0_mode = bridged
nic0_link = br0
nic_count = 1
disk0_ivname = disk/0
disk0_dump = 4b6e-uuid.snap
disk0_size = 2048
disk_count = 1
"""


def test_a_ganeti_export_without_backend_section_is_read_old_style():
    """When an export has only Ganeti's old [instance] memory key, it sets maxmem and minmem."""
    export = backup.Export.parse("node2", "old", GANETI_STYLE)
    assert export.beparams == {"maxmem": 128, "minmem": 128, "vcpus": 1}
    assert export.disks == [{"size": 2048, "name": None, "format": "raw", "dump": "4b6e-uuid.snap"}]
    assert export.nics[0]["ip"] is None and export.nics[0]["link"] == "br0"


@pytest.mark.parametrize("text, message", [
    ("garbage", "cannot be read"),
    (GANETI_STYLE.replace("version = 0", "version = 7"), "export version 7"),
    (GANETI_STYLE.replace("[instance]", "[other]"), "section is missing"),
    (GANETI_STYLE.replace("disk0_size = 2048", "disk0_size = big"), "cannot be read"),
])
def test_an_unreadable_export_is_refused_naming_it(text, message):
    with pytest.raises(errors.OpPrereqError, match=message) as info:
        backup.Export.parse("node2", "old", text)
    assert "export 'old' on node2" in str(info.value) and info.value.ecode == "wrong_input"


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "..", "", "x/../../y"])
def test_export_names_that_could_leave_the_export_directory_are_refused(node_env, name):
    with pytest.raises(errors.OpPrereqError, match="invalid export name"):
        noded.export_path(name)


def test_a_full_export_directory_is_accepted_only_inside_the_export_directory(node_env):
    inside = noded.export_dir() / "web1"
    assert noded.export_path(str(inside)) == inside
    assert noded.export_path("web1", staging=True) == noded.export_dir() / ".web1.new"
    for path in ("/etc", f"{noded.export_dir()}/../web1", f"{noded.export_dir()}/a/web1"):
        with pytest.raises(errors.OpPrereqError, match="invalid export directory"):
            noded.export_path(path)


def test_node_export_procedures_stage_replace_list_and_remove(node_env):
    """When an export is finished it replaces the older one; incomplete ones are never listed."""
    procs = noded.NodeProcedures()
    assert procs.rpc_export_list() == []
    staging = noded.export_dir() / ".web1.new"
    assert procs.rpc_export_start("web1") == str(staging)
    (staging / "disk0.raw").write_bytes(b"new")
    assert procs.rpc_export_list() == []                       # still being written
    old = noded.export_dir() / "web1"
    old.mkdir()
    (old / "config.ini").write_text("old")
    (old / "disk0.raw").write_bytes(b"old")
    procs.rpc_export_finish("web1", "[export]\nversion = 0\n")
    assert not staging.exists()
    assert sorted(p.name for p in noded.export_dir().iterdir()) == ["web1"]
    assert (old / "disk0.raw").read_bytes() == b"new" and procs.rpc_export_info("web1").startswith("[export]")
    (noded.export_dir() / "half").mkdir()                      # no config.ini: not an export
    assert procs.rpc_export_list() == ["web1"]
    procs.rpc_export_start("web2")
    assert procs.rpc_export_abort("web2") and not (noded.export_dir() / ".web2.new").exists()
    assert procs.rpc_export_remove("web1") and procs.rpc_export_list() == []
    with pytest.raises(errors.OpPrereqError, match="has no export 'web1'"):
        procs.rpc_export_remove("web1")
    with pytest.raises(errors.OpPrereqError, match="has no export 'web1'"):
        procs.rpc_export_info("web1")


def test_blockdev_find_reports_each_disk_or_none(node_env):
    procs = noded.NodeProcedures()
    disks = instance()["disks"]
    sp = {"file_storage_dir": "srv/genet/file-storage"}
    procs.rpc_blockdev_create("web1", "file", disks[0], 0, sp)
    found = procs.rpc_blockdev_find("web1", "file", disks, sp)
    assert found[1] is None
    assert found[0].dev_path.endswith("/srv/genet/file-storage/web1/disk-d-0.raw")
    assert (found[0].is_degraded, found[0].ldisk_status, found[0].mirror) == (False, 1, None)


def test_recreate_disk_accepts_indices_and_pairs_and_keeps_one_form():
    op = opcodes.OpInstanceRecreateDisks(instance_name="web1", disks=[2, [0, {"size": "1G"}]])
    assert op.disks == [[2, {}], [0, {"size": 1024}]]
    assert opcodes.from_dict(op.to_dict()).disks == op.disks
    assert opcodes.RecreateDisk().parse("1:size=8M,name=data") == [1, {"size": 8, "name": "data"}]
    for bad in ([16], [[0, {"mode": "ro"}]], ["x"], [True]):
        with pytest.raises(errors.OpPrereqError, match="parameter 'disks'"):
            opcodes.OpInstanceRecreateDisks(instance_name="web1", disks=bad)


def test_replace_disks_indices_and_export_target_types():
    assert opcodes.DiskIndices().parse("0,2") == [0, 2]
    assert opcodes.OpInstanceReplaceDisks(instance_name="web1", disks="1,3").disks == [1, 3]
    with pytest.raises(ValueError):
        opcodes.DiskIndices().parse("0,x")
    op = opcodes.OpInstanceReplaceDisks(instance_name="web1")
    assert op.mode == "replace_auto" and op.disks == []
    assert opcodes.OpBackupExport(instance_name="web1", target_node="node2").shutdown is True
    assert opcodes.OpBackupExport(instance_name="web1", target_node=["host", 1234], mode="remote").target_node \
        == ["host", 1234]
    with pytest.raises(errors.OpPrereqError, match="target_node"):
        opcodes.OpBackupExport(instance_name="web1", target_node="")
    create = opcodes.OpInstanceCreate(instance_name="web2", disk_template="file", mode="import", src_node="node2",
                                      src_path="web1")
    assert (create.mode, create.src_node, create.src_path) == ("import", "node2", "web1")


def test_export_query_has_a_row_per_export_and_marks_silent_and_offline_nodes():
    from genet import config, query, qfilter
    data = config.new_cluster("c1", "node1", "127.0.0.11")
    for i in (2, 3, 4):
        config.add_node(data, f"node{i}", f"127.0.0.1{i}")
    data["nodes"]["node4"]["offline"] = True
    asked = []

    def live(nodes):
        asked.append(sorted(nodes))
        return {"node1": [], "node2": ["db1", "web1"], "node3": None}
    result = query.query_exports(data, ["node", "export"], None, live)
    assert asked == [["node1", "node2", "node3"]]
    assert [d["name"] for d in result["fields"]] == ["node", "export"]
    assert result["data"] == [[[0, "node2"], [0, "db1"]], [[0, "node2"], [0, "web1"]],
                              [[0, "node3"], [query.RS_NODATA, None]], [[0, "node4"], [query.RS_OFFLINE, None]]]
    only = query.query_exports(data, ["export"], qfilter.names_filter("node", ["node2"]), live)
    assert only["data"] == [[[0, "db1"]], [[0, "web1"]]]


class FakeCtx:
    """Just enough of MasterContext for prerequisite checks: the config and an RPC that records calls."""

    def __init__(self, data):
        self.cfg = self
        self.rpc = self
        self.data = data
        self.calls = []

    def read(self, reader):
        return reader(self.data)

    def snapshot(self):
        return self.data

    def call(self, *args, **kwargs):
        self.calls.append(args)
        raise AssertionError(f"unexpected RPC {args}")


@pytest.mark.parametrize("template", ["file", "sharedfile", "diskless"])
def test_replace_disks_refuses_a_template_without_mirror_before_any_rpc(template):
    """When the instance's disks are not mirrored, replace-disks is refused and no node is contacted."""
    from genet import config
    from genet.cmdlib import replace_disks as cmd
    data = config.new_cluster("c1", "node1", "127.0.0.11")
    data["instances"]["web1"] = instance(disk_template=template, primary_node="node1", secondary_nodes=[])
    ctx = FakeCtx(data)
    lu = cmd.LUInstanceReplaceDisks(ctx, opcodes.OpInstanceReplaceDisks(instance_name="web1",
                                                                        mode="replace_on_secondary"), print)
    lu.expand_names()
    with pytest.raises(errors.OpPrereqError) as info:
        lu.check_prereq()
    assert info.value.args == (f"Instance's disk layout '{template}' is not mirrored, replace-disks needs a"
                               " mirrored template (drbd or mirror)", "wrong_input")
    assert ctx.calls == []
