"""The bash completion offers every subcommand, option and choice the commands' parsers have,
and the names of the cluster's objects from the node's files.

Each test writes a command's script with genet.cli.completion, sources it in bash and calls
its completion function as bash does on TAB (COMP_WORDS, COMP_CWORD).
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from genet.cli import completion

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = dict(re.findall(r'"(([\w-]+) = [\w.]+:\w+)"', (ROOT / "setup.py").read_text()))  # spec -> name
SPECS = {name: spec for spec, name in COMMANDS.items()}


def parser(prog: str) -> argparse.ArgumentParser:
    return completion.parser_of(prog, SPECS[prog].split("=", 1)[1])


def complete(tmp_path: Path, prog: str, cases: list[list[str]], env: dict | None = None,
             wordbreaks: str | None = None) -> list[list[str]]:
    """What TAB offers for each case: the words after the command, the last one being typed."""
    script = tmp_path / prog
    if not script.exists():
        completion.write([SPECS[prog]], tmp_path)
    lines = [f"source {shlex.quote(str(script))}"]
    if wordbreaks is not None:
        lines.append(f"COMP_WORDBREAKS={shlex.quote(wordbreaks)}")
    for words in cases:
        lines += [f"COMP_WORDS=({' '.join(shlex.quote(w) for w in [prog, *words])})",
                  f"COMP_CWORD={len(words)}", "_genet_complete", "printf '%s\\n' \"${COMPREPLY[*]}\""]
    result = subprocess.run(["bash", "--norc", "--noprofile"], input="\n".join(lines), text=True,
                            capture_output=True, env={"PATH": "/usr/bin:/bin", **(env or {})}, check=True)
    assert result.stderr == ""
    offered = result.stdout.split("\n")[:-1]
    assert len(offered) == len(cases)
    return [line.split() for line in offered]


def walk(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(subcommand words, parser) of the command and each of its subcommands."""
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*words, name))


@pytest.fixture
def node_root(tmp_path):
    """A node's root whose ssconf files name two nodes, three instances, a group and a network."""
    data = tmp_path / "root/var/lib/genet"
    data.mkdir(parents=True)
    (data / "ssconf_node_list").write_text("node1.example.com 192.0.2.11\nnode2.example.com 192.0.2.12\n")
    (data / "ssconf_instance_list").write_text("web1.example.com\nweb2.example.com\ndb1.example.com\n")
    (data / "ssconf_nodegroups").write_text("6c1e9a52-0f4e-4a3b-9d55-1a1b2c3d4e5f default\n")
    (data / "ssconf_networks").write_text("0d6f1d0c-8e5b-4d8e-a2a7-9b7c0e3f4a21 backbone\n")
    return tmp_path / "root"


# --- everything the parsers have --------------------------------------------------

@pytest.mark.parametrize("prog", sorted(SPECS))
def test_every_subcommand_option_and_choice_is_offered(tmp_path, prog):
    """When the typed word starts with "-", every option of that (sub)command is offered; after
    the command, every subcommand; after an option with choices (or yes/no), every choice."""
    cases, expected = [], []
    for words, sub in walk(parser(prog)):
        cases.append([*words, "-"])
        expected.append(sorted(s for a in sub._actions for s in a.option_strings))
        subcommands = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        if subcommands:
            cases.append([*words, ""])
            expected.append(sorted(subcommands[0].choices))
        for action in sub._actions:
            what = completion.completes_to(action) if action.option_strings and action.nargs != 0 else ""
            if what and not what.startswith("@"):
                cases.append([*words, action.option_strings[-1], ""])
                expected.append(sorted(what.split(",")))
    assert [sorted(o) for o in complete(tmp_path, prog, cases)] == expected


def test_every_installed_command_has_a_completion(tmp_path):
    assert len(SPECS) >= 15 and {"gnt-instance", "gnt-node", "genet-masterd"} <= set(SPECS)
    assert sorted(p.name for p in completion.write(COMMANDS, tmp_path)) == sorted(SPECS)


def test_choices_come_from_the_parameter_types_and_registries():
    """A disk template is offered from the storage registry, a reboot type from its opcode, a
    yes/no option's values, an argparse choice as it is."""
    from genet.storage.base import names
    offered = completion.tables("gnt-instance", parser("gnt-instance"))["vals"]
    assert offered["gnt-instance add -t"].split(",") == list(names())
    assert offered["gnt-instance reboot --type"] == "soft,hard,full"
    assert completion.tables("gnt-node", parser("gnt-node"))["vals"]["gnt-node modify --offline"] == "yes,no"
    assert completion.tables("genet-daemon", parser("genet-daemon"))["args"]["genet-daemon"] == "1:start,stop"


def test_every_metavar_that_names_an_object_completes_names():
    """An option or argument whose metavar names a node, instance, group, network, OS or job
    completes to those names (a new metavar must be added to NAME_KINDS)."""
    subnets = {"NETWORK", "NETWORK6"}      # gnt-network add's address ranges, not names
    unknown = set()
    for prog in SPECS:
        for _, sub in walk(parser(prog)):
            for action in sub._actions:
                meta = action.metavar if isinstance(action.metavar, str) else ""
                if re.search(r"NODE|INSTANCE|GROUP|NETWORK|JOB_ID|(^|_)OS(_|$)", meta) and meta not in subnets \
                        and meta not in completion.NAME_KINDS:
                    unknown.add(meta)
    assert unknown == set()


# --- typing ------------------------------------------------------------------------

def test_a_subcommand_and_an_option_complete_from_their_prefix(tmp_path):
    assert complete(tmp_path, "gnt-instance", [["mig"], ["migrate", "--migr"], ["add", "--disk-t"]]) == [
        ["migrate"], ["--migration-mode"], ["--disk-template"]]


def test_instance_node_group_and_network_names_come_from_the_ssconf_files(tmp_path, node_root):
    env = {"GENET_ROOT": str(node_root)}
    assert complete(tmp_path, "gnt-instance", [["migrate", "web"], ["info", "db1.example.com", ""],
                                               ["add", "-n", "node2"], ["migrate", "--target-node", ""]], env) == [
        ["web1.example.com", "web2.example.com"], ["web1.example.com", "web2.example.com", "db1.example.com"],
        ["node2.example.com"], ["node1.example.com", "node2.example.com"]]
    assert complete(tmp_path, "gnt-group", [["info", ""]], env) == [["default"]]
    assert complete(tmp_path, "gnt-network", [["info", ""]], env) == [["backbone"]]


def test_names_complete_to_nothing_without_a_cluster(tmp_path):
    assert complete(tmp_path, "gnt-instance", [["migrate", ""], ["add", "-n", ""]],
                    {"GENET_ROOT": str(tmp_path / "empty")}) == [[], []]


def test_a_value_typed_after_an_equals_sign_or_a_colon_completes_its_last_part(tmp_path, node_root):
    """bash splits "--opt=VALUE" and "PRIMARY:SECONDARY" at = and :, and replaces only the part
    after the last of them; where they do not split words, the whole argument is offered."""
    env = {"GENET_ROOT": str(node_root)}
    split = [["add", "--disk-template", "=", "pl"], ["add", "--disk-template", "="],
             ["add", "-n", "node1.example.com", ":", "node2"]]
    templates = completion.tables("gnt-instance", parser("gnt-instance"))["vals"]["gnt-instance add -t"]
    assert complete(tmp_path, "gnt-instance", split, env) == [
        ["plain"], templates.split(","), ["node2.example.com"]]
    whole = [["add", "--disk-template=pl"], ["add", "-n", "node1.example.com:node2"]]
    assert complete(tmp_path, "gnt-instance", whole, env, wordbreaks=" \t\n") == [
        ["--disk-template=plain"], ["node1.example.com:node2.example.com"]]


def test_an_option_value_is_not_taken_for_an_argument(tmp_path, node_root):
    """The value of an option that takes one does not count as a positional argument; a switch
    takes none."""
    env = {"GENET_ROOT": str(node_root)}
    assert complete(tmp_path, "gnt-instance", [["migrate", "--target-node", "node1.example.com", "--cleanup", "d"],
                                               ["migrate", "--", "-"]], env) == [["db1.example.com"], []]


def test_os_names_come_from_the_os_search_path(tmp_path, node_root):
    extra = tmp_path / "os-extra"
    (extra / "debootstrap").mkdir(parents=True)
    (node_root / "srv/genet/os/noop").mkdir(parents=True)
    assert complete(tmp_path, "gnt-instance", [["add", "-o", ""]],
                    {"GENET_ROOT": str(node_root), "GENET_OS_SEARCH_PATH": str(extra)}) == [["debootstrap", "noop"]]


def test_job_ids_are_the_unarchived_jobs_of_the_queue(tmp_path, node_root):
    from genet.queue_store import QueueStore
    store = QueueStore(node_root / "var/lib/genet/queue.db")
    store.write([(7, 0, json.dumps({"status": "success"}), 1), (8, 1, json.dumps({"status": "success"}), 1),
                 (12, 0, json.dumps({"status": "queued"}), 1)])
    try:
        assert complete(tmp_path, "gnt-job", [["info", ""], ["cancel", "1"]], {"GENET_ROOT": str(node_root)}) == [
            ["7", "12"], ["12"]]
    finally:
        store.close()
