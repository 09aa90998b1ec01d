"""genet's hail against Ganeti's hail 3.0.2 on the same IAllocator requests: the same answer,
byte for byte, for every request type, on generated clusters (full ones, roomy ones, two
groups), and the same refusals of requests it cannot read.

The requests are Ganeti's format (doc/iallocator.rst) written by genet.htools.ialloc.message
from the clusters bench/htools.py generates.
"""
from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

import htools_testlib as tl
from genet.htools import ialloc, text
from genet.htools.cluster import Group, Instance

REAL_HAIL = Path("/usr/lib/ganeti/3.0/usr/lib/ganeti/iallocators/hail")


@pytest.fixture(scope="module")
def hails():
    return tl.programs("hail", REAL_HAIL)


def same(hails, *args):
    """Both hails' stdout, stderr and exit status on the same arguments; genet's result."""
    real, genet = (tl.run(program, *args) for program in hails)
    assert (genet.stdout, genet.stderr, genet.returncode) == (real.stdout, real.stderr, real.returncode)
    return genet


def roomy(data, extra_nodes: int = 0):
    """Twice the memory and disk on every node, and an empty second group of ``extra_nodes``."""
    for n in data.nodes:
        n.f_mem += int(n.t_mem)
        n.t_mem *= 2
        n.f_dsk += int(n.t_dsk)
        n.t_dsk *= 2
    if extra_nodes:
        group = Group("second", "uuid-second", "preferred", [], [], data.groups[0].ipolicy)
        data.groups.append(group)
        base = data.nodes[0]
        data.nodes += [replace(base, name=f"extra{k}", group=group.uuid, f_mem=int(base.t_mem) - base.n_mem,
                               f_dsk=int(base.t_dsk), tags=[]) for k in range(extra_nodes)]
    return data


def new(name: str, template: str, mem: int, dsk: int, tags=()) -> dict:
    inst = Instance(name, mem, dsk, 1, "running", True, "", None, template, list(tags), 1, 1, disks=[(dsk, 1)])
    return {"name": name, "required_nodes": 2 if template == "drbd" else 1,
            **ialloc.instance_dict(inst, with_nodes=False)}


def requests(data, seed: int) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    drbd = [i for i in data.instances if i.template == "drbd"]
    node = data.nodes[0].name
    on_node = [i.name for i in data.instances if node in (i.pnode, i.snode)][:6]
    out = [(f"allocate-{t}-{mem}", {"type": "allocate", **new("new1", t, mem, dsk, tags)})
           for t, mem, dsk, tags in (("drbd", 1024, 10240, []), ("plain", 4096, 51200, ["service:db"]),
                                     ("drbd", 512, 1024, ["service:web"]))]
    out.append(("multi", {"type": "multi-allocate",
                          "instances": [new(f"m{k}", "drbd", 1024, 10240) for k in range(4)]}))
    out += [(f"relocate-{i.name}", {"type": "relocate", "name": i.name, "required_nodes": 1,
                                    "relocate_from": [i.snode]}) for i in rng.sample(drbd, 2)]
    out += [(f"evacuate-{mode}", {"type": "node-evacuate", "instances": on_node, "evac_mode": mode})
            for mode in ialloc.EVAC_MODES]
    if len(data.groups) > 1:
        out.append(("change-group", {"type": "change-group", "target_groups": [],
                                     "instances": [i.name for i in rng.sample(drbd, 2)]}))
    return out


CLUSTERS = {"full-8": (8, 1, None), "roomy-10-two-groups": (10, 4, 3), "roomy-12": (12, 5, 0)}


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_same_answers_as_ganetis_hail(hails, tmp_path, cluster):
    nodes, seed, extra = CLUSTERS[cluster]
    data = text.parse(tl.cluster_text(nodes, seed))
    data.hypervisor = "kvm"
    if extra is not None:
        data = roomy(data, extra)
    answers = {}
    for name, request in requests(data, seed):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(ialloc.message(data, request)))
        answers[name] = json.loads(same(hails, path).stdout)
        if name.startswith("allocate"):
            same(hails, "--no-capacity-checks", path)
    assert {a["success"] for a in answers.values()} == {True, False} or extra is not None
    if extra is not None:    # room enough: every placement succeeds and moves succeed
        assert answers["multi"]["success"] and not answers["multi"]["result"][1]
        assert all(answers[k]["success"] for k in answers if k.startswith(("relocate", "evacuate")))


def test_same_answer_with_the_cluster_from_a_text_file(hails, tmp_path):
    (tmp_path / "c.data").write_text(tl.cluster_text(6, 2))
    data = ialloc.message(text.parse("\n\n\n\n"), {"type": "allocate", **new("n1", "drbd", 256, 2048)})
    (tmp_path / "r.json").write_text(json.dumps(data))
    for options in ([], ["--ignore-soft-errors"], ["--no-capacity-checks"],
                    ["--no-capacity-checks", "--restrict-allocation-to", "node001,node002,node003"]):
        same(hails, *options, "-t", tmp_path / "c.data", tmp_path / "r.json")


def test_saved_states_before_and_after_are_ganetis(hails, tmp_path):
    data = roomy(text.parse(tl.cluster_text(6, 3)))
    data.hypervisor = "kvm"
    (tmp_path / "r.json").write_text(json.dumps(ialloc.message(data, {"type": "allocate",
                                                                         **new("n1", "drbd", 256, 2048)})))
    real, genet = hails
    for program, where in ((real, "real"), (genet, "genet")):
        assert tl.run(program, "-S", tmp_path / where, tmp_path / "r.json").returncode == 0
    for ext in ("pre-ialloc", "post-ialloc"):
        assert (tmp_path / f"genet.{ext}").read_text() == (tmp_path / f"real.{ext}").read_text()


@pytest.mark.parametrize("body", ["", "[]", "{}", '{"request": 0}', '{"request": {}}',
                                  '{"request": {"type": "allocate"}, "nodegroups": {}, "nodes": {}, "instances": {},'
                                  ' "cluster_tags": [], "enabled_hypervisors": ["kvm"]}',
                                  '{"request": {"type": "foo"}, "nodegroups": {}, "nodes": {}, "instances": {},'
                                  ' "cluster_tags": [], "enabled_hypervisors": ["kvm"]}',
                                  '{"request": {"type": "foo"}, "nodegroups": {"g": {}}, "nodes": {},'
                                  ' "instances": {}, "cluster_tags": [], "enabled_hypervisors": ["kvm"]}'])
def test_unreadable_requests_are_refused_as_ganeti_refuses_them(hails, tmp_path, body):
    (tmp_path / "r.json").write_text(body)
    assert same(hails, tmp_path / "r.json").returncode == 1


@pytest.mark.parametrize("args", [[], ["a.json", "b.json"], ["nowhere.json"]])
def test_wrong_arguments_are_refused_as_ganeti_refuses_them(hails, args):
    assert same(hails, *args).returncode == 1


@pytest.mark.parametrize("case", ["unknown group to allocate in", "node in an unknown group", "unknown instance to relocate",
                                  "unknown instance to evacuate", "unknown target group", "unknown node to relocate from"])
def test_requests_naming_what_is_not_there_get_ganetis_answer(hails, tmp_path, case):
    data = text.parse(tl.cluster_text(5, 1))
    mirrored = next(i for i in data.instances if i.template == "drbd")
    allocate = {"type": "allocate", **new("n1", "drbd", 256, 2048)}
    relocate = {"type": "relocate", "name": mirrored.name, "required_nodes": 1, "relocate_from": [mirrored.snode]}
    request = {"unknown group to allocate in": {**allocate, "group_name": "nosuch"},
               "node in an unknown group": allocate,
               "unknown instance to relocate": {**relocate, "name": "ghost"},
               "unknown instance to evacuate": {"type": "node-evacuate", "instances": ["ghost"], "evac_mode": "all"},
               "unknown target group": {"type": "change-group", "instances": [mirrored.name],
                                        "target_groups": ["nosuch"]},
               "unknown node to relocate from": {**relocate, "relocate_from": ["nonode"]}}[case]
    message = ialloc.message(data, request)
    if case == "node in an unknown group":
        message["nodes"][data.nodes[0].name]["group"] = "nosuchgroup"
    (tmp_path / "r.json").write_text(json.dumps(message))
    same(hails, tmp_path / "r.json")
