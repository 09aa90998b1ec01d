"""gnt-debug iallocator's opcode on the in-process cluster: the allocator input it builds (Ganeti's
iallocator protocol, version 2) and the allocator program it runs."""
from __future__ import annotations

import json

import pytest

from genet import errors, opcodes


def allocate(mode: str = "allocate", **params) -> opcodes.OpTestAllocator:
    return opcodes.OpTestAllocator(name="new1", mode=mode, disks=[{"size": 1024, "mode": "rw"}],
                                   nics=[{"mac": "00:11:22:33:44:55", "ip": None, "bridge": None}], memory=256,
                                   disk_template="drbd", **params)


def test_the_input_describes_the_cluster_and_the_request(cluster):
    request = json.loads(cluster.run(allocate()))
    assert (request["version"], request["cluster_name"], request["enabled_hypervisors"]) == (2, "c1", ["fake"])
    assert sorted(request["nodes"]) == ["node1", "node2", "node3"]
    node = request["nodes"]["node2"]
    assert node["primary_ip"] == "127.0.0.12" and node["master_candidate"] is True
    assert all(isinstance(node[key], int) for key in ("total_memory", "free_memory", "total_disk", "total_cpus"))
    assert [g["name"] for g in request["nodegroups"].values()] == ["default"]
    assert request["request"] == {
        "type": "allocate", "name": "new1", "disks": [{"size": 1024, "mode": "rw"}],
        "nics": [{"mac": "00:11:22:33:44:55", "ip": None, "bridge": None}], "vcpus": 1, "memory": 256,
        "spindle_use": 1, "disk_template": "drbd", "os": None, "tags": [], "hypervisor": "fake",
        "required_nodes": 2, "disk_space_total": 1024}


def test_multi_allocate_asks_for_count_instances(cluster):
    request = json.loads(cluster.run(allocate(mode="multi-allocate", count=3)))["request"]
    assert [i["name"] for i in request["instances"]] == ["new10", "new11", "new12"]


def test_node_evacuate_and_change_group_need_instances(cluster):
    cluster.refused(opcodes.OpTestAllocator(name="x", mode="node-evacuate"), "Missing instances")
    cluster.refused(opcodes.OpTestAllocator(name="ghost", mode="relocate"), "not in the cluster")


def test_direction_out_runs_the_named_allocator_on_the_input(cluster, tmp_path):
    program = tmp_path / "echo-alloc"
    program.write_text("#!/bin/sh\n"
                       "python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[\"request\"];"
                       " print(json.dumps({\"success\": True, \"info\": r[\"type\"], \"result\": [\"node2\"]}))' \"$1\"\n")
    program.chmod(0o755)
    answer = cluster.run(allocate(direction="out", iallocator=str(program)))
    assert json.loads(answer) == {"success": True, "info": "allocate", "result": ["node2"]}


def test_an_allocator_that_is_not_there_is_refused_naming_where_it_was_looked_for(cluster):
    err = cluster.refused(allocate(direction="out", iallocator="nosuch"), "iallocator 'nosuch' is not available")
    assert "/usr/lib/ganeti/iallocators" in str(err)


def test_direction_out_with_hail_answers_with_genets_built_in_allocator(cluster):
    answer = json.loads(cluster.run(allocate(direction="out", iallocator="hail")))
    assert answer["success"] is True, answer
    assert answer["info"].startswith("Request successful: Selected group: default, Group default (preferred): score: ")
    assert len(answer["result"]) == 2 and set(answer["result"]) <= {"node1", "node2", "node3"}
    cluster.refused(allocate(direction="out"), "Missing allocator name")


def test_a_failing_allocator_fails_the_job_with_its_output(cluster, tmp_path):
    program = tmp_path / "broken"
    program.write_text("#!/bin/sh\necho 'cannot parse input' >&2\nexit 3\n")
    program.chmod(0o755)
    with pytest.raises(errors.OpExecError, match="exit 3.*cannot parse input"):
        cluster.run(allocate(direction="out", iallocator=str(program)))
