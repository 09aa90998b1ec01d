"""hbal --mond: loads from what instances really use. With --mond-data in Ganeti's format genet's
hbal prints what Ganeti's 3.0.2 prints; with the master's usage history (QueryUsage) a busy
instance raises the score and is what hbal moves; without --mond nothing changes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import htools_testlib as lib
from genet import luxi
from genet.htools import hbal, mond, text
from genet.htools.state import State
from genet.htools import metrics

# four alike nodes, two mirrored instances each as primary and two as secondary: even by size
EVEN = (Path(__file__).resolve().parents[1] / "data" / "even-four-nodes.data").read_text()


def history(cpu: dict[str, list[float]], node_of=lambda name: "node" + "1234"["abcd".index(name[0])]) -> dict:
    """A QueryUsage answer: one sample a minute of each instance's CPU load, the rest small."""
    return {"keep": 3600.0, "max_samples": 720, "nodes": {},
            "instances": {name: [[60.0 * k, node_of(name), v, 0.05, 0.02, 0.01] for k, v in enumerate(values)]
                          for name, values in cpu.items()}}


BUSY_A = history({**{n: [0.05] * 5 for n in ("b1", "b2", "c1", "c2", "d1", "d2")},
                  "a1": [0.8] * 5, "a2": [0.5, 0.6, 0.7, 0.8, 0.9]})


@pytest.fixture
def even_file(tmp_path):
    path = tmp_path / "even.data"
    path.write_text(EVEN)
    return path


@pytest.fixture
def master_history(monkeypatch):
    """What the master daemon answers to QueryUsage (every other call fails the test)."""
    answer = {"history": BUSY_A}

    def call(self, method, *args):
        assert method == "QueryUsage"
        return answer["history"]
    monkeypatch.setattr(luxi.Client, "call", call)
    return answer


def test_history_gives_each_instance_its_trend_load_and_a_busy_node_scores_worse():
    """When node1's instances keep its CPUs busy the cpu load spread rises from 0; a2, whose
    load climbs, counts as its latest value (0.9), a1 as its steady 0.8."""
    data = text.parse(EVEN)
    found = mond.from_history(BUSY_A, data)
    assert found.complete
    assert found.util["a1"] == pytest.approx((0.8, 0.05, 0.02, 0.01))
    assert found.util["a2"][0] == pytest.approx(0.9)
    plain = State(data)
    measured = State(data, util=found.util)

    def cpu_load_cv(st):
        score = metrics.GroupScore(st, st.groups_nodes()[0][1])
        return score.values()[[m[0] for m in metrics.METRICS].index("cpu_load_cv")]
    assert cpu_load_cv(plain) == 0.0
    assert cpu_load_cv(measured) == pytest.approx(0.48 ** 0.5)     # node loads 1.7, 0.1, 0.1, 0.1


def test_a_running_instance_without_samples_is_reported_and_counts_as_least_loaded(capsys):
    data = text.parse(EVEN)
    found = mond.from_history(history({"a1": [0.3]}), data)
    assert not found.complete and found.util["b1"] == (0.01, 0.01, 0.01, 0.01)
    assert "No usage data available for a2, b1, b2, c1, c2, d1, d2" in capsys.readouterr().err


def test_hbal_mond_moves_a_busy_instance_off_the_busy_node(even_file, master_history, capsys):
    """When the group is even by size, hbal alone finds nothing to do; with --mond=yes it moves
    one of node1's busy instances away from node1."""
    assert hbal.main(["-t", str(even_file)]) == 0
    plain = capsys.readouterr().out
    assert lib.solution_length(plain) == 0
    assert hbal.main(["-t", str(even_file), "--mond=yes", "-C"]) == 0
    out = capsys.readouterr().out
    assert float(lib.initial_score(out)) > float(lib.initial_score(plain))
    first_move = next(line for line in out.splitlines() if line.lstrip().startswith("1. "))
    _, name, old, _, new = first_move.split()[:5]        # "1. a1 node1:node2 => node2:node1 ..."
    assert name in ("a1", "a2") and old.startswith("node1:") and not new.startswith("node1:")


def test_without_mond_or_with_ignore_dynu_the_history_is_not_read(even_file, master_history, capsys):
    master_history["history"] = None            # a call would fail
    assert hbal.main(["-t", str(even_file), "--mond=no"]) == 0
    assert hbal.main(["-t", str(even_file), "--mond", "--ignore-dynu"]) == 0


def test_exit_on_missing_mond_data_stops_when_a_running_instance_has_no_samples(even_file, master_history, capsys):
    master_history["history"] = history({"a1": [0.3]})
    with pytest.raises(SystemExit) as stop:
        hbal.main(["-t", str(even_file), "--mond=yes", "--exit-on-missing-mond-data"])
    assert stop.value.code == 1
    assert "Error: Not all required data available" in capsys.readouterr().err


def test_mond_takes_only_yes_or_no(even_file, capsys):
    with pytest.raises(SystemExit):
        hbal.main(["-t", str(even_file), "--mond=maybe"])
    assert "Invalid choice 'maybe', pass one of 'yes' or 'no'" in capsys.readouterr().err


def inst_usage_file(tmp_path, busy: float):
    """A --mond-data file of genet's inst-usage reports: node1's instances use `busy` CPUs."""
    entries = []
    for k, node in enumerate(("node1", "node2", "node3", "node4")):
        insts = {f"{'abcd'[k]}{j}": {"cpu": busy if k == 0 else 0.2, "memory": 1 << 30, "disk": 1e6, "net": 1e6}
                 for j in (1, 2)}
        entries.append({"node": node, "reports": [{"name": "inst-usage", "timestamp": 1.0, "data": {
            "interval": 60.0, "instances": insts,
            "node": {"cpus": 16, "cpu": 1.0, "memory_total": 64 << 30, "memory_used": 8 << 30}}}]})
    path = tmp_path / "mond.json"
    path.write_text(json.dumps(entries))
    return path


def test_mond_data_with_inst_usage_reports_gives_each_instance_its_own_loads(tmp_path):
    path = inst_usage_file(tmp_path, busy=8.0)
    found = mond.from_file(path.read_text(), text.parse(EVEN))
    assert found.util["a1"] == pytest.approx((0.5, 1 / 64, 0.01, 0.01))     # 8 of 16 CPUs; floors
    assert found.util["b2"][0] == pytest.approx(0.2 / 16)
    assert not found.node_cpu


def test_mond_data_that_is_not_mond_data_is_an_error(tmp_path, even_file, capsys):
    (tmp_path / "bad.json").write_text(json.dumps({"node": "node1"}))
    with pytest.raises(SystemExit):
        hbal.main(["-t", str(even_file), "--mond=yes", "--mond-data", str(tmp_path / "bad.json")])
    assert "Error: can't parse MonD data: Parsing MonD's answer:" in capsys.readouterr().err


# --- Ganeti's format, compared with Ganeti's hbal -------------------------------------------

def cpu_avg_load_file(path, nodes: list[str], totals: list[float]) -> None:
    path.write_text(json.dumps([{"node": n, "reports": [{
        "name": "cpu-avg-load", "version": "B", "format_version": 1, "timestamp": 1, "category": None, "kind": 0,
        "data": {"cpu_number": 4, "cpus": [t] * 4, "cpu_total": t}}]} for n, t in zip(nodes, totals)]))


@pytest.mark.parametrize("case", ["all nodes", "all nodes with -U", "a node missing", "missing and exit",
                                  "mond off", "missing file"])
def test_mond_data_in_ganetis_format_prints_what_ganetis_hbal_prints(tmp_path, case):
    """cpu-avg-load spread over each node's primaries by vcpus, the node's own load the report's;
    ignored with Ganeti's warning when a node has no report."""
    real = lib.require_real_hbal()
    cluster = tmp_path / "c.data"
    cluster.write_text(lib.cluster_text(5, 1))
    nodes = [line.split("|")[0] for line in lib.sections(cluster.read_text())[1]]
    data = tmp_path / "mond.json"
    totals = [0.9, 0.1, 0.2, 0.5, 0.05]
    cpu_avg_load_file(data, nodes[:4] if case.startswith(("a node", "missing and")) else nodes, totals)
    args = ["-t", cluster, "--mond=yes", "--mond-data", data, "-v", "-v", "-C"]
    if case.endswith("-U"):
        util = tmp_path / "util"
        insts = [line.split("|")[0] for line in lib.sections(cluster.read_text())[2]]
        util.write_text("".join(f"{name} 0.3 0.{k % 7 + 1} 0.5 0.1\n" for k, name in enumerate(insts)))
        args += ["-U", util]
    if case == "missing and exit":
        args.append("--exit-on-missing-mond-data")
    if case == "mond off":
        args[2] = "--mond=no"
    if case == "missing file":
        args[4] = tmp_path / "none.json"
    theirs, ours = lib.run(real, *args), lib.run(lib.GENET_HBAL, *args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)


def test_without_an_answer_from_the_master_hbal_warns_and_keeps_the_declared_loads(even_file, monkeypatch, capsys):
    from genet import errors

    def call(self, method, *args):
        raise errors.LuxiError("no master daemon")
    monkeypatch.setattr(luxi.Client, "call", call)
    assert hbal.main(["-t", str(even_file), "--mond=yes"]) == 0
    assert "Failed to read the usage history from the master daemon: no master daemon" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        hbal.main(["-t", str(even_file), "--mond=yes", "--exit-on-missing-mond-data"])


@pytest.mark.parametrize("case", ["all nodes", "a node missing", "mond off"])
def test_hinfo_takes_mond_data_as_ganetis_hinfo(tmp_path, case):
    """hinfo --mond/--mond-data: the load components of the score it prints are Ganeti's."""
    real, genet = lib.programs("hinfo")
    cluster = tmp_path / "c.data"
    cluster.write_text(lib.cluster_text(5, 1))
    nodes = [line.split("|")[0] for line in lib.sections(cluster.read_text())[1]]
    data = tmp_path / "mond.json"
    cpu_avg_load_file(data, nodes[:4] if case == "a node missing" else nodes, [0.9, 0.1, 0.2, 0.5, 0.05])
    args = ["-t", cluster, "--mond=no" if case == "mond off" else "--mond=yes", "--mond-data", data, "-v", "-v"]
    theirs, ours = lib.run(real, *args), lib.run(genet, *args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert "cpu_load" in ours.stdout
