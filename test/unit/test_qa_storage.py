"""The QA suite's storage block (qa/blocks/storage.py) against a scripted master and RAPI: what
it compares, what it changes and undoes, and when it skips. The block against a real cluster
runs in test/integration/test_qa_suite.py."""
from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))       # qa/ is a top-level package of the source tree, not installed

from qa.blocks import storage  # noqa: E402
from qa.context import Context, Facts, Options  # noqa: E402
from qa.report import Reporter  # noqa: E402
from qa.ssh import Result  # noqa: E402


class Master:
    """The master's gnt-* commands over a tiny storage model: PVs with their allocatable flag."""

    def __init__(self, pvs: dict[str, bool], drbd: str = "", diagnose_names=("file", "plain")):
        self.pvs, self.drbd, self.names = pvs, drbd, diagnose_names
        self.commands: list[tuple] = []

    def run(self, argv, check=True, timeout=None):
        argv = tuple(argv)
        self.commands.append(argv)
        out = ""
        if argv[:2] == ("gnt-node", "list-storage"):
            kind = argv[argv.index("-t") + 1]
            out = {"lvm-pv": "".join(f"{n}|1024|512|{'Y' if a else 'N'}\n" for n, a in self.pvs.items()),
                   "lvm-vg": "xenvg|2048|1024|Y\n", "file": "/srv/file|100|50|Y\n"}[kind]
        elif argv[:2] == ("gnt-node", "modify-storage"):
            self.pvs[argv[-1]] = argv[3] == "yes"
        elif argv[:2] == ("gnt-node", "volumes"):
            out = "node1|xenvg|a.disk|web1\nnode1|xenvg|spare|-\n"
        elif argv[:2] == ("gnt-node", "list-drbd"):
            out = self.drbd
        elif argv == ("gnt-storage", "diagnose"):
            out = "".join(f"Provider: {n}\n---\n  --\n\n" for n in self.names)
        elif argv == ("gnt-storage", "info"):
            out = "".join(f"{n}:\n  - Invalid for all nodegroups\n\n" for n in sorted(self.names))
        return Result(list(argv), 0, out, "")


class Rapi:
    def __init__(self, master: Master, stale: bool = False):
        self.master, self.stale = master, stale

    def run_job(self, method, path, body=None, timeout=600, **query):
        assert (method, path) == ("GET", "/2/nodes/node1/storage") and query["output_fields"] == "name,size,free,allocatable"
        rows = [line.split("|") for line in self.master.run(("gnt-node", "list-storage", "-t", query["storage_type"]))
                .stdout.splitlines()]
        if self.stale:
            rows = rows[:-1]
        return {"opresult": [[[n, int(s), int(f), a == "Y"] for n, s, f, a in rows]]}


def run_block(master: Master, enabled: list[str], stale: bool = False, **options) -> list[str]:
    out = io.StringIO()
    ctx = Context(Reporter(out), master, Rapi(master, stale), Options(prefix="qa-t-", **options))
    ctx.facts = Facts(name="c1", master="node1", nodes=["node1"], all_nodes=["node1"], enabled=enabled,
                      oses=["noop"], instances=["web1"])
    storage.run(ctx)
    return out.getvalue().splitlines()


def test_with_lvm_every_check_runs_and_the_physical_volume_ends_allocatable():
    master = Master({"/dev/sda": True, "/dev/sdb": True}, drbd="node1|0|web1|0|primary|node2\n")
    assert run_block(master, ["drbd", "file"]) == [
        "PASS storage: list-storage[file] agrees with the RAPI",
        "PASS storage: list-storage[lvm-vg] agrees with the RAPI",
        "PASS storage: gnt-storage diagnose and info name the same providers",
        "PASS storage[lvm]: volumes name only existing instances",
        "PASS storage[lvm]: list-drbd names only existing instances",
        "PASS storage[lvm]: modify-storage --allocatable no, then yes",
        "PASS storage[lvm]: repair-storage of a consistent volume group changes nothing"]
    assert master.pvs == {"/dev/sda": True, "/dev/sdb": True}
    assert ("gnt-node", "repair-storage", "node1", "lvm-vg", "xenvg") in master.commands


def test_without_lvm_among_the_templates_exercised_the_lvm_checks_skip_as_one_and_change_nothing():
    master = Master({"/dev/sda": True})
    assert run_block(master, ["plain", "file"], templates=["file"]) == [
        "PASS storage: list-storage[file] agrees with the RAPI",
        "PASS storage: gnt-storage diagnose and info name the same providers",
        "SKIP storage[lvm]: all: no template exercised keeps its disks in LVM (plain, drbd)"]
    assert not [c for c in master.commands if c[1] in ("modify-storage", "repair-storage", "volumes")]


def test_a_disagreement_and_an_unknown_instance_fail_naming_them():
    master = Master({"/dev/sda": True}, drbd="node1|3|ghost|0|secondary|node2\n")
    lines = run_block(master, ["drbd"], stale=True)
    assert lines[0].startswith("FAIL storage: list-storage[lvm-vg] agrees with the RAPI: gnt-node list-storage"
                               " shows [['xenvg', '2048', '1024', 'Y']], the RAPI []")
    assert any(line.startswith("FAIL storage[lvm]: list-drbd names only existing instances") and "ghost" in line
               for line in lines)
    assert master.pvs == {"/dev/sda": True}        # set back although its check failed


def test_repair_is_skipped_while_a_physical_volume_is_missing():
    master = Master({"/dev/sda": True, "[unknown]": True})
    lines = run_block(master, ["plain"])
    assert "SKIP storage[lvm]: repair-storage of a consistent volume group changes nothing: a physical volume of" \
           " node1 is missing: repairing would drop volumes" in lines
    assert not [c for c in master.commands if c[1] == "repair-storage"]


def test_free_space_that_moved_between_the_two_reads_is_read_again():
    """When the RAPI's first answer differs only because the file system changed meanwhile, the
    units are read again and the check passes once both sides agree."""
    master = Master({})
    rapi = Rapi(master, stale=True)
    answers = iter([True, False])
    original = rapi.run_job

    def run_job(*args, **kwargs):
        rapi.stale = next(answers, False)
        return original(*args, **kwargs)
    rapi.run_job = run_job
    out = io.StringIO()
    ctx = Context(Reporter(out), master, rapi, Options(prefix="qa-t-"))
    ctx.facts = Facts(name="c1", master="node1", nodes=["node1"], all_nodes=["node1"], enabled=["file"],
                      oses=["noop"], instances=[])
    storage.run(ctx)
    assert "PASS storage: list-storage[file] agrees with the RAPI" in out.getvalue().splitlines()
