"""The IAllocator from the master's side, on the in-process cluster: genet's request read by
Ganeti's own hail (3.0.2, the Debian package) used as an external allocator with -I, the same
answer from genet's built-in hail, the cluster's iallocator parameters passed as options, and
an allocator's refusal naming it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


from genet.opcodes import OpClusterSetParams, OpInstanceCreate, OpTestAllocator

GANETI_HAIL = "/usr/lib/ganeti/3.0/usr/lib/ganeti/iallocators/hail"


@pytest.fixture
def ganeti_hail():
    if not Path(GANETI_HAIL).exists():
        pytest.fail(f"Ganeti's hail is missing at {GANETI_HAIL}: autotools/install-deps installs it"
                    " (Debian package ganeti-htools-3.0)")
    return GANETI_HAIL


def add(cluster, name: str, iallocator: str | None, template: str = "file", memory: int = 128) -> dict:
    cluster.run(OpInstanceCreate(instance_name=name, disk_template=template, os_type="noop",
                                 disks=[{"size": 8}] if template != "diskless" else [],
                                 beparams={"memory": memory}, iallocator=iallocator))
    return cluster.instance(name)


def test_ganetis_hail_places_an_instance_from_genets_request(cluster, ganeti_hail):
    placed = add(cluster, "web1", ganeti_hail)
    assert placed["primary_node"] in ("node1", "node2", "node3")
    assert any(f"Selected nodes for instance web1 via iallocator {ganeti_hail}: {placed['primary_node']}" in line
               for line in cluster.log)


def test_genets_hail_and_ganetis_answer_the_same_request_alike(cluster, ganeti_hail):
    for k in range(3):
        add(cluster, f"web{k}", "hail", template="file" if k % 2 else "diskless", memory=128 * (k + 1))
    for mode in ("allocate", "multi-allocate"):
        op = dict(name="new1", mode=mode, disks=[{"size": 1024, "mode": "rw"}], nics=[], memory=256,
                  disk_template="file", direction="out", count=2)
        answers = [json.loads(cluster.run(OpTestAllocator(iallocator=name, **op))) for name in ("hail", ganeti_hail)]
        assert answers[0]["success"] is True and answers[0] == answers[1]


def test_a_mirrored_instance_is_drbd_to_ganetis_hail(cluster, ganeti_hail):
    request = json.loads(cluster.run(OpTestAllocator(name="m1", mode="allocate", disks=[{"size": 8, "mode": "rw"}],
                                                     nics=[], memory=128, disk_template="mirror")))
    assert request["request"]["disk_template"] == "drbd" and request["request"]["required_nodes"] == 2
    answer = json.loads(cluster.run(OpTestAllocator(name="m1", mode="allocate", disks=[{"size": 8, "mode": "rw"}],
                                                    nics=[], memory=128, disk_template="mirror", direction="out",
                                                    iallocator=ganeti_hail)))
    assert answer["success"] is True and len(set(answer["result"])) == 2


def test_the_clusters_iallocator_params_are_the_allocators_options(cluster, tmp_path):
    program = tmp_path / "args"
    program.write_text("#!/bin/sh\nargs=\"$*\"\n"
                       "printf '{\"success\": false, \"info\": \"%s\", \"result\": []}' \"$args\"\n")
    program.chmod(0o755)
    cluster.run(OpClusterSetParams(default_iallocator=str(program),
                                   default_iallocator_params={"no-capacity-checks": "", "ignore-dynu": "yes"}))
    err = cluster.refused(OpInstanceCreate(instance_name="x1", disk_template="diskless", os_type="noop",
                                           beparams={"memory": 128}),
                          f"Can't compute nodes using iallocator '{program}': --ignore-dynu=yes --no-capacity-checks /",
                          "insufficient_resources")
    assert str(err).count("genet-ialloc-") == 1 and cluster.instance("x1") is None


def test_the_builtin_hail_takes_the_clusters_iallocator_params(cluster):
    cluster.run(OpClusterSetParams(default_iallocator_params={"no-capacity-checks": ""}))
    assert add(cluster, "web1", None)["primary_node"] in ("node1", "node2", "node3")
    cluster.run(OpClusterSetParams(default_iallocator_params={"frobnicate": "1"}))
    cluster.refused(OpInstanceCreate(instance_name="web2", disk_template="diskless", os_type="noop",
                                     beparams={"memory": 128}), "hail does not take the options --frobnicate=1",
                    "wrong_input")


def test_an_allocator_that_cannot_place_refuses_the_creation_naming_itself(cluster):
    cluster.refused(OpInstanceCreate(instance_name="huge", disk_template="diskless", os_type="noop",
                                     beparams={"memory": 1 << 30}, iallocator="hail"),
                    "Can't compute nodes using iallocator 'hail': Request failed: Group default \\(preferred\\): No"
                    " valid allocation solutions, failure reasons: ", "insufficient_resources")
    assert cluster.instance("huge") is None


def test_unknown_allocator_names_are_refused_before_anything_happens(cluster):
    cluster.refused(OpInstanceCreate(instance_name="x", disk_template="diskless", os_type="noop",
                                     iallocator="nosuch"), "iallocator 'nosuch' is not available", "wrong_input")


def test_a_multi_allocation_in_a_group_is_placed_on_its_nodes(cluster):
    from genet.opcodes import OpGroupAdd, OpGroupAssignNodes, OpInstanceMultiAlloc
    cluster.run(OpGroupAdd(group_name="rack2"))
    cluster.run(OpGroupAssignNodes(group_name="rack2", nodes=["node2", "node3"]))
    creation = [{"instance_name": f"b{k}", "disk_template": "diskless", "os_type": "noop",
                 "beparams": {"memory": 128}, "group_name": "rack2"} for k in range(2)]
    result = cluster.run(OpInstanceMultiAlloc(instances=creation))
    assert result["allocatable"] == ["b0", "b1"]
    assert [cluster.wait(job_id)["status"] for _, job_id in result["jobs"]] == ["success", "success"]
    assert {cluster.instance(f"b{k}")["primary_node"] for k in range(2)} <= {"node2", "node3"}
    cluster.refused(OpInstanceMultiAlloc(instances=[{**creation[0], "instance_name": "c1"},
                                                    {**creation[1], "instance_name": "c2", "group_name": "default"}]),
                    "placed in one node group: they name default, rack2", "wrong_input")
