"""bench/htools.py's generated cluster is one Ganeti's htools would load without complaint.

Checked on the text it writes (parsed back here), not on the generator's objects, so a
wrong column shows up too. hbal itself is not run.
"""
from __future__ import annotations

import pytest

import htools_testlib



def load_bench():
    return htools_testlib.bench()


@pytest.fixture(scope="module")
def text():
    bench = load_bench()
    return bench.to_text(bench.generate(20, seed=1))


def sections(text: str) -> list[list[list[str]]]:
    return [[line.split("|") for line in block.splitlines()] for block in text.split("\n\n")]


@pytest.fixture(scope="module")
def parsed(text):
    groups, nodes, instances, tags, policies = sections(text)
    return {"groups": groups, "nodes": {n[0]: n for n in nodes}, "instances": instances,
            "tags": [t[0] for t in tags], "policies": policies}


def test_five_sections_and_field_counts(parsed):
    assert len(parsed["groups"]) == 1 and len(parsed["groups"][0]) == 5
    assert len(parsed["nodes"]) == 20
    assert all(len(fields) == 15 for fields in parsed["nodes"].values())
    assert len(parsed["instances"]) == 200
    assert all(len(fields) == 13 for fields in parsed["instances"])
    assert parsed["tags"] == ["htools:nlocation:rack", "htools:iextags:service"]
    assert [p[0] for p in parsed["policies"]] == ["", parsed["groups"][0][0]]


def test_same_seed_same_file_other_seed_other_file(text):
    bench = load_bench()
    assert bench.to_text(bench.generate(20, seed=1)) == text
    assert bench.to_text(bench.generate(20, seed=2)) != text


def test_free_memory_and_disk_match_the_instances(parsed):
    used_mem = {name: 0 for name in parsed["nodes"]}
    used_disk = {name: 0 for name in parsed["nodes"]}
    for _name, mem, disk, _vcpus, status, _ab, pnode, snode, *_ in parsed["instances"]:
        if status == "running":
            used_mem[pnode] += int(mem)
        used_disk[pnode] += int(disk)
        if snode:
            used_disk[snode] += int(disk)
    for name, (_, t_mem, n_mem, f_mem, t_disk, f_disk, *_) in parsed["nodes"].items():
        assert int(f_mem) == int(t_mem) - int(n_mem) - used_mem[name] >= 0, name
        assert int(f_disk) == int(t_disk) - used_disk[name] >= 0, name


def test_drbd_has_a_distinct_secondary_and_plain_none(parsed):
    templates = {}
    for fields in parsed["instances"]:
        pnode, snode, template = fields[6], fields[7], fields[8]
        templates[template] = templates.get(template, 0) + 1
        assert pnode in parsed["nodes"]
        if template == "drbd":
            assert snode in parsed["nodes"] and snode != pnode
        else:
            assert template == "plain" and snode == ""
    assert templates["drbd"] > 3 * templates["plain"] > 0


def test_about_seventy_percent_of_memory_and_disk_used(parsed):
    nodes = parsed["nodes"].values()
    mem_used = sum(int(n[1]) - int(n[3]) for n in nodes) / sum(int(n[1]) for n in nodes)
    disk_used = sum(int(n[4]) - int(n[5]) for n in nodes) / sum(int(n[4]) for n in nodes)
    assert 0.67 <= mem_used <= 0.73
    assert 0.67 <= disk_used <= 0.73


def test_first_quarter_holds_more_than_its_share(parsed):
    names = list(parsed["nodes"])
    hot = set(names[:5])
    count = {"hot": 0, "cold": 0}
    for fields in parsed["instances"]:
        for node in (fields[6], fields[7]):
            if node:
                count["hot" if node in hot else "cold"] += 1
    per_hot_node = count["hot"] / 5
    per_cold_node = count["cold"] / 15
    assert per_hot_node > 1.3 * per_cold_node


def test_racks_and_service_tags(parsed):
    racks = {}
    for name, fields in parsed["nodes"].items():
        assert fields[10].startswith("rack:")
        racks.setdefault(fields[10], []).append(name)
    assert len(racks) == 5 and all(len(members) == 4 for members in racks.values())
    services = [tag for fields in parsed["instances"] for tag in fields[9].split(",")
                if tag.startswith("service:")]
    assert {"service:web", "service:db"} <= set(services)
