"""hcheck run as a user runs it, genet's next to Ganeti's 3.0.2 on the same files.

Generated clusters (one with two node groups, one with offline, stopped and shared-storage
instances), a hand-written one and Ganeti's own test files for hcheck's shelltests: genet's
hcheck prints the same standard output and error and exits with the same status, in both
output modes and with every option that changes the counts or the simulated balancing.
"""
from __future__ import annotations

import json
import re

import pytest

import htools_testlib as lib
from test_hbal_cli import two_groups


GENET_HCHECK = lib.GENET_HBAL.with_name("hcheck")


@pytest.fixture(scope="module")
def programs():
    assert GENET_HCHECK.exists(), f"genet's hcheck is not installed at {GENET_HCHECK}"
    return lib.require_real("hcheck"), GENET_HCHECK


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Cluster files by name: generated ones, the hand-written one, Ganeti's."""
    root = tmp_path_factory.mktemp("hcheck")
    texts = {f"gen-{n}-{s}": lib.cluster_text(n, s) for n, s in [(5, 1), (8, 3), (6, 13)]}
    texts["mixed-8-2"] = lib.mixed_cluster(8, 2)
    texts["hand"] = lib.HAND_CLUSTER
    texts["two-groups"] = two_groups()
    out = {}
    for name, body in texts.items():
        out[name] = root / f"{name}.data"
        out[name].write_text(body)
    for path in lib.GANETI_DATA.glob("*.data"):
        out[path.stem] = path
    out["root"] = root
    return out


def same(programs, *args):
    """Both hchecks on the same arguments: the same output and status; genet's run."""
    real, genet = (lib.run(p, *args) for p in programs)
    assert (genet.stdout, genet.stderr, genet.returncode) == (real.stdout, real.stderr, real.returncode), args
    return genet


MODES = {"human": (), "machine-readable": ("--machine-readable",)}
RUNS = [(cluster, mode) for cluster in ("gen-5-1", "gen-8-3", "mixed-8-2", "hand", "two-groups")
        for mode in MODES]


@pytest.mark.parametrize("cluster,mode", RUNS, ids=[f"{c}-{m}" for c, m in RUNS])
def test_same_output_as_ganetis_hcheck(programs, files, cluster, mode):
    out = same(programs, "-t", files[cluster], *MODES[mode]).stdout
    assert ("HCHECK_OK=1" in out) == (mode == "machine-readable")


@pytest.mark.parametrize("cluster", ["gen-6-13", "two-groups"])
@pytest.mark.parametrize("options", [("--no-simulation",), ("--no-capacity-checks",),
                                     ("--machine-readable", "--no-simulation"),
                                     ("--machine-readable", "--no-capacity-checks")], ids=" ".join)
def test_same_output_without_simulation_or_capacity_checks(programs, files, cluster, options):
    same(programs, "-t", files[cluster], *options)


OPTION_SETS = {
    "offline": ("-O", "node002"),
    "evac-mode": ("-E", "-O", "node002"),
    "no-disk-moves": ("--no-disk-moves",),
    "no-instance-moves": ("--no-instance-moves",),
    "max-length": ("-l", "2"),
    "min-gain": ("-g", "0.5", "--min-gain-limit", "1000"),
    "min-score": ("-e", "50"),
    "exclusion-tags": ("--exclusion-tags", "backup"),
    "select-instances": ("--select-instances", "inst0001,inst0003"),
    "exclude-instances": ("--exclude-instances", "inst0001"),
    "ignore-soft-errors": ("--ignore-soft-errors",),
    "max-cpu": ("--max-cpu", "2"),
    "min-disk": ("--min-disk", "0.2"),
    "ignore-dynu": ("--ignore-dynu",),
    "quiet": ("-q",),
    "quiet-machine-readable": ("-q", "--machine-readable"),
    "verbose": ("-v", "-v"),
    "machine-readable-no": ("--machine-readable=no",),
    "machine-readable-yes": ("--machine-readable=yes",),
}


@pytest.mark.parametrize("name", OPTION_SETS)
def test_same_output_with_hbals_options(programs, files, name):
    same(programs, "-t", files["gen-5-1"], *OPTION_SETS[name])


def test_same_output_with_utilisation_data(programs, files):
    util = files["root"] / "util.txt"
    util.write_text("".join(f"inst000{k} {k / 10} {k / 5} 0.{k} 1.5\n" for k in range(1, 7)))
    same(programs, "-t", files["gen-5-1"], "-U", util)
    same(programs, "-t", files["gen-5-1"], "-U", util, "--machine-readable")


# Ganeti's shelltests of hcheck (htools-hcheck.test, htools-balancing.test): arguments, what
# the output must contain, the exit status; genet's output is also Ganeti's in full
SHELLTESTS = [
    (("shared-n1-failure",), r"Nodes not directly evacuateable: 1", 1),
    (("shared-n1-failure", "--machine-readable"), r"HCHECK_INIT_CLUSTER_GN1_FAIL=1", 1),
    (("shared-n1-failure", "--machine-readable"), r"HCHECK_INIT_CLUSTER_NEED_REBALANCE=1", 1),
    (("shared-n1-failure", "--machine-readable", "--no-capacity-checks"),
     r"HCHECK_INIT_CLUSTER_NEED_REBALANCE=0", 0),
    (("shared-n1-failure",), r"Cluster is not healthy: True", 1),
    (("shared-n1-failure", "--no-capacity-checks"), r"Cluster is not healthy: False", 0),
    (("n1-failure",), r"Cluster needs rebalancing.", 1),
    (("n1-failure", "--no-simulation"), r"Running in no-simulation mode.", 0),
    (("clean-nonzero-score",), r"No need to rebalance cluster, no problems found.", 0),
    (("clean-nonzero-score", "--machine-readable"), r"HCHECK_INIT_CLUSTER_NEED_REBALANCE=0", 0),
    (("empty-cluster",), r"Nodes not N\+1 happy: False", 0),
    (("empty-cluster", "--machine-readable"), r"HCHECK_OK=1", 0),
    (("hbal-split-insts", "--machine-readable", "--no-capacity-checks", "-O", "node-01-001"), r"HCHECK_OK=1", 1),
]


@pytest.mark.parametrize("args,expected,status", SHELLTESTS, ids=[" ".join(a) for a, _, _ in SHELLTESTS])
def test_ganetis_shelltests(programs, files, args, expected, status):
    genet = same(programs, "-t", files[args[0]], *args[1:])
    assert re.search(expected, genet.stdout)
    assert genet.returncode == status


GANETI_FILES = ["hbal-forth", "hbal-excl-tags", "hbal-evac", "hbal-location-exclusion", "hbal-desiredlocation-1",
                "hbal-migration-1", "shared-n1-restriction", "hspace-groups-two", "missing-resources"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cluster", GANETI_FILES)
def test_same_output_on_ganetis_other_test_clusters(programs, files, cluster, mode):
    same(programs, "-t", files[cluster], *MODES[mode])


def test_split_instances_are_checked_where_ganeti_stops(programs, files):
    """Ganeti's hcheck 3.0.2 stops with an internal error (IntMap.!) on the global N+1 check of a
    group whose instances have their secondary in another group; genet's counts them, and the
    rest of its output is Ganeti's without that check."""
    real, genet = programs
    crashed = lib.run(real, "-t", files["hbal-split-insts"])
    assert crashed.returncode == 1 and "IntMap.!" in crashed.stderr
    without = lib.run(real, "-t", files["hbal-split-insts"], "--no-capacity-checks")
    checked = lib.run(genet, "-t", files["hbal-split-insts"])
    assert checked.returncode == without.returncode == 0
    gn1 = [line for line in checked.stdout.splitlines() if "evacuateable" in line]
    assert gn1 == ["    Nodes not directly evacuateable: 0"] * len(gn1) and len(gn1) == 3
    assert "\n".join(line for line in checked.stdout.splitlines() if "evacuateable" not in line) + "\n" \
        == without.stdout


@pytest.mark.parametrize("args", [("-t", "gen-5-1", "extra"), ("-t", "nosuch.data"), (),
                                  ("-t", "gen-5-1", "-O", "nosuch"), ("-t", "gen-5-1", "-m", "host", "-L"),
                                  ("-t", "gen-5-1", "--select-instances", "nosuch"), ("-I", "nosuch.json")],
                         ids=" ".join)
def test_errors_are_ganetis(programs, files, args):
    args = [str(files.get(a, a)) for a in args]
    same(programs, *args)


@pytest.mark.parametrize("body", ["{}", "[]", "not json"])
def test_unreadable_iallocator_requests_are_refused_as_ganeti_refuses_them(programs, files, body):
    path = files["root"] / "bad.json"
    path.write_text(body)
    same(programs, "-I", path)


def test_an_unknown_option_is_a_usage_error_as_in_ganeti(programs, files):
    real, genet = (lib.run(p, "-t", files["gen-5-1"], "--restricted-migration") for p in programs)
    assert real.returncode == genet.returncode == 2
    assert real.stdout == genet.stdout == ""


def test_the_cluster_of_an_iallocator_request_is_checked_as_its_text_file(programs, files):
    """-I reads the cluster of a request once. (Ganeti's hcheck 3.0.2 adds the instances of a
    request to their nodes twice, so its counts there are not the cluster's.)"""
    from genet.htools import ialloc, text
    data = text.load(files["gen-5-1"])
    request = files["root"] / "request.json"
    request.write_text(json.dumps(ialloc.message(data, {"type": "allocate", "name": "new1", "memory": 512,
                                                        "disks": [{"size": 1024, "mode": "rw"}], "vcpus": 1,
                                                        "disk_template": "drbd", "nics": [], "tags": [],
                                                        "os": "debian", "disk_space_total": 1024,
                                                        "spindle_use": 1, "required_nodes": 2})))
    genet = programs[1]
    for mode in MODES.values():
        from_request = lib.run(genet, "-I", request, *mode)
        from_text = lib.run(genet, "-t", files["gen-5-1"], *mode)
        assert (from_request.stdout, from_request.returncode) == (from_text.stdout, from_text.returncode) != ("", 0)
