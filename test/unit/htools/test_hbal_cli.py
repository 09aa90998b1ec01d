"""hbal run as a user runs it, genet's next to Ganeti's 3.0.2 on the same files.

Small generated clusters (5 and 8 nodes) keep Ganeti's hbal quick; on them genet's hbal prints
the same stdout and stderr for every option set here. Where two moves tie to the last bits of
floating point either may be chosen, so a differing output is accepted only with the same
initial score, the same final score to 6 decimals and the same number of moves.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

import htools_testlib as lib


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    """Generated cluster files by (nodes, seed), plus a two-group one under "two-groups"."""
    root = tmp_path_factory.mktemp("hbal-cli")
    files = {}
    for nodes, seed in [(5, 1), (5, 2), (8, 3)]:
        files[(nodes, seed)] = root / f"cluster-{nodes}-{seed}.data"
        files[(nodes, seed)].write_text(lib.cluster_text(nodes, seed))
    files["two-groups"] = root / "two-groups.data"
    files["two-groups"].write_text(two_groups())
    return files


def two_groups() -> str:
    """Two generated clusters side by side: group "default" and group "other" (nodes b-node...)."""
    first = lib.sections(lib.cluster_text(5, 4))
    second = lib.sections(lib.cluster_text(6, 5))
    old_uuid = second[0][0].split("|")[1]
    new_uuid = "00000000-0000-4000-8000-000000000002"

    def rename(line: str) -> str:
        return line.replace("node0", "b-node0").replace("inst0", "b-inst0").replace(old_uuid, new_uuid)
    groups = first[0] + [rename(second[0][0]).replace("default|", "other|", 1)]
    policies = first[4] + [p.replace("default|", "other|", 1) for p in second[4][1:]]
    return lib.join([groups, first[1] + [rename(ln) for ln in second[1]],
                     first[2] + [rename(ln) for ln in second[2]], first[3], policies])


def assert_same_run(real, genet):
    """The same output, or (a floating-point tie) the same scores and solution length."""
    assert genet.returncode == real.returncode, genet.stderr
    if genet.stdout == real.stdout:
        assert genet.stderr == real.stderr
        return
    assert lib.initial_score(genet.stdout) == lib.initial_score(real.stdout)
    assert f"{float(lib.final_score(genet.stdout)):.6f}" == f"{float(lib.final_score(real.stdout)):.6f}"
    assert lib.solution_length(genet.stdout) == lib.solution_length(real.stdout)


OPTION_SETS = {
    "none": (),
    "commands": ("-C",),
    "verbose-3": ("-v", "-v", "-v"),
    "verbose-1": ("-v",),
    "quiet": ("-q",),
    "no-disk-moves": ("--no-disk-moves",),
    "no-instance-moves": ("--no-instance-moves",),
    "evac-mode": ("--evac-mode", "-O", "node002"),
    "offline": ("-O", "node003"),
    "max-length": ("-l", "3"),
    "restricted-migration": ("--restricted-migration",),
    "ignore-soft-errors": ("--ignore-soft-errors",),
    "min-gain": ("-g", "0.5", "--min-gain-limit", "1000"),
    "exclusion-tags": ("--exclusion-tags", "backup"),
    "select-instances": ("--select-instances", "inst0001,inst0002,inst0003,inst0005"),
    "exclude-instances": ("--exclude-instances", "inst0001,inst0004"),
    "ignore-dynu": ("--ignore-dynu",),
    "verbose-5": ("-v", "-v", "-v", "-v", "-v"),
    "min-disk": ("--min-disk", "0.2"),
    "max-cpu": ("--max-cpu", "2"),
    "min-score": ("-e", "50"),
    "first-job-group": ("-C", "--first-job-group"),
    "max-length-0": ("-l", "0"),
    "evacuate-two": ("-O", "node001", "-O", "node002", "--evac-mode", "--restricted-migration"),
}


# every option set on both 5-node clusters; the 8-node one (slower for Ganeti) with the main ones
CASES = [(cluster, name) for cluster in [(5, 1), (5, 2)] for name in OPTION_SETS] + \
    [((8, 3), name) for name in ("none", "commands", "verbose-3", "no-disk-moves", "no-instance-moves",
                                 "evac-mode", "restricted-migration", "exclusion-tags", "select-instances")]


@pytest.mark.parametrize("cluster,name", CASES, ids=[f"{c[0]}nodes-seed{c[1]}-{n}" for c, n in CASES])
def test_same_output_as_ganeti(real_hbal, genet_hbal, clusters, cluster, name):
    options = OPTION_SETS[name]
    real = lib.run(real_hbal, "-t", clusters[cluster], *options)
    genet = lib.run(genet_hbal, "-t", clusters[cluster], *options)
    assert real.returncode == 0, real.stderr
    assert_same_run(real, genet)


@pytest.mark.parametrize("options", [(), ("-C",), ("--no-disk-moves",), ("-O", "node002"),
                                     ("--evac-mode", "-O", "node003"), ("--restricted-migration",)])
def test_same_output_with_offline_stopped_and_shared_storage_instances(real_hbal, genet_hbal, tmp_path, options):
    path = tmp_path / "mixed.data"
    path.write_text(lib.mixed_cluster(6, 2))
    real = lib.run(real_hbal, "-t", path, *options)
    genet = lib.run(genet_hbal, "-t", path, *options)
    assert real.returncode == 0, real.stderr
    assert_same_run(real, genet)


@pytest.mark.parametrize("options", [(), ("-C", "-v", "-v"), ("-O", "n2"), ("--evac-mode", "-O", "n3"),
                                     ("--restricted-migration",)])
def test_same_output_on_a_hand_written_cluster(real_hbal, genet_hbal, tmp_path, options):
    path = tmp_path / "hand.data"
    path.write_text(lib.HAND_CLUSTER)
    real = lib.run(real_hbal, "-t", path, *options)
    genet = lib.run(genet_hbal, "-t", path, *options)
    assert real.returncode == 0, real.stderr
    assert lib.solution_length(real.stdout) > 0
    assert_same_run(real, genet)


@pytest.mark.parametrize("options", [("-G", "default"), ("-G", "other"), ("-G", "other", "-C", "-v", "-v")])
def test_one_group_of_two(real_hbal, genet_hbal, clusters, options):
    real = lib.run(real_hbal, "-t", clusters["two-groups"], *options)
    genet = lib.run(genet_hbal, "-t", clusters["two-groups"], *options)
    assert real.returncode == 0, real.stderr
    assert f"Selected node group: {options[1]}" in genet.stdout
    assert_same_run(real, genet)


def test_group_by_uuid(real_hbal, genet_hbal, clusters):
    uuid = "00000000-0000-4000-8000-000000000002"
    genet = lib.run(genet_hbal, "-t", clusters["two-groups"], "-G", uuid)
    real = lib.run(real_hbal, "-t", clusters["two-groups"], "-G", uuid)
    assert "Selected node group: other" in genet.stdout
    assert_same_run(real, genet)


def utilisation(path, instances: int) -> None:
    """A -U file: cpu, memory, disk and network load of every instance, varied."""
    path.write_text("".join(f"inst{k:04d} {k % 5 + 0.5} {k % 3 * 2.0} {k % 7 * 0.25} {k % 4}.0\n"
                            for k in range(1, instances + 1)))


@pytest.mark.parametrize("cluster", [(5, 1), (8, 3)], ids=lambda c: f"{c[0]}nodes-seed{c[1]}")
@pytest.mark.parametrize("extra", [(), ("--ignore-dynu",)])
def test_dynamic_utilisation_file(real_hbal, genet_hbal, clusters, tmp_path, cluster, extra):
    util = tmp_path / "util.txt"
    utilisation(util, 10 * cluster[0])
    real = lib.run(real_hbal, "-t", clusters[cluster], "-U", util, *extra)
    genet = lib.run(genet_hbal, "-t", clusters[cluster], "-U", util, *extra)
    assert real.returncode == 0, real.stderr
    assert_same_run(real, genet)


@pytest.mark.parametrize("line", ["inst0001 1 1 1", "inst0001 x 1 1 1"])
def test_bad_utilisation_file(real_hbal, genet_hbal, clusters, tmp_path, line):
    util = tmp_path / "util.txt"
    util.write_text(line + "\n")
    genet = refusal(real_hbal, genet_hbal, "-t", clusters[(5, 1)], "-U", util)
    assert genet.stderr.startswith("Error: can't parse utilisation data: ")


def test_missing_utilisation_file(real_hbal, genet_hbal, clusters, tmp_path):
    genet = refusal(real_hbal, genet_hbal, "-t", clusters[(5, 1)], "-U", tmp_path / "nowhere.txt")
    assert "Traceback" not in genet.stderr


def test_commands_written_to_a_file(real_hbal, genet_hbal, clusters, tmp_path):
    real = lib.run(real_hbal, "-t", clusters[(5, 1)], "-C" + str(tmp_path / "real.sh"))
    genet = lib.run(genet_hbal, "-t", clusters[(5, 1)], "-C" + str(tmp_path / "genet.sh"))
    assert genet.returncode == 0 == real.returncode
    script = (tmp_path / "genet.sh").read_text()
    assert script.startswith("#!/bin/sh\n")
    assert "gnt-instance migrate" in script or "gnt-instance replace-disks" in script
    assert script == (tmp_path / "real.sh").read_text()
    assert genet.stdout == real.stdout.replace("real.sh", "genet.sh")


@pytest.fixture(scope="module")
def saved(real_hbal, genet_hbal, clusters, tmp_path_factory):
    """hbal -S on the 8-node cluster, both programs, each with its own FILE prefix."""
    root = tmp_path_factory.mktemp("hbal-save")
    runs = {}
    for tool, program in (("real", real_hbal), ("genet", genet_hbal)):
        proc = lib.run(program, "-t", clusters[(8, 3)], "-S", root / tool)
        assert proc.returncode == 0, proc.stderr
        runs[tool] = proc
    return root, runs


def test_save_writes_the_original_and_the_balanced_state(saved, clusters):
    root, runs = saved
    genet = runs["genet"]
    assert genet.stderr == (f"The cluster state before balancing has been written to file '{root}/genet.original'\n"
                            f"The cluster state after balancing has been written to file '{root}/genet.balanced'\n")
    assert genet.stdout == runs["real"].stdout
    balanced = lib.sections((root / "genet.balanced").read_text())
    moved = [ln for ln in balanced[2] if ln not in lib.sections(clusters[(8, 3)].read_text())[2]]
    assert len(moved) >= 1 and lib.solution_length(genet.stdout) >= len(moved)


def test_saved_instances_are_where_ganeti_puts_them(saved):
    root, _ = saved
    genet = lib.sections((root / "genet.balanced").read_text())
    real = lib.sections((root / "real.balanced").read_text())
    assert genet[2] == real[2]
    assert [ln.split("|")[:12] for ln in genet[1]] == [ln.split("|")[:12] for ln in real[1]]


def test_saved_original_is_byte_for_byte_ganetis(saved):
    root, _ = saved
    assert (root / "genet.original").read_text() == (root / "real.original").read_text()


def test_saved_balanced_is_byte_for_byte_ganetis(saved):
    root, _ = saved
    assert (root / "genet.balanced").read_text() == (root / "real.balanced").read_text()


def test_reading_the_balanced_file_again(real_hbal, genet_hbal, saved, tmp_path):
    """Both programs score the saved file alike; with its free memory brought up to date (neither
    -S writes it after the moves) its score is the first run's final score."""
    root, runs = saved
    for path in (root / "genet.balanced", root / "real.balanced"):
        genet = lib.run(genet_hbal, "-t", path)
        real = lib.run(real_hbal, "-t", path)
        assert lib.initial_score(genet.stdout) == lib.initial_score(real.stdout)
    fixed = tmp_path / "fixed.data"
    fixed.write_text(lib.with_free_memory_recomputed((root / "genet.balanced").read_text()))
    again = lib.run(genet_hbal, "-t", fixed)
    real_again = lib.run(real_hbal, "-t", fixed)
    final = float(lib.final_score(runs["genet"].stdout))
    assert float(lib.initial_score(again.stdout)) == pytest.approx(final, abs=1e-6)
    assert lib.initial_score(real_again.stdout) == lib.initial_score(again.stdout)


@pytest.mark.parametrize("options", [("-p",), ("-pname,fmem,fdsk,pcnt,scnt",), ("--print-nodes=+pcnt",),
                                     ("--print-instances",), ("-p", "--print-instances", "-O", "node004")])
def test_tables_on_stderr(real_hbal, genet_hbal, clusters, options):
    real = lib.run(real_hbal, "-t", clusters[(5, 2)], *options)
    genet = lib.run(genet_hbal, "-t", clusters[(5, 2)], *options)
    assert real.returncode == 0, real.stderr
    assert "Initial" in genet.stderr and "Final" in genet.stderr
    assert genet.stdout == real.stdout
    assert genet.stderr == real.stderr


# --- refusals -----------------------------------------------------------------------------------

def refusal(real_hbal, genet_hbal, *args):
    real = lib.run(real_hbal, *args)
    genet = lib.run(genet_hbal, *args)
    assert real.returncode != 0
    assert genet.returncode == real.returncode
    assert genet.stdout == real.stdout
    assert genet.stderr == real.stderr
    return genet


def test_no_backend(real_hbal, genet_hbal):
    genet = refusal(real_hbal, genet_hbal)
    assert genet.returncode == 1 and "No backend selected! Exiting." in genet.stderr


def test_missing_file(real_hbal, genet_hbal, tmp_path):
    genet = refusal(real_hbal, genet_hbal, "-t", tmp_path / "nowhere.data")
    assert genet.stderr.startswith("Error: failed to load data, aborting: ")
    assert "nowhere.data" in genet.stderr


def test_unknown_offline_node(real_hbal, genet_hbal, clusters):
    genet = refusal(real_hbal, genet_hbal, "-t", clusters[(5, 1)], "-O", "node999")
    assert "node999" in genet.stderr


def test_several_unknown_offline_nodes(real_hbal, genet_hbal, clusters):
    genet = refusal(real_hbal, genet_hbal, "-t", clusters[(5, 1)], "-O", "node999", "-O", "node001",
                    "-O", "node998")
    assert "node999" in genet.stderr and "node998" in genet.stderr


def test_names_with_a_common_domain(real_hbal, genet_hbal, tmp_path):
    """Names are shown without the domain all share, and -O takes a node's short name."""
    text = re.sub(r"\b((?:node|inst)\d+)\|", r"\1.example.com|", lib.cluster_text(5, 1))
    path = tmp_path / "fqdn.data"
    path.write_text(text)
    real = lib.run(real_hbal, "-t", path, "-O", "node002", "-v", "-v", "-C")
    genet = lib.run(genet_hbal, "-t", path, "-O", "node002", "-v", "-v", "-C")
    assert "Note: Stripping common suffix of '.example.com' from names" in genet.stdout
    assert_same_run(real, genet)


def test_unknown_group(real_hbal, genet_hbal, clusters):
    genet = refusal(real_hbal, genet_hbal, "-t", clusters["two-groups"], "-G", "nosuch")
    assert "Node group nosuch not found" in genet.stderr


def test_several_groups_without_g(real_hbal, genet_hbal, clusters):
    genet = refusal(real_hbal, genet_hbal, "-t", clusters["two-groups"])
    assert "Found multiple node groups:" in genet.stderr and "Aborting." in genet.stderr


def test_unknown_instance_selected(real_hbal, genet_hbal, clusters):
    genet = refusal(real_hbal, genet_hbal, "-t", clusters[(5, 1)], "--select-instances", "inst0001,ghost")
    assert "ghost" in genet.stderr


def test_unknown_instance_excluded(real_hbal, genet_hbal, clusters):
    genet = refusal(real_hbal, genet_hbal, "-t", clusters[(5, 1)], "--exclude-instances", "ghost")
    assert "ghost" in genet.stderr


def broken(field: int, value: str, section: int = 2) -> str:
    """The 5-node cluster with one field of its first instance (or node) line replaced."""
    secs = lib.sections(lib.cluster_text(5, 1))
    f = secs[section][0].split("|")
    f[field] = value
    secs[section][0] = "|".join(f)
    return lib.join(secs)


BAD_FILES = {
    "three-sections": lambda: lib.join(lib.sections(lib.cluster_text(5, 1))[:3]),
    "unknown-node": lambda: broken(6, "nosuch"),
    "unknown-group": lambda: broken(8, "no-such-uuid", section=1),
    "same-primary-secondary": lambda: drbd_on_one_node(),
    "odd-minmax": lambda: lib.cluster_text(5, 1).replace(
        "|128,1,1024,1,1,1;32768,8,1048576,16,8,12|", "|128,1,1024,1,1,1;32768,8,1048576,16,8,12;1,1,1,1,1,1|", 1),
    "bad-status": lambda: broken(4, "sleeping"),
    "bad-template": lambda: broken(8, "floppy"),
    "non-numeric-instance": lambda: broken(1, "lots"),
    "non-numeric-node": lambda: broken(1, "big", section=1),
    "short-instance-line": lambda: lib.join([s if k != 2 else ["|".join(s[0].split("|")[:9])] + s[1:]
                                             for k, s in enumerate(lib.sections(lib.cluster_text(5, 1)))]),
}


def drbd_on_one_node() -> str:
    """The 5-node cluster with its first DRBD instance's secondary set to its primary."""
    secs = lib.sections(lib.cluster_text(5, 1))
    k, f = next((k, ln.split("|")) for k, ln in enumerate(secs[2]) if ln.split("|")[8] == "drbd")
    f[7] = f[6]
    secs[2][k] = "|".join(f)
    return lib.join(secs)


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_refused_with_ganetis_message(real_hbal, genet_hbal, tmp_path, name):
    path = tmp_path / "bad.data"
    path.write_text(BAD_FILES[name]())
    genet = refusal(real_hbal, genet_hbal, "-t", path)
    assert genet.stderr.startswith("Error: failed to load data, aborting: ")


def test_reader_gone_before_the_output(real_hbal, genet_hbal, clusters):
    """`hbal ... | head` stops reading early; Ganeti's hbal then exits 0 without a word."""
    results = []
    for program in (real_hbal, genet_hbal):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            proc = subprocess.run([str(program), "-t", str(clusters[(5, 1)])], stdout=write_end,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, timeout=60)
        finally:
            os.close(write_end)
        results.append((proc.returncode, proc.stderr))
    assert results[0] == (0, "")
    assert results[1] == results[0]
