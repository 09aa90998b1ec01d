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


def dedicated(data, groups: int = 1):
    """Every node with exclusive storage (24 spindles, each instance disk one spindle per
    10 GiB) under a policy of three min/max pairs, as Ganeti's dedicated-allocation tests have;
    with ``groups`` 2 a second group of the same nodes, unallocable."""
    from genet.htools.cluster import IPolicy, ISpec
    pairs = [(ISpec(m - 2, c, d - 20, c, 1, c), ISpec(m, c, d, c, 1, c))
             for m, c, d in ((1024, 1, 10240), (2048, 2, 20480), (4096, 4, 40960))]
    policy = IPolicy(pairs, pairs[0][1], ["plain", "drbd"], 4.0, 32.0)
    for g in data.groups:
        g.ipolicy = policy
    used = {n.name: 0 for n in data.nodes}
    for i in data.instances:
        i.spindles = max(1, i.dsk // 10240)
        i.disks = [(i.dsk, i.spindles)]
        for n in (i.pnode, i.snode):
            if n:
                used[n] += i.spindles
    for n in data.nodes:
        n.excl_storage, n.spindles = True, 24 + used[n.name]
        n.free_spindles = n.spindles - used[n.name]
    if groups == 2:
        data = roomy(data, 3)
        data.groups[1].alloc_policy = "unallocable"
    return data


def spindled(name: str, template: str, mem: int, dsk: int, cpus: int = 1) -> dict:
    inst = Instance(name, mem, dsk, cpus, "running", True, "", None, template, [], cpus, dsk // 10240,
                    disks=[(dsk, dsk // 10240)])
    return {"name": name, "required_nodes": 2 if template == "drbd" else 1,
            **ialloc.instance_dict(inst, with_nodes=False)}


@pytest.mark.parametrize("groups", [1, 2])
def test_dedicated_clusters_are_allocated_by_lost_allocations_as_ganetis_hail(hails, tmp_path, groups):
    """Where every node the allocation may use has exclusive storage, both hails place by the
    allocations a placement costs (the score line shows the metric), for one and two nodes,
    in one group or the best one, one instance or several, and refuse the same way."""
    data = dedicated(roomy(text.parse(tl.cluster_text(8, 4))), groups)
    data.hypervisor = "kvm"
    group = data.groups[0].name
    asks = {"plain": spindled("d1", "plain", 1024, 10240), "drbd": spindled("d2", "drbd", 1023, 10240),
            "in-group": {**spindled("d3", "plain", 4095, 40950, 4), "group_name": group},
            "too-big": spindled("d4", "plain", 4096 * 64, 40960, 4),
            "off-policy": spindled("d5", "plain", 3000, 10240, 3)}
    requests = [(name, {"type": "allocate", **body}) for name, body in asks.items()]
    many = [spindled(f"m{k}", "plain" if k % 2 else "drbd", 1024, 10240) for k in range(5)]
    requests += [("multi", {"type": "multi-allocate", "instances": many}),
                 ("multi-in-group", {"type": "multi-allocate",
                                     "instances": [{**m, "group_name": group} for m in many]})]
    answers = {}
    for name, request in requests:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(ialloc.message(data, request)))
        answers[name] = json.loads(same(hails, path).stdout)
        same(hails, "--ignore-soft-errors", path)
    assert "score: ([" in answers["plain"]["info"] and answers["plain"]["success"]
    assert answers["drbd"]["success"] and len(answers["drbd"]["result"]) == 2
    assert not answers["too-big"]["success"] and not answers["off-policy"]["success"]
    assert answers["multi"]["success"] and len(answers["multi"]["result"][0]) == 5
    verbose = [tl.run(p, "-v", "-v", tmp_path / "plain.json").stderr for p in hails]
    assert all("Allocation on a dedicated cluster; using lost-allocations metrics." in err for err in verbose)
