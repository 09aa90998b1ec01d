"""hroller, genet's next to Ganeti's 3.0.2, on the same clusters with the same options.

Byte for byte: standard output, standard error and exit status, on every cluster file of
Ganeti's test suite (ganeti_data/) under the option sets of Ganeti's hroller shelltests and
more, on random small clusters made to be tight (hroller_clusters.py) and on generated ones.
Most runs call genet's hroller in-process (fast); the console script is run as a user runs
it for the command-line cases.
"""
from __future__ import annotations

import re
import shlex
import textwrap

import pytest

import htools_testlib as lib
from genet.htools import hroller
from hroller_clusters import random_cluster

GANETI_FILES = sorted(p.name for p in lib.GANETI_DATA.glob("*.data"))

# the option sets of Ganeti's test/hs/shelltests/htools-hroller.test, then more
SHELLTEST_OPTIONS = ["--no-headers --ignore-non-redundant", "--no-headers --skip-non-redundant", "--no-headers",
                     "--ignore-non-redundant -O node-01-002 --no-headers", "--node-tags=red --no-headers",
                     "--node-tags=blue --no-headers", "--no-headers --offline-maintenance", "--skip-non-redundant",
                     "--no-headers --full-evacuation", "--no-headers --full-evacuation --one-step-only --print-moves",
                     "--full-evacuation"]
MORE_OPTIONS = ["-v -v -v --print-moves", "-f -v -v --print-moves", "-f --full-evacuation --print-moves",
                "-f --offline-maintenance --print-moves", "-f --ignore-non-redundant --full-evacuation --print-moves",
                "-f --skip-non-redundant --print-moves -v", "-f --one-step-only --print-moves", "-q -f",
                "-f -G group-01 --print-moves", "-f --node-tags red,blue --print-moves"]


def run_genet(argv: list[str], capsys) -> tuple[int, str, str]:
    """genet's hroller in this process: its exit status, standard output and error."""
    capsys.readouterr()
    try:
        status = hroller.main(argv)
    except SystemExit as done:
        status = done.code
    out, err = capsys.readouterr()
    return status, out, err


def differences(real_hroller, capsys, path, option_sets) -> list[str]:
    """For each option set where the two differ: the options and both outputs."""
    out = []
    for options in option_sets:
        argv = ["-t", str(path), *shlex.split(options)]
        real = lib.run(real_hroller, *argv)
        genet = run_genet(argv, capsys)
        if genet != (real.returncode, real.stdout, real.stderr):
            out.append(f"{options}:\nGaneti ({real.returncode}):\n{real.stdout}{real.stderr}\n"
                       f"genet ({genet[0]}):\n{genet[1]}{genet[2]}")
    return out


@pytest.mark.parametrize("name", GANETI_FILES)
def test_same_output_as_ganeti_on_its_test_clusters(real_hroller, capsys, name):
    """When both read one of Ganeti's test clusters, with any option set, they print the same."""
    assert differences(real_hroller, capsys, lib.GANETI_DATA / name, SHELLTEST_OPTIONS + MORE_OPTIONS) == []


def test_the_test_clusters_reach_every_outcome(real_hroller):
    """The comparison above is worth something: plans with moves, and every refusal, happen."""
    seen = ""
    for name in GANETI_FILES:
        for options in ("", "-f --full-evacuation --print-moves", "-f --print-moves"):
            run = lib.run(real_hroller, "-t", lib.GANETI_DATA / name, *shlex.split(options))
            seen += run.stdout + run.stderr
    for outcome in ("No master node found", "Found more than one master node", "Cannot create node graph",
                    "Not enough capacity to move non-redundant instances", "Failed to migrate instances off nodes",
                    "Not enough capacity to move secondaries", "'Node Reboot Groups'"):
        assert outcome in seen
    assert re.search(r"^  \S+ \S+ \S+$", seen, re.M) and re.search(r"^  \S+ \S+$", seen, re.M)


# Ganeti's own expectations (htools-hroller.test): output pattern and exit status
SHELLTESTS = [
    ("--no-headers --ignore-non-redundant", "unique-reboot-order", r"node-01-002\nnode-01-003,node-01-001\n", 0),
    ("--no-headers --skip-non-redundant", "unique-reboot-order", r"node-01-002\n", 0),
    ("--no-headers", "unique-reboot-order", r"node-01-00.\nnode-01-00.\nnode-01-001\n", 0),
    ("--ignore-non-redundant -O node-01-002 --no-headers", "unique-reboot-order", r"node-01-003,node-01-001\n", 0),
    ("--ignore-non-redundant -O node-01-003 --no-headers", "unique-reboot-order", r"node-01-002\nnode-01-001\n", 0),
    ("--node-tags=red --no-headers", "multiple-tags", r"node-01-00[45],node-01-00[45],node-01-001\n", 0),
    ("--node-tags=blue --no-headers", "multiple-tags", r"node-01-00[246],node-01-00[246],node-01-00[246]\n", 0),
    ("--no-headers --offline-maintenance", "hroller-online", r"node-01-00.,node-01-00.\nnode-01-001,node-01-003\n",
     0),
    ("--no-headers", "hroller-online", r"node-01-00.,node-01-00.\nnode-01-002\nnode-01-003\n", 0),
    ("--no-headers", "hroller-nonredundant", r"(node-01-00.,node-01-00.\n){2}node-01-00.,node-01-000\n", 0),
    ("--skip-non-redundant", "hroller-nonredundant", r"Error: Cannot create node graph\n", 1),
    ("--no-headers --ignore-non-redundant", "hroller-nonredundant", r"(node-01-00.,){5}node-01-000\n", 0),
    ("--no-headers", "hroller-nodegroups", r"node-01-00.\nnode-01-00.\nnode-01-00.,node-02-000\n", 0),
    ("--no-headers", "hroller-full", r"node-..,node-..,node-..,node-..\nnode-..,node-..,node-..,node-31\n", 0),
    ("--no-headers --full-evacuation", "hroller-full", r"(node-..,node-..\n){3}node-..,node-31\n", 0),
    ("--no-headers --full-evacuation --one-step-only --print-moves", "hroller-full",
     r"node-..\nnode-..\n(  inst-.. node-.. node-..\n){4}", 0),
    ("--full-evacuation", "unique-reboot-order", r"Error: Not enough capacity to move secondaries\n", 1),
]


@pytest.mark.parametrize("options,cluster,expected,status", SHELLTESTS, ids=[f"{c}:{o}" for o, c, _, _ in SHELLTESTS])
def test_ganetis_shelltests_pass(capsys, options, cluster, expected, status):
    """When run as Ganeti's shelltests run hroller, genet's prints what they expect."""
    code, out, err = run_genet(["-t", str(lib.GANETI_DATA / f"{cluster}.data"), *shlex.split(options)], capsys)
    assert code == status
    assert re.fullmatch(expected, out if status == 0 else err), out + err


RANDOM_OPTIONS = ["-f --print-moves -v -v -v", "-f --full-evacuation --print-moves",
                  "-f --offline-maintenance --print-moves",
                  "-f --ignore-non-redundant --full-evacuation --print-moves -v -v",
                  "-f --skip-non-redundant --print-moves", "-G g2 --one-step-only --print-moves",
                  "-f --node-tags a -O node01 --print-moves"]


@pytest.mark.parametrize("seed", range(60))
def test_same_output_as_ganeti_on_random_tight_clusters(real_hroller, capsys, tmp_path, seed):
    """When memory and disk are short, groups are interleaved and nodes offline, the plans are
    still Ganeti's, move for move."""
    path = tmp_path / f"random-{seed}.data"
    path.write_text(random_cluster(seed))
    assert differences(real_hroller, capsys, path, RANDOM_OPTIONS) == []


@pytest.mark.parametrize("seed", range(10))
def test_same_output_as_ganeti_on_larger_random_clusters(real_hroller, capsys, tmp_path, seed):
    """With 15 to 60 nodes the colourings differ in size and break many ties: still Ganeti's."""
    path = tmp_path / f"random-{seed}.data"
    path.write_text(random_cluster(1000 + seed, (15, 60)))
    assert differences(real_hroller, capsys, path, RANDOM_OPTIONS[:4]) == []


@pytest.mark.parametrize("nodes,seed", [(5, 1), (20, 4), (50, 5)])
def test_same_output_as_ganeti_on_generated_clusters(real_hroller, capsys, tmp_path, nodes, seed):
    path = tmp_path / "cluster.data"
    path.write_text(lib.cluster_text(nodes, seed))
    options = ["-v -v --print-moves", "--full-evacuation --print-moves", "--offline-maintenance -v",
               "-O node002 --one-step-only"]
    assert differences(real_hroller, capsys, path, options) == []
    assert differences(real_hroller, capsys, tmp_path / "missing.data", [""]) == []


def test_same_output_with_mixed_instances(real_hroller, capsys, tmp_path):
    path = tmp_path / "mixed.data"
    path.write_text(lib.mixed_cluster(30, 3))
    assert differences(real_hroller, capsys, path, ["--print-moves -v -v", "--full-evacuation --print-moves"]) == []
    path.write_text(lib.HAND_CLUSTER)
    assert differences(real_hroller, capsys, path, ["--print-moves", "--full-evacuation --print-moves -v -v"]) == []


def test_save_writes_ganetis_file(real_hroller, capsys, tmp_path):
    """-S FILE: the cluster as read, in FILE.original, byte for byte Ganeti's."""
    data = lib.GANETI_DATA / "hroller-online.data"
    real = lib.run(real_hroller, "-t", data, "-S", tmp_path / "real")
    code, out, err = run_genet(["-t", str(data), "-S", str(tmp_path / "genet")], capsys)
    assert (code, out) == (real.returncode, real.stdout) == (0, real.stdout)
    assert err == real.stderr.replace("real.original", "genet.original")
    assert (tmp_path / "genet.original").read_text() == (tmp_path / "real.original").read_text()


# --- the console script, as a user runs it ---------------------------------------------------

@pytest.fixture(scope="module")
def genet_hroller():
    path = lib.GENET_HBAL.parent / "hroller"
    assert path.exists(), f"genet's hroller is not installed at {path}"
    return path


@pytest.mark.parametrize("argv", [
    [], ["-t", "/nonexistent/cluster.data"], ["-t", "DATA", "extra"], ["-t", "DATA", "--", "-v"],
    ["-t", "DATA", "-m", "localhost"],
    ["-t", "DATA", "-G", "no-such-group"], ["-t", "DATA", "-O", "no-such-node", "-O", "node-01-002"],
    ["-t", "DATA", "--print-moves", "--full-evacuation"], ["-t", "DATA", "--one-step-only", "-v"],
], ids=["no-backend", "missing-file", "argument", "argument-after-dashes", "two-backends", "unknown-group", "unknown-node", "moves",
        "one-step"])
def test_console_script_prints_and_exits_as_ganetis(real_hroller, genet_hroller, argv):
    argv = [str(lib.GANETI_DATA / "hroller-nonredundant.data") if a == "DATA" else a for a in argv]
    real, genet = lib.run(real_hroller, *argv), lib.run(genet_hroller, *argv)
    assert (genet.returncode, genet.stdout, genet.stderr) == (real.returncode, real.stdout, real.stderr)


@pytest.mark.parametrize("argv", [["--no-such-option"], ["-t"], ["-G"]])
def test_usage_errors_exit_2_as_ganetis(real_hroller, genet_hroller, argv):
    """Ganeti words usage errors its own way; the status is the same and the option is named."""
    real, genet = lib.run(real_hroller, *argv), lib.run(genet_hroller, *argv)
    assert real.returncode == genet.returncode == 2
    assert argv[0] in genet.stderr and genet.stdout == ""


def test_version_and_help(genet_hroller):
    assert lib.run(genet_hroller, "--version").stdout.startswith("hroller (genet) version ")
    helped = lib.run(genet_hroller, "--help")
    assert helped.returncode == 0 and "--full-evacuation" in helped.stdout


def man_examples() -> tuple[str, list[str]]:
    """hroller(1)'s example cluster file and the commands run on it (literal blocks: indented
    lines after a "::" paragraph; test_htools_man.py checks their output against genet's)."""
    body = (lib.ROOT / "man" / "hroller.rst").read_text().split("\nEXAMPLES\n", 1)[1]
    blocks = [textwrap.dedent(b).strip("\n") for b in re.findall(r"::\n\n((?:(?: {4}.*)?\n)+)", body)]
    return blocks[0] + "\n", [b.split("\n", 1)[0] for b in blocks if b.startswith("$ hroller ")]


def test_man_page_examples_give_ganetis_output_too(real_hroller, capsys, tmp_path):
    data, commands = man_examples()
    (tmp_path / "cluster.data").write_text(data)
    assert len(commands) >= 4
    for command in commands:
        argv = [str(tmp_path / w) if w == "cluster.data" else w for w in shlex.split(command)[2:]]
        real = lib.run(real_hroller, *argv)
        assert real.returncode == 0 and real.stdout.count("\n") > 1
        assert run_genet(argv, capsys) == (real.returncode, real.stdout, real.stderr), command


def test_bad_policy_line_refused_with_ganetis_message(real_hroller, capsys, tmp_path):
    path = tmp_path / "bad.data"
    path.write_text(lib.join(lib.sections((lib.GANETI_DATA / "hroller-online.data").read_text())[:3] + [[], ["x|y"]]))
    assert differences(real_hroller, capsys, path, [""]) == []
    assert "Invalid ipolicy data: '[\"x\",\"y\"]'" in lib.run(real_hroller, "-t", path).stderr
