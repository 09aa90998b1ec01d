"""gnt-group info and gnt-os info in Ganeti's layouts, which Ganeti's QA and admins' scripts parse
(the group's with a YAML loader, the OS's line by line)."""
from __future__ import annotations

import contextlib
import io

import yaml

from genet import luxi
from genet.cli import base as cli_base
from genet.cli import gnt_group, gnt_os, info

POLICY = {"minmax": [{"min": {"cpu-count": 1}, "max": {"cpu-count": 8}}], "std": {"cpu-count": 1},
          "disk-templates": ["file", "diskless"], "vcpu-ratio": 4.0, "spindle-ratio": 32.0}


def group(**changes) -> dict:
    record = {"name": "rack2", "uuid": "u-1", "serial_no": 3, "ctime": 0, "mtime": 0, "alloc_policy": "preferred",
              "node_list": ["node2"], "pinst_list": [], "tags": [], "ndparams": {"spindle_count": 3, "ssh_port": 22},
              "custom_ndparams": {"spindle_count": 3}, "diskparams": {}, "custom_diskparams": {},
              "ipolicy": POLICY, "custom_ipolicy": {"vcpu-ratio": 4.0}}
    return {**record, **changes}


def test_group_info_is_ganetis_yaml_with_own_values_plain_and_inherited_ones_as_default():
    """When a group sets some parameters itself, info shows those as they are and the inherited
    ones as ``default (VALUE)``, under Ganeti's keys, parseable as YAML."""
    [shown] = yaml.safe_load(info.dump([gnt_group.entries(group(), ["net1: mode bridged, link br0"])]))
    assert shown["Node group"] == "rack2"
    assert shown["Node parameters"] == {"spindle_count": 3, "ssh_port": "default (22)"}
    assert shown["Instance policy"] == {
        "bounds specs": [{"max/0": {"cpu-count": "default (8)"}, "min/0": {"cpu-count": "default (1)"}}],
        "allowed disk templates": "default (file, diskless)", "vcpu-ratio": 4.0,
        "spindle-ratio": "default (32.0)"}
    assert (shown["Allocation policy"], shown["Networks"]) == ("preferred", [{"net1": "mode bridged, link br0"}])


def test_group_info_shows_a_groups_own_bounds_as_they_are():
    own = {"minmax": [{"min": {"cpu-count": 2}, "max": {"cpu-count": 4}}], "disk-templates": ["file"]}
    policy = gnt_group.policy_entries(own, {**POLICY, **own})
    assert dict(policy)["bounds specs"] == [{"max/0": {"cpu-count": "4"}, "min/0": {"cpu-count": "2"}}]
    assert dict(policy)["allowed disk templates"] == "file"


DIAGNOSED = [{"name": "image", "valid": True, "hidden": False, "blacklisted": True, "api_versions": [20],
              "variants": ["default"], "parameters": [["hostname", "Host name"]]},
             {"name": "broken", "valid": False, "hidden": True, "blacklisted": False, "api_versions": [],
              "variants": [], "parameters": []}]


def os_info(monkeypatch, *names: str) -> str:
    monkeypatch.setattr(gnt_os, "_diagnose", lambda ns: DIAGNOSED)
    monkeypatch.setattr(luxi.Client, "call", lambda self, method, *args: {
        "os_hvp": {"gone": {"kvm": {"acpi": False}}}, "osparams": {}})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_base.run("gnt-os", gnt_os.build, ["info", *names]) == 0
    return out.getvalue()


def test_os_info_is_ganetis_layout(monkeypatch):
    """When OSes are described, each is ``NAME:`` with Ganeti's ``  - key: value`` lines; an invalid
    one shows no versions, variants or parameters."""
    assert os_info(monkeypatch) == (
        "image:\n  - valid: True\n  - hidden: False\n  - blacklisted: True\n  - API versions:\n    - 20\n"
        "  - variants:\n    - default\n  - parameters:\n    - hostname: Host name\n  - trusted: True\n\n"
        "broken:\n  - valid: False\n  - hidden: True\n  - blacklisted: False\n  - trusted: True\n\n")


def test_os_info_of_names_shows_those_and_the_parameters_kept_for_unknown_ones(monkeypatch):
    """When names are given, only those OSes are shown; a name no node reports shows what the
    cluster keeps for it, or just ``NAME:``, as Ganeti's does."""
    out = os_info(monkeypatch, "broken", "gone", "nothing")
    assert out.startswith("broken:\n") and "image:" not in out
    assert "gone: \n  OS-specific hypervisor parameters: \n    kvm: \n      acpi: False\n  OS parameters: \n" in out
    assert out.endswith("nothing: \n\n")
