"""The QA suite's checks of every object family (qa/generic.py: Ganeti's query and tag checks),
against scripted command output; the suite on a real cluster is test/integration/test_qa_suite.py."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))    # qa/ is a top-level package of the tree

from qa import generic  # noqa: E402
from qa.context import Context, Options  # noqa: E402
from qa.report import CheckFailed, Reporter  # noqa: E402
from qa.ssh import Result  # noqa: E402


class ScriptedSsh:
    """Answers each command by the first rule whose words start it: (stdout, exit status)."""

    def __init__(self, rules: list[tuple[tuple, str, int]]):
        self.rules = rules
        self.commands: list[tuple] = []

    def run(self, argv, check=True, timeout=None):
        self.commands.append(tuple(argv))
        for words, out, code in self.rules:
            if tuple(argv[:len(words)]) == words:
                result = Result(list(argv), code, out, "")
                if check and code:
                    raise CheckFailed(result.explain())
                return result
        raise AssertionError(f"unexpected command {argv}")


def context(rules) -> Context:
    return Context(Reporter(io.StringIO()), ScriptedSsh(rules), None, Options(prefix="qa-x-"))


LIST = ("gnt-group", "list", "--no-headers", "--separator=|", "-o", "name")


def test_a_list_that_does_not_keep_the_order_asked_fails_naming_both():
    """When names are asked in reverse and come back sorted, the check fails with both orders."""
    ctx = context([(LIST + ("rack2", "default"), "default\nrack2\n", 0), (LIST, "default\nrack2\n", 0)])
    with pytest.raises(CheckFailed, match=r"printed them in the order \['default', 'rack2'\]"):
        generic.check_list(ctx, "gnt-group")


def test_an_unknown_field_must_exit_14():
    ctx = context([(LIST, "default\n", 0), (("gnt-group", "list", "this.name.certainly.does.not.exist"), "", 1),
                   (("gnt-group", "list", "--output=field/does/not/exist"), "", 1)])
    with pytest.raises(CheckFailed, match="exited 1, expected 14"):
        generic.check_list(ctx, "gnt-group")


def test_list_fields_must_be_in_ganetis_natural_order():
    """disk.size/10 comes after disk.size/2 in Ganeti's NiceSort; a plain sort is refused."""
    fields = "disk.size/10|x|y\ndisk.size/2|x|y\n"
    ctx = context([(("gnt-instance", "list-fields", "--no-headers"), fields, 0)])
    with pytest.raises(CheckFailed, match="is not sorted"):
        generic.check_list_fields(ctx, "gnt-instance", [])


def test_the_tags_are_removed_even_when_search_tags_disagrees():
    tags = " ".join(f"qa-x-tag{i}" for i in range(3))
    ctx = context([(("gnt-group", "add-tags"), "", 0), (("gnt-group", "list-tags"), tags, 0),
                   (("gnt-cluster", "search-tags"), "/nodegroup/other qa-x-tag0\n", 0),
                   (("gnt-group", "remove-tags"), "", 0)])
    with pytest.raises(CheckFailed, match="search-tags printed"):
        generic.check_tags(ctx, "gnt-group", "nodegroup", "rack2")
    assert ctx.ssh.commands[-1][:3] == ("gnt-group", "remove-tags", "rack2")
