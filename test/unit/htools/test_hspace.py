"""genet's hspace against Ganeti's hspace 3.0.2: the same standard output, standard error and
exit status on Ganeti's own hspace test clusters (test/unit/htools/data, from Ganeti's
test/data/htools), on simulated empty clusters, on generated clusters (a full one, roomy
ones), in both output modes, and the same refusals of what it cannot do.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import htools_testlib as tl
from genet.htools import text
from test_hail import roomy

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def hspaces():
    return tl.programs("hspace")


def same(hspaces, *args):
    """Both programs' stdout, stderr and exit status on the same arguments; genet's result."""
    real, genet = (tl.run(program, *args, timeout=300) for program in hspaces)
    assert (genet.stdout, genet.stderr, genet.returncode) == (real.stdout, real.stderr, real.returncode)
    return genet


# Ganeti's shell tests for hspace (htools-hspace.test): each file with the options it is run with
GANETI_CASES = {
    "hspace-tiered": [["--no-capacity-checks"]],
    "hspace-tiered-dualspec": [["--no-capacity-checks"]],
    "hspace-tiered-exclusive": [["--no-capacity-checks"]],
    "hspace-tiered-dualspec-exclusive": [["--no-capacity-checks"]],
    "hspace-tiered-mixed": [["--no-capacity-checks"]],
    "hspace-tiered-ipolicy": [["--no-capacity-checks"], ["-pname,pcnt", "--no-capacity-checks"]],
    "hspace-tiered-resourcetypes": [["-pname,pcnt", "--no-capacity-checks"]],
    "hspace-tiered-vcpu": [[]],
    "hspace-groups-one": [[], ["--independent-groups"], ["--accept-existing"]],
    "hspace-groups-two": [[], ["--independent-groups"], ["--accept-existing"]],
    "hspace-existing": [[], ["--accept-existing"]],
    "hspace-bad-group": [[], ["-v", "-v", "-v", "-v"], ["--accept-existing"], ["--independent-groups"]],
}


@pytest.mark.parametrize("name", sorted(GANETI_CASES))
def test_ganetis_hspace_test_clusters_are_planned_as_ganeti_plans_them(hspaces, name):
    path = DATA / f"{name}.data"
    for options in GANETI_CASES[name]:
        for mode in ([], ["--machine-readable"]):
            out = same(hspaces, "-t", path, *options, *mode)
            assert out.returncode == 0
    # with the capacity checks, the allocation maps (-v -v) and the node tables before and after
    same(hspaces, "-t", path, "-v", "-v", "-p")


def test_ganetis_expectations_hold(hspaces):
    """What Ganeti's shell test checks of the tiered results (HTS_TSPEC, HTS_ALLOC_INSTANCES)."""
    out = same(hspaces, "--machine-readable", "-t", DATA / "hspace-tiered-dualspec.data", "--no-capacity-checks")
    keys = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert keys["HTS_TSPEC"] == "'131072,1048576,4,12=4 129984,1048320,4,12=2 65472,524288,2,12=2'"
    assert keys["HTS_ALLOC_INSTANCES"] == "14" and keys["HTS_OK"] == "1"


@pytest.mark.parametrize("args", [
    ["--simulate", "p,4,8T,64g,16", "--machine-readable", "--disk-template", "drbd", "-l", "8"],
    ["--simulate", "p,4,8T,64g,16", "--disk-template", "plain"],
    ["--simulate", "p,4,8T,64g,16", "--simulate", "u,2,1T,16g,8", "-v", "-v", "-v", "-v"],
    ["--simulate", "p,3,2T,32g,8,4,True", "--machine-readable", "--disk-template", "plain"],
    ["--simulate", "p,4,8T,64g,16", "--tiered-alloc", "1024,8g,2", "--standard-alloc", "10G,2G,1,2"],
    ["--simulate", "p,4,8T,64g,16", "-l", "0", "--machine-readable"],
], ids=["drbd-limited", "plain", "two-groups-verbose", "exclusive-storage", "specs", "limit-0"])
def test_simulated_clusters_are_planned_as_ganeti_plans_them(hspaces, args):
    assert same(hspaces, *args).returncode == 0


def _write(tmp_path, name: str, data) -> Path:
    path = tmp_path / name
    path.write_text(text.serialize(data))
    return path


def test_a_full_generated_cluster_takes_nothing_more(hspaces, tmp_path):
    """Generated clusters fail N+1 already: no instance is placed, the reason is FailN1."""
    path = tmp_path / "full.data"
    path.write_text(tl.cluster_text(10, 1))
    for mode in ([], ["--machine-readable"]):
        out = same(hspaces, "-t", path, *mode)
    assert "HTS_ALLOC_FAIL_REASON=FAILN1" in out.stdout
    out = same(hspaces, "-t", path, "--accept-existing-errors", "--disk-template", "drbd", "-l", "30")
    assert " 30 instances allocated" in out.stdout


@pytest.mark.parametrize("nodes, seed, extra", [(6, 2, None), (8, 3, 2)], ids=["roomy-6", "roomy-8-two-groups"])
def test_roomy_generated_clusters_are_planned_as_ganeti_plans_them(hspaces, tmp_path, nodes, seed, extra):
    data = roomy(text.parse(tl.cluster_text(nodes, seed)), extra or 0)
    path = _write(tmp_path, "roomy.data", data)
    out = same(hspaces, "-t", path)
    assert "0 instances allocated" not in out.stdout
    same(hspaces, "-t", path, "--machine-readable", "--disk-template", "plain", "--no-capacity-checks", "-l", "40")
    same(hspaces, "-t", path, "--machine-readable", "--no-capacity-checks", "--tiered-alloc", "100g,16g,4")


def test_saved_states_are_ganetis(hspaces, tmp_path):
    real, genet = hspaces
    for program, where in ((real, "real"), (genet, "genet")):
        assert tl.run(program, "-t", DATA / "hspace-tiered.data", "--no-capacity-checks",
                      "-S", tmp_path / where).returncode == 0
    for ext in ("tiered", "standard"):
        assert (tmp_path / f"genet.{ext}").read_text() == (tmp_path / f"real.{ext}").read_text()


@pytest.mark.parametrize("args", [
    [], ["unexpected-argument"], ["-t", DATA / "invalid-node.data"], ["-t", DATA / "empty-cluster.data"],
    ["-t", DATA / "hspace-tiered.data", "--standard-alloc", "1,2"],
    ["-t", DATA / "hspace-tiered.data", "--standard-alloc", "1,2,x"],
    ["-t", DATA / "hspace-tiered.data", "--tiered-alloc", "1x,2,3"],
    ["-t", DATA / "hspace-tiered.data", "--disk-template", "foo"],
    ["-t", DATA / "hspace-tiered.data", "--spindle-use", "-1"],
    ["-t", DATA / "hspace-tiered.data", "-l", "x"],
    ["-t", DATA / "hspace-tiered.data", "--machine-readable=maybe"],
    ["-t", DATA / "hspace-tiered.data", "-O", "no-such-node"],
    ["--simulate", "x,4,8T,64g,16"], ["--simulate", "p,4,8T"],
    ["--simulate", "p,4,8T,64g,16", "-l", "0"],
], ids=["no-backend", "argument", "invalid-node", "empty-cluster", "short-spec", "bad-cpus", "bad-unit",
        "bad-template", "negative-spindles", "bad-length", "bad-choice", "unknown-offline", "bad-policy",
        "short-simulation", "limit-0-human"])
def test_what_ganeti_refuses_is_refused_the_same_way(hspaces, args):
    assert same(hspaces, *args).returncode == 1


def test_common_suffix_and_forthcoming_instances_as_ganeti(hspaces):
    same(hspaces, "-t", DATA / "common-suffix.data", "-v", "-v")
    same(hspaces, "-t", DATA / "hbal-forth.data", "--machine-readable")
    same(hspaces, "-t", DATA / "n1-failure.data", "--disk-template", "plain", "--accept-existing-errors")
