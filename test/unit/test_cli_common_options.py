"""What every gnt-* command has, as Ganeti's: --version, the aliases, -d/--debug and --reason
(the reason trail of the jobs it submits), run as a user types them."""
from __future__ import annotations

import contextlib
import importlib
import io

import pytest

from genet import opcodes
from genet.cli import base as cli_base
from genet.jobqueue import opcode_reason
from luxi_recorder import recorder  # noqa: F401 (a fixture)

COMMANDS = ("gnt-cluster", "gnt-node", "gnt-instance", "gnt-group", "gnt-network", "gnt-backup", "gnt-os",
            "gnt-job", "gnt-debug")


def run(argv: list[str]) -> tuple[int, str, str]:
    module = importlib.import_module(f"genet.cli.{argv[0].replace('-', '_')}")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_base.run(argv[0], module.build, argv[1:])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("prog", COMMANDS)
def test_version_names_the_command_and_genets_version(prog):
    from genet import __version__
    assert run([prog, "--version"]) == (0, f"{prog} (genet v{__version__}) {__version__}\n", "")


def test_an_alias_runs_its_command(recorder):
    assert run(["gnt-instance", "start", "web1"])[0] == 0
    [[op]] = recorder.jobs
    assert (op["OP_ID"], op["instance_name"]) == ("OP_INSTANCE_STARTUP", "web1")


def test_the_reason_and_the_command_start_the_trail(recorder):
    assert run(["gnt-instance", "stop", "--reason", "disk swap", "web1"])[0] == 0
    [[op]] = recorder.jobs
    (user, why, t1), (client, command, t2) = op["reason"]
    assert (user, why, client, command) == ("gnt:user", "disk swap", "gnt:client:gnt-instance", "stop")
    assert t1 == t2 and t1 > 10 ** 18          # nanoseconds since the epoch, as Ganeti's


def test_without_a_reason_the_trail_names_the_command(recorder):
    assert run(["gnt-debug", "delay", "0"])[0] == 0
    [[op]] = recorder.jobs
    assert [entry[:2] for entry in op["reason"]] == [["gnt:client:gnt-debug", "delay"]]


def test_debug_raises_the_jobs_debug_level(recorder):
    assert run(["gnt-debug", "delay", "-d", "-d", "0"])[0] == 0
    [[op]] = recorder.jobs
    assert op["debug_level"] == 2


def test_debug_prints_the_traceback_of_a_failure(monkeypatch):
    from genet import errors, luxi

    def refuse(self, method, *args):
        raise errors.OpPrereqError("no such instance", errors.ECode.NOENT)
    monkeypatch.setattr(luxi.Client, "call", refuse)
    code, _, err = run(["gnt-instance", "startup", "--debug", "web1"])
    assert code != 0 and "Traceback" in err and "no such instance" in err
    code, _, err = run(["gnt-instance", "startup", "web1"])
    assert code != 0 and "Traceback" not in err


def test_the_queue_adds_each_opcodes_entry():
    op = opcodes.OpInstanceStartup(instance_name="web1")
    source, text, stamp = opcode_reason(op, 12, 0)
    assert (source, text) == ("gnt:opcode:instance_startup", "job=12;index=0") and stamp > 10 ** 18


def test_tags_come_from_arguments_and_a_file(recorder, tmp_path):
    listed = tmp_path / "tags"
    listed.write_text("rack:a\n\nprod\n")
    assert run(["gnt-instance", "add-tags", "--from", str(listed), "web1", "owner:joe"])[0] == 0
    [[op]] = recorder.jobs
    assert (op["OP_ID"], op["name"], op["tags"]) == ("OP_TAGS_SET", "web1", ["owner:joe", "rack:a", "prod"])


def test_no_tags_at_all_and_an_unreadable_file_are_refused(recorder, tmp_path):
    code, _, err = run(["gnt-cluster", "remove-tags"])
    assert code != 0 and "no tags given" in err
    code, _, err = run(["gnt-node", "add-tags", "--from", str(tmp_path / "nope"), "node1"])
    assert code != 0 and "cannot read tags from" in err and recorder.jobs == []


def test_reinstall_select_os_installs_the_number_typed(recorder, monkeypatch):
    import io as _io
    from genet import luxi
    diagnosed = [{"name": "image", "valid": True, "blacklisted": False, "variants": []},
                 {"name": "debian", "valid": True, "blacklisted": False, "variants": ["12", "13"]},
                 {"name": "old", "valid": True, "blacklisted": True, "variants": []}]

    def call(self, method, *args):
        if method == "QueryJobs" and recorder.jobs[-1][0]["OP_ID"] == "OP_OS_DIAGNOSE":
            return [["success", [diagnosed]]]
        return recorder.call(method, *args)
    monkeypatch.setattr(luxi.Client, "call", call)
    monkeypatch.setattr("sys.stdin", _io.StringIO("2\n"))
    code, out, _ = run(["gnt-instance", "reinstall", "--select-os", "-f", "web1"])
    assert code == 0 and "  1: debian+12\n  2: debian+13\n" in out and "old" not in out
    assert (recorder.jobs[-1][0]["OP_ID"], recorder.jobs[-1][0]["os_type"]) == ("OP_INSTANCE_REINSTALL", "debian+13")
    monkeypatch.setattr("sys.stdin", _io.StringIO("x\n"))
    count = len(recorder.jobs)
    assert run(["gnt-instance", "reinstall", "--select-os", "web1"])[0] == 1 and len(recorder.jobs) == count + 1


def test_init_checks_the_primary_ip_version_against_this_nodes_address():
    from genet import errors
    from genet.cli.gnt_cluster import check_ip_version
    check_ip_version("192.0.2.1", 4)
    check_ip_version("2001:db8::1", 6)
    with pytest.raises(errors.OpPrereqError, match="primary address 192.0.2.1 is IPv4, not IPv6"):
        check_ip_version("192.0.2.1", 6)


def test_print_jobid_prints_the_bare_number_first_and_submit_keeps_stdout_to_it(recorder):
    """When --print-jobid is given, standard output starts with the job's number alone (Ganeti's);
    with --submit too, it is all there is, the ``JobID:`` line going to standard error."""
    code, out, _ = run(["gnt-debug", "delay", "--print-jobid", "0"])
    assert code == 0 and out.splitlines()[0] == "1"
    assert run(["gnt-debug", "delay", "--submit", "--print-jobid", "0"]) == (0, "2\n", "JobID: 2\n")
    assert run(["gnt-debug", "delay", "--submit", "0"]) == (0, "JobID: 3\n", "")


def test_a_list_of_names_is_printed_in_the_order_asked(monkeypatch):
    """When names are given to a list command, the rows come in their order, as Ganeti's do,
    whatever order the master answers in."""
    from genet import luxi

    def sorted_answer(self, method, what, fields, qfilter):
        names = sorted(clause[2] for clause in (qfilter or ["|"])[1:])
        return {"fields": [{"name": f, "title": f, "kind": "text", "doc": ""} for f in fields],
                "data": [[[0, name]] for name in names]}
    monkeypatch.setattr(luxi.Client, "call", sorted_answer)
    assert run(["gnt-group", "list", "--no-headers", "-o", "name", "rack3", "default", "rack10"]) == \
        (0, "rack3\ndefault\nrack10\n", "")
    assert run(["gnt-network", "list", "--no-headers", "-o", "name"])[1] == ""
