"""Instance policies as settings (Ganeti's --ipolicy-* and --specs-* options), in-process: parsed,
completed from the policy before, checked, recorded per cluster and group (enforcing them:
test_instance_policy.py)."""
from __future__ import annotations

import argparse

import pytest

from genet.cli import ipolicy
from genet.opcodes import OpClusterQuery, OpClusterSetParams, OpGroupAdd, OpGroupSetParams


@pytest.fixture(autouse=True)
def default_policy(request):
    """The cluster has Ganeti's default bounds (the test clusters' own are wider: genet_dev.policy)."""
    if "cluster" in request.fixturenames:
        request.getfixturevalue("cluster").run(OpClusterSetParams(ipolicy={"minmax": "default"}))


def parsed(*argv: str, old_specs: bool = False) -> dict:
    parser = argparse.ArgumentParser()
    ipolicy.add_options(parser, old_specs)
    return ipolicy.from_args(parser.parse_args(list(argv)))


def test_the_options_make_the_opcodes_policy():
    assert parsed("--ipolicy-bounds-specs", "min:memory-size=64,cpu-count=1/max:memory-size=4G,cpu-count=8",
                  "--ipolicy-std-specs", "memory-size=512", "--ipolicy-vcpu-ratio", "2.5") == {"ipolicy": {
        "minmax": [{"min": {"memory-size": 64, "cpu-count": 1}, "max": {"memory-size": 4096, "cpu-count": 8}}],
        "std": {"memory-size": 512}, "vcpu-ratio": 2.5}}
    assert parsed("--specs-mem-size", "min=128,max=1G,std=256", "--specs-nic-count", "max=4",
                  old_specs=True) == {"ipolicy": {"minmax": [{"min": {"memory-size": 128},
                                                              "max": {"memory-size": 1024, "nic-count": 4}}],
                                                  "std": {"memory-size": 256}}}
    assert parsed() == {}
    assert parsed("--ipolicy-vcpu-ratio", "default", "--ipolicy-bounds-specs", "default") == \
        {"ipolicy": {"vcpu-ratio": "default", "minmax": "default"}}          # the group inherits again
    with pytest.raises(SystemExit):
        parsed("--ipolicy-bounds-specs", "min:memory-size=64")          # no max: side


def test_a_partial_pair_is_completed_and_a_policy_that_does_not_hold_is_refused(cluster):
    cluster.run(OpClusterSetParams(ipolicy={"minmax": [{"min": {"disk-count": 0}, "max": {"cpu-count": 4}}]}))
    [pair] = cluster.run(OpClusterQuery())["ipolicy"]["minmax"]
    assert (pair["min"]["disk-count"], pair["max"]["cpu-count"], pair["max"]["memory-size"]) == (0, 4, 32768)
    cluster.refused(OpClusterSetParams(ipolicy={"minmax": [{"min": {"cpu-count": 9}, "max": {}}]}),
                    "cpu-count minimum 9 is above its maximum 4", "wrong_input")
    cluster.refused(OpClusterSetParams(ipolicy={"std": {"memory-size": 64}}),
                    "standard memory-size 64 is outside the min/max bounds", "wrong_input")


def test_a_groups_policy_overrides_the_clusters_and_default_inherits_again(cluster):
    cluster.run(OpGroupAdd(group_name="rack2", ipolicy={"vcpu-ratio": 8.0}))
    assert cluster.data().nodegroups[next(u for u, g in cluster.data().nodegroups.items()
                                          if g.name == "rack2")].ipolicy == {"vcpu-ratio": 8.0}
    cluster.refused(OpGroupSetParams(group_name="rack2", ipolicy={"std": {"cpu-count": 99}}),
                    "standard cpu-count 99 is outside", "wrong_input")
    cluster.run(OpGroupSetParams(group_name="rack2", ipolicy={"vcpu-ratio": "default"}))
    assert all(g.ipolicy == {} for g in cluster.data().nodegroups.values())


def test_show_ispecs_cmd_prints_ganetis_recreating_command_lines(cluster):
    pair = {"min": {"cpu-count": 1, "memory-size": 128}, "max": {"cpu-count": 8, "memory-size": 4096}}
    assert ipolicy.create_command("gnt-cluster init", "c1", {"std": {"cpu-count": 2}, "minmax": [pair, pair]},
                                  group=False) == (
        "gnt-cluster init --ipolicy-std-specs cpu-count=2 --ipolicy-bounds-specs"
        " min:cpu-count=1,memory-size=128/max:cpu-count=8,memory-size=4096"
        "//min:cpu-count=1,memory-size=128/max:cpu-count=8,memory-size=4096 c1")
    assert ipolicy.create_command("gnt-group add", "rack2", {"std": {"cpu-count": 2}}, group=True) == \
        "gnt-group add rack2"
    # the line parses back into the policy it shows
    line = ipolicy.create_command("gnt-cluster init", "c1", cluster.run(OpClusterQuery())["ipolicy"], group=False)
    argv = line.split()[2:-1]
    assert parsed(*argv)["ipolicy"]["minmax"] == cluster.run(OpClusterQuery())["ipolicy"]["minmax"]


def test_a_groups_resource_states_are_recorded_and_changed_per_hypervisor(cluster):
    cluster.run(OpGroupAdd(group_name="rack2", hv_state={"fake": {"mem_total": 8192}}))
    cluster.run(OpGroupSetParams(group_name="rack2", hv_state={"fake": {"cpu_total": 16}},
                                 disk_state={"file": {"disk_total": 1024}}))
    [group] = [g for g in cluster.data().nodegroups.values() if g.name == "rack2"]
    assert (group.hv_state, group.disk_state) == ({"fake": {"mem_total": 8192, "cpu_total": 16}},
                                                  {"file": {"disk_total": 1024}})


def test_a_groups_bounds_need_not_hold_the_clusters_standard_specs(cluster):
    """When a group's own bounds leave out the cluster's standard specs, they are taken (Ganeti checks
    those only on the cluster); bounds that hold no value at all are still refused."""
    cluster.run(OpGroupAdd(group_name="rack2"))
    four = {"cpu-count": 4, "memory-size": 4}
    cluster.run(OpGroupSetParams(group_name="rack2", ipolicy={"minmax": [{"min": four, "max": four}]}))
    [group] = [g for g in cluster.data().nodegroups.values() if g.name == "rack2"]
    assert group.ipolicy["minmax"][0]["min"]["cpu-count"] == 4
    cluster.refused(OpGroupSetParams(group_name="rack2", ipolicy={"minmax": [{"min": {"cpu-count": 8},
                                                                              "max": {"cpu-count": 4}}]}),
                    "cpu-count minimum 8 is above its maximum 4", "wrong_input")
    cluster.run(OpGroupSetParams(group_name="rack2", ipolicy={"minmax": "default"}))
    assert all(g.ipolicy == {} for g in cluster.data().nodegroups.values())
