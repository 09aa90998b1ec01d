"""Ganeti's htools text format as genet reads and writes it (genet.htools.text).

A generated cluster survives parse → serialize → parse; Ganeti's older, shorter node and
instance lines take Ganeti's defaults; a bad file is refused with a FormatError that names the
record and what is wrong with it.
"""
from __future__ import annotations

import dataclasses

import pytest

from genet.htools import text
from genet.htools.text import FormatError

import htools_testlib as lib

GROUP_UUID = "11111111-2222-3333-4444-555555555555"
GROUP = f"default|{GROUP_UUID}|preferred||"
# name|t_mem|n_mem|f_mem|t_disk|f_disk|t_cpu|offline|group
NODE_BASE = ["node1", "4096", "512", "3072", "102400", "92160", "4", "N", GROUP_UUID]
NODE2 = f"node2|4096|512|3584|102400|92160|4|N|{GROUP_UUID}|1||N|0|1|1.0"
# name|mem|disk|vcpus|status|auto_balance|pnode|snode|template|tags
INST_BASE = ["inst1", "512", "10240", "1", "running", "Y", "node1", "node2", "drbd", "a:b"]


def cluster(nodes: list[str], instances: list[str], tags=(), policies=None) -> str:
    secs = [[GROUP], nodes, instances, list(tags)]
    if policies is not None:
        secs.append(policies)
    return lib.join(secs)


def good(**replace) -> str:
    """A two-node, one-instance cluster, with fields of the instance or node line replaced."""
    inst = list(INST_BASE) + ["1", "-", "N"]
    node = list(NODE_BASE) + ["1", "", "N", "0", "1", "1.0"]
    for key, value in replace.items():
        kind, index = key.split("_")
        (inst if kind == "i" else node)[int(index)] = value
    return cluster(["|".join(node), NODE2], ["|".join(inst)])


# --- round trip ------------------------------------------------------------------------------

@pytest.mark.parametrize("nodes,seed", [(5, 1), (12, 7)])
def test_generated_cluster_round_trips(nodes, seed):
    source = lib.cluster_text(nodes, seed)
    first = text.parse(source)
    written = text.serialize(first)
    second = text.parse(written)
    assert second == first
    assert text.serialize(second) == written
    assert len(first.nodes) == nodes and len(first.instances) == 10 * nodes
    assert first.tags == ["htools:nlocation:rack", "htools:iextags:service"]


def test_round_trip_keeps_every_field_of_an_instance_and_a_node():
    source = lib.cluster_text(5, 3)
    data = text.parse(source)
    node_lines = lib.sections(source)[1]
    inst_lines = lib.sections(source)[2]
    assert [text.instance_line(i) for i in data.instances] == inst_lines
    # the generator writes cpu speed as "1.0"; every other node field comes back as written
    assert [text.node_line(n).split("|")[:14] for n in data.nodes] == [ln.split("|")[:14] for ln in node_lines]
    assert all(n.cpu_speed == 1.0 for n in data.nodes)


# --- Ganeti's shorter, older lines ------------------------------------------------------------

NODE_DEFAULTS = dict(spindles=1, tags=[], excl_storage=False, free_spindles=0, n_cpu=1, cpu_speed=1.0)
NODE_FULL = ["2", "x:y,z", "Y", "2", "3", "1.5"]      # the same six fields, given


@pytest.mark.parametrize("length", range(9, 16))
def test_short_node_lines_take_ganetis_defaults(length):
    fields = (NODE_BASE + NODE_FULL)[:length]
    data = text.parse(cluster(["|".join(fields), NODE2], []))
    node = data.nodes[0]
    given = dict(zip(NODE_DEFAULTS, [2, ["x:y", "z"], True, 2, 3, 1.5]))
    expected = {k: (given[k] if 9 + i < length else NODE_DEFAULTS[k]) for i, k in enumerate(NODE_DEFAULTS)}
    assert {k: getattr(node, k) for k in NODE_DEFAULTS} == expected
    assert (node.name, node.t_mem, node.n_mem, node.f_mem, node.t_dsk, node.f_dsk, node.t_cpu, node.group) == \
        ("node1", 4096.0, 512, 3072, 102400.0, 92160, 4.0, GROUP_UUID)


@pytest.mark.parametrize("length", range(10, 14))
def test_short_instance_lines_take_ganetis_defaults(length):
    fields = (INST_BASE + ["2", "3", "Y"])[:length]
    data = text.parse(cluster(["|".join(NODE_BASE), NODE2], ["|".join(fields)]))
    inst = data.instances[0]
    defaults = {"spindle_use": 1, "spindles": None, "forthcoming": False}
    given = {"spindle_use": 2, "spindles": 3, "forthcoming": True}
    expected = {k: (given[k] if 10 + i < length else defaults[k]) for i, k in enumerate(defaults)}
    assert {k: getattr(inst, k) for k in defaults} == expected
    assert (inst.name, inst.mem, inst.dsk, inst.vcpus, inst.pnode, inst.snode, inst.template, inst.tags) == \
        ("inst1", 512, 10240, 1, "node1", "node2", "drbd", ["a:b"])


def test_a_node_line_of_eight_fields_is_incomplete():
    with pytest.raises(FormatError, match="Invalid/incomplete node data"):
        text.parse(cluster(["|".join(NODE_BASE[:8]), NODE2], []))


def test_an_instance_line_of_nine_fields_is_incomplete():
    with pytest.raises(FormatError, match="Invalid/incomplete instance data"):
        text.parse(cluster(["|".join(NODE_BASE), NODE2], ["|".join(INST_BASE[:9])]))


def test_a_node_that_did_not_answer_is_offline_and_empty():
    fields = ["node1", "?", "?", "?", "?", "?", "?", "N", GROUP_UUID]
    node = text.parse(cluster(["|".join(fields), NODE2], [])).nodes[0]
    assert node.offline and (node.t_mem, node.f_mem, node.t_dsk, node.f_dsk) == (0, 0, 0, 0)


def test_without_a_policy_section_the_cluster_has_ganetis_default_policy():
    from genet.htools.cluster import default_ipolicy
    data = text.parse(good())
    assert data.ipolicy == default_ipolicy()
    assert data.groups[0].ipolicy == default_ipolicy()


# --- refused input ------------------------------------------------------------------------------

def refused(source: str) -> str:
    with pytest.raises(FormatError) as err:
        text.parse(source)
    return str(err.value)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_fewer_than_four_sections(count):
    source = lib.join([[GROUP], ["|".join(NODE_BASE)], [], []][:count])
    assert refused(source) == f"Invalid format of the input file: {count} sections instead of 4 or more"


def test_unknown_node_for_an_instance():
    assert refused(good(i_7="node9")) == "Unknown node 'node9' for instance inst1"
    assert refused(good(i_6="node8")) == "Unknown node 'node8' for instance inst1"


def test_unknown_group_for_a_node():
    assert refused(good(n_8="no-such-uuid")) == "Unknown group 'no-such-uuid' for node node1"


def test_bad_instance_status():
    assert refused(good(i_4="sleeping")) == 'Invalid string value for type InstanceStatus: "sleeping"'


def test_bad_disk_template():
    message = refused(good(i_8="floppy"))
    assert "floppy" in message and message.startswith("Instance inst1")


@pytest.mark.parametrize("field,value,owner", [("i_1", "lots", "inst1"), ("i_2", "1.5T", "inst1"),
                                               ("i_3", "", "inst1"), ("i_10", "x", "inst1"),
                                               ("n_1", "big", "node1"), ("n_3", "-", "node1"),
                                               ("n_13", "two", "node1"), ("n_14", "fast", "node1")])
def test_non_numeric_field(field, value, owner):
    message = refused(good(**{field: value}))
    assert repr(value) in message and owner in message


def test_drbd_instance_with_the_same_primary_and_secondary():
    assert refused(good(i_7="node1")) == "Instance inst1 has same primary and secondary node - node1"


def test_bad_yes_no_fields():
    assert "auto_balance" in refused(good(i_5="maybe"))
    assert "forthcoming" in refused(good(i_12="?"))
    assert "exclusive_storage" in refused(good(n_11="X"))


def policy(owner: str, minmax: str) -> str:
    return f"{owner}|128,1,1024,1,1,1|{minmax}|drbd,plain|4.0|32.0"


SPEC_LO, SPEC_HI = "128,1,1024,1,1,1", "32768,8,1048576,16,8,12"


@pytest.mark.parametrize("owner", ["", "default"])
def test_odd_number_of_min_max_specs(owner):
    source = cluster(["|".join(NODE_BASE), NODE2], [],
                     policies=[policy(owner, f"{SPEC_LO};{SPEC_HI};{SPEC_LO}")])
    assert refused(source) == f"Odd number of min/max specs for {owner}"


def test_policies_are_read_for_the_cluster_and_the_group():
    source = cluster(["|".join(NODE_BASE), NODE2], [],
                     policies=[policy("", f"{SPEC_LO};{SPEC_HI};{SPEC_LO};{SPEC_HI}"),
                               policy("default", f"{SPEC_LO};{SPEC_HI}").replace("|4.0|", "|2.5|")])
    data = text.parse(source)
    assert len(data.ipolicy.minmax) == 2 and data.ipolicy.disk_templates == ["drbd", "plain"]
    assert data.groups[0].ipolicy.vcpu_ratio == 2.5
    assert dataclasses.asdict(data.groups[0].ipolicy.minmax[0][1])["memory_size"] == 32768
