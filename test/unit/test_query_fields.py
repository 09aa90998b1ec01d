"""The query fields against Ganeti's (test/unit/data/ganeti_query_fields.json: Ganeti 3.1's names
and kinds per resource), and the values of the derived fields (per-disk and per-NIC, aliases,
hv/, be/, ndp/) on a configuration built in-process."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from genet import config, errors, objects, qfilter, query
from genet.hypervisor.base import HYPERVISORS, Hypervisor
from genet.hypervisor.params import Param
from genet.opcodes.group import NDPARAMS
from genet.opcodes.instance import BEPARAMS
from genet.query.instance import ALIASES
from genet.query.instance_params import hv_kinds

GANETI = {what: fields for what, fields in
          json.loads((Path(__file__).parent / "data" / "ganeti_query_fields.json").read_text()).items()
          if not what.startswith("_")}
# parameter families: genet has the fields of the parameters its own tables declare
FAMILIES = {"hv/": lambda: set(hv_kinds()), "be/": lambda: set(BEPARAMS.fields), "ndp/": lambda: set(NDPARAMS.fields)}
# where genet's kind differs from Ganeti's on purpose: job times are shown as times, not as lists
DEVIATIONS = {("job", "received_ts"): "timestamp", ("job", "start_ts"): "timestamp", ("job", "end_ts"): "timestamp"}
ALIAS_NAMES = {alias for alias, _ in ALIASES}


def family(name: str) -> str | None:
    return next((prefix for prefix in FAMILIES if name.startswith(prefix) and name not in ALIAS_NAMES), None)


@pytest.mark.parametrize("what", sorted(GANETI))
def test_every_ganeti_field_is_known_with_ganetis_kind(what):
    """When Ganeti has a field (not a parameter of a family), genet's list-fields has it, of the same kind."""
    ours = query.fields_of(what)
    wanted = {name: kind for name, kind in GANETI[what].items() if family(name) is None}
    assert wanted, what
    assert sorted(name for name in wanted if name not in ours) == []
    assert {name: ours[name].kind for name in wanted if ours[name].kind != wanted[name]} == \
        {name: kind for (res, name), kind in DEVIATIONS.items() if res == what}


@pytest.mark.parametrize("prefix", sorted(FAMILIES))
def test_every_parameter_genet_declares_is_a_field_of_ganetis_kind(prefix):
    """When genet's parameter tables declare a parameter, it is a field (one per parameter), of the
    kind Ganeti gives it when Ganeti has it too."""
    declared = FAMILIES[prefix]() - {alias[len(prefix):] for alias in ALIAS_NAMES if alias.startswith(prefix)}
    tables = [query.fields_of(what) for what in GANETI if any(n.startswith(prefix) for n in GANETI[what])]
    for ours in tables:
        assert {name[len(prefix):] for name in ours if family(name) == prefix} == declared
    ganeti = {name: kind for fields in GANETI.values() for name, kind in fields.items() if family(name) == prefix}
    shared = [name for name in ganeti if name[len(prefix):] in declared]
    assert shared
    assert {name: tables[0][name].kind for name in shared if tables[0][name].kind != ganeti[name]} == {}


def test_field_names_titles_and_docs_have_ganetis_shape():
    """When a field is defined, its name, title and doc have the shape Ganeti checks: lowercase name,
    a title without spaces, a doc that starts with a capital and ends without punctuation."""
    for what in query.RESOURCES:
        for name, field in query.fields_of(what).items():
            assert all(c.islower() or c.isdigit() or c in "/._" for c in name), name
            assert field.title and " " not in field.title, (what, name)
            assert field.doc[0].isupper() and field.doc[-1] not in ".,?!", (what, name)
            assert field.kind in query.common.KINDS, (what, name)


def test_indexed_fields_go_up_to_ganetis_maxima_with_ordinal_docs():
    fields = query.fields_of("instance")
    assert "disk.size/15" in fields and "disk.size/16" not in fields
    assert "nic.mac/7" in fields and "nic.mac/8" not in fields
    assert fields["disk.size/1"].doc == "Disk size of 2nd disk" and fields["disk.size/1"].title == "Disk/1"
    assert [fields[f"disk.name/{i}"].doc for i in (0, 2, 10, 12)] == \
        ["Name of 1st disk", "Name of 3rd disk", "Name of 11th disk", "Name of 13th disk"]
    assert fields["nic.network.name/2"].title == "NicNetworkName/2"
    assert fields["sda_size"] == fields["disk.size/0"] and fields["be/memory"] == fields["be/maxmem"]


def test_all_fields_are_listed_in_natural_order():
    """When list-fields shows every field, numbered ones are in numeric order, as Ganeti's NiceSort."""
    names = [d["name"] for d in query.field_definitions("instance", None)]
    assert names.index("disk.size/2") < names.index("disk.size/10") < names.index("disk.size/11")
    assert names == sorted(names, key=query.common.nice_key) and len(names) == len(set(names))


def test_a_hypervisor_registered_later_has_its_hv_fields_at_the_next_query():
    """When a backend registers itself after the query package was imported, its parameters are fields."""
    class ExampleHypervisor(Hypervisor):
        name = "example-query"
        PARAMETERS = {"example_knob": Param(int, 3, "a knob only this backend has")}
    try:
        assert query.fields_of("instance")["hv/example_knob"].kind == "number"
        data = _cluster()
        data.instances["ex1"] = _instance("ex1", hypervisor="example-query", hvparams={"example_knob": 5})
        row = _row(data, "ex1", ["hv/example_knob", "hv/kernel_args"])
        assert row == [[0, 5], [query.RS_UNAVAIL, None]]
    finally:
        HYPERVISORS.remove("example-query")
    assert "hv/example_knob" not in query.fields_of("instance")


# --- values on a configuration built in-process --------------------------------------------

def _cluster() -> objects.ConfigData:
    data = config.new_cluster("c1", "node1", "127.0.0.11")
    config.add_node(data, "node2", "127.0.0.12")
    data.cluster["hvparams"] = {"fake": {"serial_speed": 115200}}
    data.cluster["beparams"] = {"vcpus": 2}
    data.networks["net-uuid"] = objects.Network.from_wire({"name": "net1", "uuid": "net-uuid",
                                                           "network": "10.0.0.0/24"})
    return data


def _instance(name: str, **extra) -> objects.Instance:
    return objects.Instance.from_wire({
        "name": name, "uuid": f"{name}-uuid", "primary_node": "node1", "disk_template": "file",
        "hypervisor": "fake", "beparams": {"maxmem": 256}, "hvparams": {"kernel_args": "quiet"},
        "disks": [{"uuid": "d0", "size": 1024, "name": "root"}, {"uuid": "d1", "size": 512}],
        "nics": [{"uuid": "n0", "mac": "aa:00:00:00:00:01", "mode": "bridged", "link": "gnt-br0",
                  "ip": "10.0.0.5", "network": "net-uuid", "vlan": "100"},
                 {"uuid": "n1", "mac": "aa:00:00:00:00:02", "mode": "routed", "link": "rt0"}],
        **extra})


def _row(data, name: str, fields: list[str]) -> list:
    def no_live(*args):
        raise AssertionError("a field that is in the config asked the nodes")
    result = query.query_instances(data, fields, ["=", "name", name], no_live)
    [row] = result["data"]
    return row


def test_per_disk_fields_and_their_aliases_show_each_disk_and_nothing_past_the_last():
    data = _cluster()
    data.instances["web1"] = _instance("web1")
    fields = ["disk.size/0", "disk.size/1", "disk.size/2", "sda_size", "sdb_size", "disk.name/0", "disk.name/1",
              "disk.uuid/1", "disk.spindles/0", "disk.count", "disk.sizes", "disk.names", "disk_usage"]
    values = [v for _, v in _row(data, "web1", fields)]
    statuses = [s for s, _ in _row(data, "web1", fields)]
    assert values == [1024, 512, None, 1024, 512, "root", None, "d1", None, 2, [1024, 512], ["root", None], 1536]
    assert statuses == [0, 0, query.RS_UNAVAIL, 0, 0, 0, query.RS_UNAVAIL, 0, query.RS_UNAVAIL, 0, 0, 0, 0]


def test_per_nic_fields_and_their_aliases_follow_each_nics_mode_and_network():
    data = _cluster()
    data.instances["web1"] = _instance("web1")
    fields = {"nic.mac/0": "aa:00:00:00:00:01", "mac": "aa:00:00:00:00:01", "nic.mac/1": "aa:00:00:00:00:02",
              "ip": "10.0.0.5", "nic.ip/1": None, "bridge": "gnt-br0", "nic.bridge/1": None,
              "nic_mode": "bridged", "nic.mode/1": "routed", "nic_link": "gnt-br0", "nic.link/1": "rt0",
              "nic_network": "net-uuid", "nic.network.name/0": "net1", "nic.network/1": None,
              "nic.vlan/0": "100", "nic.vlan/1": None, "nic.uuid/1": "n1", "nic.name/0": None,
              "nic.mac/2": None, "nic.count": 2, "nic.bridges": ["gnt-br0", None],
              "nic.networks.names": ["net1", None], "nic.vlans": ["100", None]}
    row = _row(data, "web1", list(fields))
    assert dict(zip(fields, [v for _, v in row])) == fields
    assert [f for f, (status, _) in zip(fields, row) if status == query.RS_UNAVAIL] == \
        [f for f, v in fields.items() if v is None]


def test_hv_and_be_fields_show_the_merged_parameters_and_custom_ones_only_the_instances():
    data = _cluster()
    data.instances["web1"] = _instance("web1")
    fields = ["hv/kernel_args", "hv/serial_speed", "hv/kvm_path", "be/maxmem", "be/memory", "be/minmem", "vcpus",
              "be/auto_balance", "custom_hvparams", "custom_beparams"]
    default_path = HYPERVISORS.cls("fake").PARAMETERS["kvm_path"].default
    assert [v for _, v in _row(data, "web1", fields)] == [
        "quiet", 115200, default_path, 256, 256, 128, 2, True, {"kernel_args": "quiet"}, {"maxmem": 256}]
    merged = _row(data, "web1", ["hvparams"])[0][1]
    assert merged["kernel_args"] == "quiet" and merged["serial_speed"] == 115200 and "kvm_path" in merged


def test_node_and_group_fields_show_the_nodes_groups_and_parameters():
    data = _cluster()
    group = next(iter(data.nodegroups.values()))
    group["ndparams"] = {"ssh_port": 2222}
    data.nodes["node2"]["ndparams"] = {"spindle_count": 4}
    data.instances["web1"] = _instance("web1", secondary_nodes=["node2"])
    row = _row(data, "web1", ["pnode.group", "pnode.group.uuid", "snodes.group", "snodes.group.uuid"])
    assert [v for _, v in row] == ["default", group["uuid"], ["default"], [group["uuid"]]]
    nodes = query.query_nodes(data, ["name", "ndp/ssh_port", "ndp/spindle_count", "powered", "custom_ndparams"],
                              None, None)
    assert nodes["data"] == [[[0, "node1"], [0, 2222], [0, 1], [query.RS_UNAVAIL, None], [0, {}]],
                             [[0, "node2"], [0, 2222], [0, 4], [query.RS_UNAVAIL, None], [0, {"spindle_count": 4}]]]
    groups = query.query_groups(data, ["ndp/ssh_port", "ndp/cpu_speed"], None)
    assert groups["data"] == [[[0, 2222], [0, 1.0]]]


def test_live_node_fields_say_whether_the_node_is_offline_silent_or_without_the_value():
    data = _cluster()
    config.add_node(data, "node3", "127.0.0.13")
    data.nodes["node3"]["offline"] = True
    asked = []

    def live(nodes):
        asked.append([n["name"] for n in nodes])
        return {"node1": {"mfree": 100}, "node2": None}
    result = query.query_nodes(data, ["mfree", "bootid", "spfree"], None, live)
    assert asked == [["node1", "node2"]]
    assert result["data"] == [[[0, 100], [query.RS_NODATA, None], [query.RS_NODATA, None]],
                              [[query.RS_NODATA, None]] * 3, [[query.RS_OFFLINE, None]] * 3]


@pytest.mark.parametrize("text, expected", [
    ("disk.size/0 >= 1024", ["big"]),
    ("sda_size < 1024", ["small"]),
    ('mac == "aa:00:00:00:00:01"', ["big", "small"]),
    ('nic.network.name/0 == "net1" and hv/kernel_args == "quiet"', ["big", "small"]),
    ("be/memory > 200 and vcpus == 2", ["big"]),
    ('"gnt-br0" in nic.bridges and not nic.ip/1', ["big", "small"]),
    ("disk.size/1", ["big"]),
])
def test_filters_work_over_indexed_alias_and_parameter_fields(text, expected):
    """When a filter names an indexed, alias or hv/ be/ field, it selects by that field's values."""
    data = _cluster()
    data.instances["big"] = _instance("big")
    data.instances["small"] = _instance("small", beparams={"maxmem": 128}, disks=[{"uuid": "s0", "size": 512}])
    result = query.query_instances(data, ["name"], qfilter.parse_filter(text), lambda *a: {})
    assert [row[0][1] for row in result["data"]] == expected


def test_a_filter_on_an_unknown_field_is_refused_with_exit_code_14():
    with pytest.raises(errors.ParameterError, match="disk.size/16"):
        query.query_instances(_cluster(), ["name"], qfilter.parse_filter("disk.size/16 > 1"), lambda *a: {})
