"""The QA suite's own logic (qa/), with fake SSH and RAPI: what is counted, skipped, aborted.

The suite against a real cluster is test/integration/test_qa_suite.py; here no cluster runs.
"""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))       # qa/ is a top-level package of the source tree, not installed

from qa import cli, known_bugs, templates  # noqa: E402
from qa.blocks import evacuate, migration, replace_disks  # noqa: E402
from qa.context import Context, Options  # noqa: E402
from qa.rapi import RapiError  # noqa: E402
from qa.report import CheckFailed, Reporter, Skip  # noqa: E402
from qa.ssh import Result, SshRunner  # noqa: E402


class FakeRapi:
    """Answers GETs from a table of path -> value; a missing path is a 404."""

    def __init__(self, answers: dict):
        self.answers = answers

    def get(self, path: str, **query):
        if path not in self.answers:
            raise RapiError("GET", path, 404, "not found")
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeSsh:
    """Records every command; those starting with an ``allowed`` pair of words succeed without
    output, any other fails the test."""

    def __init__(self, allowed=()):
        self.allowed = set(allowed)
        self.commands: list[tuple] = []

    def run(self, argv, check=True, timeout=None):
        self.commands.append(tuple(argv))
        assert tuple(argv[:2]) in self.allowed, f"unexpected command {argv}"
        return Result(list(argv), 0, "", "")


def cluster_answers(nodes=("node1", "node2", "node3"), enabled=None, ipolicy=("diskless", "file", "sharedfile")):
    info = {"name": "c1", "master": nodes[0], "candidate_pool_size": 10}
    if enabled is not None:
        info["enabled_disk_templates"] = list(enabled)
    return {"/2/info": info,
            "/2/nodes": [{"name": n, "offline": False, "drained": False, "vm_capable": True} for n in nodes],
            "/2/groups": [{"name": "default", "ipolicy": {"disk-templates": list(ipolicy)}}],
            "/2/os": ["noop"], "/2/instances": [{"name": "web1"}]}


def context(answers=None, **options) -> tuple[Context, io.StringIO]:
    out = io.StringIO()
    ctx = Context(Reporter(out), FakeSsh(), FakeRapi(answers or cluster_answers()), Options(**options))
    return ctx, out


def test_the_summary_counts_passes_and_failures_but_not_skips():
    """When checks pass, fail and skip, each prints its line and the last line counts only the
    first two; one failure makes the exit status 1."""
    out = io.StringIO()
    rep = Reporter(out)
    with rep.check("b", "good"):
        pass
    with rep.check("b", "bad"):
        raise CheckFailed("the node said no\nand more")
    with rep.check("b", "n/a"):
        raise Skip("single node")
    with rep.check("b", "crash"):
        {}["missing"]
    assert rep.finish() == 1
    assert out.getvalue().splitlines() == [
        "PASS b: good", "FAIL b: bad: the node said no | and more", "SKIP b: n/a: single node",
        "FAIL b: crash: KeyError: 'missing'", "(1 skipped)", "1 passed, 2 failed"]


def test_a_run_without_failures_exits_0_even_with_skips():
    rep = Reporter(io.StringIO())
    with rep.check("b", "n/a"):
        raise Skip("not enabled")
    assert rep.finish() == 0 and rep.out.getvalue().splitlines()[-1] == "0 passed, 0 failed"


def test_a_failed_required_check_ends_its_block_and_the_next_block_runs():
    """When a required check fails, the checks after it in its block are neither run nor
    counted, a block that raises outside its checks is one failure, and later blocks run."""
    ran = []

    def first(ctx):
        with ctx.check("first", "create", required=True):
            raise CheckFailed("no room")
        ran.append("after create")

    def broken(ctx):
        raise RapiError("GET", "/2/info", 502, "bad gateway")

    def skipped(ctx):
        raise Skip("needs two nodes")

    def last(ctx):
        with ctx.check("last", "works"):
            ran.append("last")

    ctx, out = context()
    status = cli.run_suite(ctx, [("first", first), ("broken", broken), ("skipped", skipped), ("last", last)])
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    assert lines == ["PASS setup: read the cluster over the RAPI", "FAIL first: create: no room",
                     "FAIL broken: (block): GET /2/info: HTTP 502: bad gateway",
                     "SKIP skipped: all: needs two nodes", "PASS last: works", "(1 skipped)",
                     "2 passed, 2 failed"]
    assert ran == ["last"] and status == 1


def test_an_instance_a_failed_block_left_behind_is_removed_at_the_end():
    """When a block fails after creating an instance, the run removes it afterwards; instances
    the run created and already removed are left alone."""
    answers = cluster_answers()
    answers["/2/instances/qa-t-file1"] = {"name": "qa-t-file1"}

    def block(ctx):
        ctx.created += ["qa-t-file1", "qa-t-disk2"]
        with ctx.check("instances[file]", "startup", required=True):
            raise CheckFailed("it did not start")

    ctx, out = context(answers, prefix="qa-t-")
    ctx.ssh = FakeSsh({("gnt-instance", "remove")})
    assert cli.run_suite(ctx, [("instances", block)]) == 1
    assert ctx.ssh.commands == [("gnt-instance", "remove", "-f", "qa-t-file1")]
    assert out.getvalue().splitlines()[-2:] == ["PASS cleanup: remove leftover instance qa-t-file1",
                                                "2 passed, 1 failed"]


def test_a_cluster_that_cannot_be_read_is_one_failure_and_no_block_runs():
    answers = cluster_answers()
    answers["/2/info"] = RapiError("GET", "/2/info", 401, "unauthorized")
    ctx, out = context(answers)
    assert cli.run_suite(ctx, [("never", lambda ctx: pytest.fail("block ran"))]) == 1
    assert out.getvalue().splitlines() == [
        "FAIL setup: read the cluster over the RAPI: GET /2/info: HTTP 401: unauthorized", "0 passed, 1 failed"]


def test_templates_not_enabled_or_not_creatable_are_planned_as_skips():
    """When --templates asks for templates the cluster does not enable (or that cannot be
    created from nothing), each comes with its reason; the rest run cheapest first."""
    ctx, _ = context(cluster_answers(ipolicy=("diskless", "file", "sharedfile", "ext")),
                     templates=["drbd", "file", "ext", "diskless"])
    ctx.discover()
    plan = dict(ctx.templates())
    assert list(plan) == ["diskless", "file", "drbd", "ext"]
    assert plan["diskless"] is None and plan["file"] is None
    assert plan["drbd"] == "template drbd is not enabled on the cluster (enabled: diskless, file, sharedfile, ext)"
    assert "ExtStorage provider" in plan["ext"]


def test_enabled_templates_come_from_ganeti_info_or_genet_ipolicy():
    groups = [{"ipolicy": {"disk-templates": ["plain", "drbd", "file"]}}]
    assert templates.enabled_templates({"enabled_disk_templates": ["drbd", "plain"]}, groups) == ["plain", "drbd"]
    assert templates.enabled_templates({}, groups) == ["file", "plain", "drbd"]
    assert templates.enabled_templates({"enabled_disk_templates": ["rbd"]}, []) == ["rbd"]
    assert templates.enabled_templates({}, []) is None


def test_blocks_that_need_more_nodes_are_skipped_on_one_node_without_any_command():
    """When the suite may use one node (--node-count 1), migration, evacuation and
    replace-disks say SKIP with the reason, count nothing, and run no command."""
    ctx, out = context(cluster_answers(ipolicy=("sharedfile", "mirror")), node_count=1)
    ctx.discover()
    for block in (migration.run, evacuate.run, replace_disks.run):
        block(ctx)
    assert out.getvalue().splitlines() == [
        "SKIP migration[sharedfile]: all: migration needs 2 usable nodes, the cluster has 1",
        "SKIP migration[mirror]: all: migration needs 2 usable nodes, the cluster has 1",
        "SKIP evacuate: evacuate -s moves a mirror's secondary to another node: "
        "moving a secondary needs 3 usable nodes, the cluster has 1",
        "SKIP evacuate: evacuate -p moves a primary instance off its node: "
        "moving a primary instance needs 2 usable nodes, the cluster has 1",
        "SKIP replace-disks[mirror]: all: template mirror needs 2 usable nodes, the cluster has 1"]
    assert ctx.reporter.passed == ctx.reporter.failed == 0 and ctx.ssh.commands == []


def test_evacuation_is_skipped_on_a_node_holding_instances_the_suite_did_not_create():
    answers = cluster_answers(ipolicy=("sharedfile",))
    answers["/2/nodes/node3"] = {"name": "node3", "pinst_list": ["web1"], "sinst_list": []}
    ctx, out = context(answers)
    ctx.discover()
    evacuate.primaries(ctx)
    assert out.getvalue().splitlines() == [
        "SKIP evacuate: evacuate -p moves a primary instance off its node: "
        "node node3 holds instances the suite did not create: web1"]


def test_a_known_bug_is_skipped_with_its_reason_unless_asked_to_run_it(monkeypatch):
    monkeypatch.setitem(known_bugs.KNOWN_BUGS, ("rename", "mirror"), "genet bug: gnt-instance rename fails")
    ctx, _ = context()
    with pytest.raises(Skip, match=r"genet bug: gnt-instance rename fails \(--run-known-bugs runs it\)"):
        ctx.unless_known_bug("rename", "mirror")
    ctx.unless_known_bug("rename", "file")
    ctx, _ = context(run_known_bugs=True)
    ctx.unless_known_bug("rename", "mirror")


def test_ssh_runs_the_command_quoted_for_the_remote_shell_and_never_prompts():
    runner = SshRunner("root@master", ["IdentityFile=/k"])
    assert runner.command(["gnt-instance", "add", "--add", "-B memory=1G", "a;b"]) == [
        "ssh", "-o", "BatchMode=yes", "-o", "IdentityFile=/k", "root@master", "--",
        "gnt-instance add --add '-B memory=1G' 'a;b'"]


def test_sizes_on_the_command_line():
    assert [cli.size_mib(s) for s in ("64M", "1G", "512", "2g")] == [64, 1024, 512, 2048]
    with pytest.raises(Exception):
        cli.size_mib("lots")


def test_every_option_is_documented_in_the_man_page():
    options = {o for action in cli.build_parser()._actions for o in action.option_strings} - {"-h", "--help"}
    body = (ROOT / "man/genet-qa.rst").read_text().split("\nOPTIONS\n", 1)[1].split("\nBLOCKS\n", 1)[0]
    assert sorted(o for o in options if not re.search(rf"``{re.escape(o)}``", body)) == []
