"""hbal(1) and htools(1) document what the htools code has: every option of hbal's parser,
every component of the cluster score with its weight, every move kind's code, the tags the
htools read and the node fields of -p; and hbal(1)'s examples are what hbal prints.

Options, metrics, tags and fields are read from the code (genet.htools), so a new one without
documentation makes a test here fail.
"""
from __future__ import annotations

import re
import shlex
import textwrap

import pytest

from genet.htools import display, hail, hbal, hcheck, hinfo, hroller, hscan, hspace, metrics, state, text
from test_man_pages import mentions, page, section


def option_strings(parser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings]


def test_every_hbal_option_is_in_the_synopsis_and_explained_under_options():
    options = option_strings(hbal.build_parser())
    assert {"-t", "--text-data", "-L", "-X", "--first-job-group", "--min-gain-limit", "-h"} <= set(options)
    text_ = page("hbal")
    synopsis, explained = section(text_, "SYNOPSIS"), section(text_, "OPTIONS")
    assert [o for o in options if not mentions(synopsis, o)] == []
    assert [o for o in options if not mentions(explained, o)] == []


@pytest.mark.parametrize("program", [hscan, hinfo, hail, hroller, hcheck, hspace],
                         ids=["hscan", "hinfo", "hail", "hroller", "hcheck", "hspace"])
def test_every_option_of_the_other_htools_is_in_the_synopsis_and_explained(program):
    options = option_strings(program.build_parser())
    assert {"-h", "-V"} <= set(options)
    text_ = page(program.build_parser().prog)
    synopsis, explained = section(text_, "SYNOPSIS"), section(text_, "OPTIONS")
    assert [o for o in options if not mentions(synopsis, o)] == []
    assert [o for o in options if not mentions(explained, o)] == []


def test_every_choice_of_an_hbal_option_is_explained():
    choices = [str(c) for a in hbal.build_parser()._actions if a.choices for c in a.choices]
    assert choices == ["low", "normal", "high"]
    body = section(page("hbal"), "OPTIONS")
    assert [c for c in choices if f"``{c}``" not in body] == []


def test_every_score_component_is_described_with_its_weight():
    body = section(page("hbal"), "CLUSTER SCORE")
    assert len(metrics.METRICS) == 20
    assert [name for name, weight, _ in metrics.METRICS if f"``{name}`` ({weight:g})" not in body] == []


def test_every_move_kind_and_its_code_is_described():
    """The a= codes hbal prints (display.move_commands), with T for the target node."""
    output = section(page("hbal"), "OUTPUT")
    codes = {move: display.move_commands(move, True, "INST", "T", "T")[0] for move in
             ("Failover", "FailoverToAny", "ReplacePrimary", "ReplaceSecondary", "ReplaceAndFailover",
              "FailoverAndReplace")}
    assert [c for c in codes.values() if f"``a={c}``" not in output] == []
    kinds = section(page("hbal"), "Move kinds", "~")
    assert [c for c in codes.values() if f"(``{c}``)" not in kinds] == []


def literal_blocks(body: str) -> list[str]:
    """The literal blocks (after a paragraph ending with "::") of a section, dedented."""
    blocks = re.findall(r"::\n\n((?:(?: {4}.*)?\n)+)", body + "\n")
    return [textwrap.dedent(b).strip("\n") for b in blocks]


def test_hbal_examples_print_what_hbal_prints(tmp_path, capsys):
    """Every example run on the page's cluster.data shows hbal's whole output, move for move."""
    blocks = literal_blocks(section(page("hbal"), "EXAMPLES"))
    data = blocks[0]
    assert text.parse(data + "\n").instances, "the first example block is the cluster.data file"
    (tmp_path / "cluster.data").write_text(data + "\n")
    runs = [b for b in blocks if b.startswith("$ hbal -t cluster.data") and "\n" in b]
    assert len(runs) >= 2
    for block in runs:
        command, *shown = block.split("\n")
        argv = [str(tmp_path / "cluster.data") if w == "cluster.data" else w for w in shlex.split(command)[2:]]
        assert hbal.main(argv) == 0
        printed = capsys.readouterr().out
        assert [line.rstrip() for line in printed.rstrip("\n").split("\n")] == shown, command


def test_htools_page_documents_every_tag_prefix_the_htools_read():
    prefixes = [v for k, v in vars(state).items() if k.endswith("_PREFIX")]
    assert "htools:iextags:" in prefixes and len(prefixes) == 5
    body = section(page("htools"), "TAGS")
    assert [p for p in prefixes if f"``{p}``" not in body] == []


def test_htools_page_documents_every_node_field_and_the_default_columns():
    body = section(page("htools"), "Node fields", "~")
    assert [f for f in display.NODE_HEADERS if f"``{f}``" not in body] == []
    headings = [display.NODE_HEADERS[f][0] for f in display.DEFAULT_NODE_FIELDS]
    assert [h for h in headings if not re.search(rf"``{re.escape(h)}``", body)] == []


@pytest.mark.parametrize("option", ["-v", "--verbose", "-q", "--quiet", "-V", "--version", "-h", "--help",
                                    "-G", "--group", "-O", "--offline", "--min-disk", "--max-cpu",
                                    "-p", "--print-nodes"])
def test_htools_page_explains_the_common_options(option):
    assert option in option_strings(hbal.build_parser())
    assert mentions(section(page("htools"), "COMMON OPTIONS"), option)


def test_htools_page_explains_every_backend_and_its_example_file_reads():
    body = section(page("htools"), "BACKENDS")
    assert [o for o in ("-t", "--text-data", "-L", "--luxi", "-m", "--master") if not mentions(body, o)] == []
    example = literal_blocks(section(page("htools"), "TEXT FORMAT"))[0]
    data = text.parse(example + "\n")
    assert [n.name for n in data.nodes] == ["node1", "node2"] and data.instances[0].snode == "node2"
    assert text.parse(text.serialize(data)) == data


def test_the_hinfo_example_is_what_hinfo_prints_for_the_hbal_example_cluster(tmp_path, capsys):
    data = literal_blocks(section(page("hbal"), "EXAMPLES"))[0]
    (tmp_path / "cluster.data").write_text(data + "\n")
    example = next(b for b in literal_blocks(section(page("hinfo"), "DESCRIPTION"))
                   if b.startswith("$ hinfo -t cluster.data"))
    assert hinfo.main(["-t", str(tmp_path / "cluster.data")]) == 0
    assert example.split("\n", 1)[1] == capsys.readouterr().out.rstrip("\n")


def test_hroller_examples_print_what_hroller_prints(tmp_path, capsys):
    """Every example run on the page's cluster.data shows hroller's whole output."""
    blocks = literal_blocks(section(page("hroller"), "EXAMPLES"))
    data = blocks[0]
    assert text.parse(data + "\n").instances, "the first example block is the cluster.data file"
    (tmp_path / "cluster.data").write_text(data + "\n")
    runs = [b for b in blocks if b.startswith("$ hroller -t cluster.data")]
    assert len(runs) >= 4
    for block in runs:
        command, *shown = block.split("\n")
        argv = [str(tmp_path / "cluster.data") if w == "cluster.data" else w for w in shlex.split(command)[2:]]
        assert hroller.main(argv) == 0
        out = capsys.readouterr()
        assert out.err == "", command
        assert out.out.rstrip("\n").split("\n") == shown, command


def test_htools_page_lists_every_htools_program():
    synopsis = section(page("htools"), "SYNOPSIS")
    assert [p for p in ("hbal", "hscan", "hinfo", "hail", "hroller", "hcheck") if f"**{p}**" not in synopsis] == []


def test_the_hcheck_examples_are_what_hcheck_prints_for_the_hbal_example_cluster(tmp_path, capsys):
    """Every hcheck run shown on the page, on hbal(1)'s example cluster: its whole output and
    the exit status the page gives (1 when the cluster needs rebalancing)."""
    (tmp_path / "cluster.data").write_text(literal_blocks(section(page("hbal"), "EXAMPLES"))[0] + "\n")
    blocks = literal_blocks(section(page("hcheck"), "DESCRIPTION"))
    runs = [b for b in blocks if b.startswith("$ hcheck -t cluster.data")]
    assert len(runs) == 3
    for block in runs:
        command, *shown = block.split("\n")
        words = shlex.split(command)[2:]
        head = words.index("|") if "|" in words else None
        argv = [str(tmp_path / "cluster.data") if w == "cluster.data" else w for w in words[:head]]
        status = hcheck.main(argv)
        printed = capsys.readouterr().out.rstrip("\n").split("\n")
        if head is not None:
            assert words[head + 1:] == ["head", "-3"]
            printed = printed[:3]
        assert [line.rstrip() for line in printed] == shown, command
        assert status == (1 if "Cluster needs rebalancing." in shown else 0), command


def test_hcheck_page_names_every_machine_readable_key():
    body = section(page("hcheck"), "Machine-readable output", "~")
    keys = [k for k, _ in hcheck.COUNTS + [hcheck.GN1_COUNT, hcheck.GROUP_EXTRA, hcheck.CLUSTER_EXTRA]]
    assert [k for k in keys + list(hcheck.PHASES) if f"``{k}``" not in body] == []


def test_the_hail_example_is_what_hail_answers_on_the_hbal_example_cluster(tmp_path, capsys):
    (tmp_path / "cluster.data").write_text(literal_blocks(section(page("hbal"), "EXAMPLES"))[0] + "\n")
    blocks = literal_blocks(section(page("hail"), "DESCRIPTION"))
    request = next(b for b in blocks if b.startswith('{"version"'))
    (tmp_path / "request.json").write_text(request)
    example = next(b for b in blocks if b.startswith("$ hail -t cluster.data request.json"))
    assert hail.main(["-t", str(tmp_path / "cluster.data"), str(tmp_path / "request.json")]) == 0
    assert example.split("\n", 1)[1] == capsys.readouterr().out.rstrip("\n")


def test_the_hspace_example_is_what_hspace_plans_for_the_hbal_example_cluster(tmp_path, capsys):
    (tmp_path / "cluster.data").write_text(literal_blocks(section(page("hbal"), "EXAMPLES"))[0] + "\n")
    example = next(b for b in literal_blocks(section(page("hspace"), "DESCRIPTION"))
                   if b.startswith("$ hspace -t cluster.data"))
    command, printed = example.split("\n", 1)
    args = shlex.split(command)[2:]
    assert hspace.main([str(tmp_path / a) if a == "cluster.data" else a for a in args]) == 0
    assert printed == capsys.readouterr().out.rstrip("\n")


def test_hspace_page_names_every_failure_reason_and_machine_readable_key():
    from genet.htools import nodevals
    body = section(page("hspace"), "DESCRIPTION")
    assert [n for n in nodevals.FAIL_NAMES.values() if f"``{n}``" not in body] == []
    keys = section(page("hspace"), "OUTPUT")
    cs = hspace.capacity.Stats()
    stat_keys = [k.split("_", 1)[1] for k, _ in hspace.stats_keys("INI", cs)]
    assert [k for k in stat_keys if f"``{k}``" not in keys] == []


def test_hail_page_names_every_request_type_and_failure_reason():
    from genet.htools import ialloc, nodevals
    body = section(page("hail"), "DESCRIPTION")
    assert [t for t in ialloc.REQUEST_TYPES if not re.search(rf"^{t}$", body, re.M)] == []
    shown = [nodevals.FAIL_NAMES[c] for c in nodevals.FAIL_ORDER if c != nodevals.FAIL_INTERNAL]
    assert [name for name in shown if f"``{name}``" not in body] == []
