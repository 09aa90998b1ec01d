"""Ganeti's instance policy checks (genet.ipolicy): which bound an instance breaks, in Ganeti's words."""
from __future__ import annotations

import copy

from genet import ipolicy, params
from genet.ipolicy import InstanceSpec, violations
from genet.objects import Instance
from genet.opcodes.group import ISPECS

PAIR = {"min": {"memory-size": 128, "cpu-count": 1, "disk-count": 1, "disk-size": 1024, "nic-count": 1,
                "spindle-use": 1},
        "max": {"memory-size": 32768, "cpu-count": 8, "disk-count": 16, "disk-size": 1024 * 1024, "nic-count": 8,
                "spindle-use": 12}}
POLICY = {"minmax": [PAIR], "disk-templates": ["drbd", "file", "plain"]}
GOOD = InstanceSpec(memory=512, cpus=2, disk_sizes=(2048,), nic_count=1, spindle_use=1, disk_templates=("file",))


def spec(**changes) -> InstanceSpec:
    return InstanceSpec(**{**GOOD.__dict__, **changes})


def test_the_spec_names_are_the_policys():
    assert {ipolicy.MEMORY_SIZE, ipolicy.CPU_COUNT, ipolicy.DISK_COUNT, ipolicy.DISK_SIZE, ipolicy.NIC_COUNT,
            ipolicy.SPINDLE_USE} == set(ISPECS)


def test_an_instance_within_the_bounds_breaks_nothing():
    assert violations(POLICY, GOOD) == []
    assert violations(POLICY, spec(memory=128, cpus=8, disk_sizes=(1024, 1024 * 1024))) == []


def test_each_spec_outside_its_bounds_is_named_with_its_value_and_range():
    """When a value is below its minimum or above its maximum, Ganeti's message names the spec."""
    assert violations(POLICY, spec(memory=64)) == ["memory-size value 64 is not in range [128, 32768]"]
    assert violations(POLICY, spec(cpus=9)) == ["cpu-count value 9 is not in range [1, 8]"]
    assert violations(POLICY, spec(nic_count=0)) == ["nic-count value 0 is not in range [1, 8]"]
    assert violations(POLICY, spec(nic_count=9)) == ["nic-count value 9 is not in range [1, 8]"]
    assert violations(POLICY, spec(spindle_use=13)) == ["spindle-use value 13 is not in range [1, 12]"]
    assert violations(POLICY, spec(disk_sizes=(512,))) == ["disk-size/0 value 512 is not in range [1024, 1048576]"]
    assert violations(POLICY, spec(disk_sizes=(2048,) * 17, disk_templates=("file",) * 17)) == \
        ["disk-count value 17 is not in range [1, 16]"]


def test_every_broken_bound_is_listed_in_ganetis_order():
    assert violations(POLICY, spec(memory=64, cpus=9, disk_sizes=(2048, 8), disk_templates=("file",) * 2,
                                   spindle_use=0)) == [
        "memory-size value 64 is not in range [128, 32768]", "cpu-count value 9 is not in range [1, 8]",
        "spindle-use value 0 is not in range [1, 12]", "disk-size/1 value 8 is not in range [1024, 1048576]"]


def test_unknown_values_and_bounds_a_pair_does_not_give_are_not_checked():
    assert violations(POLICY, spec(memory=None, cpus=None, disk_sizes=(None,), nic_count=None,
                                   spindle_use=None)) == []
    partial = {"minmax": [{"min": {"memory-size": 256}, "max": {}}], "disk-templates": ["file"]}
    assert violations(partial, spec(cpus=999, memory=200)) == ["memory-size value 200 is not in range [256, 200]"]


def test_of_several_min_max_pairs_the_one_the_instance_comes_closest_to_is_reported():
    """When several pairs are given, the instance meets the policy if it is within any one; else
    the pair it breaks fewest bounds of is reported (the first of equals), as Ganeti does."""
    small = copy.deepcopy(PAIR)
    small["max"].update({"memory-size": 1024, "cpu-count": 2})
    big = copy.deepcopy(PAIR)
    big["min"].update({"memory-size": 4096, "cpu-count": 4})
    policy = {**POLICY, "minmax": [small, big]}
    assert violations(policy, spec(memory=1024, cpus=2)) == []           # in the small pair
    assert violations(policy, spec(memory=8192, cpus=8)) == []           # in the big pair
    assert violations(policy, spec(memory=2048, cpus=2)) == ["memory-size value 2048 is not in range [128, 1024]"]
    assert violations(policy, spec(memory=8192, cpus=3)) == ["cpu-count value 3 is not in range [4, 8]"]
    assert violations(policy, spec(memory=2048, cpus=3)) == [            # two each: the first pair
        "memory-size value 2048 is not in range [128, 1024]", "cpu-count value 3 is not in range [1, 2]"]


def test_a_disk_template_the_policy_does_not_allow_is_named_with_the_allowed_ones():
    assert violations(POLICY, spec(disk_templates=("mirror",))) == [
        "Disk template mirror is not allowed (allowed templates: drbd, file, plain)"]
    narrow = {**POLICY, "disk-templates": ["file", "drbd"]}
    assert violations(narrow, spec(disk_templates=("plain",), memory=64)) == [
        "Disk template plain is not allowed (allowed templates: drbd, file)",
        "memory-size value 64 is not in range [128, 32768]"]


def test_a_diskless_instance_is_not_bound_by_the_disk_count_but_by_the_templates():
    """When an instance has no disks, the disk count is not checked (Ganeti's wording, without
    the colon, when diskless is not allowed)."""
    diskless = spec(disk_sizes=(), disk_templates=())
    assert violations({**POLICY, "disk-templates": ["diskless", "file"]}, diskless) == []
    assert violations(POLICY, diskless) == ["Disk template diskless is not allowed (allowed templates drbd, file, plain)"]


def test_an_instances_spec_is_its_maxmem_vcpus_disks_nics_and_template():
    inst = Instance.from_wire({"name": "i1", "uuid": "u", "primary_node": "node1", "disk_template": "plain",
                               "disks": [{"uuid": "d0", "size": 8, "mode": "rw"}, {"uuid": "d1", "size": 4096,
                                                                                   "mode": "rw"}],
                               "nics": []})
    be = {"maxmem": 64, "minmem": 32, "vcpus": 2, "spindle_use": 1}
    assert ipolicy.instance_spec(inst, be) == InstanceSpec(memory=64, cpus=2, disk_sizes=(8, 4096), nic_count=0,
                                                           spindle_use=1, disk_templates=("plain", "plain"))
    assert ipolicy.instance_spec(inst, be, memory="minmem").memory == 32
    assert ipolicy.instance_violations(POLICY, inst, be) == [
        "memory-size value 64 is not in range [128, 32768]", "nic-count value 0 is not in range [1, 8]",
        "disk-size/0 value 8 is not in range [1024, 1048576]"]


class _Data:
    def __init__(self, cluster):
        self.cluster = cluster


def test_the_default_policy_is_ganetis_and_allows_the_clusters_enabled_templates():
    policy = params.ipolicy(_Data({"enabled_disk_templates": ["mirror", "file"]}))
    assert policy["minmax"] == [PAIR] and policy["disk-templates"] == ["mirror", "file"]
    assert (policy["vcpu-ratio"], policy["spindle-ratio"]) == (4.0, 32.0)
    assert policy["std"] == PAIR["min"]
    own = params.ipolicy(_Data({"enabled_disk_templates": ["file"], "ipolicy": {"disk-templates": ["diskless"]}}))
    assert own["disk-templates"] == ["diskless"]


def test_the_test_clusters_init_options_make_their_policy_and_it_holds_together():
    """dev-cluster and the loopback clusters pass genet_dev.policy's options to gnt-cluster init:
    they must parse into its policy, which must pass the cluster's own check."""
    import argparse

    from genet.cli import ipolicy as cli_ipolicy
    from genet.cmdlib.common import checked_ipolicy
    from genet_dev import policy
    parser = argparse.ArgumentParser()
    cli_ipolicy.add_options(parser, old_specs=True)
    assert cli_ipolicy.from_args(parser.parse_args(policy.init_options())) == {"ipolicy": policy.TEST_IPOLICY}
    checked_ipolicy(params.ipolicy(_Data({"ipolicy": policy.TEST_IPOLICY})))
    tiny = InstanceSpec(memory=64, cpus=1, disk_sizes=(4,), nic_count=0, spindle_use=1, disk_templates=("file",))
    assert violations({**policy.TEST_IPOLICY, "disk-templates": ["file"]}, tiny) == []
